"""The audit trail, as the exam office reads it: who saw or changed what, when (UTC)."""

from __future__ import annotations

from datetime import UTC

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding

from kiosk.console.views import AuditLine
from screens.console.base import ConsoleScreen
from screens.console.tables import PlainTable
from screens.widgets import Body, Button, Plain, Problem


class AuditScreen(ConsoleScreen):
    """The latest staff operations, the newest first."""

    BINDINGS = [Binding("escape", "back", "console.keys.back")]
    DEFAULT_CSS = "AuditScreen #trail { height: auto; max-height: 16; }"

    def compose(self) -> ComposeResult:
        yield from self.title_bar(self.t("console.audit_desk.title"))
        with Body(id="body"):
            yield Plain(self.t("console.audit_desk.intro"), classes="intro")
            yield Problem(id="form-problem")
            yield PlainTable(
                self.t("console.col.when_utc"),
                self.t("console.col.staff"),
                self.t("console.col.action"),
                self.t("console.col.subject"),
                self.t("console.col.detail"),
                id="trail",
            )
            yield Button(self.t("console.back"), id="back")
        yield from self.footer()

    def on_mount(self) -> None:
        self.call("trail", self.service.audit_trail, self.officer)

    def on_done_trail(self, lines: list[AuditLine]) -> None:
        table = self.query_one("#trail", PlainTable)
        table.fill(
            [
                (
                    str(n),
                    [
                        f"{line.at.astimezone(UTC):%Y-%m-%d %H:%M:%S}",
                        f"{line.staff} ({line.role})",
                        self.t(f"console.action.{line.action}"),
                        (line.subject or "")[:8],
                        line.detail,
                    ],
                )
                for n, line in enumerate(lines)
            ]
        )
        table.focus()

    @on(Button.Pressed, "#back")
    def action_back(self) -> None:
        if not self.busy:
            self.app.pop_screen()
