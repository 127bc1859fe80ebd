"""What the rectorat sends the kiosks: the change feed they pull, and the account a
kiosk borrows when its candidate logs in there with an account made at another kiosk.

The feed is ``rc_change``, numbered in commit order by the store's sequencer: a kiosk
keeps a cursor and pulls the changes after it, of the accounts it holds. A login
elsewhere makes the kiosk hold the account from then on (``rc_interest``); its failures
delay that kiosk only, for that address (:class:`~kiosk.rectorat.limits.LoginFailures`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any, NamedTuple

import orjson

from kiosk.accounts import email_key as normalise_email_key
from kiosk.clock import Clock, instant_text
from kiosk.passwords import Hasher
from kiosk.rectorat.items import EMAIL_MAX
from kiosk.rectorat.kiosks import KioskIdentity
from kiosk.rectorat.limits import LoginFailures
from kiosk.rectorat.store import RectoratStore

log = logging.getLogger(__name__)

DEFAULT_LIMIT = 500
MAX_LIMIT = 1000
MAX_CURSOR = 2**63 - 1
"""The highest ``after``: ``seq`` is a 64-bit signed integer."""
PASSWORD_MAX = 4096


class _ChangeRow(NamedTuple):
    seq: int
    entity: str
    entity_id: str


class LoginRefused(Exception):
    """``reason``: ``login`` (wrong address or password), ``locked`` (wait ``retry_after``
    seconds) or ``pending`` (right password, account not activated)."""

    def __init__(self, reason: str, retry_after: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class Feed:
    """The feed and the login elsewhere over one store."""

    def __init__(self, store: RectoratStore, clock: Clock, hasher: Hasher) -> None:
        self.store = store
        self.db = store.db
        self.clock = clock
        self.hasher = hasher
        self.failures = LoginFailures()
        p = self.db.param
        # The accounts a kiosk pushed first: one range of the index on (origin_kiosk_id,
        # seq). Those it borrowed (few): one range of (account_id, seq) each. Either way
        # the cost follows the page and the borrowed accounts, never the feed's history.
        if store.postgresql:
            # The kiosk's own range is read from the index on (origin_kiosk_id, seq), as
            # ordered: its origin is bounded on both sides rather than equal, so that no other
            # index gives that order (an equality would let the planner walk the index on seq
            # alone, filtering the whole history, when it deems the kiosk's rows common).
            # Typed parameters: the plan does not depend on how the driver sends a number.
            self._page_sql = (
                "SELECT seq, entity, entity_id FROM ((SELECT seq, entity, entity_id"
                " FROM rc_change WHERE origin_kiosk_id >= %s::integer"
                " AND origin_kiosk_id <= %s::integer AND seq > %s::bigint AND seq <= %s::bigint"
                " ORDER BY origin_kiosk_id, seq LIMIT %s::integer)"
                " UNION (SELECT c.seq, c.entity, c.entity_id FROM rc_interest CROSS JOIN LATERAL"
                " (SELECT seq, entity, entity_id FROM rc_change"
                " WHERE rc_change.account_id = rc_interest.account_id AND seq > %s::bigint"
                " AND seq <= %s::bigint ORDER BY seq LIMIT %s::integer) AS c"
                " WHERE rc_interest.kiosk_id = %s::integer)) AS page ORDER BY seq LIMIT %s::integer"
            )
        else:
            self._page_sql = (
                "SELECT seq, entity, entity_id FROM (SELECT seq, entity, entity_id"
                " FROM rc_change INDEXED BY change_origin_kiosk_id_seq"
                f" WHERE origin_kiosk_id = {p} AND seq > {p} AND seq <= {p}"
                f" ORDER BY seq LIMIT {p})"
                " UNION SELECT seq, entity, entity_id FROM (SELECT seq, entity, entity_id"
                " FROM rc_change INDEXED BY change_account_id_seq WHERE account_id IN"
                f" (SELECT account_id FROM rc_interest WHERE kiosk_id = {p})"
                f" AND seq > {p} AND seq <= {p} ORDER BY seq LIMIT {p})"
                f" ORDER BY seq LIMIT {p}"
            )
        # A page's records, read as the store keeps them: ids and instants are the wire's
        # texts already, so a page of 1,000 costs no model, no datetime, no UUID.
        self._records_sql = {
            entity: (
                f"SELECT {', '.join(columns)} FROM {table} WHERE id = ANY(%s::text[])"
                if store.postgresql
                else f"SELECT {', '.join(columns)} FROM {table} WHERE id IN (SELECT value FROM"
                f" json_each({p}))"
            )
            for entity, (table, columns) in _RECORD_COLUMNS.items()
        }
        self._hold_sql = (
            f"INSERT INTO rc_interest (kiosk_id, account_id, created_at) VALUES ({p}, {p}, {p})"
            " ON CONFLICT DO NOTHING"
        )

    # -- pull -----------------------------------------------------------------------------

    def sequence(self) -> int:
        return self.store.sequence()

    def changes(self, kiosk: KioskIdentity, after: int = 0, limit: int = DEFAULT_LIMIT) -> dict:
        """The kiosk's changes numbered after ``after``, in order, and the cursor to keep.

        When fewer than ``limit`` come back, ``last`` moves to the top of the feed: the
        changes of others up to there need not be looked through again.
        """
        limit = max(1, min(int(limit), MAX_LIMIT))
        after = min(max(0, int(after)), MAX_CURSOR)
        # Read the top first: every number up to it is committed, so the page below,
        # bounded by it, is complete. Number what waits, unless another round is at it:
        # pulls never queue on its lock.
        top, waiting = self.store.head()
        if waiting:  # numbered now, or by the round that holds the lock: the top again
            self.store.sequence(wait=False)
            top = self.store.last_seq()
        if top <= after:  # nothing new in the whole feed: no need to look at holdings
            return {"changes": [], "last": after}
        params: tuple[int, ...]
        if self.store.postgresql:
            params = (kiosk.id, kiosk.id, after, top, limit, after, top, limit, kiosk.id, limit)
        else:
            params = (kiosk.id, after, top, limit, kiosk.id, after, top, limit, limit)
        rows = [_ChangeRow(*row) for row in self.db.execute_sql(self._page_sql, params).fetchall()]
        records = self._records(rows)
        changes = []
        for row in rows:
            record = records.get((row.entity, row.entity_id))
            if record is not None:  # deleted since: nothing to send
                changes.append({"seq": row.seq, **record})
        last = rows[-1].seq if len(rows) == limit else max(after, top)
        return {"changes": changes, "last": last}

    def _records(self, rows: Iterable[_ChangeRow]) -> dict[tuple[str, str], dict]:
        """The feed item of each change's record that still exists, by (entity, id)."""
        wanted: dict[str, set[str]] = {}
        for row in rows:
            wanted.setdefault(row.entity, set()).add(row.entity_id)
        found: dict[tuple[str, str], dict] = {}
        for entity, ids in wanted.items():
            # Ids as one text[] literal (canonical UUIDs need no quoting) or one JSON array.
            listed = "{" + ",".join(ids) + "}" if self.store.postgresql else orjson.dumps(list(ids))
            make = _ITEM_MAKERS[entity]
            for values in self.db.execute_sql(self._records_sql[entity], (listed,)).fetchall():
                found[(entity, values[0])] = make(values)
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
            or len(password) > PASSWORD_MAX
        ):
            raise LoginRefused("login")
        readable = 0 < len(email_key) <= EMAIL_MAX and "\x00" not in email_key
        key = normalise_email_key(email_key.strip()) if readable else None
        # The delay is this kiosk's for this address, account or not: checked before any
        # hash; the same answer whether the address has an account or not.
        counted = key or email_key[:EMAIL_MAX]
        account = m.Account.get_or_none(m.Account.email_key == key) if key else None
        if account is not None and account.failed_logins == 0:
            # Every failure here also counts in the store: none there means the delay was
            # lifted since (by the exam office's console, another process) or the owner
            # logged in. This process's count for the address at this kiosk is over.
            self.failures.succeeded(kiosk.id, counted)
        wait = self.failures.wait(kiosk.id, counted, now)
        if wait:
            raise LoginRefused("locked", retry_after=wait)
        if account is None:
            self.hasher.waste_time(password)
            self.failures.failed(kiosk.id, counted, now)
            raise LoginRefused("login")
        if not self.hasher.verify(account.password_hash, password):
            self.failures.failed(kiosk.id, counted, now)
            with self.store.write():  # what the staff console shows; it locks nothing
                m.Account.update(failed_logins=m.Account.failed_logins + 1).where(
                    m.Account.id == account.id
                ).execute()
            raise LoginRefused("login")
        if account.status != "active":
            raise LoginRefused("pending")
        self.failures.succeeded(kiosk.id, counted)
        with self.store.write():
            m.Account.update(failed_logins=0, locked_until=None).where(
                m.Account.id == account.id
            ).execute()
            lent = self.lend(kiosk, account.id, now)
        log.info("kiosk %s borrowed account %s for a login", kiosk.name, account.id)
        return lent

    def lend(self, kiosk: KioskIdentity, account_id: object, now: datetime) -> dict:
        """The account and its registrations, for a kiosk that holds it from now on (its
        candidate proved it theirs there: a password, an activation code)."""
        m = self.store
        with self.store.write():
            self._hold(kiosk, account_id, now)
            account = m.Account.get_by_id(account_id)
            registrations = list(
                m.Registration.select()
                .where(m.Registration.account_id == account.id)
                .order_by(m.Registration.created_at)
            )
            documents = list(
                m.Document.select()
                .where(m.Document.account_id == account.id)
                .order_by(m.Document.created_at)
            )
        return {
            "account": flat_record("account", account),
            "registrations": [flat_record("registration", r) for r in registrations],
            "documents": [flat_record("document", d) for d in documents],
        }

    def _hold(self, kiosk: KioskIdentity, account_id: object, now: datetime) -> None:
        """The kiosk holds the account from now on: the feed sends it its changes."""
        self.db.execute_sql(self._hold_sql, (kiosk.id, str(account_id), instant_text(now)))


