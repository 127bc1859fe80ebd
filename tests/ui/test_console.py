"""The staff console driven by Pilot: each role's journeys, on a kiosk's store and the
rectorat's."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from argon2 import PasswordHasher
from textual.widgets import Button

from kiosk.console import open_console
from kiosk.console.on_rectorat import RectoratConsole
from kiosk.passwords import Hasher
from kiosk.rectorat.kiosks import KioskIdentity
from kiosk.rectorat.service import RectoratService
from kiosk.rectorat.store import open_store, sqlite_url
from kiosk.staff import StaffService
from screens.console.app import build_console
from screens.console.candidate import CandidateScreen
from screens.console.home import ConsoleHomeScreen
from screens.console.login import ConsoleLoginScreen
from screens.dialogs import Confirm
from screens.key_bar import KeyBar
from screens.masthead import Masthead
from tests.factories import account_item, answers, new_kiosk, registration_item, results
from tests.support.pilot import (
    EMAIL,
    FAMILY,
    SIZE,
    candidate,
    click,
    create_account,
    queued_mails,
    register,
    settle,
    steady,
    text_of,
    type_into,
    value_of,
)

STAFF_PASSWORD = "guichet du hall nord 2019"


def fast() -> Hasher:
    return Hasher(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


@pytest.fixture
def kiosk_console(services):
    services.staff.hasher = fast()
    services.staff.add("accueil", "reception", STAFF_PASSWORD)
    services.staff.add("dec", "exam_office", STAFF_PASSWORD)
    return open_console(services)


@pytest.fixture
def registered(services):
    account = candidate(services)
    return account, register(services, account)


@pytest.fixture
def rectorat_console(services, tmp_path):
    """The rectorat's store (a SQLite file), with one registration pushed by a kiosk."""
    store = open_store(sqlite_url(tmp_path / "rectorat.sqlite3"))
    service = RectoratService(store, services.clock, hasher=fast())
    kiosk = new_kiosk(service, "borne-a")[0]
    # Fixed ids: the reference printed on screen comes from the registration's id.
    account = account_item(uuid.UUID(int=1), family="[b]Durand[/b]")
    registration = registration_item(
        account["id"], uuid.UUID(int=2 << 100), who=answers("[b]Durand[/b]")
    )
    assert results(service.push(kiosk, [account, registration])) == ["applied", "applied"]
    StaffService(store.db, services.clock, fast(), model=store.Staff).add(
        "dec", "exam_office", STAFF_PASSWORD
    )
    console = RectoratConsole(store, services.clock, services.session, tmp_path / "exports")
    console.staff.hasher = fast()
    yield console
    store.close()


async def log_in(pilot, name: str) -> None:
    await settle(pilot)
    await type_into(pilot, "#name", name)
    await pilot.press("enter", *STAFF_PASSWORD, "enter")
    await settle(pilot)


async def open_file(pilot, staff: str, account_id) -> None:
    """Logged in as ``staff``, the candidate's file on the screen, read."""
    await log_in(pilot, staff)
    pilot.app.push_screen(CandidateScreen(str(account_id)))
    await settle(pilot)


async def search(pilot, query: str) -> None:
    await type_into(pilot, "#query", query)
    await pilot.press("enter")
    await settle(pilot)


def shown_buttons(pilot) -> set[str]:
    return {b.id for b in pilot.app.screen.query(Button) if b.display}


async def test_the_reception_finds_a_candidate_and_reprints_the_confirmation(
    services, kiosk_console, registered
):
    app = build_console(kiosk_console)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, ConsoleLoginScreen)
        await log_in(pilot, "accueil")
        assert isinstance(app.screen, ConsoleHomeScreen)
        assert "accueil" in pilot.app.screen.query_one(Masthead).status
        assert not {"export", "audit", "paper", "conflicts"} & shown_buttons(pilot)
        assert "1 inscription(s)" in text_of(pilot, "#glance-counts")
        await search(pilot, "dupre")
        assert "1 candidat" in text_of(pilot, "#results-count")
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, CandidateScreen)
        assert FAMILY in text_of(pilot, "#details")
        assert "correct_identity" not in shown_buttons(pilot) and "reprint" in shown_buttons(pilot)
        await click(pilot, "#reprint")
        await settle(pilot)
        # No printer on this kiosk: the notice names where the copy lies.
        (printed,) = services.config.print_dir.glob("*.pdf")
        notice = text_of(pilot, "#notice")
        assert "Aucune imprimante" in notice and str(printed) in notice
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, ConsoleHomeScreen)


