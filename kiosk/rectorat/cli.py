"""``kiosk rectorat …``: serve the sync API, issue or revoke kiosk credentials, and
publish documents for candidates.

The store is ``--db URL`` (or ``KIOSK_RECTORAT_DB``), by default the SQLite file
``rectorat.sqlite3`` in ``--data-dir`` (or ``KIOSK_DATA_DIR``, or the kiosk's default
data dir). The commands are the table ``COMMANDS`` (see ``kiosk.runtime.commands``),
``RECTORAT`` in the ``kiosk`` command's table. This module imports nothing heavy at
load: ``kiosk.runtime.cli`` builds its parser.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from kiosk.i18n import french
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

if TYPE_CHECKING:
    from kiosk.rectorat.service import RectoratService
    from kiosk.runtime.config import Config

DB_ENVIRONMENT = "KIOSK_RECTORAT_DB"
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
# What the extra ``rectorat`` (pyproject.toml) installs, by module: a kiosk has none of it.
SERVICE_MODULES = ("starlette", "uvicorn", "httptools", "psycopg", "orjson", "msgspec")
# Seconds an idle kiosk connection is kept open: longer than a kiosk uses one again
# (kiosk.sync.client.KEEPALIVE_EXPIRY, 5 s). At uvicorn's 5 s, both ends' clocks ran out
# together: a kiosk could send on a connection the service was closing, and the call
# failed (« Server disconnected without sending a response »).
KEEP_ALIVE = 15


def require_service(find_spec=importlib.util.find_spec) -> None:
    """Refuse, in French, a ``kiosk rectorat`` command where the service is not installed
    (a kiosk: ``pip install .`` without the extra ``rectorat``). Nothing is imported."""
    missing = [name for name in SERVICE_MODULES if find_spec(name) is None]
    if missing:
        raise CommandError(french("cli.rectorat.not_installed", missing=", ".join(missing)))


def store_options(parser: argparse.ArgumentParser) -> None:
    """``--data-dir`` and ``--db``, taken at every level of ``kiosk rectorat …``."""
    # SUPPRESS: given at any level (``kiosk rectorat --db U serve`` or ``… serve --db U``),
    # an option is not overwritten by a lower level's default.
    parser.add_argument(
        "--data-dir", dest="rectorat_data_dir", metavar=french("cli.metavar.folder"), type=Path,
        default=argparse.SUPPRESS, help=french("cli.option.rectorat_data_dir"),
    )  # fmt: skip
    parser.add_argument(
        "--db", dest="rectorat_db", metavar=french("cli.metavar.database"),
        default=argparse.SUPPRESS, help=french("cli.option.rectorat_db", variable=DB_ENVIRONMENT),
    )  # fmt: skip


def _serve_arguments(parser: argparse.ArgumentParser) -> None:
    store_options(parser)
    parser.add_argument(
        "--host", default="127.0.0.1", metavar=french("cli.metavar.address"),
        help=french("cli.option.host"),
    )  # fmt: skip
    parser.add_argument(
        "--port", type=whole_number, default=8443, metavar=french("cli.metavar.number"),
        help=french("cli.option.port"),
    )  # fmt: skip
    parser.add_argument(
        "--tls-cert", type=Path, metavar=french("cli.metavar.file"),
        help=french("cli.option.tls_cert"),
    )  # fmt: skip
    parser.add_argument(
        "--tls-key", type=Path, metavar=french("cli.metavar.file"),
        help=french("cli.option.tls_key"),
    )  # fmt: skip
    parser.add_argument(
        "--workers", type=whole_number, default=1, metavar=french("cli.metavar.number"),
        help=french("cli.option.workers"),
    )  # fmt: skip
    parser.add_argument(
        "--public-url", metavar=french("cli.metavar.url"),
        help=french("cli.option.public_url", variable="KIOSK_RECTORAT_PUBLIC_URL"),
    )  # fmt: skip
    parser.add_argument(
        "--log-level", default="info", choices=LOG_LEVELS, help=french("cli.option.log_level")
    )


def _kiosk_name(parser: argparse.ArgumentParser) -> None:
    store_options(parser)
    parser.add_argument(
        "name", metavar=french("cli.metavar.name"), help=french("cli.option.kiosk_name")
    )


def private_store_url(args: argparse.Namespace, environ=os.environ) -> str:
    """The store's URL: ``--db`` (or ``KIOSK_RECTORAT_DB``), the operator's to place; else
    the SQLite file of the rectorat's data dir, made private first as a kiosk's is (0700,
    its files 0600): it holds password hashes, codes' hashes and the candidates'
    documents."""
    url = getattr(args, "rectorat_db", None) or environ.get(DB_ENVIRONMENT)
    if url:
        return url
    from kiosk.private import tighten
    from kiosk.rectorat.store import default_url
    from kiosk.runtime.config import default_data_dir

    data_dir = Path(
        getattr(args, "rectorat_data_dir", None)
        or getattr(args, "data_dir", None)
        or (Path(environ["KIOSK_DATA_DIR"]) if environ.get("KIOSK_DATA_DIR") else None)
        or default_data_dir()
    ).expanduser()
    tighten(data_dir)
    return default_url(data_dir)


@contextmanager
def _refusals() -> Iterator[None]:
    """A store that cannot be used, or a kiosk name the service refuses, is the refusal of
    the command: said on stderr, exit code 2."""
    from kiosk.errors import StoreError
    from kiosk.rectorat.kiosks import CredentialError

    try:
        yield
    except (StoreError, CredentialError) as error:
        raise CommandError(str(error)) from error


@contextmanager
def _service(args: argparse.Namespace) -> Iterator[RectoratService]:
    """The rectorat's service over its store, closed at the end of the command."""
    require_service()
    from kiosk.clock import Clock
    from kiosk.rectorat.service import RectoratService
    from kiosk.rectorat.store import open_store

    with _refusals():
        store = open_store(private_store_url(args))
        try:
            yield RectoratService(store, Clock.from_setting(os.environ.get("KIOSK_NOW")))
        finally:
            store.close()


