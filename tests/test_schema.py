"""The migration runner (kiosk/store/schema.py), as the kiosk's store and the rectorat's use
it: steps in order, one transaction each, the version written with the step; a step that
fails leaves the version (and the schema) as they were; a store newer than the program
is refused, untouched."""

from __future__ import annotations

import contextlib
import sqlite3

import pytest

from kiosk.errors import StoreError
from kiosk.rectorat.store import SCHEMA_VERSION, RectoratStore
from kiosk.rectorat.store import open_store as open_rectorat
from kiosk.store import schema
from kiosk.store.database import MIGRATIONS, KioskDatabase, migrations, open_store


class Broken(Exception):
    pass


def tables(db) -> set[str]:
    return {row[0] for row in db.execute_sql("SELECT name FROM sqlite_master WHERE type = 'table'")}


# -- the runner itself ------------------------------------------------------------------


class Memory:
    """A version kept in memory, with the transactions counted."""

    def __init__(self, version: int = 0) -> None:
        self.version = version
        self.transactions = 0

    @contextlib.contextmanager
    def transaction(self):
        self.transactions += 1
        before = self.version
        try:
            yield
        except BaseException:
            self.version = before
            raise

    def versioning(self) -> schema.Versioning:
        return schema.Versioning(
            read=lambda: self.version,
            write=lambda number: setattr(self, "version", number),
            transaction=self.transaction,
        )


def test_steps_run_in_order_each_in_its_transaction_from_the_current_version():
    ran: list[int] = []
    steps = [schema.Migration(n, f"step {n}", lambda n=n: ran.append(n)) for n in (3, 1, 2)]
    memory = Memory(version=1)
    assert schema.migrate(memory.versioning(), steps) == 3
    assert ran == [2, 3] and memory.transactions == 2
    assert schema.migrate(memory.versioning(), steps) == 3
    assert ran == [2, 3] and memory.transactions == 2  # up to date: no transaction at all


def test_the_baseline_makes_a_new_store_and_only_a_new_one():
    ran: list[str] = []
    steps = [schema.Migration(n, f"step {n}", lambda n=n: ran.append(f"step {n}")) for n in (2, 3)]
    baseline = schema.Migration(3, "all", lambda: ran.append("all"))
    new, old = Memory(0), Memory(1)
    assert schema.migrate(new.versioning(), steps, baseline=baseline) == 3
    assert schema.migrate(old.versioning(), steps, baseline=baseline) == 3
    assert ran == ["all", "step 2", "step 3"]
    with pytest.raises(ValueError):
        schema.migrate(Memory().versioning(), steps, baseline=schema.Migration(2, "old", print))


def test_two_steps_with_one_number_are_refused():
    steps = [schema.Migration(1, "a", print), schema.Migration(1, "b", print)]
    with pytest.raises(ValueError):
        schema.migrate(Memory().versioning(), steps)


def test_a_failing_step_stops_the_run_and_keeps_the_version_before_it():
    ran: list[int] = []

    def broken() -> None:
        raise Broken()

    steps = [
        schema.Migration(1, "one", lambda: ran.append(1)),
        schema.Migration(2, "two", broken),
        schema.Migration(3, "three", lambda: ran.append(3)),
    ]
    memory = Memory()
    with pytest.raises(Broken):
        schema.migrate(memory.versioning(), steps)
    assert memory.version == 1 and ran == [1]


def test_a_newer_store_is_refused_before_any_transaction():
    memory = Memory(version=5)
    with pytest.raises(StoreError, match=r"at schema version 5, newer than this program \(3\)"):
        schema.migrate(memory.versioning(), [schema.Migration(3, "three", print)])
    assert memory.version == 5 and memory.transactions == 0


# -- the kiosk's store: its SQL files, PRAGMA user_version --------------------------------


def test_the_kiosk_steps_are_its_sql_files(tmp_path):
    db = KioskDatabase(str(tmp_path / "kiosk.sqlite3"))
    steps = schema.sql_steps(db, MIGRATIONS)
    assert [(step.number, step.name) for step in steps][:2] == [
        (1, "initial"),
        (2, "registrations"),
    ]
    assert [step.number for step in steps] == [number for number, _ in migrations()]


def test_a_failing_kiosk_step_leaves_the_store_at_the_version_before(tmp_path):
    path = tmp_path / "kiosk.sqlite3"
    open_store(path).close()
    latest = migrations()[-1][0]
    db = KioskDatabase(str(path))
    db.connect()
    try:
        before = tables(db)

        def half_done() -> None:
            db.execute_sql("CREATE TABLE half_done (id INTEGER)")
            db.execute_sql("INSERT INTO half_done VALUES (1)")
            raise Broken()

        steps = [*schema.sql_steps(db, MIGRATIONS), schema.Migration(latest + 1, "x", half_done)]
        with pytest.raises(Broken):
            schema.migrate(schema.user_version(db), steps)
        assert schema.user_version(db).read() == latest
        assert tables(db) == before
    finally:
        db.close()


