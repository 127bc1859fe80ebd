"""The kiosk application and the one factory that builds it, for the CLI and for tests."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from textual import work
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.theme import Theme

from kiosk.i18n import Messages
from kiosk.runtime.services import Services
from screens import routes
from screens.base import KioskScreen, translate_keys
from screens.base_app import LockedDownApp
from screens.masthead import Masthead

if TYPE_CHECKING:
    from textual.worker import Worker

    from kiosk.store.models import Account
    from kiosk.sync.client import SyncReport

log = logging.getLogger(__name__)

MAIL_INTERVAL = 10.0
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


class KioskApp(LockedDownApp, inherit_bindings=False):
    """The candidates' kiosk: owns every key; holds who is logged in, if anyone."""

    ALLOWED_ACTIONS = APP_ACTIONS
    ROUTES = routes.KIOSK
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
        super().__init__(language or services.config.language, services.clock)
        self.terminal = terminal
        self.services = services
        self.candidate: Account | None = None
        self.title = self.t("app.title")
        self._sync_report: SyncReport | None = None  # the last round's, once there is one
        self.register_theme(HIGH_CONTRAST)
        self.theme = DEFAULT_THEME

    def get_default_screen(self) -> Screen:
        return self.make_screen("welcome")

    def on_mount(self) -> None:
        if self.terminal:
            # After the driver has set its own handlers: job control is not for the public.
            import signal

            for name in IGNORED_SIGNALS:
                signal.signal(getattr(signal, name), signal.SIG_IGN)
        self.set_interval(self.services.config.purge_interval, self.purge)
        self.set_interval(MAIL_INTERVAL, self.deliver_mail)
        self.set_interval(self.services.config.sync.interval, self.sync)
        self.set_timer(0.5, self.sync)
        # The first purge opens the store, once the welcome screen is drawn.
        self.set_timer(0.2, self.purge)
        self.set_timer(1.0, self.deliver_mail)

    def action_toggle_contrast(self) -> None:
        self.theme = DEFAULT_THEME if self.theme == HIGH_CONTRAST.name else HIGH_CONTRAST.name

    def action_staff_exit(self) -> None:
        if not self.showing("staff_exit"):
            self.open("staff_exit")

    def action_language(self) -> None:
        """English on request, from the welcome screen; the next candidate starts in French."""
        if self.candidate is None and not self.in_use():
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

    def look_for_idle(self) -> None:
        """After ``idle_timeout`` without input, ask; without an answer, end the session."""
        config = self.services.config
        now = self.services.clock.now()
        idle = self.idle_for(config.idle_timeout)
        someone_here = self.candidate is not None or self.in_use()
        if not someone_here:
            if idle and (self.messages.language != config.language or self.theme != DEFAULT_THEME):
                # A choice made on the welcome by someone who left is not the next person's.
                self.end_session()
            return
        if not idle or self.showing("walk_away"):
            return

        def answered(stayed: bool | None) -> None:
            if stayed:
                self.last_input = self.services.clock.now()
            else:
                self.end_session()

        self.open("walk_away", now + timedelta(seconds=config.idle_warning), callback=answered)

    def end_session(self) -> None:
        """Nothing of the last person stays reachable: their draft is kept, the rest goes."""
        for screen in self.screen_stack:
            if isinstance(screen, KioskScreen):
                screen.session_ending()
        if self.candidate is not None and self.candidate.origin == "rectorat":
            self.forget_borrowed(str(self.candidate.id))
        self.candidate = None
        self.forget_clipboard()
        self.clear_notifications()
        self.back_to_welcome()
        self.theme = DEFAULT_THEME
        if self.messages.language != self.services.config.language:
            self._speak(self.services.config.language)
        self.last_input = self.services.clock.now()

    def action_help(self) -> None:
        if not self.showing("help"):
            self.open("help")

    # -- who is at the kiosk ------------------------------------------------------------

    def log_in(self, account: Account) -> None:
        self.candidate = account
        self.back_to_welcome()
        self.open("home")

    def log_out(self) -> None:
        self.end_session()

    def back_home(self, notice: str = "") -> None:
        """Back to the candidate's home, saying what just happened."""
        while len(self.screen_stack) > 1 and not self.showing("home"):
            self.pop_screen()
        home = self.screen
        if self.showing("home") and isinstance(home, KioskScreen):
            home.say(notice)

    def back_to_welcome(self) -> None:
        while len(self.screen_stack) > 1:
            self.pop_screen()

    # -- background work ----------------------------------------------------------------

    @work(thread=True, exit_on_error=False, group="mail", exclusive=True)
    def deliver_mail(self) -> None:
        with self.services.store.db.connection_context():
            report = self.services.mail.deliver_due()
        if report.sent or report.retrying or report.failed:
            log.info("mail: %s", report)

    @work(thread=True, exit_on_error=False, group="draft")
    def keep_draft(self, account: Account, values: dict[str, Any]) -> None:
        """Keep the candidate's unsaved answers; an app worker: leaving the form does not stop it.

        The account is given, not read when the worker runs: the session may have ended by then.
        """
        with self.services.store.db.connection_context():
            self.services.registrations.save_draft(account, values)
        self.post_message(self.DraftKept())

    class DraftKept(Message):
        """The draft is in the store: what shows the candidate's standing may read it now."""

    def on_kiosk_app_draft_kept(self) -> None:
        screen = self.front
        if isinstance(screen, KioskScreen):
            screen.draft_kept()

    class SyncReported(Message):
        """A sync round is over; its report says how it went."""

        def __init__(self, report: SyncReport) -> None:
            super().__init__()
            self.report = report

    @work(thread=True, exit_on_error=False, group="sync", exclusive=True)
    def sync(self) -> None:
        with self.services.store.db.connection_context():
            report = self.services.sync.sync_once()
        self.post_message(self.SyncReported(report))

    def on_kiosk_app_sync_reported(self, message: SyncReported) -> None:
        self._sync_report = message.report
        screen = self.front
        if screen is not None:
            text = self.sync_text
            for masthead in screen.query(Masthead):
                masthead.show_status(text)

    @property
    def sync_text(self) -> str:
        """What the kiosk says of its sync, in the language of the moment, from the last
        round's report; before the first: alone, or offline until the rectorat answers."""
        report = self._sync_report
        if report is None:
            return self.t("sync.offline" if self.services.config.sync.url else "sync.alone")
        if report.error == "not configured":
            text = self.t("sync.alone")
        elif report.online:
            text = self.t("sync.online")
        else:
            text = self.t("sync.offline")
        if report.pending and report.error != "not configured":
            text = self.t("sync.pending", state=text, count=report.pending)
        if report.refused_count:
            text = self.t("sync.refused", state=text, count=report.refused_count)
        return text

    @work(thread=True, exit_on_error=False, group="forget")
    def forget_borrowed(self, account_id: str) -> None:
        """A candidate from another kiosk leaves: their records go once nothing waits to be sent."""
        with self.services.store.db.connection_context():
            self.services.sync.forget_borrowed(
                account_id, self.services.config.data_dir / "documents"
            )

    @work(thread=True, exit_on_error=False, group="purge", exclusive=True)
    def purge(self) -> None:
        # Only on the welcome screen: a login elsewhere under way elsewhere in the stack may
        # have borrowed an account that is not the session's yet.
        at_rest = self.candidate is None and len(self.screen_stack) == 1
        with self.services.store.db.connection_context():
            deleted = self.services.accounts.purge_unactivated()
            # Borrowed records that waited to be sent, or mailed, when their candidate left.
            forgotten = (
                self.services.sync.forget_idle_borrowed(self.services.config.data_dir / "documents")
                if at_rest
                else 0
            )
        if deleted:
            log.info("purged %d account(s) not activated within 48 h", deleted)
        if forgotten:
            log.info("forgot %d borrowed account(s) once nothing of theirs waited", forgotten)

    def failure_message(self, worker: Worker[Any]) -> str | None:
        if worker.group in ("service", "standing"):  # a screen's call, or the home's read
            return self.CALL_FAILED
        if worker.group == "draft" and self.candidate is not None:
            return "app.draft_failed"  # told to the one who typed it, not to the next person
        return None


def build_app(
    services: Services, language: str | None = None, *, terminal: bool = False
) -> KioskApp:
    """The kiosk as the ``kiosk`` command runs it (``terminal``), and as the tests drive it."""
    return KioskApp(services, language, terminal=terminal)
