"""Small widgets shared by the screens."""

from __future__ import annotations

from textual import widgets
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


class Button(widgets.Button, inherit_css=False):
    """Textual's button as the kiosk draws every button: one line (at 80×24 every screen's
    buttons fit without scrolling), no border, bold, the focused one in reverse video;
    each variant in its colour of the theme, as Textual's.

    Its style is its own, not inherited: Textual's button style sheet (7 KB, mostly the
    borders the kiosk never draws) was parsed at every start, before the welcome showed.
    So, to CSS and to queries, it is a ``Button`` and nothing more: ``Widget`` rules
    (scrollbars, links: a button has neither) do not reach it, and ``query(Widget)`` does
    not find it. Screens use this button only (tests/test_layers.py).
    """

    DEFAULT_CSS = """
    Button {
        width: auto;
        min-width: 10;
        height: 1;
        padding: 0 1;
        line-pad: 1;
        text-align: center;
        content-align: center middle;
        pointer: pointer;
        text-style: bold;
        color: $button-foreground;
        background: $surface;
        &:focus {
            text-style: bold reverse;
            background-tint: $foreground 5%;
        }
        &:hover {
            background: $surface-darken-1;
        }
        &.-active {
            background: $surface;
            tint: $background 30%;
        }
        &:disabled {
            text-opacity: 0.6;
            pointer: not-allowed;
        }
        &.-primary {
            color: $button-color-foreground;
            background: $primary;
            &:hover { background: $primary-darken-2; }
            &.-active { background: $primary; }
        }
        &.-success {
            color: $button-color-foreground;
            background: $success;
            &:hover { background: $success-darken-2; }
            &.-active { background: $success; }
        }
        &.-warning {
            color: $button-color-foreground;
            background: $warning;
            &:hover { background: $warning-darken-2; }
            &.-active { background: $warning; }
        }
        &.-error {
            color: $button-color-foreground;
            background: $error;
            &:hover { background: $error-darken-1; }
            &.-active { background: $error; }
        }
    }
    """
