"""The launcher: the kiosk runs in a child process, started again whenever it dies.

Only a staff exit (exit code ``STAFF_EXIT``) or SIGTERM ends the launcher. A child
that keeps dying is restarted more slowly, so that a broken installation does not
spin; the reason is in the log file, never on the public screen.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections import deque

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


def supervise(argv: list[str], sleep=time.sleep, run=subprocess.run) -> int:
    """Run ``kiosk ARGV`` until a staff exit; returns the last exit code."""
    for name in ("SIGINT", "SIGQUIT", "SIGTSTP"):
        signal.signal(getattr(signal, name), signal.SIG_IGN)
    # The child imports the same kiosk package as this process, wherever it was started from.
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.pathsep.join(filter(None, (root, os.environ.get("PYTHONPATH"))))
    environment = {**os.environ, CHILD_VARIABLE: "1", "PYTHONPATH": path}
    deaths: deque[float] = deque(maxlen=QUICK_DEATHS)
    while True:
        started = time.monotonic()
        code = run([sys.executable, "-m", "kiosk", *argv], env=environment, preexec_fn=_die_with_launcher).returncode
        if code == STAFF_EXIT:
            return code
        log.error("the kiosk stopped with code %s after %.0f s; starting it again", code, time.monotonic() - started)
        deaths.append(time.monotonic())
        quick = len(deaths) == QUICK_DEATHS and deaths[-1] - deaths[0] < QUICK_WINDOW
        sleep(SLOW_RESTART if quick else 1.0)
