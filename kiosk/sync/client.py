"""The kiosk's side of sync with the rectorat (see docs/sync-protocol.md).

What changed here waits in the outbox (the store's triggers put it there); ``sync_once``
pushes it in batches and pulls what the rectorat changed for this kiosk's candidates.
When the rectorat cannot be reached the kiosk goes on alone and tries again later.
"""

from __future__ import annotations

import functools
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from kiosk import formatting
from kiosk.clock import Clock, instant_from_text, instant_text
from kiosk.errors import Refused
from kiosk.runtime.config import SyncConfig
from kiosk.store.models import Account, AddressChange, Registration

if TYPE_CHECKING:
    from kiosk.store.database import KioskStore

log = logging.getLogger(__name__)

BATCH = 2000  # items a push: the rectorat's maximum (MAX_BATCH)
# The first push of a round is small: the rectorat starts on it at once, and the kiosk
# reads the next, full batch while it waits (see SyncService.push_waiting).
FIRST_BATCH = 250
ACK_CHUNK = 500  # outbox rows marked delivered by one statement
PULL_LIMIT = 500
FIRST_BACKOFF = timedelta(seconds=5)
LONGEST_BACKOFF = timedelta(minutes=5)
DELIVERED = ("applied", "stale", "conflict", "refused")


class SyncUnavailable(Exception):
    """The rectorat cannot be reached or will not answer now; try again later."""


class SyncRefused(SyncUnavailable):
    """The rectorat refuses this kiosk's credential: staff must act."""


ACCOUNT_FIELDS = ("email", "email_key", "family_name", "given_names", "password_hash", "status")


def account_data(account: Account) -> dict[str, Any]:
    return {
        "created_at": instant_text(account.created_at),
        "updated_at": instant_text(account.updated_at),
        **{name: getattr(account, name) for name in ACCOUNT_FIELDS},
        "activated_at": instant_text(account.activated_at),
    }


def registration_data(registration: Registration) -> dict[str, Any]:
    return {
        "created_at": instant_text(registration.created_at),
        "updated_at": instant_text(registration.updated_at),
        "account_id": str(registration.account_id),
        "session_id": registration.session_id,
        "answers": registration.answers,
        "status": registration.status if registration.status != "set_aside" else "registered",
        "saved_at": instant_text(registration.saved_at),
        "withdrawn_at": instant_text(registration.withdrawn_at),
    }


_JSON = {"Content-Type": "application/json"}


