"""The candidate's file for the whole session, across the network: documents the exam
office publishes reach « Mes documents » at the kiosks that hold the account, checked and
kept by their hash; an address change is a new version while the registration may change,
and after the close a notice that the exam office applies at the rectorat, the new
address coming back as a new version.

Kiosks are built with ``build_services`` on their own data dirs; the rectorat's API runs
on a real uvicorn over PostgreSQL 15 (tests/support/sync_world.py); mail goes to Maildirs."""

from __future__ import annotations

import hashlib
import io
import stat
from datetime import timedelta

import pytest
from fpdf import FPDF
from peewee import SQL
from pypdf import PdfReader

from kiosk.clock import parse_instant
from kiosk.delivery.mail_transport import MaildirTransport
from kiosk.errors import Refused
from kiosk.exam_sessions import load_session
from kiosk.pdf_check import MAX_PDF_BYTES, pdf_problem
from kiosk.rectorat.exam_office import NotPublished
from kiosk.rectorat.mail import RectoratMail
from kiosk.runtime.config import MailConfig
from kiosk.store.models import AddressChange
from tests.support.sync_world import Kiosk

NEW_ADDRESS = {
    "address_line1": "12 rue des Lilas",
    "address_line2": "",
    "postal_code": "86000",
    "town": "Poitiers",
    "country": "France",
    "phone": "0549000000",
}
AFTER_CLOSE = parse_instant("2019-12-02T10:00:00")
EMAIL = "jeanne.martin@exemple.fr"


def a_pdf(text: str = "Convocation à l'épreuve") -> bytes:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    pdf.cell(text=text)
    return bytes(pdf.output())


def _mails_to(kiosk: Kiosk, to: str) -> list[dict]:
    outbox = kiosk.services.store.OutboxRow
    rows = outbox.select().where(outbox.kind == "mail").order_by(SQL("rowid"))
    return [row.payload for row in rows if row.payload["to"] == to]


@pytest.fixture
def world(rectorat, kiosks, tmp_path):
    rectorat.service.mail = RectoratMail(
        lambda: MaildirTransport(rectorat.maildir),
        MailConfig().sender,
        load_session("bacpro-poitiers-2020", rectorat.clock),
    )
    rectorat.start()
    kiosk = kiosks("borne-a")
    account, registration = kiosk.candidate(EMAIL, "Martin", "Jeanne", "2001-03-04")
    assert kiosk.sync().pending == 0
    return kiosk, account, registration


# -- the PDF check, both sides -------------------------------------------------------------


