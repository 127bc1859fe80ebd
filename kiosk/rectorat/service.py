"""The rectorat's sync service, plain Python: credentials, push, pull, login elsewhere,
and the exam office's setters. The HTTP layer (:mod:`kiosk.rectorat.api`) only parses
requests and calls these.

The contract is docs/sync-protocol.md. In short, each pushed item comes back as:

- ``applied``: inserted, or updated because its version is higher;
- ``stale``: the rectorat already has this version or a newer one (or deleted it);
- ``conflict``: kept in ``rc_conflict`` for the exam office, never an overwrite;
- ``refused``: never to be taken (``reason``: ``closed``, ``future``, ``session``,
  ``forbidden``, ``active``, ``invalid``, ``entity``).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import threading
import unicodedata
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from peewee import IntegrityError

from kiosk.accounts import email_key as normalise_email_key
from kiosk.accounts import login_delay
from kiosk.clock import Clock, instant_text
from kiosk.exam_sessions import ExamSession, SessionError, load_session
from kiosk.passwords import Hasher
from kiosk.rectorat.store import RectoratStore

log = logging.getLogger(__name__)

MAX_BATCH = 2000
FUTURE_TOLERANCE = timedelta(minutes=5)
DEFAULT_LIMIT = 500
MAX_LIMIT = 1000
ENTITIES = ("account", "registration", "address_change", "account_deletion")
PAPER_STATUSES = ("received", "complete", "incomplete", "validated")
RESOLUTIONS = ("keep_existing", "apply_incoming")
_KIOSK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_SESSION_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_NOT_ALNUM = re.compile(r"[^0-9a-z]+")
_TEXT_MAX = 1000
_PASSWORD_MAX = 4096


class CredentialError(ValueError):
    """A kiosk name that cannot be added, revoked or found."""


class LoginRefused(Exception):
    """``reason``: ``login`` (wrong address or password), ``locked`` (wait ``retry_after``
    seconds) or ``pending`` (right password, account not activated)."""

    def __init__(self, reason: str, retry_after: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class Invalid(ValueError):
    """A pushed item that cannot be read."""


@dataclass(frozen=True)
class Envelope:
    """What every pushed item carries, read and checked; its ``data`` is the entity's."""

    entity: str
    record_id: uuid.UUID
    version: int
    data: Mapping[str, Any]


def read_envelope(item: object) -> tuple[str, Envelope | dict]:
    """The item's id as answered, and its envelope, or the result that refuses it."""
    raw_id = item.get("id") if isinstance(item, Mapping) else None
    shown_id = raw_id if isinstance(raw_id, str) else str(raw_id)
    try:
        if not isinstance(item, Mapping):
            raise Invalid("an item is an object")
        entity = item.get("entity")
        record_id = _uuid(raw_id)
        shown_id = str(record_id)
        if entity not in ENTITIES:
            return shown_id, {"result": "refused", "reason": "entity"}
        version = item.get("version", 1 if entity == "account_deletion" else None)
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise Invalid("version is a positive integer")
        data = item.get("data") or {}
        if not isinstance(data, Mapping):
            raise Invalid("data is an object")
    except Invalid as problem:
        return shown_id, {"result": "refused", "reason": "invalid", "detail": str(problem)}
    return shown_id, Envelope(entity, record_id, version, data)


class ConflictNotApplied(ValueError):
    """``apply_incoming`` on a conflict whose item is still blocked (its e-mail is another
    account's, its account is missing…): nothing was changed."""


@dataclass(frozen=True)
class KioskIdentity:
    id: int
    name: str


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def identity_key(
    answers: Mapping[str, Any], family_name: str = "", given_names: str = ""
) -> str | None:
    """Family name, given names and birth date, normalised: how one person shows twice.

    ``None`` without a readable birth date: names alone would join different people.
    """
    global _parse_date
    if _parse_date is None:
        from kiosk.registration_form import parse_date as _parse_date
    birth = _parse_date(str(answers.get("birth_date") or ""))
    if birth is None:
        return None
    family = _plain_name(answers.get("family_name") or family_name)
    given = _plain_name(answers.get("given_names") or given_names)
    return f"{family}|{given}|{birth.isoformat()}"


_parse_date: Callable[[str], Any] | None = None  # kiosk.registration_form's, imported on first use


def _plain_name(text: object) -> str:
    text = str(text or "")
    if text.isascii():  # the common case, the same answer without the Unicode tables
        return _NOT_ALNUM.sub(" ", text.lower()).strip()
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _NOT_ALNUM.sub(" ", bare).strip()


