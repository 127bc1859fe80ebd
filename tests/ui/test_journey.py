"""The candidate's journey through the kiosk, key press by key press, at 80×24."""

from __future__ import annotations

import threading

from screens.activation import ActivationScreen
from screens.fields import FormField
from screens.help import HelpScreen
from screens.home import HomeScreen
from screens.login import LoginScreen
from screens.password_reset import PasswordResetScreen
from screens.signup import SignUpScreen
from screens.welcome import WelcomeScreen
from screens.widgets import Plain
from tests.support.pilot import (
    EMAIL,
    FAMILY,
    GIVEN,
    NEW_PASSWORD,
    PASSWORD,
    SIZE,
    click,
    create_account,
    mailed_code,
    settle,
    sign_up,
    value_of,
)


def shown(pilot, selector: str) -> str:
    """The text a Plain widget of the current screen renders."""
    return str(pilot.app.screen.query_one(selector, Plain).render())


def on(pilot, screen: type) -> bool:
    return type(pilot.app.screen) is screen


async def test_sign_up_activate_log_in_and_out(app, services):
    async with app.run_test(size=SIZE) as pilot:
        assert on(pilot, WelcomeScreen)
        await sign_up(pilot)

        assert on(pilot, ActivationScreen)
        assert value_of(pilot, "#email") == EMAIL
        assert pilot.app.screen.query_one("#notice").display
        assert shown(pilot, "#notice") == (
            f"Votre compte est créé. Consultez votre messagerie ({EMAIL}) : "
            "un code d'activation vient d'y être envoyé. "
            "Saisissez-le ici avant le mardi 12 novembre 2019 à 10:00, "
            "sinon le compte sera supprimé."
        )
        assert pilot.app.focused.id == "code"

        await pilot.press(*mailed_code(services), "enter")
        await settle(pilot)
        assert on(pilot, LoginScreen)
        assert value_of(pilot, "#email") == EMAIL
        assert (
            shown(pilot, "#notice")
            == "Votre compte est activé. Vous pouvez maintenant vous connecter."
        )
        assert pilot.app.focused.id == "password"

        await pilot.press(*PASSWORD, "enter")
        await settle(pilot)
        assert on(pilot, HomeScreen)
        assert shown(pilot, "#greeting") == f"Bonjour {GIVEN} {FAMILY}."
        assert pilot.app.candidate.email == EMAIL

        await pilot.press("f10")
        assert on(pilot, WelcomeScreen)
        assert pilot.app.candidate is None
        assert (
            len(pilot.app.screen_stack) == 1
        )  # the welcome alone: nothing of the candidate remains


async def test_sign_up_refusal_is_shown_at_its_field_and_nothing_typed_is_lost(app):
    async with app.run_test(size=SIZE) as pilot:
        await sign_up(pilot, password="court")

        assert on(pilot, SignUpScreen)
        assert shown(pilot, "#problem-password") == (
            "Le mot de passe doit compter au moins 12 caractères (il en a 5)."
        )
        assert pilot.app.screen.query_one("#field-password", FormField).invalid
        assert pilot.app.focused.id == "password"
        shown_problems = [p.id for p in pilot.app.screen.query(".problem") if p.display]
        assert shown_problems == ["problem-password"]
        typed = {
            "#family_name": FAMILY,
            "#given_names": GIVEN,
            "#email": EMAIL,
            "#password": "court",
            "#password_again": "court",
        }
        assert {selector: value_of(pilot, selector) for selector in typed} == typed


async def test_wrong_password_is_refused_and_the_address_kept(app, services):
    create_account(services)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("s", *EMAIL, "enter", *"pas le bon", "enter")
        await settle(pilot)

        assert on(pilot, LoginScreen)
        assert pilot.app.screen.query_one("#form-problem").display
        assert shown(pilot, "#form-problem") == "Adresse e-mail ou mot de passe incorrect."
        assert value_of(pilot, "#email") == EMAIL
        assert pilot.app.candidate is None


