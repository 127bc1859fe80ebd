"""The ``kiosk`` command: the kiosk itself, and the commands that staff run beside it.

This is the composition root: it reads the configuration, builds the services, and
hands them to the screens. With the kiosk's own process (``kiosk.runtime.kiosk_process``),
it is the one module that reaches both sides, and it imports the screens (and so
Textual) only for the commands that show them.

The commands are the table ``COMMANDS`` (see ``kiosk.runtime.commands``); each one
imports what it needs when it runs, so that starting any of them stays quick.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from kiosk import __version__
from kiosk.i18n import LANGUAGES, french
from kiosk.runtime.commands import (
    Command,
    CommandError,
    Parser,
    add_commands,
    carry_out,
    refuse,
    warn,
    whole_number,
)
from kiosk.runtime.config import Config, load_config
from kiosk.runtime.groundwork import (
    log_somewhere,
    log_to_file,
    logged_problem,
    problem_of,
    ready_for_textual,
    services_for,
)
from kiosk.runtime.launcher import launched

if TYPE_CHECKING:
    from kiosk.runtime.launcher import Prestarted
    from kiosk.runtime.services import Services
    from kiosk.staff import StaffService

ROLES = ("reception", "exam_office")


# -- the options of every command -----------------------------------------------------------


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--version", action="version", version=f"kiosk {__version__}",
        help=french("cli.parser.version"),
    )  # fmt: skip
    parser.add_argument(
        "--config", type=Path, metavar=french("cli.metavar.file"),
        help=french("cli.option.config"),
    )  # fmt: skip
    parser.add_argument(
        "--data-dir", type=Path, metavar=french("cli.metavar.folder"),
        help=french("cli.option.data_dir"),
    )  # fmt: skip
    parser.add_argument(
        "--session", metavar=french("cli.metavar.session"), help=french("cli.option.session")
    )
    parser.add_argument("--language", choices=LANGUAGES, help=french("cli.option.language"))


def _config(args: argparse.Namespace) -> Config:
    return load_config(
        args.config,
        overrides={"data_dir": args.data_dir, "session": args.session, "language": args.language},
    )


@contextmanager
def _opened(args: argparse.Namespace) -> Iterator[Services]:
    """The kiosk's services, logging to the data dir, closed at the end of the command."""
    config = _config(args)
    log_to_file(config)
    with services_for(config) as services:
        yield services


# -- the commands ------------------------------------------------------------------------------


def _run(args: argparse.Namespace) -> int:
    """``kiosk [run]``: the launcher, which runs the kiosk in a child process; in that
    process, the kiosk (when the entry point left its command line to the parser)."""
    if not launched():
        return _launch(args)
    from kiosk.runtime.kiosk_process import run

    return run(
        {"config": args.config, "data_dir": args.data_dir, "session": args.session,
         "language": args.language}
    )  # fmt: skip


def _launch(args: argparse.Namespace) -> int:
    """The launcher: the first kiosk starts loading at once, while this process reads the
    configuration and checks the session and the store."""
    from kiosk.runtime.launcher import Prestarted, ignore_terminal_signals, supervise

    ignore_terminal_signals()
    first = args.first or Prestarted(args.argv)  # started already by launcher.main, if it could
    if sys.stdout.isatty():  # on the kiosk's own screen: see _kiosk_trouble
        return supervise(args.argv, check=lambda: _kiosk_trouble(args), first=first)
    try:
        config = _config(args)
        log_to_file(config)
        with services_for(config):
            pass  # a session that cannot be read is refused now, not at each start
        from kiosk.store.check import store_trouble
    except BaseException:
        first.abandon()
        raise
    # The store is looked at before each start: a kiosk started on a damaged one
    # could only fail, and be started again, over and over.
    return supervise(args.argv, check=lambda: store_trouble(config.database_path), first=first)


