"""« Mes documents », key by key at 80×24: the current confirmation, printed into the
print folder when no printer queue is configured, or mailed with the PDF attached; older
versions listed as superseded; nothing to print after a withdrawal."""

from __future__ import annotations

from pathlib import Path

from peewee import SQL
from textual.widgets import Button

from screens.documents import DocumentsScreen
from screens.home import HomeScreen
from screens.masthead import Masthead
from tests.support.pilot import EMAIL, SIZE, candidate, log_in, register, settle, text_of

SAVED = "dimanche 10 novembre 2019 à 10:00"  # the frozen clock's Sunday morning


async def open_documents(pilot) -> DocumentsScreen:
    """F4 on the home: « Mes documents », once the PDF of the current version is made."""
    assert isinstance(pilot.app.screen, HomeScreen)
    await pilot.press("f4")
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, DocumentsScreen)
    return screen


def lines(screen: DocumentsScreen, kind: str) -> list[str]:
    return [str(line.render()) for line in screen.query(f"#list .{kind}")]


def offered(screen: DocumentsScreen) -> list[str]:
    return [b.id for b in screen.query(".buttons Button").results(Button) if b.display]


def mails_to(services, to: str) -> list[dict]:
    outbox = services.store.OutboxRow
    with services.store.connection_context():
        rows = outbox.select().where(outbox.kind == "mail").order_by(SQL("rowid"))
        return [row.payload for row in rows if row.payload["to"] == to]


async def test_f4_shows_the_current_document(app, services):
    account = candidate(services)
    registration = register(services, account)
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, account)
        screen = await open_documents(pilot)

        assert screen.query_one(Masthead).title == "Mes documents"
        assert lines(screen, "current") == [
            f"Confirmation d'inscription, dossier n° {registration.reference}, version 1 "
            f"(du {SAVED}) — à signer et envoyer"
        ]
        assert lines(screen, "superseded") == []
        assert not screen.query_one("#status").display
        assert offered(screen) == ["print", "email", "back"]
        assert pilot.app.focused.id == "print"

        await pilot.press("escape")
        assert isinstance(pilot.app.screen, HomeScreen)


async def test_f5_without_a_printer_queue_puts_the_pdf_in_the_print_folder_and_says_where(
    app, services
):
    assert services.config.printing.queue == ""
    account = candidate(services)
    register(services, account)
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, account)
        await open_documents(pilot)
        await pilot.press("f5")
        await settle(pilot)

        printed = sorted(services.config.print_dir.glob("*.pdf"))
        assert len(printed) == 1
        assert printed[0].read_bytes().startswith(b"%PDF")
        notice = text_of(pilot, "#notice")
        assert notice == (
            "Aucune imprimante n'est reliée à cette borne : "
            f"vos documents ont été déposés dans {printed[0]}. Demandez-les à l'accueil."
        )
        assert "déposés dans" in notice

        # A second print is a second copy: the first one is never replaced.
        await pilot.press("f5")
        await settle(pilot)
        assert len(list(services.config.print_dir.glob("*.pdf"))) == 2


async def test_f6_queues_a_mail_with_the_pdf_attached(app, services):
    account = candidate(services)
    registration = register(services, account)
    before = len(mails_to(services, EMAIL))
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, account)
        await open_documents(pilot)
        await pilot.press("f6")
        await settle(pilot)

        assert (
            text_of(pilot, "#notice")
            == f"Vos documents vous ont été envoyés par e-mail, à {EMAIL}."
        )
    mails = mails_to(services, EMAIL)
    assert len(mails) == before + 1
    mail = mails[-1]
    assert mail["subject"].startswith("Votre confirmation d'inscription")
    attachments = mail["attachments"]
    assert len(attachments) == 1
    assert attachments[0]["filename"].endswith(".pdf")
    assert registration.reference in attachments[0]["filename"]
    attached = Path(attachments[0]["path"])
    assert attached.is_file() and attached.read_bytes().startswith(b"%PDF")