# -- what the feed and the login send -----------------------------------------------------

_RECORD_COLUMNS = {
    "account": ("rc_account", (
        "id", "version", "created_at", "updated_at", "email", "email_key", "family_name",
        "given_names", "password_hash", "status", "activated_at", "language",
    )),
    "registration": ("rc_registration", (
        "id", "version", "created_at", "updated_at", "account_id", "session_id", "answers",
        "status", "saved_at", "withdrawn_at", "number", "paper_status", "missing_pieces",
    )),
    "address_change": ("rc_address_change", (
        "id", "version", "created_at", "updated_at", "registration_id", "address", "applied_at",
    )),
    "document": ("rc_document", (
        "id", "version", "created_at", "updated_at", "account_id", "registration_id", "title",
        "sha256", "size",
    )),
}  # fmt: skip


def _json(text: str | None) -> object:
    return None if text is None else orjson.loads(text)


def _account_item(values: tuple) -> dict:
    """:func:`record_item` of an account read as ``_RECORD_COLUMNS`` lists its columns."""
    (key, version, created, updated, email, email_key, family, given, password_hash, status,
     activated, language) = values  # fmt: skip
    data = {
        "created_at": created, "updated_at": updated, "email": email, "email_key": email_key,
        "family_name": family, "given_names": given, "password_hash": password_hash,
        "status": status, "activated_at": activated, "language": language, "version": version,
    }  # fmt: skip
    return {"entity": "account", "id": key, "version": version, "data": data}


