"""The kiosk's local store: one SQLite file, migrated in place, safe against power cuts."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from peewee import SqliteDatabase

from kiosk.errors import StoreError
from kiosk.models import MODELS

PRAGMAS = {
    "journal_mode": "wal",
    "foreign_keys": 1,
    # A save the candidate was told about must survive a power cut.
    "synchronous": "full",
    "busy_timeout": 10_000,
}


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


def open_store(path: Path | str) -> SqliteDatabase:
    """Open (creating it if needed) and migrate the store, and bind the models to it."""
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    db = SqliteDatabase(str(path), pragmas=PRAGMAS)
    db.bind(MODELS, bind_refs=False, bind_backrefs=False)
    try:
        db.connect(reuse_if_open=True)
        migrate(db)
    except Exception:
        db.close()
        raise
    return db
