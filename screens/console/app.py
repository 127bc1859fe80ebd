"""The staff console's application, and the one factory that builds it for the CLI and tests."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from textual import events, work
from textual.app import App
from textual.binding import Binding
from textual.screen import Screen

from kiosk.assets import asset
from kiosk.console.base import Desk
from kiosk.console.views import Officer
from kiosk.i18n import Messages
from screens.base import translate_keys

log = logging.getLogger(__name__)

IDLE_TIMEOUT = 15 * 60  # seconds: staff leave a desk; what they had open must not stay on it
IDLE_CHECK = 1.0
# Nothing else of the App runs: no screenshot, palette, theme or screen switching.
APP_ACTIONS = frozenset({"focus_next", "focus_previous", "quit", "log_out"})


class ConsoleApp(App, inherit_bindings=False):
    """Reception and exam-office staff at work on one store; owns every key."""

    CSS_PATH = str(asset("kiosk.tcss"))
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [Binding("ctrl+q", "quit", show=False)]

    def __init__(
        self, desk: Desk, language: str = "fr", *, idle_timeout: int = IDLE_TIMEOUT
    ) -> None:
        super().__init__()
        self.desk = desk
        self.messages = Messages(language)
        self.officer: Officer | None = None
        self.idle_timeout = idle_timeout
        self.last_input = desk.clock.now()
        self.title = self.t("console.title")
        translate_keys(self, self.t)

    @property
    def services(self) -> Desk:
        """What the shared screen base calls: here, the desk."""
        return self.desk

    def t(self, key: str, **params: Any) -> str:
        return self.messages(key, **params)

    def get_default_screen(self) -> Screen:
        from screens.console.login import ConsoleLoginScreen

        return ConsoleLoginScreen()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action not in APP_ACTIONS:
            log.debug("refused app action %r", action)
            return False
        return True

    def copy_to_clipboard(self, text: str) -> None:
        pass  # candidates' data stays in the console

    def on_mount(self) -> None:
        self.set_interval(IDLE_CHECK, self.look_for_idle)

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, (events.Key, events.MouseDown, events.Paste)):
            self.last_input = self.desk.clock.now()
        await super().on_event(event)

    # -- who is at the console ------------------------------------------------------------

    def logged_in(self, officer: Officer) -> None:
        from screens.console.home import DeskScreen

        self.officer = officer
        self.last_input = self.desk.clock.now()
        self.push_screen(DeskScreen())

    def action_log_out(self, reason: str = "") -> None:
        from screens.console.login import ConsoleLoginScreen

        officer, self.officer = self.officer, None
        if officer is not None:
            self.record_log_out(officer, reason)
        while len(self.screen_stack) > 1:
            self.pop_screen()
        login = self.screen_stack[0]
        if isinstance(login, ConsoleLoginScreen):
            login.start_again(self.t("console.idle_out" if reason else "console.logged_out"))

    @work(thread=True, exit_on_error=False, group="audit")
    def record_log_out(self, officer: Officer, reason: str) -> None:
        with self.desk.db.connection_context():
            self.desk.log_out(officer, reason)

    def look_for_idle(self) -> None:
        """After ``idle_timeout`` without a key, the officer is logged out; after as long
        again at the login form, the console ends (over SSH, so does the connection)."""
        if self.desk.clock.now() - self.last_input < timedelta(seconds=self.idle_timeout):
            return
        if self.officer is not None:
            self.action_log_out("idle")
            self.last_input = self.desk.clock.now()
        else:
            self.exit(0)


def build_console(
    desk: Desk, language: str = "fr", *, idle_timeout: int = IDLE_TIMEOUT
) -> ConsoleApp:
    """The console as ``kiosk staff`` runs it, and as the tests drive it."""
    return ConsoleApp(desk, language, idle_timeout=idle_timeout)
