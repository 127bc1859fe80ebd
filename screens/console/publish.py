"""The exam office publishes a PDF for a candidate: a convocation, a relevé de notes…"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Input

from kiosk.console.views import Published
from screens.console.base import ConsoleForm
from screens.fields import FormField
from screens.widgets import Button

CODE_MAX = 40
TITLE_MAX = 120  # kiosk.rectorat.exam_office.TITLE_MAX: a longer title is cut there
PATH_MAX = 4096  # PATH_MAX of Linux


class PublishScreen(ConsoleForm):
    """The file's reference, the title, the PDF's path on this host; each refusal is said
    at its field and what was typed stays. Once published, the next file may be typed:
    the title stays, for a batch of convocations."""

    TITLE_KEY = "console.publish_desk.title"
    INTRO_KEY = "console.publish_desk.intro"
    BINDINGS = [Binding("escape", "back", "console.keys.back")]

    def fields(self) -> ComposeResult:
        yield FormField(
            "code",
            self.t("console.publish_desk.code"),
            max_length=CODE_MAX,
            hint=self.t("console.publish_desk.code_hint"),
        )
        yield FormField(
            "document_title",
            self.t("console.publish_desk.title_field"),
            max_length=TITLE_MAX,
            hint=self.t("console.publish_desk.title_hint"),
        )
        yield FormField(
            "path",
            self.t("console.publish_desk.path"),
            max_length=PATH_MAX,
            hint=self.t("console.publish_desk.path_hint"),
        )

    def buttons(self) -> ComposeResult:
        yield Button(self.t("console.publish_desk.submit"), id="submit", variant="warning")
        yield Button(self.t("console.back"), id="back")

    @on(Button.Pressed, "#submit")
    def submit(self) -> None:
        self.call(
            "publish",
            self.service.publish,
            self.officer,
            self.value("code"),
            self.value("document_title"),
            self.value("path"),
        )

    @on(Button.Pressed, "#back")
    def back(self) -> None:
        self.action_back()

    def on_done_publish(self, published: Published) -> None:
        said = self.t(
            "console.publish_desk.published",
            title=published.title,
            name=f"{published.family_name} {published.given_names}",
            reference=published.reference,
            size=max(1, round(published.size / 1024)),
        )
        told = self.t(f"console.publish_desk.{published.told}")
        self.say(f"{said}\n{told}")
        for name in ("code", "path"):
            self.query_one(f"#{name}", Input).value = ""
        self.query_one("#code", Input).focus()
