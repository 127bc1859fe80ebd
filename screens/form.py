"""A screen that is one form: an introduction, fields, and the buttons that act on them."""

from __future__ import annotations

from textual.actions import SkipAction
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widget import Widget
from textual.widgets import Input

from screens.base import KioskScreen
from screens.fields import Field
from screens.widgets import Body, Button, Plain, Problem


class FormScreen(KioskScreen):
    """Enter moves to the next field and, on the last one, presses the main button."""

    BINDINGS = [
        Binding("escape", "back", "keys.back"),
        Binding("f1", "app.help", "keys.help"),
        # Handled before the input sees it, for the same reason as Tab (see KioskScreen).
        Binding("enter", "enter", show=False, priority=True),
    ]

    TITLE_KEY = ""
    INTRO_KEY = ""
    SUBMIT = "submit"
    # Fields on which Enter presses another button than the next field would lead to.
    ENTER_PRESSES: dict[str, str] = {}

    def __init__(self, notice: str = "") -> None:
        super().__init__()
        self.notice = notice

    def compose(self) -> ComposeResult:
        yield from self.title_bar(self.t(self.TITLE_KEY))
        with Body(id="body"):
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
        self.first_focus().focus()

    def first_focus(self) -> Widget:
        """Where the cursor starts: the first empty field."""
        first_empty = next((f.control for f in self.query(Field) if not f.value), None)
        return first_empty or self.query(Input).first()

    def action_enter(self) -> None:
        """Enter in a field moves to the next one; on the last, it presses the main button."""
        current = self.focused
        if not isinstance(current, Input):
            raise SkipAction()  # a button, a box: Enter does what it does there
        if current.id in self.ENTER_PRESSES:
            self.query_one(f"#{self.ENTER_PRESSES[current.id]}", Button).press()
            return
        inputs = [i for i in self.query(Input) if i.display and not i.disabled]
        position = inputs.index(current) if current in inputs else -1
        if 0 <= position < len(inputs) - 1:
            self.set_focus(inputs[position + 1])  # at once: Widget.focus() would wait a turn
        else:
            self.query_one(f"#{self.SUBMIT}", Button).press()

    def action_back(self) -> None:
        if not self.busy:
            self.app.pop_screen()
