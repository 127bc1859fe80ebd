"""The exam office's address changes and publishing, at the rectorat's console, driven by
Pilot: names and addresses shown as typed, never as markup; a refusal said at its field."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from argon2 import PasswordHasher
from fpdf import FPDF
from textual.widgets import Button

from kiosk.console.on_rectorat import RectoratConsole
from kiosk.passwords import Hasher
from kiosk.rectorat.service import RectoratService
from kiosk.rectorat.store import open_store, sqlite_url
from kiosk.staff import StaffService
from screens.console.addresses import AddressChangesScreen
from screens.console.app import build_console
from screens.console.home import ConsoleHomeScreen
from screens.console.publish import PublishScreen
from tests.factories import (
    EARLIER,
    account_item,
    answers,
    iso,
    new_kiosk,
    registration_item,
    results,
)
from tests.support.pilot import SIZE, click, settle, text_of, type_into, value_of

STAFF_PASSWORD = "guichet du hall nord 2019"
OLD_ADDRESS = {
    "address_line1": "5 place du Donjon",
    "address_line2": "",
    "postal_code": "79000",
    "town": "Niort",
    "country": "France",
    "phone": "",
}
NEW_ADDRESS = {**OLD_ADDRESS, "address_line1": "[b]12 rue des Lilas[/b]", "postal_code": "86000"}
OTHER_ADDRESS = {**OLD_ADDRESS, "address_line1": "1 allée des Tilleuls"}


def fast() -> Hasher:
    return Hasher(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


def address_change(registration_id: str, address: dict, hours: int) -> dict:
    return {
        "entity": "address_change",
        "id": str(uuid.uuid4()),
        "version": 1,
        "data": {
            "created_at": iso(EARLIER + timedelta(hours=hours)),
            "registration_id": registration_id,
            "address": address,
        },
    }


@pytest.fixture
def rectorat_console(services, tmp_path):
    """The rectorat's store (a SQLite file): one registration pushed by a kiosk, and two
    address changes reported for it."""
    store = open_store(sqlite_url(tmp_path / "rectorat.sqlite3"))
    service = RectoratService(store, services.clock, hasher=fast())
    kiosk = new_kiosk(service, "borne-a")[0]
    account = account_item(uuid.UUID(int=1), family="[b]Durand[/b]")
    registration = registration_item(
        account["id"], uuid.UUID(int=2 << 100), who={**answers("[b]Durand[/b]"), **OLD_ADDRESS}
    )
    changes = [
        address_change(registration["id"], NEW_ADDRESS, 2),
        address_change(registration["id"], OTHER_ADDRESS, 3),
    ]
    assert results(service.push(kiosk, [account, registration, *changes])) == ["applied"] * 4
    staff = StaffService(store.db, services.clock, fast(), model=store.Staff)
    staff.add("dec", "exam_office", STAFF_PASSWORD)
    staff.add("accueil", "reception", STAFF_PASSWORD)
    console = RectoratConsole(store, services.clock, services.session, tmp_path / "exports")
    console.staff.hasher = fast()
    yield console
    store.close()


async def log_in(pilot, name: str) -> None:
    await settle(pilot)
    await type_into(pilot, "#name", name)
    await pilot.press("enter", *STAFF_PASSWORD, "enter")
    await settle(pilot)


def shown_buttons(pilot) -> set[str]:
    return {b.id for b in pilot.app.screen.query(Button) if b.display}


def a_pdf() -> bytes:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    pdf.cell(text="Convocation")
    return bytes(pdf.output())


async def test_the_exam_office_reports_an_address_change_on_the_file(rectorat_console):
    store = rectorat_console.store
    first, second = (
        c.id for c in store.AddressChange.select().order_by(store.AddressChange.created_at)
    )
    app = build_console(rectorat_console)
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, "dec")
        assert {"addresses", "publish"} <= shown_buttons(pilot)
        assert "reporter sur les dossiers : 2" in text_of(pilot, "#glance-addresses")
        await pilot.press("f7")
        await settle(pilot)
        assert isinstance(app.screen, AddressChangesScreen)
        table = app.screen.query_one("#changes")
        assert table.row_count == 2
        row = [str(cell) for cell in table.get_row_at(0)]
        assert row[0] == "[b]Durand[/b] Jean" and row[3] == "09/11/2019 16:00"
        assert row[4].startswith("5 place du Donjon, 79000 Niort, France → [b]12 rue des Lilas[/b]")
        # The selected change in full, as typed: never read as markup.
        old, new = text_of(pilot, "#old"), text_of(pilot, "#new")
        assert "5 place du Donjon" in old and "79000 Niort" in old
        assert "[b]12 rue des Lilas[/b]" in new and "86000 Niort" in new
        assert "samedi 9 novembre 2019 à 16:00" in new
        await pilot.press("down")  # the arrows choose another: its addresses are shown
        await settle(pilot)
        assert "1 allée des Tilleuls" in text_of(pilot, "#new")
        await pilot.press("up")
        await settle(pilot)
        assert "[b]12 rue des Lilas[/b]" in text_of(pilot, "#new")
        await click(pilot, "#apply")
        await settle(pilot)
        assert "Adresse reportée sur le dossier de [b]Durand[/b] Jean" in text_of(pilot, "#notice")
        assert "version 2" in text_of(pilot, "#notice")
        assert table.row_count == 1
        # The other one is reported from another desk meanwhile: said, and out of the list.
        rectorat_console.service.apply_address_change(second, by="martine")
        await click(pilot, "#apply")
        await settle(pilot)
        assert "déjà été reporté sur le dossier, par martine" in text_of(pilot, "#form-problem")
        assert table.row_count == 0 and not table.display
        assert "Aucun changement d'adresse en attente" in text_of(pilot, "#empty")
        assert "apply" not in shown_buttons(pilot)
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, ConsoleHomeScreen)
        assert "reporter sur les dossiers : 0" in text_of(pilot, "#glance-addresses")
    registration = store.Registration.get()
    assert registration.answers["address_line1"] == "1 allée des Tilleuls"  # the last applied
    assert registration.version == 3
    assert store.AddressChange.get_by_id(first).applied_by == "dec"


async def test_a_wrong_path_is_said_at_its_field_and_what_was_typed_stays(
    rectorat_console, tmp_path
):
    store = rectorat_console.store
    number = store.Registration.get().number
    missing = str(tmp_path / "convocations" / "absente.pdf")
    app = build_console(rectorat_console)
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, "dec")
        await pilot.press("f8")
        await settle(pilot)
        assert isinstance(app.screen, PublishScreen)
        await type_into(pilot, "#code", number)
        await type_into(pilot, "#document_title", "Convocation")
        await type_into(pilot, "#path", missing)
        await pilot.press("enter")  # on the last field: publishes
        await settle(pilot)
        assert text_of(pilot, "#problem-path") == (
            f"Aucun fichier à ce chemin sur ce serveur : {missing}"
        )
        assert not text_of(pilot, "#problem-code") and not text_of(pilot, "#problem-document_title")
        assert (value_of(pilot, "#code"), value_of(pilot, "#document_title")) == (
            number,
            "Convocation",
        )
        assert value_of(pilot, "#path") == missing
        assert store.Document.select().count() == 0
        # The file put where it was looked for: published, and the next one may be typed.
        (tmp_path / "convocations").mkdir()
        (tmp_path / "convocations" / "absente.pdf").write_bytes(a_pdf())
        await click(pilot, "#submit")
        await settle(pilot)
        notice = text_of(pilot, "#notice")
        assert "Publié : « Convocation » pour [b]Durand[/b] Jean" in notice
        assert "prévenez le candidat vous-même" in notice  # no mail configured here
        assert not text_of(pilot, "#problem-path")
        assert (value_of(pilot, "#code"), value_of(pilot, "#path")) == ("", "")
        assert value_of(pilot, "#document_title") == "Convocation"
    assert store.Document.get().title == "Convocation"


async def test_the_reception_sees_neither_task_at_the_rectorat(rectorat_console):
    app = build_console(rectorat_console)
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, "accueil")
        assert not {"addresses", "publish"} & shown_buttons(pilot)
        assert not app.screen.query_one("#glance-addresses").display
        await pilot.press("f7", "f8")
        await settle(pilot)
        assert isinstance(app.screen, ConsoleHomeScreen)