def encode_push(items: list[str]) -> bytes:
    """The body of a push of items already encoded as JSON texts."""
    return ('{"items":[' + ",".join(items) + "]}").encode("utf-8")


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
        )

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        import httpx

        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            raise SyncUnavailable(f"{type(error).__name__}: {error}") from error
        if path == "/v1/accounts/login" and response.status_code in (401, 403, 429):
            # The candidate's answer (wrong password, not activated, wait), not the kiosk's.
            body = (
                response.json()
                if response.headers.get("content-type", "").startswith("application/json")
                else {}
            )
            if response.status_code == 401 and body.get("error") == "unauthorised":
                raise SyncRefused("the rectorat refuses this kiosk's credential")
            return {"error": body.get("error", "login"), "retry_after": body.get("retry_after")}
        if response.status_code == 401:
            raise SyncRefused("the rectorat refuses this kiosk's credential")
        if response.status_code >= 400:
            raise SyncUnavailable(f"HTTP {response.status_code}: {response.text[:200]}")
        try:
            # The standard library: a page of changes takes a few ms, orjson saves 2.
            return json.loads(response.content)
        except ValueError as error:
            raise SyncUnavailable(f"the rectorat's answer is not JSON: {error}") from error

    def health(self) -> dict[str, Any]:
        return self._call("GET", "/v1/health")

    def push(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return self._call("POST", "/v1/push", json={"items": items})["results"]

    def push_body(self, body: bytes) -> list[dict[str, Any]]:
        """:meth:`push` of a body made by :func:`encode_push`."""
        return self._call("POST", "/v1/push", content=body, headers=_JSON)["results"]

    def changes(self, after: int, limit: int = PULL_LIMIT) -> dict[str, Any]:
        return self._call("GET", "/v1/changes", params={"after": after, "limit": limit})

    def login(self, email_key: str, password: str) -> dict[str, Any]:
        """The account and its registrations, or ``{"error": login | pending | locked, …}``."""
        return self._call(
            "POST", "/v1/accounts/login", json={"email_key": email_key, "password": password}
        )

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


_MODELS = {"account": Account, "registration": Registration, "address_change": AddressChange}

# What each waiting sync row stands for, oldest first: the record's latest state as the
# item to send, built by SQLite as JSON text (the instants are stored as the protocol
# writes them: ISO 8601 UTC with microseconds), so that no Python object is made per
# record or field. NULL when the record is gone, and for an account deletion (its row
# carries the item). Insertion order, which is commit order: a record's rows follow
# those of the records it refers to (an account before its registration) even when the
# clock gave them the same instant, or stepped back. Ids are random: no order.
_WAITING = """
SELECT o.rowid, json_extract(o.payload, '$.entity'), json_extract(o.payload, '$.id'), o.payload,
  CASE json_extract(o.payload, '$.entity')
  WHEN 'account' THEN (
    SELECT json_object('entity', 'account', 'id', a.id, 'version', a.version,
      'data', json_object(
      'created_at', a.created_at, 'updated_at', a.updated_at, 'email', a.email,
      'email_key', a.email_key, 'family_name', a.family_name, 'given_names', a.given_names,
      'password_hash', a.password_hash,
      'status', a.status, 'activated_at', a.activated_at))
    FROM account a WHERE a.id = json_extract(o.payload, '$.id'))
  WHEN 'registration' THEN (
    SELECT json_object('entity', 'registration', 'id', r.id, 'version', r.version,
      'data', json_object(
      'created_at', r.created_at, 'updated_at', r.updated_at, 'account_id', r.account_id,
      'session_id', r.session_id, 'answers', json(r.answers),
      'status', CASE r.status WHEN 'set_aside' THEN 'registered' ELSE r.status END,
      'saved_at', r.saved_at, 'withdrawn_at', r.withdrawn_at))
    FROM registration r WHERE r.id = json_extract(o.payload, '$.id'))
  WHEN 'address_change' THEN (
    SELECT json_object('entity', 'address_change', 'id', c.id, 'version', c.version,
      'data', json_object(
      'created_at', c.created_at, 'registration_id', c.registration_id, 'address', json(c.address)))
    FROM address_change c WHERE c.id = json_extract(o.payload, '$.id'))
  END
FROM outbox o
WHERE o.kind = 'sync' AND o.delivered_at IS NULL AND o.failed_at IS NULL AND o.rowid > ?
ORDER BY o.rowid
LIMIT ?
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

    def account(self, key: str) -> Account | None:
        if key not in self.accounts:
            accounts = self.store.Account
            self.accounts[key] = accounts.get_or_none(accounts.id == key)
        return self.accounts[key]

    def registration(self, key: str) -> Registration | None:
        return self.registrations.get(key)


def _chunks(values: list, size: int = 500) -> list[list]:
    return [values[at : at + size] for at in range(0, len(values), size)]


@dataclass
class WaitingBatch:
    """Waiting sync rows read together: ``items`` (JSON texts) in order, under ``keys``
    ``(entity, id)``, and the body that pushes them; the outbox rows (rowids) of each key;
    the rows with nothing to send; the rowid of the last row read."""

    rows: int = 0
    last: int = 0
    body: bytes = b""
    keys: list[tuple[str, str]] = field(default_factory=list)
    items: list[str] = field(default_factory=list)
    rows_of: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    gone: list[int] = field(default_factory=list)


class SyncService:
    """Push the outbox's sync rows, pull the rectorat's changes, borrow accounts for a login."""

    def __init__(self, store: KioskStore, clock: Clock, client: SyncClient | None) -> None:
        self.store = store
        self.clock = clock
        self.client = client
        self._failures = 0
        self._next_try: datetime | None = None

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

    # -- one round ----------------------------------------------------------------------

    def sync_once(self, *, force: bool = False) -> SyncReport:
        """Push then pull; never raises for the network, says it in the report."""
        now = self.clock.now()
        if self.client is None:
            return SyncReport(0, 0, self.pending(), online=False, error="not configured")
        if not force and self._next_try is not None and now < self._next_try:
            return SyncReport(0, 0, self.pending(), online=False, error="waiting")
        try:
            pushed = self.push_waiting()
            pulled = self.pull()
        except SyncUnavailable as error:
            self._failures += 1
            delay = min(FIRST_BACKOFF * 2 ** min(self._failures - 1, 10), LONGEST_BACKOFF)
            self._next_try = now + delay
            log.warning("sync: %s (next try in %s)", error, delay)
            return SyncReport(0, 0, self.pending(), online=False, error=str(error))
        self._failures = 0
        self._next_try = None
        self._set_state("last_contact", now.isoformat())
        return SyncReport(pushed, pulled, self.pending(), online=True)

    def push_waiting(self) -> int:
        """Push every row waiting now, batch after batch, oldest first; returns how many rows.

        While the rectorat works on a batch, the kiosk marks the one before delivered and
        reads the next (the rows after the last one sent): its own work is done in the
        time it waits. The batches still go one at a time, in order: the rectorat has
        applied an account before it reads the registration that refers to it. A row the
        rectorat did not take waits for the next round.
        """
        client = self._connected()
        pushed = 0
        limit = FIRST_BATCH
        batch = self.waiting(limit)
        done: list[int] = []
        with ThreadPoolExecutor(1, thread_name_prefix="sync-push") as http:
            while batch.rows:
                answer = http.submit(client.push_body, batch.body) if batch.items else None
                self._acknowledge(done)
                done = []
                following = (
                    self.waiting(BATCH, after=batch.last) if batch.rows == limit else WaitingBatch()
                )
                limit = BATCH
                done = self._delivered(batch, answer.result() if answer else [])
                pushed += batch.rows
                batch = following
            self._acknowledge(done)
        return pushed

    def _delivered(self, batch: WaitingBatch, results: list[dict[str, Any]]) -> list[int]:
        """The outbox rows of a batch that the rectorat's answer settles."""
        delivered = list(batch.gone)
        for key, result in zip(batch.keys, results, strict=False):
            if result.get("id") != key[1]:
                raise SyncUnavailable("the rectorat's answer does not match the batch")
            if result.get("result") == "refused" and result.get("reason") == "future":
                # This kiosk's clock is ahead of the rectorat's: the same item is taken
                # once the rectorat's clock has caught up, so it waits for a later round.
                log.warning("sync: %s %s dated in the rectorat's future; kept to send again", *key)
                continue
            if result.get("result") in DELIVERED:
                delivered.extend(batch.rows_of[key])
                if result["result"] in ("conflict", "refused"):
                    log.warning("sync: %s %s %s: %s", key[0], key[1], result["result"], result)
        return delivered

    def waiting(self, limit: int = BATCH, after: int = 0) -> WaitingBatch:
        """The oldest ``limit`` waiting sync rows (after the outbox row ``after``, by
        insertion) and the items to send for them, read now."""
        batch = WaitingBatch()
        for rowid, entity, record_id, payload, item in self.store.db.execute_sql(
            _WAITING, (after, limit)
        ):
            batch.rows += 1
            batch.last = rowid
            key = (entity, record_id)
            if key in batch.rows_of:
                batch.rows_of[key].append(rowid)
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
                batch.gone.append(rowid)
                continue
            batch.keys.append(key)
            batch.items.append(item)
            batch.rows_of[key] = [rowid]
        batch.body = encode_push(batch.items)
        return batch

    def _acknowledge(self, rowids: list[int]) -> None:
        """Mark these outbox rows (rowids: no lookup through the id's index) delivered:
        one statement a few hundred rows, one transaction."""
        if not rowids:
            return
        stamp = self.store.OutboxRow.delivered_at.db_value(self.clock.now())
        with self.store.atomic():
            for at in range(0, len(rowids), ACK_CHUNK):
                chunk = rowids[at : at + ACK_CHUNK]
                self.store.db.execute_sql(
                    "UPDATE outbox SET delivered_at = ?, updated_at = ?, attempts = attempts + 1"
                    f" WHERE rowid IN ({', '.join('?' * len(chunk))})",
                    (stamp, stamp, *chunk),
                )

    # -- pull ---------------------------------------------------------------------------

    def pull(self) -> int:
        """Apply what the rectorat changed since the cursor; returns how many changes."""
        client = self._connected()
        total = 0
        while True:
            after = int(self._state("cursor", "0"))
            answer = client.changes(after)
            changes = answer.get("changes", [])
            if not changes:
                if int(answer.get("last", after)) > after:
                    self._set_state("cursor", str(answer["last"]))
                return total
            with self.store.atomic():
                self._guarded(functools.partial(self._apply_page, changes))
                self._set_state("cursor", str(answer.get("last", changes[-1]["seq"])))
            total += len(changes)
            if len(changes) < PULL_LIMIT:
                return total

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
        if int(data.get("version", 0)) > registration.version:
            # Changed at another kiosk: its answers are the latest.
            changes.update(
                version=int(data["version"]),
                answers=data["answers"],
                status=status,
                saved_at=instant_from_text(data["saved_at"]),
                withdrawn_at=instant_from_text(data.get("withdrawn_at")),
                updated_at=instant_from_text(data["updated_at"]),
            )
        changes = {
            name: value for name, value in changes.items() if getattr(registration, name) != value
        }
        if changes:  # its own push coming back, numbered: often only the number is new
            registrations.update(**changes).where(registrations.id == key).execute()
            for name, value in changes.items():
                setattr(registration, name, value)

    # -- login elsewhere ----------------------------------------------------------------

    def borrow(self, email_key: str, password: str) -> Account | None:
        """The account of a candidate made at another kiosk, fetched for this login, or None."""
        if self.client is None:
            return None
        try:
            answer = self.client.login(email_key, password)
        except SyncUnavailable as error:
            log.info("sync: no login elsewhere now: %s", error)
            return None
        if answer.get("error") == "pending":
            raise Refused.one("", "login.pending_elsewhere")
        if answer.get("error") == "locked":
            wait = timedelta(seconds=float(answer.get("retry_after") or 60))
            raise Refused.one("", "login.locked", wait=formatting.duration(wait))
        if answer.get("error"):
            return None
        with self.store.atomic():
            self._guarded(lambda: self._keep_borrowed(answer))
        accounts = self.store.Account
        return accounts.get_or_none(accounts.id == answer["account"]["id"])

    def _keep_borrowed(self, answer: dict[str, Any]) -> None:
        account, registrations = answer["account"], answer.get("registrations", [])
        known = _Known(
            self.store,
            [{"entity": "account", "id": account["id"]}]
            + [{"entity": "registration", "id": r["id"], "data": r} for r in registrations],
        )
        self._apply_account(account["id"], account, known)
        for registration in registrations:
            self._apply_registration(registration["id"], registration, known)

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
        waiting = [
            row
            for row in s.OutboxRow.select().where(
                s.OutboxRow.kind == "sync",
                s.OutboxRow.delivered_at.is_null(),
                s.OutboxRow.failed_at.is_null(),
            )
            if row.payload.get("id") in {str(account.id), *registration_ids, *change_ids}
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
        with self.store.atomic():
            self._guarded(account.delete_instance)
        if folder is not None:
            for name in files:
                (folder / name).unlink(missing_ok=True)
        return True


def deletion_payload(account: Account, reason: str) -> dict[str, Any]:
    return {
        "entity": "account_deletion",
        "id": str(account.id),
        "version": 1,
        "data": {"reason": reason},
    }
