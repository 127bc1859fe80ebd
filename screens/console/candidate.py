"""One candidate's file, and what the officer may do about it from here."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid

from kiosk import formatting
from kiosk.console.views import CandidateFile
from kiosk.delivery.printing import PrintJob
from screens.console.base import ConsoleScreen
from screens.dialogs import Confirm
from screens.widgets import Body, Button, Plain, Problem

# Button id → the console's task; the order in which they are offered.
ACTIONS = {
    "resend_code": "resend_code",
    "lift_delay": "lift_delay",
    "reprint": "reprint",
    "correct_identity": "correct_identity",
    "mark_complete": "mark_paper",
    "mark_incomplete": "mark_paper",
    "set_aside": "set_aside",
}


class CandidateScreen(ConsoleScreen):
    """The file of the candidate chosen in a search; each opening is in the audit trail."""

    BINDINGS = [
        Binding("escape", "back", "console.keys.back"),
        Binding("f10", "app.log_out", "console.keys.log_out"),
    ]
    DEFAULT_CSS = """
    CandidateScreen #details { margin-bottom: 1; }
    """

    def __init__(self, account_id: str) -> None:
        super().__init__()
        self.account_id = account_id
        self.file: CandidateFile | None = None
        self.current_task = ""

    def compose(self) -> ComposeResult:
        yield from self.title_bar(self.t("console.file.title"))
        with Body(id="body"):
            yield Plain("", id="notice", classes="notice")
            yield Problem(id="form-problem")
            yield Plain("", id="details")
            with Grid(classes="actions"):
                for button_id, task in ACTIONS.items():
                    if self.can(task):
                        yield Button(self.t(f"console.file.{button_id}"), id=button_id)
                yield Button(self.t("console.back"), id="back")
        yield from self.footer()

    def on_mount(self) -> None:
        self.query_one("#notice", Plain).display = False
        self.reload()

    def shown_again(self) -> None:
        self.reload()

    def reload(self) -> None:
        self.call("open_file", self.service.open_file, self.officer, self.account_id)

    def on_done_open_file(self, file: CandidateFile) -> None:
        self.file = file
        self.query_one("#details", Plain).show("\n".join(self.lines(file)))
        c = file.candidate
        registered = c.status == "registered"
        shown = {
            "resend_code": c.account_status == "pending",
            "lift_delay": bool(file.failed_logins or file.locked_until),
            "reprint": registered,
            "correct_identity": c.registration_id is not None,
            "mark_complete": registered and c.paper_status != "complete",
            "mark_incomplete": registered,
            "set_aside": registered,
        }
        for button_id, show in shown.items():
            for button in self.query(f"#{button_id}").results(Button):
                button.display = show

    def lines(self, file: CandidateFile) -> list[str]:
        t, c, zone = self.t, file.candidate, self.service.session.zone
        messages = self.app.messages

        def when(moment) -> str:
            return formatting.instant(moment, zone, messages)

        account = (
            t("console.file.account_pending", deadline=when(file.activation_deadline))
            if c.account_status == "pending"
            else t("console.file.account_active", date=when(file.activated_at))
            if file.activated_at
            else ""
        )
        if file.locked_until:
            login = t(
                "console.file.login_locked", count=file.failed_logins, until=when(file.locked_until)
            )
        elif file.failed_logins:
            login = t("console.file.login_failures", count=file.failed_logins)
        else:
            login = t("console.file.login_ok")
        lines = [
            f"{c.family_name} {c.given_names}",
            f"{t('console.file.email')} : {c.email}",
            f"{t('console.file.account')} : {account}",
            f"{t('console.file.login')} : {login}",
        ]
        if c.registration_id is None:
            return [*lines, f"{t('console.file.registration')} : {t('console.file.none')}"]
        answers = file.answers
        specialty = self.service.session.specialty(str(answers.get("specialty", "")))
        paper = t(f"console.paper_status.{c.paper_status or 'none'}")
        specialty_label = specialty.label if specialty else answers.get("specialty", "")
        lines += [
            f"{t('console.file.birth')} : "
            + t(
                "console.file.birth_line",
                date=formatting.numeric_date(c.birth_date),
                town=answers.get("birth_town", ""),
                country=f" ({answers['birth_country']})" if answers.get("birth_country") else "",
            ),
            f"{t('console.file.registration')} : "
            + t(
                "console.file.registration_line",
                status=t(f"console.status.{c.status}"),
                version=file.version,
                saved=when(c.saved_at),
            ),
            f"{t('console.file.reference')} : {c.reference}"
            + (f" · {t('console.file.number')} : {c.number}" if c.number else ""),
            f"{t('console.file.specialty')} : {specialty_label}",
            f"{t('console.file.paper')} : {paper}",
        ]
        if c.missing:
            lines.append(
                f"{t('console.file.missing')} : "
                + " ; ".join(t(f"pieces.{p}.title") for p in c.missing)
            )
        lines.append(f"{t('console.file.pieces')} :")
        lines += [f"  • {t(f'pieces.{p}.title')}" for p in file.pieces]
        return lines

    # -- tasks ----------------------------------------------------------------------------

    def run_task(self, button_id: str, *args) -> None:
        """The console's task behind ``button_id``, for this candidate; said, then the file read
        again."""
        if self.busy:
            return
        self.current_task = button_id  # calls run one at a time: the answer is this task's
        self.call(
            "task", getattr(self.service, ACTIONS[button_id]), self.officer, self.account_id, *args
        )

    def on_done_task(self, outcome: object) -> None:
        if isinstance(outcome, PrintJob) and outcome.path is not None:
            # No printer on this kiosk: the copy lies in its print folder.
            self.say(self.t("console.done.reprint_saved", path=str(outcome.path)))
        else:
            self.say(self.t(f"console.done.{self.current_task}"))
        self.reload()

    @on(Button.Pressed, "#resend_code, #lift_delay, #reprint")
    def plain_task(self, event: Button.Pressed) -> None:
        if event.button.id is not None:
            self.run_task(event.button.id)

    @on(Button.Pressed, "#mark_complete")
    def mark_complete(self) -> None:
        self.run_task("mark_complete", True)

    @on(Button.Pressed, "#correct_identity")
    def correct_identity(self) -> None:
        if self.file is not None:
            self.app.open("identity", self.file, callback=self._corrected)

    def _corrected(self, corrected: bool | None) -> None:
        if corrected:
            self.say(self.t("console.done.correct_identity"))

    @on(Button.Pressed, "#mark_incomplete")
    def mark_incomplete(self) -> None:
        if self.file is not None:
            self.app.open("missing_pieces", self.file, callback=self._missing_chosen)

    def _missing_chosen(self, missing: list[str] | None) -> None:
        if missing is not None:
            self.run_task("mark_incomplete", False, missing)

    @on(Button.Pressed, "#set_aside")
    def set_aside(self) -> None:
        if self.file is None:
            return
        name = f"{self.file.candidate.family_name} {self.file.candidate.given_names}"
        question = self.t("console.confirm_set_aside", name=name)
        self.app.push_screen(
            Confirm(question, self.t("console.yes_set_aside"), self.t("console.cancel")),
            self._set_aside_answered,
        )

    def _set_aside_answered(self, yes: bool | None) -> None:
        if yes:
            self.run_task("set_aside")

    @on(Button.Pressed, "#back")
    def action_back(self) -> None:
        if not self.busy:
            self.app.pop_screen()
