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

from kiosk import candidate_actions, formatting
from kiosk.candidate_actions import Action, State
from kiosk.clock import Clock
from kiosk.delivery.mail_queue import enqueue_mail
from kiosk.errors import Refused
from kiosk.exam_sessions import ExamSession
from kiosk.i18n import Messages, french
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
    paper_deadline: date | None  # None: the session gives no date, and none is told
    missing: tuple[str, ...] = ()
    # The row of kiosk.candidate_actions.TABLE, and what its cell offers now.
    kind: State = State.NONE
    actions: frozenset[Action] = frozenset()
    to_do: bool = False


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

    def address_on_file(self, account: Account) -> Values:
        """The address the registration holds, as saved: what a change of address starts
        from, and the « ancienne adresse » of its notice (never a draft's)."""
        registration = self.registration(account)
        answers = {} if registration is None else registration.answers
        return {name: answers.get(name, "") for name in ADDRESS_FIELDS}

    def locked_fields(self, account: Account) -> tuple[str, ...]:
        """The fields the candidate may no longer change (only the exam office corrects them)."""
        return LOCKED_FIELDS if self.registration(account) is not None else ()

    def standing(self, account: Account) -> Standing:
        registration = self.registration(account)
        has_draft = self.draft(account) is not None
        moment = self.session.window_state(self.clock.now())
        kind = candidate_actions.state_of(
            registration.status if registration else None,
            registration.paper_status if registration else None,
            has_draft,
        )
        cell = candidate_actions.cell(kind, moment)
        state = cell.standing.removeprefix("standing.")
        if registration is None:
            return Standing(
                state,
                0,
                None,
                has_draft,
                (),
                self.session.paper_deadline,
                kind=kind,
                actions=cell.actions,
                to_do=cell.to_do,
            )
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
            kind=kind,
            actions=cell.actions,
            to_do=cell.to_do,
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
        registration = self.registration(account)
        self._require(None, account, registration, now)
        values = dict(values)
        kept = None
        if registration is not None:
            # Locked fields keep their saved value whatever the form sends, as it is stored:
            # one that breaks a rule of the form is the exam office's to correct, and must
            # not stop the candidate from saving the rest.
            kept = {name: registration.answers.get(name, "") for name in LOCKED_FIELDS}
            values.update(kept)
        checked = check(values, self.session, kept=kept)
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
        registration = self.registration(account)
        self._require(Action.WITHDRAW, account, registration, now)
        assert registration is not None  # the table offers no withdrawal without one
        with self.store.atomic():
            registration.status = "withdrawn"
            registration.withdrawn_at = now
            registration.touch(now)
            registration.save()
            self.discard_draft(account)
            self._mail(account, registration, "withdrawn", now)
        return registration

    def report_address_change(
        self, account: Account, values: Mapping[str, Any]
    ) -> Registration | AddressChange:
        """« Changement d'adresse ». Where the candidate may change the registration (the
        window open, the file not validated), a change of it: a new version, its
        confirmation and its mail. Elsewhen a notice for the exam office, which applies it
        (kiosk.rectorat.exam_office): recorded, synced, and mailed to the rectorat."""
        now = self.clock.now()
        registration = self.registration(account)
        self._require(Action.ADDRESS, account, registration, now)
        assert registration is not None  # the table offers no address change without one
        merged = {**registration.answers, **{name: values.get(name, "") for name in ADDRESS_FIELDS}}
        checked = check(merged, self.session)
        problems = {name: p for name, p in checked.problems.items() if name in ADDRESS_FIELDS}
        if problems:
            raise Refused(problems)
        state = candidate_actions.state_of(registration.status, registration.paper_status)
        cell = candidate_actions.cell(state, self.session.window_state(now))
        if Action.CHANGE in cell.actions:
            # Changes of the form not saved yet stay a draft, with the new address.
            draft = self.draft(account)
            try:
                return self.save(account, merged)
            finally:
                if draft is not None:
                    new_address = {name: values.get(name, "") for name in ADDRESS_FIELDS}
                    self.save_draft(account, {**draft.values, **new_address})
        address = {name: checked.answers.get(name, "") for name in ADDRESS_FIELDS}
        now = self.clock.now()
        with self.store.atomic():
            change = self.store.AddressChange.create(
                registration=registration.id, address=address, created_at=now, updated_at=now
            )
            # A session that gives no e-mail for the rectorat gets no mail (none is guessed):
            # the change still reaches the rectorat with the next sync.
            if self.session.contact.email:
                # The rectorat's office reads French, whatever the candidate's language.
                params = self._mail_params(account, registration, now, french)
                lines = [
                    address["address_line1"],
                    address["address_line2"],
                    f"{address['postal_code']} {address['town']}".strip(),
                    address["country"],
                ]
                if address["phone"]:
                    lines.append(french("contact.phone", phone=address["phone"]))
                params["address"] = "\n".join(line for line in lines if line)
                enqueue_mail(
                    self.store,
                    self.session.contact.email,
                    french("mail.address_change.subject", **params),
                    french("mail.address_change.body", **params),
                    now,
                )
        return change

    # -- helpers ------------------------------------------------------------------------

    def _require(
        self,
        action: Action | None,
        account: Account,
        registration: Registration | None,
        now: datetime,
    ) -> None:
        """Refuse, with its French reason, what kiosk.candidate_actions does not offer now;
        ``None`` stands for « Enregistrer », a registration or a change as the state makes it."""
        # A draft matters only without a registration, and is read only then.
        has_draft = registration is None and self.draft(account) is not None
        state = candidate_actions.state_of(
            registration.status if registration else None,
            registration.paper_status if registration else None,
            has_draft,
        )
        if action is None:
            action = candidate_actions.save_action(state)
        key = candidate_actions.refusal(state, self.session.window_state(now), action)
        if key is not None:
            raise Refused.one(
                "",
                key,
                opens=formatting.instant(self.session.opens, self.session.zone),
                closes=formatting.instant(self.session.closes, self.session.zone),
            )

    def _mail_params(
        self, account: Account, registration: Registration, now: datetime, messages: Messages
    ) -> dict[str, Any]:
        answers = registration.answers
        given = answers.get("given_names", account.given_names)
        family = answers.get("family_name", account.family_name)
        session = self.session
        deadline = session.paper_deadline
        return {
            "name": f"{given} {family}",
            "email": account.email,
            "exam": session.title,
            "version": registration.version,
            "saved_at": formatting.instant(now, session.zone, messages),
            "closes": formatting.instant(session.closes, session.zone, messages),
            "paper_deadline": formatting.day(deadline, messages) if deadline else "",
            "contact": "\n".join(session.contact.postal_lines()),
            "signature": session.contact.signature(messages),
            "reference": registration.reference,
        }

    def _mail(
        self, account: Account, registration: Registration, event: str, now: datetime
    ) -> None:
        messages = Messages(account.language)
        params = self._mail_params(account, registration, now, messages)
        pieces = required_pieces(registration.answers, self.session)
        params["pieces"] = "\n".join(f" – {messages(f'pieces.{piece}.title')}" for piece in pieces)
        if event in ("registered", "changed"):
            # What to post, and by when only if the session gives a date.
            post = f"mail.post.{event}_by" if self.session.paper_deadline else f"mail.post.{event}"
            params["post"] = messages(post, **params)
        enqueue_mail(
            self.store,
            account.email,
            messages(f"mail.{event}.subject", **params),
            messages(f"mail.{event}.body", **params),
            now,
        )
