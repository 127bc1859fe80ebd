"""How a composed e-mail leaves the kiosk: dropped into a local Maildir, or sent over SMTP.

Transports are synchronous and raise :class:`DeliveryError` on failure; the outbox
decides when to retry, and skips retrying on :class:`PermanentDeliveryError`.
"""

from __future__ import annotations

import base64
import email.policy
import os
import re
import smtplib
import ssl
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses
from pathlib import Path

from kiosk.runtime.config import MailConfig

# Raw UTF-8 headers (RFC 6532) keep SMTPUTF8 addresses intact; LF endings are what
# Maildir readers expect on disk.
_MAILDIR_POLICY = email.policy.default.clone(utf8=True)
_MAILDIR_FOLDERS = ("tmp", "new", "cur")
_KEY = re.compile(r"[0-9A-Za-z_-]+")
_DEFAULT_PORTS = {"ssl": 465, "starttls": 587, "none": 25}


class DeliveryError(Exception):
    """The message was not delivered, but trying again later may work."""


class PermanentDeliveryError(DeliveryError):
    """The message was not delivered and retrying will not help (refused, bad credentials)."""


class MaildirTransport:
    """Delivers into a Maildir, at most once per key, so a retry after a crash is harmless."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def send(self, message: EmailMessage, key: str) -> None:
        if not _KEY.fullmatch(key):
            raise ValueError(f"unusable delivery key: {key!r}")
        name = f"{key}.kiosk"
        try:
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
            for folder in _MAILDIR_FOLDERS:
                (self.root / folder).mkdir(mode=0o700, exist_ok=True)
            tmp, new = self.root / "tmp" / name, self.root / "new" / name
            if self._delivered(name):
                # A crash between linking and unlinking leaves the tmp copy behind.
                tmp.unlink(missing_ok=True)
                return
            try:
                with open(
                    os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb"
                ) as handle:
                    handle.write(message.as_bytes(policy=_MAILDIR_POLICY))
                    handle.flush()
                    os.fsync(handle.fileno())
            except OSError:
                # A full or failing disk: no half message left behind; the outbox tries again later.
                tmp.unlink(missing_ok=True)
                raise
            try:
                # link, unlike rename, refuses to replace a copy delivered concurrently.
                os.link(tmp, new)
            except FileExistsError:
                pass
            tmp.unlink()
            _fsync_directory(new.parent)
        except OSError as error:
            raise DeliveryError(
                f"Maildir {self.root} not writable: {error.strerror or error}"
            ) from error

    def _delivered(self, name: str) -> bool:
        if (self.root / "new" / name).exists():
            return True
        # Readers move messages to cur/ and append ":2,<flags>" to the name.
        return any(
            entry == name or entry.startswith((name + ":", name + "!"))
            for entry in os.listdir(self.root / "cur")
        )


def _fsync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class SmtpTransport:
    """Sends through an SMTP relay; TLS is verified and never downgraded to plain text."""

    def __init__(self, config: MailConfig) -> None:
        self.config = config

    def send(self, message: EmailMessage, key: str) -> None:
        # The key only matters to idempotent transports; SMTP cannot deduplicate.
        config = self.config
        port = config.smtp_port or _DEFAULT_PORTS[config.smtp_security]
        try:
            context = ssl.create_default_context(cafile=config.smtp_ca_file or None)
        except (OSError, ValueError) as error:
            # Retryable: the outbox keeps the mail until the kiosk's setting is fixed.
            raise DeliveryError(
                f"SMTP CA file {config.smtp_ca_file!r} unusable: {error}"
            ) from error
        smtp: smtplib.SMTP | None = None
        try:
            if config.smtp_security == "ssl":
                smtp = smtplib.SMTP_SSL(
                    config.smtp_host, port, timeout=config.smtp_timeout, context=context
                )
            else:
                smtp = smtplib.SMTP(config.smtp_host, port, timeout=config.smtp_timeout)
            smtp.ehlo()
            if config.smtp_security == "starttls":
                if not smtp.has_extn("starttls"):
                    raise PermanentDeliveryError("SMTP server does not offer STARTTLS")
                smtp.starttls(context=context)
                smtp.ehlo()
            if config.smtp_username:
                _login(smtp, config.smtp_username, config.smtp_password)
            self._transmit(smtp, message)
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                pass  # the server already accepted the message
        except smtplib.SMTPNotSupportedError as error:
            raise PermanentDeliveryError(f"SMTP server lacks a needed feature: {error}") from error
        except smtplib.SMTPRecipientsRefused as error:
            refusals = error.recipients.values()
            reason = "SMTP server refused every recipient: " + "; ".join(
                f"{address} ({code} {_text(text)})"
                for address, (code, text) in error.recipients.items()
            )
            if all(400 <= code < 500 for code, _ in refusals):
                raise DeliveryError(reason) from error
            raise PermanentDeliveryError(reason) from error
        except smtplib.SMTPResponseException as error:
            reason = f"SMTP server answered {error.smtp_code} {_text(error.smtp_error)}"
            if 400 <= error.smtp_code < 500:
                raise DeliveryError(reason) from error
            raise PermanentDeliveryError(reason) from error
        except smtplib.SMTPServerDisconnected as error:
            raise DeliveryError(f"SMTP server closed the connection: {error}") from error
        except smtplib.SMTPException as error:
            raise DeliveryError(f"SMTP error: {error}") from error
        except ssl.SSLCertVerificationError as error:
            raise DeliveryError(
                f"SMTP server certificate rejected: {error.verify_message}"
            ) from error
        except ssl.SSLError as error:
            raise DeliveryError(f"SMTP TLS handshake failed: {error.reason or error}") from error
        except OSError as error:
            reason = error.strerror or str(error) or type(error).__name__
            raise DeliveryError(f"SMTP server unreachable: {reason}") from error
        finally:
            if smtp is not None:
                smtp.close()

    @staticmethod
    def _transmit(smtp: smtplib.SMTP, message: EmailMessage) -> None:
        # The same envelope addresses send_message derives from the headers.
        fields = [
            str(value)
            for name in ("Sender", "From", "To", "Cc", "Bcc")
            for value in message.get_all(name, [])
        ]
        options: list[str] = []
        if not all(address.isascii() for _, address in getaddresses(fields)):
            # send_message adds SMTPUTF8 itself; checking first gives a clearer reason.
            if not smtp.has_extn("smtputf8"):
                raise PermanentDeliveryError(
                    "SMTP server cannot deliver to non-ASCII addresses (no SMTPUTF8)"
                )
        elif smtp.has_extn("8bitmime") and _has_8bit_part(message):
            options.append("BODY=8BITMIME")
        refused = smtp.send_message(message, mail_options=options)
        if refused:
            # Others already got the message, so a retry would send it to them twice.
            raise PermanentDeliveryError(
                "SMTP server refused some recipients: " + ", ".join(sorted(refused))
            )


def _login(smtp: smtplib.SMTP, username: str, password: str) -> None:
    if (username + password).isascii():
        smtp.login(username, password)
        return
    # smtplib encodes credentials as ASCII; AUTH PLAIN is defined over UTF-8 (RFC 4616).
    if "PLAIN" not in smtp.esmtp_features.get("auth", "").upper().split():
        raise PermanentDeliveryError("SMTP server offers no AUTH PLAIN for non-ASCII credentials")
    token = base64.b64encode(f"\0{username}\0{password}".encode()).decode("ascii")
    code, reply = smtp.docmd("AUTH", "PLAIN " + token)
    if code != 235:
        raise smtplib.SMTPAuthenticationError(code, reply)


def _has_8bit_part(message: EmailMessage) -> bool:
    return any(
        part.get("Content-Transfer-Encoding", "").lower() == "8bit" for part in message.walk()
    )


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def transport_from_config(config: MailConfig, maildir: Path) -> MaildirTransport | SmtpTransport:
    """The transport the configuration asks for; ``maildir`` is used by the Maildir one."""
    if config.transport == "smtp":
        return SmtpTransport(config)
    return MaildirTransport(maildir)


@dataclass(frozen=True)
class MailboxEntry:
    """One delivered message, decoded for display by ``kiosk mailbox``."""

    date: datetime | None
    sender: str
    to: str
    subject: str
    body: str


def read_maildir(root: Path) -> list[MailboxEntry]:
    """Every message in ``new/`` and ``cur/`` of a Maildir, oldest first."""
    found: list[tuple[float, str, MailboxEntry]] = []
    parser = BytesParser(policy=email.policy.default)
    for folder in ("new", "cur"):
        directory = Path(root) / folder
        if not directory.is_dir():
            continue
        for path in directory.iterdir():
            if path.name.startswith(".") or not path.is_file():
                continue
            try:
                with open(path, "rb") as handle:
                    message = parser.parse(handle)
                mtime = path.stat().st_mtime
            except FileNotFoundError:
                continue  # a mail reader moved it from new/ to cur/ meanwhile
            date = getattr(message.get("Date"), "datetime", None)
            order = date.timestamp() if date else mtime
            body_part = message.get_body(preferencelist=("plain",))
            body = body_part.get_content() if body_part is not None else ""
            entry = MailboxEntry(
                date=date,
                sender=str(message.get("From", "")),
                to=str(message.get("To", "")),
                subject=str(message.get("Subject", "")),
                body=body,
            )
            found.append((order, path.name, entry))
    found.sort(key=lambda item: item[:2])
    return [entry for _, _, entry in found]
