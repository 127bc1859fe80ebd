"""« M'inscrire »: drafts, the saved registration and its versions, withdrawal, address changes.

A draft belongs to its account and is never a registration: only « Enregistrer » (``save``)
registers. Each saved change raises the version by one and e-mails the candidate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from peewee import IntegrityError

from kiosk import formatting
from kiosk.clock import Clock
from kiosk.delivery.mail_queue import enqueue_mail
from kiosk.errors import Refused
from kiosk.exam_sessions import ExamSession, WindowState
from kiosk.i18n import french
from kiosk.pieces import required_pieces
from kiosk.registration_form import (
    LOCKED_FIELDS,
    Values,
    blank_values,
    check,
)
from kiosk.store.models import Account, AddressChange, Draft, Registration

if TYPE_CHECKING:
    from kiosk.store.database import KioskStore

ADDRESS_FIELDS = ("address_line1", "address_line2", "postal_code", "town", "country", "phone")


@dataclass(frozen=True)
class Standing:
    """Where a candidate stands for the session, as the home screen tells it."""

    state: str  # none | draft | registered | withdrawn | validated | not_validated | paper_* …
    version: int
    saved_at: datetime | None
    has_draft: bool
    pieces: tuple[str, ...]
    paper_deadline: date
    missing: tuple[str, ...] = ()


class RegistrationService:
    """The registration rules, for one exam session, with the one clock."""

    def __init__(self, store: KioskStore, clock: Clock, session: ExamSession) -> None:
        self.store = store
        self.clock = clock
        self.session = session

    # -- reading ------------------------------------------------------------------------

    def registration(self, account: Account) -> Registration | None:
        registrations = self.store.Registration
        return registrations.get_or_none(
            registrations.account == account.id, registrations.session_id == self.session.id
        )

    def draft(self, account: Account) -> Draft | None:
        drafts = self.store.Draft
        return drafts.get_or_none(
            drafts.account == account.id, drafts.session_id == self.session.id
        )

    def form_values(self, account: Account) -> Values:
        """What the form opens with: the draft, else the saved answers, else a new form."""
        values = blank_values(self.session, account.family_name, account.given_names)
        registration = self.registration(account)
        if registration is not None and registration.status != "withdrawn":
            values.update(registration.answers)
        draft = self.draft(account)
        if draft is not None:
            values.update(draft.values)
        if registration is not None:
            values.update({name: registration.answers.get(name, "") for name in LOCKED_FIELDS})
        return values

    def locked_fields(self, account: Account) -> tuple[str, ...]:
        """The fields the candidate may no longer change (only the exam office corrects them)."""
        return LOCKED_FIELDS if self.registration(account) is not None else ()

    def standing(self, account: Account) -> Standing:
        registration = self.registration(account)
        has_draft = self.draft(account) is not None
        closed = self.session.window_state(self.clock.now()) is WindowState.CLOSED
        if registration is None:
            state = "not_validated" if closed else ("draft" if has_draft else "none")
            return Standing(state, 0, None, has_draft, (), self.session.paper_deadline)
        state = registration.status
        if registration.paper_status:
            state = f"paper_{registration.paper_status}"
        elif state == "registered" and closed:
            state = "validated"
        pieces = (
            tuple(required_pieces(registration.answers, self.session))
            if state != "withdrawn"
            else ()
        )
        return Standing(
            state,
            registration.version,
            registration.saved_at,
            has_draft,
            pieces,
            self.session.paper_deadline,
            missing=tuple(registration.missing_pieces or ()),
        )

    # -- changing -----------------------------------------------------------------------

    def save_draft(self, account: Account, values: Mapping[str, Any]) -> None:
        """Keep what was typed, valid or not, for this account only."""
        now = self.clock.now()
        with self.store.atomic():
            draft = self.draft(account)
            if draft is None:
                self.store.Draft.create(
                    account=account.id,
                    session_id=self.session.id,
                    values=dict(values),
                    created_at=now,
                    updated_at=now,
                )
            else:
                draft.values = dict(values)
                draft.touch(now)
                draft.save()

    def discard_draft(self, account: Account) -> None:
        drafts = self.store.Draft
        drafts.delete().where(
            drafts.account == account.id, drafts.session_id == self.session.id
        ).execute()

    def save(self, account: Account, values: Mapping[str, Any]) -> Registration:
        """« Enregistrer »: the first save registers (version 1), each change adds one."""
        now = self.clock.now()
        self._require_open(now)
        registration = self.registration(account)
        if registration is not None and registration.status == "set_aside":
            raise Refused.one("", "registration.set_aside")
        values = dict(values)
        if registration is not None:
            # Locked fields keep their saved value whatever the form sends.
            values.update({name: registration.answers.get(name, "") for name in LOCKED_FIELDS})
        checked = check(values, self.session)
        if not checked.ok:
            raise Refused(checked.problems)
        answers = checked.answers
        if (
            registration is not None
            and registration.status == "registered"
            and registration.answers == answers
        ):
            self.discard_draft(account)
            raise Refused.one("", "registration.unchanged")
        with self.store.atomic():
            if registration is None:
                try:
                    registration = self.store.Registration.create(
                        account=account.id,
                        session_id=self.session.id,
                        answers=answers,
                        status="registered",
                        saved_at=now,
                        created_at=now,
                        updated_at=now,
                    )
                except IntegrityError:
                    # The same candidate saved a first time a moment ago, elsewhere.
                    raise Refused.one("", "registration.conflict") from None
                accounts = self.store.Account
                accounts.update(
                    family_name=answers["family_name"],
                    given_names=answers["given_names"],
                    updated_at=now,
                    version=accounts.version + 1,
                ).where(accounts.id == account.id).execute()
                account.family_name, account.given_names = (
                    answers["family_name"],
                    answers["given_names"],
                )
                self._mail(account, registration, "registered", now)
            else:
                # After a withdrawal, saving registers anew: the candidate gets a confirmation.
                event = "registered" if registration.status == "withdrawn" else "changed"
                registration.answers = answers
                registration.status = "registered"
                registration.saved_at = now
                registration.withdrawn_at = None
                registration.touch(now)
                registration.save()
                self._mail(account, registration, event, now)
            self.discard_draft(account)
        return registration

    def withdraw(self, account: Account) -> Registration:
        """The candidate's own withdrawal (« désinscription »), while the window is open."""
        now = self.clock.now()
        self._require_open(now)
        registration = self.registration(account)
        if registration is None or registration.status != "registered":
            raise Refused.one("", "registration.nothing_to_withdraw")
        with self.store.atomic():
            registration.status = "withdrawn"
            registration.withdrawn_at = now
            registration.touch(now)
            registration.save()
            self.discard_draft(account)
            self._mail(account, registration, "withdrawn", now)
        return registration

    def report_address_change(self, account: Account, values: Mapping[str, Any]) -> AddressChange:
        """« Signaler un changement d'adresse »: recorded, and sent to the rectorat, even after
        closing."""
        registration = self.registration(account)
        if registration is None or registration.status == "withdrawn":
            raise Refused.one("", "address.no_registration")
        merged = {**registration.answers, **{name: values.get(name, "") for name in ADDRESS_FIELDS}}
        checked = check(merged, self.session)
        problems = {name: p for name, p in checked.problems.items() if name in ADDRESS_FIELDS}
        if problems:
            raise Refused(problems)
        address = {name: checked.answers.get(name, "") for name in ADDRESS_FIELDS}
        now = self.clock.now()
        with self.store.atomic():
            change = self.store.AddressChange.create(
                registration=registration.id, address=address, created_at=now, updated_at=now
            )
            params = self._mail_params(account, registration, now)
            params["address"] = "\n".join(
                filter(
                    None,
                    (
                        address["address_line1"],
                        address["address_line2"],
                        f"{address['postal_code']} {address['town']}",
                        address["country"],
                    ),
                )
            )
            params["phone"] = address["phone"]
            enqueue_mail(
                self.store,
                self.session.contact.email,
                french("mail.address_change.subject", **params),
                french("mail.address_change.body", **params),
                now,
            )
        return change

    # -- helpers ------------------------------------------------------------------------

    def _require_open(self, now: datetime) -> None:
        state = self.session.window_state(now)
        if state is WindowState.NOT_YET_OPEN:
            raise Refused.one(
                "",
                "registration.not_yet_open",
                opens=formatting.instant(self.session.opens, self.session.zone),
            )
        if state is WindowState.CLOSED:
            raise Refused.one(
                "",
                "registration.closed",
                closes=formatting.instant(self.session.closes, self.session.zone),
            )

    def _mail_params(
        self, account: Account, registration: Registration, now: datetime
    ) -> dict[str, Any]:
        answers = registration.answers
        given = answers.get("given_names", account.given_names)
        family = answers.get("family_name", account.family_name)
        return {
            "name": f"{given} {family}",
            "email": account.email,
            "exam": self.session.title,
            "version": registration.version,
            "saved_at": formatting.instant(now, self.session.zone),
            "closes": formatting.instant(self.session.closes, self.session.zone),
            "paper_deadline": formatting.day(self.session.paper_deadline),
            "contact": "\n".join(
                (
                    self.session.contact.name,
                    self.session.contact.bureau,
                    *self.session.contact.address,
                )
            ),
            "contact_email": self.session.contact.email,
            "reference": registration.reference,
        }

    def _mail(
        self, account: Account, registration: Registration, event: str, now: datetime
    ) -> None:
        params = self._mail_params(account, registration, now)
        pieces = required_pieces(registration.answers, self.session)
        params["pieces"] = "\n".join(f" – {french(f'pieces.{piece}.title')}" for piece in pieces)
        enqueue_mail(
            self.store,
            account.email,
            french(f"mail.{event}.subject", **params),
            french(f"mail.{event}.body", **params),
            now,
        )
