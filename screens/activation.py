"""Activate an account with the code received by e-mail, within 48 hours."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding

from kiosk.codes import CODE_LENGTH
from kiosk.store.models import Account
from screens.fields import FormField
from screens.form import FormScreen
from screens.widgets import Button


class ActivationScreen(FormScreen):
    """The code of the activation e-mail, typed in; a new code on request."""

    TITLE_KEY = "activation.title"
    INTRO_KEY = "activation.intro"
    BINDINGS = [Binding("f5", "resend", "keys.resend")]

    def __init__(self, email: str = "", notice: str = "") -> None:
        super().__init__(notice)
        self.email = email

    def fields(self) -> ComposeResult:
        yield FormField("email", self.t("activation.email"), value=self.email, max_length=254)
        yield FormField("code", self.t("activation.code"), max_length=CODE_LENGTH + 4)

    def buttons(self) -> ComposeResult:
        yield Button(self.t("activation.submit"), id="submit", variant="primary")
        yield Button(self.t("activation.resend"), id="resend")
        yield Button(self.t("common.back"), id="back")

    @on(Button.Pressed, "#submit")
    def submit(self) -> None:
        self.call(
            "activate", self.services.accounts.activate, self.value("email"), self.value("code")
        )

    @on(Button.Pressed, "#resend")
    def action_resend(self) -> None:
        self.call("resend", self.services.accounts.resend_activation, self.value("email"))

    @on(Button.Pressed, "#back")
    def back(self) -> None:
        self.action_back()

    def on_done_activate(self, account: Account) -> None:
        self.app.switch_to("login", email=account.email, notice=self.t("activation.done"))

    def on_done_resend(self, _: None) -> None:
        self.app.deliver_mail()
        self.say(self.t("activation.resent", email=self.value("email")))
