"""``kiosk rectorat …``: serve the sync API, and issue or revoke kiosk credentials.

The store is ``--db URL`` (or ``KIOSK_RECTORAT_DB``), by default the SQLite file
``rectorat.sqlite3`` in ``--data-dir`` (or ``KIOSK_DATA_DIR``, or the kiosk's default
data dir). This module imports nothing heavy at load: ``kiosk.runtime.cli`` builds its parser.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

DB_ENVIRONMENT = "KIOSK_RECTORAT_DB"


def _store_options() -> argparse.ArgumentParser:
    # SUPPRESS: given at any level (``kiosk rectorat --db U serve`` or ``… serve --db U``),
    # an option is not overwritten by a lower level's default.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--data-dir", dest="rectorat_data_dir", metavar="DIR", type=Path, default=argparse.SUPPRESS,
        help="dossier du rectorat (base SQLite rectorat.sqlite3 par défaut)",
    )  # fmt: skip
    common.add_argument(
        "--db", dest="rectorat_db", metavar="URL", default=argparse.SUPPRESS,
        help=f"URL de la base : postgresql://… ou sqlite:///chemin (ou {DB_ENVIRONMENT})",
    )  # fmt: skip
    return common


def add_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``rectorat`` and its subcommands to the ``kiosk`` command's subparsers."""
    common = _store_options()
    rectorat = commands.add_parser(
        "rectorat", parents=[common], help="le service de synchronisation du rectorat"
    )
    _fill(rectorat, common)
    return rectorat


def _fill(rectorat: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    actions = rectorat.add_subparsers(dest="rectorat_command", metavar="ACTION", required=True)
    serve = actions.add_parser("serve", parents=[common], help="servir l'API de synchronisation")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8443)
    serve.add_argument("--tls-cert", type=Path, help="certificat TLS (PEM)")
    serve.add_argument("--tls-key", type=Path, help="clé privée TLS (PEM)")
    serve.add_argument(
        "--workers", type=int, default=1, help="processus de service (PostgreSQL au-delà de 1)"
    )
    serve.add_argument(
        "--log-level", default="info", choices=("critical", "error", "warning", "info", "debug")
    )
    kiosk = actions.add_parser("kiosk", parents=[common], help="gérer les identifiants des bornes")
    kiosk_actions = kiosk.add_subparsers(dest="kiosk_command", metavar="ACTION", required=True)
    add = kiosk_actions.add_parser(
        "add", parents=[common], help="créer l'identifiant d'une borne (jeton affiché une fois)"
    )
    add.add_argument("name")
    revoke = kiosk_actions.add_parser(
        "revoke", parents=[common], help="révoquer l'identifiant d'une borne"
    )
    revoke.add_argument("name")
    kiosk_actions.add_parser("list", parents=[common], help="lister les bornes")


def database_url(args: argparse.Namespace, environ=os.environ) -> str:
    url = getattr(args, "rectorat_db", None) or environ.get(DB_ENVIRONMENT)
    if url:
        return url
    from kiosk.rectorat.store import default_url
    from kiosk.runtime.config import default_data_dir

    data_dir = (
        getattr(args, "rectorat_data_dir", None)
        or getattr(args, "data_dir", None)
        or (Path(environ["KIOSK_DATA_DIR"]) if environ.get("KIOSK_DATA_DIR") else None)
        or default_data_dir()
    )
    return default_url(Path(data_dir).expanduser())


def run(args: argparse.Namespace) -> int:
    """Carry out a parsed ``kiosk rectorat …`` command."""
    from kiosk.errors import StoreError

    try:
        url = database_url(args)
        if args.rectorat_command == "serve":
            return _serve(args, url)
        return _kiosk(args, url)
    except StoreError as error:
        print(f"kiosk: {error}", file=sys.stderr)
        return 2


def _kiosk(args: argparse.Namespace, url: str) -> int:
    from kiosk.clock import Clock
    from kiosk.rectorat.service import CredentialError, RectoratService
    from kiosk.rectorat.store import open_store

    store = open_store(url)
    try:
        service = RectoratService(store, Clock.from_setting(os.environ.get("KIOSK_NOW")))
        if args.kiosk_command == "list":
            for name, created_at, revoked_at in service.kiosks():
                state = (
                    f"révoquée le {revoked_at.isoformat(timespec='seconds')}"
                    if revoked_at
                    else "active"
                )
                print(f"{name}\t{created_at.isoformat(timespec='seconds')}\t{state}")
            return 0
        try:
            if args.kiosk_command == "add":
                token = service.issue_credential(args.name)
                # stdout holds only the credential, NOM:JETON, as the kiosk's
                # configuration takes it (sync.token, or the file sync.token_file).
                print(
                    f"Identifiant de la borne {args.name}, affiché une seule fois (NOM:JETON) :",
                    file=sys.stderr,
                )
                print(f"{args.name}:{token}")
                return 0
            service.revoke_credential(args.name)
            print(f"Identifiant de la borne {args.name} révoqué.")
            return 0
        except CredentialError as error:
            print(f"kiosk: {error}", file=sys.stderr)
            return 2
    finally:
        store.close()


def _serve(args: argparse.Namespace, url: str) -> int:
    import uvicorn

    from kiosk.clock import Clock
    from kiosk.rectorat.api import DB_ENVIRONMENT as APP_DB_ENVIRONMENT
    from kiosk.rectorat.api import make_app
    from kiosk.rectorat.store import open_store

    if (args.tls_cert is None) != (args.tls_key is None):
        print("kiosk: --tls-cert and --tls-key go together", file=sys.stderr)
        return 2
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
        **tls,
    }
    if args.workers > 1:
        if not url.startswith(("postgres", "postgresql")):
            print("kiosk: warning: several workers on SQLite take turns to write", file=sys.stderr)
        # Create or migrate the schema once, before the workers start.
        open_store(url).close()
        os.environ[APP_DB_ENVIRONMENT] = url
        uvicorn.run(
            "kiosk.rectorat.api:app_from_environment", factory=True, workers=args.workers, **common
        )
        return 0
    store = open_store(url, pool=True)
    app = make_app(store, Clock.from_setting(os.environ.get("KIOSK_NOW")), close_store=True)
    uvicorn.run(app, **common)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m kiosk.rectorat.cli …``: the same as ``kiosk rectorat …``."""
    common = _store_options()
    parser = argparse.ArgumentParser(prog="kiosk rectorat", parents=[common])
    _fill(parser, common)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