def _academie_code(academie: str) -> str:
    plain = unicodedata.normalize("NFKD", academie)
    letters = "".join(c for c in plain if c.isascii() and c.isalpha()).upper()
    return letters[:2] or "XX"


# -- reading pushed data ----------------------------------------------------------------


def _uuid(value: object, what: str = "id") -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError, AttributeError):
        raise Invalid(f"{what} is not a UUID") from None


def _instant(data: Mapping[str, Any], key: str, *, null: bool = False) -> datetime | None:
    value = data.get(key)
    if value is None:
        if null:
            return None
        raise Invalid(f"{key} is missing")
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        raise Invalid(f"{key} is not an ISO 8601 instant") from None
    if moment.tzinfo is None:
        raise Invalid(f"{key} has no offset")
    return moment.astimezone(UTC)


def _text(data: Mapping[str, Any], key: str, *, maximum: int = _TEXT_MAX) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value or len(value) > maximum:
        raise Invalid(f"{key} is missing or not a text")
    return value


def _mapping(data: Mapping[str, Any], key: str) -> dict:
    value = data.get(key)
    if not isinstance(value, dict):
        raise Invalid(f"{key} is not an object")
    return value


def _account_fields(data: Mapping[str, Any], instant: Callable[..., Any] = _instant) -> dict:
    """An account's fields, checked; ``instant`` reads its instants (the bulk path keeps
    them as text, see :mod:`kiosk.rectorat.bulk`)."""
    fields = {
        "created_at": instant(data, "created_at"),
        "updated_at": instant(data, "updated_at"),
        "email": _text(data, "email", maximum=320),
        "email_key": normalise_email_key(_text(data, "email_key", maximum=320)),
        "family_name": _text(data, "family_name"),
        "given_names": _text(data, "given_names"),
        "password_hash": _text(data, "password_hash"),
        "status": _text(data, "status"),
        "activated_at": instant(data, "activated_at", null=True),
    }
    if fields["status"] not in ("pending", "active"):
        raise Invalid("status is pending or active")
    return fields


def _registration_fields(
    data: Mapping[str, Any],
    instant: Callable[..., Any] = _instant,
    identifier: Callable[..., Any] = _uuid,
) -> tuple[dict, str]:
    """A registration's fields, checked, and its status; ``instant`` and ``identifier``
    read instants and the account id (the bulk path keeps them as text)."""
    account_id = identifier(data.get("account_id"), "account_id")
    session_id = _text(data, "session_id", maximum=64)
    answers = _mapping(data, "answers")
    status = _text(data, "status")
    if status not in ("registered", "withdrawn", "set_aside"):
        raise Invalid("status is registered or withdrawn")
    fields = {
        "created_at": instant(data, "created_at"),
        "updated_at": instant(data, "updated_at"),
        "account_id": account_id,
        "session_id": session_id,
        "answers": answers,
        "saved_at": instant(data, "saved_at"),
        "withdrawn_at": instant(data, "withdrawn_at", null=True),
    }
    return fields, status


