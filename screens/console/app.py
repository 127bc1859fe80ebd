"""The staff console's application, and the one factory that builds it for the CLI and tests."""

from __future__ import annotations

import logging
from typing import Any

from textual import work
from textual.binding import Binding
from textual.screen import Screen
from textual.worker import Worker

from kiosk.console.base import ConsoleService
from kiosk.console.views import Officer
from screens import routes
from screens.base_app import LockedDownApp
from screens.console.base import ConsoleScreen

IDLE_TIMEOUT = 15 * 60  # seconds: staff leave a desk; what they had open must not stay on it
# Nothing else of the App runs: no screenshot, palette, theme or screen switching.
APP_ACTIONS = frozenset({"focus_next", "focus_previous", "quit", "log_out"})


class ConsoleApp(LockedDownApp, inherit_bindings=False):
    """Reception and exam-office staff at work on one store; owns every key."""

    ALLOWED_ACTIONS = APP_ACTIONS
    # The forms' footers ask about the kiosk's F1 help at each refresh: that is no attempt.
    REFUSED_LOG_LEVEL = logging.DEBUG
    ROUTES = routes.CONSOLE
    CLIPBOARD_IN_APP = False  # candidates' data stays in the console, even for pasting
    CALL_FAILED = "console.failure"  # said to staff, who have the log
    BINDINGS = [Binding("ctrl+q", "quit", show=False)]

    def __init__(
        self, service: ConsoleService, language: str = "fr", *, idle_timeout: int = IDLE_TIMEOUT
    ) -> None:
        super().__init__(language, service.clock)
        self.service = service
        self.officer: Officer | None = None
        self.idle_timeout = idle_timeout
        self.title = self.t("console.title")

    @property
    def services(self) -> ConsoleService:
        """What the shared screen base calls: here, the console service."""
        return self.service

    def get_default_screen(self) -> Screen:
        return self.make_screen("login")

    # -- who is at the console ------------------------------------------------------------

    def logged_in(self, officer: Officer) -> None:
        self.officer = officer
        self.last_input = self.service.clock.now()
        self.open("home")

    def action_log_out(self, reason: str = "") -> None:
        officer, self.officer = self.officer, None
        if officer is not None:
            self.record_log_out(officer, reason)
        while len(self.screen_stack) > 1:
            self.pop_screen()
        login = self.screen_stack[0]
        if isinstance(login, ConsoleScreen):
            login.start_again(self.t("console.idle_out" if reason else "console.logged_out"))

    @work(thread=True, exit_on_error=False, group="audit")
    def record_log_out(self, officer: Officer, reason: str) -> None:
        with self.service.db.connection_context():
            self.service.log_out(officer, reason)

    def look_for_idle(self) -> None:
        """After ``idle_timeout`` without a key, the officer is logged out; after as long
        again at the login form, the console ends (over SSH, so does the connection)."""
        if not self.idle_for(self.idle_timeout):
            return
        if self.officer is not None:
            self.action_log_out("idle")
            self.last_input = self.service.clock.now()
        else:
            self.exit(0)

    def failure_message(self, worker: Worker[Any]) -> str | None:
        # A screen's call: the officer waits for it. The audit of a log-out has no one.
        return self.CALL_FAILED if worker.group == "service" else None


def build_console(
    service: ConsoleService, language: str = "fr", *, idle_timeout: int = IDLE_TIMEOUT
) -> ConsoleApp:
    """The console as ``kiosk staff`` runs it, and as the tests drive it."""
    return ConsoleApp(service, language, idle_timeout=idle_timeout)
