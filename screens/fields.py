"""The fields of the kiosk's forms: text, choice and yes/no, each with its refusal."""

from __future__ import annotations

import re
from typing import Any

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.content import Content
from textual.geometry import Size
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Checkbox, Input, Select

from kiosk.text import SAFE_INPUT, displayable
from screens.keyboard import PASTE_KEEP
from screens.widgets import Plain, Problem


class FieldNote(Plain):
    """A line under a field's label and control, as wide as the field: its hint.

    Textual's grid sizes an auto row by measuring each cell at the width of each column it
    spans, so a note spanning the narrow label column would count as many lines as it
    takes there. A note is measured at the field's width, the width it is shown at.
    """

    DEFAULT_CLASSES = "field-note"

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return super().get_content_height(
            container, viewport, max(width, container.width - self.styles.gutter.width)
        )


class FieldProblem(Problem, FieldNote):
    """A field's refusal, under it and as wide as it (see :class:`FieldNote`)."""

    DEFAULT_CLASSES = "problem field-note"


class Field(Widget):
    """A labelled control, and the place where a refusal of its value is shown.

    Its id is ``field-<name>``, so that a service's problem for ``<name>`` finds it. One
    grid, label then control, and the notes under both: a form shows dozens of fields, and
    a row container in each would double the widgets a tab lays out and draws.
    """

    DEFAULT_CSS = """
    Field {
        height: auto; margin-bottom: 1;
        layout: grid; grid-size: 2; grid-columns: 24 1fr; grid-rows: auto;
    }
    Field > .field-note { column-span: 2; }
    """

    def __init__(self, name: str, label: str, *, hint: str = "") -> None:
        super().__init__(id=f"field-{name}")
        self.field_name = name
        self.label = label
        self.hint = hint
        self._control: Widget | None = None

    def compose(self) -> ComposeResult:
        yield Plain(self.label, classes="field-label")
        yield self._made_control()
        if self.hint:
            yield FieldNote(self.hint, classes="field-note field-hint")
        yield FieldProblem(id=f"problem-{self.field_name}")

    def _made_control(self) -> Widget:
        self._control = self.make_control()
        return self._control

    def make_control(self) -> Widget:
        raise NotImplementedError

    @property
    def control(self) -> Widget:
        return self.query_one(f"#{self.field_name}")

    @property
    def value(self) -> Any:
        """What the control holds; before it is on screen (a form's tab mounted later, see
        screens/registration.py), what it will open with."""
        if self._control is None or not self._control.is_mounted:
            return self.opening_value
        return self.control_value(self._control)

    @property
    def opening_value(self) -> Any:
        raise NotImplementedError

    def control_value(self, control: Any) -> Any:
        raise NotImplementedError

    def show_problem(self, text: str) -> None:
        if not text and not self.invalid:
            return  # nothing to clear: a form clears all its fields at each step
        self.query_one(Problem).show(text)
        # Marked on the label and the box alone: a class on the field would restyle all
        # its widgets, and a form shows a dozen refusals at once.
        for marked in self.query(".field-label, Checkbox"):
            marked.set_class(bool(text), "-invalid")
        self.invalid = bool(text)
        self._refusal_shown = False

    invalid = False
    """Whether a refusal is shown at this field."""

    _refusal_shown = False

    def on_kiosk_input_refused(self, event: KioskInput.Refused) -> None:
        """A character or a paste refused: why, on the field's problem line, until the
        field's value changes."""
        event.stop()
        self.show_problem(event.text)
        self._refusal_shown = True

    def on_input_changed(self, event: Input.Changed) -> None:
        if self._refusal_shown:
            self.show_problem("")


class KioskInput(Input):
    """An input that says why it refuses a character or a paste, next to its field (the
    field's problem line, see :class:`Field`), not by the bell alone; a paste is cut at
    the field's length before anything else is done with it."""

    class Refused(Message):
        """A character or a paste refused, or a paste cut: ``text`` says so."""

        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    _refusal: tuple[str, dict[str, Any]] = ("form.refused_character", {})

    def _say(self, key: str, **params: Any) -> None:
        translate = getattr(self.app, "t", None)  # the app's language (LockedDownApp.t)
        self.post_message(self.Refused(translate(key, **params) if translate else key))

    def replace(self, text: str, start: int, end: int) -> None:
        value = self.value
        start, end = sorted((max(0, start), min(len(value), end)))
        if self.max_length and len(value) - (end - start) + len(text) > self.max_length:
            self._refusal = ("form.refused_full", {"maximum": self.max_length})
        else:
            self._refusal = ("form.refused_character", {})
        super().replace(text, start, end)

    def restricted(self) -> None:
        super().restricted()  # the bell, for whoever does not look at the field
        key, params = self._refusal
        self._say(key, **params)

    def _on_paste(self, event: events.Paste) -> None:
        event.stop()
        event.prevent_default()  # Input's own handler would take the whole paste again
        if not event.text:
            return
        maximum = self.max_length or PASTE_KEEP
        # Cut first, at the field's length: nothing longer is looked at, whatever was pasted.
        head = event.text[: maximum + 1].splitlines()
        line = head[0] if head else ""
        cut = len(line) > maximum
        line = line[:maximum]
        if re.fullmatch(SAFE_INPUT, line) is None:
            self.app.bell()
            self._say("form.paste_refused")
            return
        before = self.value
        self.replace(line, *self.selection)  # too long with what the field holds: refused
        if cut and self.value != before:
            self._say("form.paste_cut", maximum=maximum)


class SecretInput(KioskInput):
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
        return (SecretInput if self.password else KioskInput)(
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
    def opening_value(self) -> str:
        return displayable(self.initial)

    def control_value(self, control: Input) -> str:
        return control.value


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
        return Select(
            # Text, not Content: the list's type-to-search reads plain labels (never markup).
            [(Text(displayable(text)), value) for text, value in self.options],
            prompt=self.prompt,
            value=self.opening_value or Select.NULL,
            id=self.field_name,
            compact=True,
        )

    @property
    def opening_value(self) -> str:
        return self.initial if any(self.initial == value for _, value in self.options) else ""

    def control_value(self, control: Select) -> str:
        selected = control.value
        return "" if selected is Select.NULL else str(selected)


class TickBox(Checkbox):
    """A box that shows its state by its shape, « ✓ » or empty, not by colour alone."""

    @property
    def _button(self) -> Content:
        self.BUTTON_INNER = "✓" if self.value else " "
        return super()._button


class FlagField(Field):
    """A yes/no answer: a box to tick, and its label beside it, wrapped as long as it needs."""

    DEFAULT_CSS = """
    FlagField { grid-columns: auto 1fr; grid-gutter: 0 1; }
    """

    def __init__(self, name: str, label: str, *, value: bool = False) -> None:
        super().__init__(name, label)
        self.initial = value

    def compose(self) -> ComposeResult:
        yield self._made_control()
        yield Plain(self.label, classes="flag-label")
        yield FieldProblem(id=f"problem-{self.field_name}")

    def make_control(self) -> Widget:
        return TickBox("", self.initial, id=self.field_name, compact=True)

    def on_click(self, event) -> None:
        # The label is part of the answer: a click on it ticks the box too.
        if not isinstance(event.widget, Checkbox) and not self.disabled:
            self.query_one(Checkbox).toggle()

    @property
    def opening_value(self) -> bool:
        return self.initial

    def control_value(self, control: Checkbox) -> bool:
        return control.value
