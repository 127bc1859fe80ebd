"""The ``kiosk`` command: the kiosk itself, and the commands that staff run beside it.

This is the composition root: it reads the configuration, builds the services, and
hands them to the screens. It is the one module that reaches both sides, and it
imports the screens (and so Textual) only for the commands that show them.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
from pathlib import Path

from kiosk import __version__
from kiosk.errors import StoreError
from kiosk.exam_sessions import SessionError
from kiosk.runtime.config import Config, ConfigError, load_config
from kiosk.runtime.launcher import launched


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kiosk",
        description="Borne d'inscription au baccalauréat professionnel (candidats individuels).",
    )
    parser.add_argument("--version", action="version", version=f"kiosk {__version__}")
    parser.add_argument(
        "--config", type=Path, help="fichier de configuration TOML (ou KIOSK_CONFIG)"
    )
    parser.add_argument(
        "--data-dir", type=Path, help="dossier des données de la borne (ou KIOSK_DATA_DIR)"
    )
    parser.add_argument(
        "--session", help="session d'examen : nom d'une session livrée ou chemin d'un fichier"
    )
    parser.add_argument("--language", choices=("fr", "en"), help="langue de l'interface")
    commands = parser.add_subparsers(dest="command", metavar="COMMANDE")
    commands.add_parser("run", help="lancer la borne (par défaut)")
    commands.add_parser("purge", help="supprimer les comptes non activés dans les 48 heures")
    commands.add_parser("mailbox", help="lire les messages déposés dans la boîte locale (Maildir)")
    deliver = commands.add_parser("deliver", help="envoyer les messages en attente")
    deliver.add_argument("--limit", type=int, default=200)
    commands.add_parser("sessions", help="lister les sessions d'examen livrées")
    sync = commands.add_parser("sync", help="synchroniser avec le rectorat")
    sync.add_argument(
        "--once", action="store_true", required=True, help="une seule synchronisation, puis quitter"
    )
    console = commands.add_parser(
        "staff", help="console du personnel (accueil, bureau des examens)"
    )
    console.add_argument(
        "--store",
        help="registre du rectorat (postgresql://… ou sqlite:///…) ; par défaut, la borne",
    )
    staff = commands.add_parser("staff-account", help="gérer les comptes du personnel")
    staff_commands = staff.add_subparsers(dest="staff_command", metavar="ACTION", required=True)
    add = staff_commands.add_parser("add", help="créer un compte (le mot de passe est demandé)")
    add.add_argument("name")
    add.add_argument("--role", choices=("reception", "exam_office"), required=True)
    add.add_argument(
        "--password-stdin", action="store_true", help="lire le mot de passe sur l'entrée standard"
    )
    listing = staff_commands.add_parser("list", help="lister les comptes")
    for each in (add, listing):
        each.add_argument(
            "--store", help="comptes du registre du rectorat (postgresql://… ou sqlite:///…)"
        )
    _add_rectorat(commands)
    return parser


def _add_rectorat(commands: argparse._SubParsersAction) -> None:
    """``kiosk rectorat …``: the rectorat's sync service (its own store, no kiosk services)."""
    from kiosk.rectorat.cli import add_parser

    add_parser(commands)


