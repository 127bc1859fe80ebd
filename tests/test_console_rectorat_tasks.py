"""The exam office's two tasks of the rectorat's console, without the screens: the address
changes reported after the close, reported on their files; documents published for
candidates. On the rectorat's store (SQLite file and PostgreSQL), and refused on a kiosk's."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from fpdf import FPDF

from kiosk.clock import Clock, parse_instant
from kiosk.console import open_console
from kiosk.console.on_rectorat import RectoratConsole
from kiosk.console.views import Officer, address_lines
from kiosk.delivery.mail_transport import MaildirTransport, transport_from_config
from kiosk.errors import Refused
from kiosk.exam_sessions import load_session
from kiosk.pdf_check import MAX_PDF_BYTES
from kiosk.rectorat.exam_office import NotPublished
from kiosk.rectorat.mail import RectoratMail
from kiosk.runtime.config import MailConfig, load_config
from kiosk.runtime.services import build_services
from kiosk.store.models import reference_of
from tests.factories import (
    EARLIER,
    account_item,
    answers,
    fast_hasher,
    iso,
    new_kiosk,
    registration_item,
    results,
)
from tests.support.rectorat_process import ROOT, environment

RECEPTION = Officer("accueil", "reception")
EXAM_OFFICE = Officer("dec", "exam_office")
OLD_ADDRESS = {
    "address_line1": "5 place du Donjon",
    "address_line2": "",
    "postal_code": "79000",
    "town": "Niort",
    "country": "France",
    "phone": "0549000001",
}
NEW_ADDRESS = {
    "address_line1": "12 rue des Lilas",
    "address_line2": "Bâtiment B",
    "postal_code": "86000",
    "town": "Poitiers",
    "country": "France",
    "phone": "0549000002",
}
OTHER_ADDRESS = {**NEW_ADDRESS, "address_line1": "1 allée des Tilleuls", "address_line2": ""}
REPORTED = EARLIER + timedelta(hours=3)  # Saturday 9 November 2019, 17:00 in Poitiers
REASONS = {
    "empty": "path",
    "too_large": "path",
    "not_pdf": "path",
    "no_title": "document_title",
    "unknown_file": "code",
}


def problem(caught: pytest.ExceptionInfo[Refused], field: str = "") -> str:
    return caught.value.problems[field].key


def a_pdf(text: str = "Convocation à l'épreuve E2") -> bytes:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    pdf.cell(text=text)
    return bytes(pdf.output())


def address_change(registration_id: str, address: dict, reported=REPORTED) -> dict:
    """An address change as a kiosk pushes it, reported after the close."""
    return {
        "entity": "address_change",
        "id": str(uuid.uuid4()),
        "version": 1,
        "data": {
            "created_at": iso(reported),
            "registration_id": registration_id,
            "address": address,
        },
    }


@pytest.fixture
def console(store, clock, tmp_path) -> RectoratConsole:
    return RectoratConsole(
        store, clock, load_session("bacpro-poitiers-2020", clock), tmp_path / "exports"
    )


@pytest.fixture
def kiosk(service):
    return new_kiosk(service, "borne-a")[0]


@pytest.fixture
def pushed(service, kiosk):
    """Jean Dupont's account and registration (at his old address), pushed by a kiosk:
    (account id, registration id)."""
    account = account_item()
    registration = registration_item(account["id"], who={**answers(), **OLD_ADDRESS})
    assert results(service.push(kiosk, [account, registration])) == ["applied", "applied"]
    return account["id"], registration["id"]


@pytest.fixture
def reported(service, kiosk, pushed):
    """Two address changes of Jean Dupont's, reported after the close: (first id, second id)."""
    first = address_change(pushed[1], NEW_ADDRESS)
    second = address_change(pushed[1], OTHER_ADDRESS, REPORTED + timedelta(hours=2))
    # Pushed newest first: the list is by the date they were reported.
    assert results(service.push(kiosk, [second, first])) == ["applied", "applied"]
    return first["id"], second["id"]


