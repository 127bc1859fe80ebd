"""« Mes documents »: the confirmation and the pièces list, the notices of address changes
and the documents the exam office published, each to print or to receive by e-mail."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical

from kiosk import formatting
from kiosk.documents import DocumentView
from kiosk.errors import Refused
from screens.base import KioskScreen
from screens.widgets import Body, Button, Plain, Problem


class DocumentLine(Plain, can_focus=True):
    """One document that can be printed or mailed: focused or clicked, it is the one the
    buttons act on."""

    def __init__(self, text: str, document: DocumentView, *, classes: str) -> None:
        super().__init__(text, classes=classes)
        self.document = document

    def on_focus(self) -> None:
        self.screen.choose(self)  # type: ignore[attr-defined]

    def on_click(self) -> None:
        self.focus()


class DocumentsScreen(KioskScreen):
    """The current confirmation first, then the other documents, each one chosen by the
    arrows or a click, with what can be done with it; superseded versions below."""

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
        self.call("load", self._shelf, self.app.candidate)

    def _shelf(self, candidate) -> tuple[list[DocumentView], str | None]:
        """The documents, and the state of a registration whose confirmation is void."""
        registration = self.services.registrations.registration(candidate)
        return self.services.documents.documents(candidate), (
            registration.status if registration is not None else None
        )

    def _offer(self, available: bool) -> None:
        for name in ("#print", "#email"):
            self.query_one(name, Button).display = available
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("print", "email"):
            return self.current is not None
        return True

    shelf_read = False
    """Whether the documents were read: until then the status says they are being made."""

    def on_done_load(self, shelf: tuple[list[DocumentView], str | None]) -> None:
        self.shelf_read = True
        documents, status = shelf
        lines: list[Plain] = []
        for document in documents:
            text = self._line(document)
            if document.superseded:
                lines.append(Plain(text, classes="superseded"))
            else:
                kind = "current" if document.kind == "confirmation" else "other"
                lines.append(DocumentLine(text, document, classes=kind))
        self.query_one("#list", Vertical).mount_all(lines)
        chosen = next((line for line in lines if isinstance(line, DocumentLine)), None)
        if chosen is not None:
            self.choose(chosen)
        if not any(d.kind == "confirmation" and not d.superseded for d in documents):
            if not documents:
                key = "documents.none"
            else:
                key = "documents.set_aside" if status == "set_aside" else "documents.withdrawn"
            self.query_one("#status", Plain).show(self.t(key))
        else:
            self.query_one("#status", Plain).display = False
        self._offer(chosen is not None)
        self.query_one("#print" if chosen else "#back").focus()

    def _line(self, document: DocumentView) -> str:
        when = formatting.instant(
            document.created_at, self.services.session.zone, self.app.messages
        )
        if document.kind == "published":
            return self.t("documents.published", title=document.title, created_at=when)
        if document.kind == "address_notice":
            return self.t("documents.notice", created_at=when)
        key = "documents.superseded" if document.superseded else "documents.current"
        return self.t(
            key,
            reference=document.reference,
            version=document.registration_version,
            created_at=when,
        )

    def choose(self, line: DocumentLine) -> None:
        """The document the buttons and F5, F6 act on."""
        self.current = line.document
        for other in self.query(DocumentLine):
            other.set_class(other is line, "chosen")

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
        self._progress_over()
        super().show_problems(refused, focus=focus)
        if any(problem.key.startswith("print.") for problem in refused.problems.values()):
            self.say(self.t("documents.other_ways"))
            self.query_one("#email").focus()

    def show_form_problem(self, text: str) -> None:
        self._progress_over()
        super().show_form_problem(text)

    def _progress_over(self) -> None:
        """A call refused or failed: what was said while it ran (« Impression en cours… »,
        « Préparation de vos documents… ») no longer holds."""
        self.say("")
        if not self.shelf_read:
            self.query_one("#status", Plain).display = False

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
