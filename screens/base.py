"""What every kiosk screen shares: its keys, its header, and the way it calls services.

Services may take a tenth of a second (argon2) or more (mail, PDF, sync), so a screen
never calls them on the event loop. ``call`` runs one in a worker thread and the outcome
comes back as a ``Done`` message, handled by ``on_done_<action>`` (success) or shown at
the fields (a refusal). While a call runs the screen is marked busy and its buttons
do nothing, so a double press cannot register twice.

A screen opens another by its name, ``self.app.open("login")`` (see screens/routes.py),
and the app reaches the screens through the hooks below (``say``, ``session_ending``,
``draft_kept``): no screen imports another, and the app imports none of them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.dom import DOMNode
from textual.message import Message
from textual.reactive import Reactive
from textual.screen import Screen
from textual.widget import Widget
from textual.worker import Worker, WorkerState

from kiosk.errors import Refused
from screens.key_bar import KeyBar
from screens.masthead import Masthead
from screens.widgets import Button, Plain, Problem

if TYPE_CHECKING:
    from screens.app import KioskApp
    from screens.fields import Field

log = logging.getLogger(__name__)


def translate_keys(node: DOMNode, t: Callable[..., str]) -> None:
    """Key descriptions in ``BINDINGS`` are message names; the footer shows their text.

    Rebuilt from the class's bindings each time, so that a change of language applies.
    """
    merged = type(node)._merged_bindings
    assert merged is not None  # Textual merges them as each class is defined
    bindings = merged.copy()
    for key, found in bindings.key_to_bindings.items():
        bindings.key_to_bindings[key] = [
            replace(b, description=t(b.description))
            if b.description.startswith(("keys.", "console.keys."))
            else b
            for b in found
        ]
    node._bindings = bindings


class KioskScreen(Screen, inherit_bindings=False):
    """A full screen of the kiosk, with the keys it declares and nothing else."""

    # Textual repaints the whole screen when its focus moves, though the move restyles
    # only the widgets left and reached (and their :focus-within ancestors), which redraw
    # themselves. On the registration form that repaint took up to 20 ms at every Tab, and
    # came on top of the layout when a tab change moves the focus.
    focused: Reactive[Widget | None] = Reactive(None, repaint=False)

    # Textual gives a new screen's focus to its first focusable widget, which here was the
    # body itself: its every widget was restyled as it took the focus, and again as the
    # screen's own choice took it away (22 ms as the sign-up form opened). The first
    # widget inside the body is restyled alone.
    AUTO_FOCUS = "Body *"

    # Priority: the focus moves as soon as the key arrives, so that what is typed right
    # after lands in the next field (a password never shows in the e-mail field).
    BINDINGS = [
        Binding("tab", "app.focus_next", show=False, priority=True),
        Binding("shift+tab", "app.focus_previous", show=False, priority=True),
        Binding("down", "app.focus_next", show=False),
        Binding("up", "app.focus_previous", show=False),
    ]

    class Done(Message):
        """The outcome of a service call made by ``KioskScreen.call``."""

        def __init__(
            self,
            action: str,
            value: Any = None,
            refused: Refused | None = None,
            failed: bool = False,
        ):
            super().__init__()
            self.action = action
            self.value = value
            self.refused = refused
            self.failed = failed

    app: KioskApp

    def __init__(self) -> None:
        super().__init__()
        translate_keys(self, self.t)

    @property
    def t(self) -> Callable[..., str]:
        return self.app.t

    @property
    def services(self):
        return self.app.services

    # -- drawn in the next frame ---------------------------------------------------------

    _waiting_to_draw = 0  # calls of draw_next_frame not drawn yet
    _focus_when_drawn: tuple[Widget, bool] | None = None  # the widget, and whether to scroll to it

    def on_mount(self) -> None:
        # A screen opened over another shows its title and keys in its first frame and
        # its body in the next: laying out, styling and drawing a whole screen in one step
        # of the event loop held the keys for 40-70 ms. The app's first screen is drawn at
        # once, for the kiosk's start-up is timed to its first frame.
        if self.app.screen_stack[:1] != [self]:
            self.draw_next_frame(*self._body())

    def _body(self) -> list[Widget]:
        # A Widget query: Textual's own parts of a screen on a terminal (its tooltip, its
        # notifications) are no Widget to CSS and stay out of the body. Nor are the kiosk's
        # buttons: no screen puts one directly under itself.
        return [
            child
            for child in self.query_children(Widget)
            if not isinstance(child, (KeyBar, Masthead))
        ]

    @property
    def drawing(self) -> bool:
        """Whether parts asked for by :meth:`draw_next_frame` are still to be drawn: the
        focus they will take is not given yet."""
        return self._waiting_to_draw > 0

    def draw_next_frame(self, *parts: Widget, at_most: int = 0) -> None:
        """Lay ``parts`` out in the coming frame and draw them in the ones after, in order,
        ``at_most`` a frame (0: all in the next), so that no single step of the event loop
        both lays out and draws, or draws too much. Until the last is drawn, the focus
        asked for waits (a hidden widget cannot take it)."""
        self._waiting_to_draw += 1
        for part in parts:
            part.visible = False
        self.call_after_refresh(self._draw, parts, at_most or len(parts))

    def _draw(self, parts: tuple[Widget, ...], at_most: int) -> None:
        for part in parts[:at_most]:
            part.visible = True
        if len(parts) > at_most:
            self.call_after_refresh(self._draw, parts[at_most:], at_most)
            return
        self._waiting_to_draw -= 1
        if self._waiting_to_draw:
            return
        wanted, self._focus_when_drawn = self._focus_when_drawn, None
        if wanted is not None and wanted[0].is_attached:
            self.set_focus(*wanted)
            return
        auto_focus = self.app.AUTO_FOCUS if self.AUTO_FOCUS is None else self.AUTO_FOCUS
        if auto_focus and self.focused is None:
            first = next((w for w in self.query(auto_focus) if w.focusable), None)
            if first is not None:
                self.set_focus(first)

    def set_focus(
        self, widget: Widget | None, scroll_visible: bool = True, from_app_focus: bool = False
    ) -> None:
        if widget is None:
            # No focus now: nor the one asked for while an earlier part was drawn (a tab
            # left at once would otherwise take it back once its successor is drawn).
            self._focus_when_drawn = None
        elif self._waiting_to_draw:
            self._focus_when_drawn = (widget, scroll_visible)  # see _draw
            return
        super().set_focus(widget, scroll_visible, from_app_focus)

    # -- what every screen shows --------------------------------------------------------

    def title_bar(self, title: str) -> ComposeResult:
        heading = self.t("app.banner", academie=self.services.session.academie_heading)
        yield Masthead(heading, self.app.sync_text, title)

    def footer(self) -> ComposeResult:
        yield KeyBar()

    def say(self, text: str) -> None:
        """Show a notice at the top of the screen (what just happened, what to do next)."""
        notice = self.query_one("#notice", Plain)
        notice.show(text)
        notice.display = bool(text)

    # -- what the app tells its screens -------------------------------------------------

    def session_ending(self) -> None:
        """The candidate is leaving (log out, walk-away): keep what they must find again."""

    def draft_kept(self) -> None:
        """The candidate's draft is in the store: what shows their standing may read it."""

    def shown_again(self) -> None:
        """The screen is on top again: what it shows may have changed meanwhile."""

    def on_screen_resume(self) -> None:
        # After the answer of a dialog that covered the screen, which Textual queues before
        # the dialog goes: a read started first would make the screen busy, and the
        # answer's call (a confirmed withdrawal, a file set aside) be refused.
        self.call_next(self.shown_again)

    # -- service calls ------------------------------------------------------------------

    def call(self, action: str, function: Callable[..., Any], *args: Any) -> None:
        """Run ``function(*args)`` in a worker; its outcome comes back as ``Done``."""
        if self.busy:
            return
        self.set_busy(True)
        self._run(action, function, args)

    busy = False
    """Whether a call runs: the screen's buttons do nothing until it is done."""

    _focused_before_busy: Widget | None = None

    def set_busy(self, busy: bool) -> None:
        # The rows of buttons carry the mark, not the screen: a class on the screen would
        # restyle every widget of a form, which held the registration form's save for
        # a tenth of a second.
        self.busy = busy
        if busy:
            self._focused_before_busy = self.focused
        for row in self.query(".buttons"):
            row.set_class(busy, "-busy")
        for button in self.query(Button):
            button.disabled = busy
        if not busy:
            # A button pressed lost the focus as it was disabled: it takes it back, unless
            # something else has it now (a field with a problem takes it after this).
            before, self._focused_before_busy = self._focused_before_busy, None
            if self.focused is None and before is not None and before.is_attached:
                self.set_focus(before)

    @work(thread=True, exit_on_error=False, group="service")
    def _run(self, action: str, function: Callable[..., Any], args: tuple[Any, ...]) -> None:
        with self.services.store.db.connection_context():
            try:
                value = function(*args)
            except Refused as refused:
                self.post_message(self.Done(action, refused=refused))
            except Exception as error:
                # A full or failing disk is the kiosk's trouble, not the program's: the
                # candidate is told so, and what they typed stays on the screen.
                from kiosk.store.database import storage_problem

                key = storage_problem(error)
                if key is None:
                    log.exception("service call %s failed", action)
                    self.post_message(self.Done(action, failed=True))
                else:
                    log.error("service call %s failed: %s", action, error)
                    self.post_message(self.Done(action, refused=Refused.one("", key)))
            else:
                self.post_message(self.Done(action, value=value))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A call that failed outside ``_run``'s own handling (the store's connection, say):
        the screen is free again, and the app logs it and tells the person."""
        if event.state is WorkerState.ERROR:
            if event.worker.group == "service":  # a read beside it leaves the call busy
                self.set_busy(False)
            self.app.worker_failed(event.worker)

    @on(Done)
    def _finish(self, message: Done) -> None:
        self.set_busy(False)
        self.clear_problems()
        if message.refused is not None:
            self.show_problems(message.refused)
        elif message.failed:
            self.show_form_problem(self.t(self.app.CALL_FAILED))
        else:
            handler = getattr(self, f"on_done_{message.action}", None)
            if handler is not None:
                handler(message.value)

    # -- problems -----------------------------------------------------------------------

    def clear_problems(self) -> None:
        for field in self.query(_field_class()):
            field.show_problem("")
        for problem in self.query("#form-problem").results(Problem):
            problem.show("")

    def show_form_problem(self, text: str) -> None:
        self.query_one("#form-problem", Problem).show(text)

    def show_problems(self, refused: Refused, *, focus: bool = True) -> None:
        """Each problem at its field, focus on the first; the rest at the top of the form."""
        first: Widget | None = None
        # One walk of the screen for all the problems: a form has dozens of fields.
        fields = {field.field_name: field for field in self.query(_field_class())}
        for name, problem in refused.problems.items():
            text = self.t(problem.key, **problem.params)
            field = fields.get(name) if name else None
            if field is None:
                self.show_form_problem(text)
                continue
            field.show_problem(text)
            first = first or field.control
        if first is not None and focus:
            first.focus()

    def value(self, name: str) -> Any:
        return self.query_one(f"#field-{name}", _field_class()).value


def _field_class() -> type[Field]:
    """The fields' base class, imported with the first form: not at start-up (Input, Select…)."""
    from screens.fields import Field

    return Field
