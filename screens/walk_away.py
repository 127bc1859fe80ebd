"""The walk-away warning: the candidate seems gone; their session ends unless they answer."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from textual import events, on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen

from screens.widgets import Button, Plain

if TYPE_CHECKING:
    from screens.base_app import LockedDownApp


class WalkAwayWarning(ModalScreen[bool], inherit_bindings=False):
    """Counts down to ``deadline`` on the one clock; any key or the button keeps the session."""

    DEFAULT_CSS = """
    WalkAwayWarning { align: center middle; }
    WalkAwayWarning > Vertical {
        width: 60; height: auto; padding: 1 2;
        border: thick $warning; background: $surface;
    }
    WalkAwayWarning Button { margin-top: 1; }
    """
    app: LockedDownApp

    def __init__(self, deadline: datetime) -> None:
        super().__init__()
        self.deadline = deadline

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Plain(self.app.t("walk_away.question"), id="question")
            yield Plain("", id="countdown")
            yield Button(self.app.t("walk_away.stay"), id="stay", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#stay").focus()
        self.tick()
        self.set_interval(0.5, self.tick)

    def tick(self) -> None:
        left = max(0, int(-(-(self.deadline - self.app.clock.now()).total_seconds() // 1)))
        self.query_one("#countdown", Plain).show(self.app.t("walk_away.countdown", seconds=left))
        if left == 0:
            self.dismiss(False)

    @on(Button.Pressed, "#stay")
    def action_stay(self) -> None:
        self.dismiss(True)

    def on_key(self, event: events.Key) -> None:
        # Any key answers: the one pressed keeps the session and does nothing else.
        event.stop()
        event.prevent_default()
        self.action_stay()
