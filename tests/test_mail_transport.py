"""Mail transports against real aiosmtpd servers and a real Maildir on disk."""

from __future__ import annotations

import email.policy
import os
import socket
import ssl
import stat
import subprocess
import uuid
from datetime import UTC, datetime
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime, make_msgid
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from kiosk.delivery.mail_transport import (
    DeliveryError,
    MailboxEntry,
    MaildirTransport,
    PermanentDeliveryError,
    SmtpTransport,
    read_maildir,
    transport_from_config,
)
from kiosk.runtime.config import MailConfig
from tests.support.requirements import need_program

SUBJECT = "Votre inscription au baccalauréat — récépissé"
BODY = "Bonjour Éloïse,\nVotre inscription est enregistrée. À bientôt, ça marche.\n"
SENDER = "Inscriptions bac pro <ne-pas-repondre@ac-poitiers.fr>"


def message(
    to: str = "Éloïse Dupré <eloise.dupre@exemple.fr>", date: datetime | None = None
) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = SENDER
    mail["To"] = to
    mail["Subject"] = SUBJECT
    mail["Date"] = format_datetime(date or datetime(2020, 3, 2, 9, 30, tzinfo=UTC))
    mail["Message-ID"] = make_msgid(domain="kiosk.test")
    mail.set_content(BODY)
    return mail


def parse(raw: bytes) -> EmailMessage:
    return BytesParser(policy=email.policy.default).parsebytes(raw)


# --- SMTP -------------------------------------------------------------------------------


class Collector:
    """Keeps accepted envelopes; answers RCPT or DATA with a chosen reply when asked to."""

    def __init__(self, rcpt_reply: str = "", data_reply: str = "") -> None:
        self.rcpt_reply, self.data_reply = rcpt_reply, data_reply
        self.envelopes: list = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_reply:
            return self.data_reply
        self.envelopes.append(envelope)
        return "250 Message accepted"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def serve():
    """Starts aiosmtpd controllers on free ports and stops them after the test."""
    started: list[Controller] = []

    def start(handler: Collector, **options) -> int:
        port = free_port()
        controller = Controller(handler, hostname="127.0.0.1", port=port, **options)
        controller.start()
        started.append(controller)
        return port

    yield start
    for controller in started:
        controller.stop()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    """A self-signed certificate for localhost, made fresh for this test run."""
    openssl = need_program("openssl", "openssl")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
def server_context(certificate) -> ssl.SSLContext:
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


ACCOUNTS = {"borne": "s3crèt", "relais": "mot-de-passe"}


def authenticator(server, session, envelope, mechanism, auth_data):
    good = isinstance(auth_data, LoginPassword) and (
        ACCOUNTS.get(auth_data.login.decode()) == auth_data.password.decode()
    )
    # handled=False lets aiosmtpd answer 535 itself.
    return AuthResult(success=good, handled=False)


def smtp(port: int, **settings) -> SmtpTransport:
    settings.setdefault("smtp_security", "none")
    config = MailConfig(
        transport="smtp", smtp_host="localhost", smtp_port=port, smtp_timeout=3, **settings
    )
    return SmtpTransport(config)


def test_plain_smtp_delivers_french_text_intact(serve):
    handler = Collector()
    port = serve(handler)
    smtp(port).send(message(), uuid.uuid4().hex)
    [envelope] = handler.envelopes
    assert envelope.mail_from == "ne-pas-repondre@ac-poitiers.fr"
    assert envelope.rcpt_tos == ["eloise.dupre@exemple.fr"]
    received = parse(envelope.original_content)
    assert received["Subject"] == SUBJECT
    assert received["To"] == "Éloïse Dupré <eloise.dupre@exemple.fr>"
    assert received.get_body(("plain",)).get_content().replace("\r\n", "\n") == BODY


def test_smtputf8_recipient_arrives(serve):
    handler = Collector()
    port = serve(handler, enable_SMTPUTF8=True)
    smtp(port).send(message(to="Élève <élève@exemple.fr>"), uuid.uuid4().hex)
    [envelope] = handler.envelopes
    assert envelope.rcpt_tos == ["élève@exemple.fr"]
    assert "SMTPUTF8" in envelope.mail_options
    assert parse(envelope.original_content)["To"] == "Élève <élève@exemple.fr>"


def test_smtputf8_recipient_without_server_support_is_permanent(serve):
    handler = Collector()
    port = serve(handler, enable_SMTPUTF8=False)
    with pytest.raises(PermanentDeliveryError, match="SMTPUTF8"):
        smtp(port).send(message(to="élève@exemple.fr"), uuid.uuid4().hex)
    assert handler.envelopes == []


@pytest.fixture
def starttls_server(serve, server_context):
    handler = Collector()
    port = serve(
        handler,
        tls_context=server_context,
        require_starttls=True,
        authenticator=authenticator,
        auth_required=True,
    )
    return handler, port


@pytest.mark.parametrize("username", ACCOUNTS)  # a UTF-8 password, then an ASCII one
def test_starttls_with_login_delivers(starttls_server, certificate, username):
    handler, port = starttls_server
    transport = smtp(
        port,
        smtp_security="starttls",
        smtp_ca_file=str(certificate[0]),
        smtp_username=username,
        smtp_password=ACCOUNTS[username],
    )
    transport.send(message(), uuid.uuid4().hex)
    [envelope] = handler.envelopes
    assert parse(envelope.original_content)["Subject"] == SUBJECT


