"""The exam office's mail desk: each paper file received, scanned or typed, one after another."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Input

from kiosk.console.views import Candidate
from screens.console.base import ConsoleForm
from screens.console.tables import PlainTable, cell
from screens.fields import FormField
from screens.widgets import Button


class PaperDeskScreen(ConsoleForm):
    """A barcode scanner types the reference and Enter: the field is ready again at once."""

    TITLE_KEY = "console.paper_desk.title"
    INTRO_KEY = "console.paper_desk.intro"
    ENTER_PRESSES = {"code": "submit"}
    BINDINGS = [Binding("escape", "back", "console.keys.back")]
    DEFAULT_CSS = "PaperDeskScreen #received { height: auto; max-height: 10; margin-bottom: 1; }"

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def fields(self) -> ComposeResult:
        yield FormField("code", self.t("console.paper_desk.code"), max_length=40)
        yield PlainTable(
            self.t("console.col.reference"),
            self.t("console.col.number"),
            self.t("console.col.name"),
            self.t("console.col.paper"),
            id="received",
        )

    def buttons(self) -> ComposeResult:
        yield Button(self.t("console.paper_desk.submit"), id="submit", variant="primary")
        yield Button(self.t("console.back"), id="back")

    @on(Button.Pressed, "#submit")
    def submit(self) -> None:
        self.call("receive", self.service.receive_paper, self.officer, self.value("code"))

    @on(Button.Pressed, "#back")
    def back(self) -> None:
        self.action_back()

    def on_done_receive(self, outcome: tuple[Candidate, bool]) -> None:
        candidate, news = outcome
        name = f"{candidate.family_name} {candidate.given_names}"
        if news:
            self.count += 1
            said = self.t("console.paper_desk.received", name=name, reference=candidate.reference)
        else:
            status = self.t(f"console.paper_status.{candidate.paper_status or 'none'}")
            said = self.t(
                "console.paper_desk.already",
                status=status,
                name=name,
                reference=candidate.reference,
            )
        self.say(f"{said}\n{self.t('console.paper_desk.count', count=self.count)}")
        table = self.query_one("#received", PlainTable)
        if not self._seen(candidate):
            status = self.t(f"console.paper_status.{candidate.paper_status}")
            values = (candidate.reference, candidate.number or "", name, status)
            table.add_row(*(cell(v) for v in values), key=candidate.registration_id)
        code = self.query_one("#code", Input)
        code.value = ""
        code.focus()

    def _seen(self, candidate: Candidate) -> bool:
        table = self.query_one("#received", PlainTable)
        return candidate.registration_id in {key.value for key in table.rows}
