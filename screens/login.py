"""Log in with e-mail and password."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding

from kiosk.errors import Refused
from kiosk.passwords import MAX_LENGTH
from kiosk.store.models import Account
from screens.fields import FormField
from screens.form import FormScreen
from screens.widgets import Button


class LoginScreen(FormScreen):
    """The way back to one's registration, for the whole session."""

    TITLE_KEY = "login.title"
    BINDINGS = [Binding("f6", "forgotten", "keys.forgotten")]

    def __init__(self, email: str = "", notice: str = "") -> None:
        super().__init__(notice)
        self.email = email

    def fields(self) -> ComposeResult:
        yield FormField("email", self.t("login.email"), value=self.email, max_length=254)
        yield FormField(
            "password", self.t("login.password"), password=True, max_length=MAX_LENGTH + 1
        )

    def buttons(self) -> ComposeResult:
        yield Button(self.t("login.submit"), id="submit", variant="primary")
        yield Button(self.t("login.forgotten"), id="forgotten")
        yield Button(self.t("common.back"), id="back")

    @on(Button.Pressed, "#submit")
    def submit(self) -> None:
        self.call(
            "log_in", self.services.accounts.log_in, self.value("email"), self.value("password")
        )

    @on(Button.Pressed, "#forgotten")
    def action_forgotten(self) -> None:
        self.app.open("password_reset", email=self.value("email"))

    @on(Button.Pressed, "#back")
    def back(self) -> None:
        self.action_back()

    def show_problems(self, refused: Refused, *, focus: bool = True) -> None:
        super().show_problems(refused, focus=focus)
        if "login.pending" in {p.key for p in refused.problems.values()}:
            self.app.switch_to(
                "activation", email=self.value("email"), notice=self.t("login.pending")
            )

    def on_done_log_in(self, account: Account) -> None:
        self.app.log_in(account)
