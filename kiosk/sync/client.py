"""The kiosk's side of sync with the rectorat (see docs/sync-protocol.md).

What changed here waits in the outbox (the store's triggers put it there); ``sync_once``
pushes it in batches and pulls what the rectorat changed for this kiosk's candidates.
When the rectorat cannot be reached the kiosk goes on alone and tries again later.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from kiosk import formatting
from kiosk.clock import Clock, instant_from_text, instant_text
from kiosk.errors import Problem, Refused, Unreachable
from kiosk.i18n import LANGUAGES
from kiosk.pdf_check import MAX_PDF_BYTES, pdf_problem, sha256_of
from kiosk.private import write_durably
from kiosk.runtime.config import SyncConfig
from kiosk.store.models import Account, AddressChange, OneTimeCode, Registration

if TYPE_CHECKING:
    from kiosk.store.database import KioskStore

log = logging.getLogger(__name__)
T = TypeVar("T")

BATCH = 2000  # items a push: the rectorat's maximum (MAX_BATCH)
# The first push of a round is small: the rectorat starts on it at once, and the kiosk
# reads the next, full batch while it waits (see SyncService.push_waiting).
FIRST_BATCH = 250
ACK_CHUNK = 500  # outbox rows marked delivered by one statement
PULL_LIMIT = 500
# A candidate waits on the sign-up screen: past this, the kiosk signs up on its own.
SIGN_UP_TIMEOUT = 3.0
# How long an idle connection to the rectorat is used again; the rectorat keeps one open
# longer (kiosk.rectorat.cli.KEEP_ALIVE), so that a kiosk never sends on a connection the
# server is closing at that very moment.
KEEPALIVE_EXPIRY = 5.0
FIRST_BACKOFF = timedelta(seconds=5)
LONGEST_BACKOFF = timedelta(minutes=5)
DELIVERED = ("applied", "stale", "conflict")


class SyncUnavailable(Exception):
    """The rectorat cannot be reached or will not answer now; try again later.

    ``status``: the HTTP status when the rectorat answered; ``retry_after``: the seconds
    it asked the kiosk to wait (a ``429``'s ``Retry-After``)."""

    def __init__(self, message: str, status: int | None = None, retry_after: int = 0) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class SyncRefused(SyncUnavailable):
    """The rectorat refuses this kiosk's credential: staff must act."""


ACCOUNT_FIELDS = ("email", "email_key", "family_name", "given_names", "password_hash", "status")


def account_data(account: Account) -> dict[str, Any]:
    return {
        "created_at": instant_text(account.created_at),
        "updated_at": instant_text(account.updated_at),
        **{name: getattr(account, name) for name in ACCOUNT_FIELDS},
        "activated_at": instant_text(account.activated_at),
        "language": account.language,
    }


def registration_data(registration: Registration) -> dict[str, Any]:
    return {
        "created_at": instant_text(registration.created_at),
        "updated_at": instant_text(registration.updated_at),
        "account_id": str(registration.account_id),
        "session_id": registration.session_id,
        "answers": registration.answers,
        "status": _pushed_status(registration.status),
        "saved_at": instant_text(registration.saved_at),
        "withdrawn_at": instant_text(registration.withdrawn_at),
    }


_JSON = {"Content-Type": "application/json"}
# Where a refusal is the candidate's answer (wrong password or code, not activated,
# wait), not the kiosk's.
CANDIDATE_ANSWERS = ("/v1/accounts/login", "/v1/accounts/activate", "/v1/accounts/reset")


def encode_push(items: list[str]) -> bytes:
    """The body of a push of items already encoded as JSON texts."""
    return ('{"items":[' + ",".join(items) + "]}").encode("utf-8")


def _seconds(header: str | None) -> int:
    """A ``Retry-After`` in whole seconds (0 when absent or not a number of seconds)."""
    try:
        return max(0, min(int(header or 0), int(LONGEST_BACKOFF.total_seconds())))
    except ValueError:
        return 0


class SyncClient:
    """HTTP to the rectorat's sync service, with the kiosk's credential."""

    def __init__(self, config: SyncConfig) -> None:
        import httpx

        token = config.token
        if not token and config.token_file:
            with open(config.token_file, encoding="utf-8") as handle:
                token = handle.read().strip()
        self._http = httpx.Client(
            base_url=config.url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}"},
            timeout=config.timeout,
            verify=config.ca_file or True,
            limits=httpx.Limits(keepalive_expiry=KEEPALIVE_EXPIRY),
        )

    def _call(
        self, method: str, path: str, *, replayable: bool = False, **kwargs: Any
    ) -> dict[str, Any]:
        """``replayable``: the rectorat answers the call alike when it comes twice (a read,
        or a push, whose replay is answered « stale »). Such a call is sent once more at
        once on a new connection when its connection was dropped before the answer (a
        proxy between closed it idle): the kiosk need not wait for its next round."""
        import httpx

        try:
            try:
                response = self._http.request(method, path, **kwargs)
            except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as dropped:
                if not replayable:
                    raise
                log.info("sync: %s %s: %s; sent again", method, path, type(dropped).__name__)
                response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            raise SyncUnavailable(f"{type(error).__name__}: {error}") from error
        return self._answer(path, response)

    def _answer(self, path: str, response: Any) -> dict[str, Any]:
        if path in CANDIDATE_ANSWERS and response.status_code in (401, 403, 422, 429):
            # The candidate's answer (wrong password, not activated, wait), not the kiosk's.
            body = (
                response.json()
                if response.headers.get("content-type", "").startswith("application/json")
                else {}
            )
            if response.status_code == 401 and body.get("error") == "unauthorised":
                raise SyncRefused("the rectorat refuses this kiosk's credential")
            return {"error": body.get("error", "login"), **body}
        if response.status_code == 401:
            raise SyncRefused("the rectorat refuses this kiosk's credential")
        if response.status_code >= 400:
            raise SyncUnavailable(
                f"HTTP {response.status_code}: {response.text[:200]}",
                status=response.status_code,
                retry_after=_seconds(response.headers.get("retry-after")),
            )
        try:
            # The standard library: a page of changes takes a few ms, orjson saves 2.
            return json.loads(response.content)
        except ValueError as error:
            raise SyncUnavailable(f"the rectorat's answer is not JSON: {error}") from error

    def health(self) -> dict[str, Any]:
        return self._call("GET", "/v1/health", replayable=True)

    def push(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return self._call("POST", "/v1/push", replayable=True, json={"items": items})["results"]

    def push_body(self, body: bytes) -> list[dict[str, Any]]:
        """:meth:`push` of a body made by :func:`encode_push`."""
        answer = self._call("POST", "/v1/push", replayable=True, content=body, headers=_JSON)
        return answer["results"]

    def changes(self, after: int, limit: int = PULL_LIMIT) -> dict[str, Any]:
        return self._call(
            "GET", "/v1/changes", replayable=True, params={"after": after, "limit": limit}
        )

    def login(self, email_key: str, password: str) -> dict[str, Any]:
        """The account and its registrations, or ``{"error": login | pending | locked, …}``."""
        return self._call(
            "POST", "/v1/accounts/login", json={"email_key": email_key, "password": password}
        )

    def activate(self, email_key: str, code: str) -> dict[str, Any]:
        """The account, activated, and its registrations, or ``{"error": code | locked, …}``."""
        return self._call(
            "POST", "/v1/accounts/activate", json={"email_key": email_key, "code": code}
        )

    def request_reset(self, email_key: str) -> None:
        """Ask the rectorat to mail a reset code to the owner of this address's account."""
        self._call("POST", "/v1/accounts/reset-request", json={"email_key": email_key})

    def reset(self, email_key: str, code: str, password: str) -> dict[str, Any]:
        """The account with its new password, and its registrations; or ``{"error": code |
        locked | password, …}``."""
        return self._call(
            "POST",
            "/v1/accounts/reset",
            json={"email_key": email_key, "code": code, "password": password},
        )

    def sign_up(self, item: dict[str, Any]) -> dict[str, Any]:
        """The rectorat's answer to a new account: ``{"result": "applied" | "taken" | …}``."""
        return self._call(
            "POST", "/v1/accounts/signup", json={"item": item}, timeout=SIGN_UP_TIMEOUT
        )

    def document(self, sha256: str, limit: int = MAX_PDF_BYTES) -> bytes | None:
        """A published document's bytes; ``None`` when the rectorat has none for this kiosk,
        or sends more than ``limit`` bytes (read no further)."""
        import httpx

        try:
            with self._http.stream("GET", f"/v1/documents/{sha256}") as response:
                if response.status_code == 404:
                    return None
                if response.status_code != 200:
                    response.read()
                    self._answer("/v1/documents", response)  # raises, as for any call
                chunks, size = [], 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > limit:
                        log.error("sync: document %s is larger than %d bytes", sha256, limit)
                        return None
                    chunks.append(chunk)
        except httpx.HTTPError as error:
            raise SyncUnavailable(f"{type(error).__name__}: {error}") from error
        return b"".join(chunks)

    def close(self) -> None:
        self._http.close()


@dataclass(frozen=True)
class SyncReport:
    """One round: what went up, what came down, and whether the rectorat answered."""

    pushed: int
    pulled: int
    pending: int
    online: bool
    error: str = ""
    # Items the rectorat will never take, by reason (``session``, ``closed``…), all rounds.
    refused: dict[str, int] = field(default_factory=dict)

    @property
    def refused_count(self) -> int:
        return sum(self.refused.values())


_MODELS = {
    "account": Account,
    "registration": Registration,
    "address_change": AddressChange,
    "code": OneTimeCode,
}

# What each waiting sync row stands for, oldest first: the record's latest state as the
# item to send, built by SQLite as JSON text (the instants are stored as the protocol
# writes them: ISO 8601 UTC with microseconds), so that no Python object is made per
# record or field. NULL when the record is gone, and for an account deletion (its row
# carries the item). Insertion order, which is commit order: a record's rows follow
# those of the records it refers to (an account before its registration) even when the
# clock gave them the same instant, or stepped back. Ids are random: no order.
_WAITING = """
SELECT o.rowid, o.id, json_extract(o.payload, '$.entity'), json_extract(o.payload, '$.id'),
  o.payload, r.version,
  CASE json_extract(o.payload, '$.entity')
  WHEN 'account' THEN (
    SELECT json_object('entity', 'account', 'id', a.id, 'version', a.version,
      'data', json_object(
      'created_at', a.created_at, 'updated_at', a.updated_at, 'email', a.email,
      'email_key', a.email_key, 'family_name', a.family_name, 'given_names', a.given_names,
      'password_hash', a.password_hash,
      'status', a.status, 'activated_at', a.activated_at, 'language', a.language))
    FROM account a WHERE a.id = json_extract(o.payload, '$.id'))
  WHEN 'registration' THEN CASE WHEN r.id IS NOT NULL THEN
    json_object('entity', 'registration', 'id', r.id, 'version', r.version,
      'base', CASE WHEN r.synced_version >= 0 THEN r.synced_version END,
      'data', json_object(
      'created_at', r.created_at, 'updated_at', r.updated_at, 'account_id', r.account_id,
      'session_id', r.session_id, 'answers', json(r.answers),
      'status', CASE r.status WHEN 'set_aside' THEN 'registered' ELSE r.status END,
      'saved_at', r.saved_at, 'withdrawn_at', r.withdrawn_at)) END
  WHEN 'address_change' THEN (
    SELECT json_object('entity', 'address_change', 'id', c.id, 'version', c.version,
      'data', json_object(
      'created_at', c.created_at, 'registration_id', c.registration_id, 'address', json(c.address)))
    FROM address_change c WHERE c.id = json_extract(o.payload, '$.id'))
  WHEN 'code' THEN (
    SELECT json_object('entity', 'code', 'id', t.id, 'version', t.version,
      'data', json_object(
      'created_at', t.created_at, 'updated_at', t.updated_at, 'account_id', t.account_id,
      'purpose', t.purpose, 'code_hash', t.code_hash, 'link_hash', t.link_hash,
      'expires_at', t.expires_at, 'tries_left', t.tries_left, 'spent_at', t.spent_at))
    FROM one_time_code t WHERE t.id = json_extract(o.payload, '$.id'))
  END
FROM outbox o
LEFT JOIN registration r
  ON json_extract(o.payload, '$.entity') = 'registration' AND r.id = json_extract(o.payload, '$.id')
WHERE o.kind = 'sync' AND o.delivered_at IS NULL AND o.failed_at IS NULL AND o.rowid > ?
ORDER BY o.rowid
LIMIT ?
"""


_CHANGED_HERE = """
SELECT json_extract(payload, '$.id') FROM outbox
WHERE kind = 'sync' AND delivered_at IS NULL AND failed_at IS NULL
  AND json_extract(payload, '$.entity') = 'registration'
"""


class _Known:
    """The accounts and registrations a page of the feed names, read with one query a
    kind; one asked for outside them is read then."""

    def __init__(self, store: KioskStore, changes: list[dict[str, Any]]) -> None:
        self.store = store
        accounts, registrations = store.Account, store.Registration
        account_ids = {c["id"] for c in changes if c["entity"] == "account"}
        account_ids |= {
            str((c.get("data") or {}).get("account_id"))
            for c in changes
            if c["entity"] == "registration"
        }
        registration_ids = [c["id"] for c in changes if c["entity"] == "registration"]
        self.accounts: dict[str, Account | None] = dict.fromkeys(account_ids)
        for chunk in _chunks(list(account_ids)):
            self.accounts.update(
                (str(a.id), a) for a in accounts.select().where(accounts.id.in_(chunk))
            )
        self.registrations: dict[str, Registration] = {}
        for chunk in _chunks(registration_ids):
            self.registrations.update(
                (str(r.id), r) for r in registrations.select().where(registrations.id.in_(chunk))
            )
        # Registrations changed here whose change the rectorat has not answered yet.
        self.changed_here: set[str] = (
            {record_id for (record_id,) in store.db.execute_sql(_CHANGED_HERE)}
            if registration_ids
            else set()
        )

    def account(self, key: str) -> Account | None:
        if key not in self.accounts:
            accounts = self.store.Account
            self.accounts[key] = accounts.get_or_none(accounts.id == key)
        return self.accounts[key]

    def registration(self, key: str) -> Registration | None:
        return self.registrations.get(key)


def _pushed_status(status: str) -> str:
    """A registration's status as a kiosk pushes it: ``set_aside`` is the rectorat's."""
    return "registered" if status == "set_aside" else status


def _chunks(values: list, size: int = 500) -> list[list]:
    return [values[at : at + size] for at in range(0, len(values), size)]


OutboxKey = tuple[int, str]
"""An outbox row as a batch read it: its rowid, to find it at once, and its id. A rowid
alone is not enough: once the last row is deleted (a sign-up that gives way), SQLite
gives its rowid to the next row, a mail perhaps, while the deleted row's push is on its
way."""


@dataclass
class WaitingBatch:
    """Waiting sync rows read together: ``items`` (JSON texts) in order, under ``keys``
    ``(entity, id)``, and the body that pushes them; the outbox rows of each key; the
    rows with nothing to send; the rowid of the last row read; the version sent of each
    registration."""

    rows: int = 0
    last: int = 0
    body: bytes = b""
    keys: list[tuple[str, str]] = field(default_factory=list)
    items: list[str] = field(default_factory=list)
    rows_of: dict[tuple[str, str], list[OutboxKey]] = field(default_factory=dict)
    gone: list[OutboxKey] = field(default_factory=list)
    versions: dict[str, int] = field(default_factory=dict)


@dataclass
class Settled:
    """Outbox rows a push settled: ``delivered``, and ``refused`` for good (with the
    rectorat's reason as JSON); the accounts whose address the rectorat found taken by
    another account (``taken``: ids); the registrations the rectorat holds as pushed, or
    newer (``synced``: id and the version pushed)."""

    delivered: list[OutboxKey] = field(default_factory=list)
    refused: list[tuple[OutboxKey, str]] = field(default_factory=list)
    taken: list[str] = field(default_factory=list)
    synced: list[tuple[str, int]] = field(default_factory=list)


def _refuse_wait(answer: dict[str, Any], field_name: str, key: str) -> None:
    """The rectorat's delay for this kiosk and address, said by the field concerned."""
    if answer.get("error") == "locked":
        wait = timedelta(seconds=float(answer.get("retry_after") or 60))
        raise Refused.one(field_name, key, wait=formatting.duration(wait))


def refusal_reason(last_error: str | None) -> str:
    """The rectorat's reason kept in an outbox row's ``last_error``."""
    try:
        return str(json.loads(last_error or "{}").get("reason") or "unknown")
    except (ValueError, AttributeError):
        return "unknown"


class SyncService:
    """Push the outbox's sync rows, pull the rectorat's changes, borrow accounts for a login."""

    def __init__(
        self,
        store: KioskStore,
        clock: Clock,
        client: SyncClient | None,
        interval: timedelta = LONGEST_BACKOFF,
        documents: Path | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.client = client
        # Where the documents published for this kiosk's candidates are kept, by SHA-256.
        self.documents = documents
        # Rounds come every ``interval``: a back-off longer than that would leave the
        # status saying « Hors ligne » for rounds after the rectorat is back.
        self.longest_backoff = min(interval, LONGEST_BACKOFF)
        self._failures = 0
        self._next_try: datetime | None = None
        # Whether the last call to the rectorat (a round, a login elsewhere) was answered.
        self.reachable = True

    @property
    def configured(self) -> bool:
        return self.client is not None

    def _connected(self) -> SyncClient:
        if self.client is None:
            raise SyncUnavailable("not configured")
        return self.client

    # -- state --------------------------------------------------------------------------

    def _state(self, name: str, default: str = "") -> str:
        states = self.store.SyncState
        row = states.get_or_none(states.name == name)
        return row.value if row else default

    def _set_state(self, name: str, value: str) -> None:
        now = self.clock.now()
        states = self.store.SyncState
        updated = (
            states.update(value=value, updated_at=now, version=states.version + 1)
            .where(states.name == name)
            .execute()
        )
        if not updated:
            states.create(name=name, value=value, created_at=now, updated_at=now)

    def pending(self) -> int:
        rows = self.store.OutboxRow
        return (
            rows.select()
            .where(rows.kind == "sync", rows.delivered_at.is_null(), rows.failed_at.is_null())
            .count()
        )

    def refused(self) -> dict[str, int]:
        """The items the rectorat refused for good, by reason: they wait for staff."""
        rows = self.store.OutboxRow
        counts: dict[str, int] = {}
        for row in rows.select(rows.last_error).where(
            rows.kind == "sync", rows.failed_at.is_null(False)
        ):
            reason = refusal_reason(row.last_error)
            counts[reason] = counts.get(reason, 0) + 1
        return counts

    # -- one round ----------------------------------------------------------------------

    def sync_once(self, *, force: bool = False) -> SyncReport:
        """Push then pull; never raises for the network, says it in the report."""
        now = self.clock.now()
        if self.client is None:
            return SyncReport(0, 0, self.pending(), online=False, error="not configured")
        if not force and self._next_try is not None and now < self._next_try:
            return SyncReport(
                0, 0, self.pending(), online=False, error="waiting", refused=self.refused()
            )
        try:
            pushed = self.push_waiting()
            pulled = self.pull()
        except SyncUnavailable as error:
            self.reachable = False
            self._failures += 1
            delay = min(FIRST_BACKOFF * 2 ** min(self._failures - 1, 10), self.longest_backoff)
            # A rectorat that says how long to wait is heard: it is busy, not away.
            delay = max(delay, timedelta(seconds=error.retry_after))
            self._next_try = now + delay
            log.warning("sync: %s (next try in %s)", error, delay)
            return SyncReport(
                0, 0, self.pending(), online=False, error=str(error), refused=self.refused()
            )
        self.reachable = True
        self._failures = 0
        self._next_try = None
        self._set_state("last_contact", now.isoformat())
        return SyncReport(pushed, pulled, self.pending(), online=True, refused=self.refused())

    def push_waiting(self) -> int:
        """Push every row waiting now, batch after batch, oldest first; returns how many rows.

        While the rectorat works on a batch, the kiosk settles the one before (reads the
        answer, marks its rows delivered) and reads the next (the rows after the last one
        sent): its own work is done in the time it waits. The batches still go one at a
        time, in order: the rectorat has applied an account before it reads the
        registration that refers to it. A row the rectorat did not take waits for the
        next round, and so does a batch sent when the answer before it turns out wrong.
        """
        client = self._connected()
        pushed = 0
        limit = FIRST_BATCH
        batch = self.waiting(limit)
        answered: tuple[WaitingBatch, list[dict[str, Any]]] | None = None  # not settled yet
        with ThreadPoolExecutor(1, thread_name_prefix="sync-push") as http:
            while batch.rows:
                answer = http.submit(client.push_body, batch.body) if batch.items else None
                if answered:
                    self._acknowledge(self._settled(*answered))
                following = (
                    self.waiting(BATCH, after=batch.last) if batch.rows == limit else WaitingBatch()
                )
                limit = BATCH
                answered = batch, answer.result() if answer else []
                pushed += batch.rows
                batch = following
            if answered:
                self._acknowledge(self._settled(*answered))
        return pushed

    def _settled(self, batch: WaitingBatch, results: list[dict[str, Any]]) -> Settled:
        """The outbox rows of a batch that the rectorat's answer settles: delivered, or
        refused for good (kept, with the reason, for staff to see)."""
        settled = Settled(delivered=list(batch.gone))
        for key, result in zip(batch.keys, results, strict=False):
            if result.get("id") != key[1]:
                raise SyncUnavailable("the rectorat's answer does not match the batch")
            if result.get("result") == "refused" and result.get("reason") == "future":
                # This kiosk's clock is ahead of the rectorat's: the same item is taken
                # once the rectorat's clock has caught up, so it waits for a later round.
                log.warning("sync: %s %s dated in the rectorat's future; kept to send again", *key)
                continue
            if result.get("result") == "refused":
                log.warning("sync: %s %s refused: %s", key[0], key[1], result)
                why = json.dumps(
                    {"reason": result.get("reason", ""), "detail": result.get("detail", "")},
                    ensure_ascii=False,
                )
                settled.refused.extend((row, why) for row in batch.rows_of[key])
            elif result.get("result") in DELIVERED:
                settled.delivered.extend(batch.rows_of[key])
                if key[1] in batch.versions and result["result"] != "conflict":
                    settled.synced.append((key[1], batch.versions[key[1]]))
                if result["result"] == "conflict":
                    log.warning("sync: %s %s conflict: %s", key[0], key[1], result)
                    if key[0] == "account" and result.get("kind") == "email_key":
                        settled.taken.append(key[1])
        return settled

    def waiting(self, limit: int = BATCH, after: int = 0) -> WaitingBatch:
        """The oldest ``limit`` waiting sync rows (after the outbox row ``after``, by
        insertion) and the items to send for them, read now."""
        batch = WaitingBatch()
        rows = self.store.db.execute_sql(_WAITING, (after, limit))
        for rowid, row_id, entity, record_id, payload, version, item in rows:
            batch.rows += 1
            batch.last = rowid
            row = (rowid, row_id)
            key = (entity, record_id)
            if key in batch.rows_of:
                batch.rows_of[key].append(row)
                continue
            if item is None and entity == "account_deletion":
                data = json.loads(payload).get("data", {})
                item = json.dumps(
                    {"entity": entity, "id": record_id, "version": 1, "data": data},
                    ensure_ascii=False,
                )
            if item is None:
                # The record is gone (a pending account purged since), or the row is not
                # one sync knows: nothing to send, and nothing to wait for.
                if entity not in _MODELS:
                    log.error("sync: unknown entity %r in the outbox", entity)
                batch.gone.append(row)
                continue
            if version is not None:  # a registration's
                batch.versions[record_id] = version
            batch.keys.append(key)
            batch.items.append(item)
            batch.rows_of[key] = [row]
        batch.body = encode_push(batch.items)
        return batch

    def _acknowledge(self, settled: Settled) -> None:
        """Mark the settled outbox rows delivered, or failed with the rectorat's reason:
        one statement a few hundred rows, one transaction. Each row is found by its
        rowid (no lookup through the id's index), and taken only if its id is the one
        read: a row made since under a freed rowid is left as it is."""
        rows = settled.delivered
        if not rows and not settled.refused and not settled.taken:
            return
        stamp = self.store.OutboxRow.delivered_at.db_value(self.clock.now())
        with self.store.atomic():
            accounts = self.store.Account
            for account_id in settled.taken:
                # Its candidate learns it at the next login here (AccountService.log_in).
                accounts.update(taken_elsewhere_at=self.clock.now()).where(
                    accounts.id == account_id
                ).execute()
            # The base of the next change made here (a column no trigger looks at).
            for at in range(0, len(settled.synced), ACK_CHUNK):
                taken = settled.synced[at : at + ACK_CHUNK]
                self.store.db.execute_sql(
                    "UPDATE registration SET synced_version = taken.column2"
                    f" FROM (VALUES {', '.join(['(?, ?)'] * len(taken))}) AS taken"
                    " WHERE registration.id = taken.column1"
                    " AND registration.synced_version < taken.column2",
                    [value for pair in taken for value in pair],
                )
            for (rowid, row_id), why in settled.refused:
                self.store.db.execute_sql(
                    "UPDATE outbox SET failed_at = ?, updated_at = ?, last_error = ?,"
                    " attempts = attempts + 1 WHERE rowid = ? AND id = ?",
                    (stamp, stamp, why, rowid, row_id),
                )
            for at in range(0, len(rows), ACK_CHUNK):
                chunk = rows[at : at + ACK_CHUNK]
                # Joined with its (rowid, id) pairs: 2,000 rows in 3.5 ms, where
                # « rowid IN (…) AND id IN (…) » took 5.4.
                self.store.db.execute_sql(
                    "UPDATE outbox SET delivered_at = ?, updated_at = ?, attempts = attempts + 1"
                    f" FROM (VALUES {', '.join(['(?, ?)'] * len(chunk))}) AS done"
                    " WHERE outbox.rowid = done.column1 AND outbox.id = done.column2",
                    (stamp, stamp, *(value for row in chunk for value in row)),
                )

    # -- pull ---------------------------------------------------------------------------

    def pull(self) -> int:
        """Apply what the rectorat changed since the cursor; returns how many changes."""
        client = self._connected()
        total = 0
        first = True
        while True:
            after = int(self._state("cursor", "0"))
            answer = client.changes(after)
            if first:
                self._keep_public_url(answer.get("public_url"))
                first = False
            changes = answer.get("changes", [])
            if not changes:
                if int(answer.get("last", after)) > after:
                    self._set_state("cursor", str(answer["last"]))
                self.fetch_documents()  # those a page or a login described, not here yet
                return total
            with self.store.atomic():
                self._guarded(functools.partial(self._apply_page, changes))
                self._set_state("cursor", str(answer.get("last", changes[-1]["seq"])))
            total += len(changes)
            if len(changes) < PULL_LIMIT:
                self.fetch_documents()
                return total

    def fetch_documents(self) -> int:
        """Fetch the published documents described by the feed and not here yet: each
        checked (its size, a real PDF, its SHA-256), stored under its hash, then listed in
        « Mes documents ». Returns how many arrived; one refused is logged and tried again
        at the next round."""
        s = self.store
        waiting = list(
            s.Document.select().where(
                s.Document.kind == "published", s.Document.stored_at.is_null()
            )
        )
        if not waiting or self.documents is None:
            return 0
        client = self._connected()
        stored = 0
        for document in waiting:
            path = self.documents / document.file_name
            if not (path.exists() and sha256_of(path.read_bytes()) == document.sha256):
                data = client.document(document.sha256)
                problem = "missing" if data is None else pdf_problem(data)
                if problem is None and sha256_of(data or b"") != document.sha256:
                    problem = "sha256"
                if problem is not None:
                    log.error("sync: published document %s refused: %s", document.id, problem)
                    continue
                write_durably(self.documents, document.file_name, data or b"")
            now = self.clock.now()
            s.Document.update(stored_at=now, updated_at=now).where(
                s.Document.id == document.id
            ).execute()
            stored += 1
        return stored

    def _keep_public_url(self, url: object) -> None:
        """The rectorat's public address, for the activation links of the mails to come."""
        url = url if isinstance(url, str) and url.startswith(("https://", "http://")) else ""
        if url != self._state("public_url"):
            self._set_state("public_url", url)

    def _guarded(self, apply) -> None:
        """Run ``apply`` so that the store's triggers do not send its writes back."""
        self.store.db.execute_sql("INSERT INTO sync_guard (id) VALUES (1)")
        try:
            apply()
        finally:
            self.store.db.execute_sql("DELETE FROM sync_guard")

    def _apply_page(self, changes: list[dict[str, Any]]) -> None:
        """Apply a page of the feed, the records it names read together first (a query
        built by peewee costs more than SQLite's answer, and a page is hundreds)."""
        known = _Known(self.store, changes)
        for change in changes:
            self._apply(change, known)

    def _apply(self, change: dict[str, Any], known: _Known) -> None:
        entity, data = change["entity"], change.get("data") or {}
        if entity == "registration":
            self._apply_registration(change["id"], data, known)
        elif entity == "address_change":
            self._apply_address_change(change["id"], data)
        elif entity == "document":
            self._apply_document(change["id"], data)
        elif entity == "account" and known.account(change["id"]) is not None:
            # Only an account still here: one borrowed for a login and forgotten since
            # does not come back with the feed.
            self._apply_account(change["id"], data, known)

    def _apply_account(self, key: str, data: dict[str, Any], known: _Known) -> None:
        account = known.account(key)
        version = int(data.get("version", 0))
        if data.get("deleted"):
            if account is not None and account.status == "pending":
                account.delete_instance()
            return
        fields = {name: data[name] for name in ACCOUNT_FIELDS if name in data}
        fields.update(
            activated_at=instant_from_text(data.get("activated_at")),
            updated_at=instant_from_text(data["updated_at"]),
        )
        if data.get("language") in LANGUAGES:  # a rectorat of an earlier version sends none
            fields["language"] = data["language"]
        accounts = self.store.Account
        if account is None:
            known.accounts[key] = accounts.create(
                id=key,
                version=version,
                created_at=instant_from_text(data["created_at"]),
                origin="rectorat",
                **fields,
            )
        elif version > account.version:
            accounts.update(version=version, **fields).where(accounts.id == key).execute()
            account.version = version  # the next change of the page compares with this
            for name, value in fields.items():
                setattr(account, name, value)

    def _apply_registration(self, key: str, data: dict[str, Any], known: _Known) -> None:
        registration = known.registration(key)
        rectorat_fields = {
            "number": data.get("number"),
            "paper_status": data.get("paper_status"),
            "missing_pieces": data.get("missing_pieces"),
        }
        status = data.get("status", "registered")
        registrations = self.store.Registration
        if registration is None:
            if known.account(data["account_id"]) is None:
                return
            if (
                registrations.select()
                .where(
                    registrations.account == data["account_id"],
                    registrations.session_id == data["session_id"],
                )
                .exists()
            ):
                # This account registered here too, under another id: the rectorat holds
                # ours as a conflict for the exam office. Keep ours; pull on.
                log.warning(
                    "sync: registration %s of an account registered here under another id", key
                )
                return
            created = registrations.create(
                id=key,
                version=int(data.get("version", 1)),
                synced_version=int(data.get("version", 1)),
                account=data["account_id"],
                session_id=data["session_id"],
                answers=data["answers"],
                status=status,
                saved_at=instant_from_text(data["saved_at"]),
                withdrawn_at=instant_from_text(data.get("withdrawn_at")),
                created_at=instant_from_text(data["created_at"]),
                updated_at=instant_from_text(data["updated_at"]),
                origin="rectorat",
                **rectorat_fields,
            )
            known.registrations[key] = created
            return
        changes: dict[str, Any] = dict(rectorat_fields)
        if status == "set_aside" or registration.status == "set_aside":
            changes["status"] = status
        version = int(data.get("version", 0))
        if key not in known.changed_here:
            # Nothing changed here waits: the rectorat's copy is the file, changed at
            # another kiosk or by the exam office (which may have kept a change made here
            # aside, at the same version or under it).
            content = {
                "answers": data["answers"],
                "status": status,
                "saved_at": instant_from_text(data["saved_at"]),
                "withdrawn_at": instant_from_text(data.get("withdrawn_at")),
            }
            differs = (
                content["answers"] != registration.answers
                # set_aside is the rectorat's, and follows it without a version (above).
                or _pushed_status(status) != _pushed_status(registration.status)
                or content["saved_at"] != registration.saved_at
                or content["withdrawn_at"] != registration.withdrawn_at
            )
            if version > registration.version or differs:
                changes.update(content, updated_at=instant_from_text(data["updated_at"]))
                # Never a version this kiosk has had: a document made for it is out of date.
                changes["version"] = max(version, registration.version + 1)
            changes["synced_version"] = version
        # Otherwise the change made here goes first: the rectorat takes it, or keeps it
        # aside and sends its own copy again.
        changes = {
            name: value for name, value in changes.items() if getattr(registration, name) != value
        }
        if changes:  # its own push coming back, numbered: often only the number is new
            registrations.update(**changes).where(registrations.id == key).execute()
            for name, value in changes.items():
                setattr(registration, name, value)

    def _apply_address_change(self, key: str, data: dict[str, Any]) -> None:
        """An address change of a registration here, as the rectorat has it: made at
        another kiosk, or applied by the exam office."""
        changes, registrations = self.store.AddressChange, self.store.Registration
        version = int(data.get("version", 1))
        applied_at = instant_from_text(data.get("applied_at"))
        existing = changes.get_or_none(changes.id == key)
        if existing is None:
            registration_id = data.get("registration_id")
            if not registrations.select().where(registrations.id == registration_id).exists():
                return
            changes.create(
                id=key,
                version=version,
                registration=registration_id,
                address=data.get("address") or {},
                applied_at=applied_at,
                created_at=instant_from_text(data["created_at"]),
                updated_at=instant_from_text(data["updated_at"]),
            )
        elif version > existing.version:
            changes.update(
                version=version,
                applied_at=applied_at,
                updated_at=instant_from_text(data["updated_at"]),
            ).where(changes.id == key).execute()

    def _apply_document(self, key: str, data: dict[str, Any]) -> None:
        """A document published for a registration here: listed once its bytes are here."""
        documents, registrations = self.store.Document, self.store.Registration
        sha256, size = str(data.get("sha256", "")), data.get("size")
        well_formed = (
            len(sha256) == 64
            and all(c in "0123456789abcdef" for c in sha256)
            and isinstance(size, int)
            and 0 < size <= MAX_PDF_BYTES
        )
        if not well_formed:
            log.error("sync: published document %s is not described as expected", key)
            return
        registration = registrations.get_or_none(registrations.id == data.get("registration_id"))
        if registration is None:
            return
        if (
            documents.select()
            .where(documents.kind == "published", documents.source_id == key)
            .exists()
        ):
            return
        published_at = instant_from_text(data["created_at"])
        documents.create(
            registration=registration.id,
            registration_version=registration.version,
            kind="published",
            source_id=key,
            title=" ".join(str(data.get("title", "")).split())[:120],
            # Stored by its hash: the same file published twice is kept once.
            file_name=f"{sha256}.pdf",
            sha256=sha256,
            size=size,
            created_at=published_at,
            updated_at=published_at,
        )

    # -- sign-up and login elsewhere ----------------------------------------------------

    def address_taken(self, account: Account) -> bool:
        """Whether another account has this new account's address, network-wide. When it
        has not, the rectorat keeps this one: the address is the candidate's from now on.
        Raises :class:`Unreachable` when the rectorat cannot say now."""
        client = self._connected_or_unreachable()
        item = {
            "entity": "account",
            "id": str(account.id),
            "version": account.version,
            "data": account_data(account),
        }
        try:
            answer = client.sign_up(item)
        except SyncUnavailable as error:
            log.info("sync: sign-up checked here only: %s", error)
            # It answered (busy, or of an earlier version without sign-up): it is there.
            self.reachable = error.status is not None
            raise Unreachable(str(error)) from error
        self.reachable = True
        if answer.get("result") == "taken":
            return True
        if answer.get("result") != "applied":
            # Refused (say, a bound): the kiosk's own rules decide, the push says the rest.
            log.warning("sync: sign-up of %s answered %s", account.id, answer)
        return False

    def _connected_or_unreachable(self) -> SyncClient:
        if self.client is None:
            raise Unreachable("not configured")
        return self.client

    def borrow(self, email_key: str, password: str) -> Account | None:
        """The account of a candidate made at another kiosk, fetched for this login, or
        None; :class:`Unreachable` when the rectorat cannot say now."""
        if self.client is None:
            return None
        answer = self._ask("login elsewhere", lambda client: client.login(email_key, password))
        if answer.get("error") == "pending":
            raise Refused.one("", "login.pending_elsewhere")
        _refuse_wait(answer, "", "login.locked")
        if answer.get("error"):
            return None
        return self._borrowed(answer)

    def activate(self, email_key: str, code: str) -> Account | None:
        """Activate, at the rectorat, an account made at another kiosk, with the code of
        its mail; the account, kept here as for a login, or None for a wrong code.
        :class:`Unreachable` when the rectorat cannot say now."""
        answer = self._ask("activation elsewhere", lambda client: client.activate(email_key, code))
        _refuse_wait(answer, "code", "code.wait")
        if answer.get("error"):
            return None
        return self._borrowed(answer)

    def request_reset(self, email_key: str) -> None:
        """Ask the rectorat to mail a reset code for an account made at another kiosk.
        :class:`Unreachable` when it cannot be asked now."""
        self._ask("reset code from the rectorat", lambda client: client.request_reset(email_key))

    def reset(self, email_key: str, code: str, password: str) -> Account | None:
        """A new password, set at the rectorat with the code of its mail, for an account
        made at another kiosk: the account, kept here as for a login, or None for a wrong
        code. :class:`Unreachable` when the rectorat cannot say now."""
        answer = self._ask(
            "reset elsewhere", lambda client: client.reset(email_key, code, password)
        )
        _refuse_wait(answer, "code", "code.wait")
        if answer.get("error") == "password":
            params = answer.get("params")
            params = params if isinstance(params, dict) else {}
            raise Refused({"password": Problem(str(answer.get("key")), params)})
        if answer.get("error"):
            return None
        return self._borrowed(answer)

    def _ask(self, what: str, call: Callable[[SyncClient], T]) -> T:
        """A call made for a candidate at this kiosk; :class:`Unreachable` when the
        rectorat cannot answer now, which the kiosk's answers then say."""
        client = self._connected_or_unreachable()
        try:
            answer = call(client)
        except SyncUnavailable as error:
            log.info("sync: no %s now: %s", what, error)
            self.reachable = False
            raise Unreachable(str(error)) from error
        self.reachable = True
        return answer

    def _borrowed(self, answer: dict[str, Any]) -> Account | None:
        with self.store.atomic():
            self._guarded(lambda: self._keep_borrowed(answer))
        accounts = self.store.Account
        return accounts.get_or_none(accounts.id == answer["account"]["id"])

    def _keep_borrowed(self, answer: dict[str, Any]) -> None:
        account, registrations = answer["account"], answer.get("registrations", [])
        kept = self._retire_taken(account)
        known = _Known(
            self.store,
            [{"entity": "account", "id": account["id"]}]
            + [{"entity": "registration", "id": r["id"], "data": r} for r in registrations],
        )
        self._apply_account(account["id"], account, known)
        for registration in registrations:
            self._apply_registration(registration["id"], registration, known)
        for document in answer.get("documents", []):
            self._apply_document(document["id"], document)
        self._carry_over(account["id"], kept)

    def _retire_taken(self, borrowed: dict[str, Any]) -> list[tuple[str, dict]]:
        """Delete the account made here offline with the address of ``borrowed``, found
        taken at the rectorat; what its candidate saved or typed here, by session, to
        become the borrowed account's drafts. (The rectorat keeps what was pushed of it,
        for the exam office.)"""
        s = self.store
        taken = s.Account.get_or_none(
            s.Account.email_key == borrowed.get("email_key"),
            s.Account.id != borrowed["id"],
            s.Account.taken_elsewhere_at.is_null(False),
        )
        if taken is None:
            return []
        kept = [
            (r.session_id, dict(r.answers))
            for r in s.Registration.select().where(s.Registration.account == taken.id)
        ]
        kept += [
            (d.session_id, dict(d.values))
            for d in s.Draft.select().where(s.Draft.account == taken.id)
        ]
        s.Account.delete().where(s.Account.id == taken.id).execute()
        log.info("sync: account %s, taken elsewhere, gave way to %s", taken.id, borrowed["id"])
        return kept

    def _carry_over(self, account_id: str, kept: list[tuple[str, dict]]) -> None:
        """What the candidate saved under the account that gave way, as drafts of the one
        that stays, for each session it has neither registered nor drafted for."""
        s = self.store
        now = self.clock.now()
        for session_id, values in kept:
            registered = s.Registration.select().where(
                s.Registration.account == account_id, s.Registration.session_id == session_id
            )
            drafted = s.Draft.select().where(
                s.Draft.account == account_id, s.Draft.session_id == session_id
            )
            if not registered.exists() and not drafted.exists():
                s.Draft.create(
                    account=account_id,
                    session_id=session_id,
                    values=values,
                    created_at=now,
                    updated_at=now,
                )

    def forget_idle_borrowed(self, folder=None) -> int:
        """:meth:`forget_borrowed` for every borrowed account, while no candidate is at the
        kiosk: those whose records waited when their candidate left; returns how many went."""
        accounts = self.store.Account
        borrowed = list(accounts.select(accounts.id).where(accounts.origin == "rectorat"))
        return sum(self.forget_borrowed(str(account.id), folder) for account in borrowed)

    def forget_borrowed(self, account_id: str, folder=None) -> bool:
        """Delete a borrowed account's records once nothing of theirs waits to be sent."""
        s = self.store
        account = s.Account.get_or_none(s.Account.id == account_id)
        if account is None or account.origin != "rectorat":
            return False
        registration_ids = [
            str(r.id)
            for r in s.Registration.select(s.Registration.id).where(
                s.Registration.account == account.id
            )
        ]
        # An address change reported here is theirs too: deleting it unsent would lose it.
        changes = s.AddressChange.select(s.AddressChange.id).where(
            s.AddressChange.registration.in_(registration_ids)
        )
        change_ids = [str(c.id) for c in changes]
        # And a code mailed here (a reset): its hashes must reach the rectorat for the
        # code to work at any kiosk.
        code_ids = [
            str(c.id)
            for c in s.OneTimeCode.select(s.OneTimeCode.id).where(
                s.OneTimeCode.account == account.id
            )
        ]
        theirs = {str(account.id), *registration_ids, *change_ids, *code_ids}
        waiting = [
            row
            for row in s.OutboxRow.select().where(
                s.OutboxRow.kind == "sync",
                s.OutboxRow.delivered_at.is_null(),
                s.OutboxRow.failed_at.is_null(),
            )
            if row.payload.get("id") in theirs
        ]
        has_draft = s.Draft.select().where(s.Draft.account == account.id).exists()
        if waiting or has_draft:
            return False
        files = [
            d.file_name
            for d in s.Document.select()
            .join(s.Registration)
            .where(s.Registration.account == account.id)
        ]
        # A mail to them not sent yet may attach one of their documents: deleted, the
        # mail could never leave.
        mails = s.OutboxRow.select().where(
            s.OutboxRow.kind == "mail",
            s.OutboxRow.delivered_at.is_null(),
            s.OutboxRow.failed_at.is_null(),
        )
        if any(
            row.payload.get("to") == account.email
            or any(
                Path(str(attached.get("path", ""))).name in files
                for attached in row.payload.get("attachments") or []
            )
            for row in mails
        ):
            return False
        with self.store.atomic():
            self._guarded(account.delete_instance)
        if folder is not None:
            for name in files:
                # A published file is kept by its hash: another candidate's may be the same.
                if not s.Document.select().where(s.Document.file_name == name).exists():
                    (folder / name).unlink(missing_ok=True)
        return True


def deletion_payload(account: Account, reason: str) -> dict[str, Any]:
    return {
        "entity": "account_deletion",
        "id": str(account.id),
        "version": 1,
        "data": {"reason": reason},
    }
