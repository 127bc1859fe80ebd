"""Shared by the start-up measures: a prepared data dir, and cold starts of both apps.

Each start is a fresh interpreter running ``bench/_start_child.py`` (see its docstring
for what "rendered" means). The runs are sampled once per ``python -m bench`` and
shared by the measures that read them (start-up time, memory at the welcome screen).
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from bench import ROOT

CHILD = Path(__file__).resolve().parent / "_start_child.py"
RUNS = 11  # cold starts of each app (see bench/terminal_start.py's RUNS)
TIMEOUT = 60


def clock_ns() -> int:
    """The system-wide monotonic clock the child stamps with too."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


def child_env() -> dict[str, str]:
    """The environment without KIOSK_* settings, so the kiosk sees only the bench's options."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIOSK_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # runs after the warm-up read cached bytecode
    env.pop("TEXTUAL", None)  # no devtools, no debug features
    # Timed as the launcher starts it (and restarts it): the kiosk process itself.
    env["KIOSK_LAUNCHED"] = "1"
    return env


@cache
def data_dir() -> Path:
    """A temporary kiosk data dir, removed when the bench ends (the store is made on first
    start)."""
    path = Path(tempfile.mkdtemp(prefix="kiosk-bench-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def child_args(mode: str) -> list[str]:
    return [str(CHILD), mode, str(data_dir())] if mode == "kiosk" else [str(CHILD), mode]


@dataclass(frozen=True)
class Start:
    """One cold start, in milliseconds from just before the spawn."""

    mode: str
    interpreter_ms: float  # spawn -> first statement of the child (interpreter + site)
    setup_ms: float  # first statement -> App.run called (imports, config, services, app object)
    run_ms: float  # App.run called -> first screen rendered
    total_ms: float  # spawn -> first screen rendered
    maxrss_kib: int
    modules: int


def start_once(mode: str) -> Start:
    # Start-up is timed from the parent's stamp taken just before the spawn to the
    # child's stamp taken when its first screen has rendered, on the same system-wide
    # monotonic clock. Unlike a stamp at the child's first statement this includes
    # interpreter start-up and `site`; unlike wall time around the subprocess it
    # excludes the app's shutdown and the interpreter's teardown, which a user does
    # not wait for. Both apps are timed this same way.
    spawned = clock_ns()
    proc = subprocess.run(
        [sys.executable, *child_args(mode)],
        cwd=ROOT,
        env=child_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise RuntimeError(
            f"{mode} start failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    r = json.loads(lines[-1])
    ms = lambda a, b: (b - a) / 1e6  # noqa: E731
    return Start(
        mode=mode,
        interpreter_ms=ms(spawned, r["first_statement_ns"]),
        setup_ms=ms(r["first_statement_ns"], r["run_called_ns"]),
        run_ms=ms(r["run_called_ns"], r["rendered_ns"]),
        total_ms=ms(spawned, r["rendered_ns"]),
        maxrss_kib=r["maxrss_kib"],
        modules=r["modules"],
    )


@cache
def warm_up() -> None:
    """One discarded start of each app: it writes the bytecode caches and, for the
    kiosk, creates the SQLite store, so every measured kiosk start opens a warm
    (existing, migrated) store."""
    start_once("kiosk")
    start_once("bare")


@cache
def starts(runs: int = RUNS) -> dict[str, list[Start]]:
    """``runs`` cold starts of each app after the warm-up, interleaved so that drift
    (other work on this machine) hits both alike."""
    warm_up()
    samples: dict[str, list[Start]] = {"kiosk": [], "bare": []}
    for i in range(runs):
        for mode in ("kiosk", "bare") if i % 2 == 0 else ("bare", "kiosk"):
            samples[mode].append(start_once(mode))
    return samples


def median(values) -> float:
    return statistics.median(list(values))


def spread(values, unit: str = "ms") -> str:
    values = list(values)
    return f"min {min(values):.0f}, max {max(values):.0f} {unit}, n={len(values)}"