async def test_after_a_change_version_2_is_current_and_version_1_superseded(app, services):
    account = candidate(services)
    registration = register(services, account)
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, account)
        await open_documents(pilot)  # the PDF of version 1 is made
        await pilot.press("escape")
        await settle(pilot)

        changed = register(services, account, phone="07 98 76 54 32")
        assert changed.reference == registration.reference

        screen = await open_documents(pilot)
        current = lines(screen, "current")
        superseded = lines(screen, "superseded")
        assert (
            len(current) == 1 and f"dossier n° {registration.reference}, version 2 " in current[0]
        )
        assert superseded == [
            f"Version 1 (du {SAVED}) — remplacée par une version plus récente : ne l'envoyez pas"
        ]
        # The current one comes first.
        assert [str(line.render()) for line in screen.query("#list Plain")] == current + superseded
        assert offered(screen) == ["print", "email", "back"]


async def withdraw(pilot, services, account) -> None:
    """The withdrawal, made through the services while the candidate is on the home."""
    with services.store.connection_context():
        services.registrations.withdraw(account)
    pilot.app.screen.refresh_standing()
    await settle(pilot)


async def test_after_a_withdrawal_the_home_opens_documents_with_nothing_to_print(app, services):
    account = candidate(services)
    register(services, account)
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, account)
        await open_documents(pilot)  # a document exists for version 1
        await pilot.press("escape")
        await settle(pilot)
        await withdraw(pilot, services, account)

        home = pilot.app.screen
        assert isinstance(home, HomeScreen)
        # Once something was saved, « Mes documents » stays reachable (candidate_actions).
        assert home.query_one("#documents", Button).display
        await pilot.press("f4")
        await settle(pilot)
        assert isinstance(pilot.app.screen, DocumentsScreen)
        await pilot.press("f5")
        await settle(pilot)
        assert not services.config.print_dir.exists() or not list(
            services.config.print_dir.glob("*.pdf")
        )


async def test_a_withdrawn_registration_s_documents_offer_nothing_to_print(app, services):
    account = candidate(services)
    register(services, account)
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, account)
        await open_documents(pilot)  # a document exists for version 1
        await pilot.press("escape")
        await settle(pilot)
        await withdraw(pilot, services, account)

        # Reached anyway (the home no longer offers it): nothing to print or send.
        await pilot.app.push_screen(DocumentsScreen())
        await settle(pilot)
        screen = pilot.app.screen
        assert "print" not in offered(screen) and "email" not in offered(screen)
        assert lines(screen, "current") == []
        assert (
            text_of(pilot, "#status")
            == "Votre inscription est annulée : ces documents ne sont plus valables."
        )
        await pilot.press("f5", "f6")
        await settle(pilot)
        assert not services.config.print_dir.exists() or not list(
            services.config.print_dir.glob("*.pdf")
        )


async def test_withdrawn_before_any_document_there_is_nothing_to_print(app, services):
    account = candidate(services)
    register(services, account)
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, account)
        await withdraw(pilot, services, account)
        await pilot.app.push_screen(DocumentsScreen())
        await settle(pilot)
        screen = pilot.app.screen
        assert offered(screen) == ["back"]
        assert lines(screen, "current") == [] and lines(screen, "superseded") == []
        await pilot.press("f5", "f6")
        await settle(pilot)
        assert not services.config.print_dir.exists() or not list(
            services.config.print_dir.glob("*.pdf")
        )
        assert pilot.app.is_running and pilot.app.return_code is None


async def test_documents_that_cannot_be_read_leave_no_preparing_line(app, services):
    account = candidate(services)
    register(services, account)
    folder = services.config.data_dir / "documents"
    folder.parent.mkdir(parents=True, exist_ok=True)
    folder.write_text("pas un dossier")  # the PDFs cannot be made
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, account)
        screen = await open_documents(pilot)
        assert text_of(pilot, "#form-problem")
        assert not screen.query_one("#status").display  # no « Préparation de vos documents… »
