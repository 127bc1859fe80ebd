"""Start one app headless in this fresh interpreter; report when its first screen has rendered.

Run by path, never imported: ``python bench/_start_child.py kiosk DATA_DIR`` or
``python bench/_start_child.py bare``. Prints one JSON line on stdout.

Both apps go through exactly the same steps here, so the only difference between
them is the app:

* ``kiosk`` calls ``kiosk.runtime.entry.main(["--data-dir", DATA_DIR, "--session", "demo"])``
  as a kiosk started by the launcher (``KIOSK_LAUNCHED``), i.e. load_config,
  build_services, screens.app.build_app, ``.run()`` -- the code path of the kiosk that
  the ``kiosk`` command starts;
* ``bare`` builds a minimal App (one Static and a Footer) and calls ``.run()``.

``App.run`` is wrapped (for both) to run headless at a fixed size with an auto-pilot.
The auto-pilot is started once the app has mounted (by then the kiosk's ``on_mount``
has pushed WelcomeScreen) and asks the current screen for ``call_after_refresh``: the
callback runs after that screen has been mounted, has had its first ScreenResume,
has been laid out and has been rendered by the compositor (in headless mode Textual
skips only the final encoding of the frame into terminal escape codes). The callback
takes the time stamp and ru_maxrss, checks that the expected screen and widget are
there with a non-empty region, and exits the app.

Time stamps are CLOCK_MONOTONIC in nanoseconds, a system-wide clock, so the parent
can subtract its own stamp taken just before it spawned this process.
"""

import time

FIRST_STATEMENT_NS = time.clock_gettime_ns(time.CLOCK_MONOTONIC)

import os  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[0] = ROOT  # as `python -m bench` and pytest (pythonpath = ["."]) see the project
SIZE = (120, 40)
EXPECTED = {"kiosk": ("WelcomeScreen", "#sign-up"), "bare": ("Screen", "#hello")}

mode = sys.argv[1]
expected_screen, expected_widget = EXPECTED[mode]
result: dict = {"mode": mode, "first_statement_ns": FIRST_STATEMENT_NS}

from textual.app import App  # noqa: E402  (imported by both apps anyway)

_original_run = App.run


def _run(self, **kwargs):
    result["run_called_ns"] = time.clock_gettime_ns(time.CLOCK_MONOTONIC)

    async def probe(pilot) -> None:
        app = pilot.app
        screen = app.screen

        def rendered() -> None:
            result["rendered_ns"] = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
            result["maxrss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            current = app.screen
            result["screen"] = type(current).__name__
            try:
                region = current.query_one(expected_widget).region
                result["widget_region"] = [region.x, region.y, region.width, region.height]
                result["ok"] = result["screen"] == expected_screen and region.area > 0
            except Exception as error:  # reported to the parent, which refuses the run
                result["ok"] = False
                result["error"] = repr(error)
            app.exit()

        screen.call_after_refresh(rendered)

    kwargs.update(headless=True, size=SIZE, auto_pilot=probe)
    return _original_run(self, **kwargs)


App.run = _run

if mode == "kiosk":
    from kiosk.runtime.entry import main

    status = main(["--data-dir", sys.argv[2], "--session", "demo"])
else:
    from textual.widgets import Footer, Static

    class BareApp(App):
        def compose(self):
            yield Static("Hello", id="hello")
            yield Footer()

    BareApp().run()
    status = 0

import json  # noqa: E402  (only now, so that it is not counted as start-up)

result["status"] = status
result["modules"] = len(sys.modules)
sys.stdout.write(json.dumps(result) + "\n")
sys.stdout.flush()
sys.exit(0 if status == 0 and result.get("ok") else 1)
