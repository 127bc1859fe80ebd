"""Help: how the kiosk works, the keys, and whom to ask."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal

from screens.base import KioskScreen
from screens.widgets import Body, Button, Plain


class HelpScreen(KioskScreen):
    """Open from every screen with F1; Escape goes back to where the candidate was."""

    BINDINGS = [
        Binding("escape", "back", "keys.back"),
        Binding("f9", "app.toggle_contrast", "keys.contrast"),
    ]

    def compose(self) -> ComposeResult:
        contact = self.services.session.contact
        yield from self.title_bar(self.t("help.title"))
        with Body(id="body"):
            yield Plain(self.t("help.how"), id="how")
            yield Plain(self.t("help.keys"), id="keys")
            yield Plain(
                self.t(
                    "help.contact",
                    contact="\n".join(
                        (*contact.postal_lines(), *contact.reach_lines(self.app.messages))
                    ),
                ),
                id="contact",
            )
            with Horizontal(classes="buttons"):
                yield Button(self.t("common.back"), id="back", variant="primary")
        yield from self.footer()

    def on_mount(self) -> None:
        self.query_one("#back").focus(scroll_visible=False)

    @on(Button.Pressed, "#back")
    def action_back(self) -> None:
        self.app.pop_screen()
