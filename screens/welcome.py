"""The first screen: the exam session, its window, and the ways in."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal

from kiosk import formatting
from kiosk.exam_sessions import WindowState
from screens.base import KioskScreen
from screens.widgets import Body, Button, Plain


class WelcomeScreen(KioskScreen):
    """Where every candidate starts, and where the kiosk returns after each one."""

    # How often the window's state is read from the clock: a kiosk left on the welcome
    # says « ouvertes » from the minute the window opens, and « closes » from its close.
    WINDOW_CHECK_SECONDS = 1.0

    BINDINGS = [
        Binding("c", "sign_up", "keys.sign_up"),
        Binding("a", "activate", "keys.activate"),
        Binding("s", "log_in", "keys.log_in"),
        Binding("f1", "app.help", "keys.help"),
        Binding("f11", "app.language", "keys.language"),
        Binding("f9", "app.toggle_contrast", "keys.contrast"),
    ]

    def compose(self) -> ComposeResult:
        session = self.services.session
        yield from self.title_bar(session.title)
        with Body(id="body"):
            yield Plain(self.window_text(), id="window")
            yield Plain(self.t("welcome.steps"), id="steps")
            with Horizontal(classes="buttons"):
                yield Button(self.t("welcome.sign_up"), id="sign-up", variant="primary")
                yield Button(self.t("welcome.activate"), id="activate")
                yield Button(self.t("welcome.log_in"), id="log-in", variant="primary")
                yield Button(self.t("welcome.help"), id="help")
        yield from self.footer()

    def on_mount(self) -> None:
        self._window_state = self._state_now()
        self.set_interval(self.WINDOW_CHECK_SECONDS, self._check_window)

    def shown_again(self) -> None:
        # The window may have opened or closed while another candidate was here.
        if self.is_mounted:
            self._window_state = self._state_now()
            self.query_one("#window", Plain).show(self.window_text())

    def _state_now(self) -> WindowState:
        return self.services.session.window_state(self.services.clock.now())

    def _check_window(self) -> None:
        state = self._state_now()
        if state is not self._window_state:
            self._window_state = state
            self.query_one("#window", Plain).show(self.window_text())

    def window_text(self) -> str:
        session = self.services.session
        now = self.services.clock.now()
        state = session.window_state(now)
        opens = formatting.instant(session.opens, session.zone, self.app.messages)
        closes = formatting.instant(session.closes, session.zone, self.app.messages)
        window = self.t("welcome.window", opens=opens, closes=closes)
        status = {
            WindowState.NOT_YET_OPEN: self.t("welcome.not_yet_open", opens=opens),
            WindowState.OPEN: self.t("welcome.open", closes=closes),
            WindowState.CLOSED: self.t("welcome.closed", closes=closes),
        }[state]
        return f"{window}\n{status}"

    @on(Button.Pressed, "#sign-up")
    def action_sign_up(self) -> None:
        self.app.open("sign_up")

    @on(Button.Pressed, "#activate")
    def action_activate(self) -> None:
        self.app.open("activation")

    @on(Button.Pressed, "#log-in")
    def action_log_in(self) -> None:
        self.app.open("login")

    @on(Button.Pressed, "#help")
    def show_help(self) -> None:
        self.app.action_help()
