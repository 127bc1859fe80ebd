"""The mail the rectorat sends itself: a password-reset code asked for at a kiosk that
does not hold the account, mailed to its owner; the notice that the exam office put a
document at a candidate's disposal.

The rectorat tells the asking kiosk nothing about the address (a kiosk's credential may
be in hostile hands): only the owner's mailbox learns that the account exists. The
text is the kiosks' own (``mail.reset``); the exam's title and the signature come from
the session of the candidate's latest registration, else from the rectorat's session.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime
from email.utils import make_msgid
from typing import TYPE_CHECKING

from kiosk import formatting
from kiosk.clock import Clock
from kiosk.delivery.mail_queue import MailTransport, compose
from kiosk.exam_sessions import ExamSession, load_session
from kiosk.i18n import Messages, french

if TYPE_CHECKING:
    from kiosk.rectorat.store import Account
    from kiosk.runtime.config import Config

log = logging.getLogger(__name__)


class RectoratMail:
    """Sends one mail at once, through the configured transport; says whether it went."""

    def __init__(
        self, transport: Callable[[], MailTransport], sender: str, session: ExamSession
    ) -> None:
        self._transport = transport
        self.sender = sender
        self.session = session

    def reset_code(
        self,
        to: str,
        name: str,
        code: str,
        until: datetime,
        now: datetime,
        session: ExamSession | None = None,
    ) -> bool:

        session = session or self.session
        params = {
            "name": name,
            "code": code,
            "until": formatting.instant(until, session.zone),
            "exam": session.title,
            "signature": session.contact.signature(french),
        }
        subject, body = french("mail.reset.subject", **params), french("mail.reset.body", **params)
        return self._send(to, subject, body, now, "the reset code")

    def document_published(
        self, account: Account, title: str, now: datetime, session: ExamSession | None = None
    ) -> bool:
        """Tell the candidate, in their language, that a document waits for them."""
        session = session or self.session
        messages = Messages(account.language)
        params = {
            "name": f"{account.given_names} {account.family_name}".strip(),
            "title": title,
            "exam": session.title,
            "signature": session.contact.signature(messages),
        }
        subject = messages("mail.published.subject", **params)
        body = messages("mail.published.body", **params)
        return self._send(account.email, subject, body, now, "the notice")

    def _send(self, to: str, subject: str, body: str, now: datetime, what: str) -> bool:
        from kiosk.delivery.mail_transport import DeliveryError

        domain = to.rpartition("@")[2].encode("idna").decode("ascii") if to.isascii() else ""
        payload = {
            "to": to,
            "subject": subject,
            "body": body,
            "message_id": make_msgid(domain=domain or "rectorat.local"),
            "date": now.isoformat(),
        }
        try:
            message = compose(payload, self.sender)
            self._transport().send(message, uuid.uuid4().hex)
        except DeliveryError as error:
            log.error("mail: %s for %s could not be sent: %s", what, to, error)
            return False
        return True


def mail_from_config(config: Config, clock: Clock) -> RectoratMail:
    """The rectorat's mail, configured as a kiosk's is (``[mail]``, ``KIOSK_MAIL_*``; its
    Maildir in the data dir by default), signed as its session (``session``) says."""
    session = load_session(config.session, clock)

    def transport() -> MailTransport:
        from kiosk.delivery.mail_transport import transport_from_config

        return transport_from_config(config.mail, config.maildir_path)

    return RectoratMail(transport, config.mail.sender, session)
