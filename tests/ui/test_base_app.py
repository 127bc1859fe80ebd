"""What the kiosk and the console share (screens/base_app.py): screens opened by name, and
a background task that fails is logged with its traceback and told to whoever waits for it."""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import peewee
import pytest
from argon2 import PasswordHasher

from kiosk.console import open_console
from kiosk.i18n import french
from kiosk.passwords import Hasher
from screens import base_app
from screens.base_app import full_collection_now
from screens.console.app import build_console
from tests.support.pilot import (
    EMAIL,
    SIZE,
    candidate,
    log_in,
    settle,
    type_into,
    value_of,
)

STAFF_PASSWORD = "guichet du hall nord 2019"


def notices(pilot) -> list[str]:
    """The notifications the person sees, as they read them."""
    return [toast.render().plain for toast in pilot.app.screen.query("Toast")]


async def until(pilot, condition) -> None:
    """Wait for ``condition()``: ``settle`` would raise the failed worker's error."""
    for _ in range(100):
        await pilot.pause(0.05)
        if condition():
            await pilot.pause(0.05)
            return
    raise AssertionError("waited in vain")


def failures(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "screens.base_app" and r.levelname == "ERROR"]


class Broken(RuntimeError):
    pass


def broken(*args, **kwargs):
    raise Broken("the store is on fire")


# -- screens by name -------------------------------------------------------------------------


async def test_a_screen_opens_by_its_name_with_its_arguments(app):
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert app.showing("welcome") and not app.showing("help")
        await app.open("help")
        await pilot.pause()
        assert type(app.screen).__name__ == "HelpScreen" and app.showing("help")
        await app.switch_to("login", email=EMAIL)
        await settle(pilot)
        assert app.showing("login") and len(app.screen_stack) == 2
        assert value_of(pilot, "#email") == EMAIL


# -- the first frame ---------------------------------------------------------------------------


def drawn_parts(screen) -> tuple[list[str], list[str]]:
    """The ids of the screen's parts shown, and of those not yet."""
    parts = [(child.id or type(child).__name__, child.visible) for child in screen.children]
    return [p for p, shown in parts if shown], [p for p, shown in parts if not shown]


async def test_the_first_screen_is_drawn_whole_in_its_first_frame(app):
    async with app.run_test(size=SIZE) as pilot:
        await app.screen.wait_for_refresh()
        assert drawn_parts(app.screen)[1] == []
        await settle(pilot)
        assert app.focused is not None and app.focused.id == "sign-up"


async def test_the_first_screen_reads_the_kiosks_button_style_and_not_textuals(app):
    # Textual's (7 KB, mostly borders the kiosk never draws) was parsed before the welcome.
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        read = {(Path(path).name, name) for path, name in app.stylesheet.source}
        assert ("widgets.py", "Button.DEFAULT_CSS") in read
        assert ("_button.py", "Button.DEFAULT_CSS") not in read
        assert app.screen.query_one("#sign-up").size.height == 1


def focus_moves(app) -> tuple[list[str], Callable[[object], None]]:
    """The widgets that had the cursor, in turn, and the message hook that sees them."""
    focused: list[str] = []

    def hook(message: object) -> None:  # the widget with the cursor, read at every message
        front = app.front
        if front is not None and front.focused is not None:
            widget = front.focused.id or type(front.focused).__name__
            if widget not in focused[-1:]:
                focused.append(widget)

    return focused, hook


async def test_the_first_screen_gives_the_cursor_once_to_its_first_button(app):
    # Given to the body first and then taken away, the focus restyled the screen twice
    # before its first frame.
    focused, hook = focus_moves(app)
    async with app.run_test(size=SIZE, message_hook=hook) as pilot:
        await app.screen.wait_for_refresh()
        await settle(pilot)
        assert focused == ["sign-up"]


@pytest.mark.parametrize(
    "name, first", [("sign_up", "family_name"), ("login", "email"), ("help", "back")]
)
async def test_a_screen_opened_gives_the_cursor_once_to_its_first_field(app, name, first):
    # Textual's first focus went to the body, whose widgets were all restyled as it took
    # the focus and again as the screen's own choice took it away.
    focused, hook = focus_moves(app)
    async with app.run_test(size=SIZE, message_hook=hook) as pilot:
        await settle(pilot)
        del focused[:]
        await app.open(name)
        await settle(pilot)
        assert focused == [first]


async def test_a_screen_opened_over_another_draws_its_body_in_the_next_frame(app):
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await app.open("login", email=EMAIL)
        shown, hidden = drawn_parts(app.screen)
        assert shown == ["Masthead", "KeyBar"]
        assert hidden and "KeyBar" not in hidden
        await settle(pilot)
        assert drawn_parts(app.screen)[1] == []
        # The cursor asked for while the body was hidden: the password, the e-mail being
        # known (screens/form.py).
        assert app.focused is not None and app.focused.id == "password"


async def test_a_screen_opened_on_a_terminal_hides_its_body_and_not_textuals_own_parts(app):
    # On a terminal a screen also holds Textual's tooltip and notifications: no part of its
    # body, they are left to Textual while the body waits for its frame.
    async with app.run_test(size=SIZE, notifications=True, tooltips=True) as pilot:
        await settle(pilot)
        await app.open("login", email=EMAIL)
        shown, hidden = drawn_parts(app.screen)
        assert "body" in hidden
        assert "textual-tooltip" in shown  # its visibility is Textual's to set


