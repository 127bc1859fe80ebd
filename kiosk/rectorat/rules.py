"""The push rules, item by item: what the rectorat makes of one pushed item.

The contract is docs/sync-protocol.md. In short, each pushed item comes back as:

- ``applied``: inserted, or updated because its version is higher;
- ``stale``: the rectorat already has this version or a newer one (or deleted it);
- ``conflict``: kept in ``rc_conflict`` for the exam office, never an overwrite; among
  them a registration changed at a kiosk from a version other than the rectorat's (its
  ``base``), when the exam office changed it meanwhile;
- ``refused``: never to be taken (``reason``: ``closed``, ``future``, ``session``,
  ``forbidden``, ``active``, ``invalid``, ``entity``).

A kiosk may change only the accounts it holds (it pushed them first, or borrowed them
at a login elsewhere) and their records. Every write adds a row to the change feed.
This is the per-item path, which looks at the database for each item; the set-based
path (:mod:`kiosk.rectorat.bulk`) decides the common items of a batch as these rules do
and leaves every other item to them.
"""

from __future__ import annotations

import logging
import re
import threading
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import orjson
from peewee import DataError, IntegrityError

from kiosk.clock import Clock, instant_text
from kiosk.exam_sessions import ExamSession, SessionError
from kiosk.rectorat.codes import push_code
from kiosk.rectorat.identity import identity_key
from kiosk.rectorat.items import (
    Invalid,
    account_fields,
    address_change_fields,
    pushed_status,
    read_envelope,
    read_uuid,
    registration_fields,
)
from kiosk.rectorat.kiosks import KioskIdentity
from kiosk.rectorat.numbers import Numbering
from kiosk.rectorat.store import (
    Account,
    AddressChange,
    Conflict,
    RectoratStore,
    Registration,
    json_text,
)

log = logging.getLogger(__name__)

FUTURE_TOLERANCE = timedelta(minutes=5)
"""How far ahead of the rectorat's clock a kiosk's clock may date a change."""
_SESSION_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_SESSIONS_KEPT = 1000

Handler = Callable[[KioskIdentity, uuid.UUID, int, Mapping[str, Any], datetime], dict]

CANNOT_HOLD: tuple[type[Exception], ...] = (
    DataError,  # PostgreSQL: a value out of its column's range (a schema 3 store's versions)
    OverflowError,  # SQLite: an integer beyond 64 bits
    RecursionError,
    TypeError,  # orjson: JSON it cannot write
    ValueError,  # psycopg2: a NUL in a text
)
"""What the store raises for a value it cannot hold. The readers (:mod:`kiosk.rectorat.items`)
check every bound first; should one slip through, that item alone is refused (its
savepoint rolled back), and the batch goes on."""
CANNOT_HOLD_RESULT = {
    "result": "refused",
    "reason": "invalid",
    "detail": "the rectorat's store cannot hold this item",
}


class RegistrationRow(NamedTuple):
    version: int
    account_id: str
    session_id: str
    status: str
    answers: str  # as the store writes them (json_text)
    saved_at: str
    withdrawn_at: str | None
    kiosk_versions: str | None  # {"kiosk id": the highest version it wrote}, as JSON

    def written(self) -> dict[str, int]:
        """The highest version of this registration that each kiosk wrote, by kiosk id."""
        return orjson.loads(self.kiosk_versions) if self.kiosk_versions else {}

    def written_by(self, kiosk: KioskIdentity) -> int:
        """The highest version of this registration that ``kiosk`` wrote (0: none)."""
        return int(self.written().get(str(kiosk.id), 0))

    def holds(self, fields: Mapping[str, Any], status: str) -> bool:
        """Whether this row holds what a kiosk pushes (``fields`` read by
        :func:`registration_fields`): a change of its own, sent again."""
        return (
            pushed_status(self.status) == pushed_status(status)
            and self.answers == json_text(fields["answers"])
            and self.saved_at == instant_text(fields["saved_at"])
            and self.withdrawn_at == instant_text(fields["withdrawn_at"])
        )


class AddressChangeRow(NamedTuple):
    version: int
    registration_id: str


