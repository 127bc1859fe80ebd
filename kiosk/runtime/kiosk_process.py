"""The kiosk itself: its app on the public screen, in the launcher's child process.

Each kiosk is started ahead by the launcher (``kiosk.runtime.launcher``): it loads its
code, Textual's and the screens', while the launcher checks the session and the store,
and goes on once let go. The command's entry point (``kiosk.runtime.entry``) hands it the
options it read, so that neither the command's modules nor its parser are on the way to
the first screen.

This module imports the screens, and so Textual, only in ``run``.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kiosk.i18n import french
from kiosk.runtime.config import load_config
from kiosk.runtime.groundwork import (
    log_to_file,
    logged_problem,
    ready_for_textual,
    services_for,
)

# Seconds after the start when the kiosk reads the documents' fonts, in a thread: the
# welcome is on the screen by then, and no one has got as far as a document yet.
DOCUMENTS_WARM_UP = 5.0


def run(options: Mapping[str, Any]) -> int:
    """The kiosk, with the command line's ``options`` (``config``: its file; the others
    override the configuration's settings of the same names; None: not given). Its exit
    code; what keeps it from running is in the data dir's log, for staff (exit code 2), and
    the launcher says « Borne hors service » on the screen. An error no one foresaw has its
    traceback in the log and one sentence on stderr (exit code 1), as for any command."""
    from kiosk.private import private_umask

    overrides = {name: value for name, value in options.items() if name != "config"}
    with private_umask():
        try:
            return _run(options.get("config"), overrides)
        except Exception as error:
            if logged_problem(error, overrides.get("data_dir")) is not None:
                return 2
            from kiosk.runtime.commands import warn  # argparse: only on this path

            warn(french("cli.unexpected", error=type(error).__name__))
            return 1


def _run(config_file: str | Path | None, overrides: Mapping[str, Any]) -> int:
    # What the kiosk makes until its app is built (its code, Textual's, its services) lives
    # as long as the program: the collector would walk it again and again for nothing.
    # It is off until then (about 15 ms of the public's wait), and what exists then is
    # frozen out of its walks for good (a fifth of the time to the first screen). A start
    # that fails ends the process: nothing is left to collect.
    gc.disable()
    # Started ahead by the launcher: the code first (Textual reads its variables when it
    # is imported), then, once the launcher has checked the session and the store, the rest.
    ready_for_textual()
    from kiosk.runtime.launcher import wait_for_go, without_postgresql

    without_postgresql()
    import screens.app

    wait_for_go()
    config = load_config(Path(config_file) if config_file else None, overrides=overrides)
    log_to_file(config)
    with services_for(config) as built:
        app = screens.app.build_app(built, terminal=True)
        gc.freeze()
        gc.enable()
        _warm_up_documents()
        app.run()
        return app.return_code if app.return_code is not None else 1


def _warm_up_documents() -> None:
    """The first document of the process as quick as the next, a Chinese name's too: fpdf2
    and the fonts, the fallback font included, read ahead (~1.5 s of work, ~110 MB)."""
    import threading

    def warm_up() -> None:
        from kiosk.delivery.pdf import warm_up

        try:
            warm_up()
        except Exception:  # the first document will read them itself, and say why not
            logging.getLogger(__name__).exception("the documents' fonts could not be read ahead")

    timer = threading.Timer(DOCUMENTS_WARM_UP, warm_up)
    timer.daemon = True
    timer.start()