async def test_the_reception_lifts_a_login_delay(services, kiosk_console, registered):
    account, _ = registered
    for _ in range(6):
        try:
            services.accounts.log_in(account.email, "pas le bon")
        except Exception:
            pass
    app = build_console(kiosk_console)
    async with app.run_test(size=SIZE) as pilot:
        await open_file(pilot, "accueil", account.id)
        assert "bloquée jusqu'au" in text_of(pilot, "#details")
        await click(pilot, "#lift_delay")
        await settle(pilot)
        assert "levé" in text_of(pilot, "#notice")
        assert "aucun échec récent" in text_of(pilot, "#details")


async def test_the_reception_resends_an_activation_code(services, kiosk_console):
    create_account(services, active=False)
    services.clock.advance(timedelta(minutes=2))
    app = build_console(kiosk_console)
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, "accueil")
        await search(pilot, EMAIL)
        await pilot.press("enter")
        await settle(pilot)
        assert "en attente d'activation" in text_of(pilot, "#details")
        assert "resend_code" in shown_buttons(pilot) and "reprint" not in shown_buttons(pilot)
        await click(pilot, "#resend_code")
        await settle(pilot)
        assert "nouveau code" in text_of(pilot, "#notice")
        # At once again (once the button no longer shows pressed: Textual ignores a click
        # then): the kiosk's limits hold for staff too.
        while app.screen.query_one("#resend_code").has_class("-active"):
            await pilot.pause(0.05)
        await click(pilot, "#resend_code")
        await settle(pilot)
        assert text_of(pilot, "#form-problem")
    assert len([s for s in queued_mails(services, EMAIL) if s.startswith("Activez")]) == 2


async def test_the_exam_office_marks_a_paper_file_complete(rectorat_console):
    store = rectorat_console.store
    app = build_console(rectorat_console)
    async with app.run_test(size=SIZE) as pilot:
        await open_file(pilot, "dec", store.Registration.get().account_id)
        await click(pilot, "#mark_complete")
        await settle(pilot)
        assert "complet" in text_of(pilot, "#notice")
        assert "Dossier papier : complet" in text_of(pilot, "#details")
        assert "mark_complete" not in shown_buttons(pilot)
    assert store.Registration.get().paper_status == "complete"


async def test_a_wrong_staff_password_is_said_and_the_name_kept(kiosk_console):
    app = build_console(kiosk_console)
    async with app.run_test(size=SIZE) as pilot:
        await type_into(pilot, "#name", "accueil")
        await pilot.press("enter", *"pas le bon", "enter")
        await settle(pilot)
        assert isinstance(app.screen, ConsoleLoginScreen)
        assert "incorrect" in text_of(pilot, "#form-problem")
        assert value_of(pilot, "#name") == "accueil"


async def test_the_exam_office_corrects_an_identity_and_a_bad_date_is_said_at_its_field(
    services, kiosk_console, registered
):
    account, registration = registered
    app = build_console(kiosk_console)
    async with app.run_test(size=SIZE) as pilot:
        await open_file(pilot, "dec", account.id)
        await click(pilot, "#correct_identity")
        await settle(pilot)
        birth = app.screen.query_one("#birth_date")
        birth.value = ""
        await type_into(pilot, "#birth_date", "31/02/2002")
        await click(pilot, "#submit")
        await settle(pilot)
        assert text_of(pilot, "#problem-birth_date")
        assert value_of(pilot, "#birth_date") == "31/02/2002"
        birth.value = ""
        await type_into(pilot, "#birth_date", "01/03/2002")
        await click(pilot, "#submit")
        await settle(pilot)
        assert isinstance(app.screen, CandidateScreen)
        assert "Identité corrigée" in text_of(pilot, "#notice")
        assert "01/03/2002" in text_of(pilot, "#details")
        assert f"version {registration.version + 1}" in text_of(pilot, "#details")


async def test_the_console_logs_out_after_15_idle_minutes(services, kiosk_console):
    app = build_console(kiosk_console)
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, "accueil")
        services.clock.advance(timedelta(minutes=14, seconds=59))
        app.look_for_idle()
        await settle(pilot)
        assert isinstance(app.screen, ConsoleHomeScreen)
        services.clock.advance(timedelta(seconds=1))
        app.look_for_idle()
        await settle(pilot)
        assert isinstance(app.screen, ConsoleLoginScreen) and app.officer is None
        assert "15 minutes" in text_of(pilot, "#notice")
        services.clock.advance(timedelta(minutes=14))
        app.look_for_idle()
        await settle(pilot)
        assert app.is_running
        services.clock.advance(timedelta(minutes=1))
        app.look_for_idle()
        await pilot.pause()
        assert app.return_code == 0  # left alone at the door: the console ends
    officer = kiosk_console.log_in("dec", STAFF_PASSWORD)
    actions = [line.action for line in kiosk_console.audit_trail(officer)]
    assert actions[:3] == ["login", "logout", "login"]