def registration(store, registration_id: str):
    return store.Registration.get_by_id(uuid.UUID(registration_id))


def trail(console) -> list[tuple[str, str | None, str]]:
    """The audit trail, oldest first: (action, subject, detail)."""
    lines = reversed(console.audit_trail(EXAM_OFFICE))
    return [(line.action, line.subject, line.detail) for line in lines]


# -- address changes ------------------------------------------------------------------------


def test_the_pending_address_changes_are_listed_oldest_first_with_both_addresses(
    store, console, pushed, reported
):
    account_id, registration_id = pushed
    row = registration(store, registration_id)
    first, second = console.address_changes(EXAM_OFFICE)
    assert [first.id, second.id] == list(reported)
    assert (first.family_name, first.given_names, first.account_id) == (
        "Dupont",
        "Jean",
        account_id,
    )
    assert (first.reference, first.number) == (reference_of(row.id), row.number)
    assert first.number and first.number.startswith("2020-")
    assert first.reported_at == REPORTED
    assert first.old == OLD_ADDRESS and first.new == NEW_ADDRESS
    assert address_lines(first.new) == [
        "12 rue des Lilas",
        "Bâtiment B",
        "86000 Poitiers",
        "France",
    ]
    assert console.glance(EXAM_OFFICE).address_changes == 2
    # Not the reception's work: no count for it either.
    assert console.glance(RECEPTION).address_changes is None
    assert trail(console) == [("view_address_changes", None, "2")]


def test_a_desk_on_another_session_neither_lists_nor_counts_these_changes(
    store, clock, tmp_path, reported
):
    other = RectoratConsole(store, clock, load_session("demo", clock), tmp_path / "exports")
    assert other.address_changes(EXAM_OFFICE) == []
    assert other.glance(EXAM_OFFICE).address_changes == 0


def test_reporting_a_change_gives_the_file_the_new_address_as_a_new_version(
    store, service, console, pushed, reported
):
    account_id, registration_id = pushed
    before = registration(store, registration_id)
    last = store.last_seq()
    file = console.apply_address_change(EXAM_OFFICE, reported[0])
    row = registration(store, registration_id)
    assert row.version == before.version + 1 == file.version
    assert {name: row.answers[name] for name in NEW_ADDRESS} == NEW_ADDRESS
    assert row.answers["family_name"] == "Dupont"  # the rest of the file stays
    assert file.answers["address_line1"] == "12 rue des Lilas"
    change = store.AddressChange.get_by_id(uuid.UUID(reported[0]))
    assert change.applied_by == "dec" and change.applied_at is not None
    # The other one is still to be reported; the kiosks will pull the new version.
    assert [c.id for c in console.address_changes(EXAM_OFFICE)] == [reported[1]]
    assert console.glance(EXAM_OFFICE).address_changes == 1
    service.sequence()
    assert store.last_seq() > last
    assert ("apply_address_change", account_id, reported[0]) in trail(console)


def test_a_change_reported_already_or_gone_is_refused_and_nothing_is_recorded(
    store, console, pushed, reported
):
    console.apply_address_change(EXAM_OFFICE, reported[0])
    version = registration(store, pushed[1]).version
    with pytest.raises(Refused) as caught:
        console.apply_address_change(Officer("martine", "exam_office"), reported[0])
    assert problem(caught) == "console.address_applied"
    assert caught.value.problems[""].params == {"by": "dec"}
    for unknown in (str(uuid.uuid4()), "pas-un-identifiant"):
        with pytest.raises(Refused) as caught:
            console.apply_address_change(EXAM_OFFICE, unknown)
        assert problem(caught) == "console.address_gone"
    assert registration(store, pushed[1]).version == version
    assert [action for action, _, _ in trail(console)] == ["apply_address_change"]


