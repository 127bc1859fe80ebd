"""The top of every screen: the banner, with what the kiosk says of itself at its right,
and the screen's title."""

from __future__ import annotations

from textual.content import Content
from textual.widget import Widget

from kiosk.text import displayable


class Masthead(Widget, can_focus=False):
    """Two lines drawn as one widget: the banner (the académie's heading, or the console's
    name; at its right the kiosk's sync status, or who is at the console), then the title.

    They were a row of two texts and a title, four widgets to lay out and style as each
    screen opens (about 5 ms of the kiosk's first frame). A text too long for its line
    ends in « … ». Text is shown as it is: never read as markup, and no control character
    reaches the terminal; a line break is a space.
    """

    COMPONENT_CLASSES = {"masthead--title"}

    DEFAULT_CSS = """
    Masthead {
        height: 2;
        width: 1fr;
        color: $text;
        background: $primary-darken-2;
        .masthead--title {
            color: $text;
            background: $primary;
            text-style: bold;
        }
    }
    """

    def __init__(self, banner: str, status: str, title: str) -> None:
        super().__init__()
        self._banner = _one_line(banner)
        self._status = _one_line(status)
        self._title = _one_line(title)

    @property
    def status(self) -> str:
        return self._status

    @property
    def title(self) -> str:
        return self._title

    def show_status(self, text: str) -> None:
        shown = _one_line(text)
        if shown != self._status:  # the same words again: nothing to draw
            self._status = shown
            self.refresh()

    def render(self) -> Content:
        # As the row of texts drew them: a column of margin at each end, two between.
        width = self.size.width
        status = Content(self._status).truncate(max(width - 4, 0), ellipsis=True)
        room = max(width - 4 - status.cell_length, 0)
        banner = Content(self._banner).truncate(room, ellipsis=True, pad=True)
        first = Content.assemble(" ", banner, "  ", status, " ")
        title = Content(self._title).truncate(max(width - 2, 0), ellipsis=True, pad=True)
        second = Content.assemble(" ", title, " ").stylize(self.get_visual_style("masthead--title"))
        return Content("\n").join([first, second])


def _one_line(text: str) -> str:
    # A session file's heading may break its line: each of the two lines is one line.
    return " ".join(displayable(text).split())
