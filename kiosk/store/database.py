"""The kiosk's local store: one SQLite file, migrated in place, safe against power cuts.

A store found damaged at start is never repaired, replaced or written to: opening it
raises :class:`StoreDamaged`, whose message tells staff what to do.
"""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

from peewee import SqliteDatabase

from kiosk.errors import StoreError
from kiosk.store.models import MODELS

PRAGMAS = {
    "journal_mode": "wal",
    "foreign_keys": 1,
    # A save the candidate was told about must survive a power cut.
    "synchronous": "full",
    "busy_timeout": 10_000,
}


class StoreDamaged(StoreError):
    """The store's file is damaged (or is not a store): staff must restore or set it aside."""


class KioskDatabase(SqliteDatabase):
    """The store's connection, with two rules of its own for transactions.

    Each transaction takes the write lock when it begins (``BEGIN IMMEDIATE``): the desk,
    mail delivery and sync write from their own threads, and a transaction that read
    first and then wrote after another thread's commit would fail at once with
    « database is locked » instead of waiting its turn.

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


def migrations() -> list[tuple[int, str]]:
    """Every migration shipped, as (number, SQL), in order."""
    folder = Path(__file__).with_name("migrations")
    return sorted(
        (int(path.name[:4]), path.read_text(encoding="utf-8"))
        for path in folder.glob("[0-9][0-9][0-9][0-9]_*.sql")
    )


def schema_version(db: SqliteDatabase) -> int:
    return db.execute_sql("PRAGMA user_version").fetchone()[0]


def migrate(db: SqliteDatabase) -> int:
    """Bring the schema up to date, one migration per transaction; returns the version."""
    shipped = migrations()
    latest = shipped[-1][0] if shipped else 0
    current = schema_version(db)
    if current > latest:
        raise StoreError(
            f"the store is at schema version {current}, newer than this program ({latest})"
        )
    for number, sql in shipped:
        if number <= current:
            continue
        with db.atomic():
            for statement in statements(sql):
                db.execute_sql(statement)
            db.execute_sql(f"PRAGMA user_version = {number}")
    return schema_version(db)


def statements(sql: str) -> list[str]:
    """The statements of a script, as SQLite itself delimits them (trigger bodies hold ';')."""
    found, buffer = [], ""
    for line in sql.splitlines(keepends=True):
        if not buffer and (not line.strip() or line.strip().startswith("--")):
            continue
        buffer += line
        if sqlite3.complete_statement(buffer):
            found.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        raise StoreError(f"incomplete SQL statement in a migration: {buffer.strip()[:60]}")
    return found


def check_store(path: Path | str) -> None:
    """Raise :class:`StoreDamaged` when the store at ``path`` is damaged, :class:`StoreError`
    when it cannot be read; a missing or empty file is a new store.

    The file is read through a read-only connection, before any pragma or migration
    could write to it: a damaged store is left exactly as it was found, for staff.
    """
    from kiosk.i18n import french

    path = Path(path)
    try:
        if path.stat().st_size == 0:
            return
    except FileNotFoundError:
        return
    except OSError as error:
        raise StoreError(
            french("fault.store_unreadable", path=path, detail=error.strerror or error)
        ) from error
    try:
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=10)
    except sqlite3.Error as error:
        raise StoreError(french("fault.store_unreadable", path=path, detail=error)) from error
    try:
        findings = [row[0] for row in connection.execute("PRAGMA quick_check(5)")]
    except sqlite3.DatabaseError as error:
        if getattr(error, "sqlite_errorcode", None) in (
            sqlite3.SQLITE_CORRUPT,
            sqlite3.SQLITE_NOTADB,
        ):
            raise StoreDamaged(french("fault.store_damaged", path=path, detail=error)) from error
        raise StoreError(french("fault.store_unreadable", path=path, detail=error)) from error
    finally:
        connection.close()
    if findings != ["ok"]:
        detail = "; ".join(" ".join(finding.split()) for finding in findings)
        raise StoreDamaged(french("fault.store_damaged", path=path, detail=detail[:300]))


def store_trouble(path: Path | str) -> str | None:
    """What keeps the store at ``path`` from being used, for staff; None when it is sound."""
    try:
        check_store(path)
    except StoreError as error:
        return str(error)
    return None


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
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if (
            isinstance(error, sqlite3.Error)
            and getattr(error, "sqlite_errorcode", None) is not None
        ):
            key = _STORAGE_CODES.get(error.sqlite_errorcode & 0xFF)
            if key:
                return key
        if isinstance(error, OSError) and error.errno in _STORAGE_ERRNOS:
            return _STORAGE_ERRNOS[error.errno]
        wrapped = error.args[0] if error.args and isinstance(error.args[0], BaseException) else None
        error = wrapped or error.__cause__ or error.__context__
    return None


def open_store(path: Path | str) -> SqliteDatabase:
    """Check, open (creating it if needed) and migrate the store, and bind the models to it.

    Raises :class:`StoreDamaged` for a damaged store, which is left untouched.
    """
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        check_store(path)
    db = KioskDatabase(str(path), pragmas=PRAGMAS)
    db.bind(MODELS, bind_refs=False, bind_backrefs=False)
    try:
        db.connect(reuse_if_open=True)
        migrate(db)
    except Exception:
        db.close()
        raise
    return db