class ConflictRow(NamedTuple):
    id: str
    version: int
    resolved_at: str | None
    kind: str
    kiosk_id: int


def _holding(conflicts: list[ConflictRow], kiosk: KioskIdentity, version: int) -> dict | None:
    """The answer to a replay of what a conflict holds: that conflict's own, so that a
    kiosk whose first answer was lost still learns it (an address taken, above all). Only
    the kiosk's own conflicts: another kiosk's change of the record is its own item."""
    held = [c for c in conflicts if c.kiosk_id == kiosk.id and c.version >= version]
    if not held:
        return None
    return {"result": "conflict", "conflict": held[-1].id, "kind": held[-1].kind}


class SessionRegistration(NamedTuple):
    """Another registration in the same session, of the same person or account."""

    id: str
    identity_key: str | None
    account_id: str


class PushRules:
    """The rules over one store: each handler returns the result without the id, in the
    caller's transaction. The checks on the hot path are plain SQL prepared once:
    peewee's query building costs more than the queries themselves."""

    def __init__(
        self,
        store: RectoratStore,
        clock: Clock,
        session_loader: Callable[[str, Clock], ExamSession],
    ) -> None:
        self.store = store
        self.db = store.db
        self.clock = clock
        self.numbering = Numbering(store)
        self._load_session = session_loader
        self._sessions: dict[str, ExamSession | None] = {}
        self._sessions_lock = threading.Lock()
        self._handlers: dict[str, Handler] = {
            "account": self._push_account,
            "address_change": self._push_address_change,
            "account_deletion": self._push_account_deletion,
            "code": self._push_code,
        }
        p = self.db.param
        self._sql = {
            "account_version": f"SELECT version FROM rc_account WHERE id = {p}",
            # The account's row locked until the registration is written (PostgreSQL), as
            # the foreign key did before schema 9: a deletion waits, then finds it.
            "account_names": f"SELECT family_name, given_names FROM rc_account WHERE id = {p}"
            + (" FOR KEY SHARE" if store.postgresql else ""),
            "email_owner": f"SELECT id FROM rc_account WHERE email_key = {p}",
            "registration_row": "SELECT version, account_id, session_id, status, answers,"
            f" saved_at, withdrawn_at, kiosk_versions FROM rc_registration WHERE id = {p}",
            "address_change_row": "SELECT version, registration_id"
            f" FROM rc_address_change WHERE id = {p}",
            "same_session": "SELECT id, identity_key, account_id FROM rc_registration"
            f" WHERE session_id = {p} AND id <> {p} AND (identity_key = {p} OR account_id = {p})",
            "tombstone": f"SELECT 1 FROM rc_tombstone WHERE entity_id = {p}",
            "conflicts": "SELECT id, version, resolved_at, kind, kiosk_id FROM rc_conflict"
            f" WHERE entity_id = {p} ORDER BY created_at",
            "holds": f"SELECT 1 FROM rc_account WHERE id = {p} AND origin_kiosk_id = {p}"
            f" UNION ALL SELECT 1 FROM rc_interest WHERE account_id = {p} AND kiosk_id = {p}",
            "change": "INSERT INTO rc_change (entity, entity_id, account_id, created_at)"
            f" VALUES ({p}, {p}, {p}, {p})",
        }

    # -- sessions -------------------------------------------------------------------------

    def session(self, session_id: str) -> ExamSession | None:
        """The exam session by its id (a shipped name, never a path), cached."""
        with self._sessions_lock:
            if session_id in self._sessions:
                return self._sessions[session_id]
        found: ExamSession | None = None
        if _SESSION_ID.fullmatch(session_id or ""):
            try:
                found = self._load_session(session_id, self.clock)
            except SessionError:
                found = None
        with self._sessions_lock:
            if len(self._sessions) < _SESSIONS_KEPT:
                self._sessions[session_id] = found
        return found

    # -- one item -------------------------------------------------------------------------

    def push_item(self, kiosk: KioskIdentity, item: Mapping[str, Any], now: datetime) -> dict:
        """One pushed item, read and decided in its own savepoint: its result, id first."""
        shown_id, read = read_envelope(item)
        if isinstance(read, dict):
            log.info(
                "kiosk %s: item %s refused (%s)",
                kiosk.name,
                shown_id,
                read.get("detail", read["reason"]),
            )
            return {"id": shown_id, **read}
        try:
            for attempt in (1, 2):
                try:
                    with self.db.atomic():
                        result = self.apply(
                            kiosk,
                            read.entity,
                            read.record_id,
                            read.version,
                            read.data,
                            now,
                            base=read.base,
                        )
                    break
                except IntegrityError:
                    # Another kiosk's transaction committed the same record or key
                    # since this one looked: look again, once.
                    if attempt == 2:
                        raise
        except Invalid as problem:
            log.info("kiosk %s pushed an invalid item %s: %s", kiosk.name, shown_id, problem)
            return {
                "id": shown_id,
                "result": "refused",
                "reason": "invalid",
                "detail": str(problem),
            }
        except CANNOT_HOLD as error:  # a bound the readers missed: this item only
            log.error(
                "kiosk %s: item %s cannot be stored: %s",
                kiosk.name,
                shown_id,
                type(error).__name__,
                exc_info=error,
            )
            return {"id": shown_id, **CANNOT_HOLD_RESULT}
        result = {"id": shown_id, **result}
        if result["result"] == "refused":
            log.info(
                "kiosk %s: %s %s refused (%s)",
                kiosk.name,
                item.get("entity"),
                shown_id,
                result["reason"],
            )
        return result

    def apply(
        self,
        kiosk: KioskIdentity,
        entity: str,
        record_id: uuid.UUID,
        version: int,
        data: Mapping[str, Any],
        now: datetime,
        *,
        base: int | None = None,
    ) -> dict:
        """The rules of ``entity`` for this item, in the caller's transaction: the result
        without the id. Raises :class:`Invalid` for data that cannot be read. ``base`` is
        the item's (:class:`~kiosk.rectorat.items.Envelope`): only a registration, which
        both a kiosk and the exam office change, looks at it."""
        if entity == "registration":
            return self._push_registration(kiosk, record_id, version, data, now, base)
        return self._handlers[entity](kiosk, record_id, version, data, now)

    # -- the rules of each entity ---------------------------------------------------------

    def _push_account(
        self,
        kiosk: KioskIdentity,
        record_id: uuid.UUID,
        version: int,
        data: Mapping[str, Any],
        now: datetime,
    ) -> dict:
        m = self.store
        fields = account_fields(data)
        key = str(record_id)
        existing = self._one("account_version", key)
        if existing is None:
            if self._one("tombstone", key) is not None:
                return {"result": "stale"}
        else:
            if not self._holds(kiosk, key):
                return {"result": "refused", "reason": "forbidden"}
            (existing_version,) = existing
            if version <= existing_version:
                return {"result": "stale"}
        conflicts = self._conflicts(key)
        if replayed := _holding(conflicts, kiosk, version):
            return replayed
        owner = self._one("email_owner", fields["email_key"])
        if owner is not None and owner[0] != key:
            return self._conflict(
                kiosk, "email_key", "account", record_id, version, data, owner[0], now
            )
        if existing is None:
            # The kiosk that pushes it first holds it (the others that held it were checked above).
            m.Account.insert(
                id=record_id, version=version, received_at=now, origin_kiosk_id=kiosk.id, **fields
            ).execute()
        elif not self._update_if_newer(m.Account, record_id, version, fields):
            return {"result": "stale"}
        self.changed("account", key, key, now)
        self._supersede(conflicts, kiosk, now)
        return {"result": "applied"}

    def _push_registration(
        self,
        kiosk: KioskIdentity,
        record_id: uuid.UUID,
        version: int,
        data: Mapping[str, Any],
        now: datetime,
        base: int | None = None,
    ) -> dict:
        m = self.store
        fields, status = registration_fields(data)
        account_id, session_id, answers = (
            fields["account_id"],
            fields["session_id"],
            fields["answers"],
        )
        key, account_key = str(record_id), str(account_id)
        row = self._one("registration_row", key)
        existing = None if row is None else RegistrationRow(*row)
        # Changed at the kiosk from a version other than the one here, which is not the
        # kiosk's own (its answer lost on the way): the exam office changed it meanwhile, or
        # another kiosk did, and neither overwrites the other.
        behind = False
        if existing is not None:
            if not self._holds(kiosk, existing.account_id):
                return {"result": "refused", "reason": "forbidden"}
            if existing.account_id != account_key or existing.session_id != session_id:
                raise Invalid("a registration keeps its account and session")
            mine = existing.written_by(kiosk)
            if version <= mine:  # its own change, sent again: taken, and perhaps changed since
                if version != existing.version:
                    self.changed("registration", key, account_key, now)  # its base to come
                return {"result": "stale"}
            if base is not None and base != existing.version and mine != existing.version:
                if existing.holds(fields, status):  # what is here already
                    # The kiosk learns, from its next pull, which version it holds.
                    self.changed("registration", key, account_key, now)
                    return {"result": "stale"}
                behind = True
            elif version <= existing.version:
                return {"result": "stale"}
        elif self._one("tombstone", key) is not None:
            return {"result": "stale"}
        conflicts = self._conflicts(key)
        if replayed := _holding(conflicts, kiosk, version):
            return replayed
        session = self.session(session_id)
        if session is None:
            return {"result": "refused", "reason": "session"}
        # The kiosk's own clock dates the change: a save, or a withdrawal.
        acted_at = max(fields["saved_at"], fields["withdrawn_at"] or fields["saved_at"])
        if acted_at >= session.closes:
            return {"result": "refused", "reason": "closed"}
        if acted_at > now + FUTURE_TOLERANCE:
            return {"result": "refused", "reason": "future"}
        if behind:
            result = self._conflict(
                kiosk, "version", "registration", record_id, version, data, key, now
            )
            # The rectorat's copy goes back to the kiosk, which then shows it; the kiosk's
            # change waits here for the exam office.
            self.changed("registration", key, account_key, now)
            return result
        names = self._one("account_names", account_key)
        if names is None:
            blocking = self._open_conflict_id(account_key)
            return self._conflict(
                kiosk,
                "account",
                "registration",
                record_id,
                version,
                data,
                blocking or account_key,
                now,
            )
        if not self._holds(kiosk, account_key):
            return {"result": "refused", "reason": "forbidden"}
        # The status set_aside is the rectorat's: never taken from a kiosk, never lifted by one.
        if existing is not None and existing.status == "set_aside":
            fields["status"], fields["identity_key"] = "set_aside", None
        else:
            fields["status"] = (
                status if status != "set_aside" else (existing.status if existing else "registered")
            )
            family_name, given_names = names
            fields["identity_key"] = identity_key(answers, family_name, given_names)
        same_person = same_account = None
        for row in self._all("same_session", session_id, key, fields["identity_key"], account_key):
            other = SessionRegistration(*row)
            if fields["identity_key"] is not None and other.identity_key == fields["identity_key"]:
                same_person = other.id
            elif other.account_id == account_key:
                same_account = other.id
        if same_person is not None:
            return self._conflict(
                kiosk, "identity", "registration", record_id, version, data, same_person, now
            )
        if same_account is not None:
            return self._conflict(
                kiosk,
                "account_session",
                "registration",
                record_id,
                version,
                data,
                same_account,
                now,
            )
        if existing is None:
            number = self.numbering.next(session)
            m.Registration.insert(
                id=record_id,
                version=version,
                received_at=now,
                number=number,
                kiosk_versions={str(kiosk.id): version},
                **fields,
            ).execute()
        elif not self._update_if_newer(
            m.Registration,
            record_id,
            version,
            {**fields, "kiosk_versions": {**existing.written(), str(kiosk.id): version}},
        ):
            return {"result": "stale"}
        self.changed("registration", key, account_key, now)
        self._supersede(conflicts, kiosk, now)
        return {"result": "applied"}

    def _push_address_change(
        self,
        kiosk: KioskIdentity,
        record_id: uuid.UUID,
        version: int,
        data: Mapping[str, Any],
        now: datetime,
    ) -> dict:
        m = self.store
        fields = address_change_fields(data)
        key, registration_key = str(record_id), str(fields["registration_id"])
        row = self._one("registration_row", registration_key)
        registration = None if row is None else RegistrationRow(*row)
        row = self._one("address_change_row", key)
        existing = None if row is None else AddressChangeRow(*row)
        if existing is not None:
            if existing.registration_id != registration_key:
                raise Invalid("an address change keeps its registration")
            if registration is not None and not self._holds(kiosk, registration.account_id):
                return {"result": "refused", "reason": "forbidden"}
            if version <= existing.version:
                return {"result": "stale"}
        conflicts = self._conflicts(key)
        if any(conflict.version >= version for conflict in conflicts):
            return {"result": "stale"}
        if registration is None:
            if self._one("tombstone", registration_key) is not None:
                return {"result": "stale"}
            blocking = self._open_conflict_id(registration_key)
            return self._conflict(
                kiosk,
                "registration",
                "address_change",
                record_id,
                version,
                data,
                blocking or registration_key,
                now,
            )
        if not self._holds(kiosk, registration.account_id):
            return {"result": "refused", "reason": "forbidden"}
        if existing is None:
            m.AddressChange.insert(
                id=record_id, version=version, received_at=now, **fields
            ).execute()
        elif not self._update_if_newer(m.AddressChange, record_id, version, fields):
            return {"result": "stale"}
        self.changed("address_change", key, registration.account_id, now)
        self._supersede(conflicts, kiosk, now)
        return {"result": "applied"}

    def _push_account_deletion(
        self,
        kiosk: KioskIdentity,
        record_id: uuid.UUID,
        version: int,
        data: Mapping[str, Any],
        now: datetime,
    ) -> dict:
        m = self.store
        reason = str(data.get("reason") or "")[:100].replace("\x00", "")
        found = m.Account.select().where(m.Account.id == record_id)
        if self.store.postgresql:
            # Locked before its registrations are listed: a registration pushed meanwhile
            # (which locks the row FOR KEY SHARE) waits, then finds the account gone.
            found = found.for_update()
        account = found.first()
        if account is None:
            # Gone already, or never taken: a conflict held for it is settled by the kiosk.
            for conflict in m.Conflict.select().where(
                (m.Conflict.entity_id == record_id)
                & m.Conflict.resolved_at.is_null()
                & (m.Conflict.kiosk_id == kiosk.id)
            ):
                self.close_conflict(conflict, "withdrawn_by_kiosk", f"kiosk:{kiosk.name}", now)
            return {"result": "stale"}
        if not self._holds(kiosk, str(record_id)):
            return {"result": "refused", "reason": "forbidden"}
        if account.status != "pending":
            return {"result": "refused", "reason": "active"}
        registration_ids = [
            r.id
            for r in m.Registration.select(m.Registration.id).where(
                m.Registration.account_id == record_id
            )
        ]
        if registration_ids:
            m.AddressChange.delete().where(
                m.AddressChange.registration_id.in_(registration_ids)
            ).execute()
            m.Registration.delete().where(m.Registration.id.in_(registration_ids)).execute()
        m.Interest.delete().where(m.Interest.account_id == record_id).execute()
        m.Account.delete().where(m.Account.id == record_id).execute()
        m.Tombstone.insert(
            entity_id=record_id,
            entity="account",
            reason=reason or "deleted",
            kiosk_id=kiosk.id,
            deleted_at=now,
        ).on_conflict_ignore().execute()
        return {"result": "applied"}

    def _push_code(
        self,
        kiosk: KioskIdentity,
        record_id: uuid.UUID,
        version: int,
        data: Mapping[str, Any],
        now: datetime,
    ) -> dict:
        try:
            account_key = str(read_uuid(data.get("account_id"), "account_id"))
        except Invalid:
            account_key = None  # push_code says why
        holds = account_key is not None and self._holds(kiosk, account_key)
        return push_code(self.store, holds, record_id, version, data)

    # -- what every rule writes -----------------------------------------------------------

    def changed(self, entity: str, entity_id: object, account_id: object, now: datetime) -> None:
        """A row of the change feed: the kiosks that hold ``account_id`` pull the record."""
        self.db.execute_sql(
            self._sql["change"], (entity, str(entity_id), str(account_id), instant_text(now))
        )

    def close_conflict(self, conflict: Conflict, resolution: str, by: str, now: datetime) -> None:
        conflict.resolved_at, conflict.resolution, conflict.resolved_by = now, resolution, by
        conflict.save()

    # -- what the rules look at -----------------------------------------------------------

    def lock_address(self, email_key: str) -> None:
        """Hold the address until the transaction ends: its sign-ups, one at a time.
        (SQLite has one writer at a time already.)"""
        if self.store.postgresql:
            self.db.execute_sql(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (email_key,)
            )

    def email_owner(self, email_key: str) -> str | None:
        """The id of the account that has this address, if one has."""
        owner = self._one("email_owner", email_key)
        return None if owner is None else str(owner[0])

    def _one(self, name: str, *params: Any) -> tuple | None:
        return self.db.execute_sql(self._sql[name], params).fetchone()

    def _all(self, name: str, *params: Any) -> list[tuple]:
        return self.db.execute_sql(self._sql[name], params).fetchall()

    def _conflicts(self, entity_id: str) -> list[ConflictRow]:
        """The conflicts held for a record, open or not, oldest first."""
        return [ConflictRow(*row) for row in self._all("conflicts", entity_id)]

    def _holds(self, kiosk: KioskIdentity, account_id: str) -> bool:
        """The kiosk pushed the account first (``origin_kiosk_id``), or holds it in rc_interest."""
        account_id = str(account_id)
        return self._one("holds", account_id, kiosk.id, account_id, kiosk.id) is not None

    def _update_if_newer(
        self,
        model: type[Account] | type[Registration] | type[AddressChange],
        record_id: uuid.UUID,
        version: int,
        fields: dict,
    ) -> bool:
        """Update only while the stored version is lower: a concurrent push of a newer
        version (PostgreSQL waits on its row lock, then looks again) makes this stale."""
        updated = model.update(version=version, **fields).where(
            (model.id == record_id) & (model.version < version)
        )
        return updated.execute() == 1

    def _open_conflict_id(self, entity_id: str) -> str | None:
        open_ = [row for row in self._conflicts(str(entity_id)) if row.resolved_at is None]
        return str(open_[-1].id) if open_ else None

    def _conflict(
        self,
        kiosk: KioskIdentity,
        kind: str,
        entity: str,
        entity_id: uuid.UUID,
        version: int,
        data: Mapping[str, Any],
        existing_id: object,
        now: datetime,
    ) -> dict:
        """Keep the item aside: one open conflict per record and kiosk, holding its latest
        version."""
        m = self.store
        conflict = (
            m.Conflict.select()
            .where(
                (m.Conflict.entity_id == entity_id)
                & (m.Conflict.kiosk_id == kiosk.id)
                & m.Conflict.resolved_at.is_null()
            )
            .order_by(m.Conflict.created_at.desc())
            .first()
        )
        if conflict is not None:
            conflict.kind, conflict.version, conflict.incoming = kind, version, dict(data)
            conflict.existing_id, conflict.kiosk_id = str(existing_id), kiosk.id
            conflict.save()
        else:
            conflict = m.Conflict.create(
                kind=kind,
                entity=entity,
                entity_id=entity_id,
                version=version,
                incoming=dict(data),
                existing_id=str(existing_id),
                kiosk_id=kiosk.id,
                created_at=now,
            )
        log.info(
            "kiosk %s: %s %s kept as conflict %s (%s)",
            kiosk.name,
            entity,
            entity_id,
            conflict.id,
            kind,
        )
        return {"result": "conflict", "conflict": str(conflict.id), "kind": kind}

    def _supersede(self, conflicts: list[ConflictRow], kiosk: KioskIdentity, now: datetime) -> None:
        """A newer version applied: the kiosk's conflicts that held an older one are over
        (another kiosk's change stays for the exam office)."""
        m = self.store
        open_ids = [c.id for c in conflicts if c.resolved_at is None and c.kiosk_id == kiosk.id]
        if open_ids:
            m.Conflict.update(resolved_at=now, resolution="superseded", resolved_by="sync").where(
                m.Conflict.id.in_(open_ids)
            ).execute()
