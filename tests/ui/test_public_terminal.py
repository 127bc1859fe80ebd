"""A kiosk in a public hall, driven by Textual's Pilot at 80×24.

Whoever sits down must not reach a shell, nor see the previous candidate's data, nor
find the kiosk unable to serve them. So: whatever keys are pressed on whatever screen,
whatever App action is tried, whatever text is typed or pasted, the kiosk keeps running;
a password never leaves for the terminal's clipboard; a candidate who walks away is
logged out and nothing of theirs stays reachable; contrast and language are back to
normal for the next one; and only staff, with a password, can leave.
"""

from __future__ import annotations

import random
import re
from datetime import timedelta

import pytest
from textual import events
from textual.keys import REPLACED_KEYS, _character_to_key, _get_unicode_name_from_key
from textual.widgets import Button, Checkbox, Input, Select, TabbedContent
from textual.worker import WorkerCancelled

from kiosk.accounts import SignUp
from kiosk.assets import asset
from kiosk.errors import Refused
from kiosk.i18n import Messages
from kiosk.text import has_control
from screens.app import DEFAULT_THEME, HIGH_CONTRAST, KioskApp
from screens.documents import DocumentsScreen
from screens.home import HomeScreen
from screens.masthead import Masthead
from screens.registration import RegistrationScreen
from screens.staff_exit import StaffExitScreen
from screens.walk_away import WalkAwayWarning
from screens.welcome import WelcomeScreen
from tests.factories import valid_values
from tests.support.pilot import (
    EMAIL,
    PASSWORD,
    SIZE,
    candidate,
    click,
    log_in,
    register,
    settle,
    text_of,
)

STAFF = "accueil"
STAFF_PASSWORD = "horloge cuivrée 73 marée"

# -- the app as a whole ------------------------------------------------------------------


def still_serving(app: KioskApp) -> None:
    """Running, not on its way out, and no unhandled error (Textual exits on one)."""
    assert app.is_running
    assert app.return_code is None
    assert app._exception is None
    assert not app._exit_renderables
    assert isinstance(app.screen_stack[0], WelcomeScreen)
    # Nothing but the kiosk's own screens: no command palette, no keys panel, no system modal.
    foreign = [
        type(s).__qualname__
        for s in app.screen_stack
        if not type(s).__module__.startswith("screens.")
    ]
    assert not foreign


def key_event(key: str) -> events.Key:
    """The ``Key`` event Textual's driver posts for ``key``, as ``Pilot.press`` builds it."""
    import unicodedata

    if len(key) == 1 and not key.isalnum():
        key = _character_to_key(key)
    original = REPLACED_KEYS.get(key, key)
    try:
        character = unicodedata.lookup(_get_unicode_name_from_key(original))
    except KeyError:
        character = key if len(key) == 1 else None
    return events.Key(key, character)


async def settle_past_cancelled(pilot) -> None:
    """``settle``, when the screens that went may have had workers running: Textual cancels
    those, and waiting for a cancelled worker raises."""
    for _ in range(10):
        try:
            await settle(pilot)
            return
        except WorkerCancelled:
            await pilot.pause()
    await settle(pilot)


async def storm(pilot, keys: list[str], burst: int = 6) -> None:
    """Keys as a person hammering the keyboard sends them: several before the app has
    caught up, straight through the driver (``Pilot.press`` waits after each one)."""
    app = pilot.app
    for count, key in enumerate(keys, 1):
        event = key_event(key)
        event.set_sender(app)
        app._driver.send_message(event)
        if count % burst == 0:
            await pilot.pause()
            still_serving(app)
    await settle_past_cancelled(pilot)


def everything_held(app: KioskApp) -> str:
    """All the text the app holds: every widget's rendering and every input's value, on
    every screen and every node still registered, the screen as drawn, the clipboard and
    the notifications."""
    texts: list[str] = [app.clipboard, app.export_screenshot()]
    texts.extend(str(n.message) for n in app._notifications)
    nodes = set(app._registry)
    for screen in app.screen_stack:
        nodes.update(screen.walk_children(with_self=True))
    for node in nodes:
        if isinstance(node, Input):
            texts.append(node.value)
        render = getattr(node, "render", None)
        if render is not None:
            try:
                texts.append(str(render()))
            except Exception:  # a container with nothing of its own to render
                pass
    return "\n".join(texts)


