"""A whole candidate journey, key by key: how long the event loop is held at a time."""

from __future__ import annotations

import asyncio
import gc
import re
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench import Figure

ORDER = 12  # beside the start-up measures
GOAL_MS = 50.0  # a key is answered within a frame or so, even on a busy 2-core machine
SIZE = (120, 40)  # columns, rows: as the terminal start-up measure
ROUNDS = 3  # journeys, each by a new candidate on the same kiosk
TAB_ROUNDS = 2  # times the form is walked back and forth once it is filled
# Where a candidate stops to read (the mail, the rules, the récapitulatif, the documents),
# and the welcome between two candidates: long enough for what the kiosk takes for a pause
# in the typing (screens/base_app.py).
READING = 2.5
READING_STEP = "reading (no key pressed)"

FAMILY = "Dupré-Lefèvre"
GIVEN = "Élodie"
PASSWORD = "lune verte 42"
_CODE = re.compile(r"\b([A-Z0-9]{4}-[A-Z0-9]{4})\b")


@dataclass
class Callbacks:
    """Every callback the event loop ran, with the step of the journey it belongs to.

    Timed by wrapping ``asyncio.Handle._run``, the one place where the loop runs a
    callback: every task step, timer, future callback and ``call_soon`` goes through it
    (asyncio's debug mode times the same call for ``slow_callback_duration``). Debug mode
    is not used because it adds work of its own to every callback and every coroutine
    (origin tracking, thread checks), which would inflate what is being measured, and it
    only logs the slow ones: percentiles need them all.
    """

    step: str = "start"
    durations: list[tuple[float, str]] = field(default_factory=list)

    @contextmanager
    def recording(self) -> Iterator[None]:
        handle_run = asyncio.events.Handle._run
        clock = time.perf_counter
        durations = self.durations

        def timed_run(handle: asyncio.Handle) -> None:
            started = clock()
            try:
                handle_run(handle)
            finally:
                durations.append(((clock() - started) * 1000, self.step))

        asyncio.events.Handle._run = timed_run  # type: ignore[method-assign, assignment]
        try:
            yield
        finally:
            asyncio.events.Handle._run = handle_run  # type: ignore[method-assign]

    def longest(self, step: Callable[[str], bool] = lambda _: True) -> tuple[float, str]:
        return max(((ms, s) for ms, s in self.durations if step(s)), default=(0.0, ""))


async def _settle(pilot) -> None:
    """Until no worker runs, what they posted back has been handled, and what the screen
    was asked to draw is drawn."""
    from textual.worker import WorkerState

    app = pilot.app
    for _ in range(100):
        await app.workers.wait_for_complete()
        await pilot.pause()
        busy = any(w.state in (WorkerState.PENDING, WorkerState.RUNNING) for w in app.workers)
        # A screen still drawing a tab has not given its cursor yet: a key would be lost.
        screen = app.screen
        waiting = getattr(screen, "busy", False) or getattr(screen, "drawing", False)
        if not busy and not waiting:
            return
    raise RuntimeError("the kiosk never settled")


async def _mailed_code(services, email: str) -> str:
    """The code in the candidate's mail, as they read it once it has arrived: the kiosk's
    own delivery (a timer's worker) may have taken the mail and be sending it."""
    from kiosk.delivery.mail_transport import read_maildir

    for _ in range(100):
        with services.store.connection_context():
            services.mail.deliver_due()
        mails = [m for m in read_maildir(services.config.maildir_path) if m.to == email]
        found = _CODE.search(mails[-1].body) if mails else None
        if found is not None:
            return found.group(1)
        await asyncio.sleep(0.05)
    raise RuntimeError(f"no activation code mailed to {email}")


async def _journey(pilot, services, calls: Callbacks, n: int) -> None:
    """Sign-up, activation, login, the form across its tabs, save, print, log-out."""
    from textual.widgets import Select

    app = pilot.app
    email = f"candidat{n}@exemple.fr"

    async def keys(step: str, *pressed: str, settle: bool = True) -> None:
        calls.step = step
        await pilot.press(*pressed)
        if settle:
            await _settle(pilot)
        calls.step = "between"

    async def read() -> None:
        calls.step = READING_STEP
        await pilot.pause(READING)
        calls.step = "between"

    def where(expected: str) -> None:
        if type(app.screen).__name__ != expected:
            said = [str(p.render()) for p in app.screen.query(".problem") if p.display]
            raise RuntimeError(f"expected {expected}, on {type(app.screen).__name__}: {said}")

    await keys("welcome → sign-up", "c")
    where("SignUpScreen")
    await keys("sign-up: typing", *FAMILY, "enter", *GIVEN, "enter", *email, "enter", settle=False)
    await keys("sign-up: typing", *PASSWORD, "enter", settle=False)
    await keys("sign-up: submit", *PASSWORD, "enter")
    where("ActivationScreen")
    calls.step = READING_STEP  # the candidate reads the mail
    code = await _mailed_code(services, email)
    await read()
    await keys("activation: submit", *code, "enter")
    where("LoginScreen")
    await keys("login: submit", *PASSWORD, "enter")
    where("HomeScreen")

    await keys("home → form", "f2")
    where("RegistrationScreen")
    form = app.screen
    await read()
    await keys("form: modalités", "tab", "space", "tab", "space", settle=False)
    await keys("form: tab change", "f8")
    if form.tab != "identification":
        raise RuntimeError(f"the rules were not accepted: on {form.tab}")
    await keys("form: typing", "tab", "tab", "tab", "enter", "down", "enter", settle=False)
    await keys("form: typing", "tab", *"05/03/2002", "tab", *"Poitiers", "tab", settle=False)
    await keys("form: typing", "tab", "enter", "down", "enter", settle=False)
    await keys("form: typing", "tab", *"12 rue de la Paix", "tab", "tab", settle=False)
    await keys("form: typing", *"86000", "tab", *"Poitiers", "tab", "tab", settle=False)
    await keys("form: typing", *"06 12 34 56 78")
    await keys("form: tab change", "f8")
    if form.tab != "candidature":
        raise RuntimeError(f"identification refused: on {form.tab}")
    await keys("form: typing", "enter", "down", "enter", settle=False)
    calls.step = "form: typing"
    # A list of specialties is long: chosen as a mouse would, as the UI tests do.
    form.query_one("#specialty", Select).value = services.session.specialties[0].code
    form.query_one("#language").focus()
    await keys("form: typing", "enter", "down", "enter", settle=False)
    form.query_one("#jdc_situation", Select).value = "jdc_effectuee"
    await keys("form: tab change", "f8")
    if form.tab != "recapitulatif":
        raise RuntimeError(f"candidature refused: on {form.tab}")
    await read()
    for _ in range(TAB_ROUNDS):
        for _ in range(3):
            await keys("form: tab change", "f7")
        for _ in range(3):
            await keys("form: tab change", "f8")
    app.screen.query_one("#save").focus()
    await keys("form: save", "enter")
    where("HomeScreen")

    await keys("home → documents", "f4")
    where("DocumentsScreen")
    await read()
    await keys("documents: print", "f5")
    await keys("documents → home", "escape")
    await keys("log-out", "f10")
    where("WelcomeScreen")
    await read()  # the welcome, until the next candidate walks up


