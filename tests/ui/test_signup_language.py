"""The language a candidate signs up in is the language of their mails."""

from __future__ import annotations

from screens.activation import ActivationScreen
from tests.support.pilot import EMAIL, SIZE, queued_mails, sign_up


def account_language(services) -> str:
    accounts = services.store.Account
    with services.store.connection_context():
        return accounts.get(accounts.email == EMAIL).language


async def test_signing_up_in_english_keeps_english_for_the_mails(app, services):
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f11")  # English, from the welcome
        await sign_up(pilot)
        assert type(pilot.app.screen) is ActivationScreen
    assert account_language(services) == "en"
    assert queued_mails(services, EMAIL) == [
        f"Activate your candidate account – {services.session.title}"
    ]


async def test_signing_up_in_french_keeps_french_for_the_mails(app, services):
    async with app.run_test(size=SIZE) as pilot:
        await sign_up(pilot)
        assert type(pilot.app.screen) is ActivationScreen
    assert account_language(services) == "fr"
    assert queued_mails(services, EMAIL) == [
        f"Activez votre compte candidat – {services.session.title}"
    ]
