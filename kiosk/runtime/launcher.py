"""The launcher: the kiosk runs in a child process, started again whenever it dies.

Only a staff exit (exit code ``STAFF_EXIT``) or SIGTERM ends the launcher. A child
that keeps dying is restarted more slowly, so that a broken installation does not
spin; the reason is in the log file, never on the public screen.

A kiosk whose store is damaged is not started at all: restarting it would only fail
again. The launcher says so once, in the log and on its terminal (« Borne hors
service »), and looks again every ``SLOW_RESTART`` seconds; once staff have restored
or set the file aside, the kiosk starts.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable

STAFF_EXIT = 0
CHILD_VARIABLE = "KIOSK_LAUNCHED"
QUICK_DEATHS = 5
QUICK_WINDOW = 60.0
SLOW_RESTART = 30.0

log = logging.getLogger(__name__)


def launched() -> bool:
    """Whether this process is the kiosk started by the launcher."""
    return os.environ.get(CHILD_VARIABLE) == "1"


def _die_with_launcher() -> None:
    """In the child, between fork and exec: end it when the launcher ends (Linux keeps this
    across exec), so that no kiosk is ever orphaned on its terminal."""
    try:
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the launcher's SIGTERM still reaches it
        pass


def supervise(
    argv: list[str],
    sleep=time.sleep,
    run=subprocess.run,
    check: Callable[[], str | None] | None = None,
) -> int:
    """Run ``kiosk ARGV`` until a staff exit; returns the last exit code.

    ``check``, called before each start, says what keeps the kiosk from working (for
    staff, in French), or None when nothing does.
    """
    for name in ("SIGINT", "SIGQUIT", "SIGTSTP"):
        signal.signal(getattr(signal, name), signal.SIG_IGN)
    # The child imports the same kiosk package as this process, wherever it was started from.
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    path = os.pathsep.join(filter(None, (root, os.environ.get("PYTHONPATH"))))
    environment = {**os.environ, CHILD_VARIABLE: "1", "PYTHONPATH": path}
    deaths: deque[float] = deque(maxlen=QUICK_DEATHS)
    reported: str | None = None
    while True:
        trouble = check() if check is not None else None
        if trouble:
            if trouble != reported:
                _out_of_service(trouble)
                reported = trouble
            sleep(SLOW_RESTART)
            continue
        if reported:
            log.warning("the kiosk's store can be used again: starting the kiosk")
            reported = None
        started = time.monotonic()
        code = run(
            [sys.executable, "-m", "kiosk", *argv], env=environment, preexec_fn=_die_with_launcher
        ).returncode
        if code == STAFF_EXIT:
            return code
        log.error(
            "the kiosk stopped with code %s after %.0f s; starting it again",
            code,
            time.monotonic() - started,
        )
        deaths.append(time.monotonic())
        quick = len(deaths) == QUICK_DEATHS and deaths[-1] - deaths[0] < QUICK_WINDOW
        sleep(SLOW_RESTART if quick else 1.0)


def _out_of_service(trouble: str) -> None:
    """Tell staff, in the log and on the kiosk's terminal, why no kiosk is started."""
    from kiosk.i18n import french

    message = french("fault.out_of_service", problem=trouble, seconds=f"{SLOW_RESTART:g}")
    log.error("%s", message)
    print(message, file=sys.stderr, flush=True)
