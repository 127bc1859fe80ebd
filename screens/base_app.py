"""What the kiosk and the staff console share as applications: the lockdown, the screens
by name, and what becomes of background work that fails.

The lockdown: the app owns every key (no inherited bindings, no command palette), reads the
terminal through the kiosk's driver (screens/keyboard.py: bounded pastes), runs
only the actions of ``ALLOWED_ACTIONS`` whatever asks for one (a key, a link, a message),
lets nothing copied reach the terminal's clipboard, and notes when someone last touched
the keyboard or the mouse, for ``look_for_idle`` to act on.

Screens open each other by name with ``open`` and ``switch_to`` (see screens/routes.py).

A worker that fails is written to the log (``kiosk.log``) with its traceback; when
someone waits for it, ``failure_message`` says what they are told.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from textual import events, work
from textual.app import App
from textual.worker import Worker, WorkerState

from kiosk.assets import asset
from kiosk.i18n import Messages
from screens import routes
from screens.base import KioskScreen, translate_keys
from screens.type_ahead import TypeAhead

if TYPE_CHECKING:
    from textual.await_complete import AwaitComplete
    from textual.driver import Driver
    from textual.screen import Screen
    from textual.widget import AwaitMount

    from kiosk.clock import Clock

log = logging.getLogger(__name__)

IDLE_CHECK = 1.0  # seconds between two looks at the last input
# What says that someone is at the keyboard or the mouse.
INPUT_EVENTS = (
    events.Key,
    events.MouseDown,
    events.MouseScrollDown,
    events.MouseScrollUp,
    events.Paste,
)
FAILURE_TIMEOUT = 20.0  # seconds: a notice of failure stays long enough to be read
# A full collection of the garbage collector walks every object the app holds (a form's
# hundreds of widgets and the lines drawn for them): 100 to 400 ms, on whatever key press
# it happens to fall. The young generations are collected as usual; a full collection
# waits until no one is at the terminal, or, while someone is, for a pause after minutes.
QUIET_FOR_COLLECTION = 2.0  # seconds without input before a full collection runs
IN_USE_DEFERRAL = 300.0  # seconds: someone at the terminal meets one at most this often
LONGEST_DEFERRAL = 900.0  # seconds: typing without a pause still gets one, memory stays bounded
NO_AUTOMATIC_FULL_COLLECTION = 1 << 30
# Seconds after the start when the screens' modules are imported, in a thread: the first
# screen is drawn by then, and the first key then opens its screen without importing it
# (the registration form's widgets alone take a tenth of a second to import).
READ_AHEAD_AFTER = 0.3
RELEASE_CHECK = 1 / 60  # seconds between two looks at whether held keys can go in again


def full_collection_now(due_for: float, quiet_for: float, in_use: bool) -> bool:
    """Whether a full collection due for ``due_for`` seconds runs now, nothing having been
    typed for ``quiet_for`` seconds, with someone at the terminal or not (``in_use``).

    Once the last person has gone, the collection finds their screens to free and keeps
    no one waiting. Someone who stays long meets one in a pause, every
    :data:`IN_USE_DEFERRAL` seconds at most; someone who never pauses, every
    :data:`LONGEST_DEFERRAL` seconds.
    """
    if due_for >= LONGEST_DEFERRAL:
        return True
    return quiet_for >= QUIET_FOR_COLLECTION and (not in_use or due_for >= IN_USE_DEFERRAL)


class LockedDownApp(App, inherit_bindings=False):
    """An app that owns every key, opens its screens by name, and logs failed workers."""

    CSS_PATH = str(asset("kiosk.tcss"))
    ENABLE_COMMAND_PALETTE = False
    # The App's own actions that anything may run; every other one is refused, and logged.
    ALLOWED_ACTIONS: ClassVar[frozenset[str]] = frozenset({"focus_next", "focus_previous"})
    REFUSED_LOG_LEVEL: ClassVar[int] = logging.WARNING
    # The screens this app opens by name: route → "module:Class".
    ROUTES: ClassVar[Mapping[str, str]] = {}
    # Copied text is kept inside the app, for pasting there (True), or not kept at all.
    CLIPBOARD_IN_APP: ClassVar[bool] = True
    # What a screen's call that failed tells the person waiting for it (a catalogue key).
    CALL_FAILED: ClassVar[str] = "app.failure"

    def __init__(self, language: str, clock: Clock) -> None:
        super().__init__()
        # Nothing on the screen moves: a tab's underline jumps to it and a scroll goes
        # straight to its place. Motion is no help at a public terminal, and drawing it
        # took twenty frames of each change of tab.
        self.animation_level = "none"
        self.messages = Messages(language)
        self.clock = clock
        self.last_input = clock.now()
        self._touched = time.monotonic()
        self._thresholds = gc.get_threshold()
        self._collection_due: float | None = None
        self._type_ahead: TypeAhead[events.Key, Screen[Any] | None] = TypeAhead()
        self._release_due = False
        translate_keys(self, self.t)

    def t(self, key: str, **params: Any) -> str:
        """The message ``key`` in the app's language."""
        return self.messages(key, **params)

    def get_driver_class(self) -> type[Driver]:
        """On a Linux terminal, Textual's driver with the kiosk's reading of the keyboard:
        pastes bounded and ended when left open (screens/keyboard.py)."""
        driver_class = super().get_driver_class()
        from textual.drivers.linux_driver import LinuxDriver

        if driver_class is LinuxDriver:
            from screens.keyboard import KioskDriver

            return KioskDriver
        return driver_class

    # -- lockdown -------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action not in self.ALLOWED_ACTIONS:
            log.log(self.REFUSED_LOG_LEVEL, "refused app action %r", action)
            return False
        return True

    def copy_to_clipboard(self, text: str) -> None:
        # Never to the terminal's clipboard: what is typed here stays here.
        self._clipboard = text if self.CLIPBOARD_IN_APP else ""

    def forget_clipboard(self) -> None:
        self._clipboard = ""

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, INPUT_EVENTS):
            self.last_input = self.clock.now()
            # The kiosk's clock may be frozen (tests) or shifted: a pause is real time.
            self._touched = time.monotonic()
        if isinstance(event, events.Key) and not event.is_forwarded:
            if not self._type_ahead.came_in(event, self.front, time.monotonic()):
                self._look_at_held_keys()
                return  # behind keys held before it, in the order they came
        await super().on_event(event)

    # -- keys typed ahead of their screen (screens/type_ahead.py) ----------------------------

    def on_key(self, event: events.Key) -> None:
        """A key back from the focus chain, before the bindings: one that no binding answers,
        sent to a screen now gone or come while the screen's focus waits, is held and sent
        in again once the screen can take it."""
        sent_to = self._type_ahead.sent_to(event)
        screen = self.front
        if not isinstance(screen, KioskScreen):
            return
        moved_on = sent_to is not None and sent_to is not screen
        if not (moved_on or self.focus_waits()):
            return
        bindings = screen.active_bindings
        if any(key in bindings for key in event.aliases):
            return  # answered now, by the screen or the app
        event.prevent_default()
        self._type_ahead.hold(events.Key(event.key, event.character), time.monotonic())
        self._look_at_held_keys()

    def focus_waits(self) -> bool:
        """Whether the screen in front is not drawn yet, the focus it gives not given yet."""
        screen = self.front
        return (
            isinstance(screen, KioskScreen)
            and screen.focused is None
            and (screen.drawing or not screen.is_mounted)
        )

    def _look_at_held_keys(self) -> None:
        if not self._release_due and self._type_ahead.holding:
            self._release_due = True
            self.set_timer(RELEASE_CHECK, self._release_held_keys)

    def _release_held_keys(self) -> None:
        self._release_due = False
        for key in self._type_ahead.release(not self.focus_waits(), time.monotonic()):
            self.post_message(key)
        self._look_at_held_keys()

    def on_mount(self) -> None:
        # Textual calls the on_mount of each class of the app: the subclass's runs too.
        self.set_interval(IDLE_CHECK, self.look_for_idle)
        young, middle, _ = self._thresholds
        gc.set_threshold(young, middle, NO_AUTOMATIC_FULL_COLLECTION)
        self.set_interval(IDLE_CHECK, self._collect_in_a_pause)
        self.set_timer(READ_AHEAD_AFTER, self._read_screens_ahead)

    @work(thread=True, exit_on_error=False, group="read-ahead")
    def _read_screens_ahead(self) -> None:
        for target in self.ROUTES.values():
            routes.load(target)

    def on_unmount(self) -> None:
        gc.set_threshold(*self._thresholds)

    def _collect_in_a_pause(self) -> None:
        """The full collection the collector would have made by now, once no one waits."""
        if gc.get_count()[2] < self._thresholds[2]:
            self._collection_due = None
            return
        now = time.monotonic()
        if self._collection_due is None:
            self._collection_due = now
        if full_collection_now(now - self._collection_due, now - self._touched, self.in_use()):
            gc.collect()
            self._collection_due = None

    def in_use(self) -> bool:
        """Whether someone is at the terminal: a screen is open over the first one."""
        return len(self.screen_stack) > 1

    def idle_for(self, seconds: float) -> bool:
        """Whether no one has touched the keyboard or the mouse for ``seconds``."""
        return self.clock.now() - self.last_input >= timedelta(seconds=seconds)

    def look_for_idle(self) -> None:
        """Every ``IDLE_CHECK`` seconds: what a long while without input means, if anything."""

    # -- screens by name ------------------------------------------------------------------

    def screen_class(self, route: str) -> type[Screen]:
        """The class of the screen named ``route``, imported on first use."""
        return routes.load(self.ROUTES[route])

    def make_screen(self, route: str, /, *args: Any, **kwargs: Any) -> Screen:
        return self.screen_class(route)(*args, **kwargs)

    def open(
        self,
        route: str,
        /,
        *args: Any,
        callback: Callable[[Any], Any] | None = None,
        **kwargs: Any,
    ) -> AwaitMount:
        """Push the screen named ``route``, made with ``args`` and ``kwargs``; ``callback``
        receives what it is dismissed with."""
        return self.push_screen(self.make_screen(route, *args, **kwargs), callback)

    def switch_to(self, route: str, /, *args: Any, **kwargs: Any) -> AwaitComplete:
        """Replace the current screen with the one named ``route``."""
        return self.switch_screen(self.make_screen(route, *args, **kwargs))

    @property
    def front(self) -> Screen[object] | None:
        """The screen in front; none before the first is pushed or after the last is closed.

        A worker's report can arrive at either moment, while the app starts or shuts down.
        """
        stack = self.screen_stack
        return stack[-1] if stack else None

    def showing(self, route: str) -> bool:
        """Whether the current screen is the one named ``route`` (imports nothing)."""
        screen_class = routes.loaded(self.ROUTES[route])
        return screen_class is not None and isinstance(self.front, screen_class)

    # -- failed workers -------------------------------------------------------------------

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The app's own workers; a screen hands over its own (the message does not bubble)."""
        if event.state is WorkerState.ERROR:
            self.worker_failed(event.worker)

    def worker_failed(self, worker: Worker[Any]) -> None:
        """Log the failure with its traceback; tell whoever waits for it, if anyone does."""
        # Name, group and node only: a worker's description shows its arguments (passwords).
        log.error(
            "worker %s (group %r, on %s) failed",
            worker.name,
            worker.group,
            type(worker.node).__name__,
            exc_info=worker.error,
        )
        key = self.failure_message(worker)
        if key is not None:
            self.notify(self.t(key), severity="error", timeout=FAILURE_TIMEOUT, markup=False)

    def failure_message(self, worker: Worker[Any]) -> str | None:
        """The catalogue key of what to tell the person waiting for ``worker``, if anyone."""
        return None