async def test_logging_in_to_a_pending_account_leads_to_its_activation(app, services):
    create_account(services, active=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("s", *EMAIL, "enter", *PASSWORD, "enter")
        await settle(pilot)

        assert on(pilot, ActivationScreen)
        assert value_of(pilot, "#email") == EMAIL
        assert (
            shown(pilot, "#notice")
            == "Votre compte n'est pas encore activé : saisissez le code reçu par e-mail."
        )
        await pilot.press(*mailed_code(services), "enter")
        await settle(pilot)
        assert on(pilot, LoginScreen)


async def test_forgotten_password_from_request_to_login(app, services):
    create_account(services)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("s", *EMAIL, "f6")
        assert on(pilot, PasswordResetScreen)
        assert value_of(pilot, "#email") == EMAIL

        await click(pilot, "#send")
        await settle(pilot)
        assert (
            shown(pilot, "#notice")
            == f"Si un compte actif existe pour {EMAIL}, un code vient d'y être envoyé."
        )
        assert pilot.app.focused.id == "code"

        code = mailed_code(services, subject="Code de réinitialisation")
        await pilot.press(*code, "enter", *NEW_PASSWORD, "enter", *NEW_PASSWORD, "enter")
        await settle(pilot)
        assert on(pilot, LoginScreen)
        assert value_of(pilot, "#email") == EMAIL
        assert (
            shown(pilot, "#notice") == "Votre mot de passe est changé. Vous pouvez vous connecter."
        )

        await pilot.press(*NEW_PASSWORD, "enter")
        await settle(pilot)
        assert on(pilot, HomeScreen)


async def test_f1_opens_help_and_escape_returns_where_one_was(app):
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f1")
        assert on(pilot, HelpScreen)
        assert "22 rue Guillaume VII le Troubadour" in shown(pilot, "#contact")
        await pilot.press("escape")
        assert on(pilot, WelcomeScreen)

        await pilot.press("c", *"Dupré", "f1")
        assert on(pilot, HelpScreen)
        await pilot.press("f1")  # no second help on top of the first
        await pilot.press("escape")
        assert on(pilot, SignUpScreen)
        assert value_of(pilot, "#family_name") == "Dupré"
        assert pilot.app.focused.id == "family_name"


async def test_markup_in_a_name_is_shown_as_typed(app, services):
    given, family = "[b]Jean[/b]", "[@click=app.quit]x[/]"
    create_account(services, given=given, family=family)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("s", *EMAIL, "enter", *PASSWORD, "enter")
        await settle(pilot)

        assert on(pilot, HomeScreen)
        assert shown(pilot, "#greeting") == f"Bonjour {given} {family}."
        # Where the link would be, were the name read as markup: "Bonjour Jean x."
        await pilot.click("#greeting", offset=(13, 0))
        await pilot.pause()
        assert pilot.app.is_running
        assert on(pilot, HomeScreen)


# -- known bugs in screens/: these fail (XPASS) once fixed; then drop the marker --------


async def test_buttons_do_nothing_while_a_call_runs(app, services):
    release = threading.Event()
    sign_up_for_real = services.accounts.sign_up
    services.accounts.sign_up = lambda form: release.wait(5) and sign_up_for_real(form)
    async with app.run_test(size=SIZE) as pilot:
        try:
            await pilot.press("c")
            await click(pilot, "#submit")
            await pilot.pause()
            assert pilot.app.screen.busy
            await click(pilot, "#back")
            await pilot.pause()
            assert on(pilot, SignUpScreen)
        finally:
            release.set()
            await settle(pilot)


async def test_arrows_move_between_fields_when_the_form_scrolls(app):
    async with app.run_test(size=SIZE) as pilot:
        await sign_up(pilot, password="court")  # problems shown: the form is taller than the screen
        assert pilot.app.focused.id == "password"
        await pilot.press("down")
        assert pilot.app.focused.id == "password_again"


async def test_help_opens_at_its_beginning(app):
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f1")
        await settle(pilot)
        # The cursor on « Retour », at the foot of the help, without scrolling down to it.
        assert pilot.app.focused.id == "back"
        assert pilot.app.screen.query_one("#body").scroll_y == 0
