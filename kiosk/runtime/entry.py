"""The ``kiosk`` command's entry point: the kiosk started first, then the command.

When the command line plainly asks for the kiosk (``kiosk [run]`` and the common
options), the first kiosk is forked from this process before the command's own modules
are imported and its parser built, since that start is what the public waits for. The
launcher goes on with the command (``kiosk.runtime.cli.main``) and that kiosk; the kiosk
runs with the options read here (``kiosk.runtime.kiosk_process``), as does each kiosk the
launcher starts afterwards. Anything else is the command's alone.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from kiosk.runtime.launcher import (
    Forked,
    ignore_terminal_signals,
    launched,
    without_postgresql,
)

# The options every command takes, each followed by its value (kiosk.runtime.cli), and
# the name kiosk.runtime.kiosk_process.run reads it under.
VALUED_OPTIONS = {
    "--config": "config",
    "--data-dir": "data_dir",
    "--session": "session",
    "--language": "language",
}
LANGUAGES = ("fr", "en")  # kiosk.i18n.LANGUAGES, which this module does not import
PRIVATE_UMASK = 0o077  # kiosk.private.UMASK, likewise


def main(argv: Sequence[str] | None = None) -> int:
    """The ``kiosk`` command (``kiosk.runtime.cli.main``), with the kiosk started first when
    the command line asks for nothing else; in a kiosk the launcher started
    (``python -m kiosk``), that kiosk."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    options = kiosk_options(arguments)
    first = None
    if options is not None:
        if launched():  # a kiosk the launcher started
            return _kiosk(options)
        ignore_terminal_signals()
        without_postgresql()
        # As the command would have started it: under the kiosk's umask (kiosk.private,
        # whose imports this start does not wait for).
        previous = os.umask(PRIVATE_UMASK)
        try:
            first = Forked()
        finally:
            os.umask(previous)
        if first.in_kiosk:  # this process is that kiosk now
            return _kiosk(options)
    try:
        from kiosk.runtime.cli import main as command

        return command(arguments, first=first)
    finally:
        if first is not None and not first.settled:  # the command line was refused after all
            first.abandon()


def _kiosk(options: dict[str, str]) -> int:
    from kiosk.runtime.kiosk_process import run

    return run(options)


def kiosk_options(arguments: list[str]) -> dict[str, str] | None:
    """The settings ``arguments`` give when they are the kiosk's (``kiosk [run]`` and the
    common options with their values), read as the command's parser would read them:
    ``{"data_dir": "…", …}``. None for anything else, even a valid command line, which is
    left to the parser."""
    rest = list(arguments)
    if rest[-1:] == ["run"]:
        rest.pop()
    options: dict[str, str] = {}
    while rest:
        option = rest.pop(0)
        name, equals, value = option.partition("=")
        if name not in VALUED_OPTIONS:
            return None
        if not equals:
            if not rest or rest[0].startswith("-"):
                return None
            value = rest.pop(0)
        # ``--opt=--`` is read by argparse as no value at all: left to it.
        if not value or value == "--" or (name == "--language" and value not in LANGUAGES):
            return None
        options[VALUED_OPTIONS[name]] = value  # the last one given counts, as for the parser
    return options