def test_a_kiosk_store_fails_midway_and_keeps_the_steps_before(tmp_path):
    db = KioskDatabase(str(tmp_path / "kiosk.sqlite3"))
    db.connect()
    try:
        shipped = schema.sql_steps(db, MIGRATIONS)

        def broken() -> None:
            shipped[2].apply()  # its statements run, then the step fails
            raise Broken()

        steps = [*shipped[:2], schema.Migration(3, "broken", broken), *shipped[3:]]
        with pytest.raises(Broken):
            schema.migrate(schema.user_version(db), steps)
        assert schema.user_version(db).read() == 2
        assert "document" not in tables(db) and {"account", "registration"} <= tables(db)
        # Run again with the real steps: it goes on from version 2.
        assert schema.migrate(schema.user_version(db), shipped) == migrations()[-1][0]
        assert "document" in tables(db)
    finally:
        db.close()


def test_a_kiosk_store_newer_than_the_program_is_refused_untouched(tmp_path):
    path = tmp_path / "kiosk.sqlite3"
    open_store(path).close()
    latest = migrations()[-1][0]
    with sqlite3.connect(path) as raw:
        raw.execute(f"PRAGMA user_version = {latest + 1}")
        raw.execute("DROP TABLE sync_state")  # the newer program's schema
    with pytest.raises(StoreError, match=f"at schema version {latest + 1}, newer"):
        open_store(path)
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == latest + 1
        names = {row[0] for row in raw.execute("SELECT name FROM sqlite_master")}
        assert "sync_state" not in names


# -- the rectorat's store: its Python steps, rows of rc_schema -----------------------------


def schema_rows(store: RectoratStore) -> list[int]:
    return [row[0] for row in store.db.execute_sql("SELECT version FROM rc_schema ORDER BY 1")]


def back_to_schema_1(store: RectoratStore) -> None:
    """Schema 1's shape as far as the steps care: no staff tables, one rc_schema row."""
    with store.write():
        store.db.execute_sql("DROP TABLE rc_audit")
        store.db.execute_sql("DROP TABLE rc_staff")
        store.db.execute_sql("UPDATE rc_schema SET version = 1")


def test_a_new_rectorat_store_is_made_at_once_at_the_latest_version(store):
    assert schema_rows(store) == [SCHEMA_VERSION] == [10]
    assert store.migrate() == SCHEMA_VERSION
    assert schema_rows(store) == [10]


def test_a_schema_4_rectorat_store_gets_its_table_of_codes(store_url):
    store = open_rectorat(store_url)
    try:
        with store.write():
            store.db.execute_sql("DROP TABLE rc_code")
            store.db.execute_sql("UPDATE rc_schema SET version = 4")
    finally:
        store.close()
    store = open_rectorat(store_url)
    try:
        rows = schema_rows(store)
        assert (rows[0], rows[-1]) == (4, 10) and store.db.table_exists("rc_code")
    finally:
        store.close()


def test_a_failing_rectorat_step_leaves_the_version_before_it(store_url, monkeypatch):
    store = open_rectorat(store_url)
    try:
        back_to_schema_1(store)
    finally:
        store.close()

    def half_done(self) -> None:
        self.db.execute_sql("CREATE TABLE rc_half_done (id INTEGER)")
        raise Broken()

    monkeypatch.setattr(RectoratStore, "_migrate_to_3", half_done)
    with pytest.raises(StoreError, match="Broken"):
        open_rectorat(store_url)
    monkeypatch.undo()

    store = RectoratStore(_connect(store_url), store_url)
    try:
        # Step 2 was committed with its row; step 3 was rolled back, row and all.
        assert schema_rows(store) == [1, 2] and store.schema_version() == 2
        assert store.db.table_exists("rc_staff") and store.db.table_exists("rc_audit")
        assert not store.db.table_exists("rc_half_done")
    finally:
        store.close()


def test_a_rectorat_store_newer_than_the_program_is_refused_untouched(store):
    store.db.execute_sql("INSERT INTO rc_schema (version, migrated_at) VALUES (11, 'x')")
    with pytest.raises(StoreError, match=r"rectorat store is at schema version 11, newer than"):
        store.migrate()
    assert schema_rows(store) == [10, 11]


def _connect(url: str):
    from playhouse.db_url import connect

    return connect(url)


def test_a_schema_7_rectorat_store_gets_applied_changes_and_documents(store_url):
    store = open_rectorat(store_url)
    try:
        with store.write():
            store.db.execute_sql("DROP TABLE rc_document")
            store.db.execute_sql("DROP TABLE rc_document_content")
            store.db.execute_sql("ALTER TABLE rc_address_change DROP COLUMN applied_at")
            store.db.execute_sql("ALTER TABLE rc_address_change DROP COLUMN applied_by")
            store.db.execute_sql("UPDATE rc_schema SET version = 7")
    finally:
        store.close()
    store = open_rectorat(store_url)
    try:
        assert schema_rows(store) == [7, 8, 9, 10]
        assert store.db.table_exists("rc_document") and store.db.table_exists("rc_document_content")
        columns = {c.name for c in store.db.get_columns("rc_address_change")}
        assert {"applied_at", "applied_by"} <= columns
    finally:
        store.close()