# -- 1. a key storm on every screen ------------------------------------------------------

STORM_KEYS = [
    "ctrl+c",
    "ctrl+q",
    "ctrl+z",
    "ctrl+p",
    "ctrl+x",
    "ctrl+v",
    "ctrl+s",
    "ctrl+d",
    "ctrl+w",
    "ctrl+u",
    "ctrl+k",
    "ctrl+a",
    "ctrl+e",
    "ctrl+l",
    "ctrl+t",
    "ctrl+backslash",
    "ctrl+shift+a",
    "alt+f4",
    "escape",
    *(f"f{n}" for n in range(1, 12)),
    "tab",
    "shift+tab",
    "enter",
    "space",
    "backspace",
    "delete",
    "up",
    "down",
    "left",
    "right",
    "home",
    "end",
    "pageup",
    "pagedown",
    "shift+home",
    "shift+end",
    *"abcdefghijklmnopqrstuvwxyz",
    *"0123456789",
    "é",
    "@",
    "[",
    "]",
    "/",
]
STORM_LENGTH = 240


async def _welcome(pilot, account) -> None:
    pass


async def _home(pilot, account) -> None:
    await log_in(pilot, account)


def _form_tab(tab: str):
    async def reach(pilot, account) -> None:
        await log_in(pilot, account)
        await pilot.press("f2")
        await settle(pilot)
        pilot.app.screen.query_one(TabbedContent).active = f"tab-{tab}"
        await settle(pilot)

    return reach


def _from_home(key: str):
    async def reach(pilot, account) -> None:
        await log_in(pilot, account)
        await pilot.press(key)
        await settle(pilot)

    return reach


def _pressing(*keys: str):
    async def reach(pilot, account) -> None:
        await pilot.press(*keys)
        await settle(pilot)

    return reach


SCREENS = {
    "welcome": (_welcome, "WelcomeScreen"),
    "sign-up": (_pressing("c"), "SignUpScreen"),
    "activation": (_pressing("a"), "ActivationScreen"),
    "login": (_pressing("s"), "LoginScreen"),
    "reset": (_pressing("s", "f6"), "PasswordResetScreen"),
    "help": (_pressing("f1"), "HelpScreen"),
    "staff exit": (_pressing("f12"), "StaffExitScreen"),
    "home": (_home, "HomeScreen"),
    "form modalités": (_form_tab("modalites"), "RegistrationScreen"),
    "form identification": (_form_tab("identification"), "RegistrationScreen"),
    "form candidature": (_form_tab("candidature"), "RegistrationScreen"),
    "form récapitulatif": (_form_tab("recapitulatif"), "RegistrationScreen"),
    "documents": (_from_home("f4"), "DocumentsScreen"),
    "address": (_from_home("f3"), "AddressScreen"),
}


@pytest.fixture
def registered(services):
    """An active, registered candidate, as the services make one."""
    account = candidate(services)
    register(services, account)
    return account


@pytest.mark.parametrize("where", list(SCREENS))
async def test_a_key_storm_on_any_screen_leaves_the_kiosk_serving(app, services, registered, where):
    reach, screen_name = SCREENS[where]
    keys = random.Random(f"storm {where}").choices(STORM_KEYS, k=STORM_LENGTH)
    async with app.run_test(size=SIZE) as pilot:
        await reach(pilot, registered)
        assert type(app.screen).__name__ == screen_name

        await storm(pilot, keys)

        still_serving(app)
        # And it still answers: back to the welcome, the sign-up opens.
        await pilot.press("escape", "escape", "escape", "escape")
        if app.candidate is not None:
            await pilot.press("f10")
        await settle_past_cancelled(pilot)
        assert len(app.screen_stack) == 1
        await pilot.press("c")
        assert app.screen.query_one(Masthead).title == app.t(
            "signup.title"
        )  # F11 may have switched to English
        still_serving(app)


# -- 2. App actions: only the allowed ones run, whoever asks --------------------------------

REFUSED_ACTIONS = [
    "app.quit",
    "app.screenshot",
    "app.command_palette",
    "app.suspend_process",
    "app.change_theme",
    "app.toggle_dark",
    "app.push_screen('x')",
    "app.switch_screen('x')",
    "app.pop_screen",
    "app.simulate_key('f12')",
    "app.bell",
    "app.show_help_panel",
    "app.maximize",
]


