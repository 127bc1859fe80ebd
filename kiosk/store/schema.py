"""One way to bring a store's schema up to date, for the kiosk's store and the rectorat's.

A store's schema has a version, a whole number. A :class:`Migration` takes it from the
number before to its own ``number``; :func:`migrate` applies the steps the store has not
had, in order, each in its own transaction with the new version written in that same
transaction: a step that fails leaves the store as it was before it, version included.
A store whose version is newer than the program's last step is refused, untouched.

Where the version is kept, and how a step's transaction is opened (the lock it takes),
is each store's own :class:`Versioning`: ``PRAGMA user_version`` for the kiosk's SQLite
file (:func:`user_version`), rows of ``rc_schema`` for the rectorat's store.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from peewee import Database

from kiosk.errors import StoreError


@dataclass(frozen=True)
class Migration:
    """One step: ``apply`` takes the schema from the version before to ``number``."""

    number: int
    name: str
    apply: Callable[[], None]


@dataclass(frozen=True)
class Versioning:
    """A store's schema version: how it is read and written, and the transaction (with
    whatever lock the store needs) in which a step and its new version are written."""

    read: Callable[[], int]
    write: Callable[[int], object]
    transaction: Callable[[], AbstractContextManager[object]]


def latest(steps: Sequence[Migration], baseline: Migration | None = None) -> int:
    """The version the program brings a store to."""
    numbers = [step.number for step in steps]
    if baseline is not None:
        numbers.append(baseline.number)
    return max(numbers, default=0)


def migrate(
    versioning: Versioning,
    steps: Sequence[Migration],
    *,
    baseline: Migration | None = None,
    what: str = "the store",
) -> int:
    """Apply the steps the store has not had; returns the version it is at.

    ``baseline``, when given, is applied instead of the steps to a store at version 0
    (a new store): it makes the whole schema at once, at ``baseline.number``.

    The version is first read outside any transaction (a store up to date takes no lock),
    then again inside each step's transaction: another process may have migrated the
    store meanwhile, and then the step is not applied twice.
    """
    ordered = sorted(steps, key=lambda step: step.number)
    if len({step.number for step in ordered}) != len(ordered):
        raise ValueError("two migrations have the same number")
    last = latest(ordered, baseline)
    if baseline is not None and (
        baseline.number != last or (ordered and ordered[-1].number != last)
    ):
        raise ValueError("the baseline and the last step must make the same, latest schema")
    current = _checked(versioning.read(), last, what)
    while current < last:
        with versioning.transaction():
            current = _checked(versioning.read(), last, what)
            if current >= last:
                break
            if current == 0 and baseline is not None:
                step = baseline
            else:
                step = next(step for step in ordered if step.number > current)
            step.apply()
            versioning.write(step.number)
            current = step.number
    return versioning.read()


def _checked(current: int, last: int, what: str) -> int:
    if current > last:
        raise StoreError(f"{what} is at schema version {current}, newer than this program ({last})")
    return current


# -- the kiosk's store: SQL files, PRAGMA user_version --------------------------------------


def user_version(db: Database) -> Versioning:
    """The version in SQLite's ``PRAGMA user_version``; a step's transaction is ``db.atomic()``."""

    def read() -> int:
        return db.execute_sql("PRAGMA user_version").fetchone()[0]

    def write(number: int) -> None:
        db.execute_sql(f"PRAGMA user_version = {int(number)}")

    return Versioning(read=read, write=write, transaction=db.atomic)


def sql_files(folder: Path) -> list[tuple[int, str, str]]:
    """The SQL migrations in ``folder`` (``NNNN_name.sql``), as (number, name, SQL), in order."""
    return sorted(
        (int(path.name[:4]), path.stem[5:], path.read_text(encoding="utf-8"))
        for path in folder.glob("[0-9][0-9][0-9][0-9]_*.sql")
    )


def sql_steps(db: Database, folder: Path) -> list[Migration]:
    """The SQL files of ``folder`` as steps run on ``db``, one statement at a time."""

    def step(number: int, name: str, sql: str) -> Migration:
        def apply() -> None:
            for statement in statements(sql):
                db.execute_sql(statement)

        return Migration(number, name, apply)

    return [step(number, name, sql) for number, name, sql in sql_files(folder)]


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
