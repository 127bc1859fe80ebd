"""The kiosk's side of sync with the rectorat (see docs/sync-protocol.md).

What changed here waits in the outbox (the store's triggers put it there); ``sync_once``
pushes it in batches and pulls what the rectorat changed for this kiosk's candidates.
When the rectorat cannot be reached the kiosk goes on alone and tries again later.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from peewee import SQL, Database

from kiosk import formatting
from kiosk.clock import Clock
from kiosk.errors import Refused
from kiosk.config import SyncConfig
from kiosk.models import Account, AddressChange, Document, Draft, OutboxRow, Registration, SyncState

log = logging.getLogger(__name__)

BATCH = 500
PULL_LIMIT = 500
FIRST_BACKOFF = timedelta(seconds=5)
LONGEST_BACKOFF = timedelta(minutes=5)
DELIVERED = ("applied", "stale", "conflict", "refused")


class SyncUnavailable(Exception):
    """The rectorat cannot be reached or will not answer now; try again later."""


class SyncRefused(SyncUnavailable):
    """The rectorat refuses this kiosk's credential: staff must act."""


def _instant(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat(timespec="microseconds")


def _parse(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


ACCOUNT_FIELDS = ("email", "email_key", "family_name", "given_names", "password_hash", "status")


def account_data(account: Account) -> dict[str, Any]:
    return {
        "created_at": _instant(account.created_at), "updated_at": _instant(account.updated_at),
        **{name: getattr(account, name) for name in ACCOUNT_FIELDS},
        "activated_at": _instant(account.activated_at),
    }


def registration_data(registration: Registration) -> dict[str, Any]:
    return {
        "created_at": _instant(registration.created_at), "updated_at": _instant(registration.updated_at),
        "account_id": str(registration.account_id), "session_id": registration.session_id,
        "answers": registration.answers, "status": registration.status if registration.status != "set_aside" else "registered",
        "saved_at": _instant(registration.saved_at), "withdrawn_at": _instant(registration.withdrawn_at),
    }


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
            body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
            if response.status_code == 401 and body.get("error") == "unauthorised":
                raise SyncRefused("the rectorat refuses this kiosk's credential")
            return {"error": body.get("error", "login"), "retry_after": body.get("retry_after")}
        if response.status_code == 401:
            raise SyncRefused("the rectorat refuses this kiosk's credential")
        if response.status_code >= 400:
            raise SyncUnavailable(f"HTTP {response.status_code}: {response.text[:200]}")
        return response.json()

    def health(self) -> dict[str, Any]:
        return self._call("GET", "/v1/health")

    def push(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return self._call("POST", "/v1/push", json={"items": items})["results"]

    def changes(self, after: int, limit: int = PULL_LIMIT) -> dict[str, Any]:
        return self._call("GET", "/v1/changes", params={"after": after, "limit": limit})

    def login(self, email_key: str, password: str) -> dict[str, Any]:
        """The account and its registrations, or ``{"error": login | pending | locked, …}``."""
        return self._call("POST", "/v1/accounts/login", json={"email_key": email_key, "password": password})

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


class SyncService:
    """Push the outbox's sync rows, pull the rectorat's changes, borrow accounts for a login."""

    def __init__(self, db: Database, clock: Clock, client: SyncClient | None) -> None:
        self.db = db
        self.clock = clock
        self.client = client
        self._failures = 0
        self._next_try: datetime | None = None

    @property
    def configured(self) -> bool:
        return self.client is not None

    # -- state --------------------------------------------------------------------------

    def _state(self, name: str, default: str = "") -> str:
        row = SyncState.get_or_none(SyncState.name == name)
        return row.value if row else default

    def _set_state(self, name: str, value: str) -> None:
        now = self.clock.now()
        updated = SyncState.update(value=value, updated_at=now, version=SyncState.version + 1).where(
            SyncState.name == name
        ).execute()
        if not updated:
            SyncState.create(name=name, value=value, created_at=now, updated_at=now)

    def pending(self) -> int:
        return (
            OutboxRow.select()
            .where(OutboxRow.kind == "sync", OutboxRow.delivered_at.is_null(), OutboxRow.failed_at.is_null())
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
            pushed = 0
            while True:
                sent = self.push_batch()
                pushed += sent
                if sent < BATCH:
                    break
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

    def push_batch(self) -> int:
        """Send the oldest waiting changes, each record's latest state once; returns how many rows."""
        rows = list(
            OutboxRow.select()
            .where(OutboxRow.kind == "sync", OutboxRow.delivered_at.is_null(), OutboxRow.failed_at.is_null())
            # Insertion order, which is commit order: a record's rows follow those of the
            # records it refers to (an account before its registration) even when the clock
            # gave them the same instant, or stepped back. Ids are random: no order.
            .order_by(SQL("rowid"))
            .limit(BATCH)
        )
        if not rows:
            return 0
        items: dict[tuple[str, str], dict[str, Any]] = {}
        rows_of: dict[tuple[str, str], list[OutboxRow]] = {}
        gone: list[OutboxRow] = []
        records = self._records(rows)
        for row in rows:
            key = (row.payload["entity"], row.payload["id"])
            if key not in items:
                item = self._item(row.payload, records)
                if item is None:
                    gone.append(row)
                    continue
                items[key] = item
            rows_of.setdefault(key, []).append(row)
        results = self.client.push(list(items.values())) if items else []
        delivered = list(gone)
        for (key, item), result in zip(items.items(), results):
            if result.get("id") != item["id"]:
                raise SyncUnavailable("the rectorat's answer does not match the batch")
            if result.get("result") in DELIVERED:
                delivered.extend(rows_of[key])
                if result["result"] in ("conflict", "refused"):
                    log.warning("sync: %s %s %s: %s", item["entity"], item["id"], result["result"], result)
        now = self.clock.now()
        with self.db.atomic():
            OutboxRow.update(delivered_at=now, updated_at=now, attempts=OutboxRow.attempts + 1).where(
                OutboxRow.id.in_([row.id for row in delivered])
            ).execute()
        return len(rows)

    @staticmethod
    def _records(rows: list[OutboxRow]) -> dict[tuple[str, str], Any]:
        """The records a batch's rows name, read with one query a kind rather than one a row
        (a query built by peewee costs more than SQLite's answer)."""
        wanted: dict[str, set[str]] = {}
        for row in rows:
            if row.payload["entity"] in _MODELS:
                wanted.setdefault(row.payload["entity"], set()).add(row.payload["id"])
        found: dict[tuple[str, str], Any] = {}
        for entity, ids in wanted.items():
            model = _MODELS[entity]
            for record in model.select().where(model.id.in_(list(ids))):
                found[(entity, str(record.id))] = record
        return found

    def _item(
        self, payload: dict[str, Any], records: dict[tuple[str, str], Any] | None = None
    ) -> dict[str, Any] | None:
        """What to send for one outbox row, read now: the record's latest state (from
        ``records`` when the batch's records were read together)."""
        entity, key = payload["entity"], payload["id"]
        if entity == "account_deletion":
            return {"entity": entity, "id": key, "version": 1, "data": payload.get("data", {})}
        model = _MODELS.get(entity)
        if model is None:
            log.error("sync: unknown entity %r in the outbox", entity)
            return None
        record = records.get((entity, key)) if records is not None else model.get_or_none(model.id == key)
        if record is None:
            return None
        if entity == "account":
            data = account_data(record)
        elif entity == "registration":
            data = registration_data(record)
        else:
            data = {"created_at": _instant(record.created_at), "registration_id": str(record.registration_id),
                    "address": record.address}  # fmt: skip
        return {"entity": entity, "id": key, "version": record.version, "data": data}

    # -- pull ---------------------------------------------------------------------------

    def pull(self) -> int:
        """Apply what the rectorat changed since the cursor; returns how many changes."""
        total = 0
        while True:
            after = int(self._state("cursor", "0"))
            answer = self.client.changes(after)
            changes = answer.get("changes", [])
            if not changes:
                if int(answer.get("last", after)) > after:
                    self._set_state("cursor", str(answer["last"]))
                return total
            with self.db.atomic():
                self._guarded(lambda: [self._apply(change) for change in changes])
                self._set_state("cursor", str(answer.get("last", changes[-1]["seq"])))
            total += len(changes)
            if len(changes) < PULL_LIMIT:
                return total

    def _guarded(self, apply) -> None:
        """Run ``apply`` so that the store's triggers do not send its writes back."""
        self.db.execute_sql("INSERT INTO sync_guard (id) VALUES (1)")
        try:
            apply()
        finally:
            self.db.execute_sql("DELETE FROM sync_guard")

    def _apply(self, change: dict[str, Any]) -> None:
        entity, data = change["entity"], change.get("data") or {}
        if entity == "registration":
            self._apply_registration(change["id"], data)
        elif entity == "account" and Account.select().where(Account.id == change["id"]).exists():
            # Only an account still here: one borrowed for a login and forgotten since
            # does not come back with the feed.
            self._apply_account(change["id"], data)

    def _apply_account(self, key: str, data: dict[str, Any]) -> None:
        account = Account.get_or_none(Account.id == key)
        version = int(data.get("version", 0))
        if data.get("deleted"):
            if account is not None and account.status == "pending":
                account.delete_instance()
            return
        fields = {name: data[name] for name in ACCOUNT_FIELDS if name in data}
        fields.update(activated_at=_parse(data.get("activated_at")), updated_at=_parse(data["updated_at"]))
        if account is None:
            Account.create(id=key, version=version, created_at=_parse(data["created_at"]), origin="rectorat", **fields)
        elif version > account.version:
            Account.update(version=version, **fields).where(Account.id == key).execute()

    def _apply_registration(self, key: str, data: dict[str, Any]) -> None:
        registration = Registration.get_or_none(Registration.id == key)
        rectorat_fields = {
            "number": data.get("number"),
            "paper_status": data.get("paper_status"),
            "missing_pieces": data.get("missing_pieces"),
        }
        status = data.get("status", "registered")
        if registration is None:
            if Account.get_or_none(Account.id == data["account_id"]) is None:
                return
            if Registration.select().where(
                Registration.account == data["account_id"], Registration.session_id == data["session_id"]
            ).exists():
                # This account registered here too, under another id: the rectorat holds
                # ours as a conflict for the exam office. Keep ours; pull on.
                log.warning("sync: registration %s of an account registered here under another id", key)
                return
            Registration.create(
                id=key, version=int(data.get("version", 1)), account=data["account_id"], session_id=data["session_id"],
                answers=data["answers"], status=status, saved_at=_parse(data["saved_at"]),
                withdrawn_at=_parse(data.get("withdrawn_at")), created_at=_parse(data["created_at"]),
                updated_at=_parse(data["updated_at"]), origin="rectorat", **rectorat_fields,
            )
            return
        changes: dict[str, Any] = dict(rectorat_fields)
        if status == "set_aside" or registration.status == "set_aside":
            changes["status"] = status
        if int(data.get("version", 0)) > registration.version:
            # Changed at another kiosk: its answers are the latest.
            changes.update(
                version=int(data["version"]), answers=data["answers"], status=status,
                saved_at=_parse(data["saved_at"]), withdrawn_at=_parse(data.get("withdrawn_at")),
                updated_at=_parse(data["updated_at"]),
            )
        Registration.update(**changes).where(Registration.id == key).execute()

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
        with self.db.atomic():
            self._guarded(lambda: self._keep_borrowed(answer))
        return Account.get_or_none(Account.id == answer["account"]["id"])

    def _keep_borrowed(self, answer: dict[str, Any]) -> None:
        account = answer["account"]
        self._apply_account(account["id"], account)
        for registration in answer.get("registrations", []):
            self._apply_registration(registration["id"], registration)

    def forget_borrowed(self, account_id: str, folder=None) -> bool:
        """Delete a borrowed account's records once nothing of theirs waits to be sent."""
        account = Account.get_or_none(Account.id == account_id)
        if account is None or account.origin != "rectorat":
            return False
        registration_ids = [str(r.id) for r in Registration.select(Registration.id).where(Registration.account == account.id)]
        # An address change reported here is theirs too: deleting it unsent would lose it.
        changes = AddressChange.select(AddressChange.id).where(AddressChange.registration.in_(registration_ids))
        change_ids = [str(c.id) for c in changes]
        waiting = [
            row for row in OutboxRow.select().where(
                OutboxRow.kind == "sync", OutboxRow.delivered_at.is_null(), OutboxRow.failed_at.is_null()
            )
            if row.payload.get("id") in {str(account.id), *registration_ids, *change_ids}
        ]
        has_draft = Draft.select().where(Draft.account == account.id).exists()
        if waiting or has_draft:
            return False
        files = [d.file_name for d in Document.select().join(Registration).where(Registration.account == account.id)]
        with self.db.atomic():
            self._guarded(account.delete_instance)
        if folder is not None:
            for name in files:
                (folder / name).unlink(missing_ok=True)
        return True


def deletion_payload(account: Account, reason: str) -> dict[str, Any]:
    return {"entity": "account_deletion", "id": str(account.id), "version": 1, "data": {"reason": reason}}