async def test_a_report_that_comes_back_once_the_screens_are_closed_is_let_go(app, services):
    # A sync round or a kept draft can report while the app shuts down, after Textual has
    # closed every screen: there is no one left to tell, and nothing to raise.
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
    assert app.screen_stack == [] and not app.showing("walk_away")
    app.on_kiosk_app_sync_reported(app.SyncReported(services.sync.sync_once()))
    app.on_kiosk_app_draft_kept()
    assert app.sync_text == french("sync.alone")


# -- the garbage collector's full collections ----------------------------------------------------


@pytest.mark.parametrize(
    "due_for, quiet_for, in_use, now",
    [
        (0.0, 2.0, False, True),  # the last person has gone: at the first pause
        (0.0, 1.99, False, False),
        (299.9, 60.0, True, False),  # someone is there: minutes later, in a pause
        (300.0, 2.0, True, True),
        (300.0, 1.99, True, False),
        (899.9, 0.0, True, False),  # someone who never pauses meets one all the same
        (900.0, 0.0, True, True),
        (900.0, 0.0, False, True),
    ],
)
def test_a_full_collection_waits_for_the_last_person_to_go_or_for_a_pause(
    due_for, quiet_for, in_use, now
):
    assert full_collection_now(due_for, quiet_for, in_use) is now


@contextmanager
def full_collections() -> Iterator[list[float]]:
    """When the collector started each full collection, while the block runs."""
    started: list[float] = []

    def seen(phase: str, info: dict) -> None:
        if phase == "start" and info["generation"] == 2:
            started.append(time.monotonic())

    gc.callbacks.append(seen)
    try:
        yield started
    finally:
        gc.callbacks.remove(seen)


def make_full_collection_due(threshold: int) -> None:
    """As the collector's ``threshold`` collections of the middle generation would: each
    counts one towards a full collection."""
    for _ in range(threshold):
        gc.collect(1)


async def test_the_full_collection_runs_once_no_one_is_at_the_kiosk(app, monkeypatch):
    monkeypatch.setattr(base_app, "QUIET_FOR_COLLECTION", 0.3)
    threshold = gc.get_threshold()[2]  # the app runs with its own
    with full_collections() as started:
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await app.open("login", email=EMAIL)
            await settle(pilot)
            make_full_collection_due(threshold)
            await pilot.pause(2.5)  # two looks, in a pause, someone at the kiosk
            assert started == []
            # The welcome again: no one is there from the moment the screen goes, which is
            # before the awaited pop returns.
            gone = time.monotonic()
            await app.pop_screen()
            await until(pilot, lambda: started)
            assert started[0] >= gone


# -- failed workers ----------------------------------------------------------------------------


async def test_a_draft_that_cannot_be_kept_is_logged_and_the_candidate_told(
    app, services, caplog, monkeypatch
):
    account = candidate(services)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await log_in(pilot, account)
        monkeypatch.setattr(services.registrations, "save_draft", broken)
        app.keep_draft(account, {"family_name": "Dupré"})
        await until(pilot, lambda: notices(pilot))
        assert notices(pilot) == [french("app.draft_failed")]
    [record] = failures(caplog)
    assert isinstance(record.exc_info[1], Broken)
    assert "Traceback (most recent call last)" in caplog.text
    assert "in keep_draft" in caplog.text and "Broken: the store is on fire" in caplog.text


async def test_a_background_round_that_fails_is_logged_and_shown_to_no_one(
    app, services, caplog, monkeypatch
):
    monkeypatch.setattr(services.sync, "sync_once", broken)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        app.sync()
        await until(pilot, lambda: failures(caplog))
        await pilot.pause(0.2)
        assert notices(pilot) == []
    assert failures(caplog) and "in sync" in caplog.text


async def test_a_task_that_fails_at_the_console_tells_the_officer_in_the_console_s_words(
    services, caplog
):
    """The export folder is a file: the task fails in its call, and the officer reads the
    console's message (the log has the detail), not the candidates' « accueil » one."""
    services.staff.hasher = Hasher(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    services.staff.add("bureau", "exam_office", STAFF_PASSWORD)
    services.config.exports_dir.parent.mkdir(parents=True, exist_ok=True)
    services.config.exports_dir.write_text("pas un dossier")
    app = build_console(open_console(services))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await type_into(pilot, "#name", "bureau")
        await pilot.press("enter", *STAFF_PASSWORD, "enter")
        await settle(pilot)
        assert app.showing("home")
        await pilot.press("f5")
        await settle(pilot)
        said = str(app.screen.query_one("#form-problem").render())
        assert said == french("console.failure")
    assert "service call export failed" in caplog.text


async def test_a_call_that_fails_at_the_console_is_logged_and_the_officer_told(
    services, caplog, monkeypatch
):
    services.staff.hasher = Hasher(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    services.staff.add("accueil", "reception", STAFF_PASSWORD)
    app = build_console(open_console(services))
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        await type_into(pilot, "#name", "accueil")
        await pilot.press("enter", *STAFF_PASSWORD, "enter")
        await settle(pilot)
        assert app.showing("home")
        # The store cannot be reached: the call fails before the service is even asked.
        monkeypatch.setattr(peewee.Database, "connection_context", broken)
        await type_into(pilot, "#query", "Dupré")
        await pilot.press("enter")
        await until(pilot, lambda: notices(pilot))
        assert notices(pilot) == [french("console.failure")]
        assert app.showing("home") and not app.screen.busy  # the officer may try again
    [record] = failures(caplog)
    assert isinstance(record.exc_info[1], Broken)
    assert "Traceback (most recent call last)" in caplog.text and "in _run" in caplog.text
