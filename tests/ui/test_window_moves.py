"""Time moves the screens: the welcome and the home change when the window opens and when it
closes, without a key press, as the one clock says."""

from __future__ import annotations

import pytest

from kiosk.clock import parse_instant
from screens.app import build_app
from screens.home import HomeScreen
from screens.welcome import WelcomeScreen
from tests.support.pilot import SIZE, candidate, log_in, register, text_of

BEFORE_OPENING = parse_instant("2019-11-04T08:59:59")
OPENING = parse_instant("2019-11-04T09:00:00")
BEFORE_CLOSING = parse_instant("2019-11-27T18:59:59")
CLOSING = parse_instant("2019-11-27T19:00:00")


@pytest.fixture
def ticks(monkeypatch) -> dict[type, int]:
    """Each screen's window checks, counted, every 20 ms instead of every second."""
    counted: dict[type, int] = {WelcomeScreen: 0, HomeScreen: 0}
    for screen in counted:
        check = screen._check_window

        def counting(self, check=check, screen=screen) -> None:
            counted[screen] += 1
            check(self)

        monkeypatch.setattr(screen, "_check_window", counting)
        monkeypatch.setattr(screen, "WINDOW_CHECK_SECONDS", 0.02)
    return counted


async def checked(pilot, ticks: dict[type, int], screen: type, times: int = 3) -> None:
    """Until the screen has read the clock ``times`` more times, and what it read is shown."""
    target = ticks[screen] + times
    for _ in range(500):
        if ticks[screen] >= target:
            break
        await pilot.pause(0.01)
    assert ticks[screen] >= target, "the screen never read the clock"
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def offered(pilot) -> list[str]:
    buttons = pilot.app.screen.query("#home-buttons Button")
    return [b.id for b in buttons if b.display and b.id != "log-out"]


async def test_the_welcome_opens_and_closes_by_itself(services, ticks):
    services.clock.set(BEFORE_OPENING)
    async with build_app(services).run_test(size=SIZE) as pilot:
        await checked(pilot, ticks, WelcomeScreen)
        assert "pas encore ouvertes" in text_of(pilot, "#window")

        services.clock.set(OPENING)
        await checked(pilot, ticks, WelcomeScreen)
        assert "sont ouvertes jusqu'au mercredi 27 novembre 2019" in text_of(pilot, "#window")

        services.clock.set(BEFORE_CLOSING)
        await checked(pilot, ticks, WelcomeScreen)
        assert "sont ouvertes jusqu'au" in text_of(pilot, "#window")

        services.clock.set(CLOSING)
        await checked(pilot, ticks, WelcomeScreen)
        assert "sont closes depuis le mercredi 27 novembre 2019" in text_of(pilot, "#window")


async def test_the_home_offers_registering_from_the_opening(services, ticks):
    services.clock.set(BEFORE_OPENING)
    account = candidate(services)
    async with build_app(services).run_test(size=SIZE) as pilot:
        await log_in(pilot, account)
        await checked(pilot, ticks, HomeScreen)
        assert "ouvriront le lundi 4 novembre 2019" in text_of(pilot, "#window")
        assert offered(pilot) == []

        services.clock.set(OPENING)
        await checked(pilot, ticks, HomeScreen)
        assert "sont ouvertes jusqu'au" in text_of(pilot, "#window")
        assert offered(pilot) == ["register"]


async def test_the_home_stops_offering_changes_at_the_close(services, ticks):
    services.clock.set(BEFORE_CLOSING)
    account = candidate(services)
    register(services, account)
    async with build_app(services).run_test(size=SIZE) as pilot:
        await log_in(pilot, account)
        await checked(pilot, ticks, HomeScreen)
        assert offered(pilot) == ["register", "documents", "address", "withdraw"]

        services.clock.set(CLOSING)
        await checked(pilot, ticks, HomeScreen)
        assert "sont closes depuis le mercredi 27 novembre 2019" in text_of(pilot, "#window")
        assert text_of(pilot, "#standing").startswith("Inscription validée")
        assert offered(pilot) == ["documents", "address"]
