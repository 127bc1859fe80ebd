"""Bad stored data never blocks a candidate: a locked field whose stored value breaks a rule
of the form is shown, kept as it is, and left to the exam office."""

from __future__ import annotations

from screens.home import HomeScreen
from screens.registration import RegistrationScreen
from tests.support.pilot import SIZE, candidate, click, log_in, register, settle

# Longer than the field's 100 characters, and with a control character: as an older kiosk
# or a correction at the rectorat may have stored them.
LONG_NAME = "Dupré-Lefèvre" + "-Martin" * 15
ODD_TOWN = "Poitiers\x1b[31m"


async def press(pilot, *keys: str) -> None:
    await pilot.press(*keys)
    await settle(pilot)


def stored_badly(services, account):
    registration = register(services, account)
    Registration = services.store.Registration
    with services.store.connection_context():
        answers = {**registration.answers, "family_name": LONG_NAME, "birth_town": ODD_TOWN}
        Registration.update(answers=answers).where(Registration.id == registration.id).execute()
    return registration


def saved(services, registration):
    with services.store.connection_context():
        return services.store.Registration.get_by_id(registration.id)


async def change_the_phone(pilot) -> RegistrationScreen:
    await press(pilot, "f2")
    screen = pilot.app.screen
    assert type(screen) is RegistrationScreen
    assert screen.query_one("#family_name").is_disabled
    screen.query_one("#phone").focus()
    await pilot.press("home", "ctrl+k", *"05 49 00 00 00")
    return screen


async def test_a_change_saves_from_the_recapitulatif_beside_bad_locked_fields(app, services):
    account = candidate(services)
    registration = stored_badly(services, account)
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, account)
        screen = await change_the_phone(pilot)
        await click(pilot, "#--content-tab-tab-recapitulatif")
        await settle(pilot)
        lines = [str(line.render()) for line in screen.query("#summary Plain")]
        assert f"Nom de naissance : {LONG_NAME}" in lines  # shown as it is stored
        await click(pilot, "#save")
        await settle(pilot)
        assert type(pilot.app.screen) is HomeScreen
    stored = saved(services, registration)
    assert (stored.version, stored.answers["phone"]) == (2, "05 49 00 00 00")
    assert (stored.answers["family_name"], stored.answers["birth_town"]) == (LONG_NAME, ODD_TOWN)


async def test_suivant_walks_past_bad_locked_fields(app, services):
    account = candidate(services)
    registration = stored_badly(services, account)
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, account)
        screen = await change_the_phone(pilot)
        await press(pilot, "f8")  # Identification: nothing there is the candidate's to fix
        await press(pilot, "f8")
        lines = [str(line.render()) for line in screen.query("#summary Plain")]
        assert f"Nom de naissance : {LONG_NAME}" in lines
        await press(pilot, "enter")  # « Enregistrer »
        assert type(pilot.app.screen) is HomeScreen
    assert saved(services, registration).version == 2
