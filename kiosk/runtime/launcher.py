"""The launcher: the kiosk runs in a child process, started again whenever it dies.

Only a staff exit (exit code ``STAFF_EXIT``) or SIGTERM ends the launcher. A child
that keeps dying is restarted more slowly, so that a broken installation does not
spin; the reason is in the log file, never on the public screen.

A kiosk whose store is damaged is not started at all: restarting it would only fail
again. The launcher says so once, in the log and on its terminal (« Borne hors
service »), and looks again every ``SLOW_RESTART`` seconds; once staff have restored
or set the file aside, the kiosk starts.

A kiosk is started ahead (:class:`Prestarted`): its process loads its code (Textual, the
screens) while the launcher checks the session and the store, and it goes on only
when the launcher says so; it reads nothing of its configuration, store or terminal
before. On trouble the launcher ends it instead: no kiosk runs on a damaged store.

The ``kiosk`` command forks the first kiosk from ``kiosk.runtime.entry``, before it
imports the rest of the command (:class:`Forked`): this module imports nothing heavy
for that.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections import deque
from collections.abc import Callable

STAFF_EXIT = 0
CHILD_VARIABLE = "KIOSK_LAUNCHED"
GO_VARIABLE = "KIOSK_GO_FD"  # the pipe a kiosk started ahead waits on (Prestarted)
QUICK_DEATHS = 5
QUICK_WINDOW = 60.0
SLOW_RESTART = 30.0


def _log():
    # Imported when there is something to log: not on the way to the first kiosk.
    import logging

    return logging.getLogger(__name__)


def without_postgresql() -> None:
    """The kiosk and its launcher never reach a PostgreSQL server (only the staff console
    and the rectorat's service do, in processes of their own); peewee imports a PostgreSQL
    driver it finds installed all the same, which took longer than the rest of the
    launcher's checks together. Spared here, in a process that has not imported it."""
    for driver in ("psycopg", "psycopg2"):
        sys.modules.setdefault(driver, None)  # type: ignore[arg-type]  # import: ImportError


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


def ignore_terminal_signals() -> None:
    """The launcher outlives Ctrl-C, Ctrl-\\ and Ctrl-Z, and so does every kiosk it starts
    (an ignored signal stays ignored across exec)."""
    for name in ("SIGINT", "SIGQUIT", "SIGTSTP"):
        signal.signal(getattr(signal, name), signal.SIG_IGN)


def _environment() -> dict[str, str]:
    """The kiosk's environment: this one, marked as launched."""
    # The child imports the same kiosk package as this process, wherever it was started from.
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    path = os.pathsep.join(filter(None, (root, os.environ.get("PYTHONPATH"))))
    return {**os.environ, CHILD_VARIABLE: "1", "PYTHONPATH": path}


def _command(argv: list[str]) -> list[str]:
    return [sys.executable, "-m", "kiosk", *argv]


class Prestarted:
    """A kiosk started ahead: it loads its code, then waits for :meth:`go` before it
    reads its configuration, its store or its terminal (:func:`wait_for_go`)."""

    def __init__(self, argv: list[str]) -> None:
        import subprocess  # not on the way to the first kiosk, which is forked (Forked)

        self.settled = False  # let go, or abandoned
        ready, self._go = os.pipe()
        try:
            self.process = subprocess.Popen(
                _command(argv),
                env={**_environment(), GO_VARIABLE: str(ready)},
                pass_fds=(ready,),
                preexec_fn=_die_with_launcher,
            )
        except BaseException:
            os.close(self._go)
            raise
        finally:
            os.close(ready)

    def go(self) -> int:
        """Let the kiosk run; its exit code once it has ended."""
        self.settled = True
        try:
            os.write(self._go, b"1")
        except BrokenPipeError:  # it has ended already: its code says why
            pass
        finally:
            os.close(self._go)
        return self._wait()

    def abandon(self) -> None:
        """End the kiosk before it has read or shown anything."""
        self.settled = True
        os.close(self._go)
        self._end()

    def _wait(self) -> int:
        return self.process.wait()

    def _end(self) -> None:
        self.process.terminate()
        self.process.wait()


class Forked(Prestarted):
    """The first kiosk, forked from the ``kiosk`` command as it starts, before it has
    imported anything but this module: no second interpreter to start and nothing read
    twice, about 30 ms of the public's wait. It waits for :meth:`go` as any kiosk
    started ahead.

    The constructor returns in both processes: in the kiosk, ``in_kiosk`` is true and
    the caller goes on as the kiosk (``KIOSK_LAUNCHED`` is set). Only the first kiosk
    is forked; the launcher opens the store afterwards, and no connection may cross a
    fork, so the next ones are started afresh (:class:`Prestarted`).
    """

    def __init__(self) -> None:
        self.settled = False
        ready, self._go = os.pipe()
        launcher = os.getpid()
        self.pid = os.fork()
        self.in_kiosk = self.pid == 0
        if not self.in_kiosk:
            os.close(ready)
            return
        os.close(self._go)
        _die_with_launcher()
        if os.getppid() != launcher:  # the launcher ended before the line above
            os._exit(0)
        os.environ[CHILD_VARIABLE] = "1"
        os.environ[GO_VARIABLE] = str(ready)

    def _wait(self) -> int:
        _, status = os.waitpid(self.pid, 0)
        return os.waitstatus_to_exitcode(status)

    def _end(self) -> None:
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:  # ended already; reaped below all the same
            pass
        self._wait()


def wait_for_go() -> None:
    """In a kiosk started ahead: wait until the launcher lets it run; end at once if the
    launcher abandons it. Nothing to wait for in a kiosk started otherwise."""
    ready = os.environ.pop(GO_VARIABLE, None)
    if ready is None:
        return
    with os.fdopen(int(ready), "rb", buffering=0) as pipe:
        if pipe.read(1) != b"1":
            sys.exit(0)


def supervise(
    argv: list[str],
    sleep=time.sleep,
    run=None,
    check: Callable[[], str | None] | None = None,
    first: Prestarted | None = None,
) -> int:
    """Run ``kiosk ARGV`` until a staff exit; returns the last exit code.

    ``check``, called before each start, says what keeps the kiosk from working (for
    staff, in French), or None when nothing does. Each kiosk is started ahead
    (:class:`Prestarted`; ``first``: the first one, started by the caller) while
    ``check`` runs, unless the kiosk is out of service; ``run`` (``subprocess.run``'s
    signature) replaces the whole start, and starts nothing ahead.
    """
    ignore_terminal_signals()
    deaths: deque[float] = deque(maxlen=QUICK_DEATHS)
    reported: str | None = None
    while True:
        ahead, first = first, None
        if ahead is None and run is None and not reported:
            ahead = Prestarted(argv)
        try:
            trouble = check() if check is not None else None
        except BaseException:
            if ahead is not None:
                ahead.abandon()
            raise
        if trouble:
            if ahead is not None:
                ahead.abandon()
            if trouble != reported:
                _out_of_service(trouble)
                reported = trouble
            sleep(SLOW_RESTART)
            continue
        if reported:
            _log().warning("the kiosk's store can be used again: starting the kiosk")
            reported = None
        started = time.monotonic()
        if run is not None:
            code = run(_command(argv), env=_environment(), preexec_fn=_die_with_launcher).returncode
        else:
            code = (ahead or Prestarted(argv)).go()
        if code == STAFF_EXIT:
            return code
        _log().error(
            "the kiosk stopped with code %s after %.0f s; starting it again",
            code,
            time.monotonic() - started,
        )
        deaths.append(time.monotonic())
        quick = len(deaths) == QUICK_DEATHS and deaths[-1] - deaths[0] < QUICK_WINDOW
        sleep(SLOW_RESTART if quick else 1.0)


def _out_of_service(trouble: str) -> None:
    """Tell staff, in the log (and on stderr when it is not the kiosk's screen), why no
    kiosk is started; the kiosk's screen says only « Borne hors service »."""
    from kiosk.i18n import french

    message = french("fault.out_of_service", problem=trouble, seconds=f"{SLOW_RESTART:g}")
    _log().error("%s", message)
    if sys.stderr.isatty():  # the kiosk's own screen, cleared: the public reads only that
        message = "\x1b[H\x1b[2J" + french("fault.out_of_service_screen")
    print(message, file=sys.stderr, flush=True)