@pytest.mark.parametrize("logged_in", [False, True], ids=["welcome", "home"])
async def test_app_actions_outside_the_allow_list_are_refused(app, services, registered, logged_in):
    async with app.run_test(size=SIZE) as pilot:
        if logged_in:
            await log_in(pilot, registered)
        screen, stack, theme = app.screen, list(app.screen_stack), app.theme
        for action in REFUSED_ACTIONS:
            assert await app.run_action(action) is False, action
            # From a widget too: the namespace "app" is the same App.
            assert not await app.screen.run_action(action), action
            await pilot.pause()
            still_serving(app)
            assert app.screen is screen and app.screen_stack == stack and app.theme == theme, action
        assert (app.candidate is not None) == logged_in


# -- 3. passwords stay out of the terminal's clipboard ----------------------------------------


async def test_copying_or_cutting_a_password_sends_nothing_to_the_terminal(app):
    async with app.run_test(size=SIZE) as pilot:
        # This observes the real driver of the run (Textual's headless driver): every
        # byte the app writes still goes through; the test only keeps a copy to read.
        written: list[str] = []
        driver = app._driver
        real_write = driver.write

        def recording_write(data: str) -> None:
            written.append(data)
            real_write(data)

        driver.write = recording_write
        await pilot.press("c")
        password = app.screen.query_one("#password", Input)
        password.focus()
        await pilot.press(*"secret de lune 42")
        await pilot.press("shift+home", "ctrl+c", "end", "shift+home", "ctrl+x")
        password.focus()
        await pilot.press(*"secret de lune 42", "ctrl+shift+a", "ctrl+c", "ctrl+x")
        await settle(pilot)

        assert written  # the recording sees what the app draws
        assert not any("\x1b]52;" in chunk for chunk in written)
        still_serving(app)


async def test_a_copied_password_cannot_be_pasted_in_clear(app):
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("c")
        app.screen.query_one("#password", Input).focus()
        await pilot.press(*"secret de lune 42", "shift+home", "ctrl+c")
        app.screen.query_one("#family_name", Input).focus()
        await pilot.press("ctrl+v")
        assert "secret" not in app.screen.query_one("#family_name", Input).value
        assert app.clipboard == ""


@pytest.mark.parametrize("key", ["tab", "enter"])
async def test_a_password_typed_ahead_goes_to_the_password_field(app, key):
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("s")
        await settle(pilot)
        # A quick typist, or a kiosk busy elsewhere: the keys are there before the app reads them.
        await storm(pilot, [*EMAIL, key, *PASSWORD], burst=1000)
        assert app.screen.query_one("#email", Input).value == EMAIL
        assert app.screen.query_one("#password", Input).value == PASSWORD


async def test_letters_typed_as_a_screen_opens_wait_for_its_first_field(app):
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        # The letters are handed to the welcome before « c » has opened the sign-up form.
        await storm(pilot, ["c", *"Dupré"], burst=1000)
        assert app.screen.query_one("#family_name", Input).value == "Dupré"


async def test_keys_typed_while_the_form_draws_its_tabs_are_all_answered(app, services):
    account = candidate(services)
    names = {"family_name": account.family_name, "given_names": account.given_names}
    services.registrations.save_draft(account, valid_values(services.session, sex="F", **names))
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, account)
        await pilot.press("f2")
        await settle(pilot)
        # To the récapitulatif, then « Enregistrer »: each tab is drawn over a few frames,
        # and « Entrée » comes before the button it presses is there.
        await storm(pilot, ["f8", "f8", "f8", "enter"], burst=1000)
        assert isinstance(app.screen, HomeScreen)
        assert services.registrations.standing(account).state == "registered"


# -- 4. walking away ---------------------------------------------------------------------

BIRTH_TOWN = "Zanzibar"
STREET = "Impasse Qwertyuiop"


async def open_identification(pilot) -> RegistrationScreen:
    """From the home: « M'inscrire », the rules accepted, on « Identification »."""
    await pilot.press("f2")
    await settle(pilot)
    form = pilot.app.screen
    assert isinstance(form, RegistrationScreen)
    for name in ("accept_rules", "not_school_enrolled"):
        form.query_one(f"#{name}", Checkbox).value = True
    await pilot.press("f8")
    await settle(pilot)
    assert form.tab == "identification"
    return form


