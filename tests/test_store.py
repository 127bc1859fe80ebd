"""The SQLite store: pragmas, migrations, the schema against the models, cascades."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta

import pytest
from peewee import IntegrityError

from kiosk.errors import StoreError
from kiosk.store.database import migrations, open_store, schema_version
from kiosk.store.models import MODELS, Account, Record
from kiosk.sync.client import SyncService


def pragma(db, name):
    return db.execute_sql(f"PRAGMA {name}").fetchone()[0]


def make_account(store, clock, email="jean@exemple.fr") -> Account:
    now = clock.now()
    return store.Account.create(
        email=email,
        email_key=email,
        family_name="Dupont",
        given_names="Jean",
        password_hash="x",
        created_at=now,
        updated_at=now,
    )


def test_pragmas_make_saves_durable(kiosk_store):
    db = kiosk_store.db
    assert pragma(db, "journal_mode") == "wal"
    assert pragma(db, "foreign_keys") == 1
    assert pragma(db, "synchronous") == 2  # FULL


def test_user_version_is_the_last_migration(kiosk_store):
    shipped = migrations()
    assert [number for number, _ in shipped] == sorted({number for number, _ in shipped})
    assert shipped[0][0] == 1
    assert schema_version(kiosk_store.db) == shipped[-1][0]


def test_reopening_keeps_the_data_and_runs_no_migration(kiosk_store, tmp_path, clock, monkeypatch):
    db = kiosk_store.db
    account = make_account(kiosk_store, clock)
    version = schema_version(db)
    kiosk_store.close()
    ran = []
    real_execute = type(db).execute_sql

    def spy(self, sql, *args, **kwargs):
        ran.append(sql)
        return real_execute(self, sql, *args, **kwargs)

    monkeypatch.setattr(type(db), "execute_sql", spy)
    reopened = open_store(tmp_path / "kiosk.sqlite3")
    try:
        assert not [sql for sql in ran if "CREATE" in sql.upper() or "user_version =" in sql]
        assert schema_version(reopened.db) == version
        assert reopened.Account.get_by_id(account.id).email == "jean@exemple.fr"
    finally:
        reopened.close()


def test_a_store_from_a_newer_program_is_refused(tmp_path):
    path = tmp_path / "newer.sqlite3"
    open_store(path).close()
    latest = migrations()[-1][0]
    with sqlite3.connect(path) as raw:
        raw.execute(f"PRAGMA user_version = {latest + 1}")
    with pytest.raises(StoreError, match=str(latest + 1)):
        open_store(path)


def test_schema_11_knows_the_base_of_each_registration_nothing_changed_here_waits_for(
    tmp_path, clock
):
    """Registrations the rectorat has as they are here: their version is its own. One
    whose change waits, or was refused: not known (-1), and it is sent without a base. The
    pull starts again from the feed's beginning."""
    path = tmp_path / "kiosk.sqlite3"
    store = open_store(path)
    now = clock.now()
    registrations = []
    for n in range(3):
        account = make_account(store, clock, email=f"p{n}@exemple.fr")
        registration = store.Registration.create(
            account=account.id, session_id="bacpro-poitiers-2020", answers={"n": n},
            saved_at=now, created_at=now, updated_at=now, version=n + 2,
        )  # fmt: skip
        registrations.append(str(registration.id))
    delivered, refused = now, now
    for registration_id, delivered_at, failed_at in (
        (registrations[0], delivered, None),  # taken by the rectorat
        (registrations[2], None, refused),  # refused for good
    ):
        store.db.execute_sql(
            "UPDATE outbox SET delivered_at = ?, failed_at = ?"
            " WHERE json_extract(payload, '$.id') = ?",
            (store.OutboxRow.delivered_at.db_value(delivered_at),
             store.OutboxRow.failed_at.db_value(failed_at), registration_id),
        )  # fmt: skip
    store.db.execute_sql(
        "UPDATE outbox SET delivered_at = ? WHERE json_extract(payload, '$.entity') = 'account'",
        (store.OutboxRow.delivered_at.db_value(now),),
    )
    store.SyncState.create(name="cursor", value="41", created_at=now, updated_at=now)
    store.close()
    with sqlite3.connect(path) as raw:  # back to schema 10
        raw.execute("ALTER TABLE registration DROP COLUMN synced_version")
        raw.execute("PRAGMA user_version = 10")
    store = open_store(path)
    try:
        bases = {
            str(r.id): r.synced_version
            for r in store.Registration.select(
                store.Registration.id, store.Registration.synced_version
            )
        }
        assert [bases[key] for key in registrations] == [2, -1, -1]
        # The next pull reads every record again: a copy that drifted before is healed.
        assert store.SyncState.get(store.SyncState.name == "cursor").value == "0"
        # The change waiting goes without a base: the rectorat takes it as before.
        (item,) = [json.loads(item) for item in SyncService(store, clock, None).waiting().items]
        assert (item["id"], item["base"]) == (registrations[1], None)
    finally:
        store.close()