def test_only_a_whole_pdf_within_the_limit_passes_the_check():
    pdf = a_pdf()
    assert pdf_problem(pdf) is None
    assert pdf_problem(b"") == "empty"
    assert pdf_problem(b"Bonjour, ceci est un texte.") == "not_pdf"
    assert pdf_problem(pdf[: len(pdf) // 2]) == "not_pdf"  # a truncated upload
    assert pdf_problem(b"%PDF-1.4\n%%EOF\n") == "not_pdf"  # a header and nothing behind it
    assert pdf_problem(pdf, limit=len(pdf) - 1) == "too_large"
    assert pdf_problem(b"%PDF-" + b"0" * MAX_PDF_BYTES) == "too_large"


# -- published documents ---------------------------------------------------------------------


def test_a_published_document_reaches_mes_documents_checked_and_kept_by_its_hash(rectorat, world):
    kiosk, account, registration = world
    pdf = a_pdf()
    published, _ = rectorat.service.publish(registration.reference, pdf, "Convocation", "bureau")
    assert (published.size, published.sha256) == (len(pdf), hashlib.sha256(pdf).hexdigest())

    assert kiosk.sync().online
    documents = kiosk.services.documents
    views = documents.documents(account)
    assert [(v.kind, v.title) for v in views] == [
        ("confirmation", ""),
        ("published", "Convocation"),
    ]
    kept = kiosk.folder / "documents" / f"{published.sha256}.pdf"
    assert kept.read_bytes() == pdf
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert views[1].created_at == published.created_at

    # Printed and mailed as the confirmation is.
    job = documents.print(account, views[1].id)
    assert job.path.read_bytes() == pdf
    documents.email(account, views[1].id)
    [*_, mail] = _mails_to(kiosk, EMAIL)
    assert mail["subject"].startswith("Convocation")
    assert [a["filename"] for a in mail["attachments"]] == ["Convocation.pdf"]

    # The candidate was told by the rectorat that a document waits.
    [told] = [m for m in rectorat.mailbox() if m.to == EMAIL]
    assert "Un document vous attend : Convocation" in told.subject
    assert "Mes documents" in told.body


def test_a_kiosk_that_borrows_the_account_later_gets_the_document_too(rectorat, world, kiosks):
    kiosk_a, account, registration = world
    rectorat.service.publish(registration.reference, a_pdf(), "Relevé de notes", "bureau")
    kiosk_b = kiosks("borne-b")
    from tests.factories import PASSWORD

    borrowed = kiosk_b.services.accounts.log_in(EMAIL, PASSWORD)
    assert kiosk_b.sync().online  # the bytes are fetched with the next round
    titles = [v.title for v in kiosk_b.services.documents.documents(borrowed)]
    assert "Relevé de notes" in titles


def test_a_document_whose_bytes_do_not_match_is_never_listed(rectorat, world, caplog):
    kiosk, account, registration = world
    published, _ = rectorat.service.publish(
        registration.reference, a_pdf(), "Attestation", "bureau"
    )
    # The stored bytes are swapped behind the record: the kiosk checks the hash.
    rectorat.store.db.execute_sql(
        "UPDATE rc_document_content SET content = %s WHERE sha256 = %s",
        (a_pdf("Autre chose"), published.sha256),
    )
    assert kiosk.sync().online
    assert [v.kind for v in kiosk.services.documents.documents(account)] == ["confirmation"]
    assert "refused: sha256" in caplog.text
    assert not (kiosk.folder / "documents" / f"{published.sha256}.pdf").exists()


def test_a_kiosk_that_does_not_hold_the_account_cannot_fetch_the_document(rectorat, world):
    import httpx

    _, _, registration = world
    published, _ = rectorat.service.publish(registration.reference, a_pdf(), "Convocation", "x")
    other = rectorat.credential("borne-c")
    answer = httpx.get(
        f"{rectorat.base}/v1/documents/{published.sha256}",
        headers={"Authorization": f"Bearer {other}"},
    )
    assert answer.status_code == 404
    unknown = httpx.get(
        f"{rectorat.base}/v1/documents/{'0' * 64}", headers={"Authorization": f"Bearer {other}"}
    )
    assert (unknown.status_code, unknown.json()) == (404, answer.json())


@pytest.mark.parametrize(
    ("content", "title", "code", "reason"),
    [
        (b"", "Convocation", None, "empty"),
        (b"GIF89a...", "Convocation", None, "not_pdf"),
        (None, "   ", None, "no_title"),
        (None, "Convocation", "ZZZZZZZZZZ", "unknown_file"),
    ],
)
def test_publishing_refuses_what_a_kiosk_could_not_keep(
    rectorat, world, content, title, code, reason
):
    _, _, registration = world
    with pytest.raises(NotPublished) as refused:
        rectorat.service.publish(
            code or registration.reference, a_pdf() if content is None else content, title, "x"
        )
    assert refused.value.reason == reason
    assert rectorat.count("rc_document") == 0


def test_kiosk_rectorat_publish_takes_a_folder_of_files_named_by_reference(
    rectorat, world, tmp_path, capsys
):
    from kiosk.runtime.cli import main

    _, _, registration = world
    folder = tmp_path / "convocations"
    folder.mkdir()
    (folder / f"{registration.reference}.pdf").write_bytes(a_pdf())
    (folder / "ABCDEFGHJK.pdf").write_bytes(a_pdf())  # no such file at the rectorat
    (folder / "notes.txt").write_text("ignored")

    code = main(
        ["rectorat", "--db", rectorat.url, "--data-dir", str(tmp_path / "rc"), "publish",
         "--title", "Convocation", str(folder)]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 1  # one refused
    assert f"publié pour le dossier {registration.reference}" in out
    assert "aucun dossier ne porte cette référence" in err
    assert rectorat.count("rc_document") == 1


# -- address changes -------------------------------------------------------------------------


def test_during_the_window_a_new_address_is_a_new_version_of_the_registration(world):
    kiosk, account, registration = world
    kiosk.services.documents.documents(account)  # the confirmation of version 1, made
    outcome = kiosk.services.registrations.report_address_change(account, NEW_ADDRESS)
    assert not isinstance(outcome, AddressChange)
    assert outcome.version == 2
    assert outcome.answers["address_line1"] == "12 rue des Lilas"
    assert kiosk.services.store.AddressChange.select().count() == 0
    assert _mails_to(kiosk, EMAIL)[-1]["subject"].startswith("Modification")
    [current, old] = kiosk.services.documents.documents(account)
    assert (current.registration_version, old.superseded) == (2, True)


def test_after_the_close_a_notice_goes_to_the_exam_office_who_applies_it(rectorat, world, clock):
    kiosk, account, registration = world
    clock.set(AFTER_CLOSE)
    before = dict(registration.answers)
    change = kiosk.services.registrations.report_address_change(account, NEW_ADDRESS)
    assert isinstance(change, AddressChange)
    notice = kiosk.services.documents.address_notice(account, change, before)

    # The candidate's copy, with the notice attached, and the notice in « Mes documents ».
    [*_, copy] = _mails_to(kiosk, EMAIL)
    assert "avis de changement d'adresse" in copy["subject"].casefold()
    assert "12 rue des Lilas" in copy["body"]
    [attached] = copy["attachments"]
    text = "".join(page.extract_text() for page in PdfReader(attached["path"]).pages)
    assert "12 rue des Lilas" in text
    views = kiosk.services.documents.documents(account)
    assert ("address_notice", str(notice.id)) in [(v.kind, v.id) for v in views]
    assert kiosk.registration(registration.id).version == 1  # unchanged until applied

    # The exam office's task, applied at the rectorat, and the new version synced back.
    assert kiosk.sync().pending == 0
    [task] = rectorat.service.address_changes()
    assert str(task.id) == str(change.id)
    rectorat.service.apply_address_change(task.id, by="bureau")
    assert rectorat.service.address_changes() == []
    rectorat.store.sequence()
    assert kiosk.sync().online
    synced = kiosk.registration(registration.id)
    assert (synced.version, synced.answers["address_line1"]) == (2, "12 rue des Lilas")
    applied = kiosk.services.store.AddressChange.get_by_id(change.id)
    assert applied.applied_at is not None

    # The confirmation of version 2 carries the new address.
    views = kiosk.services.documents.documents(account)
    current = next(v for v in views if v.kind == "confirmation" and not v.superseded)
    assert current.registration_version == 2
    with pytest.raises(ValueError):
        rectorat.service.apply_address_change(task.id, by="bureau")


def test_a_notice_is_refused_with_its_field_when_the_address_breaks_a_rule(world, clock):
    kiosk, account, _ = world
    clock.set(AFTER_CLOSE)
    with pytest.raises(Refused) as refused:
        kiosk.services.registrations.report_address_change(
            account, {**NEW_ADDRESS, "postal_code": "abc"}
        )
    assert set(refused.value.problems) == {"postal_code"}
    assert kiosk.services.store.AddressChange.select().count() == 0


def test_the_window_boundary_decides_between_a_new_version_and_a_notice(world, clock):
    kiosk, account, registration = world
    session = kiosk.services.session
    clock.set(session.closes - timedelta(seconds=1))
    outcome = kiosk.services.registrations.report_address_change(account, NEW_ADDRESS)
    assert not isinstance(outcome, AddressChange)
    clock.set(session.closes)
    again = kiosk.services.registrations.report_address_change(
        account, {**NEW_ADDRESS, "town": "Niort", "postal_code": "79000"}
    )
    assert isinstance(again, AddressChange)


def test_the_notice_pdf_names_both_addresses(world, clock):
    kiosk, account, registration = world
    clock.set(AFTER_CLOSE)
    before = dict(registration.answers)
    change = kiosk.services.registrations.report_address_change(account, NEW_ADDRESS)
    notice = kiosk.services.documents.address_notice(account, change, before)
    pdf = (kiosk.folder / "documents" / notice.file_name).read_bytes()
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert before["address_line1"] in text and "12 rue des Lilas" in text
    assert hashlib.sha256(pdf).hexdigest() == notice.sha256


def test_a_document_not_fetched_yet_is_fetched_at_a_round_with_nothing_new(rectorat, world):
    kiosk, account, registration = world
    published, _ = rectorat.service.publish(registration.reference, a_pdf(), "Convocation", "x")
    assert kiosk.sync().online
    documents = kiosk.services.store.Document
    # As if the fetch had failed last round (the rectorat away just then): listed once here.
    kept = kiosk.folder / "documents" / f"{published.sha256}.pdf"
    kept.unlink()
    documents.update(stored_at=None).where(documents.kind == "published").execute()
    assert [v.kind for v in kiosk.services.documents.documents(account)] == ["confirmation"]

    report = kiosk.sync()
    assert report.online and report.pulled == 0
    assert kept.exists()
    assert [v.kind for v in kiosk.services.documents.documents(account)] == [
        "confirmation",
        "published",
    ]
