"""Whether the store's file can be used, read before anything opens or writes to it.

The launcher looks at the store before it starts each kiosk, while the first one loads
its code beside it: this module reads the file with the standard library's ``sqlite3``
alone, without peewee and the store's models (kiosk.store.database), which the launcher
never needs.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from kiosk.errors import StoreError
from kiosk.i18n import french


class StoreDamaged(StoreError):
    """The store's file is damaged (or is not a store): staff must restore or set it aside."""


def check_store(path: Path | str) -> None:
    """Raise :class:`StoreDamaged` when the store at ``path`` is damaged, :class:`StoreError`
    when it cannot be read; a missing or empty file is a new store.

    The file is read through a read-only connection, before any pragma or migration
    could write to it: a damaged store is left exactly as it was found, for staff.
    """
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
