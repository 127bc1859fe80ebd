"""« Mes documents »: the confirmation of each registration version, the notice of an
address change reported after the close, and the documents the exam office published;
printed, mailed or kept.

The PDF for the current version is made when the candidate first asks for it; a new
version's PDF supersedes the older one, which stays listed as superseded. A notice is
made when the change is reported; a published document arrives with the sync
(kiosk.sync.client) and is listed once its bytes are here and checked.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from kiosk import candidate_actions, formatting
from kiosk.candidate_actions import Action
from kiosk.clock import Clock
from kiosk.delivery.mail_queue import enqueue_mail
from kiosk.errors import Refused
from kiosk.exam_sessions import ExamSession
from kiosk.i18n import Messages, french
from kiosk.pdf_check import sha256_of
from kiosk.private import write_durably
from kiosk.registrations import ADDRESS_FIELDS
from kiosk.store.models import Account, AddressChange, Document, Registration

if TYPE_CHECKING:
    from kiosk.delivery.printing import PrintJob
    from kiosk.store.database import KioskStore

log = logging.getLogger(__name__)


class Printer(Protocol):
    """What prints a document: a CUPS queue or the print folder (kiosk.delivery.printing)."""

    def print(self, path: Path, title: str) -> PrintJob: ...


@dataclass(frozen=True)
class DocumentView:
    """A document as « Mes documents » lists it."""

    id: str
    reference: str
    registration_version: int
    created_at: datetime
    superseded: bool
    size: int
    kind: str = "confirmation"  # confirmation | address_notice | published
    title: str = ""  # a published document's, as the exam office gave it


# How « Mes documents » orders the kinds: the confirmation to sign first.
_KIND_ORDER = {"confirmation": 0, "published": 1, "address_notice": 2}


class DocumentService:
    """Makes, lists and hands out the candidate's documents."""

    def __init__(
        self,
        store: KioskStore,
        clock: Clock,
        session: ExamSession,
        folder: Path,
        printer: Callable[[], Printer],
    ) -> None:
        self.store = store
        self.clock = clock
        self.session = session
        self.folder = folder
        self._printer = printer

    def _registration(self, account: Account) -> Registration | None:
        registrations = self.store.Registration
        return registrations.get_or_none(
            registrations.account == account.id, registrations.session_id == self.session.id
        )

    def documents(self, account: Account) -> list[DocumentView]:
        """The current version's confirmation (made now if needed), the documents published
        and the notices, newest first, then the superseded confirmations."""
        registration = self._registration(account)
        if registration is None:
            return []
        printable = self._printable(registration) is None
        if printable:
            self._ensure(registration, account)
        documents = self.store.Document
        rows = (
            documents.select()
            .where(
                documents.registration == registration.id,
                (documents.kind != "published") | documents.stored_at.is_null(False),
            )
            .order_by(documents.registration_version.desc(), documents.created_at.desc())
        )
        views = [
            DocumentView(
                id=str(row.id),
                reference=registration.reference,
                registration_version=row.registration_version,
                created_at=row.created_at,
                # A withdrawn or set-aside registration has no confirmation left to send,
                # not even its last version.
                superseded=row.kind == "confirmation"
                and (
                    not printable
                    or row.superseded_at is not None
                    or row.registration_version != registration.version
                ),
                size=row.size,
                kind=row.kind,
                title=row.title,
            )
            for row in rows
        ]
        return sorted(views, key=lambda v: (v.superseded, _KIND_ORDER.get(v.kind, 3)))

    def _ensure(self, registration: Registration, account: Account) -> Document:
        documents = self.store.Document
        existing = documents.get_or_none(
            documents.registration == registration.id,
            documents.registration_version == registration.version,
            documents.kind == "confirmation",
        )
        if existing is not None and self.path(existing).exists():
            return existing
        from kiosk.delivery.pdf import render_confirmation

        now = self.clock.now()
        pdf = render_confirmation(registration, account.email, self.session, now)
        name = f"confirmation-{registration.reference}-v{registration.version}.pdf"
        write_durably(self.folder, name, pdf)
        with self.store.atomic():
            if existing is not None:
                existing.delete_instance()
            documents.update(
                superseded_at=now, updated_at=now, version=documents.version + 1
            ).where(
                documents.registration == registration.id,
                documents.kind == "confirmation",
                documents.superseded_at.is_null(),
            ).execute()
            return documents.create(
                registration=registration.id,
                registration_version=registration.version,
                file_name=name,
                sha256=sha256_of(pdf),
                size=len(pdf),
                created_at=now,
                updated_at=now,
            )

    def path(self, document: Document) -> Path:
        return self.folder / document.file_name

    def _own(self, account: Account, document_id: str) -> tuple[Document, Registration]:
        registration = self._registration(account)
        document = self.store.Document.get_or_none(self.store.Document.id == document_id)
        if registration is None or document is None or document.registration_id != registration.id:
            raise Refused.one("", "documents.unknown")
        if document.kind == "published" and document.stored_at is None:
            raise Refused.one("", "documents.unknown")
        if document.kind != "confirmation":
            # A notice or a published document stays the candidate's, whatever the state.
            return document, registration
        refusal = self._printable(registration)
        if refusal is not None:
            raise Refused.one("", refusal)
        if (
            document.superseded_at is not None
            or document.registration_version != registration.version
        ):
            # The rectorat must receive only the current version of a live registration;
            # a later version may have come from the rectorat before its confirmation is made.
            raise Refused.one("", "documents.not_current")
        return document, registration

    def title(self, document: Document, messages: Messages) -> str:
        """What a document is called: on the print queue, in a mail."""
        if document.kind == "published":
            return document.title
        if document.kind == "address_notice":
            return messages("documents.notice_title")
        return messages("documents.confirmation_title", version=document.registration_version)

    def _printable(self, registration: Registration) -> str | None:
        """Why kiosk.candidate_actions refuses to print this registration's confirmation
        now, or ``None``."""
        state = candidate_actions.state_of(registration.status, registration.paper_status)
        moment = self.session.window_state(self.clock.now())
        return candidate_actions.refusal(state, moment, Action.PRINT)

    def print(self, account: Account, document_id: str) -> PrintJob:
        """Print one document; a printer problem is refused with its message name."""
        from kiosk.delivery.printing import PrintProblem

        document, registration = self._own(account, document_id)
        title = f"{self.title(document, french)} {registration.reference}"
        try:
            return self._printer().print(self.path(document), title)
        except PrintProblem as problem:
            log.warning("printing %s failed: %s (%s)", title, problem.key, problem.detail)
            raise Refused.one("", problem.key) from None

    def email(self, account: Account, document_id: str) -> None:
        """Queue the document, attached, to the candidate's own address."""
        document, registration = self._own(account, document_id)
        now = self.clock.now()
        messages = Messages(account.language)
        params = {
            "name": account.display_name,
            "exam": self.session.title,
            "reference": registration.reference,
            "version": document.registration_version,
            "title": self.title(document, messages),
            "signature": self.session.contact.signature(messages),
        }
        if document.kind == "confirmation":
            subject, body = "mail.document.subject", "mail.document.body"
        else:
            subject, body = "mail.attached.subject", "mail.attached.body"
        attachment = {"path": str(self.path(document)), "filename": _mailed_name(document)}
        with self.store.atomic():
            enqueue_mail(
                self.store,
                account.email,
                messages(subject, **params),
                messages(body, **params),
                now,
                attachments=[attachment],
            )

    # -- the notice of an address change --------------------------------------------------

    def address_notice(self, account: Account, change: AddressChange, before: Mapping) -> Document:
        """The « Avis de changement d'adresse » of a change reported after the close: made,
        listed in « Mes documents », and mailed to the candidate, who keeps a copy."""
        from kiosk.delivery.pdf import render_address_notice

        registration = self._registration(account)
        assert registration is not None  # a change is reported for a registration
        old = {name: str(before.get(name) or "") for name in ADDRESS_FIELDS}
        new = {name: str(change.address.get(name) or "") for name in ADDRESS_FIELDS}
        pdf = render_address_notice(
            registration, account.email, old, new, self.session, change.created_at
        )
        name = f"avis-adresse-{registration.reference}-{str(change.id)[:8]}.pdf"
        write_durably(self.folder, name, pdf)
        now = self.clock.now()
        messages = Messages(account.language)
        lines = [new["address_line1"], new["address_line2"],
                 f"{new['postal_code']} {new['town']}".strip(), new["country"]]  # fmt: skip
        params = {
            "name": account.display_name,
            "exam": self.session.title,
            "reference": registration.reference,
            "reported_at": formatting.instant(change.created_at, self.session.zone, messages),
            "address": "\n".join(line for line in lines if line),
            "signature": self.session.contact.signature(messages),
        }
        with self.store.atomic():
            document = self.store.Document.create(
                registration=registration.id,
                registration_version=registration.version,
                kind="address_notice",
                source_id=str(change.id),
                file_name=name,
                sha256=sha256_of(pdf),
                size=len(pdf),
                created_at=now,
                updated_at=now,
            )
            enqueue_mail(
                self.store,
                account.email,
                messages("mail.address_notice.subject", **params),
                messages("mail.address_notice.body", **params),
                now,
                attachments=[{"path": str(self.path(document)), "filename": name}],
            )
        return document


def _mailed_name(document: Document) -> str:
    """The attachment's name: a published file is kept by its hash, mailed by its title."""
    if document.kind != "published":
        return document.file_name
    words = "".join(c if c.isalnum() else "-" for c in document.title).strip("-")
    return f"{words[:60] or 'document'}.pdf"