def run_journeys(rounds: int = ROUNDS) -> tuple[Callbacks, float]:
    """``rounds`` journeys on one kiosk (a new candidate each); the callbacks, and the
    seconds the whole took."""
    from kiosk.runtime.config import load_config
    from kiosk.runtime.services import build_services
    from screens.app import build_app

    calls = Callbacks()
    with tempfile.TemporaryDirectory(prefix="kiosk-bench-journey-") as folder:
        config = load_config(environ={}, overrides={"data_dir": Path(folder), "session": "demo"})
        services = build_services(config)
        try:
            app = build_app(services)
            # As the kiosk does before it runs the app (kiosk/runtime/kiosk_process.py).
            gc.freeze()

            async def drive() -> None:
                async with app.run_test(size=SIZE) as pilot:
                    await _settle(pilot)
                    # A kiosk waits on its welcome before its first candidate walks up.
                    await pilot.pause(READING)
                    await _settle(pilot)
                    calls.durations.clear()  # the first frame is the start-up measures' own
                    for n in range(rounds):
                        await _journey(pilot, services, calls, n)

            started = time.perf_counter()
            with calls.recording():
                asyncio.run(drive())
            took = time.perf_counter() - started
        finally:
            gc.unfreeze()
            services.close()
    return calls, took


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _keyed(step: str) -> bool:
    """A step where a key was pressed and the candidate waits for its answer."""
    return step != READING_STEP


def _worst(calls: Callbacks, count: int = 5) -> str:
    worst = sorted(((ms, s) for ms, s in calls.durations if _keyed(s)), reverse=True)[:count]
    return "; ".join(f"{ms:.0f} ms ({step})" for ms, step in worst)


def measure() -> list[Figure]:
    calls, took = run_journeys()
    durations = [ms for ms, step in calls.durations if _keyed(step)]
    longest, step = calls.longest(_keyed)
    tab, _ = calls.longest(lambda s: s == "form: tab change")
    reading, _ = calls.longest(lambda s: not _keyed(s))
    over = sum(ms > GOAL_MS for ms in durations)
    how = (
        f"{ROUNDS} scripted journeys (sign-up, activation, login, the form's 4 tabs filled"
        f" and walked back and forth, save, print, log-out) through Textual's Pilot,"
        f" headless at {SIZE[0]}x{SIZE[1]}, real argon2 costs, in {took:.1f} s"
    )
    return [
        Figure(
            "journey.callback_max",
            longest,
            "ms",
            goal=GOAL_MS,
            note=f"longest event-loop callback from a key press to its answer ({step}); {how};"
            f" worst: {_worst(calls)}",
        ),
        Figure(
            "journey.callback_p99",
            _percentile(durations, 99),
            "ms",
            goal=GOAL_MS,
            note=f"p99 of {len(durations)} callbacks; median"
            f" {statistics.median(durations):.2f} ms; {over} over {GOAL_MS:g} ms",
        ),
        Figure(
            "journey.tab_change_max",
            tab,
            "ms",
            goal=GOAL_MS,
            note="the longest callback while F7/F8 changes the registration form's tab"
            f" ({sum(s == 'form: tab change' for _, s in calls.durations)} callbacks)",
        ),
        Figure(
            "journey.callbacks_over_goal",
            over,
            "callbacks",
            note=f"callbacks over {GOAL_MS:g} ms after a key press, in the {ROUNDS} journeys",
        ),
        Figure(
            "journey.reading_callback_max",
            reading,
            "ms",
            note=f"longest callback while no key is pressed ({READING:g} s pauses: the"
            " candidate reads, or the welcome waits for the next one): the garbage collector's"
            " full collections wait for the welcome, or for a pause after minutes",
        ),
    ]


if __name__ == "__main__":  # python -m bench.journey: this measure alone, with its worst steps
    result, _ = run_journeys()
    by_step: dict[str, list[float]] = {}
    for ms, name in result.durations:
        by_step.setdefault(name, []).append(ms)
    for name, values in sorted(by_step.items(), key=lambda kv: -max(kv[1])):
        print(f"{max(values):8.1f} ms max  {len(values):6d} callbacks  {name}")
    print(_worst(result, 15))
