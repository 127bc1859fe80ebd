"""The fields of the kiosk's forms: text, choice and yes/no, each with its refusal."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widget import Widget
from textual.widgets import Checkbox, Input, Select

from kiosk.text import SAFE_INPUT, displayable
from screens.widgets import Plain, Problem


class Field(Vertical):
    """A labelled control, and the place where a refusal of its value is shown.

    Its id is ``field-<name>``, so that a service's problem for ``<name>`` finds it.
    """

    DEFAULT_CSS = """
    Field { height: auto; margin-bottom: 1; }
    Field > Horizontal { height: auto; }
    """

    def __init__(self, name: str, label: str, *, hint: str = "") -> None:
        super().__init__(id=f"field-{name}")
        self.field_name = name
        self.label = label
        self.hint = hint

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield Plain(self.label, classes="field-label")
            yield self.make_control()
        if self.hint:
            yield Plain(self.hint, classes="field-hint")
        yield Problem(id=f"problem-{self.field_name}")

    def make_control(self) -> Widget:
        raise NotImplementedError

    @property
    def control(self) -> Widget:
        return self.query_one(f"#{self.field_name}")

    @property
    def value(self) -> Any:
        raise NotImplementedError

    def show_problem(self, text: str) -> None:
        self.query_one(Problem).show(text)
        self.set_class(bool(text), "-invalid")


class SecretInput(Input):
    """A password input: what is typed can be neither copied nor cut out of it."""

    def action_copy(self) -> None:
        pass

    def action_cut(self) -> None:
        pass


class FormField(Field):
    """A text field."""

    def __init__(
        self,
        name: str,
        label: str,
        *,
        value: str = "",
        password: bool = False,
        max_length: int = 0,
        hint: str = "",
    ) -> None:
        super().__init__(name, label, hint=hint)
        self.initial = value
        self.password = password
        self.max_length = max_length

    def make_control(self) -> Widget:
        return (SecretInput if self.password else Input)(
            displayable(self.initial),
            id=self.field_name,
            restrict=SAFE_INPUT,
            password=self.password,
            max_length=self.max_length,
            compact=True,
            select_on_focus=False,
        )

    @property
    def input(self) -> Input:
        return self.query_one(Input)

    @property
    def value(self) -> str:
        return self.input.value


class ChoiceField(Field):
    """One value among a list; the labels are shown as text, never as markup."""

    def __init__(
        self, name: str, label: str, options: list[tuple[str, str]], *, value: str = "", prompt: str
    ) -> None:
        super().__init__(name, label)
        self.options = options
        self.initial = value
        self.prompt = prompt

    def make_control(self) -> Widget:
        known = {value for _, value in self.options}
        return Select(
            # Text, not Content: the list's type-to-search reads plain labels (never markup).
            [(Text(displayable(text)), value) for text, value in self.options],
            prompt=self.prompt,
            value=self.initial if self.initial in known else Select.NULL,
            id=self.field_name,
            compact=True,
        )

    @property
    def value(self) -> str:
        selected = self.query_one(Select).value
        return "" if selected is Select.NULL else str(selected)


class TickBox(Checkbox):
    """A box that shows its state by its shape, « ✓ » or empty, not by colour alone."""

    @property
    def _button(self) -> Content:
        self.BUTTON_INNER = "✓" if self.value else " "
        return super()._button


class FlagField(Field):
    """A yes/no answer: a box to tick, and its label beside it, wrapped as long as it needs."""

    def __init__(self, name: str, label: str, *, value: bool = False) -> None:
        super().__init__(name, label)
        self.initial = value

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield TickBox("", self.initial, id=self.field_name, compact=True)
            yield Plain(self.label, classes="flag-label")
        yield Problem(id=f"problem-{self.field_name}")

    def on_click(self, event) -> None:
        # The label is part of the answer: a click on it ticks the box too.
        if not isinstance(event.widget, Checkbox) and not self.disabled:
            self.query_one(Checkbox).toggle()

    @property
    def value(self) -> bool:
        return self.query_one(Checkbox).value
