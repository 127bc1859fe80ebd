"""The outbox: everything that leaves the kiosk is first a row written with its cause.

A service writes the outbox row in the same transaction as the change that causes it,
so that a crash loses both or neither. A delivery worker then sends what is due, and
retries with a growing delay when the other side is down.

A mail that carries a one-time code holds no code while it waits: its body has a mark
where the code goes and its row names the code (``code_id``). The code is made when
the mail is sent, its hash stored first (:func:`kiosk.codes.code_for_mail`); so the
store's file never holds a usable code, queued or sent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from kiosk.clock import Clock
from kiosk.passwords import Hasher
from kiosk.runtime.config import MailConfig
from kiosk.store.models import OutboxRow

if TYPE_CHECKING:
    from email.message import EmailMessage

    from kiosk.store.database import KioskStore

log = logging.getLogger(__name__)

FIRST_RETRY = timedelta(seconds=30)
LAST_RETRY = timedelta(hours=1)
# How long a mail taken by one delivery is left alone by any other (a timer's and a save's
# deliveries in the kiosk, ``kiosk deliver`` beside it): a code mail sent twice would
# carry two codes, and only the second would work. A delivery that dies with the mail in
# hand leaves it to be sent again once this has passed.
CLAIM = timedelta(minutes=2)


def enqueue(store: KioskStore, kind: str, payload: dict[str, Any], now: datetime) -> OutboxRow:
    """Add a row to ``store``'s outbox; call it inside the transaction of the change that
    causes it."""
    return store.OutboxRow.create(
        kind=kind, payload=payload, created_at=now, updated_at=now, next_attempt_at=now
    )


def enqueue_mail(
    store: KioskStore,
    to: str,
    subject: str,
    body: str,
    now: datetime,
    attachments: list[dict[str, str]] | None = None,
    code_id: str | None = None,
) -> OutboxRow:
    """Queue a mail; each attachment is ``{"path": …, "filename": …}`` of a PDF kept on disk.

    With ``code_id``, the body has :data:`kiosk.codes.CODE_MARK` where that one-time
    code goes: it is made when the mail is sent.
    """
    from email.utils import make_msgid

    domain = to.rpartition("@")[2].encode("idna").decode("ascii") if to.isascii() else "kiosk.local"
    payload: dict[str, Any] = {
        "to": to,
        "subject": subject,
        "body": body,
        "message_id": make_msgid(domain=domain),
        "date": now.isoformat(),
    }
    if attachments:
        payload["attachments"] = attachments
    if code_id is not None:
        payload["code_id"] = code_id
    return enqueue(store, "mail", payload, now)


def retry_delay(attempts: int) -> timedelta:
    """30 s after the first failure, doubling, at most an hour."""
    return min(FIRST_RETRY * (2 ** max(attempts - 1, 0)), LAST_RETRY)


def pending_count(store: KioskStore, kind: str | None = None) -> int:
    rows = store.OutboxRow
    query = rows.select().where(rows.delivered_at.is_null(), rows.failed_at.is_null())
    if kind:
        query = query.where(rows.kind == kind)
    return query.count()


class MailTransport(Protocol):
    def send(self, message: EmailMessage, key: str) -> None: ...


def compose(payload: dict[str, Any], sender: str) -> EmailMessage:
    from email.message import EmailMessage
    from email.utils import format_datetime

    message = EmailMessage()
    message["From"] = sender
    message["To"] = payload["to"]
    message["Subject"] = payload["subject"]
    message["Message-ID"] = payload["message_id"]
    message["Date"] = format_datetime(datetime.fromisoformat(payload["date"]))
    message.set_content(payload["body"])
    for attachment in payload.get("attachments", ()):
        # A missing file is an error worth retrying later, not a mail without its PDF.
        data = Path(attachment["path"]).read_bytes()
        message.add_attachment(
            data, maintype="application", subtype="pdf", filename=attachment["filename"]
        )
    return message


@dataclass(frozen=True)
class DeliveryReport:
    sent: int
    retrying: int
    failed: int


class MailDelivery:
    """Sends the mail rows of ``store``'s outbox that are due through the configured transport."""

    def __init__(
        self,
        store: KioskStore,
        config: MailConfig,
        maildir: Path,
        clock: Clock,
        hasher: Hasher | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.maildir = maildir
        self.sender = config.sender
        self.clock = clock
        # Hashes the one-time codes made as their mails are sent.
        self.hasher = hasher or Hasher()

    @cached_property
    def transport(self) -> MailTransport:
        # Made on first delivery, in a worker: smtplib and ssl need not load at start-up.
        from kiosk.delivery.mail_transport import transport_from_config

        return transport_from_config(self.config, self.maildir)

    def deliver_due(self, limit: int = 50) -> DeliveryReport:
        # Imported here so that the outbox stays usable without the transports' imports.
        from kiosk.codes import code_for_mail
        from kiosk.delivery.mail_transport import DeliveryError, PermanentDeliveryError

        sent = retrying = failed = 0
        now = self.clock.now()
        rows = self.store.OutboxRow
        due = (
            rows.select()
            .where(
                rows.kind == "mail",
                rows.delivered_at.is_null(),
                rows.failed_at.is_null(),
                rows.next_attempt_at <= now,
            )
            .order_by(rows.created_at)
            .limit(limit)
        )
        for row in list(due):
            if not self._claim(row, now):
                continue  # another delivery has it
            payload = row.payload
            if "code_id" in payload:
                code = code_for_mail(self.store, self.hasher, payload["code_id"], self.clock.now())
                if code is None:
                    self._record_pointless(row)
                    continue
                payload = {**payload, "body": code.fill(payload["body"])}
            try:
                try:
                    message = compose(payload, self.sender)
                except OSError as error:
                    raise DeliveryError(f"attachment unreadable: {error}") from error
                self.transport.send(message, row.id.hex)
            except PermanentDeliveryError as error:
                self._record_failure(row, str(error), permanent=True)
                failed += 1
            except DeliveryError as error:
                self._record_failure(row, str(error), permanent=False)
                retrying += 1
            else:
                self._record_delivery(row)
                sent += 1
        return DeliveryReport(sent, retrying, failed)

    def _claim(self, row: OutboxRow, now: datetime) -> bool:
        """Take ``row`` for this delivery alone; ``False`` if another took it first."""
        rows = self.store.OutboxRow
        taken = (
            rows.update(next_attempt_at=now + CLAIM, version=rows.version + 1)
            .where(
                rows.id == row.id,
                rows.delivered_at.is_null(),
                rows.failed_at.is_null(),
                rows.next_attempt_at == row.next_attempt_at,
            )
            .execute()
        )
        return taken == 1

    def _record_delivery(self, row: OutboxRow) -> None:
        now = self.clock.now()
        # The body may hold a one-time code: once sent it has nothing left to do here.
        payload = {k: v for k, v in row.payload.items() if k != "body"}
        rows = self.store.OutboxRow
        rows.update(
            payload=payload,
            delivered_at=now,
            updated_at=now,
            attempts=rows.attempts + 1,
            version=rows.version + 1,
            last_error=None,
        ).where(rows.id == row.id).execute()

    def _record_pointless(self, row: OutboxRow) -> None:
        """A code mail whose code was spent, replaced or expired before it could leave:
        not sent (a later mail, if any, has the valid code)."""
        now = self.clock.now()
        log.info("mail %s not sent: its code is no longer valid", row.id)
        payload = {k: v for k, v in row.payload.items() if k != "body"}
        rows = self.store.OutboxRow
        rows.update(
            payload=payload,
            failed_at=now,
            last_error="code no longer valid: not sent",
            updated_at=now,
            version=rows.version + 1,
        ).where(rows.id == row.id).execute()

    def _record_failure(self, row: OutboxRow, error: str, *, permanent: bool) -> None:
        now = self.clock.now()
        attempts = row.attempts + 1
        log.warning("mail %s not delivered (attempt %d): %s", row.id, attempts, error)
        rows = self.store.OutboxRow
        rows.update(
            attempts=attempts,
            last_error=error[:500],
            next_attempt_at=now + retry_delay(attempts),
            failed_at=now if permanent else None,
            updated_at=now,
            version=rows.version + 1,
        ).where(rows.id == row.id).execute()