@pytest.mark.parametrize("password", ["faux", "fauxé"])
def test_starttls_with_wrong_password_is_permanent(starttls_server, certificate, password):
    handler, port = starttls_server
    transport = smtp(
        port,
        smtp_security="starttls",
        smtp_ca_file=str(certificate[0]),
        smtp_username="borne",
        smtp_password=password,
    )
    with pytest.raises(PermanentDeliveryError):
        transport.send(message(), uuid.uuid4().hex)
    assert handler.envelopes == []


def test_untrusted_certificate_is_refused(starttls_server):
    handler, port = starttls_server
    transport = smtp(port, smtp_security="starttls", smtp_username="borne", smtp_password="s3crèt")
    with pytest.raises(DeliveryError, match="certificate"):
        transport.send(message(), uuid.uuid4().hex)
    assert handler.envelopes == []


def test_implicit_tls_delivers(serve, server_context, certificate):
    handler = Collector()
    port = serve(handler, ssl_context=server_context)
    smtp(port, smtp_security="ssl", smtp_ca_file=str(certificate[0])).send(
        message(), uuid.uuid4().hex
    )
    [envelope] = handler.envelopes
    assert parse(envelope.original_content)["Subject"] == SUBJECT


def test_missing_starttls_never_falls_back_to_plain_text(serve):
    handler = Collector()
    port = serve(handler)
    with pytest.raises(PermanentDeliveryError, match="STARTTLS"):
        smtp(port, smtp_security="starttls").send(message(), uuid.uuid4().hex)
    assert handler.envelopes == []


def test_nothing_listening_is_retryable():
    with pytest.raises(DeliveryError, match="unreachable") as caught:
        smtp(free_port()).send(message(), uuid.uuid4().hex)
    assert not isinstance(caught.value, PermanentDeliveryError)


@pytest.mark.parametrize(
    ("handler", "permanent"),
    [
        (Collector(data_reply="451 4.3.0 Try again later"), False),
        (Collector(rcpt_reply="450 4.2.1 Mailbox busy"), False),
        (Collector(rcpt_reply="550 5.1.1 No such user"), True),
        (Collector(data_reply="554 5.7.1 Rejected"), True),
    ],
    ids=["451-data", "450-rcpt", "550-rcpt", "554-data"],
)
def test_refusals_are_classified_by_reply_code(serve, handler, permanent):
    port = serve(handler)
    with pytest.raises(DeliveryError) as caught:
        smtp(port).send(message(), uuid.uuid4().hex)
    assert isinstance(caught.value, PermanentDeliveryError) is permanent
    assert handler.envelopes == []


def test_transport_from_config(tmp_path):
    maildir = transport_from_config(MailConfig(), tmp_path)
    assert isinstance(maildir, MaildirTransport) and maildir.root == tmp_path
    assert isinstance(transport_from_config(MailConfig(transport="smtp"), tmp_path), SmtpTransport)


# --- Maildir ----------------------------------------------------------------------------


def test_maildir_delivers_and_reads_back_french(tmp_path):
    root = tmp_path / "maildir"
    MaildirTransport(root).send(message(), uuid.uuid4().hex)
    [entry] = read_maildir(root)
    assert entry == MailboxEntry(
        date=datetime(2020, 3, 2, 9, 30, tzinfo=UTC),
        sender=SENDER,
        to="Éloïse Dupré <eloise.dupre@exemple.fr>",
        subject=SUBJECT,
        body=BODY,
    )
    for folder in ("", "tmp", "new", "cur"):
        assert stat.S_IMODE(os.stat(root / folder).st_mode) == 0o700
    assert os.listdir(root / "tmp") == []


def test_maildir_keeps_smtputf8_address(tmp_path):
    MaildirTransport(tmp_path).send(message(to="élève@exemple.fr"), uuid.uuid4().hex)
    assert read_maildir(tmp_path)[0].to == "élève@exemple.fr"


def test_maildir_same_key_delivers_once_even_after_reading(tmp_path):
    transport, key = MaildirTransport(tmp_path), uuid.uuid4().hex
    transport.send(message(), key)
    transport.send(message(), key)
    [name] = os.listdir(tmp_path / "new")
    # A mail reader marks it seen: moved to cur/ with flags appended.
    os.rename(tmp_path / "new" / name, tmp_path / "cur" / f"{name}:2,S")
    transport.send(message(), key)
    assert len(read_maildir(tmp_path)) == 1
    assert os.listdir(tmp_path / "new") == []


def test_maildir_different_keys_deliver_twice(tmp_path):
    transport = MaildirTransport(tmp_path)
    transport.send(message(), uuid.uuid4().hex)
    transport.send(message(), uuid.uuid4().hex)
    assert len(os.listdir(tmp_path / "new")) == 2
    assert len(read_maildir(tmp_path)) == 2


def test_read_maildir_oldest_first(tmp_path):
    transport = MaildirTransport(tmp_path)
    later, earlier = (datetime(2020, 3, day, tzinfo=UTC) for day in (5, 1))
    # File names sort the other way, so only the Date can give this order.
    transport.send(message(to="b@exemple.fr", date=later), "a" * 32)
    transport.send(message(to="a@exemple.fr", date=earlier), "f" * 32)
    assert [entry.to for entry in read_maildir(tmp_path)] == ["a@exemple.fr", "b@exemple.fr"]


def test_read_maildir_missing_folder_is_empty(tmp_path):
    assert read_maildir(tmp_path / "absent") == []


def test_maildir_rejects_key_that_could_escape_the_folder(tmp_path):
    with pytest.raises(ValueError):
        MaildirTransport(tmp_path).send(message(), "../../etc/passwd")
