"""Small widgets shared by the screens."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.widgets import Input, Static


class Plain(Static):
    """Text shown as it is: never read as markup, whoever wrote it."""

    def __init__(self, text: str = "", *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(Content(text), markup=False, id=id, classes=classes)

    def show(self, text: str) -> None:
        self.update(Content(text))


class Problem(Plain):
    """A refusal in words, next to what it is about; hidden while there is none."""

    DEFAULT_CLASSES = "problem"

    def show(self, text: str) -> None:
        super().show(text)
        self.display = bool(text)

    def on_mount(self) -> None:
        self.display = False


class FormField(Vertical):
    """A label, its input, and the place where a refusal of that input is shown."""

    DEFAULT_CSS = """
    FormField { height: auto; margin-bottom: 1; }
    FormField > Horizontal { height: auto; }
    """

    def __init__(
        self, name: str, label: str, *, value: str = "", password: bool = False, max_length: int = 0, hint: str = ""
    ) -> None:
        super().__init__(id=f"field-{name}")
        self.field_name = name
        self.initial = value
        self.label = label
        self.password = password
        self.max_length = max_length
        self.hint = hint

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield Plain(self.label, classes="field-label")
            yield Input(
                self.initial,
                id=self.field_name,
                password=self.password,
                max_length=self.max_length,
                compact=True,
                select_on_focus=False,
            )
        if self.hint:
            yield Plain(self.hint, classes="field-hint")
        yield Problem(id=f"problem-{self.field_name}")

    @property
    def input(self) -> Input:
        return self.query_one(Input)

    @property
    def value(self) -> str:
        return self.input.value

    def show_problem(self, text: str) -> None:
        self.query_one(Problem).show(text)
        self.set_class(bool(text), "-invalid")


class Body(VerticalScroll, inherit_bindings=False):
    """A screen's scrolling body: the arrows move between fields, the page keys scroll."""

    BINDINGS = [
        Binding("pageup", "page_up", show=False),
        Binding("pagedown", "page_down", show=False),
    ]
