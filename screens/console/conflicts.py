"""Sync conflicts: two kiosks recorded the same person or e-mail, or a kiosk and the rectorat
changed the same registration; the exam office decides."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal

from kiosk import formatting
from kiosk.console.views import ConflictView, Difference
from kiosk.registration_form import FIELDS_BY_NAME, shown_answer
from screens.console.base import ConsoleScreen
from screens.console.tables import PlainTable
from screens.widgets import Body, Button, Plain, Problem


class ConflictsScreen(ConsoleScreen):
    """The open conflicts, oldest first; the selected one is kept or applied."""

    BINDINGS = [Binding("escape", "back", "console.keys.back")]
    DEFAULT_CSS = "ConflictsScreen #conflicts { height: auto; max-height: 12; margin-bottom: 1; }"

    def compose(self) -> ComposeResult:
        yield from self.title_bar(self.t("console.conflicts_desk.title"))
        with Body(id="body"):
            yield Plain(self.t("console.conflicts_desk.intro"), classes="intro")
            yield Plain("", id="notice", classes="notice")
            yield Problem(id="form-problem")
            yield Plain("", id="empty")
            yield PlainTable(
                self.t("console.col.kind"),
                self.t("console.col.kiosk"),
                self.t("console.col.when"),
                self.t("console.col.incoming"),
                self.t("console.col.existing"),
                id="conflicts",
            )
            with Horizontal(classes="buttons"):
                yield Button(self.t("console.conflicts_desk.keep"), id="keep", variant="primary")
                yield Button(self.t("console.conflicts_desk.apply"), id="apply", variant="warning")
                yield Button(self.t("console.back"), id="back")
        yield from self.footer()

    def on_mount(self) -> None:
        self.reload()

    def reload(self) -> None:
        self.call("list", self.service.conflicts, self.officer)

    def say(self, text: str) -> None:
        self.query_one("#notice", Plain).show(text)

    def on_done_list(self, conflicts: list[ConflictView]) -> None:
        zone, messages = self.service.session.zone, self.app.messages
        table = self.query_one("#conflicts", PlainTable)
        table.fill(
            [
                (
                    c.id,
                    [
                        self.t(f"console.kind.{c.kind}"),
                        c.kiosk,
                        formatting.instant(c.created_at, zone, messages),
                        self._shown(c.differences, "incoming") if c.differences else c.incoming,
                        self._shown(c.differences, "existing") if c.differences else c.existing,
                    ],
                )
                for c in conflicts
            ]
        )
        for button in self.query("#keep, #apply").results(Button):
            button.display = bool(conflicts)
        self.query_one("#empty", Plain).show(
            "" if conflicts else self.t("console.conflicts_desk.none")
        )
        table.display = bool(conflicts)
        if conflicts:
            table.focus()

    def _shown(self, differences: tuple[Difference, ...], side: str) -> str:
        """One side of a registration changed on both: its answers that differ, labelled."""
        session, messages = self.service.session, self.app.messages
        shown = []
        for difference in differences:
            value = getattr(difference, side)
            field = FIELDS_BY_NAME.get(difference.name)
            if field is not None:
                label = self.t(f"form.{field.name}.label")
                answer = shown_answer(field, {field.name: value}, session, messages)
            else:
                label = self.t("console.col.status")
                answer = self.t(f"console.status.{value}") if value else self.t("form.empty")
            shown.append(f"{label} : {answer}")
        return " · ".join(shown)

    def _selected(self) -> str | None:
        table = self.query_one("#conflicts", PlainTable)
        if not table.row_count:
            return None
        return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)

    @on(Button.Pressed, "#keep")
    def keep(self) -> None:
        selected = self._selected()
        if selected:
            self.call("keep", self.service.resolve_conflict, self.officer, selected, True)

    @on(Button.Pressed, "#apply")
    def apply(self) -> None:
        selected = self._selected()
        if selected:
            self.call("apply", self.service.resolve_conflict, self.officer, selected, False)

    def on_done_keep(self, _) -> None:
        self.reload()
        self.say(self.t("console.done.keep"))

    def on_done_apply(self, _) -> None:
        self.reload()
        self.say(self.t("console.done.apply"))

    @on(Button.Pressed, "#back")
    def action_back(self) -> None:
        if not self.busy:
            self.app.pop_screen()
