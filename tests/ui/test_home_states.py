"""The home in every state and at every moment: what it says, its buttons and its keys are
those of kiosk.candidate_actions.TABLE, and « Mes documents » opens once something was
saved."""

from __future__ import annotations

import time

import pytest
from textual.widgets import Button

from kiosk.candidate_actions import TABLE, Action, State
from kiosk.clock import parse_instant
from kiosk.exam_sessions import WindowState
from kiosk.i18n import french
from screens.app import build_app
from screens.documents import DocumentsScreen
from screens.home import HomeScreen
from tests.support.pilot import SIZE, candidate, log_in, register, settle, text_of

MOMENTS = {
    WindowState.NOT_YET_OPEN: parse_instant("2019-11-04T08:59:59"),
    WindowState.OPEN: parse_instant("2019-11-10T10:00:00"),
    WindowState.CLOSED: parse_instant("2019-11-27T19:00:00"),
}
SAVED_AT = "dimanche 10 novembre 2019 à 10:00"
# What the key of each button opens, as the footer offers it.
KEYS = {"register": "f2", "address": "f3", "documents": "f4"}


def put_in(services, account, state: State) -> None:
    """The candidate brought to ``state`` while the window is open; the rectorat's part
    written as its sync writes it."""
    registrations = services.registrations
    if state is State.DRAFT:
        registrations.save_draft(account, {"birth_town": "Niort"})
    if state in (State.NONE, State.DRAFT):
        return
    registration = register(services, account)
    services.documents.documents(account)  # the confirmation of version 1, made
    if state is State.WITHDRAWN:
        registrations.withdraw(account)
        return
    Registration = services.store.Registration
    if state is State.SET_ASIDE:
        fields: dict = {"status": "set_aside"}
    elif state is State.REGISTERED:
        return
    else:
        missing = ["jdc"] if state is State.INCOMPLETE else None
        fields = {"paper_status": state.value, "missing_pieces": missing}
    Registration.update(**fields).where(Registration.id == registration.id).execute()


def shown(pilot) -> list[str]:
    """The home's buttons on screen, « Me déconnecter » always among them."""
    return [b.id or "" for b in pilot.app.screen.query("#home-buttons Button") if b.display]


def buttons_of(actions: frozenset[Action]) -> list[str]:
    """The buttons a cell's actions make, in the home's order."""
    names = {
        "register": {Action.REGISTER, Action.CHANGE},
        "documents": {Action.DOCUMENTS},
        "address": {Action.ADDRESS},
        "withdraw": {Action.WITHDRAW},
        "log-out": set(),
    }
    return [name for name, wanted in names.items() if wanted & actions or name == "log-out"]


def home_in(services, state: State, moment: WindowState):
    account = candidate(services)
    put_in(services, account, state)
    services.clock.set(MOMENTS[moment])
    return account, build_app(services)  # on the clock as set: its idle timer starts there


CELLS = [
    pytest.param(state, moment, id=f"{state.value}-{moment.value}")
    for state in State
    for moment in WindowState
]


@pytest.mark.parametrize("state, moment", CELLS)
async def test_the_home_shows_and_offers_its_cell(services, state, moment):
    account, app = home_in(services, state, moment)
    cell = TABLE[state][moment]
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, account)
        home = pilot.app.screen
        assert isinstance(home, HomeScreen)
        standing = text_of(pilot, "#standing")
        assert standing and not standing.startswith("standing.")
        assert shown(pilot) == buttons_of(cell.actions)
        label = "Modifier mon inscription" if Action.CHANGE in cell.actions else "M'inscrire"
        assert str(home.query_one("#register", Button).label) == label
        for button, key in KEYS.items():
            assert bool(home.check_action(button, ())) == (button in shown(pilot)), key
        assert home.query_one("#todo").display == cell.to_do


@pytest.mark.parametrize(
    "state, standing",
    [
        pytest.param(
            State.RECEIVED,
            "Le rectorat a reçu votre dossier papier ; il est en cours de vérification.",
            id="received",
        ),
        pytest.param(
            State.COMPLETE,
            "Le rectorat a reçu votre dossier papier : il est complet.",
            id="complete",
        ),
        pytest.param(
            State.INCOMPLETE,
            "Le rectorat a reçu votre dossier papier : il est incomplet. Pièces à envoyer : "
            "Le certificat individuel de participation à la JDC (ou l'attestation "
            "d'exemption).",
            id="incomplete",
        ),
    ],
)
async def test_once_the_paper_file_is_received_the_window_still_offers_everything(
    services, state, standing
):
    account, app = home_in(services, state, WindowState.OPEN)
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, account)
        assert text_of(pilot, "#standing") == standing
        assert shown(pilot) == ["register", "documents", "address", "withdraw", "log-out"]
        assert str(pilot.app.screen.query_one("#register", Button).label) == (
            "Modifier mon inscription"
        )
        # The paper file is at the rectorat: nothing more to post is told.
        assert not pilot.app.screen.query_one("#todo").display

        # « Mes documents », to reprint the confirmation and the list of pièces.
        await pilot.press("f4")
        await settle(pilot)
        documents = pilot.app.screen
        assert isinstance(documents, DocumentsScreen)
        assert documents.current is not None
        await pilot.press("f5")
        await settle(pilot)
        assert list(services.config.print_dir.glob("*.pdf"))


