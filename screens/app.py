"""The kiosk application and the one factory that builds it, for the CLI and for tests."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from textual import events, work
from textual.app import App
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.theme import Theme

from kiosk.assets import asset
from kiosk.i18n import Messages
from kiosk.runtime.services import Services
from screens.base import translate_keys
from screens.widgets import Plain

if TYPE_CHECKING:
    from kiosk.store.models import Account
    from kiosk.sync.client import SyncReport

log = logging.getLogger(__name__)

MAIL_INTERVAL = 10.0
IDLE_CHECK = 1.0
DEFAULT_THEME = "textual-dark"
# Pure black and white with a yellow accent: the most legible pair, whatever the eyes.
HIGH_CONTRAST = Theme(
    name="kiosk-contrast",
    primary="#ffff00",
    secondary="#00ffff",
    accent="#ffff00",
    foreground="#ffffff",
    background="#000000",
    surface="#000000",
    panel="#1a1a1a",
    success="#00ff00",
    warning="#ffaa00",
    error="#ff6666",
    dark=True,
)
# The only actions of the App itself that anything may run: no quit, screenshot, suspend,
# command palette, theme or screen switching, whether from a key, a link or a message.
APP_ACTIONS = frozenset(
    {"help", "focus_next", "focus_previous", "toggle_contrast", "staff_exit", "language"}
)
# Signals a public terminal must shrug off. SIGTERM still stops it (systemd, the launcher),
# and so does SIGHUP: a kiosk whose terminal is gone has no one to serve.
IGNORED_SIGNALS = ("SIGINT", "SIGQUIT", "SIGTSTP", "SIGTTIN", "SIGTTOU")


class KioskApp(App, inherit_bindings=False):
    """The candidates' kiosk: owns every key; holds who is logged in, if anyone."""

    CSS_PATH = str(asset("kiosk.tcss"))
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [
        Binding("f1", "help", show=False),
        # Works everywhere; shown in the footers of the welcome and the help.
        Binding("f9", "toggle_contrast", show=False),
        # Known to staff, shown to no one.
        Binding("f12", "staff_exit", show=False),
    ]

    def __init__(
        self, services: Services, language: str | None = None, *, terminal: bool = False
    ) -> None:
        super().__init__()
        self.terminal = terminal
        self.services = services
        self.messages = Messages(language or services.config.language)
        self.candidate: Account | None = None
        self.title = self.t("app.title")
        self.last_input = services.clock.now()
        self._clipboard = ""
        # Known before the first round: alone, or offline until the rectorat answers.
        self.sync_text = self.t("sync.offline" if services.config.sync.url else "sync.alone")
        self.register_theme(HIGH_CONTRAST)
        self.theme = DEFAULT_THEME
        translate_keys(self, self.t)

    def t(self, key: str, **params: Any) -> str:
        """The message ``key`` in the kiosk's language."""
        return self.messages(key, **params)

    def get_default_screen(self) -> Screen:
        from screens.welcome import WelcomeScreen

        return WelcomeScreen()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action not in APP_ACTIONS:
            log.warning("refused app action %r", action)
            return False
        return True

    def copy_to_clipboard(self, text: str) -> None:
        # Kept inside the app: nothing typed at a public kiosk goes to the terminal's clipboard.
        self._clipboard = text

    def on_mount(self) -> None:
        if self.terminal:
            # After the driver has set its own handlers: job control is not for the public.
            import signal

            for name in IGNORED_SIGNALS:
                signal.signal(getattr(signal, name), signal.SIG_IGN)
        self.set_interval(self.services.config.purge_interval, self.purge)
        self.set_interval(MAIL_INTERVAL, self.deliver_mail)
        self.set_interval(IDLE_CHECK, self.look_for_walk_away)
        self.set_interval(self.services.config.sync.interval, self.sync)
        self.set_timer(0.5, self.sync)
        # The first purge opens the store, once the welcome screen is drawn.
        self.set_timer(0.2, self.purge)
        self.set_timer(1.0, self.deliver_mail)

    async def on_event(self, event: events.Event) -> None:
        if isinstance(
            event,
            (
                events.Key,
                events.MouseDown,
                events.MouseScrollDown,
                events.MouseScrollUp,
                events.Paste,
            ),
        ):
            self.last_input = self.services.clock.now()
        await super().on_event(event)

    def action_toggle_contrast(self) -> None:
        self.theme = DEFAULT_THEME if self.theme == HIGH_CONTRAST.name else HIGH_CONTRAST.name

    def action_staff_exit(self) -> None:
        from screens.staff_exit import StaffExitScreen

        if not isinstance(self.screen, StaffExitScreen):
            self.push_screen(StaffExitScreen())

    def action_language(self) -> None:
        """English on request, from the welcome screen; the next candidate starts in French again."""
        if self.candidate is None and len(self.screen_stack) == 1:
            self._speak("en" if self.messages.language == "fr" else "fr")

    def _speak(self, language: str) -> None:
        self.messages = Messages(language)
        self.title = self.t("app.title")
        translate_keys(self, self.t)
        welcome = self.screen_stack[0]
        translate_keys(welcome, self.t)
        welcome.refresh(recompose=True)
        self.refresh_bindings()

    # -- walk-away ----------------------------------------------------------------------

    def look_for_walk_away(self) -> None:
        """After ``idle_timeout`` without input, ask; without an answer, end the session."""
        from screens.walk_away import WalkAwayWarning

        config = self.services.config
        now = self.services.clock.now()
        idle = now - self.last_input >= timedelta(seconds=config.idle_timeout)
        someone_here = self.candidate is not None or len(self.screen_stack) > 1
        if not someone_here:
            if idle and (self.messages.language != config.language or self.theme != DEFAULT_THEME):
                # A choice made on the welcome by someone who left is not the next person's.
                self.end_session()
            return
        if not idle or isinstance(self.screen, WalkAwayWarning):
            return

        def answered(stayed: bool | None) -> None:
            if stayed:
                self.last_input = self.services.clock.now()
            else:
                self.end_session()

        self.push_screen(WalkAwayWarning(now + timedelta(seconds=config.idle_warning)), answered)

    def end_session(self) -> None:
        """Nothing of the last person stays reachable: their draft is kept for them, the rest goes."""
        from screens.registration import RegistrationScreen

        for screen in self.screen_stack:
            if isinstance(screen, RegistrationScreen):
                screen.keep_draft_now()
        if self.candidate is not None and self.candidate.origin == "rectorat":
            self.forget_borrowed(str(self.candidate.id))
        self.candidate = None
        self._clipboard = ""
        self.clear_notifications()
        self.back_to_welcome()
        self.theme = DEFAULT_THEME
        if self.messages.language != self.services.config.language:
            self._speak(self.services.config.language)
        self.last_input = self.services.clock.now()

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
        self.end_session()

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
    def keep_draft(self, account: Account, values: dict[str, Any]) -> None:
        """Keep the candidate's unsaved answers; an app worker, so leaving the form does not stop it.

        The account is given, not read when the worker runs: the session may have ended by then.
        """
        with self.services.db.connection_context():
            self.services.registrations.save_draft(account, values)
        self.post_message(self.DraftKept())

    class DraftKept(Message):
        """The draft is in the store: what shows the candidate's standing may read it now."""

    def on_kiosk_app_draft_kept(self) -> None:
        from screens.home import HomeScreen

        if isinstance(self.screen, HomeScreen):
            self.screen.refresh_standing()

    class SyncReported(Message):
        """A sync round is over; its report says how it went."""

        def __init__(self, report: SyncReport) -> None:
            super().__init__()
            self.report = report

    @work(thread=True, exit_on_error=False, group="sync", exclusive=True)
    def sync(self) -> None:
        with self.services.db.connection_context():
            report = self.services.sync.sync_once()
        self.post_message(self.SyncReported(report))

    def on_kiosk_app_sync_reported(self, message: SyncReported) -> None:
        report = message.report
        if report.error == "not configured":
            text = self.t("sync.alone")
        elif report.online:
            text = self.t("sync.online")
        else:
            text = self.t("sync.offline")
        if report.pending and report.error != "not configured":
            text = self.t("sync.pending", state=text, count=report.pending)
        self.sync_text = text
        for status in self.screen.query("#sync-status").results(Plain):
            status.show(text)

    @work(thread=True, exit_on_error=False, group="forget")
    def forget_borrowed(self, account_id: str) -> None:
        """A candidate from another kiosk leaves: their records go, once nothing waits to be sent."""
        with self.services.db.connection_context():
            self.services.sync.forget_borrowed(
                account_id, self.services.config.data_dir / "documents"
            )

    @work(thread=True, exit_on_error=False, group="purge", exclusive=True)
    def purge(self) -> None:
        with self.services.db.connection_context():
            deleted = self.services.accounts.purge_unactivated()
        if deleted:
            log.info("purged %d account(s) not activated within 48 h", deleted)


def build_app(
    services: Services, language: str | None = None, *, terminal: bool = False
) -> KioskApp:
    """The kiosk as the ``kiosk`` command runs it (``terminal``), and as the tests drive it."""
    return KioskApp(services, language, terminal=terminal)
