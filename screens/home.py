"""The candidate's home: their account, where their registration stands, and what comes next."""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.worker import Worker, WorkerState

from kiosk import formatting
from kiosk.candidate_actions import Action
from kiosk.exam_sessions import WindowState
from kiosk.registrations import Standing
from kiosk.store.models import Account
from screens.base import KioskScreen
from screens.dialogs import Confirm
from screens.widgets import Body, Button, Plain, Problem

# Each button, and the key action of the same name, stands for these actions of
# kiosk.candidate_actions.TABLE: the home shows what the candidate's cell offers.
OFFERS = {
    "register": (Action.REGISTER, Action.CHANGE),
    "documents": (Action.DOCUMENTS,),
    "address": (Action.ADDRESS,),
    "withdraw": (Action.WITHDRAW,),
}


class HomeScreen(KioskScreen):
    """What a logged-in candidate sees first, and comes back to after each step."""

    # How often the window's state is read from the clock: a home left open offers
    # « M'inscrire » from the minute the window opens, and no change once it closes.
    WINDOW_CHECK_SECONDS = 1.0

    BINDINGS = [
        Binding("f2", "register", "keys.register"),
        Binding("f3", "address", "keys.address"),
        Binding("f4", "documents", "keys.documents"),
        Binding("f1", "app.help", "keys.help"),
        Binding("f10", "log_out", "keys.log_out"),
    ]

    def __init__(self, notice: str = "") -> None:
        super().__init__()
        self.notice = notice
        self.standing: Standing | None = None

    def compose(self) -> ComposeResult:
        account = self.app.candidate
        assert account is not None  # the home is a logged-in candidate's
        yield from self.title_bar(self.t("home.title"))
        with Body(id="body"):
            yield Plain(self.t("home.greeting", name=account.display_name), id="greeting")
            yield Plain(self.t("home.account", email=account.email), id="account")
            yield Plain(self.notice, id="notice", classes="notice")
            yield Problem(id="form-problem")
            yield Plain(self._window_text(), id="window")
            yield Plain("", id="standing")
            yield Plain("", id="todo")
            with Horizontal(classes="buttons", id="home-buttons"):
                yield Button(self.t("home.register"), id="register", variant="primary")
                yield Button(self.t("home.documents"), id="documents")
                yield Button(self.t("home.address"), id="address")
                yield Button(self.t("home.withdraw"), id="withdraw", variant="error")
                yield Button(self.t("home.log_out"), id="log-out")
        yield from self.footer()

    def _window_text(self) -> str:
        session = self.services.session
        state = session.window_state(self.services.clock.now())
        messages = self.app.messages
        return self.t(
            f"home.window_{state.value}",
            exam=session.title,
            opens=formatting.instant(session.opens, session.zone, messages),
            closes=formatting.instant(session.closes, session.zone, messages),
        )

    def on_mount(self) -> None:
        self.query_one("#notice", Plain).display = bool(self.notice)
        for button in self.query(".buttons Button"):
            button.display = button.id == "log-out"
        self.query_one("#log-out").focus()
        self._window_state = self._state_now()
        self.set_interval(self.WINDOW_CHECK_SECONDS, self._check_window)

    def _state_now(self) -> WindowState:
        return self.services.session.window_state(self.services.clock.now())

    def _check_window(self) -> None:
        state = self._state_now()
        # Under another screen the home is brought up to date when it comes back.
        if state is not self._window_state and self.is_active:
            self._window_state = state
            self.refresh_standing()

    def shown_again(self) -> None:
        self._window_state = self._state_now()
        self.refresh_standing()

    def draft_kept(self) -> None:
        self.refresh_standing()

    class StandingRead(Message):
        """The candidate's standing, read beside whatever the screen's buttons started."""

        def __init__(self, standing: Standing) -> None:
            super().__init__()
            self.standing = standing

    reads = 0
    """Reads of the standing under way: each ends with its message, or its failure."""

    def refresh_standing(self) -> None:
        if self.app.candidate is not None:  # not while the session is ending under it
            self.reads += 1
            self._read_standing(self.app.candidate)

    @work(thread=True, exit_on_error=False, group="standing")
    def _read_standing(self, candidate: Account) -> None:
        # Not a call: a read that leaves the buttons as they are, so that a key pressed
        # meanwhile (F3, Échap) is answered rather than dropped as during a call.
        with self.services.store.db.connection_context():
            standing = self.services.registrations.standing(candidate)
        self.post_message(self.StandingRead(standing))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # Textual calls KioskScreen's handler too (it logs, and tells the candidate).
        if event.worker.group == "standing" and event.state is WorkerState.ERROR:
            self.reads -= 1

    def on_home_screen_standing_read(self, message: StandingRead) -> None:
        self.reads -= 1
        standing = message.standing
        self.standing = standing
        session = self.services.session
        messages = self.app.messages
        saved_at = (
            formatting.instant(standing.saved_at, session.zone, messages)
            if standing.saved_at
            else ""
        )
        self.query_one("#window", Plain).show(self._window_text())
        said = self.t(
            f"standing.{standing.state}",
            version=standing.version,
            saved_at=saved_at,
            missing=", ".join(self.t(f"pieces.{piece}.title") for piece in standing.missing),
        )
        if standing.version and standing.has_draft and Action.CHANGE in standing.actions:
            # Changes left on the form without « Enregistrer »: the saved version holds.
            said += " " + self.t("standing.unsaved_changes", version=standing.version)
        self.query_one("#standing", Plain).show(said)
        todo = ""
        if standing.to_do and standing.pieces:
            todo = (
                self.t(
                    "standing.to_do_by",
                    paper_deadline=formatting.day(standing.paper_deadline, messages),
                )
                if standing.paper_deadline
                else self.t("standing.to_do")
            )
        self.query_one("#todo", Plain).show(todo)
        self.query_one("#todo", Plain).display = bool(todo)
        self.query_one("#register", Button).label = self.t(
            "home.change" if Action.CHANGE in standing.actions else "home.register"
        )
        for button in self.query(".buttons Button"):
            button.display = button.id == "log-out" or self._offers(button.id or "")
        self.refresh_bindings()
        first = next((b for b in self.query(".buttons Button") if b.display), None)
        if first is not None:
            first.focus()

    # -- actions ------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The footer offers only what the candidate can do now."""
        if action in ("register", "address", "documents"):
            return self._offers(action)
        return True

    def _offers(self, button: str) -> bool:
        """Whether the candidate's cell, as last read, offers what this button does."""
        if self.standing is None:
            return False
        return any(action in self.standing.actions for action in OFFERS.get(button, ()))

    @on(Button.Pressed, "#register")
    def action_register(self) -> None:
        if self._offers("register"):
            registrations = self.services.registrations
            account = self.app.candidate
            self.call(
                "open_form",
                lambda: (registrations.form_values(account), registrations.locked_fields(account)),
            )

    def on_done_open_form(self, opened: tuple[dict, tuple[str, ...]]) -> None:
        values, locked = opened
        registered = self.standing is not None and Action.CHANGE in self.standing.actions
        self.app.open("registration", values, locked, registered)

    @on(Button.Pressed, "#address")
    def action_address(self) -> None:
        if self._offers("address"):
            registrations = self.services.registrations
            self.call("open_address", registrations.address_on_file, self.app.candidate)

    def on_done_open_address(self, values: dict) -> None:
        self.app.open("address", values)

    @on(Button.Pressed, "#documents")
    def action_documents(self) -> None:
        if self._offers("documents"):
            self.app.open("documents")

    @on(Button.Pressed, "#withdraw")
    def withdraw(self) -> None:
        if not self._offers("withdraw"):
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.call("withdraw", self.services.registrations.withdraw, self.app.candidate)

        self.app.push_screen(
            Confirm(
                self.t("home.withdraw_question"),
                self.t("home.withdraw_yes"),
                self.t("home.withdraw_no"),
            ),
            answered,
        )

    def on_done_withdraw(self, _) -> None:
        self.app.deliver_mail()
        self.say(self.t("home.withdrawn"))
        self.refresh_standing()

    @on(Button.Pressed, "#log-out")
    def action_log_out(self) -> None:
        self.app.log_out()
