"""The kiosk application and the one factory that builds it, for the CLI and for tests."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from textual import work
from textual.app import App
from textual.binding import Binding
from textual.screen import Screen

from kiosk.assets import asset
from kiosk.i18n import Messages
from kiosk.services import Services

if TYPE_CHECKING:
    from kiosk.models import Account

log = logging.getLogger(__name__)

MAIL_INTERVAL = 10.0


class KioskApp(App, inherit_bindings=False):
    """The candidates' kiosk: owns every key; holds who is logged in, if anyone."""

    CSS_PATH = str(asset("kiosk.tcss"))
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [Binding("f1", "help", show=False)]

    def __init__(self, services: Services, language: str | None = None) -> None:
        super().__init__()
        self.services = services
        self.messages = Messages(language or services.config.language)
        self.candidate: Account | None = None
        self.title = self.t("app.title")

    def t(self, key: str, **params: Any) -> str:
        """The message ``key`` in the kiosk's language."""
        return self.messages(key, **params)

    def get_default_screen(self) -> Screen:
        from screens.welcome import WelcomeScreen

        return WelcomeScreen()

    def on_mount(self) -> None:
        self.set_interval(self.services.config.purge_interval, self.purge)
        self.set_interval(MAIL_INTERVAL, self.deliver_mail)
        # The first purge opens the store, once the welcome screen is drawn.
        self.set_timer(0.2, self.purge)
        self.set_timer(1.0, self.deliver_mail)

    def action_help(self) -> None:
        from screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    # -- who is at the kiosk ------------------------------------------------------------

    def log_in(self, account: Account) -> None:
        from screens.home import HomeScreen

        self.candidate = account
        self.back_to_welcome()
        self.push_screen(HomeScreen())

    def log_out(self) -> None:
        self.candidate = None
        self.back_to_welcome()

    def back_home(self, notice: str = "") -> None:
        """Back to the candidate's home, saying what just happened."""
        from screens.home import HomeScreen

        while len(self.screen_stack) > 1 and not isinstance(self.screen, HomeScreen):
            self.pop_screen()
        if isinstance(self.screen, HomeScreen):
            self.screen.say(notice)

    def back_to_welcome(self) -> None:
        while len(self.screen_stack) > 1:
            self.pop_screen()

    # -- background work ----------------------------------------------------------------

    @work(thread=True, exit_on_error=False, group="mail", exclusive=True)
    def deliver_mail(self) -> None:
        with self.services.db.connection_context():
            report = self.services.mail.deliver_due()
        if report.sent or report.retrying or report.failed:
            log.info("mail: %s", report)

    @work(thread=True, exit_on_error=False, group="draft")
    def keep_draft(self, values: dict[str, Any]) -> None:
        """Keep the candidate's unsaved answers; an app worker, so leaving the form does not stop it."""
        if self.candidate is None:
            return
        with self.services.db.connection_context():
            self.services.registrations.save_draft(self.candidate, values)

    @work(thread=True, exit_on_error=False, group="purge", exclusive=True)
    def purge(self) -> None:
        with self.services.db.connection_context():
            deleted = self.services.accounts.purge_unactivated()
        if deleted:
            log.info("purged %d account(s) not activated within 48 h", deleted)


def build_app(services: Services, language: str | None = None) -> KioskApp:
    """The kiosk as the ``kiosk`` command runs it, and as the tests drive it."""
    return KioskApp(services, language)