class RectoratService:
    """The rectorat's rules over its store, with the one clock."""

    def __init__(
        self,
        store: RectoratStore,
        clock: Clock,
        hasher: Hasher | None = None,
        session_loader: Callable[[str, Clock], ExamSession] = load_session,
    ) -> None:
        self.store = store
        self.db = store.db
        self.clock = clock
        self.hasher = hasher or Hasher()
        self._load_session = session_loader
        self._sessions: dict[str, ExamSession | None] = {}
        self._sessions_lock = threading.Lock()
        p = self.db.param
        self._sql = {
            "kiosk": f"SELECT id, token_sha256, revoked_at FROM rc_kiosk WHERE name = {p}",
            "account_version": f"SELECT version FROM rc_account WHERE id = {p}",
            "account_names": f"SELECT family_name, given_names FROM rc_account WHERE id = {p}",
            "email_owner": f"SELECT id FROM rc_account WHERE email_key = {p}",
            "registration_row": f"SELECT version, account_id, session_id, status FROM rc_registration WHERE id = {p}",
            "address_change_row": f"SELECT version, registration_id FROM rc_address_change WHERE id = {p}",
            "same_session": f"SELECT id, identity_key, account_id FROM rc_registration"
            f" WHERE session_id = {p} AND id <> {p} AND (identity_key = {p} OR account_id = {p})",
            "tombstone": f"SELECT 1 FROM rc_tombstone WHERE entity_id = {p}",
            "conflicts": f"SELECT id, version, resolved_at FROM rc_conflict WHERE entity_id = {p} ORDER BY created_at",
            "holds": f"SELECT 1 FROM rc_account WHERE id = {p} AND origin_kiosk_id = {p}"
            f" UNION ALL SELECT 1 FROM rc_interest WHERE account_id = {p} AND kiosk_id = {p}",
            "hold": f"INSERT INTO rc_interest (kiosk_id, account_id, created_at) VALUES ({p}, {p}, {p})"
            " ON CONFLICT DO NOTHING",
            "change": f"INSERT INTO rc_change (entity, entity_id, account_id, created_at) VALUES ({p}, {p}, {p}, {p})",
            "next_number": f"INSERT INTO rc_counter (prefix, last) VALUES ({p}, 1)"
            " ON CONFLICT (prefix) DO UPDATE SET last = rc_counter.last + 1 RETURNING last",
        }
        if store.postgresql:
            # A sequence is never locked for a transaction's length: concurrent pushes
            # number their registrations without waiting on one another.
            self._sql["next_number"] = "SELECT nextval('rc_registration_number')"
        from kiosk.rectorat.bulk import BatchPath  # it builds on this module's readers

        self._batch = BatchPath(self)

    # -- credentials ----------------------------------------------------------------------

    def issue_credential(self, name: str, now: datetime | None = None) -> str:
        """A new kiosk's token (shown once; only its SHA-256 is kept). A revoked kiosk
        may be issued a new one under its name: it keeps its candidates."""
        if not _KIOSK_NAME.fullmatch(name or ""):
            raise CredentialError(
                "a kiosk name is 1 to 64 letters, digits, dots, dashes or underscores"
            )
        now = now or self.clock.now()
        token = secrets.token_urlsafe(32)
        Kiosk = self.store.Kiosk
        with self.store.write():
            kiosk = Kiosk.get_or_none(Kiosk.name == name)
            if kiosk is None:
                Kiosk.create(name=name, token_sha256=token_digest(token), created_at=now)
            elif kiosk.revoked_at is None:
                raise CredentialError(f"kiosk {name} already has a credential: revoke it first")
            else:
                kiosk.token_sha256 = token_digest(token)
                kiosk.revoked_at = None
                kiosk.save()
        return token

    def revoke_credential(self, name: str, now: datetime | None = None) -> None:
        now = now or self.clock.now()
        Kiosk = self.store.Kiosk
        with self.store.write():
            kiosk = Kiosk.get_or_none(Kiosk.name == name)
            if kiosk is None:
                raise CredentialError(f"no kiosk named {name}")
            if kiosk.revoked_at is None:
                kiosk.revoked_at = now
                kiosk.save()

    def kiosks(self) -> list[tuple[str, datetime, datetime | None]]:
        """(name, created_at, revoked_at) of every kiosk, by name."""
        Kiosk = self.store.Kiosk
        return [(k.name, k.created_at, k.revoked_at) for k in Kiosk.select().order_by(Kiosk.name)]

    def authenticate(self, name: str, token: str) -> KioskIdentity | None:
        """The kiosk whose credential this is, or ``None`` (unknown, wrong or revoked)."""
        # Every request asks: plain SQL (peewee's query building cost more than the query).
        kiosk = (
            self._one("kiosk", name) if _KIOSK_NAME.fullmatch(name or "") else None
        )  # id, digest, revoked
        digest = token_digest(token or "")
        if kiosk is None:
            hmac.compare_digest(digest, digest)
            return None
        if not hmac.compare_digest(digest, kiosk[1]) or kiosk[2] is not None:
            return None
        return KioskIdentity(kiosk[0], name)

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
            if len(self._sessions) < 1000:
                self._sessions[session_id] = found
        return found

    # -- push -----------------------------------------------------------------------------

    def push(
        self, kiosk: KioskIdentity, items: list[Mapping[str, Any]], now: datetime | None = None
    ) -> list[dict]:
        """Apply a batch in one transaction; one result per item, in order.

        Set-based (:mod:`kiosk.rectorat.bulk`): the common items (a new account, a new
        registration whose account is known and held) are decided in Python against a
        view of the store read in one statement and written with one bulk statement a
        table. Anything else (updates, conflicts, deletions, address changes…) ends that
        run and goes through the per-item path, which looks at the database again; a
        new run starts after it.
        """
        if len(items) > MAX_BATCH:
            raise ValueError(f"at most {MAX_BATCH} items a batch")
        now = now or self.clock.now()
        results: list[dict | None] = [None] * len(items)
        with self.store.write():
            i = 0
            slow_count = 0
            while i < len(items):
                if slow_count > 20:
                    for j in range(i, len(items)):
                        results[j] = self._push_item(kiosk, items[j], now)
                    break
                i = self._batch.run(kiosk, items, i, now, results)
                if i < len(items):
                    results[i] = self._push_item(kiosk, items[i], now)
                    slow_count += 1
                    i += 1
        return results  # type: ignore[return-value]

    def _push_item(self, kiosk: KioskIdentity, item: Mapping[str, Any], now: datetime) -> dict:
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
            handler = getattr(self, f"_push_{read.entity}")
            for attempt in (1, 2):
                try:
                    with self.db.atomic():
                        result = handler(kiosk, read.record_id, read.version, read.data, now)
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

    # Each handler returns the result without the id, inside its own savepoint. The
    # checks on the hot path are plain SQL prepared once: peewee's query building costs
    # more than the queries themselves.

    def _one(self, name: str, *params: Any) -> tuple | None:
        return self.db.execute_sql(self._sql[name], params).fetchone()

    def _all(self, name: str, *params: Any) -> list[tuple]:
        return self.db.execute_sql(self._sql[name], params).fetchall()

    def _push_account(self, kiosk, record_id, version, data, now) -> dict:
        m = self.store
        fields = _account_fields(data)
        key = str(record_id)
        existing = self._one("account_version", key)
        if existing is None:
            if self._one("tombstone", key) is not None:
                return {"result": "stale"}
        else:
            if not self._holds(kiosk, key):
                return {"result": "refused", "reason": "forbidden"}
            if version <= existing[0]:
                return {"result": "stale"}
        conflicts = self._all("conflicts", key)
        if any(held_version >= version for _, held_version, _ in conflicts):
            return {"result": "stale"}  # a replay of what a conflict holds
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
        self._changed("account", key, key, now)
        self._supersede(conflicts, now)
        return {"result": "applied"}

    def _push_registration(self, kiosk, record_id, version, data, now) -> dict:
        m = self.store
        fields, status = _registration_fields(data)
        account_id, session_id, answers = (
            fields["account_id"],
            fields["session_id"],
            fields["answers"],
        )
        key, account_key = str(record_id), str(account_id)
        existing = self._one("registration_row", key)  # version, account_id, session_id, status
        if existing is not None:
            if not self._holds(kiosk, existing[1]):
                return {"result": "refused", "reason": "forbidden"}
            if existing[1] != account_key or existing[2] != session_id:
                raise Invalid("a registration keeps its account and session")
            if version <= existing[0]:
                return {"result": "stale"}
        elif self._one("tombstone", key) is not None:
            return {"result": "stale"}
        conflicts = self._all("conflicts", key)
        if any(held_version >= version for _, held_version, _ in conflicts):
            return {"result": "stale"}
        session = self.session(session_id)
        if session is None:
            return {"result": "refused", "reason": "session"}
        # The kiosk's own clock dates the change: a save, or a withdrawal.
        acted_at = max(fields["saved_at"], fields["withdrawn_at"] or fields["saved_at"])
        if acted_at >= session.closes:
            return {"result": "refused", "reason": "closed"}
        if acted_at > now + FUTURE_TOLERANCE:
            return {"result": "refused", "reason": "future"}
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
        if existing is not None and existing[3] == "set_aside":
            fields["status"], fields["identity_key"] = "set_aside", None
        else:
            fields["status"] = (
                status if status != "set_aside" else (existing[3] if existing else "registered")
            )
            fields["identity_key"] = identity_key(answers, names[0], names[1])
        same_person = same_account = None
        for other_id, other_identity, other_account in self._all(
            "same_session", session_id, key, fields["identity_key"], account_key
        ):
            if fields["identity_key"] is not None and other_identity == fields["identity_key"]:
                same_person = other_id
            elif other_account == account_key:
                same_account = other_id
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
            number = self._next_number(session)
            m.Registration.insert(
                id=record_id, version=version, received_at=now, number=number, **fields
            ).execute()
        elif not self._update_if_newer(m.Registration, record_id, version, fields):
            return {"result": "stale"}
        self._changed("registration", key, account_key, now)
        self._supersede(conflicts, now)
        return {"result": "applied"}

    def _push_address_change(self, kiosk, record_id, version, data, now) -> dict:
        m = self.store
        registration_id = _uuid(data.get("registration_id"), "registration_id")
        created_at = _instant(data, "created_at")
        fields = {
            "created_at": created_at,
            "updated_at": _instant(data, "updated_at", null=True) or created_at,
            "registration_id": registration_id,
            "address": _mapping(data, "address"),
        }
        key, registration_key = str(record_id), str(registration_id)
        registration = self._one("registration_row", registration_key)  # version, account_id, …
        existing = self._one("address_change_row", key)  # version, registration_id
        if existing is not None:
            if existing[1] != registration_key:
                raise Invalid("an address change keeps its registration")
            if registration is not None and not self._holds(kiosk, registration[1]):
                return {"result": "refused", "reason": "forbidden"}
            if version <= existing[0]:
                return {"result": "stale"}
        conflicts = self._all("conflicts", key)
        if any(held_version >= version for _, held_version, _ in conflicts):
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
        if not self._holds(kiosk, registration[1]):
            return {"result": "refused", "reason": "forbidden"}
        if existing is None:
            m.AddressChange.insert(
                id=record_id, version=version, received_at=now, **fields
            ).execute()
        elif not self._update_if_newer(m.AddressChange, record_id, version, fields):
            return {"result": "stale"}
        self._changed("address_change", key, registration[1], now)
        self._supersede(conflicts, now)
        return {"result": "applied"}

    def _push_account_deletion(self, kiosk, record_id, version, data, now) -> dict:
        m = self.store
        reason = str(data.get("reason") or "")[:100]
        account = m.Account.get_or_none(m.Account.id == record_id)
        if account is None:
            # Gone already, or never taken: a conflict held for it is settled by the kiosk.
            for conflict in m.Conflict.select().where(
                (m.Conflict.entity_id == record_id)
                & m.Conflict.resolved_at.is_null()
                & (m.Conflict.kiosk_id == kiosk.id)
            ):
                self._close_conflict(conflict, "withdrawn_by_kiosk", f"kiosk:{kiosk.name}", now)
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

    # -- push helpers ---------------------------------------------------------------------

    def _holds(self, kiosk: KioskIdentity, account_id: str) -> bool:
        """The kiosk pushed the account first (``origin_kiosk_id``), or holds it in rc_interest."""
        account_id = str(account_id)
        return self._one("holds", account_id, kiosk.id, account_id, kiosk.id) is not None

    def _hold(self, kiosk: KioskIdentity, account_id: str, now: datetime) -> None:
        self.db.execute_sql(self._sql["hold"], (kiosk.id, str(account_id), instant_text(now)))

    def _update_if_newer(self, model, record_id: uuid.UUID, version: int, fields: dict) -> bool:
        """Update only while the stored version is lower: a concurrent push of a newer
        version (PostgreSQL waits on its row lock, then looks again) makes this stale."""
        updated = model.update(version=version, **fields).where(
            (model.id == record_id) & (model.version < version)
        )
        return updated.execute() == 1

    def _changed(self, entity: str, entity_id, account_id, now: datetime) -> None:
        self.db.execute_sql(
            self._sql["change"], (entity, str(entity_id), str(account_id), instant_text(now))
        )

    def _open_conflict_id(self, entity_id: str) -> str | None:
        open_ = [row for row in self._all("conflicts", str(entity_id)) if row[2] is None]
        return str(open_[-1][0]) if open_ else None

    def _conflict(self, kiosk, kind, entity, entity_id, version, data, existing_id, now) -> dict:
        """Keep the item aside: one open conflict per record, holding its latest version."""
        m = self.store
        conflict = (
            m.Conflict.select()
            .where((m.Conflict.entity_id == entity_id) & m.Conflict.resolved_at.is_null())
            .order_by(m.Conflict.created_at.desc())
            .first()
        )
        if conflict is not None:
            conflict.kind, conflict.version, conflict.incoming = kind, version, dict(data)
            conflict.existing_id, conflict.kiosk_id = str(existing_id), kiosk.id
            conflict.save()
        else:
            conflict = m.Conflict.create(
                kind=kind, entity=entity, entity_id=entity_id, version=version, incoming=dict(data),
                existing_id=str(existing_id), kiosk_id=kiosk.id, created_at=now,
            )  # fmt: skip
        log.info(
            "kiosk %s: %s %s kept as conflict %s (%s)",
            kiosk.name,
            entity,
            entity_id,
            conflict.id,
            kind,
        )
        return {"result": "conflict", "conflict": str(conflict.id)}

    def _supersede(self, conflicts: list[tuple], now: datetime) -> None:
        """A newer version applied: the conflicts that held an older one are over."""
        m = self.store
        open_ids = [conflict_id for conflict_id, _, resolved_at in conflicts if resolved_at is None]
        if open_ids:
            m.Conflict.update(resolved_at=now, resolution="superseded", resolved_by="sync").where(
                m.Conflict.id.in_(open_ids)
            ).execute()

    def _close_conflict(self, conflict, resolution: str, by: str, now: datetime) -> None:
        conflict.resolved_at, conflict.resolution, conflict.resolved_by = now, resolution, by
        conflict.save()

    def _next_number(self, session: ExamSession) -> str:
        """The next number under the session's year and académie: ``2020-PO-000042``.

        SQLite: one counter per prefix, so numbers follow on. PostgreSQL: one sequence
        for all, which no transaction holds: numbers are unique and rising, and may skip.
        """
        prefix = f"{session.year}-{_academie_code(session.academie)}"
        n = (
            self._one("next_number")[0]
            if self.store.postgresql
            else self._one("next_number", prefix)[0]
        )
        return f"{prefix}-{n:06d}"

    # -- pull -----------------------------------------------------------------------------

    def sequence(self) -> int:
        return self.store.sequence()

    def changes(self, kiosk: KioskIdentity, after: int = 0, limit: int = DEFAULT_LIMIT) -> dict:
        """The kiosk's changes numbered after ``after``, in order, and the cursor to keep.

        When fewer than ``limit`` come back, ``last`` moves to the top of the feed: the
        changes of others up to there need not be looked through again.
        """
        m = self.store
        limit = max(1, min(int(limit), MAX_LIMIT))
        after = max(0, int(after))
        self.store.sequence()
        # Read the top first: every number up to it is committed, so the page below,
        # bounded by it, is complete.
        top = self.store.last_seq()
        borrowed = m.Interest.select(m.Interest.account_id).where(m.Interest.kiosk_id == kiosk.id)
        pushed = m.Account.select(m.Account.id).where(m.Account.origin_kiosk_id == kiosk.id)
        held = m.Change.account_id.in_(pushed) | m.Change.account_id.in_(borrowed)
        rows = list(
            m.Change.select()
            .where((m.Change.seq > after) & (m.Change.seq <= top) & held)
            .order_by(m.Change.seq)
            .limit(limit)
        )
        records = self._records(rows)
        changes = []
        for row in rows:
            record = records.get((row.entity, row.entity_id))
            if record is not None:  # deleted since: nothing to send
                changes.append({"seq": row.seq, **record})
        last = rows[-1].seq if len(rows) == limit else max(after, top)
        return {"changes": changes, "last": last}

    def _records(self, rows) -> dict[tuple[str, uuid.UUID], dict]:
        m = self.store
        wanted: dict[str, set[uuid.UUID]] = {}
        for row in rows:
            wanted.setdefault(row.entity, set()).add(row.entity_id)
        found: dict[tuple[str, uuid.UUID], dict] = {}
        models = {
            "account": m.Account,
            "registration": m.Registration,
            "address_change": m.AddressChange,
        }
        for entity, ids in wanted.items():
            model = models[entity]
            for record in model.select().where(model.id.in_(list(ids))):
                found[(entity, record.id)] = record_item(entity, record)
        return found

    # -- login elsewhere ------------------------------------------------------------------

    def login(
        self, kiosk: KioskIdentity, email_key: str, password: str, now: datetime | None = None
    ) -> dict:
        """The account and its registrations, for a candidate whose account was made at
        another kiosk; records the kiosk's interest. Raises :class:`LoginRefused`."""
        m = self.store
        now = now or self.clock.now()
        if (
            not isinstance(email_key, str)
            or not isinstance(password, str)
            or len(password) > _PASSWORD_MAX
        ):
            raise LoginRefused("login")
        key = normalise_email_key(email_key.strip()) if 0 < len(email_key) <= 320 else None
        account = m.Account.get_or_none(m.Account.email_key == key) if key else None
        if account is not None and account.locked_until and account.locked_until > now:
            wait = account.locked_until - now
            raise LoginRefused("locked", retry_after=max(1, int(wait.total_seconds() + 0.999)))
        if account is None:
            self.hasher.waste_time(password)
            raise LoginRefused("login")
        if not self.hasher.verify(account.password_hash, password):
            with self.store.write():
                m.Account.update(failed_logins=m.Account.failed_logins + 1).where(
                    m.Account.id == account.id
                ).execute()
                failures = m.Account.get_by_id(account.id).failed_logins
                delay = login_delay(failures)
                locked_until = now + delay if delay else None
                m.Account.update(locked_until=locked_until).where(
                    m.Account.id == account.id
                ).execute()
            raise LoginRefused("login")
        if account.status != "active":
            raise LoginRefused("pending")
        with self.store.write():
            m.Account.update(failed_logins=0, locked_until=None).where(
                m.Account.id == account.id
            ).execute()
            self._hold(kiosk, account.id, now)
            account = m.Account.get_by_id(account.id)
            registrations = list(
                m.Registration.select()
                .where(m.Registration.account_id == account.id)
                .order_by(m.Registration.created_at)
            )
        log.info("kiosk %s borrowed account %s for a login", kiosk.name, account.id)
        return {
            "account": flat_record("account", account),
            "registrations": [flat_record("registration", r) for r in registrations],
        }

    # -- the exam office ------------------------------------------------------------------

    def set_paper_status(
        self, registration_id: uuid.UUID | str, status: str | None, missing: list[str] | None = None,
        now: datetime | None = None,
    ) -> None:  # fmt: skip
        """What the exam office made of the paper file; the kiosk shows it."""
        if status is not None and status not in PAPER_STATUSES:
            raise ValueError(f"paper status is one of {', '.join(PAPER_STATUSES)}")
        if missing is not None and (
            not isinstance(missing, list) or not all(isinstance(p, str) for p in missing)
        ):
            raise ValueError("missing pieces are a list of texts")
        self._set_registration(
            registration_id, {"paper_status": status, "missing_pieces": missing}, now
        )

    def set_aside(self, registration_id: uuid.UUID | str, now: datetime | None = None) -> None:
        """Set a registration aside: it no longer counts, and no kiosk can lift it."""
        self._set_registration(registration_id, {"status": "set_aside", "identity_key": None}, now)

    def _set_registration(self, registration_id, fields: dict, now: datetime | None) -> None:
        m = self.store
        now = now or self.clock.now()
        registration_id = _uuid(registration_id, "registration_id")
        with self.store.write():
            registration = m.Registration.get_or_none(m.Registration.id == registration_id)
            if registration is None:
                raise LookupError(f"no registration {registration_id}")
            m.Registration.update(**fields).where(m.Registration.id == registration_id).execute()
            self._changed("registration", registration_id, registration.account_id, now)

    def correct_identity(
        self,
        registration_id: uuid.UUID | str,
        identity: Mapping[str, str],
        now: datetime | None = None,
    ) -> None:
        """The exam office corrects a registration's locked identity: a new version, which
        the kiosks pull; refused (``IntegrityError``) when it would make one person twice."""
        m = self.store
        now = now or self.clock.now()
        registration_id = _uuid(registration_id, "registration_id")
        with self.store.write():
            registration = m.Registration.get_or_none(m.Registration.id == registration_id)
            if registration is None:
                raise LookupError(f"no registration {registration_id}")
            answers = {**registration.answers, **identity}
            fields = {"answers": answers, "version": registration.version + 1, "updated_at": now}
            if registration.status != "set_aside":
                fields["identity_key"] = identity_key(answers)
            m.Registration.update(**fields).where(m.Registration.id == registration_id).execute()
            m.Account.update(
                family_name=identity["family_name"], given_names=identity["given_names"],
                version=m.Account.version + 1, updated_at=now,
            ).where(m.Account.id == registration.account_id).execute()  # fmt: skip
            self._changed("registration", registration_id, registration.account_id, now)
            self._changed("account", registration.account_id, registration.account_id, now)

    def lift_login_delay(self, account_id: uuid.UUID | str) -> bool:
        """Forget an account's failed logins elsewhere; whether there was anything to lift."""
        m = self.store
        with self.store.write():
            return bool(
                m.Account.update(failed_logins=0, locked_until=None)
                .where(
                    (m.Account.id == _uuid(account_id, "account_id"))
                    & (m.Account.failed_logins > 0)
                )
                .execute()
            )

    def conflicts(self, *, open_only: bool = True) -> list:
        m = self.store
        query = m.Conflict.select().order_by(m.Conflict.created_at)
        if open_only:
            query = query.where(m.Conflict.resolved_at.is_null())
        return list(query)

    def resolve_conflict(
        self,
        conflict_id: uuid.UUID | str,
        resolution: str,
        *,
        by: str = "",
        now: datetime | None = None,
    ) -> dict:
        """Settle a conflict: ``keep_existing`` (the incoming item stays in the conflict,
        unapplied) or ``apply_incoming``. Applying a registration held for the same
        person sets the existing one aside first; an account held for its e-mail is
        applied only once that e-mail is free. Returns the push result of the apply."""
        m = self.store
        if resolution not in RESOLUTIONS:
            raise ValueError(f"a resolution is one of {', '.join(RESOLUTIONS)}")
        now = now or self.clock.now()
        conflict_id = _uuid(conflict_id, "conflict")
        with self.store.write():
            conflict = m.Conflict.get_or_none(m.Conflict.id == conflict_id)
            if conflict is None:
                raise LookupError(f"no conflict {conflict_id}")
            if conflict.resolved_at is not None:
                raise ValueError(
                    f"conflict {conflict_id} was resolved already ({conflict.resolution})"
                )
            who = by or "exam_office"
            if resolution == "keep_existing":
                self._close_conflict(conflict, resolution, who, now)
                return {"result": "kept"}
            if (
                conflict.entity == "registration"
                and conflict.kind == "identity"
                and conflict.existing_id
            ):
                existing = m.Registration.get_or_none(
                    m.Registration.id == _uuid(conflict.existing_id)
                )
                if existing is not None and existing.status != "set_aside":
                    m.Registration.update(status="set_aside", identity_key=None).where(
                        m.Registration.id == existing.id
                    ).execute()
                    self._changed("registration", existing.id, existing.account_id, now)
            kiosk_row = m.Kiosk.get_by_id(conflict.kiosk_id)
            kiosk = KioskIdentity(kiosk_row.id, kiosk_row.name)
            version = conflict.version
            # Set the conflict apart while its item is applied as if the kiosk pushed it
            # again (same checks, same rights); any failure below undoes all of this.
            conflict.version = 0
            conflict.save()
            handler = getattr(self, f"_push_{conflict.entity}")
            outcome = handler(kiosk, conflict.entity_id, version, conflict.incoming, now)
            if outcome["result"] != "applied":
                raise ConflictNotApplied(f"conflict {conflict_id} cannot be applied yet: {outcome}")
            conflict = m.Conflict.get_by_id(conflict_id)
            conflict.version = version
            self._close_conflict(conflict, resolution, who, now)
        return outcome