async def test_a_validated_file_is_definitive_during_the_window(services):
    account, app = home_in(services, State.VALIDATED, WindowState.OPEN)
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, account)
        assert text_of(pilot, "#standing") == (
            "Votre inscription est définitive : le rectorat a validé votre dossier."
        )
        assert shown(pilot) == ["documents", "address", "log-out"]
        await pilot.press("f2")
        await settle(pilot)
        assert isinstance(pilot.app.screen, HomeScreen)  # no form opens


@pytest.mark.parametrize(
    "moment, standing",
    [
        pytest.param(
            WindowState.OPEN, "Vous avez annulé votre inscription (version 2).", id="open"
        ),
        pytest.param(
            WindowState.CLOSED, "Vous avez annulé votre inscription (version 2).", id="closed"
        ),
    ],
)
async def test_a_withdrawn_candidate_keeps_my_documents(services, moment, standing):
    account, app = home_in(services, State.WITHDRAWN, moment)
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, account)
        assert text_of(pilot, "#standing") == standing
        expected = ["register", "documents"] if moment is WindowState.OPEN else ["documents"]
        assert shown(pilot) == [*expected, "log-out"]
        await pilot.press("f4")
        await settle(pilot)
        assert isinstance(pilot.app.screen, DocumentsScreen)
        assert pilot.app.screen.current is None  # listed, never printed


async def test_a_set_aside_registration_opens_only_my_documents(services):
    account, app = home_in(services, State.SET_ASIDE, WindowState.OPEN)
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, account)
        assert text_of(pilot, "#standing") == (
            "Votre inscription a été écartée par le rectorat. Adressez-vous au rectorat."
        )
        assert shown(pilot) == ["documents", "log-out"]
        for key in ("f2", "f3"):
            await pilot.press(key)
            await settle(pilot)
            assert isinstance(pilot.app.screen, HomeScreen), key


async def test_after_the_close_a_registration_reads_validated_and_keeps_its_documents(services):
    account, app = home_in(services, State.REGISTERED, WindowState.CLOSED)
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, account)
        assert text_of(pilot, "#standing") == (
            f"Inscription validée (version 1, enregistrée le {SAVED_AT})."
        )
        assert shown(pilot) == ["documents", "address", "log-out"]
        assert pilot.app.screen.query_one("#todo").display  # the paper file is still to post


async def test_a_change_of_address_starts_from_the_address_on_file_not_a_draft(services):
    """The notice's « ancienne adresse » is what the screen opened with: the saved one."""
    account = candidate(services)
    registration = register(services, account)
    services.registrations.save_draft(
        account, {**registration.answers, "address_line1": "99 avenue jamais enregistrée"}
    )
    app = build_app(services)
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, account)
        await pilot.press(KEYS["address"])
        await settle(pilot)
        street = pilot.app.screen.query_one("#address_line1").value
        assert street == registration.answers["address_line1"]


async def test_a_registered_candidate_with_changes_not_saved_is_told_so(services):
    account = candidate(services)
    registration = register(services, account)
    app = build_app(services)
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, account)
        assert "non enregistrées" not in text_of(pilot, "#standing")
    services.registrations.save_draft(account, {**registration.answers, "town": "Niort"})
    app = build_app(services)
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, account)
        said = text_of(pilot, "#standing")
        assert said.startswith("Vous êtes inscrit(e) : version 1")
        assert "modifications non enregistrées" in said and "la version 1 reste" in said


async def test_a_key_pressed_while_the_home_reads_the_standing_is_answered(services):
    """The standing is read again as the home comes back; a key pressed meanwhile opens
    its screen. The store is slowed by a delay around the real read (no other way to
    make a SQLite read take 300 ms here)."""
    account = candidate(services)
    register(services, account)
    read = services.registrations.standing
    app = build_app(services)
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, account)
        home = pilot.app.screen
        assert isinstance(home, HomeScreen)

        def slow_standing(who):
            time.sleep(0.3)
            return read(who)

        services.registrations.standing = slow_standing  # type: ignore[method-assign]
        home.refresh_standing()
        await pilot.pause(0.05)  # the read under way
        await pilot.press(KEYS["address"])
        await settle(pilot)
        assert pilot.app.screen is not home  # the address screen, not a dropped key


async def test_a_standing_that_cannot_be_read_is_said_not_left_blank(services, caplog):
    account = candidate(services)
    register(services, account)
    app = build_app(services)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await log_in(pilot, account)
        home = pilot.app.screen

        def unreadable(_who):
            raise RuntimeError("the store is on fire")

        services.registrations.standing = unreadable  # type: ignore[method-assign]
        home.refresh_standing()
        for _ in range(40):
            await pilot.pause(0.05)
            if home.query("Toast") or pilot.app.screen.query("Toast"):
                break
        said = [toast.render().plain for toast in pilot.app.screen.query("Toast")]
        assert said == [french("app.failure")]
    assert "the store is on fire" in caplog.text