def _kiosk_list(args: argparse.Namespace) -> int:
    with _service(args) as service:
        for name, created_at, revoked_at in service.kiosks():
            state = (
                french("cli.rectorat.revoked_on", when=revoked_at.isoformat(timespec="seconds"))
                if revoked_at
                else french("cli.rectorat.active")
            )
            print(f"{name}\t{created_at.isoformat(timespec='seconds')}\t{state}")
    return 0


def _kiosk_add(args: argparse.Namespace) -> int:
    with _service(args) as service:
        token = service.issue_credential(args.name)
    # stdout holds only the credential, NOM:JETON, as the kiosk's
    # configuration takes it (sync.token, or the file sync.token_file).
    print(french("cli.rectorat.issued", name=args.name), file=sys.stderr)
    print(f"{args.name}:{token}")
    return 0


def _kiosk_revoke(args: argparse.Namespace) -> int:
    with _service(args) as service:
        service.revoke_credential(args.name)
    print(french("cli.rectorat.revoked", name=args.name))
    return 0


def _publish_arguments(parser: argparse.ArgumentParser) -> None:
    store_options(parser)
    parser.add_argument(
        "--title", required=True, metavar=french("cli.metavar.title"),
        help=french("cli.option.publish_title"),
    )  # fmt: skip
    parser.add_argument(
        "--file", dest="reference", metavar=french("cli.metavar.reference"),
        help=french("cli.option.publish_file"),
    )  # fmt: skip
    parser.add_argument(
        "--config", type=Path, metavar=french("cli.metavar.file"), default=argparse.SUPPRESS,
        help=french("cli.option.config"),
    )  # fmt: skip
    parser.add_argument(
        "path",
        type=Path,
        metavar=french("cli.metavar.path"),
        help=french("cli.option.publish_path"),
    )


def _publish(args: argparse.Namespace) -> int:
    """One PDF (its file reference from ``--file`` or its name), or each PDF of a folder,
    named by its file reference: published for its candidate, who is mailed."""
    import getpass

    from kiosk.pdf_check import NotReadable, read_document
    from kiosk.rectorat.exam_office import NotPublished
    from kiosk.rectorat.mail import mail_from_config

    path: Path = args.path
    if path.is_dir():
        if args.reference:
            return refuse(french("cli.rectorat.publish_file_folder"))
        files = sorted(f for f in path.iterdir() if f.is_file() and f.suffix.lower() == ".pdf")
        if not files:
            return refuse(french("cli.rectorat.publish_none", folder=str(path)))
    else:
        files = [path]
    by = os.environ.get("SUDO_USER") or getpass.getuser()
    refused = 0
    with _service(args) as service:
        service.mail = mail_from_config(_config(args), service.clock)
        for file in files:
            reference = args.reference or file.stem
            try:
                document, told = service.publish(
                    reference, read_document(str(file)), args.title, by
                )
            except NotPublished as problem:
                refused += 1
                warn(french(f"cli.rectorat.publish_{problem.reason}", file=str(file)))
                continue
            except NotReadable as problem:
                refused += 1
                if problem.reason == "too_large":
                    warn(french("cli.rectorat.publish_too_large", file=str(file)))
                else:
                    why = french(f"cli.rectorat.unreadable_{problem.reason}", error=problem.detail)
                    warn(french("cli.rectorat.publish_unreadable", file=str(file), error=why))
                continue
            print(french("cli.rectorat.published", file=str(file), reference=reference,
                         title=document.title, size=document.size))  # fmt: skip
            if told == "mailed":
                print(french("cli.rectorat.publish_mailed"))
            else:
                warn(french(f"cli.rectorat.publish_{told}"))
    return 1 if refused else 0


