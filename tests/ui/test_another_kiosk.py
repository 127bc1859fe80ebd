"""A candidate at kiosk B with an account made at kiosk A, driven through Pilot: the
rectorat's API on a real uvicorn over PostgreSQL 15 (tests/support/sync_world.py)."""

from __future__ import annotations

from kiosk.accounts import SignUp
from screens.app import build_app
from screens.home import HomeScreen
from screens.login import LoginScreen
from screens.widgets import Plain
from tests.factories import mailed_code, valid_values
from tests.support.pilot import EMAIL, FAMILY, GIVEN, PASSWORD, SIZE, settle, value_of

AWAY = (
    "Adresse e-mail ou mot de passe incorrect. Si votre compte a été créé sur une autre "
    "borne, il ne peut pas être vérifié pour l'instant : le rectorat est injoignable. "
    "Réessayez dans quelques minutes, ou connectez-vous sur la borne où vous l'avez créé."
)


def shown(pilot, selector: str) -> str:
    return str(pilot.app.screen.query_one(selector, Plain).render())


async def test_a_login_at_kiosk_b_says_when_the_rectorat_is_away_then_works(rectorat, kiosks):
    rectorat.start()
    kiosk_a, kiosk_b = kiosks("borne-a"), kiosks("borne-b")
    accounts_a = kiosk_a.services.accounts
    accounts_a.sign_up(SignUp(EMAIL, FAMILY, GIVEN, PASSWORD, PASSWORD))
    accounts_a.activate(EMAIL, mailed_code(kiosk_a.services.store, EMAIL))
    assert kiosk_a.sync().pending == 0
    rectorat.stop()
    app = build_app(kiosk_b.services)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("s", *EMAIL, "enter", *PASSWORD, "enter")
        await settle(pilot)
        assert type(pilot.app.screen) is LoginScreen
        assert shown(pilot, "#form-problem") == AWAY
        assert value_of(pilot, "#email") == EMAIL  # nothing typed is lost
        assert kiosk_b.services.store.LoginFailure.select().count() == 0

        rectorat.start()  # the password typed is kept too: a second press is enough
        assert value_of(pilot, "#password") == PASSWORD
        pilot.app.screen.query_one("#password").focus()
        await pilot.press("enter")
        await settle(pilot)
        assert type(pilot.app.screen) is HomeScreen
        assert pilot.app.candidate is not None and pilot.app.candidate.email == EMAIL


async def test_the_code_mailed_at_kiosk_a_activates_the_account_on_kiosk_b_screens(
    rectorat, kiosks
):
    rectorat.start()
    kiosk_a, kiosk_b = kiosks("borne-a"), kiosks("borne-b")
    kiosk_a.services.accounts.sign_up(SignUp(EMAIL, FAMILY, GIVEN, PASSWORD, PASSWORD))
    code = mailed_code(kiosk_a.services.store, EMAIL)
    assert kiosk_a.sync().pending == 0
    app = build_app(kiosk_b.services)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("a", *EMAIL, "enter", *code, "enter")
        await settle(pilot)
        assert type(pilot.app.screen) is LoginScreen
        assert value_of(pilot, "#email") == EMAIL
        await pilot.press(*PASSWORD, "enter")
        await settle(pilot)
        assert type(pilot.app.screen) is HomeScreen


async def test_a_borrowed_account_kept_for_its_mail_is_forgotten_by_a_later_sweep(rectorat, kiosks):
    """The candidate mails their confirmation and leaves before the mail does: their
    records stay for it, and the purge's sweep forgets them once it has left, never while
    a candidate is at the kiosk."""
    rectorat.start()
    kiosk_a, kiosk_b = kiosks("borne-a"), kiosks("borne-b")
    accounts_a = kiosk_a.services.accounts
    account = accounts_a.sign_up(SignUp(EMAIL, FAMILY, GIVEN, PASSWORD, PASSWORD))
    account = accounts_a.activate(EMAIL, mailed_code(kiosk_a.services.store, EMAIL))
    session = kiosk_a.services.session
    values = valid_values(session, family_name=FAMILY, given_names=GIVEN)
    kiosk_a.services.registrations.save(account, values)
    assert kiosk_a.sync().pending == 0
    b = kiosk_b.services
    app = build_app(b)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("s", *EMAIL, "enter", *PASSWORD, "enter")
        await settle(pilot)
        assert type(pilot.app.screen) is HomeScreen
        b.mail.deliver_due()
        candidate = pilot.app.candidate
        (confirmation,) = b.documents.documents(candidate)
        b.documents.email(candidate, confirmation.id)
        b.mail.deliver_due()  # sent: nothing of theirs waits now
        pilot.app.purge()
        await pilot.app.workers.wait_for_complete()
        assert kiosk_b.account(account.id) is not None  # they are at the kiosk

        b.documents.email(candidate, confirmation.id)
        pilot.app.end_session()
        await settle(pilot)
        await pilot.app.workers.wait_for_complete()
        assert kiosk_b.account(account.id) is not None  # their mail waits
        assert b.mail.deliver_due().sent == 1
        pilot.app.purge()
        await pilot.app.workers.wait_for_complete()
        assert kiosk_b.account(account.id) is None
