"""The console's door: a staff account's name and password."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Input

from kiosk.console.views import Officer
from kiosk.passwords import MAX_LENGTH
from screens.console.base import ConsoleForm
from screens.fields import FormField
from screens.widgets import Button


class ConsoleLoginScreen(ConsoleForm):
    """Who works here; the same delays after failures as at the kiosk."""

    TITLE_KEY = "console.title"
    INTRO_KEY = "console.intro"
    BINDINGS = [
        Binding("escape", "noop", show=False),
        Binding("f10", "app.quit", "console.keys.quit"),
    ]

    def fields(self) -> ComposeResult:
        yield FormField("name", self.t("console.name"), max_length=64)
        yield FormField(
            "password", self.t("console.password"), password=True, max_length=MAX_LENGTH + 1
        )

    def buttons(self) -> ComposeResult:
        yield Button(self.t("console.submit"), id="submit", variant="primary")
        yield Button(self.t("console.quit"), id="quit")

    @on(Button.Pressed, "#submit")
    def submit(self) -> None:
        self.call("log_in", self.service.log_in, self.value("name"), self.value("password"))

    @on(Button.Pressed, "#quit")
    def quit(self) -> None:
        self.app.exit(0)

    def on_done_log_in(self, officer: Officer) -> None:
        self.query_one("#password", Input).value = ""
        self.app.logged_in(officer)

    def start_again(self, notice: str) -> None:
        """For the next person: nothing typed stays, and why the last one left is said."""
        for field in self.query(Input):
            field.value = ""
        self.clear_problems()
        self.say(notice)
        self.query_one("#name", Input).focus()
