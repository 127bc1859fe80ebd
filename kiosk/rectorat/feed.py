"""What the rectorat sends the kiosks: the change feed they pull, and the account a
kiosk borrows when its candidate logs in there with an account made at another kiosk.

The feed is ``rc_change``, numbered in commit order by the store's sequencer: a kiosk
keeps a cursor and pulls the changes after it, of the accounts it holds. A login
elsewhere makes the kiosk hold the account from then on (``rc_interest``).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from kiosk.accounts import email_key as normalise_email_key
from kiosk.accounts import login_delay
from kiosk.clock import Clock, instant_text
from kiosk.passwords import Hasher
from kiosk.rectorat.items import EMAIL_MAX
from kiosk.rectorat.kiosks import KioskIdentity
from kiosk.rectorat.store import Account, AddressChange, Change, RectoratStore, Registration

log = logging.getLogger(__name__)

DEFAULT_LIMIT = 500
MAX_LIMIT = 1000
PASSWORD_MAX = 4096


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
        p = self.db.param
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

    def _records(self, rows: Iterable[Change]) -> dict[tuple[str, uuid.UUID], dict]:
        """The feed item of each change's record that still exists, by (entity, id)."""
        m = self.store
        wanted: dict[str, set[uuid.UUID]] = {}
        for row in rows:
            wanted.setdefault(row.entity, set()).add(row.entity_id)
        found: dict[tuple[str, uuid.UUID], dict] = {}
        models: dict[str, type[Account] | type[Registration] | type[AddressChange]] = {
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
            or len(password) > PASSWORD_MAX
        ):
            raise LoginRefused("login")
        key = normalise_email_key(email_key.strip()) if 0 < len(email_key) <= EMAIL_MAX else None
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

    def _hold(self, kiosk: KioskIdentity, account_id: object, now: datetime) -> None:
        """The kiosk holds the account from now on: the feed sends it its changes."""
        self.db.execute_sql(self._hold_sql, (kiosk.id, str(account_id), instant_text(now)))


# -- what the feed and the login send -----------------------------------------------------


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


def flat_record(entity: str, record: Any) -> dict:
    """A record as the login answer gives it: ``{"id", "version", …data}``."""
    item = record_item(entity, record)
    return {"id": item["id"], **item["data"]}
