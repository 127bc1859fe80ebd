"""What a command of the kiosk does before its work: its configuration read, its log
opened in the data dir, its services built; and what keeps it from running, in French.

Shared by the command line (``kiosk.runtime.cli``) and by the kiosk's own process
(``kiosk.runtime.kiosk_process``), which the entry point starts without the command's
parser. Nothing here imports argparse: the refusals' module is read only when something
is refused.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING

from kiosk.errors import StoreError
from kiosk.exam_sessions import SessionError, shipped_sessions
from kiosk.i18n import french
from kiosk.runtime.config import Config, ConfigError, default_data_dir
from kiosk.runtime.launcher import launched

if TYPE_CHECKING:
    from kiosk.runtime.services import Services


def log_to_file(config: Config) -> None:
    """Everything worth logging goes to the data dir: the screen belongs to the candidate.

    The data dir is the kiosk's alone: 0700, every file in it 0600; one left too open is
    tightened here, by each command (the launcher's kiosk: by the launcher, once)."""
    from kiosk.private import private_file, private_folder, tighten

    if launched():
        private_folder(config.data_dir)
    else:
        tighten(config.data_dir)
    logging.basicConfig(
        filename=private_file(config.data_dir / "kiosk.log"),
        encoding="utf-8",
        errors="backslashreplace",  # a path of the command line need not be UTF-8
        level=logging.INFO,
        format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s",
    )


def log_somewhere(data_dir: Path | None) -> None:
    """A configuration that cannot be read still has its problem logged: in ``data_dir``
    (the command line's) or ``KIOSK_DATA_DIR``, or in the default one if it is there."""
    if logging.getLogger().handlers:
        return
    named = data_dir or os.environ.get("KIOSK_DATA_DIR")
    folder = Path(named) if named else default_data_dir()
    if named or folder.is_dir():
        with suppress(OSError, ValueError):
            log_to_file(Config(data_dir=folder))


def _check_session(name: str) -> None:
    """Refuse, in French, a session that is not there: a shipped session is named without
    a suffix, a session file is a path to a ``.toml`` file (as ``load_session`` reads them)."""
    path = Path(name)
    if path.is_dir() and (path.suffix or os.sep in name):
        raise SessionError(french("cli.session.folder", path=name))
    if not path.suffix:
        shipped = shipped_sessions()
        if name not in shipped:
            raise SessionError(french("cli.session.unknown", name=name, shipped=", ".join(shipped)))
    elif not path.exists():
        raise SessionError(french("cli.session.missing", path=name))


@contextmanager
def services_for(config: Config) -> Iterator[Services]:
    """The kiosk's services for ``config``, closed at the end of the block."""
    from kiosk.runtime.services import build_services

    _check_session(config.session)
    built = build_services(config)
    try:
        yield built
    finally:
        built.close()


def problem_of(error: Exception) -> str | None:
    """What a configuration, session, store or file error says to staff, in French; None
    for an error that is none of these."""
    from kiosk.runtime.commands import CommandError, file_problem

    if isinstance(error, ConfigError):
        if isinstance(error.__cause__, OSError):  # the configuration file itself
            return file_problem(error.__cause__)
        return french("cli.config.problem", problem=str(error))
    if isinstance(error, (SessionError, StoreError, CommandError)):
        return str(error)
    if isinstance(error, OSError) and error.filename is not None:
        return file_problem(error)
    return None


# A Textual app's threads share one interpreter lock: its event loop, the thread that writes
# its frames to the terminal, and its workers (documents, sync, the store). By default a
# thread waits 5 ms before it asks a busy one for the lock: the kiosk's first frame reached
# the terminal 5.8 ms after it was drawn (median of 10 starts on a pseudo-terminal; 1.7 ms
# at this setting), and a key read behind a worker building a document waits as long.
THREAD_SWITCH_INTERVAL = 0.001


def ready_for_textual() -> None:
    """What a process does before it imports Textual to show an app (the public kiosk, the
    staff console): drop the variables that change Textual's behaviour (driver, signals,
    devtools…), which it reads when imported, so that the app runs as shipped whatever
    the environment it was started from; and let the app's threads take the interpreter
    lock in turn every millisecond."""
    for name in [n for n in os.environ if n.startswith("TEXTUAL")]:
        del os.environ[name]
    sys.setswitchinterval(THREAD_SWITCH_INTERVAL)


def logged_problem(error: Exception, data_dir: Path | None) -> str | None:
    """``error``'s problem (see ``problem_of``), logged; None for an error no one foresaw,
    whose traceback is logged instead. Where no log can be opened, nothing is logged: what
    logging writes then goes to stderr, the kiosk's screen."""
    said = problem_of(error)
    log_somewhere(data_dir)
    if logging.getLogger().handlers:
        if said is None:
            logging.getLogger(__name__).error("unexpected error", exc_info=error)
        else:
            logging.getLogger(__name__).error("%s", said)
    return said
