"""Address changes reported after the close: the exam office reports each on its file."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import DataTable

from kiosk import formatting
from kiosk.console.views import AddressChangeView, CandidateFile, address_lines
from kiosk.errors import Refused
from screens.console.base import ConsoleScreen
from screens.console.tables import PlainTable
from screens.widgets import Body, Button, Plain, Problem

# Refusals that say the selected change is no longer to be reported: its row goes.
STALE = frozenset({"console.address_gone", "console.address_applied"})


class AddressChangesScreen(ConsoleScreen):
    """The pending changes, oldest first; the selected one's old and new addresses below."""

    BINDINGS = [Binding("escape", "back", "console.keys.back")]
    DEFAULT_CSS = """
    AddressChangesScreen #changes { height: auto; max-height: 8; margin-bottom: 1; }
    AddressChangesScreen #change { height: auto; margin-bottom: 1; }
    AddressChangesScreen #change Plain { width: 1fr; margin-right: 2; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.changes: dict[str, AddressChangeView] = {}
        self.applying: str | None = None

    def compose(self) -> ComposeResult:
        yield from self.title_bar(self.t("console.addresses_desk.title"))
        with Body(id="body"):
            yield Plain(self.t("console.addresses_desk.intro"), classes="intro")
            yield Plain("", id="notice", classes="notice")
            yield Problem(id="form-problem")
            yield Plain("", id="empty")
            yield PlainTable(
                self.t("console.col.name"),
                self.t("console.col.reference"),
                self.t("console.col.number"),
                self.t("console.col.reported"),
                self.t("console.col.address"),
                id="changes",
            )
            with Horizontal(id="change"):
                yield Plain("", id="old")
                yield Plain("", id="new")
            with Horizontal(classes="buttons"):
                yield Button(self.t("console.addresses_desk.apply"), id="apply", variant="warning")
                yield Button(self.t("console.back"), id="back")
        yield from self.footer()

    def on_mount(self) -> None:
        self.query_one("#notice", Plain).display = False
        self.reload()

    def reload(self) -> None:
        self.call("list", self.service.address_changes, self.officer)

    def on_done_list(self, changes: list[AddressChangeView]) -> None:
        self.changes = {change.id: change for change in changes}
        local = self.service.session.local
        self.query_one("#changes", PlainTable).fill(
            [
                (
                    c.id,
                    [
                        f"{c.family_name} {c.given_names}",
                        c.reference,
                        c.number or "",
                        f"{local(c.reported_at):%d/%m/%Y %H:%M}",
                        f"{_one_line(c.old)} → {_one_line(c.new)}",
                    ],
                )
                for c in changes
            ]
        )
        self._shown()

    def _shown(self) -> None:
        """The table, its button and the selected change as the list now is."""
        table = self.query_one("#changes", PlainTable)
        some = bool(table.row_count)
        table.display = some
        self.query_one("#apply", Button).display = some
        self.query_one("#empty", Plain).show("" if some else self.t("console.addresses_desk.none"))
        self._describe(self._selected())
        if some:
            table.focus()

    @on(DataTable.RowHighlighted, "#changes")
    def highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._describe(str(event.row_key.value))

    def _describe(self, change_id: str | None) -> None:
        """The selected change's old and new addresses, side by side."""
        change = self.changes.get(change_id or "")
        self.query_one("#change").display = change is not None
        if change is None:
            return
        reported = formatting.instant(
            change.reported_at, self.service.session.zone, self.app.messages
        )
        old = [self.t("console.addresses_desk.old"), *self._address(change.old)]
        new = [self.t("console.addresses_desk.new", at=reported), *self._address(change.new)]
        self.query_one("#old", Plain).show("\n".join(old))
        self.query_one("#new", Plain).show("\n".join(new))

    def _address(self, address: dict[str, str]) -> list[str]:
        lines = [f"  {line}" for line in address_lines(address)]
        if address.get("phone"):
            lines.append(f"  {self.t('contact.phone', phone=address['phone'])}")
        return lines or [f"  {self.t('console.addresses_desk.no_address')}"]

    def _selected(self) -> str | None:
        table = self.query_one("#changes", PlainTable)
        if not table.row_count:
            return None
        return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)

    @on(Button.Pressed, "#apply")
    def apply(self) -> None:
        selected = self._selected()
        if selected:
            self.applying = selected
            self.call("apply", self.service.apply_address_change, self.officer, selected)

    def on_done_apply(self, file: CandidateFile) -> None:
        candidate = file.candidate
        self.say(
            self.t(
                "console.addresses_desk.applied",
                name=f"{candidate.family_name} {candidate.given_names}",
                reference=candidate.reference or "",
                version=file.version,
            )
        )
        self.reload()

    def show_problems(self, refused: Refused, *, focus: bool = True) -> None:
        super().show_problems(refused, focus=focus)
        # Applied from another desk meanwhile, or gone: said, and out of the list.
        stale = self.applying
        if stale and any(problem.key in STALE for problem in refused.problems.values()):
            table = self.query_one("#changes", PlainTable)
            if stale in {key.value for key in table.rows}:
                table.remove_row(stale)
            self.changes.pop(stale, None)
            self._shown()

    @on(Button.Pressed, "#back")
    def action_back(self) -> None:
        if not self.busy:
            self.app.pop_screen()


def _one_line(address: dict[str, str]) -> str:
    return ", ".join(address_lines(address)) or "—"
