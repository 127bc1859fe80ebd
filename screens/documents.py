"""« Mes documents »: the confirmation and the pièces list, to print or to receive by e-mail."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button

from kiosk import formatting
from kiosk.documents import DocumentView
from kiosk.errors import Refused
from screens.base import KioskScreen
from screens.widgets import Body, Plain, Problem


class DocumentsScreen(KioskScreen):
    """The current document first, with what can be done with it; superseded ones below."""

    BINDINGS = [
        Binding("f5", "print", "keys.print"),
        Binding("f6", "email", "keys.email"),
        Binding("escape", "back", "keys.back"),
        Binding("f1", "app.help", "keys.help"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.current: DocumentView | None = None

    def compose(self) -> ComposeResult:
        yield from self.title_bar(self.t("documents.title"))
        with Body(id="body"):
            yield Plain(self.t("documents.intro"), classes="intro")
            yield Plain("", id="notice", classes="notice")
            yield Problem(id="form-problem")
            yield Plain(self.t("documents.making"), id="status")
            yield Vertical(id="list")
            with Horizontal(classes="buttons"):
                yield Button(self.t("documents.print"), id="print", variant="primary")
                yield Button(self.t("documents.email"), id="email")
                yield Button(self.t("common.back"), id="back")
        yield from self.footer()

    def on_mount(self) -> None:
        self.query_one("#notice", Plain).display = False
        self._offer(False)
        self.call("load", self.services.documents.documents, self.app.candidate)

    def _offer(self, available: bool) -> None:
        for name in ("#print", "#email"):
            self.query_one(name, Button).display = available
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("print", "email"):
            return self.current is not None
        return True

    def on_done_load(self, documents: list[DocumentView]) -> None:
        session = self.services.session
        messages = self.app.messages
        current = next((d for d in documents if not d.superseded), None)
        self.current = current
        lines = []
        for document in documents:
            key = "documents.superseded" if document.superseded else "documents.current"
            lines.append(
                Plain(
                    self.t(
                        key,
                        reference=document.reference,
                        version=document.registration_version,
                        created_at=formatting.instant(document.created_at, session.zone, messages),
                    ),
                    classes="superseded" if document.superseded else "current",
                )
            )
        self.query_one("#list", Vertical).mount_all(lines)
        if current is None:
            self.query_one("#status", Plain).show(
                self.t("documents.withdrawn" if documents else "documents.none")
            )
        else:
            self.query_one("#status", Plain).display = False
        self._offer(current is not None)
        self.query_one("#print" if current else "#back").focus()

    @on(Button.Pressed, "#print")
    def action_print(self) -> None:
        if self.current is not None:
            self.say(self.t("documents.printing"))
            self.call("print", self.services.documents.print, self.app.candidate, self.current.id)

    def on_done_print(self, job) -> None:
        if getattr(job, "path", None) is not None and getattr(job, "job_id", None) is None:
            self.say(self.t("documents.saved_to", path=str(job.path)))
        else:
            self.say(self.t("documents.printed"))

    def show_problems(self, refused: Refused, *, focus: bool = True) -> None:
        super().show_problems(refused, focus=focus)
        if any(problem.key.startswith("print.") for problem in refused.problems.values()):
            self.say(self.t("documents.other_ways"))
            self.query_one("#email").focus()

    @on(Button.Pressed, "#email")
    def action_email(self) -> None:
        if self.current is not None:
            self.call("email", self.services.documents.email, self.app.candidate, self.current.id)

    def on_done_email(self, _) -> None:
        self.app.deliver_mail()
        candidate = self.app.candidate
        self.say(self.t("documents.emailed", email=candidate.email if candidate else ""))

    @on(Button.Pressed, "#back")
    def action_back(self) -> None:
        if not self.busy:
            self.app.pop_screen()
