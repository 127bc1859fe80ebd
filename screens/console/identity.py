"""The exam office corrects the identity a candidate can no longer change."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding

from kiosk import formatting
from kiosk.console.views import CandidateFile
from kiosk.registration_form import LOCKED_FIELDS
from screens.console.base import ConsoleForm
from screens.fields import FormField
from screens.widgets import Button


class IdentityScreen(ConsoleForm):
    """Names and birth, as saved; a refused value is shown at its field and kept."""

    TITLE_KEY = "console.identity.title"
    INTRO_KEY = "console.identity.intro"
    BINDINGS = [Binding("escape", "back", "console.keys.back")]

    def __init__(self, file: CandidateFile) -> None:
        super().__init__()
        self.file = file

    def fields(self) -> ComposeResult:
        for name in LOCKED_FIELDS:
            value = str(self.file.answers.get(name, ""))
            if name == "birth_date":
                value = formatting.numeric_date(value)
            yield FormField(name, self.t(f"form.{name}.label"), value=value, max_length=100)

    def buttons(self) -> ComposeResult:
        yield Button(self.t("console.identity.submit"), id="submit", variant="warning")
        yield Button(self.t("console.back"), id="back")

    def first_focus(self):
        return self.query_one(f"#{LOCKED_FIELDS[0]}")

    @on(Button.Pressed, "#submit")
    def submit(self) -> None:
        values = {name: self.value(name) for name in LOCKED_FIELDS}
        self.call(
            "correct",
            self.service.correct_identity,
            self.officer,
            self.file.candidate.account_id,
            values,
        )

    @on(Button.Pressed, "#back")
    def back(self) -> None:
        self.action_back()

    def on_done_correct(self, _) -> None:
        self.dismiss(True)
