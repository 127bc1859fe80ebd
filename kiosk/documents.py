"""« Mes documents »: the confirmation of each registration version, printed, mailed or kept.

The PDF for the current version is made when the candidate first asks for it; a new
version's PDF supersedes the older one, which stays listed as superseded.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from kiosk import candidate_actions
from kiosk.candidate_actions import Action
from kiosk.clock import Clock
from kiosk.delivery.mail_queue import enqueue_mail
from kiosk.errors import Refused
from kiosk.exam_sessions import ExamSession
from kiosk.i18n import Messages
from kiosk.store.models import Account, Document, Registration

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
        """The current version's document (made now if needed), then the superseded ones."""
        registration = self._registration(account)
        if registration is None:
            return []
        printable = self._printable(registration) is None
        if printable:
            self._ensure(registration, account)
        documents = self.store.Document
        rows = (
            documents.select()
            .where(documents.registration == registration.id)
            .order_by(documents.registration_version.desc())
        )
        return [
            DocumentView(
                id=str(row.id),
                reference=registration.reference,
                registration_version=row.registration_version,
                created_at=row.created_at,
                # A withdrawn or set-aside registration has nothing left to send, not even
                # its last version.
                superseded=not printable or row.superseded_at is not None,
                size=row.size,
            )
            for row in rows
        ]

    def _ensure(self, registration: Registration, account: Account) -> Document:
        documents = self.store.Document
        existing = documents.get_or_none(
            documents.registration == registration.id,
            documents.registration_version == registration.version,
        )
        if existing is not None and self.path(existing).exists():
            return existing
        from kiosk.delivery.pdf import render_confirmation

        now = self.clock.now()
        pdf = render_confirmation(registration, account.email, self.session, now)
        name = f"confirmation-{registration.reference}-v{registration.version}.pdf"
        self._write(name, pdf)
        with self.store.atomic():
            if existing is not None:
                existing.delete_instance()
            documents.update(
                superseded_at=now, updated_at=now, version=documents.version + 1
            ).where(
                documents.registration == registration.id, documents.superseded_at.is_null()
            ).execute()
            return documents.create(
                registration=registration.id,
                registration_version=registration.version,
                file_name=name,
                sha256=hashlib.sha256(pdf).hexdigest(),
                size=len(pdf),
                created_at=now,
                updated_at=now,
            )

    def _write(self, name: str, data: bytes) -> None:
        """Written whole or not at all: a power cut leaves no half PDF under the final name."""
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        final = self.folder / name
        partial = final.with_suffix(".part")
        try:
            descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with open(descriptor, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(partial, final)
        except OSError:
            # A full or failing disk: nothing half-written is left, under either name.
            partial.unlink(missing_ok=True)
            raise
        # The new name itself must survive a power cut: the store will list the file.
        descriptor = os.open(self.folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)

    def path(self, document: Document) -> Path:
        return self.folder / document.file_name

    def _own(self, account: Account, document_id: str) -> tuple[Document, Registration]:
        registration = self._registration(account)
        document = self.store.Document.get_or_none(self.store.Document.id == document_id)
        if registration is None or document is None or document.registration_id != registration.id:
            raise Refused.one("", "documents.unknown")
        refusal = self._printable(registration)
        if refusal is not None:
            raise Refused.one("", refusal)
        if document.superseded_at is not None:
            # The rectorat must receive only the current version of a live registration.
            raise Refused.one("", "documents.not_current")
        return document, registration

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
        title = f"Confirmation {registration.reference} v{document.registration_version}"
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
            "signature": self.session.contact.signature(messages),
        }
        with self.store.atomic():
            enqueue_mail(
                self.store,
                account.email,
                messages("mail.document.subject", **params),
                messages("mail.document.body", **params),
                now,
                attachments=[{"path": str(self.path(document)), "filename": document.file_name}],
            )
