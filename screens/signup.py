"""Create an account: name, e-mail, password."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult

from kiosk import formatting
from kiosk.accounts import NAME_MAX, SignUp
from kiosk.passwords import MAX_LENGTH, MIN_LENGTH
from kiosk.store.models import Account
from screens.fields import FormField
from screens.form import FormScreen
from screens.widgets import Button


class SignUpScreen(FormScreen):
    """The first step of the note: a valid and unique e-mail address and a password."""

    TITLE_KEY = "signup.title"
    INTRO_KEY = "signup.intro"

    def fields(self) -> ComposeResult:
        yield FormField("family_name", self.t("signup.family_name"), max_length=NAME_MAX)
        yield FormField("given_names", self.t("signup.given_names"), max_length=NAME_MAX)
        yield FormField("email", self.t("signup.email"), max_length=254)
        # One character more than allowed, so that a too-long password is refused, not cut.
        yield FormField(
            "password",
            self.t("signup.password"),
            password=True,
            max_length=MAX_LENGTH + 1,
            hint=self.t("signup.password_hint", minimum=MIN_LENGTH),
        )
        yield FormField(
            "password_again",
            self.t("signup.password_again"),
            password=True,
            max_length=MAX_LENGTH + 1,
        )

    def buttons(self) -> ComposeResult:
        yield Button(self.t("signup.submit"), id="submit", variant="primary")
        yield Button(self.t("common.back"), id="back")

    @on(Button.Pressed, "#submit")
    def submit(self) -> None:
        form = SignUp(
            email=self.value("email"),
            family_name=self.value("family_name"),
            given_names=self.value("given_names"),
            password=self.value("password"),
            password_again=self.value("password_again"),
            # The language the candidate reads the kiosk in is the one their mails will use.
            language=self.app.messages.language,
        )
        self.call("sign_up", self.services.accounts.sign_up, form)

    @on(Button.Pressed, "#back")
    def back(self) -> None:
        self.action_back()

    def on_done_sign_up(self, account: Account) -> None:
        self.app.deliver_mail()
        session = self.services.session
        deadline = self.services.accounts.activation_deadline(account)
        notice = self.t(
            "signup.done",
            email=account.email,
            until=formatting.instant(deadline, session.zone, self.app.messages),
        )
        self.app.switch_to("activation", email=account.email, notice=notice)