def _kiosk_trouble(args: argparse.Namespace) -> str | None:
    """What keeps the kiosk from working, for staff, in French: its configuration, its
    session or its store, read again before each start; None when nothing does.

    The launcher on the kiosk's own screen (a terminal) checks with this: a configuration,
    session or store that keeps the kiosk from working puts it out of service; staff read
    why in the log, the public reads « Borne hors service », and the launcher looks again
    every ``SLOW_RESTART`` seconds, as for a damaged store. Started otherwise (a shell's
    pipe, a service manager), the launcher refuses such a configuration at once, in French
    and in the log, exit code 2, as any command does."""
    from kiosk.store.check import store_trouble

    try:
        config = _config(args)
        log_to_file(config)
        with services_for(config):
            pass
    except Exception as error:
        log_somewhere(args.data_dir)  # where the launcher's « Borne hors service » is written
        problem = problem_of(error)
        if problem is None:  # out of service too: its traceback is in the log
            logging.getLogger(__name__).error("unexpected error", exc_info=error)
            problem = french("cli.unexpected", error=type(error).__name__)
        return problem
    return store_trouble(config.database_path)


def _purge(args: argparse.Namespace) -> int:
    with _opened(args) as services:
        print(french("cli.purged", count=services.accounts.purge_unactivated()))
    return 0


def _mailbox(args: argparse.Namespace) -> int:
    from kiosk.delivery.mail_transport import read_maildir

    config = _config(args)
    entries = read_maildir(config.maildir_path)
    if not entries:
        print(french("cli.mailbox.empty", folder=config.maildir_path))
        return 0
    for entry in entries:
        when = entry.date.isoformat(sep=" ", timespec="minutes") if entry.date else "?"
        print(f"── {when}  {french('cli.mailbox.to', to=entry.to)}")
        print(f"   {french('cli.mailbox.subject', subject=entry.subject)}\n")
        print("\n".join(f"   {line}" for line in entry.body.rstrip().splitlines()))
        print()
    return 0


def _deliver_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--limit", type=whole_number, default=200, metavar=french("cli.metavar.number"),
        help=french("cli.option.limit"),
    )  # fmt: skip


def _deliver(args: argparse.Namespace) -> int:
    with _opened(args) as services:
        delivered = services.mail.deliver_due(limit=args.limit)
    print(
        french(
            "cli.delivered",
            sent=delivered.sent,
            retrying=delivered.retrying,
            failed=delivered.failed,
        )
    )
    return 0 if delivered.retrying == 0 and delivered.failed == 0 else 1


def _sessions(args: argparse.Namespace) -> int:
    from kiosk.exam_sessions import shipped_sessions

    _config(args)  # a configuration that cannot be read is refused here too
    print("\n".join(shipped_sessions()))
    return 0


def _sync_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--once", action="store_true", required=True, help=french("cli.option.once")
    )


def _sync(args: argparse.Namespace) -> int:
    with _opened(args) as services:
        synced = services.sync.sync_once(force=True)
    counts = {"pushed": synced.pushed, "pulled": synced.pulled, "pending": synced.pending}
    if synced.error:
        print(french("cli.sync_failed", error=synced.error, **counts))
    else:
        print(french("cli.synced", **counts))
    for reason, count in sorted(synced.refused.items()):
        known = french.has(f"sync.reason.{reason}")
        why = french(f"sync.reason.{reason}") if known else reason
        print(french("cli.sync_refused", count=count, reason=why))
    return 0 if synced.online else 1


def _console_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store", metavar=french("cli.metavar.database"), help=french("cli.option.store")
    )


def _console(args: argparse.Namespace) -> int:
    """``kiosk staff``: the staff console, on the kiosk's store or the rectorat's."""
    with _opened(args) as services:
        from kiosk.console import open_console

        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            print(french("console.needs_terminal"), file=sys.stderr)
            return 2
        console = open_console(services, args.store)
        try:
            ready_for_textual()
            from screens.console.app import build_console

            app = build_console(console, services.config.language)
            app.run()
            return app.return_code or 0
        finally:
            console.close()


def _account_store(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store", metavar=french("cli.metavar.database"), help=french("cli.option.account_store")
    )


def _staff_account_add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "name", metavar=french("cli.metavar.name"), help=french("cli.option.account_name")
    )
    parser.add_argument("--role", choices=ROLES, required=True, help=french("cli.option.role"))
    parser.add_argument(
        "--password-stdin", action="store_true", help=french("cli.option.password_stdin")
    )
    _account_store(parser)


