"""Which pièces are missing from a paper file: one box per pièce the candidate must send."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding

from kiosk.console.views import CandidateFile
from screens.console.base import ConsoleForm
from screens.fields import FlagField
from screens.widgets import Button, Plain


class MissingPiecesScreen(ConsoleForm):
    """Dismissed with the ticked pièces' ids (at least one), or ``None`` on Back."""

    TITLE_KEY = "console.missing.title"
    BINDINGS = [Binding("escape", "back", "console.keys.back")]

    def __init__(self, file: CandidateFile) -> None:
        super().__init__(notice="")
        self.file = file

    def fields(self) -> ComposeResult:
        candidate = self.file.candidate
        yield Plain(
            self.t("console.missing.intro", name=f"{candidate.family_name} {candidate.given_names}")
        )
        already = set(candidate.missing)
        for piece in self.file.pieces:
            yield FlagField(
                f"piece-{piece}", self.t(f"pieces.{piece}.title"), value=piece in already
            )

    def buttons(self) -> ComposeResult:
        yield Button(self.t("console.missing.submit"), id="submit", variant="warning")
        yield Button(self.t("console.back"), id="back")

    def first_focus(self):
        return self.query("Checkbox").first()

    @on(Button.Pressed, "#submit")
    def submit(self) -> None:
        missing = [piece for piece in self.file.pieces if self.value(f"piece-{piece}")]
        if not missing:
            self.show_form_problem(self.t("console.missing_required"))
            return
        self.dismiss(missing)

    @on(Button.Pressed, "#back")
    def back(self) -> None:
        self.dismiss(None)

    def action_back(self) -> None:
        self.dismiss(None)