def test_the_reception_may_neither_list_nor_report_address_changes(
    store, console, pushed, reported
):
    assert not console.can(RECEPTION, "apply_address_change")
    assert console.can(EXAM_OFFICE, "apply_address_change")
    with pytest.raises(Refused) as caught:
        console.address_changes(RECEPTION)
    assert problem(caught) == "console.forbidden"
    with pytest.raises(Refused) as caught:
        console.apply_address_change(RECEPTION, reported[0])
    assert problem(caught) == "console.forbidden"
    assert store.AddressChange.get_by_id(uuid.UUID(reported[0])).applied_at is None
    assert trail(console) == []


# -- publishing -----------------------------------------------------------------------------


def test_a_pdf_is_published_for_the_file_s_candidate_who_is_told_by_mail(
    store, clock, tmp_path, pushed
):
    account_id, registration_id = pushed
    maildir = tmp_path / "maildir"
    session = load_session("bacpro-poitiers-2020", clock)
    mail = RectoratMail(lambda: MaildirTransport(maildir), MailConfig().sender, session)
    console = RectoratConsole(store, clock, session, tmp_path / "exports", mail=mail)
    content = a_pdf()
    path = tmp_path / "convocation-e2.pdf"
    path.write_bytes(content)
    reference = reference_of(uuid.UUID(registration_id))
    published = console.publish(EXAM_OFFICE, reference.lower(), "  Convocation   E2 ", f" {path} ")
    assert (published.title, published.size) == ("Convocation E2", len(content))
    assert (published.family_name, published.reference) == ("Dupont", reference)
    assert published.told == "mailed"
    document = store.Document.get()
    assert (document.title, document.published_by) == ("Convocation E2", "dec")
    assert str(document.account_id) == account_id
    assert bytes(store.DocumentContent.get_by_id(document.sha256).content) == content
    [sent] = [f for f in (maildir / "new").iterdir()]
    assert "Convocation E2" in sent.read_text(encoding="utf-8", errors="replace")
    [line] = trail(console)
    assert line[:2] == ("publish", account_id)
    assert "Convocation E2" in line[2] and "convocation-e2.pdf" in line[2]


def test_without_the_rectorat_s_mail_the_document_is_published_and_the_officer_is_told(
    store, console, tmp_path, pushed
):
    path = tmp_path / "releve.pdf"
    path.write_bytes(a_pdf("Relevé de notes"))
    number = registration(store, pushed[1]).number
    published = console.publish(EXAM_OFFICE, number, "Relevé de notes", str(path))
    assert published.told == "not_mailed"
    assert store.Document.get().title == "Relevé de notes"


def test_a_mail_that_cannot_leave_is_said_and_the_document_stays_published(
    store, clock, tmp_path, pushed
):
    """The rectorat's SMTP relay refuses connections: the candidate is not told, and the
    officer learns it, not « prévenu par courriel »."""
    with socket.socket() as closed:  # a port of this machine where nothing listens
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    config = MailConfig(transport="smtp", smtp_host="127.0.0.1", smtp_port=port,
                        smtp_security="none", smtp_timeout=5)  # fmt: skip
    session = load_session("bacpro-poitiers-2020", clock)
    mail = RectoratMail(
        lambda: transport_from_config(config, tmp_path / "maildir"), config.sender, session
    )
    console = RectoratConsole(store, clock, session, tmp_path / "exports", mail=mail)
    path = tmp_path / "convocation.pdf"
    path.write_bytes(a_pdf())
    number = registration(store, pushed[1]).number
    published = console.publish(EXAM_OFFICE, number, "Convocation", str(path))
    assert published.told == "mail_failed"
    assert store.Document.get().title == "Convocation"


