"""What each screen looks like at 80×24, as SVG snapshots (update: --snapshot-update).

Every app runs on a frozen clock, so the dates on screen never change; ``steady``
stops the cursor blinking before the screenshot.
"""

from __future__ import annotations

import pytest

from screens.app import build_app
from tests.support.pilot import (
    EMAIL,
    FAMILY,
    PASSWORD,
    SIZE,
    create_account,
    sign_up,
    steady,
    type_into,
)


def snapshot_after(*keys: str):
    """A ``run_before`` pressing ``keys`` and waiting for what they started."""

    async def run_before(pilot):
        await pilot.press(*keys)
        await steady(pilot)

    return run_before


@pytest.mark.parametrize(
    "now",
    [
        pytest.param("2019-11-04T08:59:59", id="not_yet_open"),
        pytest.param("2019-11-04T09:00:00", id="open"),
        pytest.param("2019-11-27T19:00:00", id="closed"),
    ],
)
def test_welcome(make_services, snap_compare, now):
    assert snap_compare(build_app(make_services(now)), terminal_size=SIZE, run_before=steady)


def test_sign_up(app, snap_compare):
    assert snap_compare(app, terminal_size=SIZE, run_before=snapshot_after("c"))


def test_sign_up_with_problems(app, snap_compare):
    async def run_before(pilot):
        await pilot.press("c")
        await type_into(pilot, "#family_name", FAMILY)
        await type_into(pilot, "#email", "elodie@")
        await type_into(pilot, "#password", "court")
        await pilot.press("tab", "tab", "enter")  # the « Créer mon compte » button
        await steady(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_activation_after_sign_up(app, snap_compare):
    async def run_before(pilot):
        await sign_up(pilot)
        await steady(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_login(app, snap_compare):
    assert snap_compare(app, terminal_size=SIZE, run_before=snapshot_after("s"))


def test_login_refused(app, services, snap_compare):
    create_account(services)
    run_before = snapshot_after("s", *EMAIL, "enter", *"pas le bon", "enter")
    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_password_reset(app, snap_compare):
    assert snap_compare(app, terminal_size=SIZE, run_before=snapshot_after("s", *EMAIL, "f6"))


def test_home(app, services, snap_compare):
    create_account(services)
    run_before = snapshot_after("s", *EMAIL, "enter", *PASSWORD, "enter")
    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_help(app, snap_compare):
    assert snap_compare(app, terminal_size=SIZE, run_before=snapshot_after("f1"))