def _config(args: argparse.Namespace) -> Config:
    return load_config(
        args.config,
        overrides={"data_dir": args.data_dir, "session": args.session, "language": args.language},
    )


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "rectorat":
        from kiosk.rectorat.cli import run as run_rectorat

        return run_rectorat(args)
    try:
        config = _config(args)
        command = args.command or "run"
        if command == "sessions":
            from kiosk.exam_sessions import shipped_sessions

            print("\n".join(shipped_sessions()))
            return 0
        if command == "mailbox":
            return _mailbox(config)
        from kiosk.runtime.services import build_services

        _log_to_file(config)
        if command == "run" and not launched():
            from kiosk.runtime.launcher import supervise
            from kiosk.store.database import store_trouble

            # The store is looked at before each start: a kiosk started on a damaged one
            # could only fail, and be started again, over and over.
            return supervise(
                argv if argv is not None else sys.argv[1:],
                check=lambda: store_trouble(config.database_path),
            )
        services = build_services(config)
        try:
            if command == "staff-account":
                return _staff_account(services, args)
            if command == "staff":
                return _console(services, args.store)
            if command == "sync":
                report = services.sync.sync_once(force=True)
                print(
                    f"envoyés : {report.pushed}, reçus : {report.pulled}, en attente : {report.pending}"
                    + (f", erreur : {report.error}" if report.error else "")
                )
                return 0 if report.online else 1
            if command == "purge":
                print(f"{services.accounts.purge_unactivated()} compte(s) supprimé(s).")
                return 0
            if command == "deliver":
                report = services.mail.deliver_due(limit=args.limit)
                print(
                    f"envoyés : {report.sent}, à réessayer : {report.retrying}, en échec : {report.failed}"
                )
                return 0 if report.retrying == 0 and report.failed == 0 else 1
            _neutralise_textual_environment()
            from screens.app import build_app

            app = build_app(services, terminal=True)
            # What exists now lives as long as the program: keep the collector from
            # walking it on every pass (a fifth of the time to the first screen).
            gc.freeze()
            app.run()
            return app.return_code if app.return_code is not None else 1
        finally:
            services.close()
    except (ConfigError, SessionError, StoreError) as error:
        print(f"kiosk: {error}", file=sys.stderr)
        if isinstance(error, StoreError):  # the log exists by then: staff read it there too
            logging.getLogger(__name__).error("%s", error)
        return 2


def _log_to_file(config: Config) -> None:
    """Everything worth logging goes to the data dir: the screen belongs to the candidate."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(
        filename=config.data_dir / "kiosk.log",
        level=logging.INFO,
        format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s",
    )


def _console(services, store: str | None) -> int:
    """``kiosk staff``: the staff console, on the kiosk's store or the rectorat's."""
    from kiosk.console import open_desk
    from kiosk.i18n import french

    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        print(french("console.needs_terminal"), file=sys.stderr)
        return 2
    desk = open_desk(services, store)
    try:
        _neutralise_textual_environment()
        from screens.console.app import build_console

        app = build_console(desk, services.config.language)
        app.run()
        return app.return_code or 0
    finally:
        desk.close()


def _staff_accounts(services, store: str | None):
    """The staff accounts of the kiosk, or of the rectorat's store at ``store``."""
    from kiosk.console import open_desk

    return open_desk(services, store).staff if store else services.staff


def _staff_account(services, args: argparse.Namespace) -> int:
    from kiosk.errors import Refused
    from kiosk.i18n import french

    staff = _staff_accounts(services, args.store)
    if args.staff_command == "list":
        for name, role in staff.names():
            print(f"{name}\t{role}")
        return 0
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        import getpass

        password = getpass.getpass("Mot de passe : ")
        if getpass.getpass("Confirmation : ") != password:
            print("kiosk: les deux mots de passe diffèrent.", file=sys.stderr)
            return 2
    try:
        staff.add(args.name, args.role, password)
    except Refused as refused:
        for problem in refused.problems.values():
            print(f"kiosk: {french(problem.key, **problem.params)}", file=sys.stderr)
        return 2
    print(f"Compte {args.name} ({args.role}) créé.")
    return 0


def _neutralise_textual_environment() -> None:
    """Drop the variables that change Textual's behaviour (driver, signals, devtools…).

    Textual reads them when it is imported: a public kiosk runs as shipped, whatever
    the environment it was started from.
    """
    for name in [n for n in os.environ if n.startswith("TEXTUAL")]:
        del os.environ[name]


def _mailbox(config: Config) -> int:
    from kiosk.delivery.mail_transport import read_maildir

    entries = read_maildir(config.maildir_path)
    if not entries:
        print(f"Aucun message dans {config.maildir_path}.")
        return 0
    for entry in entries:
        when = entry.date.isoformat(sep=" ", timespec="minutes") if entry.date else "?"
        print(f"── {when}  à : {entry.to}")
        print(f"   objet : {entry.subject}\n")
        print("\n".join(f"   {line}" for line in entry.body.rstrip().splitlines()))
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
