"""A screen that is one form: an introduction, fields, and the buttons that act on them."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Button, Input

from screens.base import KioskScreen
from screens.widgets import FormField, Plain, Problem


class FormScreen(KioskScreen):
    """Enter moves to the next field and, on the last one, presses the main button."""

    BINDINGS = [
        Binding("escape", "back", "keys.back"),
        Binding("f1", "app.help", "keys.help"),
    ]

    TITLE_KEY = ""
    INTRO_KEY = ""
    SUBMIT = "submit"

    def __init__(self, notice: str = "") -> None:
        super().__init__()
        self.notice = notice

    def compose(self) -> ComposeResult:
        yield from self.title_bar(self.t(self.TITLE_KEY))
        with VerticalScroll(id="body"):
            if self.INTRO_KEY:
                yield Plain(self.t(self.INTRO_KEY), classes="intro")
            yield Plain(self.notice, id="notice", classes="notice")
            yield Problem(id="form-problem")
            yield from self.fields()
            with Horizontal(classes="buttons"):
                yield from self.buttons()
        yield from self.footer()

    def fields(self) -> ComposeResult:
        raise NotImplementedError

    def buttons(self) -> ComposeResult:
        raise NotImplementedError

    def on_mount(self) -> None:
        self.query_one("#notice", Plain).display = bool(self.notice)
        first_empty = next((f.input for f in self.query(FormField) if not f.value), None)
        (first_empty or self.query(Input).first()).focus()

    def say(self, text: str) -> None:
        """Show a notice above the form (what just happened, what to do next)."""
        notice = self.query_one("#notice", Plain)
        notice.show(text)
        notice.display = bool(text)

    @on(Input.Submitted)
    def _next_field(self, event: Input.Submitted) -> None:
        inputs = [i for i in self.query(Input) if i.display and not i.disabled]
        position = inputs.index(event.input) if event.input in inputs else -1
        if 0 <= position < len(inputs) - 1:
            inputs[position + 1].focus()
        else:
            self.query_one(f"#{self.SUBMIT}", Button).press()

    def action_back(self) -> None:
        self.app.pop_screen()
