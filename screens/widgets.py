"""Small widgets shared by the screens."""

from __future__ import annotations

from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.content import Content
from textual.widgets import Static

from kiosk.text import displayable


class Plain(Static):
    """Text shown as it is: never read as markup, and no control character reaches the terminal."""

    def __init__(
        self, text: str = "", *, id: str | None = None, classes: str | None = None
    ) -> None:
        super().__init__(Content(displayable(text)), markup=False, id=id, classes=classes)

    def show(self, text: str) -> None:
        shown = Content(displayable(text))
        # The same words again (a screen shown again, a sync status that did not move):
        # a new text would lay the whole screen out again for nothing.
        if shown != self.content:
            self.update(shown)


class Problem(Plain):
    """A refusal in words, next to what it is about; hidden while there is none."""

    DEFAULT_CLASSES = "problem"

    def show(self, text: str) -> None:
        super().show(text)
        self.display = bool(text)

    def on_mount(self) -> None:
        self.display = False


class Body(VerticalScroll, inherit_bindings=False):
    """A screen's scrolling body: the arrows move between fields, the page keys scroll."""

    BINDINGS = [
        Binding("pageup", "page_up", show=False),
        Binding("pagedown", "page_down", show=False),
    ]
