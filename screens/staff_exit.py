"""Leaving kiosk mode: only with a staff account's password."""

from __future__ import annotations

import logging

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding

from kiosk.passwords import MAX_LENGTH
from kiosk.runtime.launcher import STAFF_EXIT
from screens.fields import FormField
from screens.form import FormScreen
from screens.widgets import Button


class StaffExitScreen(FormScreen):
    """Reached with a key staff know (F12); shown in no footer."""

    TITLE_KEY = "staff.exit_title"
    INTRO_KEY = "staff.exit_intro"
    BINDINGS = [Binding("escape", "back", "keys.back")]

    def fields(self) -> ComposeResult:
        yield FormField("name", self.t("staff.exit_name"), max_length=64)
        yield FormField(
            "password", self.t("staff.exit_password"), password=True, max_length=MAX_LENGTH + 1
        )

    def buttons(self) -> ComposeResult:
        yield Button(self.t("staff.exit_submit"), id="submit", variant="warning")
        yield Button(self.t("common.back"), id="back")

    @on(Button.Pressed, "#submit")
    def submit(self) -> None:
        self.call(
            "exit",
            self.services.staff.leave_kiosk,
            self.services.store,
            self.value("name"),
            self.value("password"),
        )

    @on(Button.Pressed, "#back")
    def back(self) -> None:
        self.action_back()

    def on_done_exit(self, staff) -> None:
        logging.getLogger(__name__).warning("kiosk mode left by staff member %s", staff.name)
        self.app.exit(return_code=STAFF_EXIT)