def _serve(args: argparse.Namespace) -> int:
    require_service()
    if (args.tls_cert is None) != (args.tls_key is None):
        return refuse(french("cli.rectorat.tls_pair"))
    if args.tls_cert is not None:
        import ssl

        # Read before anything starts: a file that cannot be read is said by the command
        # (an OSError with its name: ssl's has none), one that is no certificate or key here.
        for path in (args.tls_cert, args.tls_key):
            with open(path, "rb"):
                pass
        try:
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
                args.tls_cert, args.tls_key
            )
        except ssl.SSLError:
            return refuse(
                french(
                    "cli.rectorat.tls_unusable",
                    cert_file=str(args.tls_cert),
                    key_file=str(args.tls_key),
                )
            )
    with _refusals():
        return _serve_api(args, private_store_url(args))


def _serve_api(args: argparse.Namespace, url: str) -> int:
    import uvicorn

    from kiosk.clock import Clock
    from kiosk.rectorat.api import DB_ENVIRONMENT as APP_DB_ENVIRONMENT
    from kiosk.rectorat.api import make_app
    from kiosk.rectorat.mail import mail_from_config
    from kiosk.rectorat.store import open_store

    if args.public_url:
        # In the environment: the workers of ``--workers N`` read it there too.
        os.environ["KIOSK_RECTORAT_PUBLIC_URL"] = args.public_url
    tls = {}
    if args.tls_cert is not None:
        tls = {"ssl_certfile": str(args.tls_cert), "ssl_keyfile": str(args.tls_key)}
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s",
    )
    common = {
        "host": args.host,
        "port": args.port,
        "log_level": args.log_level,
        "proxy_headers": False,
        "timeout_keep_alive": KEEP_ALIVE,
        **tls,
    }
    if args.workers > 1:
        # The workers build their app from the environment: the same settings go there.
        config = _config(args)
        os.environ.update(KIOSK_DATA_DIR=str(config.data_dir), KIOSK_SESSION=config.session)
        if getattr(args, "config", None):
            os.environ["KIOSK_CONFIG"] = str(args.config)
        if not url.startswith(("postgres", "postgresql")):
            warn(french("cli.rectorat.sqlite_workers"))
        # Create or migrate the schema once, before the workers start.
        open_store(url).close()
        os.environ[APP_DB_ENVIRONMENT] = url
        uvicorn.run(
            "kiosk.rectorat.api:app_from_environment", factory=True, workers=args.workers, **common
        )
        return 0
    clock = Clock.from_setting(os.environ.get("KIOSK_NOW"))
    mail = mail_from_config(_config(args), clock)
    store = open_store(url, pool=True)
    app = make_app(store, clock, close_store=True, mail=mail)
    uvicorn.run(app, **common)
    return 0


def _config(args: argparse.Namespace) -> Config:
    """The kiosks' configuration, for what the rectorat shares with them: its mail."""
    from kiosk.runtime.config import load_config

    return load_config(
        getattr(args, "config", None),
        overrides={
            "data_dir": getattr(args, "rectorat_data_dir", None) or getattr(args, "data_dir", None),
            "session": getattr(args, "session", None),
        },
    )


COMMANDS: tuple[Command, ...] = (
    Command("serve", "cli.command.rectorat_serve", _serve, _serve_arguments),
    Command(
        "kiosk",
        "cli.command.rectorat_kiosk",
        arguments=store_options,
        subcommands=(
            Command("add", "cli.command.rectorat_kiosk_add", _kiosk_add, _kiosk_name),
            Command("revoke", "cli.command.rectorat_kiosk_revoke", _kiosk_revoke, _kiosk_name),
            Command("list", "cli.command.rectorat_kiosk_list", _kiosk_list, store_options),
        ),
    ),
    Command("publish", "cli.command.rectorat_publish", _publish, _publish_arguments),
)
RECTORAT = Command(
    "rectorat", "cli.command.rectorat", arguments=store_options, subcommands=COMMANDS
)


def parser() -> Parser:
    """``kiosk rectorat`` on its own, built from the same table."""
    built = Parser(prog="kiosk rectorat", description=french(RECTORAT.help))
    RECTORAT.arguments(built)
    add_commands(built, COMMANDS)
    return built


def main(argv: list[str] | None = None) -> int:
    """``python -m kiosk.rectorat.cli …``: the same as ``kiosk rectorat …``."""
    return carry_out(parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