async def type_in(pilot, name: str, text: str) -> None:
    pilot.app.screen.query_one(f"#{name}", Input).focus()
    await pilot.press("home", "ctrl+k", *text)


async def a_tick(pilot) -> None:
    """Long enough for the app's one-second walk-away check to run once more."""
    await pilot.pause(1.2)


async def until(pilot, condition, what: str, timeout: float = 5.0) -> None:
    """The app's timers run on real time: poll for what they bring, with a deadline."""
    for _ in range(int(timeout / 0.1)):
        if condition():
            return
        await pilot.pause(0.1)
    raise AssertionError(f"after {timeout} s, still no {what}")


async def walk_away(pilot, services) -> None:
    """No key for the whole idle time, then none during the warning either."""
    app, config = pilot.app, services.config
    services.clock.advance(timedelta(seconds=config.idle_timeout))
    await until(pilot, lambda: isinstance(app.screen, WalkAwayWarning), "walk-away warning")
    services.clock.advance(timedelta(seconds=config.idle_warning))
    # The warning counts down twice a second.
    await until(pilot, lambda: not isinstance(app.screen, WalkAwayWarning), "end of the warning")
    await settle_past_cancelled(pilot)


@pytest.fixture
def unregistered(services):
    return candidate(services)


async def test_the_warning_comes_after_the_idle_time_and_staying_keeps_everything(
    app, services, unregistered
):
    config = services.config
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, unregistered)
        form = await open_identification(pilot)
        await type_in(pilot, "birth_town", BIRTH_TOWN)
        await type_in(pilot, "address_line1", STREET)

        services.clock.advance(timedelta(seconds=config.idle_timeout - 1))
        await a_tick(pilot)
        assert app.screen is form

        services.clock.advance(timedelta(seconds=1))
        await until(pilot, lambda: isinstance(app.screen, WalkAwayWarning), "walk-away warning")
        await settle(
            pilot
        )  # the warning is current as soon as pushed; mounted (focus, countdown) a little later
        countdown = text_of(pilot, "#countdown")
        assert int(re.search(r"(\d+) s", countdown).group(1)) >= 20, countdown
        assert app.focused.id == "stay"

        await click(pilot, "#stay")
        await settle(pilot)
        assert app.screen is form
        assert app.candidate is not None and app.candidate.id == unregistered.id
        assert form.query_one("#birth_town", Input).value == BIRTH_TOWN
        assert form.query_one("#address_line1", Input).value == STREET

        # Staying restarts the idle time: no warning until it has passed again.
        services.clock.advance(timedelta(seconds=config.idle_timeout - 1))
        await a_tick(pilot)
        assert app.screen is form
        still_serving(app)


@pytest.mark.parametrize("key", ["x", "down", "f1", "enter", "escape"])
async def test_any_key_at_the_warning_keeps_the_session_and_does_nothing_else(
    app, services, unregistered, key
):
    config = services.config
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, unregistered)
        form = await open_identification(pilot)
        await type_in(pilot, "birth_town", BIRTH_TOWN)
        services.clock.advance(timedelta(seconds=config.idle_timeout))
        await until(pilot, lambda: isinstance(app.screen, WalkAwayWarning), "walk-away warning")
        await settle(pilot)
        await pilot.press(key)
        await settle(pilot)
        assert app.screen is form
        assert app.candidate is not None and app.candidate.id == unregistered.id
        assert form.query_one("#birth_town", Input).value == BIRTH_TOWN
        services.clock.advance(timedelta(seconds=config.idle_warning))
        await a_tick(pilot)
        assert app.screen is form  # the countdown is over with the warning
        still_serving(app)


