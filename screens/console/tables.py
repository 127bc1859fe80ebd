"""Tables of candidates' data: every cell is plain text, never markup."""

from __future__ import annotations

from rich.text import Text
from textual.binding import Binding
from textual.widgets import DataTable

from kiosk.text import displayable


def cell(value: object) -> Text:
    """A cell as typed by a candidate or a kiosk: shown as it is, control characters removed."""
    return Text(displayable("" if value is None else str(value)), no_wrap=True)


class PlainTable(DataTable, inherit_bindings=False):
    """A row-cursor table whose cells are :func:`cell`s; Enter selects the row."""

    BINDINGS = [
        Binding("enter", "select_cursor", show=False),
        Binding("up", "cursor_up", show=False),
        Binding("down", "cursor_down", show=False),
        Binding("pageup", "page_up", show=False),
        Binding("pagedown", "page_down", show=False),
        Binding("home", "scroll_top", show=False),
        Binding("end", "scroll_bottom", show=False),
    ]

    def __init__(self, *columns: str, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self._columns = columns

    def on_mount(self) -> None:
        for label in self._columns:
            self.add_column(cell(label))

    def fill(self, rows: list[tuple[str, list[object]]]) -> None:
        """Replace the rows: ``(key, cells)`` each."""
        self.clear()
        for key, values in rows:
            self.add_row(*(cell(v) for v in values), key=key)
