"""The candidate's home: their account, the session, and what comes next."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Button

from kiosk import formatting
from kiosk.exam_sessions import WindowState
from screens.base import KioskScreen
from screens.widgets import Body, Plain


class HomeScreen(KioskScreen):
    """What a logged-in candidate sees first."""

    BINDINGS = [
        Binding("f1", "app.help", "keys.help"),
        Binding("f10", "log_out", "keys.log_out"),
    ]

    def compose(self) -> ComposeResult:
        account = self.app.candidate
        session = self.services.session
        messages = self.app.messages
        yield from self.title_bar(self.t("home.title"))
        with Body(id="body"):
            yield Plain(self.t("home.greeting", name=account.display_name), id="greeting")
            yield Plain(self.t("home.account", email=account.email), id="account")
            state = session.window_state(self.services.clock.now())
            closes = formatting.instant(session.closes, session.zone, messages)
            opens = formatting.instant(session.opens, session.zone, messages)
            yield Plain(
                self.t(f"home.window_{state.value}", exam=session.title, opens=opens, closes=closes),
                id="window",
            )
            if state is not WindowState.CLOSED:
                yield Plain(
                    self.t("home.next", paper_deadline=formatting.day(session.paper_deadline, messages)),
                    id="next",
                )
            with Horizontal(classes="buttons"):
                yield Button(self.t("home.log_out"), id="log-out", variant="primary")
                yield Button(self.t("welcome.help"), id="help")
        yield from self.footer()

    def on_mount(self) -> None:
        self.query_one("#log-out").focus()

    @on(Button.Pressed, "#log-out")
    def action_log_out(self) -> None:
        self.app.log_out()

    @on(Button.Pressed, "#help")
    def show_help(self) -> None:
        self.app.action_help()