# -- what the feed and the login send -----------------------------------------------------


def record_item(entity: str, record) -> dict:
    """A feed item ``{"entity", "id", "version", "data"}``: ``data`` as a kiosk pushes it,
    plus ``version`` again and, for a registration, the rectorat's fields."""
    if entity == "account":
        data = {
            "created_at": instant_text(record.created_at),
            "updated_at": instant_text(record.updated_at),
            "email": record.email,
            "email_key": record.email_key,
            "family_name": record.family_name,
            "given_names": record.given_names,
            "password_hash": record.password_hash,
            "status": record.status,
            "activated_at": instant_text(record.activated_at),
        }
    elif entity == "registration":
        data = {
            "created_at": instant_text(record.created_at),
            "updated_at": instant_text(record.updated_at),
            "account_id": str(record.account_id),
            "session_id": record.session_id,
            "answers": record.answers,
            "status": record.status,
            "saved_at": instant_text(record.saved_at),
            "withdrawn_at": instant_text(record.withdrawn_at),
            "number": record.number,
            "paper_status": record.paper_status,
            "missing_pieces": record.missing_pieces,
        }
    else:
        data = {
            "created_at": instant_text(record.created_at),
            "updated_at": instant_text(record.updated_at),
            "registration_id": str(record.registration_id),
            "address": record.address,
        }
    data["version"] = record.version
    return {"entity": entity, "id": str(record.id), "version": record.version, "data": data}


def flat_record(entity: str, record) -> dict:
    """A record as the login answer gives it: ``{"id", "version", …data}``."""
    item = record_item(entity, record)
    return {"id": item["id"], **item["data"]}
