"""« Mes documents » with more than the confirmation, key by key at 80×24: a document the
exam office published and a notice of address change are listed with their dates, chosen
with the arrows, printed as they are; a set-aside registration is said so, not « annulée ».

The published document is stored here as the sync leaves it (its row, its file under its
hash): its way across the network is tests/test_documents_for_candidates.py's."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from fpdf import FPDF

from kiosk.private import write_durably
from screens.app import build_app
from screens.documents import DocumentLine, DocumentsScreen
from screens.home import HomeScreen
from tests.support.pilot import SIZE, candidate, log_in, register, settle, text_of

TITLE = "[b]Convocation[/b] à l'épreuve E2"


def _published(services, registration, title: str = TITLE) -> bytes:
    """A document the exam office published, as the sync stores it."""
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    pdf.cell(text="Convocation")
    data = bytes(pdf.output())
    digest = hashlib.sha256(data).hexdigest()
    write_durably(services.config.data_dir / "documents", f"{digest}.pdf", data)
    now = services.clock.now()
    with services.store.connection_context():
        services.store.Document.create(
            registration=registration.id,
            registration_version=registration.version,
            kind="published",
            source_id="0b5e7c7e-0000-4000-8000-000000000001",
            title=title,
            file_name=f"{digest}.pdf",
            sha256=digest,
            size=len(data),
            created_at=now - timedelta(days=1),
            updated_at=now,
            stored_at=now,
        )
    return data


async def _open(pilot) -> DocumentsScreen:
    assert isinstance(pilot.app.screen, HomeScreen)
    await pilot.press("f4")
    await settle(pilot)
    assert isinstance(pilot.app.screen, DocumentsScreen)
    return pilot.app.screen


async def test_a_published_document_is_listed_as_typed_and_printed_when_chosen(app, services):
    account = candidate(services)
    registration = register(services, account)
    data = _published(services, registration)
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, account)
        screen = await _open(pilot)
        rows = list(screen.query(DocumentLine))
        assert [row.document.kind for row in rows] == ["confirmation", "published"]
        # The title is shown as the exam office typed it: brackets and all, no markup.
        assert str(rows[1].render()) == (
            f"{TITLE}, mis à votre disposition le samedi 9 novembre 2019 à 10:00"
        )
        assert rows[0].has_class("chosen") and not rows[1].has_class("chosen")

        rows[1].focus()
        await settle(pilot)
        assert rows[1].has_class("chosen") and not rows[0].has_class("chosen")
        await pilot.press("f5")
        await settle(pilot)
        [printed] = services.config.print_dir.glob("*.pdf")
        assert printed.read_bytes() == data
        assert "déposés dans" in text_of(pilot, "#notice")


async def test_a_set_aside_registration_is_said_so_and_its_published_documents_stay(app, services):
    account = candidate(services)
    registration = register(services, account)
    _published(services, registration)
    with services.store.connection_context():
        services.store.Registration.update(status="set_aside").where(
            services.store.Registration.id == registration.id
        ).execute()
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, account)
        await pilot.app.push_screen(DocumentsScreen())
        await settle(pilot)
        screen = pilot.app.screen
        assert text_of(pilot, "#status").startswith(
            "Votre inscription a été écartée par le bureau des examens"
        )
        assert "annulée" not in text_of(pilot, "#status")
        [row] = screen.query(DocumentLine)
        assert row.document.kind == "published"
        await pilot.press("f5")
        await settle(pilot)
        assert len(list(services.config.print_dir.glob("*.pdf"))) == 1


async def test_the_notice_of_an_address_change_is_listed_after_the_close(services):
    account = candidate(services)
    registration = register(services, account)
    services.clock.set(services.session.closes + timedelta(days=2))
    address = {**registration.answers, "address_line1": "3 place du Marché"}
    with services.store.connection_context():
        change = services.registrations.report_address_change(account, address)
        services.documents.address_notice(account, change, registration.answers)
    app = build_app(services)  # built on the clock as set: its idle timer starts from it
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, account)
        screen = await _open(pilot)
        texts = [str(row.render()) for row in screen.query(DocumentLine)]
        assert texts[-1].startswith("Avis de changement d'adresse du ")
        screen.query(DocumentLine).last().focus()
        await settle(pilot)
        await pilot.press("f6")
        await settle(pilot)
        assert "envoyés par e-mail" in text_of(pilot, "#notice")