async def test_the_exam_office_receives_paper_files_by_scan_then_marks_one_incomplete(
    rectorat_console,
):
    store = rectorat_console.store
    row = store.Registration.get()
    reference_typed = row.number
    app = build_console(rectorat_console)
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, "dec")
        assert {"paper", "conflicts", "export", "audit"} <= shown_buttons(pilot)
        await pilot.press("f3")
        await settle(pilot)
        await type_into(pilot, "#code", "2020-PO-999999")
        await pilot.press("enter")
        await settle(pilot)
        assert "Aucune inscription" in text_of(pilot, "#problem-code")
        assert value_of(pilot, "#code") == "2020-PO-999999"
        app.screen.query_one("#code").value = ""
        await type_into(pilot, "#code", reference_typed)
        await pilot.press("enter")
        await settle(pilot)
        assert "Reçu : [b]Durand[/b] Jean" in text_of(
            pilot, "#notice"
        )  # shown as typed, never as markup
        assert value_of(pilot, "#code") == ""
        assert store.Registration.get().paper_status == "received"
        await pilot.press("escape")
        await settle(pilot)
        app.push_screen(CandidateScreen(str(row.account_id)))
        await settle(pilot)
        await click(pilot, "#mark_incomplete")
        await settle(pilot)
        await click(pilot, "#submit")
        await settle(pilot)
        assert "Cochez" in text_of(pilot, "#form-problem")
        await click(pilot, "#piece-confirmation")
        await click(pilot, "#submit")
        await settle(pilot)
        assert "incomplet" in text_of(pilot, "#notice")
    row = store.Registration.get()
    assert (row.paper_status, row.missing_pieces) == ("incomplete", ["confirmation"])


async def test_the_exam_office_sets_aside_after_confirming(rectorat_console):
    store = rectorat_console.store
    app = build_console(rectorat_console)
    async with app.run_test(size=SIZE) as pilot:
        await open_file(pilot, "dec", store.Registration.get().account_id)
        await click(pilot, "#set_aside")
        await settle(pilot)
        await pilot.press("escape")  # no
        await settle(pilot)
        assert store.Registration.get().status == "registered"
        await click(pilot, "#set_aside")
        await settle(pilot)
        await click(pilot, "#yes")
        await settle(pilot)
        assert store.Registration.get().status == "set_aside"
        assert "mise de côté" in text_of(pilot, "#notice")


async def test_a_confirmed_task_is_not_lost_to_the_file_read_again_on_resume(rectorat_console):
    """The dialog's answer and the screen's resume reach the file's screen in either order:
    « Oui » still sets the file aside, even when the screen, shown again, already reads the
    file afresh (here the answer is given from outside the app's tasks, so that the resume
    is queued before the screen runs the answer)."""
    store = rectorat_console.store
    app = build_console(rectorat_console)
    async with app.run_test(size=SIZE) as pilot:
        await open_file(pilot, "dec", store.Registration.get().account_id)
        await click(pilot, "#set_aside")
        await settle(pilot)
        assert isinstance(app.screen, Confirm)
        app.screen.dismiss(True)
        await settle(pilot)
        assert store.Registration.get().status == "set_aside"
        assert "mise de côté" in text_of(pilot, "#notice")


async def test_the_exam_office_settles_a_conflict_exports_and_reads_the_trail(rectorat_console):
    store = rectorat_console.store
    service = rectorat_console.service
    kiosk = new_kiosk(service, "borne-b")[0]
    twin = account_item(email="jean.d@exemple.fr", family="[b]Durand[/b]")
    assert (
        results(
            service.push(kiosk, [twin, registration_item(twin["id"], who=answers("[b]Durand[/b]"))])
        )[1]
        == "conflict"
    )
    app = build_console(rectorat_console)
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, "dec")
        assert "conflits en attente : 1" in text_of(pilot, "#glance-counts")
        await pilot.press("f4")
        await settle(pilot)
        await click(pilot, "#keep")
        await settle(pilot)
        assert "existant est gardé" in text_of(pilot, "#notice")
        assert store.Conflict.get().resolution == "keep_existing"
        await pilot.press("escape")
        await settle(pilot)
        await pilot.press("f5")
        await settle(pilot)
        assert "Export écrit" in text_of(pilot, "#notice")
        await pilot.press("f6")
        await settle(pilot)
        table = app.screen.query_one("#trail")
        actions = [str(table.get_row_at(n)[2]) for n in range(table.row_count)]
        assert actions[:4] == [
            "export CSV",
            "consultation des conflits",
            "conflit réglé",
            "consultation des conflits",
        ]
    assert list(rectorat_console.exports_dir.glob("*.csv"))


