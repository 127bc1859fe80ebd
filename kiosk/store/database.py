"""The kiosk's local store: one SQLite file, migrated in place, safe against power cuts.

:func:`open_store` gives a :class:`KioskStore`: the connection and the kiosk's models
bound to it (``store.Account``…), so that two stores open in one process never share a
model. A store found damaged at start is never repaired, replaced or written to:
opening it raises :class:`StoreDamaged`, whose message tells staff what to do.
"""

from __future__ import annotations

import errno
import sqlite3
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, TypeVar

from peewee import Database, Model, SqliteDatabase

from kiosk.store import schema
from kiosk.store.binding import bound
from kiosk.store.check import check_store
from kiosk.store.models import (
    MODELS,
    Account,
    AddressChange,
    Document,
    Draft,
    LoginFailure,
    OneTimeCode,
    OutboxRow,
    Registration,
    StaffAccount,
    StaffAudit,
    SyncState,
)

M = TypeVar("M", bound=Model)

PRAGMAS = {
    "journal_mode": "wal",
    "foreign_keys": 1,
    # A save the candidate was told about must survive a power cut.
    "synchronous": "full",
    "busy_timeout": 10_000,
}


class KioskDatabase(SqliteDatabase):
    """The store's connection, with two rules of its own for transactions.

    Each transaction takes the write lock when it begins (``BEGIN IMMEDIATE``): the
    candidate's screens, mail delivery and sync write from their own threads, and a
    transaction that read first and then wrote after another thread's commit would fail at
    once with « database is locked » instead of waiting its turn.

    SQLite itself ends a transaction that a full disk or an I/O error broke; the
    rollback that follows must not replace that error with « no transaction is active »:
    the caller, the log and the candidate are owed the real cause.
    """

    def __init__(self, database: str, **kwargs) -> None:
        super().__init__(database, lock_type="IMMEDIATE", **kwargs)

    def rollback(self) -> None:
        if not self.is_closed() and not self.connection().in_transaction:
            return
        super().rollback()


MIGRATIONS = Path(__file__).with_name("migrations")


def migrations() -> list[tuple[int, str]]:
    """Every migration shipped, as (number, SQL), in order."""
    return [(number, sql) for number, _, sql in schema.sql_files(MIGRATIONS)]


def schema_version(db: Database) -> int:
    return schema.user_version(db).read()


def migrate(db: Database) -> int:
    """Bring the schema up to date, one migration per transaction; returns the version."""
    return schema.migrate(
        schema.user_version(db), schema.sql_steps(db, MIGRATIONS), what="the store"
    )


class KioskStore:
    """One kiosk store: its connection, ``db``, and the kiosk's models bound to it.

    ``store.Account``, ``store.Registration``… are subclasses of the models of
    :mod:`kiosk.store.models` whose database is this store's, their foreign keys between
    them (``registration.account``, ``account.registrations`` stay in this store). An
    instance is still an instance of the template: ``isinstance(row, Account)`` holds.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        made: dict[type[Any], type[Any]] = {}

        def bind(template: type[M]) -> type[M]:
            model = made[template] = bound(template, db, made)
            return model

        # Each after those it refers to, as in MODELS.
        self.Account = bind(Account)
        self.OneTimeCode = bind(OneTimeCode)
        self.LoginFailure = bind(LoginFailure)
        self.OutboxRow = bind(OutboxRow)
        self.Registration = bind(Registration)
        self.Draft = bind(Draft)
        self.AddressChange = bind(AddressChange)
        self.Document = bind(Document)
        self.StaffAccount = bind(StaffAccount)
        self.StaffAudit = bind(StaffAudit)
        self.SyncState = bind(SyncState)
        if tuple(made) != MODELS:
            raise RuntimeError("KioskStore binds every model of MODELS, in its order")
        self.models: tuple[type[Any], ...] = tuple(made.values())

    def __repr__(self) -> str:
        return f"<KioskStore {self.db.database}>"

    def atomic(self) -> AbstractContextManager[Any]:
        """A transaction on this store (a savepoint inside one)."""
        return self.db.atomic()

    def connection_context(self) -> AbstractContextManager[Any]:
        """This thread's connection for the block, closed after it."""
        return self.db.connection_context()

    def schema_version(self) -> int:
        return schema_version(self.db)

    def close(self) -> bool:
        """Close this thread's connection."""
        return self.db.close()


# SQLite's result codes for a write the disk refused, and the catalogue message each gets.
_STORAGE_CODES = {
    sqlite3.SQLITE_FULL: "fault.disk_full",
    sqlite3.SQLITE_IOERR: "fault.store_unavailable",
    sqlite3.SQLITE_READONLY: "fault.store_unavailable",
    sqlite3.SQLITE_CANTOPEN: "fault.store_unavailable",
    sqlite3.SQLITE_CORRUPT: "fault.store_unavailable",
    sqlite3.SQLITE_NOTADB: "fault.store_unavailable",
}
_STORAGE_ERRNOS = {
    errno.ENOSPC: "fault.disk_full",
    errno.EDQUOT: "fault.disk_full",
    errno.EIO: "fault.store_unavailable",
    errno.EROFS: "fault.store_unavailable",
}


def storage_problem(error: BaseException) -> str | None:
    """The catalogue message for an error that comes from the disk (full, failing, read-only)
    rather than from the program, or None. peewee wraps SQLite's errors: their chain is read."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if (
            isinstance(current, sqlite3.Error)
            and getattr(current, "sqlite_errorcode", None) is not None
        ):
            key = _STORAGE_CODES.get(current.sqlite_errorcode & 0xFF)
            if key:
                return key
        if isinstance(current, OSError) and current.errno in _STORAGE_ERRNOS:
            return _STORAGE_ERRNOS[current.errno]
        args = current.args
        wrapped = args[0] if args and isinstance(args[0], BaseException) else None
        current = wrapped or current.__cause__ or current.__context__
    return None


def _private(path: Path) -> None:
    """The store and its -wal and -shm files readable by the kiosk alone, whatever the umask:
    the store is made 0600 before SQLite opens it, and SQLite gives its -wal and -shm the
    store's mode."""
    from kiosk.private import private_file

    for each in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            if each is path or each.exists():
                private_file(each)
        except OSError:  # a store that cannot be written: SQLite says so in its own words
            pass


def open_store(path: Path | str) -> KioskStore:
    """Check, open (creating it if needed) and migrate the store; its models bound to it.

    Raises :class:`~kiosk.store.check.StoreDamaged` for a damaged store, which is left
    untouched.
    """
    if str(path) != ":memory:":
        Path(path).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        check_store(path)
        _private(Path(path))
    db = KioskDatabase(str(path), pragmas=PRAGMAS)
    try:
        db.connect(reuse_if_open=True)
        migrate(db)
    except Exception:
        db.close()
        raise
    return KioskStore(db)
