"""The home at 80×24 in each family of states (update: --snapshot-update): registered while
the window is open, the paper file at the rectorat (also after the close), withdrawn."""

from __future__ import annotations

import pytest

from kiosk.clock import parse_instant
from screens.app import build_app
from tests.support.pilot import SIZE, candidate, log_in, register, steady

OPEN = "2019-11-10T10:00:00"
CLOSED = "2019-11-27T19:00:00"


@pytest.mark.parametrize(
    "state, now",
    [
        pytest.param("registered", OPEN, id="registered_open"),
        pytest.param("incomplete", OPEN, id="incomplete_open"),
        pytest.param("received", CLOSED, id="received_closed"),
        pytest.param("complete", CLOSED, id="complete_closed"),
        pytest.param("withdrawn", OPEN, id="withdrawn_open"),
    ],
)
def test_home(services, snap_compare, state, now):
    account = candidate(services)
    registration = register(services, account)
    services.documents.documents(account)  # the confirmation of version 1, made
    if state == "withdrawn":
        services.registrations.withdraw(account)
    elif state != "registered":
        # As the rectorat's sync writes what the exam office made of the paper file.
        Registration = services.store.Registration
        Registration.update(
            paper_status=state, missing_pieces=["jdc"] if state == "incomplete" else None
        ).where(Registration.id == registration.id).execute()
    services.clock.set(parse_instant(now))
    app = build_app(services)

    async def run_before(pilot):
        await log_in(pilot, account)
        await steady(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