@pytest.mark.parametrize("relay", ["maildir", "unreachable"])
def test_the_publish_command_says_whether_the_candidate_was_mailed(
    store, store_url, tmp_path, pushed, relay
):
    number = registration(store, pushed[1]).number
    path = tmp_path / "convocation.pdf"
    path.write_bytes(a_pdf())
    mail = {"KIOSK_MAIL_TRANSPORT": "maildir"}
    if relay == "unreachable":
        with socket.socket() as closed:  # a port of this machine where nothing listens
            closed.bind(("127.0.0.1", 0))
            port = closed.getsockname()[1]
        mail = {"KIOSK_MAIL_TRANSPORT": "smtp", "KIOSK_MAIL_SMTP_HOST": "127.0.0.1",
                "KIOSK_MAIL_SMTP_PORT": str(port), "KIOSK_MAIL_SMTP_SECURITY": "none"}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "kiosk.py", "rectorat", "--db", store_url, "--data-dir", str(tmp_path),
         "publish", "--title", "Convocation", "--file", number, str(path)],
        cwd=ROOT, env=environment(**mail), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "« Convocation » publié" in done.stdout
    if relay == "maildir":
        assert "Le candidat en est prévenu par courriel." in done.stdout
    else:
        assert "prévenu" not in done.stdout
        assert "Le courriel au candidat n'a pas pu partir : prévenez-le vous-même." in done.stderr


