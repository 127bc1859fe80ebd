"""Cold start to the welcome screen, against a bare Textual app started the same way."""

from __future__ import annotations

from bench import Figure
from bench._apps import RUNS, median, spread, starts

ORDER = 10
RATIO_GOAL = 1.3


def measure() -> list[Figure]:
    samples = starts()
    kiosk, bare = samples["kiosk"], samples["bare"]
    k_total, b_total = median(s.total_ms for s in kiosk), median(s.total_ms for s in bare)
    how = f"fresh interpreter, spawn -> first screen rendered (headless), median of {RUNS}"
    return [
        Figure(
            "start.kiosk.welcome",
            k_total,
            "ms",
            note=f"{how}; warm store (created by a discarded first start); "
            f"{spread(s.total_ms for s in kiosk)}",
        ),
        Figure(
            "start.bare_textual",
            b_total,
            "ms",
            note=f"App with one Static and a Footer; {spread(s.total_ms for s in bare)}",
        ),
        Figure(
            "start.ratio",
            k_total / b_total,
            "x",
            goal=RATIO_GOAL,
            note="median kiosk / median bare",
        ),
        Figure(
            "start.kiosk.interpreter",
            median(s.interpreter_ms for s in kiosk),
            "ms",
            note="spawn -> first statement (interpreter + site), same for both apps",
        ),
        Figure(
            "start.kiosk.setup",
            median(s.setup_ms for s in kiosk),
            "ms",
            note="first statement -> App.run(): textual.app, kiosk.runtime.kiosk_process, "
            "load_config, build_services, build_app",
        ),
        Figure(
            "start.bare.setup",
            median(s.setup_ms for s in bare),
            "ms",
            note="first statement -> App.run(): textual.app, textual.widgets",
        ),
        Figure(
            "start.kiosk.run_to_render",
            median(s.run_ms for s in kiosk),
            "ms",
            note="App.run() -> WelcomeScreen rendered (includes importing screens.welcome)",
        ),
        Figure("start.bare.run_to_render", median(s.run_ms for s in bare), "ms"),
        Figure(
            "start.kiosk.modules",
            kiosk[-1].modules,
            "modules",
            note=f"len(sys.modules) after the app exited; bare app: {bare[-1].modules}",
        ),
    ]