async def test_walking_away_leaves_nothing_of_the_candidate(app, services, unregistered):
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, unregistered)
        await open_identification(pilot)
        await type_in(pilot, "birth_town", BIRTH_TOWN)
        await type_in(pilot, "address_line1", STREET)
        await pilot.press("shift+home", "ctrl+c")  # the street in the app's clipboard
        assert app.clipboard == STREET
        assert BIRTH_TOWN in everything_held(app) and STREET in everything_held(
            app
        )  # the search finds them

        await walk_away(pilot, services)

        assert len(app.screen_stack) == 1 and isinstance(app.screen, WelcomeScreen)
        assert app.candidate is None
        assert app.clipboard == ""
        held = everything_held(app)
        for typed in (BIRTH_TOWN, STREET, EMAIL, unregistered.family_name):
            assert typed not in held

        # No key leads back to what the candidate had open.
        for key in (
            "f2",
            "f3",
            "f4",
            "f5",
            "f6",
            "f7",
            "f8",
            "f10",
            "escape",
            "tab",
            "shift+tab",
            "up",
            "down",
            "f1",
            "escape",
            "enter",
            "escape",
            "s",
            "escape",
            "ctrl+v",
        ):
            await pilot.press(key)
            await settle_past_cancelled(pilot)
            assert app.candidate is None
            assert not [
                s
                for s in app.screen_stack
                if isinstance(s, (HomeScreen, RegistrationScreen, DocumentsScreen))
            ]
            assert BIRTH_TOWN not in everything_held(app)
        still_serving(app)


async def test_walking_away_keeps_the_draft_for_the_candidate(
    app, services, unregistered, monkeypatch
):
    """What end_session itself keeps. The form also keeps a draft every 15 s of real time,
    which on a real kiosk usually runs during the idle minutes; here it is pushed beyond
    the test, so that the outcome does not depend on how fast the machine is."""
    monkeypatch.setattr("screens.registration.DRAFT_INTERVAL", 3600.0)
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, unregistered)
        await open_identification(pilot)
        await type_in(pilot, "birth_town", BIRTH_TOWN)
        await type_in(pilot, "address_line1", STREET)

        await walk_away(pilot, services)
        assert app.candidate is None

        with services.store.connection_context():
            draft = services.registrations.draft(unregistered)
        assert draft is not None
        assert draft.values["birth_town"] == BIRTH_TOWN
        assert draft.values["address_line1"] == STREET

        # The candidate comes back: the form opens with what they had typed.
        await log_in(pilot, unregistered)
        await pilot.press("f2")
        await settle(pilot)
        form = app.screen
        assert isinstance(form, RegistrationScreen)
        assert form.query_one("#birth_town", Input).value == BIRTH_TOWN
        assert form.query_one("#address_line1", Input).value == STREET


async def test_walking_away_from_the_form_logs_no_failure(app, services, unregistered, caplog):
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, unregistered)
        await open_identification(pilot)
        await walk_away(pilot, services)
        assert app.candidate is None
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == []


# -- 5. text from outside: typed, pasted, stored ------------------------------------------

CORPUS = [
    "[@click=app.quit]Jean[/]",
    "[/]",
    "[IMPORTANT]",
    "[b red]x",
    "\x1b[2J",
    "\x1b]52;c;aGk=\x07",
    "\u202eabc",
    "Jean\ue000",  # a private-use character: the input lets it through, the services do not
]


def typed_keys(text: str) -> list[events.Key]:
    """``text`` as key presses; an ESC is the Escape key, tried in the storms instead."""
    keys = []
    for character in text:
        if character == "\x1b":
            continue
        if ord(character) < 0x20:
            keys.append(events.Key(f"ctrl+{chr(ord(character) + 96)}", character))
        elif character.isprintable() and character.isascii():
            keys.append(key_event(character))
        else:
            keys.append(events.Key(character, character))
    return keys


async def type_and_paste(pilot, fields: list[Input], text: str) -> None:
    """Into each field: ``text`` key by key, then pasted whole (how a terminal delivers
    what it cannot type: escape and control characters included)."""
    app = pilot.app
    for field in fields:
        field.value = ""
        field.focus()  # queued on the app, like the events below: they reach this field
        for event in [*typed_keys(text), events.Paste(text)]:
            event.set_sender(app)
            app.post_message(event)
    await pilot.pause()
    await settle(pilot)


FORM_SCREENS = [
    "sign-up",
    "activation",
    "login",
    "reset",
    "staff exit",
    "form identification",
    "form candidature",
    "address",
]