def test_the_migrated_schema_matches_the_models(kiosk_store):
    db = kiosk_store.db
    for model in (*MODELS, *kiosk_store.models):
        table = model._meta.table_name
        columns = {row[1]: row for row in db.execute_sql(f"PRAGMA table_info({table})").fetchall()}
        fields = {f.column_name: f for f in model._meta.sorted_fields}
        assert set(columns) == set(fields), table
        for name, field in fields.items():
            not_null = bool(columns[name][3])
            assert not_null == (not field.null), f"{table}.{name}: NOT NULL differs"
        primary = {name for name, row in columns.items() if row[5]}
        assert primary == {model._meta.primary_key.column_name}, table


def test_foreign_keys_in_the_schema_match_the_models(kiosk_store):
    db = kiosk_store.db
    for model in (*MODELS, *kiosk_store.models):
        table = model._meta.table_name
        in_schema = {
            (row[3], row[2], row[6])
            for row in db.execute_sql(f"PRAGMA foreign_key_list({table})").fetchall()
        }
        in_model = {
            (f.column_name, f.rel_model._meta.table_name, (f.on_delete or "NO ACTION").upper())
            for f in model._meta.refs
        }
        assert in_schema == in_model, table


def test_every_record_has_id_version_and_timestamps(kiosk_store):
    db = kiosk_store.db
    assert MODELS
    for model in (*MODELS, *kiosk_store.models):
        assert issubclass(model, Record)
        columns = {
            row[1]
            for row in db.execute_sql(f"PRAGMA table_info({model._meta.table_name})").fetchall()
        }
        assert {"id", "version", "created_at", "updated_at"} <= columns


def test_records_get_a_uuid_version_1_and_utc_instants(kiosk_store, clock):
    account = make_account(kiosk_store, clock)
    stored = kiosk_store.Account.get_by_id(account.id)
    assert stored.version == 1
    assert stored.id == account.id
    assert stored.created_at == clock.now() and stored.created_at.utcoffset() == timedelta(0)


def test_an_account_id_is_time_ordered_and_a_registration_id_random(kiosk_store, clock):
    """The rectorat's indexes take accounts side by side; a registration's reference is
    spelled from its id's first bits, which must stay random."""
    account = make_account(kiosk_store, clock)
    now = clock.now()
    registration = kiosk_store.Registration.create(
        account=account.id, session_id="demo", answers={}, status="registered",
        saved_at=now, created_at=now, updated_at=now,
    )  # fmt: skip
    assert kiosk_store.Account.get_by_id(account.id).id.version == 7
    assert kiosk_store.Registration.get_by_id(registration.id).id.version == 4


def test_touch_raises_the_version(kiosk_store, clock):
    account = make_account(kiosk_store, clock)
    clock.advance(timedelta(minutes=5))
    account.touch(clock.now())
    account.save()
    stored = kiosk_store.Account.get_by_id(account.id)
    assert stored.version == 2
    assert stored.updated_at == clock.now()
    assert stored.created_at == clock.now() - timedelta(minutes=5)


def test_an_instant_without_timezone_is_refused(kiosk_store, clock):
    account = make_account(kiosk_store, clock)
    account.updated_at = clock.now().replace(tzinfo=None)
    with pytest.raises(ValueError):
        account.save()


def test_deleting_an_account_deletes_its_codes(kiosk_store, clock):
    Account, OneTimeCode = kiosk_store.Account, kiosk_store.OneTimeCode
    account = make_account(kiosk_store, clock)
    other = make_account(kiosk_store, clock, "autre@exemple.fr")
    now = clock.now()
    for owner in (account, account, other):
        OneTimeCode.create(
            account=owner,
            purpose="activation",
            code_hash="h",
            expires_at=now,
            tries_left=5,
            created_at=now,
            updated_at=now,
        )
    Account.delete().where(Account.id == account.id).execute()
    assert [code.account_id for code in OneTimeCode.select()] == [other.id]


def test_the_schema_checks_statuses(kiosk_store, clock):
    make_account(kiosk_store, clock)
    with pytest.raises(IntegrityError):
        kiosk_store.Account.update(status="deleted").execute()