async def test_a_registration_changed_on_both_sides_shows_what_differs(rectorat_console):
    """The kiosk's change and the exam office's correction, side by side: the answers that
    differ, in the form's words, the kiosk's text never read as markup."""
    store, service = rectorat_console.store, rectorat_console.service
    registration, row = store.Registration.get(), store.Kiosk.get()
    service.correct_identity(
        registration.id,
        {"family_name": "[b]Durand[/b]", "given_names": "Jean", "birth_town": "Poitiers"},
    )
    changed = registration_item(
        registration.account_id, registration.id, version=2,
        who={**answers("[b]Durand[/b]"), "phone": "[red]05 49 00 00 00[/red]"},
    )  # fmt: skip
    answer = service.push(KioskIdentity(row.id, row.name), [{**changed, "base": 1}])
    assert results(answer) == ["conflict"]
    app = build_console(rectorat_console)
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, "dec")
        await pilot.press("f4")
        await settle(pilot)
        cells = [str(cell) for cell in app.screen.query_one("#conflicts").get_row_at(0)]
        assert cells[0] == "modifiée des deux côtés"
        assert cells[3:] == [
            "Commune de naissance : Niort · Téléphone : [red]05 49 00 00 00[/red]",
            "Commune de naissance : Poitiers · Téléphone : —",
        ]
        await click(pilot, "#apply")
        await settle(pilot)
    stored = store.Registration.get()
    assert (stored.version, stored.answers["phone"]) == (3, "[red]05 49 00 00 00[/red]")


def test_snapshot_login(kiosk_console, snap_compare):
    assert snap_compare(build_console(kiosk_console), terminal_size=SIZE, run_before=steady)


def test_snapshot_desk_of_the_exam_office(rectorat_console, snap_compare):
    async def run_before(pilot):
        await log_in(pilot, "dec")
        await steady(pilot)

    assert snap_compare(build_console(rectorat_console), terminal_size=SIZE, run_before=run_before)


def test_snapshot_candidate_file(rectorat_console, snap_compare):
    async def run_before(pilot):
        await log_in(pilot, "dec")
        pilot.app.push_screen(
            CandidateScreen(str(rectorat_console.store.Registration.get().account_id))
        )
        await steady(pilot)

    assert snap_compare(build_console(rectorat_console), terminal_size=SIZE, run_before=run_before)


def test_snapshot_paper_desk_after_a_scan(rectorat_console, snap_compare):
    async def run_before(pilot):
        await log_in(pilot, "dec")
        await pilot.press("f3")
        await settle(pilot)
        await type_into(pilot, "#code", rectorat_console.store.Registration.get().number)
        await pilot.press("enter")
        await steady(pilot)

    assert snap_compare(build_console(rectorat_console), terminal_size=SIZE, run_before=run_before)


def test_snapshot_desk_of_the_reception(services, kiosk_console, registered, snap_compare):
    async def run_before(pilot):
        await log_in(pilot, "accueil")  # no search: the reference comes from a random id
        await steady(pilot)

    assert snap_compare(build_console(kiosk_console), terminal_size=SIZE, run_before=run_before)


async def test_the_exam_offices_desk_says_every_key_at_80_columns(rectorat_console):
    """Each task's button says its key, and the footer's keys fit, « Déconnexion » whole."""
    app = build_console(rectorat_console)
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, "dec")
        await steady(pilot)
        labels = [str(b.label) for b in app.screen.query(".actions Button")]
        assert labels == [
            "F3 Dossiers papier", "F4 Conflits", "F7 Adresses", "F8 Publier", "F5 Exporter",
            "F6 Journal", "F10 Déconnexion",
        ]  # fmt: skip
        for button in app.screen.query(".actions Button"):  # whole on its one line
            assert button.content_region.width >= len(str(button.label)), button.label
        bar = app.screen.query_one(KeyBar)
        assert sorted(bar.keys) == ["f10", "f2"]
        drawn = str(bar.render())
        assert "f10 Déconnexion" in drawn and len(drawn) <= bar.region.width <= SIZE[0]
