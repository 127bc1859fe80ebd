"""The `kiosk` command to its welcome on a real terminal, against a bare Textual app."""

from __future__ import annotations

import contextlib
import os
import pty
import select
import shutil
import signal
import statistics
import struct
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from bench import ROOT, Figure
from bench._apps import data_dir, spread

ORDER = 11  # beside the in-process start-up (bench/startup.py, ORDER 10)
# Starts of each app, interleaved: on this shared 2-core machine the ratio of medians of 7
# moved between 1.18 and 1.45 from one run to the next, and of 11 between 1.14 and 1.45
# within an afternoon (one start's own noise: 115 to 181 ms to import Textual).
RUNS = 21
RATIO_GOAL = 1.3
SIZE = (40, 120)  # rows, columns
TIMEOUT = 60.0
# What each program shows once its first screen is drawn: the welcome's first button,
# the bare app's one text.
WELCOME = "Créer mon compte".encode()
BARE = b"Bare Textual app ready"


def _kiosk_command() -> list[str]:
    """The installed ``kiosk`` command (the launcher, which starts the kiosk in a child
    process), or ``python kiosk.py`` where it is not installed: the same code path."""
    installed = Path(sys.executable).with_name("kiosk")
    command = [str(installed)] if installed.exists() else [sys.executable, "kiosk.py"]
    return [*command, "--data-dir", str(data_dir()), "--session", "demo"]


PROGRAMS = {
    "kiosk": (_kiosk_command, WELCOME),
    "bare": (lambda: [sys.executable, str(ROOT / "bench" / "_bare_app.py")], BARE),
}


def _environment() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("KIOSK_", "TEXTUAL", "COLUMNS", "LINES"))
    }
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["TERM"] = "xterm-256color"
    return env


PR_SET_CHILD_SUBREAPER = 36  # linux/prctl.h


@contextlib.contextmanager
def _adopting_orphans() -> Iterator[None]:
    """Make this process the parent of what a program leaves behind: a kiosk whose
    launcher was ended is reparented here, not to init, and can be waited for."""
    import ctypes

    prctl = ctypes.CDLL(None, use_errno=True).prctl
    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    try:
        yield
    finally:
        prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


def _end(pid: int) -> None:
    """End the program started on the terminal (its process group: the launcher and
    the kiosk) and wait until every process of it is gone: a kiosk still ending beside
    the next start would slow it down."""
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                os.waitpid(-pid, os.WNOHANG)  # any process of the group, adopted ones too
            except ChildProcessError:  # none is left
                return
            time.sleep(0.005)
    with contextlib.suppress(ChildProcessError):
        while True:
            os.waitpid(-pid, 0)


def start_once(mode: str) -> float:
    """Milliseconds from the fork of a terminal's program to its first screen on the
    terminal: the moment the terminal receives the text that screen shows."""
    command, marker = PROGRAMS[mode]
    argv, env = command(), _environment()
    import fcntl
    import termios

    started = time.perf_counter()
    pid, master = pty.fork()
    if pid == 0:  # the program, on the terminal's side (its own session and group)
        try:
            rows, columns = SIZE
            fcntl.ioctl(1, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
            os.chdir(ROOT)
            os.execve(argv[0], argv, env)
        finally:
            os._exit(127)
    seen = b""
    try:
        deadline = started + TIMEOUT
        while True:
            left = deadline - time.perf_counter()
            if left <= 0:
                raise RuntimeError(f"{mode}: no first screen after {TIMEOUT:g} s: {seen[-500:]!r}")
            ready, _, _ = select.select([master], [], [], left)
            if not ready:
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the program ended
                chunk = b""
            if not chunk:
                raise RuntimeError(f"{mode} ended before its first screen: {seen[-2000:]!r}")
            seen = seen[-len(marker) :] + chunk
            if marker in seen:
                return (time.perf_counter() - started) * 1000
    finally:
        _end(pid)
        os.close(master)


def starts(runs: int = RUNS) -> dict[str, list[float]]:
    """One discarded start of each (bytecode caches, the kiosk's store), then ``runs``
    pairs, the order alternating so that drift hits both alike."""
    samples: dict[str, list[float]] = {"kiosk": [], "bare": []}
    with _adopting_orphans():
        start_once("kiosk")
        start_once("bare")
        for i in range(runs):
            for mode in ("kiosk", "bare") if i % 2 == 0 else ("bare", "kiosk"):
                samples[mode].append(start_once(mode))
    return samples


def measure() -> list[Figure]:
    if shutil.which("kiosk", path=str(Path(sys.executable).parent)) is None:
        how = "python kiosk.py (the kiosk command is not installed)"
    else:
        how = "the installed kiosk command"
    samples = starts()
    kiosk, bare = samples["kiosk"], samples["bare"]
    k, b = statistics.median(kiosk), statistics.median(bare)
    paired = statistics.median(a / c for a, c in zip(kiosk, bare, strict=True))
    return [
        Figure(
            "start.terminal.ratio",
            k / b,
            "x",
            goal=RATIO_GOAL,
            note=f"median kiosk / median bare; median of the {RUNS} paired ratios {paired:.2f}",
        ),
        Figure(
            "start.terminal.kiosk",
            k,
            "ms",
            note=f"{how} (launcher, then the kiosk in its child process) on a pseudo-terminal"
            f" of {SIZE[1]}x{SIZE[0]}, fork -> the welcome's text received; warm store;"
            f" {spread(kiosk)}",
        ),
        Figure(
            "start.terminal.bare",
            b,
            "ms",
            note=f"python bench/_bare_app.py (one Static, a Footer) the same way; {spread(bare)}",
        ),
    ]


if __name__ == "__main__":  # python -m bench.terminal_start: this measure alone
    for figure in measure():
        print(f"{figure.name:24} {figure.value:10.2f} {figure.unit:3} {figure.note}")
