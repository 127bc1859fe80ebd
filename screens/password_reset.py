"""Forgotten password: a code by e-mail, then a new password."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.widget import Widget

from kiosk.codes import CODE_LENGTH
from kiosk.passwords import MAX_LENGTH, MIN_LENGTH
from kiosk.store.models import Account
from screens.fields import FormField
from screens.form import FormScreen
from screens.widgets import Button


class PasswordResetScreen(FormScreen):
    """Both steps on one screen: ask for a code, then type it with the new password."""

    TITLE_KEY = "reset.title"
    INTRO_KEY = "reset.intro"
    ENTER_PRESSES = {"email": "send"}

    def __init__(self, email: str = "") -> None:
        super().__init__()
        self.email = email

    def fields(self) -> ComposeResult:
        yield FormField("email", self.t("reset.email"), value=self.email, max_length=254)
        yield FormField("code", self.t("reset.code"), max_length=CODE_LENGTH + 4)
        yield FormField(
            "password",
            self.t("reset.password"),
            password=True,
            max_length=MAX_LENGTH + 1,
            hint=self.t("signup.password_hint", minimum=MIN_LENGTH),
        )
        yield FormField(
            "password_again",
            self.t("reset.password_again"),
            password=True,
            max_length=MAX_LENGTH + 1,
        )

    def buttons(self) -> ComposeResult:
        yield Button(self.t("reset.send"), id="send")
        yield Button(self.t("reset.submit"), id="submit", variant="primary")
        yield Button(self.t("common.back"), id="back")

    def first_focus(self) -> Widget:
        # With the address known, the first step is to ask for a code.
        return self.query_one("#send") if self.email else super().first_focus()

    @on(Button.Pressed, "#send")
    def send(self) -> None:
        self.call("request", self.services.accounts.request_reset, self.value("email"))

    @on(Button.Pressed, "#submit")
    def submit(self) -> None:
        self.call(
            "reset",
            self.services.accounts.reset_password,
            self.value("email"),
            self.value("code"),
            self.value("password"),
            self.value("password_again"),
        )

    @on(Button.Pressed, "#back")
    def back(self) -> None:
        self.action_back()

    def on_done_request(self, asked_everywhere: bool) -> None:
        self.app.deliver_mail()
        sent = "reset.sent" if asked_everywhere else "reset.sent_here_only"
        self.say(self.t(sent, email=self.value("email")))
        self.query_one("#field-code", FormField).input.focus()

    def on_done_reset(self, account: Account) -> None:
        self.app.switch_to("login", email=account.email, notice=self.t("reset.done"))