@pytest.mark.parametrize("where", FORM_SCREENS)
async def test_control_characters_never_get_into_an_input(app, services, registered, where):
    reach, _ = SCREENS[where]
    async with app.run_test(size=SIZE) as pilot:
        await reach(pilot, registered)
        screen = app.screen
        if where == "form candidature":
            # The answers that bring this tab's text fields out.
            screen.query_one("#status", Select).value = "distance"
            for name in ("kept_marks", "unit_exemption"):
                screen.query_one(f"#{name}", Checkbox).value = True
            await settle(pilot)
        fields = [f for f in screen.focus_chain if isinstance(f, Input)]  # shown and enabled
        assert fields
        for text in CORPUS:
            await type_and_paste(pilot, fields, text)
            assert app.screen is screen, text
            for field in fields:
                assert not re.search("[\x00-\x1f\x7f-\x9f\u202a-\u202e]", field.value), (
                    text,
                    field.id,
                )
            if "\x1b" not in text and not has_control(text):
                # What has no control character is taken as typed (within each field's length).
                kept = [(f.id, f.value) for f in fields]
                assert all(
                    f.value in (text, text * 2) or len(text) > (f.max_length or 999) for f in fields
                ), kept
            still_serving(app)
        # What the fields hold now (the last of the corpus) is submitted: refused, not a crash.
        buttons = [
            b for b in screen.query(Button) if b.id in ("submit", "save") or b.has_class("next")
        ]
        if buttons:
            buttons[0].press()
            await settle(pilot)
        still_serving(app)


async def test_a_character_the_input_lets_through_is_refused_by_the_services(app):
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("c")
        await pilot.press(*"Dupont", "enter")
        await type_and_paste(pilot, [app.screen.query_one("#given_names", Input)], "Jean\ue000")
        assert app.screen.query_one("#given_names", Input).value.endswith("\ue000")
        app.screen.query_one("#email", Input).focus()
        await pilot.press(*EMAIL, "enter", *PASSWORD, "enter", *PASSWORD, "enter")
        await settle(pilot)
        assert (
            text_of(pilot, "#problem-given_names")
            == "Ce champ contient des caractères non autorisés."
        )
        assert app.candidate is None
        still_serving(app)


@pytest.mark.parametrize("text", [t for t in CORPUS if has_control(t)], ids=repr)
def test_the_services_refuse_control_characters_in_a_name(services, text):
    form = SignUp(
        email=EMAIL,
        family_name=text,
        given_names="Jean",
        password=PASSWORD,
        password_again=PASSWORD,
    )
    with pytest.raises(Refused) as refused:
        services.accounts.sign_up(form)
    problem = refused.value.problems["family_name"]
    assert Messages("fr")(problem.key) == "Ce champ contient des caractères non autorisés."


FAMILY_MARKUP = "[@click=app.quit]Jean[/]"
GIVEN_MARKUP = "[b red]x"


async def test_markup_stored_through_the_services_is_shown_as_written(app, services):
    account = candidate(services, family=FAMILY_MARKUP, given=GIVEN_MARKUP)
    register(services, account, birth_town="[IMPORTANT]", address_line1="[/] 12 rue [b]")
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, account)
        assert text_of(pilot, "#greeting") == f"Bonjour {GIVEN_MARKUP} {FAMILY_MARKUP}."
        # A click where the "link" would be does nothing.
        await pilot.click("#greeting", offset=(12, 0))
        await pilot.click("#greeting", offset=(20, 0))
        still_serving(app)

        await pilot.press("f2")
        await settle(pilot)
        await pilot.press("f8", "f8", "f8")
        await settle(pilot)
        form = app.screen
        assert isinstance(form, RegistrationScreen) and form.tab == "recapitulatif"
        lines = [str(line.render()) for line in form.query("#summary Plain")]
        for written in (FAMILY_MARKUP, GIVEN_MARKUP, "[IMPORTANT]", "[/] 12 rue [b]"):
            assert any(written in line for line in lines), written

        await pilot.press("escape")
        await settle(pilot)
        await pilot.press("f4")
        await settle(pilot)
        assert isinstance(app.screen, DocumentsScreen)
        current = [str(p.render()) for p in app.screen.query("#list .current")]
        assert len(current) == 1 and "version 1" in current[0]
        await pilot.press("f6")
        await settle(pilot)
        assert (
            text_of(pilot, "#notice")
            == f"Vos documents vous ont été envoyés par e-mail, à {EMAIL}."
        )
        still_serving(app)