@pytest.mark.parametrize(
    ("what", "said"),
    [
        ("fifo", "ce n'est pas un fichier ordinaire"),
        ("/dev/zero", "ce n'est pas un fichier ordinaire"),
        ("absent.pdf", "fichier introuvable"),
    ],
)
def test_the_publish_command_neither_waits_on_a_pipe_nor_reads_a_device_whole(
    store_url, tmp_path, what, said
):
    path = Path(what) if what.startswith("/") else tmp_path / what
    if what == "fifo":
        os.mkfifo(path)
    done = subprocess.run(
        [sys.executable, "kiosk.py", "rectorat", "--db", store_url, "--data-dir", str(tmp_path),
         "publish", "--title", "Convocation", "--file", "2020-PO-000001", str(path)],
        cwd=ROOT, env=environment(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip() == f"kiosk : {path} : lecture impossible ({said}), non publié."


@pytest.mark.parametrize(
    ("reason", "content", "title", "code"),
    [
        ("empty", b"", "Convocation", None),
        ("too_large", None, "Convocation", None),
        ("not_pdf", b"%PDF-1.4 rien d'autre", "Convocation", None),
        ("no_title", a_pdf(), " \t ", None),
        ("unknown_file", a_pdf(), "Convocation", "2020-PO-999999"),
    ],
)
def test_each_refusal_of_the_exam_office_is_said_at_its_field(
    store, console, tmp_path, pushed, reason, content, title, code
):
    path = tmp_path / "document.pdf"
    if content is None:  # sparse: one byte over the limit, and no time spent writing it
        with path.open("wb") as handle:
            handle.truncate(MAX_PDF_BYTES + 1)
    else:
        path.write_bytes(content)
    code = code or registration(store, pushed[1]).number
    with pytest.raises(Refused) as caught:
        console.publish(EXAM_OFFICE, code, title, str(path))
    assert list(caught.value.problems) == [REASONS[reason]]
    assert problem(caught, REASONS[reason]) == f"console.publish_refused.{reason}"
    assert store.Document.select().count() == 0
    assert trail(console) == []


@pytest.mark.parametrize("reason", sorted(REASONS))
def test_a_refusal_found_only_when_publishing_is_said_at_its_field_too(
    store, console, tmp_path, pushed, reason, monkeypatch
):
    # The file may change, or the registration go, between the console's look and the
    # exam office's own checks: those decide.
    def refuse(*args, **kwargs):
        raise NotPublished(reason)

    monkeypatch.setattr(console.service, "publish", refuse)
    path = tmp_path / "document.pdf"
    path.write_bytes(a_pdf())
    with pytest.raises(Refused) as caught:
        console.publish(
            EXAM_OFFICE, registration(store, pushed[1]).number, "Convocation", str(path)
        )
    assert problem(caught, REASONS[reason]) == f"console.publish_refused.{reason}"
    assert trail(console) == []


def test_a_path_that_cannot_be_read_is_said_at_the_path_s_field(
    store, console, tmp_path, pushed, monkeypatch
):
    number = registration(store, pushed[1]).number
    locked = tmp_path / "verrouille.pdf"
    locked.write_bytes(a_pdf())
    fifo = tmp_path / "tube.pdf"
    os.mkfifo(fifo)
    real_open = os.open

    def no_right(path, *args, **kwargs):
        if str(path) == str(locked):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", no_right)
    expected = {
        "": "console.publish_refused.no_path",
        "   ": "console.publish_refused.no_path",
        str(tmp_path / "absent.pdf"): "console.publish_refused.no_file",
        str(tmp_path / "absent" / "x.pdf"): "console.publish_refused.no_file",
        str(tmp_path): "console.publish_refused.folder",
        str(fifo): "console.publish_refused.not_a_file",  # refused, never waited on
        str(locked): "console.publish_refused.not_allowed",
    }
    said = {}
    for path, _ in expected.items():
        with pytest.raises(Refused) as caught:
            console.publish(EXAM_OFFICE, number, "Convocation", path)
        said[path] = problem(caught, "path")
    assert said == expected
    with pytest.raises(Refused) as caught:
        console.publish(EXAM_OFFICE, number, "Convocation", str(tmp_path / "absent.pdf"))
    assert caught.value.problems["path"].params["path"] == str(tmp_path / "absent.pdf")
    assert store.Document.select().count() == 0


def test_every_field_s_problem_is_said_at_once(store, console, tmp_path):
    with pytest.raises(Refused) as caught:
        console.publish(EXAM_OFFICE, "", "", str(tmp_path / "absent.pdf"))
    assert {name: p.key for name, p in caught.value.problems.items()} == {
        "code": "console.publish_refused.no_code",
        "document_title": "console.publish_refused.no_title",
        "path": "console.publish_refused.no_file",
    }
    empty = tmp_path / "vide.pdf"
    empty.write_bytes(b"")
    with pytest.raises(Refused) as caught:
        console.publish(EXAM_OFFICE, "2020-PO-999999", "Convocation", str(empty))
    assert {name: p.key for name, p in caught.value.problems.items()} == {
        "code": "console.publish_refused.unknown_file",
        "path": "console.publish_refused.empty",
    }


def test_the_reception_may_not_publish(store, console, tmp_path, pushed):
    path = tmp_path / "convocation.pdf"
    path.write_bytes(a_pdf())
    assert not console.can(RECEPTION, "publish") and console.can(EXAM_OFFICE, "publish")
    with pytest.raises(Refused) as caught:
        console.publish(RECEPTION, registration(store, pushed[1]).number, "Convocation", str(path))
    assert problem(caught) == "console.forbidden"
    assert store.Document.select().count() == 0


# -- not on a kiosk -------------------------------------------------------------------------


def test_a_kiosk_s_console_offers_neither_task(tmp_path):
    config = load_config(
        environ={}, overrides={"data_dir": tmp_path / "kiosk", "session": "bacpro-poitiers-2020"}
    )
    services = build_services(config, Clock(parse_instant("2019-11-10T10:00:00"), frozen=True))
    services.staff.hasher = fast_hasher()
    try:
        console = open_console(services)
        assert not console.can(EXAM_OFFICE, "apply_address_change")
        assert not console.can(EXAM_OFFICE, "publish")
        assert console.glance(EXAM_OFFICE).address_changes is None
        for task in (
            lambda: console.address_changes(EXAM_OFFICE),
            lambda: console.apply_address_change(EXAM_OFFICE, str(uuid.uuid4())),
            lambda: console.publish(EXAM_OFFICE, "2020-PO-000001", "Convocation", "/tmp/x.pdf"),
        ):
            with pytest.raises(Refused) as caught:
                task()
            assert problem(caught) == "console.not_here.kiosk"
    finally:
        services.close()
