"""« Mes documents »: one PDF per version, the older superseded; printed, mailed, owned."""

from __future__ import annotations

import pytest
from pypdf import PdfReader

from kiosk.accounts import AccountService
from kiosk.delivery.mail_queue import MailDelivery
from kiosk.delivery.mail_transport import read_maildir
from kiosk.delivery.printing import printer_from_config
from kiosk.documents import DocumentService
from kiosk.errors import Refused
from kiosk.registrations import RegistrationService
from kiosk.runtime.config import MailConfig, PrintConfig
from tests.factories import CANDIDATE, fast_hasher, mailed_code, valid_values


@pytest.fixture
def candidate(accounts, signed_up):
    account, code = signed_up
    return accounts.activate(account.email, code)


@pytest.fixture
def registrations(kiosk_store, clock, session):
    return RegistrationService(kiosk_store, clock, session)


def documents_service(store, clock, session, tmp_path, queue: str = "", server: str = ""):
    def printer():
        return printer_from_config(
            PrintConfig(queue=queue, server=server), tmp_path / "impressions"
        )

    return DocumentService(store, clock, session, tmp_path / "documents", printer)


@pytest.fixture
def documents(kiosk_store, clock, session, tmp_path):
    return documents_service(kiosk_store, clock, session, tmp_path)


def test_no_registration_no_document(documents, candidate):
    assert documents.documents(candidate) == []


def test_the_current_version_is_made_once_and_kept(documents, registrations, candidate, session):
    registrations.save(candidate, valid_values(session))
    [first] = documents.documents(candidate)
    [again] = documents.documents(candidate)
    assert first.id == again.id and first.registration_version == 1 and not first.superseded
    document = documents.store.Document.get_by_id(first.id)
    path = documents.path(document)
    assert path.stat().st_size == document.size
    assert oct(path.parent.stat().st_mode & 0o777) == "0o700"
    assert "Confirmation d'inscription" in PdfReader(path).pages[0].extract_text()


def test_a_new_version_supersedes_the_old_document(documents, registrations, candidate, session):
    registrations.save(candidate, valid_values(session))
    documents.documents(candidate)
    registrations.save(candidate, valid_values(session, phone="05 49 00 00 00"))
    current, old = documents.documents(candidate)
    assert (current.registration_version, current.superseded) == (2, False)
    assert (old.registration_version, old.superseded) == (1, True)


def test_a_confirmation_of_a_version_saved_since_is_neither_printed_nor_mailed(
    documents, registrations, candidate, session
):
    """The screen lists version 1; version 2 is saved (here, or pulled from the rectorat)
    before its confirmation is made: version 1 is no longer the one to send."""
    registrations.save(candidate, valid_values(session))
    [listed] = documents.documents(candidate)
    registrations.save(candidate, valid_values(session, phone="05 49 00 00 00"))
    for act in (documents.print, documents.email):
        with pytest.raises(Refused) as refused:
            act(candidate, listed.id)
        assert refused.value.problems[""].key == "documents.not_current"
    current, old = documents.documents(candidate)
    assert (current.registration_version, old.id, old.superseded) == (2, listed.id, True)


def test_a_lost_file_is_made_again(documents, registrations, candidate, session):
    registrations.save(candidate, valid_values(session))
    [view] = documents.documents(candidate)
    documents.path(documents.store.Document.get_by_id(view.id)).unlink()
    [again] = documents.documents(candidate)
    assert documents.path(documents.store.Document.get_by_id(again.id)).exists()


def test_a_withdrawn_registration_gets_no_new_document(
    documents, registrations, candidate, session
):
    registrations.save(candidate, valid_values(session))
    registrations.withdraw(candidate)
    assert documents.documents(candidate) == []


def test_another_candidates_document_is_refused(
    kiosk_store, clock, session, documents, registrations, candidate
):
    registrations.save(candidate, valid_values(session))
    [view] = documents.documents(candidate)
    accounts = AccountService(kiosk_store, clock, session, fast_hasher())
    other = accounts.sign_up(
        CANDIDATE.__class__(
            **{**CANDIDATE.__dict__, "email": "autre@exemple.fr", "family_name": "Autre"}
        )
    )
    other = accounts.activate(other.email, mailed_code(kiosk_store, other.email))
    for act in (documents.print, documents.email):
        with pytest.raises(Refused) as refused:
            act(other, view.id)
        assert refused.value.problems[""].key == "documents.unknown"


def test_without_a_printer_the_pdf_goes_to_the_print_folder(
    documents, registrations, candidate, session, tmp_path
):
    Document = documents.store.Document
    registrations.save(candidate, valid_values(session))
    [view] = documents.documents(candidate)
    job = documents.print(candidate, view.id)
    assert job.job_id is None and job.path.parent == tmp_path / "impressions"
    assert job.path.read_bytes() == documents.path(Document.get_by_id(view.id)).read_bytes()


def test_mailed_with_the_pdf_attached(
    documents, registrations, candidate, session, clock, tmp_path
):
    Document = documents.store.Document
    registrations.save(candidate, valid_values(session))
    [view] = documents.documents(candidate)
    documents.email(candidate, view.id)
    delivery = MailDelivery(documents.store, MailConfig(), tmp_path / "maildir", clock)
    assert delivery.deliver_due().failed == 0
    import email
    from email import policy

    messages = [
        email.message_from_bytes(p.read_bytes(), policy=policy.default)
        for p in (tmp_path / "maildir" / "new").iterdir()
    ]
    [mailed] = [m for m in messages if m["Subject"].startswith("Votre confirmation")]
    [attachment] = list(mailed.iter_attachments())
    assert attachment.get_filename().endswith("-v1.pdf")
    assert attachment.get_content() == documents.path(Document.get_by_id(view.id)).read_bytes()
    assert any(
        e.subject.startswith("Votre confirmation") for e in read_maildir(tmp_path / "maildir")
    )


def test_a_stopped_printer_is_refused_with_its_message(
    kiosk_store, clock, session, tmp_path, registrations, candidate, cups
):
    queue = cups.add_pdf_queue("kiosk-stopped")
    cups.run("cupsdisable", queue)
    documents = documents_service(
        kiosk_store, clock, session, tmp_path, queue=queue, server=cups.server
    )
    registrations.save(candidate, valid_values(session))
    [view] = documents.documents(candidate)
    with pytest.raises(Refused) as refused:
        documents.print(candidate, view.id)
    assert refused.value.problems[""].key == "print.stopped"


def test_printed_through_cups(
    kiosk_store, clock, session, tmp_path, registrations, candidate, cups
):
    Document = kiosk_store.Document
    queue = cups.add_pdf_queue("kiosk-documents")
    documents = documents_service(
        kiosk_store, clock, session, tmp_path, queue=queue, server=cups.server
    )
    registrations.save(candidate, valid_values(session))
    [view] = documents.documents(candidate)
    job = documents.print(candidate, view.id)
    [output] = cups.output_for(job.job_id)
    assert len(PdfReader(output).pages) == len(
        PdfReader(documents.path(Document.get_by_id(view.id))).pages
    )