async def test_control_characters_from_elsewhere_are_shown_neutralised(app, services):
    """A name that came in by another way than the kiosk's forms (a sync, an import)."""
    account = candidate(services)
    Account = services.store.Account
    with services.store.connection_context():
        Account.update(family_name="\x1b[2J\x1b]52;c;aGk=\x07", given_names="\u202eabc").where(
            Account.id == account.id
        ).execute()
        account = Account.get_by_id(account.id)
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, account)
        greeting = text_of(pilot, "#greeting")
        assert greeting == "Bonjour \ufffdabc \ufffd[2J\ufffd]52;c;aGk=\ufffd."
        still_serving(app)


# -- 6. contrast and language are the candidate's, for their session only ------------------


async def test_f9_switches_to_high_contrast_and_back_and_a_session_end_resets_it(
    app, services, registered
):
    async with app.run_test(size=SIZE) as pilot:
        assert app.theme == DEFAULT_THEME
        await pilot.press("f9")
        assert app.theme == HIGH_CONTRAST.name
        await pilot.press("f9")
        assert app.theme == DEFAULT_THEME

        await log_in(pilot, registered)
        await pilot.press("f9")
        assert app.theme == HIGH_CONTRAST.name
        await pilot.press("f10")
        await settle(pilot)
        assert app.candidate is None and app.theme == DEFAULT_THEME

        await log_in(pilot, registered)
        await pilot.press("f9")
        await walk_away(pilot, services)
        assert app.candidate is None and app.theme == DEFAULT_THEME


needs_english = pytest.mark.skipif(
    not asset("locales", "en.toml").exists(),
    reason="assets/locales/en.toml is not written yet (another engineer's work): "
    "no English to switch to",
)


@needs_english
async def test_f11_speaks_english_on_the_welcome_and_a_session_end_brings_french_back(
    app, services, registered
):
    english = Messages("en")("welcome.sign_up")
    assert english != "Créer mon compte"
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f11")
        await settle(pilot)
        assert str(app.screen.query_one("#sign-up", Button).label) == english
        # The top of the screen too, the kiosk's sync status included.
        assert app.screen.query_one(Masthead).status == Messages("en")("sync.alone")

        await log_in(pilot, registered)
        await pilot.press("f10")
        await settle(pilot)
        assert app.messages.language == "fr"
        assert str(app.screen.query_one("#sign-up", Button).label) == "Créer mon compte"
        assert app.screen.query_one(Masthead).status == Messages("fr")("sync.alone")

        await pilot.press("f11")
        await settle(pilot)
        await log_in(pilot, registered)
        await walk_away(pilot, services)
        assert str(app.screen.query_one("#sign-up", Button).label) == "Créer mon compte"
        # F11 is for the welcome: logged in, it changes nothing.
        await log_in(pilot, registered)
        await pilot.press("f11")
        assert app.messages.language == "fr"


@needs_english
async def test_language_and_contrast_chosen_on_the_welcome_do_not_stay_for_the_next_person(
    app, services
):
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f11", "f9")
        await settle(pilot)
        services.clock.advance(
            timedelta(seconds=services.config.idle_timeout + services.config.idle_warning + 1)
        )
        await a_tick(pilot)
        await a_tick(pilot)
        assert app.messages.language == "fr"
        assert app.theme == DEFAULT_THEME


# -- 7. the staff's way out ------------------------------------------------------------------


async def test_f12_leaves_only_with_a_staff_password(app, services):
    candidate(services)
    with services.store.connection_context():
        services.staff.add(STAFF, "reception", STAFF_PASSWORD)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f12")
        assert isinstance(app.screen, StaffExitScreen)
        await pilot.press(*STAFF, "enter", *"pas le bon mot de passe", "enter")
        await settle(pilot)
        assert text_of(pilot, "#form-problem") == "Identifiant ou mot de passe incorrect."
        still_serving(app)

        # A candidate's account is no staff account.
        await pilot.press("escape", "f12")
        assert isinstance(app.screen, StaffExitScreen)
        await pilot.press(*EMAIL, "enter", *PASSWORD, "enter")
        await settle(pilot)
        assert text_of(pilot, "#form-problem") == "Identifiant ou mot de passe incorrect."
        still_serving(app)

        await pilot.press("escape", "f12", *STAFF, "enter", *STAFF_PASSWORD, "enter")
        await settle(pilot)
        await pilot.pause(0.2)
    assert app.return_code == 0
