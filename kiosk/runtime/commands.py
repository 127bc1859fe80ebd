"""The command line as a table: each command, its help, its options and what runs it.

``kiosk`` and ``kiosk rectorat`` are each a tuple of ``Command``; ``add_commands`` turns
one into argparse subcommands, and the parsed namespace holds the chosen ``Command``
as ``args.command``. Every text comes from the message catalogue, argparse's own texts
too (« usage: », its error messages, « show this help message and exit »): ``Parser``
reads them in French while it is built, parses and writes its help.

This module imports nothing heavy: the commands import what they need when they run.
"""

from __future__ import annotations

import argparse
import errno
import logging
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NoReturn

from kiosk.i18n import Messages, french

Run = Callable[[argparse.Namespace], int]
Arguments = Callable[[argparse.ArgumentParser], None]


def no_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of a command that takes none."""


@dataclass(frozen=True)
class Command:
    """One command: ``run`` carries it out, or it is a group of ``subcommands``."""

    name: str
    help: str  # the catalogue key of its one-line help
    run: Run | None = None
    arguments: Arguments = no_arguments
    subcommands: tuple[Command, ...] = ()

    def __post_init__(self) -> None:
        if (self.run is None) == (not self.subcommands):
            raise ValueError(f"{self.name}: either run or subcommands")


def walk(
    commands: Sequence[Command], prefix: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], Command]]:
    """Every command of the table, groups included, with its path: ``("staff-account", "add")``."""
    for command in commands:
        path = (*prefix, command.name)
        yield path, command
        yield from walk(command.subcommands, path)


def add_commands(
    parser: argparse.ArgumentParser,
    commands: Sequence[Command],
    *,
    metavar: str = "cli.metavar.action",
    required: bool = True,
) -> None:
    """The table ``commands`` as subcommands of ``parser``; the chosen one is ``args.command``."""
    actions = parser.add_subparsers(metavar=french(metavar), required=required)
    for command in commands:
        text = french(command.help)
        sub = actions.add_parser(command.name, help=text, description=text)
        command.arguments(sub)
        if command.subcommands:
            add_commands(sub, command.subcommands)
        else:
            sub.set_defaults(command=command)


# -- argparse's own texts, in French ---------------------------------------------------------

# argparse's message ids (it reads them through gettext), the catalogue key that says each,
# and the name the catalogue gives to its one ``%s`` when it has one.
ARGPARSE_TEXTS: dict[str, tuple[str, str | None]] = {
    "usage: ": ("cli.parser.usage", None),
    "positional arguments": ("cli.parser.positionals", None),
    "show this help message and exit": ("cli.parser.help", None),
    "show program's version number and exit": ("cli.parser.version", None),
    "%(prog)s: error: %(message)s\n": ("cli.parser.error", None),
    "unrecognized arguments: %s": ("cli.parser.unrecognized", "arguments"),
    "the following arguments are required: %s": ("cli.parser.required", "arguments"),
    "one of the arguments %s is required": ("cli.parser.one_required", "arguments"),
    "argument %(argument_name)s: %(message)s": ("cli.parser.argument", None),
    "invalid choice: %(value)r (choose from %(choices)s)": ("cli.parser.invalid_choice", None),
    "invalid %(type)s value: %(value)r": ("cli.parser.invalid_value", None),
    "unknown parser %(parser_name)r (choices: %(choices)s)": ("cli.parser.unknown_command", None),
    "expected one argument": ("cli.parser.expected_one", None),
    "expected at most one argument": ("cli.parser.expected_at_most_one", None),
    "expected at least one argument": ("cli.parser.expected_at_least_one", None),
    "ambiguous option: %(option)s could match %(matches)s": ("cli.parser.ambiguous", None),
    "not allowed with argument %s": ("cli.parser.not_allowed", "argument"),
    "ignored explicit argument %r": ("cli.parser.ignored", "value"),
}
_NAMED = re.compile(r"%\((\w+)\)")


def argparse_text(text: str, messages: Messages = french) -> str:
    """argparse's ``text`` from the catalogue, still a ``%`` template for argparse to fill.

    The catalogue's ``{name}`` becomes ``%(name)s`` (``%s`` for the unnamed one); the
    French quotes are the catalogue's, so values are not ``repr``'d. A text the table
    does not know is left as argparse wrote it.
    """
    known = ARGPARSE_TEXTS.get(text)
    if known is None:
        return text
    key, unnamed = known
    fields = {name: f"%({name})s" for name in _NAMED.findall(text)}
    if unnamed:
        fields[unnamed] = "%s"
    return messages(key, **fields) + text[len(text.rstrip()) :]


@contextmanager
def french_argparse(messages: Messages = french) -> Iterator[None]:
    """argparse's texts from the catalogue, for the time of the block.

    argparse marks its texts for gettext and looks ``_`` and ``ngettext`` up in its
    module when it uses them: they are swapped for the catalogue here, and put back.
    """
    module = vars(argparse)
    replacements: dict[str, Callable[..., str]] = {
        "_": lambda text: argparse_text(text, messages),
        "ngettext": lambda one, many, n: argparse_text(one if n == 1 else many, messages),
    }
    saved = {name: module[name] for name in replacements if name in module}
    module.update({name: replacements[name] for name in saved})
    try:
        yield
    finally:
        module.update(saved)


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` that speaks French: its help, its usage and its errors."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        with french_argparse():
            super().__init__(*args, **kwargs)

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        with french_argparse():
            return super().parse_known_args(args, namespace)

    def parse_args(self, args: Any = None, namespace: Any = None) -> Any:
        with french_argparse():
            return super().parse_args(args, namespace)

    def format_usage(self) -> str:
        with french_argparse():
            return super().format_usage()

    def format_help(self) -> str:
        with french_argparse():
            return super().format_help()

    def error(self, message: str) -> NoReturn:
        with french_argparse():
            super().error(message)


def whole_number(text: str) -> int:
    """An argparse ``type``: a whole number, or a French message."""
    try:
        number = int(text)
    except ValueError:
        number = -1
    if not 0 <= number < 2**31:  # what a C long takes: no OverflowError further on
        raise argparse.ArgumentTypeError(french("cli.parser.not_a_number", value=text))
    return number


# -- refusals -----------------------------------------------------------------------------


class CommandError(Exception):
    """What keeps a command from running, already said in French for the person who ran it."""


def warn(message: str) -> None:
    """Say ``message`` on stderr, as the ``kiosk`` command: « kiosk : … »."""
    print(french("cli.error", message=message), file=sys.stderr)


def refuse(message: str) -> int:
    """Say ``message`` on stderr; the exit code of a refusal."""
    warn(message)
    return 2


def carry_out(args: argparse.Namespace) -> int:
    """Run the command chosen on the command line; a refusal, or a file or folder of the
    command line that cannot be used, is said in French with exit code 2, not a traceback."""
    try:
        return args.command.run(args)
    except CommandError as error:
        if logging.getLogger().handlers:  # the kiosk's log, when there is one: staff read it
            logging.getLogger(__name__).error("%s", error)
        return refuse(str(error))
    except OSError as error:
        if error.filename is None:
            raise
        message = file_problem(error)
        if logging.getLogger().handlers:  # the kiosk's log, when there is one
            logging.getLogger(__name__).error("%s", message, exc_info=error)
        return refuse(message)


# What went wrong with a file or folder, by errno; others keep the system's words.
_FILE_PROBLEMS = {
    errno.ENOENT: "cli.file.not_found",
    errno.EISDIR: "cli.file.is_a_folder",
    errno.ENOTDIR: "cli.file.not_a_folder",
    errno.EEXIST: "cli.file.exists",
    errno.EACCES: "cli.file.denied",
    errno.EPERM: "cli.file.denied",
    errno.EROFS: "cli.file.read_only",
    errno.ENOSPC: "cli.file.full",
}


def file_problem(error: OSError) -> str:
    """An error on a file or folder of the command line, in French: « chemin : raison »."""
    key = _FILE_PROBLEMS.get(error.errno or 0)
    reason = french(key) if key else (error.strerror or str(error))
    if error.filename is None:
        return reason
    return french("cli.file.problem", path=error.filename, reason=reason)
