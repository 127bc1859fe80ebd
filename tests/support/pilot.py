"""Helpers for driving the kiosk's Textual app with Pilot, shared by the UI tests.

The constants are the candidate the UI tests use and the frozen clock's instant (Sunday
10 November 2019, 10:00 in Paris, inside the Poitiers window). The fixtures that build
the services and the app are in ``tests/ui/conftest.py``.
"""

from __future__ import annotations

import re

from peewee import SQL
from textual.pilot import Pilot
from textual.widgets import Input
from textual.worker import WorkerState

from kiosk.accounts import SignUp
from kiosk.delivery.mail_transport import read_maildir
from kiosk.runtime.services import Services
from tests.factories import valid_values

SESSION = "bacpro-poitiers-2020"
SUNDAY_MORNING = "2019-11-10T10:00:00"  # Paris; the window is 4 Nov 09:00 – 27 Nov 19:00
SIZE = (80, 24)

FAMILY = "Dupré-Lefèvre"
GIVEN = "Élodie"
EMAIL = "elodie@exemple.fr"
PASSWORD = "lune verte 42"  # short: every character is a key press (~70 ms)
NEW_PASSWORD = "vélo bleu 808"

_CODE = re.compile(r"\b([A-Z0-9]{4}-[A-Z0-9]{4})\b")


# -- helpers ---------------------------------------------------------------------------


async def settle(pilot: Pilot) -> None:
    """Wait until no worker runs, what they posted back has been handled, and what the
    screen was asked to draw is drawn.

    A service call runs in a thread worker whose ``Done`` may start another worker
    (mail delivery), hence the loop.
    """
    app = pilot.app
    for _ in range(50):
        await app.workers.wait_for_complete()
        await pilot.pause()
        busy = any(w.state in (WorkerState.PENDING, WorkerState.RUNNING) for w in app.workers)
        # A screen still drawing a tab has not given its cursor yet: a key would be lost.
        # The home still reading the standing offers none of its buttons yet.
        screen = app.screen
        waiting = (
            getattr(screen, "busy", False)
            or getattr(screen, "drawing", False)
            or getattr(screen, "reads", 0) > 0
        )
        if not busy and not waiting:
            return
    raise AssertionError("the app never settled")


async def click(pilot: Pilot, selector: str) -> None:
    """Click a widget where the screen now draws it.

    ``Pilot.pause`` guesses idleness from the CPU; on a loaded machine the screen may not
    yet be laid out again after a change, and a click aimed from the old layout lands
    beside a button that has just moved. Waiting for the next refresh aims it right.
    """
    screen = pilot.app.screen
    await screen.wait_for_refresh()
    # A button pressed less than its active effect ago (0.2 s: Enter on a form's last
    # field presses it) ignores a click, as a guard against a double press.
    target = screen.query_one(selector)
    while target.has_class("-active"):
        await pilot.pause(0.05)
    assert await pilot.click(selector), f"the click missed {selector}"


async def type_into(pilot: Pilot, selector: str, text: str) -> None:
    """Focus an input and type ``text`` in it, one key press per character."""
    pilot.app.screen.query_one(selector, Input).focus()
    await pilot.pause()
    await pilot.press(*text)


def value_of(pilot: Pilot, selector: str) -> str:
    return pilot.app.screen.query_one(selector, Input).value


def mailed_code(services: Services, to: str = EMAIL, subject: str = "Activez") -> str:
    """The code of the mail to ``to`` whose subject starts so, read in the Maildir.

    On a frozen clock every mail has the same Date, so mails are told apart by subject.
    """
    with services.store.connection_context():
        services.mail.deliver_due()
    mails = [
        m
        for m in read_maildir(services.config.maildir_path)
        if m.to == to and m.subject.startswith(subject)
    ]
    assert len(mails) == 1, f"expected one mail {subject!r}… to {to}, found {len(mails)}"
    found = _CODE.search(mails[0].body)
    assert found, mails[0].body
    return found.group(1)


def create_account(
    services: Services,
    *,
    active: bool = True,
    email: str = EMAIL,
    family: str = FAMILY,
    given: str = GIVEN,
) -> None:
    """An account made through the services, for tests about what comes after sign-up."""
    services.accounts.sign_up(
        SignUp(
            email=email,
            family_name=family,
            given_names=given,
            password=PASSWORD,
            password_again=PASSWORD,
        )
    )
    if active:
        services.accounts.activate(email, mailed_code(services, email))


async def sign_up(pilot: Pilot, password: str = PASSWORD) -> None:
    """From the welcome screen, fill the sign-up form as a candidate does and submit it:
    the first field has the focus, Enter moves on, and on the last field submits."""
    await pilot.press("c", *FAMILY, "enter", *GIVEN, "enter", *EMAIL, "enter")
    await pilot.press(*password, "enter", *password, "enter")
    await settle(pilot)


async def steady(pilot: Pilot) -> None:
    """Settle, then stop what changes with time alone: the blinking cursor, and a
    pressed button's 0.2 s highlight. A screenshot taken then is always the same."""
    await settle(pilot)
    for field in pilot.app.screen.query(Input):
        field.cursor_blink = False
    for _ in range(20):
        if not pilot.app.screen.query(".-active"):
            break
        await pilot.pause(0.05)
    await pilot.pause()


# -- registration helpers ----------------------------------------------------------------


def candidate(services: Services, email: str = EMAIL, **names: str):
    """An active account made through the services, and the ``Account`` its log-in returns."""
    create_account(services, email=email, **names)
    return services.accounts.log_in(email, PASSWORD)


def register(services: Services, account, **overrides):
    """A registration saved through the services: the valid answers, with the account's names."""
    names = {"family_name": account.family_name, "given_names": account.given_names, "sex": "F"}
    return services.registrations.save(
        account, valid_values(services.session, **{**names, **overrides})
    )


async def log_in(pilot: Pilot, account) -> None:
    """Straight to the candidate's home, as a log-in would lead there."""
    pilot.app.log_in(account)
    await settle(pilot)


def text_of(pilot: Pilot, selector: str) -> str:
    """The text a widget of the current screen renders."""
    return str(pilot.app.screen.query_one(selector).render())


def queued_mails(services: Services, to: str) -> list[str]:
    """The subjects of the mails queued for ``to`` (delivered or not), oldest first."""
    outbox = services.store.OutboxRow
    with services.store.connection_context():
        rows = outbox.select().where(outbox.kind == "mail").order_by(SQL("rowid"))
        return [row.payload["subject"] for row in rows if row.payload["to"] == to]
