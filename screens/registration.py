"""« M'inscrire »: the registration form, tab by tab, built from its specification.

Which fields apply, what they accept and what the pièces are is decided in
``kiosk.registration_form`` and ``kiosk.registrations``; this screen lays the fields
out, shows or hides them as answers change, keeps the draft, and saves.
"""

from __future__ import annotations

from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.lazy import Lazy
from textual.widgets import Checkbox, Input, Select, TabbedContent, TabPane

from kiosk.pieces import required_pieces
from kiosk.registration_form import (
    FIELDS,
    FIELDS_BY_NAME,
    TABS,
    Field,
    applies,
    check,
    choice_label,
    choices_of,
    offered,
    problems_by_tab,
    summary,
)
from screens.base import KioskScreen
from screens.fields import ChoiceField, FlagField, FormField
from screens.fields import Field as FieldWidget
from screens.widgets import Body, Button, Plain, Problem

DRAFT_INTERVAL = 15.0
# A tab's rows (its heading, its fields, its buttons) drawn in each frame once it is laid
# out: a whole tab drawn in one frame held the keys for up to 85 ms, 8 rows a frame up to
# 54 ms (each step lays the screen out again, and draws what it shows).
ROWS_A_FRAME = 4


class RegistrationScreen(KioskScreen):
    """The four tabs of the form; « Enregistrer » on the last one only."""

    BINDINGS = [
        Binding("f7", "previous", "keys.previous"),
        Binding("f8", "next", "keys.next"),
        Binding("escape", "back", "keys.back"),
        Binding("f1", "app.help", "keys.help"),
    ]
    # Each tab says where its cursor goes as it is shown (_focus_in): the rules' text
    # first, on the first one.
    AUTO_FOCUS = ""

    def __init__(
        self, values: dict[str, Any], locked: tuple[str, ...], registered: bool = False
    ) -> None:
        super().__init__()
        self.initial = values
        self.locked = locked
        self.registered = registered
        self._saved_draft = dict(values)
        self._fields: list[FieldWidget] = []  # every field, its tab mounted or not yet

    # -- layout -------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        self._fields = []
        yield from self.title_bar(self.t("form.title"))
        with TabbedContent(id="tabs"):
            for tab in TABS:
                with TabPane(self.t(f"form.tab_labels.{tab}"), id=f"tab-{tab}"):
                    body = Body(classes="tab-body")
                    # The first tab comes at once; the others are mounted one by one just
                    # after, so that no single step of the event loop builds the whole form
                    # (and restyles it when the screen shows). Until its tab is mounted, a
                    # field answers with the value it will open with.
                    with body if tab == TABS[0] else Lazy(body):
                        yield Plain(self.t(f"form.tabs.{tab}"), classes="tab-heading")
                        if tab == "modalites":
                            yield Plain(self.t("form.intro"), classes="intro")
                            yield Plain(self.t("form.rules.text"), id="rules")
                        if tab == "identification" and self.locked:
                            yield Plain(self.t("form.locked_note"), classes="notice")
                        if tab == "recapitulatif":
                            yield Problem(id="form-problem")
                            yield Vertical(id="summary")
                        for spec in FIELDS:
                            if spec.tab == tab and offered(spec, self.services.session):
                                field = self._widget(spec)
                                self._fields.append(field)
                                yield field
                    with Horizontal(classes="buttons"):
                        if tab != TABS[0]:
                            yield Button(self.t("form.previous"), classes="previous")
                        if tab != TABS[-1]:
                            yield Button(self.t("form.next"), classes="next", variant="primary")
                        else:
                            yield Button(self.t("form.save"), id="save", variant="success")
        yield from self.footer()

    def _widget(self, spec: Field) -> FieldWidget:
        label = self.t(f"form.{spec.name}.label")
        value = self.initial.get(spec.name)
        if spec.kind == "flag":
            widget: FieldWidget = FlagField(spec.name, label, value=value is True)
        elif spec.kind == "choice":
            widget = ChoiceField(
                spec.name,
                label,
                self._options(spec),
                value=str(value or ""),
                prompt=self.t("form.select_prompt"),
            )
        else:
            widget = FormField(spec.name, label, value=str(value or ""), max_length=spec.max_length)
        widget.disabled = spec.name in self.locked
        return widget

    def _options(self, spec: Field) -> list[tuple[str, str]]:
        if spec.options == "specialties":
            return [(s.label, s.code) for s in self.services.session.specialties]
        return [(self._choice_label(spec, c), c) for c in choices_of(spec, self.services.session)]

    def _choice_label(self, spec: Field, choice: str) -> str:
        return choice_label(spec, choice, self.app.messages)

    def on_mount(self) -> None:
        # What the form opened with is no draft: only what the candidate changes is.
        self._saved_draft = self.values()
        self._show_applicable()
        self.set_interval(DRAFT_INTERVAL, self._keep_draft)

    # -- values -------------------------------------------------------------------------

    def values(self) -> dict[str, Any]:
        """Every value as typed, applicable or not: a draft loses nothing."""
        return {field.field_name: field.value for field in self._fields}

    @on(Input.Changed)
    @on(Select.Changed)
    @on(Checkbox.Changed)
    def _answers_changed(self) -> None:
        self._show_applicable()

    def _show_applicable(self) -> None:
        values = self.values()
        session = self.services.session
        for field in self._fields:
            field.display = applies(FIELDS_BY_NAME[field.field_name], values, session)

    def session_ending(self) -> None:
        """Keep what was typed before the screen goes (walk-away, logout)."""
        self._keep_draft()

    def _keep_draft(self) -> None:
        values = self.values()
        if values != self._saved_draft and self.app.candidate is not None:
            self._saved_draft = values
            self.app.keep_draft(self.app.candidate, values)

    # -- tabs ---------------------------------------------------------------------------

    @property
    def tab(self) -> str:
        return self.query_one(TabbedContent).active.removeprefix("tab-")

    def _go(self, step: int) -> None:
        position = TABS.index(self.tab) + step
        if 0 <= position < len(TABS):
            self._keep_draft()
            # Showing a tab's dozens of fields in one step of the event loop held the keys
            # for up to 85 ms: it is laid out in one frame, then drawn a few rows a frame.
            # Until it is drawn no field has the focus: Textual would hand it from the
            # hidden tab's field to its neighbour there, and so bring that tab back.
            pane = self.query_one(f"#tab-{TABS[position]}", TabPane)
            rows = [*pane.query_one(".tab-body").children, *pane.query(".buttons")]
            self.set_focus(None)
            self.draw_next_frame(pane, *rows, at_most=ROWS_A_FRAME)
            self.query_one(TabbedContent).active = pane.id or ""

    @on(Button.Pressed, ".next")
    def action_next(self) -> None:
        """Move on once this tab's answers are acceptable; say what is not."""
        values = self.values()
        checked = check(values, self.services.session, kept=self._kept(values))
        here = {
            name: p for name, p in checked.problems.items() if name in self._fields_of(self.tab)
        }
        self.clear_problems()
        if here:
            from kiosk.errors import Refused

            self.show_problems(Refused(here))
            return
        self._go(+1)

    @on(Button.Pressed, ".previous")
    def action_previous(self) -> None:
        self._go(-1)

    def _kept(self, values: dict) -> dict:
        """The locked fields as stored: one that breaks a rule is the exam office's to fix."""
        return {name: values.get(name, "") for name in self.locked}

    def _fields_of(self, tab: str) -> set[str]:
        return {f.name for f in FIELDS if f.tab == tab}

    @on(TabbedContent.TabActivated)
    def _tab_shown(self, event: TabbedContent.TabActivated) -> None:
        if event.pane.id == "tab-recapitulatif":
            self._summarise()
        self._focus_in(event.pane)

    def _focus_in(self, pane: TabPane) -> None:
        if pane.id != f"tab-{self.tab}":
            return  # already left by a key pressed in between: the focus would bring it back
        focused = self.focused
        if focused is not None and pane in focused.ancestors:
            return  # a problem's field took the focus and brought its tab
        if pane.id == "tab-modalites":
            # The rules come first: the candidate reads them before ticking.
            pane.query_one(Body).focus()
            return
        first = next(
            (f.control for f in pane.query(FieldWidget) if f.display and not f.disabled), None
        )
        (first or pane.query(Button).last()).focus()

    def _summarise(self) -> None:
        """The récapitulatif: every applicable answer as text, then the pièces it calls for."""
        values = self.values()
        session = self.services.session
        checked = check(values, session, kept=self._kept(values))
        lines: list[tuple[str, bool]] = []  # each line, and whether it is a heading
        for heading, answers in summary(values, session, self.app.messages):
            lines.append((heading, True))
            lines.extend((f"{label} : {answer}", False) for label, answer in answers)
        lines.append((self.t("form.pieces_heading"), True))
        for piece in required_pieces(checked.answers, session):
            lines.append((f"– {self.t(f'pieces.{piece}.title')}", False))
        self._show_summary(lines)
        # What is still wrong is shown in its tab too, without taking the candidate there.
        self.clear_problems()
        if checked.problems:
            from kiosk.errors import Refused

            self.show_problems(Refused(checked.problems), focus=False)
        self.query_one("#form-problem", Problem).show(self._problem_summary(checked.problems))

    def _show_summary(self, lines: list[tuple[str, bool]]) -> None:
        """The récapitulatif's lines in the lines already there: the tab is shown again and
        again, and a new set of widgets each time held the screen for a while."""
        container = self.query_one("#summary", Vertical)
        there = list(container.query_children(Plain))
        for line, (text, heading) in zip(there, lines, strict=False):
            line.show(text)
            line.set_class(heading, "summary-heading")
        if len(there) > len(lines):
            container.remove_children(there[len(lines) :])
        else:
            container.mount_all(
                Plain(text, classes="summary-heading" if heading else None)
                for text, heading in lines[len(there) :]
            )

    def _problem_summary(self, problems: dict[str, Any]) -> str:
        tabs = [self.t(f"form.tabs.{tab}") for tab in problems_by_tab(problems) if tab in TABS]
        return self.t("form.fix_first", tabs=", ".join(tabs)) if tabs else ""

    # -- saving -------------------------------------------------------------------------

    @on(Button.Pressed, "#save")
    def save(self) -> None:
        values = self.values()
        self._saved_draft = values
        self.call("save", self.services.registrations.save, self.app.candidate, values)

    def show_problems(self, refused, *, focus: bool = True) -> None:
        super().show_problems(refused, focus=focus)
        tabs = problems_by_tab(refused.problems)
        if self.tab == "recapitulatif" and set(tabs) - {"recapitulatif"}:
            self.query_one("#form-problem", Problem).show(self._problem_summary(refused.problems))

    def on_done_save(self, registration) -> None:
        self.app.deliver_mail()
        key = "form.saved_change" if self.registered else "form.saved_first"
        self.app.back_home(self.t(key, version=registration.version))

    def action_back(self) -> None:
        if not self.busy:
            self._keep_draft()
            self.app.pop_screen()
