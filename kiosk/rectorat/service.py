"""The rectorat's sync service, plain Python: the one object the HTTP layer
(:mod:`kiosk.rectorat.api`), the command line and the staff console work with. The HTTP
layer only parses requests and calls it.

It composes the parts, each in its module:

- :mod:`~kiosk.rectorat.kiosks`: the kiosks' credentials, and who a request is;
- :mod:`~kiosk.rectorat.items`: reading and checking a pushed item;
- :mod:`~kiosk.rectorat.rules`: the push rules, item by item (the contract is
  docs/sync-protocol.md), and :mod:`~kiosk.rectorat.bulk`, the set-based path that
  decides the common items of a batch as they do;
- :mod:`~kiosk.rectorat.feed`: the change feed the kiosks pull, and login elsewhere;
- :mod:`~kiosk.rectorat.exam_office`: the exam office's setters and conflict resolution.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple, cast

from kiosk.clock import Clock
from kiosk.exam_sessions import ExamSession, load_session
from kiosk.passwords import Hasher
from kiosk.rectorat.bulk import BatchPath
from kiosk.rectorat.codes import Codes
from kiosk.rectorat.exam_office import ExamOffice
from kiosk.rectorat.feed import DEFAULT_LIMIT, Feed
from kiosk.rectorat.items import Invalid, derived_email_key, read_envelope
from kiosk.rectorat.kiosks import Credentials, KioskIdentity
from kiosk.rectorat.mail import RectoratMail
from kiosk.rectorat.rules import PushRules
from kiosk.rectorat.store import AddressChange, Conflict, Document, RectoratStore, Registration

__all__ = ["MAX_BATCH", "Publication", "RectoratService"]

log = logging.getLogger(__name__)

MAX_BATCH = 2000
PER_ITEM_RUNS = 20
"""After this many items sent down the per-item path, a batch's other items all go that
way: a batch that is mostly updates gains nothing from the set-based path."""


class Publication(NamedTuple):
    """A document published, and how its candidate was told: ``mailed``; ``mail_failed``
    (the mail could not leave, logged); ``not_mailed`` (no mail configured)."""

    document: Document
    told: str


class RectoratService:
    """The rectorat's rules over its store, with the one clock."""

    def __init__(
        self,
        store: RectoratStore,
        clock: Clock,
        hasher: Hasher | None = None,
        session_loader: Callable[[str, Clock], ExamSession] = load_session,
        mail: RectoratMail | None = None,
    ) -> None:
        self.store = store
        self.db = store.db
        self.clock = clock
        self.hasher = hasher or Hasher()
        self.credentials = Credentials(store, clock)
        self.rules = PushRules(store, clock, session_loader)
        self.feed = Feed(store, clock, self.hasher)
        self.exam_office = ExamOffice(store, clock, self.rules)
        self.codes = Codes(store, clock, self.hasher, self.feed.failures, self.rules.changed)
        # The reset codes asked for at a kiosk that does not hold the account go from here.
        self.mail = mail
        self._batch = BatchPath(self.rules)

    # -- credentials ----------------------------------------------------------------------

    def issue_credential(self, name: str, now: datetime | None = None) -> str:
        """A new kiosk's token (shown once; only its SHA-256 is kept). A revoked kiosk
        may be issued a new one under its name: it keeps its candidates."""
        return self.credentials.issue(name, now)

    def revoke_credential(self, name: str, now: datetime | None = None) -> None:
        self.credentials.revoke(name, now)

    def kiosks(self) -> list[tuple[str, datetime, datetime | None]]:
        """(name, created_at, revoked_at) of every kiosk, by name."""
        return self.credentials.kiosks()

    def authenticate(self, name: str, token: str) -> KioskIdentity | None:
        """The kiosk whose credential this is, or ``None`` (unknown, wrong or revoked)."""
        return self.credentials.authenticate(name, token)

    # -- sessions -------------------------------------------------------------------------

    def session(self, session_id: str) -> ExamSession | None:
        """The exam session by its id (a shipped name, never a path), cached."""
        return self.rules.session(session_id)

    # -- push -----------------------------------------------------------------------------

    def push(
        self, kiosk: KioskIdentity, items: Sequence[Any], now: datetime | None = None
    ) -> list[dict]:
        """Apply a batch in one transaction; one result per item, in order. ``items``: the
        decoded JSON items, or a :class:`~kiosk.rectorat.wire.PushedBody`.

        Set-based (:mod:`kiosk.rectorat.bulk`): the common items (a new account, a new
        registration whose account is known and held, a record sent again) are decided
        in Python against a view of the store read in one statement (two for records
        sent again) and written with one bulk statement a table. Anything else (updates,
        conflicts, deletions, address changes…) ends that run and goes through the
        per-item path (:mod:`kiosk.rectorat.rules`), which looks at the database again;
        a new run starts after it.
        """
        if len(items) > MAX_BATCH:
            raise ValueError(f"at most {MAX_BATCH} items a batch")
        now = now or self.clock.now()
        results: list[dict | None] = [None] * len(items)
        with self.store.write():
            i = 0
            per_item = 0
            while i < len(items):
                if per_item > PER_ITEM_RUNS:
                    for j in range(i, len(items)):
                        results[j] = self.rules.push_item(kiosk, items[j], now)
                    break
                i = self._batch.run(kiosk, items, i, now, results)
                if i < len(items):
                    results[i] = self.rules.push_item(kiosk, items[i], now)
                    per_item += 1
                    i += 1
        return cast("list[dict]", results)  # every item has its result now

    def sign_up(self, kiosk: KioskIdentity, item: object, now: datetime | None = None) -> dict:
        """An account a kiosk is making now, its address checked across the network first.

        ``taken`` when another account has the address: nothing is kept, no conflict is
        recorded, since the kiosk makes no account then. Else the push's own answer
        (``applied``: the account is the rectorat's from now on). Sign-ups of one
        address are taken one at a time, whichever process of the service serves them.
        """
        now = now or self.clock.now()
        shown_id, read = read_envelope(item)
        if isinstance(read, dict):
            return {"id": shown_id, **read}
        if read.entity != "account" or read.version != 1:
            return {"id": shown_id, "result": "refused", "reason": "invalid",
                    "detail": "a sign-up is a new account, version 1"}  # fmt: skip
        try:
            key = derived_email_key(str(read.data.get("email", "")))
        except Invalid as problem:
            return {"id": shown_id, "result": "refused", "reason": "invalid",
                    "detail": str(problem)}  # fmt: skip
        with self.store.write():
            self.rules.lock_address(key)
            owner = self.rules.email_owner(key)
            if owner is not None and owner != shown_id:
                return {"id": shown_id, "result": "taken"}
            return self.rules.push_item(kiosk, cast("Mapping[str, Any]", item), now)

    # -- pull and login elsewhere ---------------------------------------------------------

    def sequence(self) -> int:
        return self.feed.sequence()

    def changes(self, kiosk: KioskIdentity, after: int = 0, limit: int = DEFAULT_LIMIT) -> dict:
        """The kiosk's changes numbered after ``after``, in order, and the cursor to keep."""
        return self.feed.changes(kiosk, after, limit)

    def login(
        self, kiosk: KioskIdentity, email_key: str, password: str, now: datetime | None = None
    ) -> dict:
        """The account and its registrations, for a candidate whose account was made at
        another kiosk; records the kiosk's interest. Raises ``LoginRefused``."""
        return self.feed.login(kiosk, email_key, password, now)

    def activate(self, kiosk: KioskIdentity, email_key: object, code: object) -> dict:
        """Activate, with the code of its mail typed at ``kiosk``, an account made at
        another kiosk: the account and its registrations, which ``kiosk`` holds from
        then on. Raises :class:`~kiosk.rectorat.codes.CodeRefused`."""
        account_id = self.codes.activate_by_code(kiosk, email_key, code)
        return self.feed.lend(kiosk, account_id, self.clock.now())

    def request_reset(self, kiosk: KioskIdentity, email_key: object) -> None:
        """Mail a reset code to the owner of the active account of this address, if there
        is one; the asking kiosk is told nothing either way."""
        issued = self.codes.issue_reset(email_key)
        if issued is None:
            return
        if self.mail is None:
            log.error("no mail configured: the reset code asked for at %s is not sent", kiosk.name)
            return
        session = self._latest_session(issued.account_id)
        self.mail.reset_code(
            issued.email, issued.name, issued.code, issued.until, self.clock.now(), session
        )
        log.info("kiosk %s asked for a reset code, mailed by the rectorat", kiosk.name)

    def reset(
        self, kiosk: KioskIdentity, email_key: object, code: object, password: object
    ) -> dict:
        """A new password, with the reset code of its mail, for an account ``kiosk`` does
        not hold: the account and its registrations, which ``kiosk`` holds from then on.
        Raises :class:`~kiosk.rectorat.codes.CodeRefused` or ``PasswordRefused``."""
        account_id = self.codes.reset(kiosk, email_key, code, password)
        return self.feed.lend(kiosk, account_id, self.clock.now())

    def _latest_session(self, account_id: object) -> ExamSession | None:
        m = self.store
        latest = (
            m.Registration.select(m.Registration.session_id)
            .where(m.Registration.account_id == account_id)
            .order_by(m.Registration.created_at.desc())
            .first()
        )
        return None if latest is None else self.rules.session(latest.session_id)

    def activate_by_link(self, token: str) -> bool:
        """Activate the account whose mail holds this link; whether it did."""
        return self.codes.activate_by_link(token)

    # -- the exam office ------------------------------------------------------------------

    def set_paper_status(
        self,
        registration_id: uuid.UUID | str,
        status: str | None,
        missing: list[str] | None = None,
        now: datetime | None = None,
    ) -> None:
        """What the exam office made of the paper file; the kiosk shows it."""
        self.exam_office.set_paper_status(registration_id, status, missing, now)

    def set_aside(self, registration_id: uuid.UUID | str, now: datetime | None = None) -> None:
        """Set a registration aside: it no longer counts, and no kiosk can lift it."""
        self.exam_office.set_aside(registration_id, now)

    def correct_identity(
        self,
        registration_id: uuid.UUID | str,
        identity: Mapping[str, str],
        now: datetime | None = None,
    ) -> None:
        """Correct a registration's locked identity (see :class:`ExamOffice`)."""
        self.exam_office.correct_identity(registration_id, identity, now)

    def address_changes(self, *, pending_only: bool = True) -> list[AddressChange]:
        """The address changes reported after the close, to apply (see :class:`ExamOffice`)."""
        return self.exam_office.address_changes(pending_only=pending_only)

    def apply_address_change(
        self, change_id: uuid.UUID | str, by: str, now: datetime | None = None
    ) -> Registration:
        """The registration takes the reported address: a new version, synced back."""
        return self.exam_office.apply_address_change(change_id, by, now)

    def publish(
        self, code: str, content: bytes, title: str, by: str, now: datetime | None = None
    ) -> Publication:
        """Put a PDF at a candidate's disposal (raises
        :class:`~kiosk.rectorat.exam_office.NotPublished`), then tell them by mail, in
        their language, that it waits in « Mes documents » at any kiosk."""
        document = self.exam_office.publish(code, content, title, by, now)
        m = self.store
        account = m.Account.get_by_id(document.account_id)
        if self.mail is None:
            log.error("no mail configured: %s is not told of document %s", account.id, document.id)
            return Publication(document, "not_mailed")
        session = self._latest_session(account.id)
        sent = self.mail.document_published(account, document.title, self.clock.now(), session)
        return Publication(document, "mailed" if sent else "mail_failed")

    def document_content(self, kiosk: KioskIdentity, sha256: str) -> bytes | None:
        """A published PDF, for a kiosk that holds an account it was published for."""
        return self.exam_office.document_content(kiosk, sha256)

    def lift_login_delay(self, account_id: uuid.UUID | str) -> bool:
        """Forget an account's failed logins elsewhere, at every kiosk (in this process);
        whether there was anything to lift."""
        lifted = self.exam_office.lift_login_delay(account_id)
        m = self.store
        account = m.Account.get_or_none(m.Account.id == str(account_id))
        if account is not None and self.feed.failures.forget(account.email_key):
            lifted = True
        return lifted

    def conflicts(self, *, open_only: bool = True) -> list[Conflict]:
        return self.exam_office.conflicts(open_only=open_only)

    def resolve_conflict(
        self,
        conflict_id: uuid.UUID | str,
        resolution: str,
        *,
        by: str = "",
        now: datetime | None = None,
    ) -> dict:
        """Settle a conflict: ``keep_existing`` or ``apply_incoming`` (see
        :meth:`ExamOffice.resolve_conflict`); the push result of the apply."""
        return self.exam_office.resolve_conflict(conflict_id, resolution, by=by, now=now)