def _registration_item(values: tuple) -> dict:
    (key, version, created, updated, account_id, session_id, answers, status, saved, withdrawn,
     number, paper_status, missing) = values  # fmt: skip
    data = {
        "created_at": created, "updated_at": updated, "account_id": account_id,
        "session_id": session_id, "answers": _json(answers), "status": status,
        "saved_at": saved, "withdrawn_at": withdrawn, "number": number,
        "paper_status": paper_status, "missing_pieces": _json(missing), "version": version,
    }  # fmt: skip
    return {"entity": "registration", "id": key, "version": version, "data": data}


def _address_change_item(values: tuple) -> dict:
    key, version, created, updated, registration_id, address, applied = values
    data = {
        "created_at": created, "updated_at": updated, "registration_id": registration_id,
        "address": _json(address), "applied_at": applied, "version": version,
    }  # fmt: skip
    return {"entity": "address_change", "id": key, "version": version, "data": data}


def _document_item(values: tuple) -> dict:
    """A published document's description; its bytes are fetched by ``sha256``."""
    key, version, created, updated, account_id, registration_id, title, sha256, size = values
    data = {
        "created_at": created, "updated_at": updated, "account_id": account_id,
        "registration_id": registration_id, "title": title, "sha256": sha256, "size": size,
        "version": version,
    }  # fmt: skip
    return {"entity": "document", "id": key, "version": version, "data": data}


_ITEM_MAKERS = {
    "account": _account_item,
    "registration": _registration_item,
    "address_change": _address_change_item,
    "document": _document_item,
}


def record_item(entity: str, record: Any) -> dict:
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
            "language": record.language,
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
    elif entity == "document":
        data = {
            "created_at": instant_text(record.created_at),
            "updated_at": instant_text(record.updated_at),
            "account_id": str(record.account_id),
            "registration_id": str(record.registration_id),
            "title": record.title,
            "sha256": record.sha256,
            "size": record.size,
        }
    else:
        data = {
            "created_at": instant_text(record.created_at),
            "updated_at": instant_text(record.updated_at),
            "registration_id": str(record.registration_id),
            "address": record.address,
            "applied_at": instant_text(record.applied_at),
        }
    data["version"] = record.version
    return {"entity": entity, "id": str(record.id), "version": record.version, "data": data}


def flat_record(entity: str, record: Any) -> dict:
    """A record as the login answer gives it: ``{"id", "version", …data}``."""
    item = record_item(entity, record)
    return {"id": item["id"], **item["data"]}