@contextmanager
def _staff_accounts(services: Services, store: str | None) -> Iterator[StaffService]:
    """The staff accounts of the kiosk, or of the rectorat's store at ``store``."""
    if not store:
        yield services.staff
        return
    from kiosk.console import open_console

    console = open_console(services, store)
    try:
        yield console.staff
    finally:
        console.close()


def _staff_account_list(args: argparse.Namespace) -> int:
    with _opened(args) as services, _staff_accounts(services, args.store) as staff:
        for name, role in staff.names():
            print(f"{name}\t{role}")
    return 0


def _new_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    import getpass

    password = getpass.getpass(f"{french('cli.staff_account.password')} ")
    if getpass.getpass(f"{french('cli.staff_account.confirmation')} ") != password:
        raise CommandError(french("password.mismatch"))
    return password


def _staff_account_add(args: argparse.Namespace) -> int:
    from kiosk.errors import Refused

    with _opened(args) as services, _staff_accounts(services, args.store) as staff:
        password = _new_password(args.password_stdin)
        try:
            staff.add(args.name, args.role, password)
        except Refused as refused:
            for problem in refused.problems.values():
                refuse(french(problem.key, **problem.params))
            return 2
    print(french("cli.staff_account.created", name=args.name, role=args.role))
    return 0


def _rectorat() -> Command:
    """``kiosk rectorat …``: the rectorat's sync service (its own store, no kiosk services)."""
    from kiosk.rectorat.cli import RECTORAT

    return RECTORAT


# -- the table -------------------------------------------------------------------------------

RUN = Command("run", "cli.command.run", _run)
COMMANDS: tuple[Command, ...] = (
    RUN,
    Command("purge", "cli.command.purge", _purge),
    Command("mailbox", "cli.command.mailbox", _mailbox),
    Command("deliver", "cli.command.deliver", _deliver, _deliver_arguments),
    Command("sessions", "cli.command.sessions", _sessions),
    Command("sync", "cli.command.sync", _sync, _sync_arguments),
    Command("staff", "cli.command.staff", _console, _console_arguments),
    Command(
        "staff-account",
        "cli.command.staff_account",
        subcommands=(
            Command(
                "add",
                "cli.command.staff_account_add",
                _staff_account_add,
                _staff_account_add_arguments,
            ),  # fmt: skip
            Command("list", "cli.command.staff_account_list", _staff_account_list, _account_store),
        ),
    ),
)


def commands() -> tuple[Command, ...]:
    """Every command of ``kiosk``, ``rectorat`` and its own included."""
    return (*COMMANDS, _rectorat())


def parser() -> Parser:
    """The ``kiosk`` command's parser, built from the table; no command is ``run``."""
    built = Parser(prog="kiosk", description=french("cli.description"))
    _options(built)
    add_commands(built, commands(), metavar="cli.metavar.command", required=False)
    built.set_defaults(command=RUN)
    return built


def main(argv: Sequence[str] | None = None, first: Prestarted | None = None) -> int:
    """The command; ``first``: the kiosk that ``kiosk.runtime.launcher.main`` started ahead."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(arguments)
    args.argv = arguments  # ``run`` hands them on to the kiosk's child process
    args.first = first
    from kiosk.private import private_umask

    # What any command writes (store, log, mail, documents, exports) is the kiosk's alone,
    # whatever umask it was started under; its children (the launcher's kiosk) inherit it.
    with private_umask():
        return _carry_out(args)


def _carry_out(args: argparse.Namespace) -> int:
    """The command; what keeps it from running is said in French on stderr and in the log
    (exit code 2), and anything else gives no traceback either: that one is in the log."""
    try:
        return carry_out(args)
    except Exception as error:
        problem = logged_problem(error, args.data_dir)
        if problem is None:  # its traceback is in the log
            warn(french("cli.unexpected", error=type(error).__name__))
            return 1
        return refuse(problem)


if __name__ == "__main__":
    sys.exit(main())
