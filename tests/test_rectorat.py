"""The rectorat's side of the sync (docs/sync-protocol.md), on SQLite and on a real
PostgreSQL 15: push results, the change feed and its sequencer, login elsewhere,
credentials, the HTTP API (also through a real uvicorn on 127.0.0.1) and the CLI."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path

import httpx
import peewee
import pytest

from kiosk.clock import parse_instant
from kiosk.errors import StoreError
from kiosk.rectorat.exam_office import ConflictNotApplied
from kiosk.rectorat.feed import LoginRefused
from kiosk.rectorat.identity import identity_key
from kiosk.rectorat.kiosks import KioskIdentity
from kiosk.rectorat.service import MAX_BATCH, RectoratService
from kiosk.rectorat.store import (
    SCHEMA_VERSION,
    VERSIONED_TABLES,
    default_url,
    open_store,
    sqlite_url,
)
from tests.factories import (
    EARLIER,
    PASSWORD,
    SESSION,
    account_item,
    address_item,
    answers,
    deletion_item,
    fast_hasher,
    iso,
    new_kiosk,
    registration_item,
    results,
)
from tests.support.pg_server import _free_port

ROOT = Path(__file__).resolve().parents[1]
CLOSES = parse_instant("2019-11-27T19:00:00")  # the Poitiers window's close, in UTC


# -- fixtures (store_url, store and service: tests/support/rectorat_store.py) ----------


@pytest.fixture
def kiosk_a(service) -> KioskIdentity:
    return new_kiosk(service, "borne-a")[0]


@pytest.fixture
def kiosk_b(service) -> KioskIdentity:
    return new_kiosk(service, "borne-b")[0]


# -- store -----------------------------------------------------------------------------


def test_the_schema_is_created_once_with_its_version(store, store_url):
    assert store.schema_version() == SCHEMA_VERSION == 10
    again = open_store(store_url)
    try:
        assert again.schema_version() == SCHEMA_VERSION
        again.db.execute_sql("INSERT INTO rc_schema (version, migrated_at) VALUES (99, 'x')")
    finally:
        again.close()
    with pytest.raises(StoreError, match="newer than this program"):
        open_store(store_url)


def _back_to_schema_2(store) -> None:
    """Give a store schema 2's shape, its rows kept: the pushing kiosks' holds as rc_interest
    rows, no rc_account.origin_kiosk_id, the feed's indexes over every rc_change row, no
    rc_registration.kiosk_versions."""
    db = store.db
    if not store.postgresql:
        db.execute_sql("PRAGMA foreign_keys = OFF")  # while rc_account is rebuilt
    with store.write():
        db.execute_sql(
            "INSERT INTO rc_interest (kiosk_id, account_id, created_at)"
            " SELECT origin_kiosk_id, id, received_at FROM rc_account"
            " WHERE origin_kiosk_id IS NOT NULL"
        )
        db.execute_sql("DROP INDEX account_origin_kiosk_id")
        if store.postgresql:
            db.execute_sql("ALTER TABLE rc_account DROP COLUMN origin_kiosk_id")
        else:  # SQLite drops no column a foreign key names: the table is made again
            table = db.execute_sql(
                "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'rc_account'"
            )
            created = table.fetchone()[0]
            # Schema 5 took away the foreign key of a new store's column (its migration
            # leaves SQLite's): the column goes, whichever it is.
            old = created.replace(
                ', "origin_kiosk_id" INTEGER REFERENCES rc_kiosk (id) ON DELETE SET NULL', ""
            ).replace(', "origin_kiosk_id" INTEGER', "")
            assert old != created
            indexes = [row[0] for row in db.execute_sql(
                "SELECT sql FROM sqlite_master"
                " WHERE type = 'index' AND tbl_name = 'rc_account' AND sql IS NOT NULL"
            )]  # fmt: skip
            columns = [
                row[1]
                for row in db.execute_sql("PRAGMA table_info(rc_account)")
                if row[1] != "origin_kiosk_id"
            ]
            db.execute_sql(old.replace('"rc_account"', '"rc_account_2"', 1))
            db.execute_sql(f"INSERT INTO rc_account_2 SELECT {', '.join(columns)} FROM rc_account")
            db.execute_sql("DROP TABLE rc_account")
            db.execute_sql("ALTER TABLE rc_account_2 RENAME TO rc_account")
            for index in indexes:
                db.execute_sql(index)
        db.execute_sql("ALTER TABLE rc_registration DROP COLUMN kiosk_versions")  # schema 10's
        db.execute_sql("DROP INDEX change_seq")
        db.execute_sql("DROP INDEX change_account_id_seq")
        db.execute_sql("CREATE UNIQUE INDEX change_seq ON rc_change (seq)")
        db.execute_sql("CREATE INDEX change_account_id_seq ON rc_change (account_id, seq)")
        if store.postgresql:  # schema 4 made the versions 64-bit
            for table in VERSIONED_TABLES:
                db.execute_sql(f"ALTER TABLE {table} ALTER COLUMN version TYPE INTEGER")
        db.execute_sql(  # made at the latest: one row
            f"UPDATE rc_schema SET version = 2 WHERE version = {SCHEMA_VERSION}"
        )
    if not store.postgresql:
        db.execute_sql("PRAGMA foreign_keys = ON")
    assert store.schema_version() == 2


def test_a_schema_2_store_is_migrated_and_its_kiosks_keep_their_candidates(store_url, clock):
    """Schema 3: the pushing kiosk holds an account by rc_account.origin_kiosk_id, and the
    feed's indexes hold numbered changes only. A schema 2 store keeps its rc_interest rows."""
    store = open_store(store_url)
    try:
        service = RectoratService(store, clock, hasher=fast_hasher())
        kiosk_a, kiosk_b = new_kiosk(service, "borne-a")[0], new_kiosk(service, "borne-b")[0]
        account = account_item()
        registration = registration_item(account["id"])
        assert results(service.push(kiosk_a, [account, registration])) == ["applied", "applied"]
        store.sequence()
        _back_to_schema_2(store)
    finally:
        store.close()

    store = open_store(store_url)
    try:
        assert store.schema_version() == SCHEMA_VERSION == 10
        # Who wrote the registrations received before is not known.
        assert store.db.execute_sql("SELECT kiosk_versions FROM rc_registration").fetchall() == [
            (None,)
        ]
        service = RectoratService(store, clock, hasher=fast_hasher())
        assert store.db.execute_sql("SELECT origin_kiosk_id FROM rc_account").fetchall() == [
            (None,)
        ]
        # Kiosk A still holds its candidate (its rc_interest row): its feed, its writes.
        assert [c["id"] for c in service.changes(kiosk_a, 0)["changes"]] == [
            account["id"],
            registration["id"],
        ]
        assert service.changes(kiosk_b, 0)["changes"] == []
        assert results(
            service.push(kiosk_b, [account_item(account["id"], 2, family="Pirate")])
        ) == ["refused"]
        assert results(
            service.push(kiosk_a, [account_item(account["id"], 2, family="Durand")])
        ) == ["applied"]
        # An account pushed now is held by its origin, without an rc_interest row.
        other = account_item(email="autre@exemple.fr", family="Autre")
        other_registration = registration_item(other["id"], who=answers("Autre"))
        assert results(service.push(kiosk_b, [other, other_registration])) == ["applied", "applied"]
        assert (
            store.Interest.select()
            .where(store.Interest.account_id == uuid.UUID(other["id"]))
            .count()
            == 0
        )
        assert store.Account.get_by_id(uuid.UUID(other["id"])).origin_kiosk_id == kiosk_b.id
        assert [c["id"] for c in service.changes(kiosk_a, 0)["changes"]] == [
            account["id"], registration["id"], account["id"],
        ]  # fmt: skip
        assert [c["id"] for c in service.changes(kiosk_b, 0)["changes"]] == [
            other["id"],
            other_registration["id"],
        ]
        # The feed's indexes hold numbered rows only, and its numbers are still unique.
        catalogue = (
            "SELECT indexdef FROM pg_indexes WHERE indexname = %s" if store.postgresql
            else "SELECT sql FROM sqlite_master WHERE name = ?"
        )  # fmt: skip
        for index in ("change_seq", "change_account_id_seq"):
            definition = store.db.execute_sql(catalogue, (index,)).fetchone()[0]
            assert definition.replace("(", "").replace(")", "").endswith("WHERE seq IS NOT NULL")
        assert store.last_seq() == 5
        if store.postgresql:  # schema 4: versions up to 2**63 - 1
            types = store.db.execute_sql(
                "SELECT DISTINCT data_type FROM information_schema.columns"
                " WHERE column_name = 'version' AND table_name = ANY(%s)",
                (list(VERSIONED_TABLES),),
            ).fetchall()
            assert types == [("bigint",)]
        with pytest.raises(peewee.IntegrityError), store.write():
            store.db.execute_sql("UPDATE rc_change SET seq = 1 WHERE seq = 2")
    finally:
        store.close()


def test_a_store_url_that_cannot_be_used_is_a_store_error(tmp_path):
    with pytest.raises(StoreError):
        open_store("mysql://nobody@127.0.0.1/none")
    with pytest.raises(StoreError):
        open_store("sqlite:///:memory:")


# -- push ------------------------------------------------------------------------------


def test_a_batch_sent_again_is_answered_as_a_whole(service, kiosk_a, kiosk_b, monkeypatch):
    """Its answer lost on the way, a kiosk sends a whole batch again: item by item, 2,000
    such items took 2.2 s; as a whole, 50 ms. What the store has already, from this kiosk,
    is answered « stale » at once; anything else (another kiosk's record, a newer
    version) is still looked at item by item."""
    batch = []
    for n in range(30):
        account = account_item(email=f"p{n}@exemple.fr", family=f"Nom{n}")
        who = answers(family=f"Nom{n}", birth=f"{1 + n % 28:02d}/05/2001")
        batch += [account, registration_item(account["id"], who=who)]
    assert set(results(service.push(kiosk_a, batch))) == {"applied"}
    one_by_one: list[str] = []
    push_item = service.rules.push_item

    def counted(kiosk, item, now):
        one_by_one.append(item["id"])
        return push_item(kiosk, item, now)

    monkeypatch.setattr(service.rules, "push_item", counted)
    assert service.push(kiosk_a, batch) == [{"id": i["id"], "result": "stale"} for i in batch]
    assert one_by_one == []

    elsewhere = service.push(kiosk_b, batch[:2])
    assert [r.get("reason") for r in elsewhere] == ["forbidden", "forbidden"]
    newer = account_item(batch[2]["id"], 2, email="p1@exemple.fr", family="Nom1-Martin")
    assert results(service.push(kiosk_a, [newer, batch[3]])) == ["applied", "stale"]
    assert one_by_one == [batch[0]["id"], batch[1]["id"], newer["id"]]

    # An account sent again, then a new registration of it in the same session: the view
    # has not read the account's registrations, so that one goes item by item, and only it.
    one_by_one.clear()
    twice = registration_item(batch[4]["id"], who=answers(family="Autre", birth="09/09/2002"))
    answer = service.push(kiosk_a, [batch[4], twice])
    assert [r["result"] for r in answer] == ["stale", "conflict"]
    assert answer[1]["kind"] == "account_session" and one_by_one == [twice["id"]]


def test_a_batch_is_applied_then_its_replay_is_all_stale(service, store, kiosk_a):
    account = account_item()
    registration = registration_item(account["id"])
    address = address_item(registration["id"])
    batch = [account, registration, address]
    assert results(service.push(kiosk_a, batch)) == ["applied"] * 3
    # Killed before the acknowledgement, the kiosk sends the batch again: a no-op.
    answer = service.push(kiosk_a, batch)
    assert answer == [{"id": item["id"], "result": "stale"} for item in batch]
    assert store.Account.select().count() == 1 and store.Registration.select().count() == 1
    assert store.AddressChange.select().count() == 1

    same_version = account_item(account["id"], 1, family="Autre")
    assert results(service.push(kiosk_a, [same_version])) == ["stale"]
    newer = account_item(account["id"], 3, family="Dupont-Martin")
    assert results(service.push(kiosk_a, [newer])) == ["applied"]
    older = account_item(account["id"], 2, family="Ancien")
    assert results(service.push(kiosk_a, [older])) == ["stale"]
    stored = store.Account.get_by_id(uuid.UUID(account["id"]))
    assert (stored.version, stored.family_name) == (3, "Dupont-Martin")

    changed = registration_item(
        account["id"], registration["id"], 2, who=answers(birth="05/05/2001")
    )
    assert results(service.push(kiosk_a, [changed])) == ["applied"]
    assert (
        store.Registration.get_by_id(uuid.UUID(registration["id"])).answers["birth_date"]
        == "05/05/2001"
    )


def test_registrations_get_a_number_from_the_rectorat(service, store, kiosk_a):
    first, second = (
        account_item(),
        account_item(email="marie.curie@exemple.fr", family="Curie", given="Marie"),
    )
    batch = [
        first, registration_item(first["id"]),
        second, registration_item(second["id"], who=answers("Curie", "Marie", "07/11/2000")),
    ]  # fmt: skip
    assert results(service.push(kiosk_a, batch)) == ["applied"] * 4
    numbers = sorted(r.number for r in store.Registration.select())
    assert numbers == ["2020-PO-000001", "2020-PO-000002"]


def test_fields_only_the_rectorat_writes_are_never_taken_from_a_kiosk(service, store, kiosk_a):
    account = account_item()
    sneaky = registration_item(
        account["id"],
        status="set_aside",
        number="2020-PO-999999",
        paper_status="validated",
        missing_pieces=["x"],
    )
    assert results(service.push(kiosk_a, [account, sneaky])) == ["applied", "applied"]
    registration_id = uuid.UUID(sneaky["id"])
    stored = store.Registration.get_by_id(registration_id)
    assert stored.number == "2020-PO-000001"
    assert (stored.status, stored.paper_status, stored.missing_pieces) == ("registered", None, None)

    service.set_paper_status(registration_id, "incomplete", ["photo"])
    again = registration_item(
        account["id"], sneaky["id"], 2, number="X", paper_status="validated", missing_pieces=[]
    )
    assert results(service.push(kiosk_a, [again])) == ["applied"]
    stored = store.Registration.get_by_id(registration_id)
    assert (stored.version, stored.number, stored.paper_status, stored.missing_pieces) == (
        2, "2020-PO-000001", "incomplete", ["photo"],
    )  # fmt: skip

    # Set aside by the exam office: no kiosk lifts it.
    service.set_aside(registration_id)
    lifted = registration_item(account["id"], sneaky["id"], 3, status="registered")
    assert results(service.push(kiosk_a, [lifted])) == ["applied"]
    assert store.Registration.get_by_id(registration_id).status == "set_aside"


def test_an_email_of_another_account_is_a_conflict_never_an_overwrite(
    service, store, kiosk_a, kiosk_b
):
    first = account_item(family="Dupont")
    assert results(service.push(kiosk_a, [first])) == ["applied"]
    # The same person signed up again at another kiosk, offline, with a case variant.
    second = account_item(email="Jean.Dupont@EXEMPLE.fr", family="Dupond")
    answer = service.push(kiosk_b, [second])
    assert answer[0]["result"] == "conflict"
    conflict = store.Conflict.get_by_id(uuid.UUID(answer[0]["conflict"]))
    assert (conflict.kind, conflict.entity, str(conflict.entity_id)) == (
        "email_key",
        "account",
        second["id"],
    )
    assert (conflict.existing_id, conflict.kiosk_id, conflict.resolved_at) == (
        first["id"],
        kiosk_b.id,
        None,
    )
    assert conflict.incoming["family_name"] == "Dupond"
    assert store.Account.get_by_id(uuid.UUID(first["id"])).family_name == "Dupont"
    assert store.Account.get_or_none(store.Account.id == uuid.UUID(second["id"])) is None
    assert [c.id for c in service.conflicts()] == [conflict.id]

    # Sent again (its first answer lost on the way), it is answered as the first time, so
    # that the kiosk still learns the address is taken; its registration waits too.
    registration = registration_item(second["id"])
    answer = service.push(kiosk_b, [second, registration])
    assert results(answer) == ["conflict", "conflict"]
    assert (answer[0]["conflict"], answer[0]["kind"]) == (str(conflict.id), "email_key")
    assert [c.id for c in service.conflicts()][0] == conflict.id  # no second conflict for it
    held = store.Conflict.get_by_id(uuid.UUID(answer[1]["conflict"]))
    assert (held.kind, held.existing_id) == ("account", str(conflict.id))

    # The candidate changes the address at kiosk B: the account now applies.
    renamed = account_item(second["id"], 2, email="jean.dupond@exemple.fr", family="Dupond")
    assert results(service.push(kiosk_b, [renamed])) == ["applied"]
    assert store.Conflict.get_by_id(conflict.id).resolution == "superseded"
    # And the registration held for it, once staff apply it.
    outcome = service.resolve_conflict(held.id, "apply_incoming", by="dec")
    assert outcome == {"result": "applied"}
    resolved = store.Conflict.get_by_id(held.id)
    assert (resolved.resolution, resolved.resolved_by) == ("apply_incoming", "dec")
    assert service.conflicts() == []


def test_one_person_registered_at_two_kiosks_is_a_conflict_for_the_exam_office(
    service, store, kiosk_a, kiosk_b
):
    first = account_item()
    first_registration = registration_item(first["id"])
    assert results(service.push(kiosk_a, [first, first_registration])) == ["applied", "applied"]
    other = account_item(email="jd2001@exemple.fr")
    twin = registration_item(other["id"], who=answers("DUPONT ", "jéan", "2001-05-04"))
    answer = service.push(kiosk_b, [other, twin])
    assert results(answer) == ["applied", "conflict"]
    conflict = store.Conflict.get_by_id(uuid.UUID(answer[1]["conflict"]))
    assert (conflict.kind, conflict.existing_id) == ("identity", first_registration["id"])
    assert store.Registration.select().count() == 1
    assert store.Registration.get_by_id(
        uuid.UUID(first_registration["id"])
    ).account_id == uuid.UUID(first["id"])
    # A replay gets the first answers again; the conflict is kept, once.
    replayed = service.push(kiosk_b, [other, twin])
    assert results(replayed) == ["stale", "conflict"]
    assert (replayed[1]["conflict"], replayed[1]["kind"]) == (str(conflict.id), "identity")
    assert store.Conflict.select().count() == 1

    # Staff keep the second one: the first is set aside, the second numbered.
    with pytest.raises(ValueError):
        service.resolve_conflict(conflict.id, "merge")
    assert service.resolve_conflict(conflict.id, "apply_incoming") == {"result": "applied"}
    kept_aside = store.Registration.get_by_id(uuid.UUID(first_registration["id"]))
    applied = store.Registration.get_by_id(uuid.UUID(twin["id"]))
    assert (kept_aside.status, applied.status, applied.number) == (
        "set_aside",
        "registered",
        "2020-PO-000002",
    )
    with pytest.raises(ValueError, match="resolved already"):
        service.resolve_conflict(conflict.id, "keep_existing")


# -- a registration changed at a kiosk and by the exam office -----------------------------

CORRECTED = {"family_name": "Dupont", "given_names": "Jean", "birth_town": "Poitiers"}


def _registered(service, kiosk) -> dict:
    """A registration pushed by ``kiosk`` with its account: version 1 at the rectorat."""
    account = account_item()
    first = registration_item(account["id"])
    assert results(service.push(kiosk, [account, first])) == ["applied", "applied"]
    return first


def _changed_here(
    item: dict, base: int, version: int, specialty: str = "y", **answers: str
) -> dict:
    """The kiosk's change of a registration it knew at version ``base``: its specialty,
    and any other ``answers``."""
    changed = {**item["data"]["answers"], "specialty": specialty, **answers}
    return {**item, "version": version, "base": base, "data": {**item["data"], "answers": changed}}


def _feed_ids(service, kiosk, after: int) -> tuple[list[str], int]:
    page = service.changes(kiosk, after)
    return [change["id"] for change in page["changes"]], page["last"]


def test_a_change_made_from_a_version_the_exam_office_changed_since_is_kept_aside(
    service, store, kiosk_a
):
    first = _registered(service, kiosk_a)
    # The exam office corrects the identity (version 2) while the kiosk, offline, saves
    # a change of its own made from version 1: its version 2 too.
    service.correct_identity(first["id"], CORRECTED)
    _, cursor = _feed_ids(service, kiosk_a, 0)  # the kiosk has pulled the correction's change
    mine = _changed_here(first, base=1, version=2)

    answer = service.push(kiosk_a, [mine])
    assert results(answer) == ["conflict"] and answer[0]["kind"] == "version"
    stored = store.Registration.get_by_id(uuid.UUID(first["id"]))
    assert (stored.version, stored.answers["birth_town"], stored.answers["specialty"]) == (
        2,
        "Poitiers",
        "x",
    )
    (conflict,) = service.conflicts()
    assert (conflict.kind, conflict.existing_id, conflict.version) == ("version", first["id"], 2)
    assert conflict.incoming["answers"]["specialty"] == "y"
    # The rectorat's copy goes back to the kiosk, though its cursor is past the correction.
    pulled, cursor = _feed_ids(service, kiosk_a, cursor)
    assert pulled == [first["id"]]

    # Sent again (its answer lost): the same conflict, and nothing more in the feed.
    again = service.push(kiosk_a, [mine])
    assert (again[0]["result"], again[0]["conflict"]) == ("conflict", answer[0]["conflict"])
    assert _feed_ids(service, kiosk_a, cursor)[0] == [] and len(service.conflicts()) == 1

    # The exam office applies the kiosk's change: on top of its correction, a version 3.
    assert service.resolve_conflict(conflict.id, "apply_incoming") == {"result": "applied"}
    stored = store.Registration.get_by_id(uuid.UUID(first["id"]))
    assert (stored.version, stored.answers["specialty"]) == (3, "y")
    assert service.conflicts() == []


def test_a_change_from_the_rectorats_own_version_is_applied_and_ends_the_conflict(
    service, store, kiosk_a
):
    first = _registered(service, kiosk_a)
    service.correct_identity(first["id"], CORRECTED)
    assert results(service.push(kiosk_a, [_changed_here(first, base=1, version=2)])) == ["conflict"]
    # The kiosk took the rectorat's copy (its own version 3, the rectorat's 2), then the
    # candidate changed it again.
    on_top = _changed_here(first, base=2, version=4, specialty="z", **CORRECTED)
    assert results(service.push(kiosk_a, [on_top])) == ["applied"]
    stored = store.Registration.get_by_id(uuid.UUID(first["id"]))
    assert (stored.version, stored.answers["birth_town"], stored.answers["specialty"]) == (
        4,
        "Poitiers",
        "z",
    )
    (conflict,) = service.conflicts(open_only=False)
    assert conflict.resolution == "superseded"


def test_a_change_on_top_of_the_kiosks_own_unanswered_one_is_applied(service, store, kiosk_a):
    """The kiosk's change was taken but its answer lost (a crash, a cut): the kiosk still
    knows version 1, and the candidate's next change goes from the kiosk's own version 2."""
    first = _registered(service, kiosk_a)
    assert results(service.push(kiosk_a, [_changed_here(first, base=1, version=2)])) == ["applied"]
    answer = service.push(kiosk_a, [_changed_here(first, base=1, version=3, specialty="z")])
    assert results(answer) == ["applied"] and service.conflicts() == []
    stored = store.Registration.get_by_id(uuid.UUID(first["id"]))
    assert (stored.version, stored.answers["specialty"]) == (3, "z")
    assert stored.kiosk_versions == {str(kiosk_a.id): 3}
    service.correct_identity(first["id"], CORRECTED)  # the exam office's version 4
    late = service.push(kiosk_a, [_changed_here(first, base=3, version=4, specialty="w")])
    assert results(late) == ["conflict"]


def test_a_change_sent_again_after_it_was_taken_is_stale_and_without_a_base_as_before(
    service, store, kiosk_a
):
    first = _registered(service, kiosk_a)
    mine = _changed_here(first, base=1, version=2)
    assert results(service.push(kiosk_a, [mine])) == ["applied"]
    assert results(service.push(kiosk_a, [mine])) == ["stale"]  # its own, sent again
    # A kiosk of an earlier version sends no base: an older version is stale, as it was.
    service.correct_identity(first["id"], CORRECTED)
    older = {key: value for key, value in _changed_here(first, 1, 3, "w").items() if key != "base"}
    assert results(service.push(kiosk_a, [older])) == ["stale"]
    assert service.conflicts() == []


def test_a_change_from_a_version_the_rectorat_does_not_have_is_kept_aside_too(
    service, store, kiosk_a
):
    """A base above the rectorat's version (its store restored from a backup, say): the
    kiosk's change goes in the conflict already held, never over what the rectorat has."""
    first = _registered(service, kiosk_a)
    service.correct_identity(first["id"], CORRECTED)
    held = service.push(kiosk_a, [_changed_here(first, base=1, version=2)])
    following = service.push(kiosk_a, [_changed_here(first, base=3, version=4, specialty="w")])
    assert results(following) == ["conflict"]
    assert following[0]["conflict"] == held[0]["conflict"]
    (conflict,) = service.conflicts()
    assert (conflict.version, conflict.incoming["answers"]["specialty"]) == (4, "w")
    stored = store.Registration.get_by_id(uuid.UUID(first["id"]))
    assert (stored.version, stored.answers["specialty"]) == (2, "x")


def test_a_batch_holding_a_change_made_from_an_older_version_keeps_it_aside(
    service, store, kiosk_a
):
    first = _registered(service, kiosk_a)
    service.correct_identity(first["id"], CORRECTED)
    others = [account_item(email=f"p{n}@exemple.fr", family=f"Nom{n}") for n in range(3)]
    batch = [
        item
        for n, other in enumerate(others)
        for item in (other, registration_item(other["id"], who=answers(f"Nom{n}")))
    ]
    # New records, and the change: the batch's path leaves it to the rules of one item,
    # and so it does when the whole batch is sent again.
    answer = service.push(kiosk_a, [*batch, _changed_here(first, base=1, version=2)])
    assert results(answer) == ["applied"] * 6 + ["conflict"]
    written = {str(r.id): (r.version, r.kiosk_versions) for r in store.Registration.select()}
    assert written.pop(first["id"]) == (2, {str(kiosk_a.id): 1})  # 2 is the exam office's
    assert set(map(str, written.values())) == {str((1, {str(kiosk_a.id): 1}))}  # the batch's
    replayed = service.push(kiosk_a, [*batch, _changed_here(first, base=1, version=2)])
    assert results(replayed) == ["stale"] * 6 + ["conflict"]


@pytest.mark.parametrize("base", [-1, "1", 1.0, True, 2**63])
def test_a_base_that_is_not_a_version_is_refused(service, kiosk_a, base):
    account = account_item()
    first = registration_item(account["id"])
    answer = service.push(kiosk_a, [account, {**first, "base": base}])
    assert results(answer) == ["applied", "refused"]
    assert answer[1]["detail"] == "base is null or an integer from 0 to 9223372036854775807"


def test_a_kiosks_own_change_sent_again_is_stale_whatever_came_on_top_of_it(
    service, store, kiosk_a, kiosk_b
):
    """Its answer lost (or the kiosk stopped before noting it), a change comes again after
    the exam office, or the candidate at another kiosk, changed the file on top of it."""
    first = _registered(service, kiosk_a)
    mine = _changed_here(first, base=1, version=2)
    assert results(service.push(kiosk_a, [mine])) == ["applied"]
    service.correct_identity(first["id"], CORRECTED)  # version 3, on top of the kiosk's 2
    service.login(kiosk_b, "jean.dupont@exemple.fr", PASSWORD)
    at_b = _changed_here(first, base=3, version=4, specialty="b", **CORRECTED)
    assert results(service.push(kiosk_b, [at_b])) == ["applied"]
    _, cursor = _feed_ids(service, kiosk_a, 0)
    assert results(service.push(kiosk_a, [mine])) == ["stale"]
    assert service.conflicts() == []
    # The kiosk, whose base is now its version 2, gets the rectorat's version 4 back.
    assert _feed_ids(service, kiosk_a, cursor)[0] == [first["id"]]
    assert results(service.push(kiosk_a, [mine])) == ["stale"]  # sent once more: the same


def test_a_change_behind_that_holds_what_is_there_is_stale_and_the_version_comes_back(
    service, store, kiosk_a, kiosk_b
):
    """The candidate made the same change at two kiosks: B's went in (version 2); A's,
    two saves from version 1 (its version 3), holds the same. A's base is to be the
    rectorat's version 2, not its own 3: its next change then goes in."""
    first = _registered(service, kiosk_a)
    service.login(kiosk_b, "jean.dupont@exemple.fr", PASSWORD)
    at_b = _changed_here(first, base=1, version=2, specialty="b")
    assert results(service.push(kiosk_b, [at_b])) == ["applied"]
    _, cursor = _feed_ids(service, kiosk_a, 0)  # A's pull passed it while its change waited
    same = _changed_here(first, base=1, version=3, specialty="b")
    assert results(service.push(kiosk_a, [same])) == ["stale"]
    assert _feed_ids(service, kiosk_a, cursor)[0] == [first["id"]]
    next_change = _changed_here(first, base=2, version=4, specialty="c")
    assert results(service.push(kiosk_a, [next_change])) == ["applied"]
    assert service.conflicts() == []


@pytest.mark.parametrize("version", [2, 3])
def test_a_change_of_a_registration_whose_first_push_went_unanswered_is_kept_aside(
    service, store, kiosk_a, version
):
    """The kiosk never learnt that the rectorat took its new registration (base 0); the
    exam office corrected it since. The candidate's change is neither lost nor written
    over the correction."""
    first = _registered(service, kiosk_a)  # its answer lost
    service.correct_identity(first["id"], CORRECTED)
    answer = service.push(kiosk_a, [_changed_here(first, base=0, version=version)])
    assert results(answer) == ["conflict"]
    stored = store.Registration.get_by_id(uuid.UUID(first["id"]))
    assert (stored.version, stored.answers["birth_town"]) == (2, "Poitiers")


def test_each_kiosks_change_of_one_file_is_its_own_item(service, store, kiosk_a, kiosk_b):
    """A's change kept aside neither swallows B's change nor is replaced by it: B's, made
    from the rectorat's version, is applied; and when B's too is behind, each kiosk's
    change waits in its own conflict, also once the other's is settled."""
    first = _registered(service, kiosk_a)
    service.login(kiosk_b, "jean.dupont@exemple.fr", PASSWORD)  # B knows version 1
    service.correct_identity(first["id"], CORRECTED)
    held = service.push(kiosk_a, [_changed_here(first, base=1, version=6, specialty="a")])
    assert results(held) == ["conflict"]
    late_b = service.push(kiosk_b, [_changed_here(first, base=1, version=2, specialty="b")])
    assert results(late_b) == ["conflict"] and late_b[0]["conflict"] != held[0]["conflict"]
    assert sorted(c.incoming["answers"]["specialty"] for c in service.conflicts()) == ["a", "b"]
    service.resolve_conflict(held[0]["conflict"], "keep_existing")
    # B, having pulled the rectorat's copy, changes it: applied, past A's settled conflict.
    on_top = _changed_here(first, base=2, version=3, specialty="c", **CORRECTED)
    assert results(service.push(kiosk_b, [on_top])) == ["applied"]
    stored = store.Registration.get_by_id(uuid.UUID(first["id"]))
    assert (stored.version, stored.answers["specialty"]) == (3, "c")
    # B's own conflict is over (its newer change went in); A's stays settled as it was.
    assert service.conflicts() == []
    assert {c.resolution for c in service.conflicts(open_only=False)} == {
        "keep_existing",
        "superseded",
    }


def test_a_change_made_from_the_copy_the_exam_office_applied_over_is_kept_aside(
    service, store, kiosk_a
):
    """The exam office applies the kiosk's change kept aside: that version is the exam
    office's decision. A change the kiosk makes meanwhile from its copy before it is kept
    aside in turn, not written over the decision."""
    first = _registered(service, kiosk_a)
    service.correct_identity(first["id"], CORRECTED)  # version 2
    held = service.push(kiosk_a, [_changed_here(first, base=1, version=2, specialty="y")])
    assert service.resolve_conflict(held[0]["conflict"], "apply_incoming") == {"result": "applied"}
    from_the_copy = _changed_here(first, base=2, version=4, specialty="z")  # it took version 2
    assert results(service.push(kiosk_a, [from_the_copy])) == ["conflict"]
    stored = store.Registration.get_by_id(uuid.UUID(first["id"]))
    assert (stored.version, stored.answers["specialty"]) == (3, "y")


def test_applying_a_conflict_still_blocked_changes_nothing(service, store, kiosk_a, kiosk_b):
    assert results(service.push(kiosk_a, [account_item()])) == ["applied"]
    answer = service.push(kiosk_b, [account_item()])
    with pytest.raises(ConflictNotApplied):
        service.resolve_conflict(answer[0]["conflict"], "apply_incoming")
    conflict = store.Conflict.get_by_id(uuid.UUID(answer[0]["conflict"]))
    assert (conflict.resolved_at, conflict.version) == (None, 1)
    assert service.resolve_conflict(conflict.id, "keep_existing") == {"result": "kept"}
    assert service.conflicts() == [] and len(service.conflicts(open_only=False)) == 1


def test_the_window_counts_the_kiosk_save_time(service, store, clock, kiosk_a):
    clock.set(CLOSES + timedelta(hours=2))  # pushed after the close
    people = [account_item(email=f"p{n}@exemple.fr", family=f"Nom{n}") for n in range(4)]
    assert results(service.push(kiosk_a, people)) == ["applied"] * 4
    before = registration_item(people[0]["id"], saved_at=CLOSES - timedelta(seconds=1))
    at_close = registration_item(people[1]["id"], saved_at=CLOSES, who=answers("Nom1"))
    answer = service.push(kiosk_a, [before, at_close])
    assert results(answer) == ["applied", "refused"]
    assert answer[1]["reason"] == "closed"

    clock.set(CLOSES - timedelta(days=2))
    future = registration_item(
        people[2]["id"], saved_at=clock.now() + timedelta(minutes=6), who=answers("Nom2")
    )
    near = registration_item(
        people[3]["id"], saved_at=clock.now() + timedelta(minutes=4), who=answers("Nom3")
    )
    answer = service.push(kiosk_a, [future, near])
    assert results(answer) == ["refused", "applied"]
    assert answer[0]["reason"] == "future"
    assert store.Registration.select().count() == 2


def test_a_pending_account_is_deleted_with_its_interests(service, store, kiosk_a, kiosk_b):
    pending = account_item(status="pending")
    active = account_item(email="actif@exemple.fr", family="Actif")
    assert results(service.push(kiosk_a, [pending, active])) == ["applied", "applied"]
    assert results(service.push(kiosk_b, [deletion_item(pending["id"])])) == ["refused"]
    answer = service.push(kiosk_a, [deletion_item(pending["id"]), deletion_item(active["id"])])
    assert results(answer) == ["applied", "refused"]
    assert answer[1]["reason"] == "active"
    assert store.Account.get_or_none(store.Account.id == uuid.UUID(pending["id"])) is None
    assert (
        store.Interest.select().where(store.Interest.account_id == uuid.UUID(pending["id"])).count()
        == 0
    )
    # Replayed, the deletion and even the account's first push are stale: it stays gone.
    assert results(service.push(kiosk_a, [pending, deletion_item(pending["id"])])) == [
        "stale",
        "stale",
    ]
    assert store.Account.select().count() == 1


def test_what_a_kiosk_may_not_write_is_refused(service, kiosk_a, kiosk_b):
    account = account_item()
    registration = registration_item(account["id"])
    assert results(service.push(kiosk_a, [account, registration])) == ["applied", "applied"]
    answer = service.push(kiosk_b, [
        account_item(account["id"], 2, family="Pirate"),
        registration_item(account["id"], registration["id"], 2),
        address_item(registration["id"]),
        {"entity": "conflict", "id": str(uuid.uuid4()), "version": 1, "data": {}},
        {"entity": "account", "id": "not-a-uuid", "version": 1, "data": {}},
        account_item(version=0),
        registration_item(account["id"], session="../../etc/passwd"),
        registration_item(account["id"], session="bacpro-nowhere-2031"),
    ])  # fmt: skip
    assert [(r["result"], r.get("reason")) for r in answer] == [
        ("refused", "forbidden"), ("refused", "forbidden"), ("refused", "forbidden"),
        ("refused", "entity"), ("refused", "invalid"), ("refused", "invalid"),
        ("refused", "session"), ("refused", "session"),
    ]  # fmt: skip
    assert answer[4]["id"] == "not-a-uuid"
    with pytest.raises(ValueError):
        service.push(kiosk_a, [account_item() for _ in range(MAX_BATCH + 1)])


def test_a_new_registration_goes_in_only_for_an_account_the_kiosk_holds(
    service, store, kiosk_a, kiosk_b
):
    """The batch path reads, with each account's names, whether the kiosk pushed it: the
    holder's new registration is applied, another kiosk's refused, in the same batch shape."""
    account = account_item()
    assert results(service.push(kiosk_a, [account])) == ["applied"]
    theirs = registration_item(account["id"])
    assert results(service.push(kiosk_b, [theirs])) == ["refused"]
    mine = registration_item(account["id"])
    assert results(service.push(kiosk_a, [mine])) == ["applied"]
    assert [r.id for r in store.Registration.select()] == [uuid.UUID(mine["id"])]


class _NoBulk:
    """A bulk path that takes nothing: every item goes down the per-item path."""

    def run(self, kiosk, items, start, now, results) -> int:
        return start


def _random_batches(
    rng, kiosks: int = 2, rounds: int = 6, *, common: bool = False
) -> list[tuple[int, list[dict]]]:
    """Batches of two kiosks over a few people, e-mails and records, mixing what the bulk
    path takes (new accounts and registrations, replays of the pushing kiosk's records)
    with all that it leaves to the per-item path: other replays, newer versions,
    duplicates, conflicts, refusals, unreadable items, address changes and deletions, in
    any order. ``common``: accounts, registrations and replays only, the entities of a
    body that is decoded typed."""
    people = [("Dupont", "Jean", "04/05/2001"), ("Curie", "Marie", "07/11/2000"),
              ("Martin", "Léa", "01/02/2002"), ("DUPONT ", "jéan", "2001-05-04"),
              ("Nguyen", "Anh", "12/12/2001")]  # fmt: skip
    # Addresses whose key is not the address lowered (IDNA, NFC): the bulk path's glance at
    # the batch sees another key than its reading.
    emails = [f"p{n}@exemple.fr" for n in range(6)] + [
        "P0@Exemple.fr", "jean@BÜCHER.de", "jean@xn--bcher-kva.de",
        "e\u0301le\u0300ve@exemple.fr", "élève@exemple.fr",
    ]  # fmt: skip
    pushed: list[dict] = []  # every item sent, to replay or build on
    accounts: list[str] = []
    registrations: list[tuple[str, str]] = []  # (registration, account)
    batches = []
    for _ in range(rounds):
        for k in range(kiosks):
            batch: list[dict] = []
            for _ in range(rng.randint(1, 12)):
                roll = rng.random() * (0.75 if common else 1)
                if roll < 0.3 or not accounts:
                    family, given, _ = rng.choice(people)
                    item = account_item(
                        email=rng.choice(emails), family=family, given=given,
                        status=rng.choice(["active", "active", "pending"]),
                    )  # fmt: skip
                    accounts.append(item["id"])
                elif roll < 0.6:
                    account = rng.choice(accounts[-4:] if rng.random() < 0.7 else accounts)
                    family, given, birth = rng.choice(people)
                    who = (
                        answers(family, given, birth)
                        if rng.random() < 0.9
                        else {"birth_date": birth}
                    )
                    saved = rng.choice(
                        [EARLIER, EARLIER, EARLIER, CLOSES, EARLIER + timedelta(days=30)]
                    )
                    session = SESSION if rng.random() < 0.95 else "bacpro-nowhere-2031"
                    # An id in capitals is the same account's, once read.
                    written = account.upper() if rng.random() < 0.1 else account
                    item = registration_item(written, saved_at=saved, who=who, session=session)
                    registrations.append((item["id"], account))
                elif roll < 0.75 and pushed:
                    earlier = rng.choice(pushed)
                    item = {**earlier, "version": earlier["version"] + rng.choice([0, 0, 1])}
                elif roll < 0.82 and registrations:
                    item = address_item(rng.choice(registrations)[0])
                elif roll < 0.87:
                    item = deletion_item(rng.choice(accounts))
                elif roll < 0.93:
                    item = account_item(version=0)
                else:
                    item = rng.choice(batch) if batch else account_item(email=rng.choice(emails))
                batch.append(item)
                pushed.append(item)
            batches.append((k, batch))
    return batches


def _store_state(store) -> dict:
    """What a push leaves in the store, comparable between two stores fed the same items."""

    def rows(sql: str) -> list[tuple]:
        return [tuple(str(v) if isinstance(v, uuid.UUID) else v for v in row)
                for row in store.db.execute_sql(sql).fetchall()]  # fmt: skip

    numbered = rows("SELECT id, number FROM rc_registration ORDER BY id")
    return {
        "accounts": rows(
            "SELECT id, version, email, email_key, family_name, given_names, status, activated_at"
            " FROM rc_account ORDER BY id"
        ),
        "registrations": rows(
            "SELECT id, version, account_id, session_id, answers, status, saved_at, identity_key"
            " FROM rc_registration ORDER BY id"
        ),
        # PostgreSQL's sequence may skip: compare which registrations are numbered, and uniqueness.
        "numbered": sorted(r[0] for r in numbered if r[1]) if store.postgresql else numbered,
        "unique_numbers": len({r[1] for r in numbered if r[1]})
        == len([r for r in numbered if r[1]]),
        "addresses": rows("SELECT id, version, registration_id FROM rc_address_change ORDER BY id"),
        "interests": rows(
            "SELECT kiosk_id, account_id FROM rc_interest ORDER BY kiosk_id, account_id"
        ),
        "origins": rows("SELECT id, origin_kiosk_id FROM rc_account ORDER BY id"),
        "conflicts": rows(
            "SELECT kind, entity, entity_id, version, resolved_at IS NULL FROM rc_conflict"
            " ORDER BY entity_id, created_at"
        ),
        "tombstones": rows("SELECT entity_id, entity FROM rc_tombstone ORDER BY entity_id"),
        "changes": rows("SELECT entity, entity_id, account_id FROM rc_change ORDER BY id"),
    }


def _full_account(data):
    """An account's fields as the full reader reads them for the bulk path."""
    from kiosk.rectorat.bulk import _instant_text
    from kiosk.rectorat.items import account_fields

    return account_fields(data, _instant_text)


def _full_registration(data):
    """A registration's fields and status as the full reader reads them for the bulk path."""
    from kiosk.rectorat.bulk import _instant_text, _uuid_text
    from kiosk.rectorat.items import registration_fields

    fields, status = registration_fields(data, _instant_text, _uuid_text)
    return {**fields, "status": status}


def test_the_bulk_path_reads_an_item_as_the_full_readers_do():
    """Its fast readers take what every kiosk sends and leave anything else to the full
    readers (which refuse with their message, or read it): never a different answer."""
    from kiosk.rectorat.bulk import (
        _ACCOUNT_INSTANTS,
        _REGISTRATION_INSTANTS,
        _checked_instants,
        _fast_account,
        _fast_registration,
    )  # fmt: skip
    from kiosk.rectorat.items import Invalid

    account, registration = account_item()["data"], registration_item(uuid.uuid4())["data"]
    variants = [
        {}, {"email_key": "Jean.Dupont@Exemple.FR"}, {"email_key": "jean.dupont"},
        {"email_key": "jéan@exemple.fr"}, {"email_key": "jean@bücher.de"}, {"email": ""},
        {"email": "x" * 321}, {"family_name": 3}, {"given_names": "x" * 1001},
        {"password_hash": None}, {"status": "set_aside"}, {"status": "pending"},
        {"created_at": "2019-11-31T10:00:00.000000+00:00"},
        {"created_at": "2019-11-10T10:00:00+01:00"},
        {"updated_at": None}, {"activated_at": None}, {"activated_at": ["x"]},
        {"saved_at": "2019-11-10T24:00:00.000000+00:00"},
        {"withdrawn_at": "2019-11-10T10:00:00.000000+00:00"}, {"withdrawn_at": 5},
        {"account_id": "NOT-A-UUID"}, {"account_id": str(uuid.uuid4()).upper()},
        {"session_id": "s" * 65}, {"session_id": ""}, {"answers": []},
        {"status": "withdrawn"}, {"status": "set_aside"}, {"status": "other"}, {"status": None},
    ]  # fmt: skip
    for base, keys, fast, full in (
        (account, _ACCOUNT_INSTANTS, _fast_account, _full_account),
        (registration, _REGISTRATION_INSTANTS, _fast_registration, _full_registration),
    ):
        for variant in variants:
            data = {**base, **variant}
            try:
                expected = full(data)
            except Invalid:
                expected = None
            read = fast(data) if _checked_instants(data, keys, set()) else None
            assert read is None or read == expected, (variant, read, expected)
        assert fast(base) == full(base) and _checked_instants(base, keys, set())


def test_a_body_of_the_common_shape_is_read_typed_as_the_full_readers_read_it():
    """A body that msgspec decodes typed (:mod:`kiosk.rectorat.wire`) gives the bulk path
    the fields the full readers give, or refuses what they refuse; any other body is left
    to them whole."""
    from kiosk.rectorat.bulk import BatchPath, NewAccount, NewRegistration, Unreadable
    from kiosk.rectorat.items import Invalid, check_depth
    from kiosk.rectorat.wire import common_batch

    def typed(item):
        decoded = common_batch(json.dumps({"items": [item]}).encode())
        return None if decoded is None else BatchPath._parse_typed(decoded, 0)[0]

    account, registration = account_item(), registration_item(uuid.uuid4())
    deep: dict = {"x": "y"}
    for _ in range(7):
        deep = {"x": deep}
    variants = [
        {}, {"email_key": "Jean.Dupont@Exemple.FR"}, {"email_key": None}, {"email": "Jean@X.FR"},
        {"email": "jéan@exemple.fr"}, {"email": "jean@bücher.de"}, {"email": "jean"},
        {"email": ""}, {"email": "x" * 321}, {"family_name": "Ü" * 1000},
        {"family_name": "😀" * 1001}, {"given_names": "x" * 1001}, {"password_hash": None},
        {"status": "set_aside"}, {"status": "pending"}, {"language": "en"}, {"language": "de"},
        {"created_at": "2019-11-31T10:00:00.000000+00:00"},
        {"created_at": "2019-11-10T10:00:00+01:00"}, {"created_at": "2019-11-10T10:00:00"},
        {"updated_at": None}, {"activated_at": None}, {"activated_at": ["x"]},
        {"saved_at": "2019-11-10T24:00:00.000000+00:00"},
        {"withdrawn_at": "2019-11-10T10:00:00.000000+00:00"}, {"withdrawn_at": 5},
        {"account_id": "NOT-A-UUID"}, {"account_id": str(uuid.uuid4()).upper()},
        {"session_id": "s" * 65}, {"session_id": ""}, {"answers": []},
        {"answers": {"x": "y" * 9000}}, {"answers": {"deep": deep}},
        {"answers": {"deep": deep["x"]}}, {"status": "withdrawn"}, {"status": "other"},
        {"status": None}, {"family_name": "Nul\x00"}, {"unknown": 1},
    ]  # fmt: skip
    read_typed = 0
    for item, full, kind in (
        (account, _full_account, NewAccount),
        (registration, _full_registration, NewRegistration),
    ):
        for variant in variants:
            data = {**item["data"], **variant}
            try:
                check_depth(data)  # the envelope's reader checks the depth
                expected = full(data)
            except Invalid:
                expected = None
            read = typed({**item, "data": data})
            if read is None:
                continue
            read_typed += 1
            if expected is None:
                assert isinstance(read, Unreadable), (variant, read)
            else:
                assert isinstance(read, kind), (variant, read)
                got = {k: v for k, v in read.fields.items() if k != "answers_text"}
                assert got == expected, (variant, got, expected)
        envelopes = [
            {"version": 0}, {"version": True}, {"version": 2**63}, {"version": 1.0},
            {"base": -1}, {"base": "1"}, {"id": item["id"].upper()}, {"entity": "code"},
            {"other": 1},
        ]  # fmt: skip
        for envelope in envelopes:
            assert typed({**item, **envelope}) is None, envelope
        assert isinstance(typed({**item, "base": 3}), kind)
    assert read_typed >= 20  # the comparison is not empty
    assert common_batch(b'{"items": [], "more": 1}') is None
    assert common_batch(b'{"items": {}}') is None
    assert common_batch(b"[" * 100_000) is None
    # Answers that orjson's decoder reads otherwise (an integer beyond 64 bits becomes a
    # float), or that nest deeper than the full readers take, are left to them whole.
    nested: object = "y"
    for _ in range(6):
        nested = [nested]
    assert typed(registration_item(uuid.uuid4(), who={"n": [nested]})) is None
    assert isinstance(typed(registration_item(uuid.uuid4(), who={"n": nested})), NewRegistration)
    for number, read in ((2**63 - 1, True), (2**63, False), (-(2**63) - 1, False)):
        for who in ({**answers(), "n": number}, {**answers(), "n": [[number]]}):
            assert (typed(registration_item(uuid.uuid4(), who=who)) is not None) is read, who


@pytest.mark.parametrize(
    ("names", "email", "escapes"),
    [
        (("Tab\there", "a\\b", 'Ligne\nRetour\r « guillemets » "cités"'), "t@exemple.fr", True),
        (("Éloïse", "Zoé", "Niort"), "eloise@exemple.fr", False),
        # IDNA's NFKC makes a backslash of U+FF3C: the key holds one, though the body has none.
        (("Éloïse", "Zoé", "Niort"), "eloise@exemple\uff3cfr", False),
    ],
    ids=["escaped", "plain", "derived"],
)
@pytest.mark.parametrize("typed", [True, False], ids=["typed", "decoded"])
def test_texts_are_stored_as_pushed_whatever_characters_they_hold(
    service, store, kiosk_a, names, email, escapes, typed
):
    """The bulk path writes texts as they came: a tab, a newline, a backslash or a quote
    is escaped for PostgreSQL's COPY. A body written without any escape (UTF-8 as is) holds
    none of these, and its texts go as they are; the e-mail key, made by the rectorat, is
    escaped whatever the body."""
    from kiosk.rectorat.items import derived_email_key
    from kiosk.rectorat.wire import PushedBody, common_batch

    family, given, town = names
    account = account_item(email=email, family=family, given=given)
    who = {**answers(family, given), "birth_town": town}
    registration = registration_item(account["id"], who=who)
    body = json.dumps({"items": [account, registration]}, ensure_ascii=False).encode()
    decoded = common_batch(body)
    assert decoded is not None
    batch = PushedBody(body, decoded) if typed else [account, registration]
    if isinstance(batch, PushedBody):
        assert batch.escapes == escapes
    assert results(service.push(kiosk_a, batch)) == ["applied", "applied"]
    stored = store.db.execute_sql(
        "SELECT a.email_key, a.family_name, a.given_names, r.answers FROM rc_account a"
        " JOIN rc_registration r ON r.account_id = a.id"
    ).fetchall()
    key = derived_email_key(email)
    assert [(k, f, g, json.loads(a)) for k, f, g, a in stored] == [(key, family, given, who)]
    assert ("\\" in key) == email.endswith("\uff3cfr")


@pytest.mark.parametrize(
    ("seed", "body"), [(seed, False) for seed in range(6)] + [(seed, True) for seed in range(4)]
)
def test_the_bulk_path_decides_as_the_per_item_path(store_url, tmp_path, clock, seed, body):
    """The set-based path is an optimisation only: random batches give the same results,
    item by item, and leave the same store as the per-item path alone. ``body``: batches of
    accounts, registrations and replays, pushed as the API reads a body, typed when its
    shape is the common one."""
    import random

    from kiosk.rectorat.wire import PushedBody, common_batch

    typed_batches = 0

    def pushed(batch):
        nonlocal typed_batches
        if not body:
            return batch
        encoded = json.dumps({"items": batch}).encode()
        decoded = common_batch(encoded)
        if decoded is None:
            return batch
        typed_batches += 1
        return PushedBody(encoded, decoded)

    if store_url.startswith("sqlite"):
        reference_url = sqlite_url(tmp_path / "reference.sqlite3")
    else:
        reference_url = store_url.rsplit("/", 1)[0] + "/" + f"r{os.getpid()}_{seed}"
        with admin_connection(store_url) as admin:
            admin.cursor().execute(f"CREATE DATABASE r{os.getpid()}_{seed}")
    bulk_store, reference_store = open_store(store_url), open_store(reference_url)
    try:
        bulk = RectoratService(bulk_store, clock, hasher=fast_hasher())
        reference = RectoratService(reference_store, clock, hasher=fast_hasher())
        reference._batch = _NoBulk()
        kiosks = [
            (new_kiosk(bulk, f"borne-{k}")[0], new_kiosk(reference, f"borne-{k}")[0])
            for k in range(2)
        ]
        conflicts_seen = 0
        for k, batch in _random_batches(random.Random(seed), common=body):
            got = bulk.push(kiosks[k][0], pushed(batch))
            expected = reference.push(kiosks[k][1], batch)

            # Conflict ids are random: compare what they hold instead.
            def strip(answer):
                return [{**r, "conflict": "…"} if "conflict" in r else r for r in answer]

            assert strip(got) == strip(expected), batch
            conflicts_seen += sum(r["result"] == "conflict" for r in got)
        assert _store_state(bulk_store) == _store_state(reference_store)
        assert _store_state(bulk_store)["unique_numbers"]
        assert typed_batches >= 6 if body else typed_batches == 0
    finally:
        bulk_store.close()
        reference_store.close()
        if not store_url.startswith("sqlite"):
            with admin_connection(store_url) as admin:
                admin.cursor().execute(
                    f"DROP DATABASE IF EXISTS r{os.getpid()}_{seed} WITH (FORCE)"
                )


def test_the_view_asked_before_the_batch_is_read_is_completed_with_what_the_reading_finds(
    fresh_postgres_url, clock
):
    """PostgreSQL reads the store for the keys a batch shows at a glance while the batch
    is read; the keys the reading finds besides (an address that IDNA writes otherwise, an
    id in capitals) are read after: the view is the one read at once for every key."""
    store = open_store(fresh_postgres_url)
    try:
        service = RectoratService(store, clock, hasher=fast_hasher())
        kiosk_a, kiosk_b = new_kiosk(service, "borne-a")[0], new_kiosk(service, "borne-b")[0]
        owner = account_item(email="jean@xn--bcher-kva.de")
        lent = account_item(email="pretee@exemple.fr", family="Prêtée")
        registered = registration_item(lent["id"])
        assert results(service.push(kiosk_a, [owner, lent, registered])) == ["applied"] * 3
        service.login(kiosk_b, "pretee@exemple.fr", PASSWORD)  # kiosk B holds it now
        batch = [
            account_item(email="jean@BÜCHER.de", family="Autre"),  # owner's key, once read
            registration_item(lent["id"].upper()),
        ]
        path = service._batch
        with store.db.connection_context(), store.write():
            with path._asked_early(kiosk_b, batch, 0) as early:
                parsed = path._parse(batch, 0)
            assert early is not None
            assembled = path._look_up(kiosk_b, parsed, early)
            at_once = path._look_up(kiosk_b, parsed)
        assert early.keys.email_keys == {"jean@bücher.de"}
        assert early.keys.known == {lent["id"].upper()}
        assert at_once.email_owners == {"jean@xn--bcher-kva.de": owner["id"]}
        assert lent["id"] in at_once.holds
        assert (registered["data"]["session_id"], lent["id"]) in at_once.taken_accounts
        assert assembled == at_once
    finally:
        store.close()


def test_each_push_is_planned_for_its_own_keys_however_many_came_before(fresh_postgres_url, clock):
    """The driver prepares a statement once it has run it five times, and PostgreSQL may
    then plan it once for any keys. While the store's statistics lag behind its growth,
    that one plan reads whole tables and compares each row with every key of the batch: a
    kiosk catching up with 1,000 items, after small pushes, waited 165 ms rather than 29.
    A push's look-up is planned for its own keys, every time."""
    store = open_store(fresh_postgres_url)
    try:
        service = RectoratService(store, clock, hasher=fast_hasher())
        kiosk = new_kiosk(service, "borne-a")[0]
        with store.db.connection_context():  # one session: its prepared statements
            for n in range(16):
                account = account_item(email=f"p{n}@exemple.fr", family=f"Nom{n}")
                who = answers(family=f"Nom{n}", birth=f"{1 + n:02d}/05/2001")
                pushed = service.push(kiosk, [account, registration_item(account["id"], who=who)])
                assert results(pushed) == ["applied", "applied"]
            generic, custom = store.db.execute_sql(
                "SELECT coalesce(sum(generic_plans), 0), coalesce(sum(custom_plans), 0)"
                " FROM pg_prepared_statements WHERE statement LIKE '%%= ANY(%%'"
            ).fetchone()
        assert custom > 0  # the look-ups were prepared, and planned
        assert generic == 0
    finally:
        store.close()


# A server's process, settled as at its start, then pushed a full batch.
FULL_BATCH_PUSHED = r"""
import gc, json, sys

from kiosk.clock import Clock, parse_instant
from kiosk.rectorat.api import _settle_garbage_collector
from kiosk.rectorat.service import MAX_BATCH, RectoratService
from kiosk.rectorat.store import open_store, sqlite_url
from tests.factories import account_item, answers, fast_hasher, new_kiosk, registration_item

store = open_store(sqlite_url(sys.argv[1]))
service = RectoratService(store, Clock(parse_instant("2019-11-10T10:00:00"), frozen=True),
                          hasher=fast_hasher())
kiosk = new_kiosk(service, "borne-a")[0]
items = []
for n in range(MAX_BATCH // 2):
    account = account_item(email=f"p{n}@exemple.fr", family=f"Nom{n}")
    who = answers(family=f"Nom{n}", birth=f"{1 + n % 28:02d}/05/2001")
    items += [account, registration_item(account["id"], who=who)]
if sys.argv[2] == "settled":
    _settle_garbage_collector()
collections = []
gc.callbacks.append(lambda phase, info: phase == "start" and collections.append(info))
results = service.push(kiosk, items)
print(json.dumps({"collections": len(collections),
                  "applied": sum(r["result"] == "applied" for r in results)}))
"""


def test_a_settled_server_pushes_a_full_batch_without_a_collection(tmp_path):
    """The objects of a batch live as long as its push: the collector leaves them alone."""

    def pushed(how: str) -> dict:
        run = subprocess.run(
            [sys.executable, "-c", FULL_BATCH_PUSHED, str(tmp_path / f"{how}.sqlite3"), how],
            cwd=ROOT, capture_output=True, text=True, timeout=120, check=True,
        )  # fmt: skip
        return json.loads(run.stdout)

    assert pushed("settled") == {"collections": 0, "applied": MAX_BATCH}
    assert pushed("as started")["collections"] > 10  # what the settling spares


@contextlib.contextmanager
def admin_connection(url: str):
    import psycopg

    connection = psycopg.connect(url, autocommit=True)
    try:
        yield connection
    finally:
        connection.close()


# -- pull ------------------------------------------------------------------------------


def test_each_kiosk_pulls_the_changes_of_its_candidates_in_order(service, kiosk_a, kiosk_b):
    mine = account_item()
    registration = registration_item(mine["id"])
    theirs = account_item(email="autre@exemple.fr", family="Autre")
    service.push(kiosk_a, [mine, registration])
    service.push(kiosk_b, [theirs])
    page = service.changes(kiosk_a, 0)
    assert [(c["entity"], c["id"]) for c in page["changes"]] == [
        ("account", mine["id"]), ("registration", registration["id"]),
    ]  # fmt: skip
    seqs = [c["seq"] for c in page["changes"]]
    assert seqs == sorted(seqs) and page["last"] >= seqs[-1]
    assert page["changes"][1]["version"] == page["changes"][1]["data"]["version"] == 1
    assert page["changes"][1]["data"]["number"] == "2020-PO-000001"
    assert page["changes"][0]["data"]["email_key"] == "jean.dupont@exemple.fr"
    assert service.changes(kiosk_a, page["last"]) == {"changes": [], "last": page["last"]}
    assert [c["id"] for c in service.changes(kiosk_b, 0)["changes"]] == [theirs["id"]]

    # The exam office's work reaches the kiosk, with the rectorat's fields.
    service.set_paper_status(registration["id"], "complete", [])
    update = service.changes(kiosk_a, page["last"])
    assert [(c["entity"], c["data"]["paper_status"]) for c in update["changes"]] == [
        ("registration", "complete")
    ]
    assert update["changes"][0]["seq"] > page["last"]

    # Paged: the cursor stops at the last change given.
    first = service.changes(kiosk_a, 0, limit=1)
    assert [c["id"] for c in first["changes"]] == [mine["id"]] and first["last"] == seqs[0]
    rest = service.changes(kiosk_a, first["last"], limit=1)
    assert [c["id"] for c in rest["changes"]] == [registration["id"]]


def _hold_open_push(service, kiosk, items, holding, release, answer):
    with service.db.connection_context():
        with service.db.atomic():
            answer.extend(service.push(kiosk, items))
            holding.set()
            release.wait(30)


def test_a_transaction_that_commits_late_is_not_skipped(fresh_postgres_url, clock):
    store = open_store(fresh_postgres_url)
    try:
        service = RectoratService(store, clock, hasher=fast_hasher())
        kiosk = new_kiosk(service, "borne-a")[0]
        late, early = account_item(), account_item(email="tot@exemple.fr", family="Tot")
        holding, release, answer = threading.Event(), threading.Event(), []
        transaction_a = threading.Thread(
            target=_hold_open_push, args=(service, kiosk, [late], holding, release, answer)
        )
        transaction_a.start()
        try:
            assert holding.wait(30)
            # B writes and commits while A is still open: sequenced and pulled first.
            assert results(service.push(kiosk, [early])) == ["applied"]
            first = service.changes(kiosk, 0)
            assert [c["id"] for c in first["changes"]] == [early["id"]]
        finally:
            release.set()
            transaction_a.join(30)
        assert results(answer) == ["applied"]
        # A committed late: numbered after the cursor, so the kiosk still gets it.
        second = service.changes(kiosk, first["last"])
        assert [c["id"] for c in second["changes"]] == [late["id"]]
        assert second["changes"][0]["seq"] > first["last"]
        ids = {str(row.entity_id): row.id for row in store.Change.select()}
        assert ids[late["id"]] < ids[early["id"]]  # written first, numbered last
    finally:
        store.close()


def test_two_kiosks_pushing_one_email_at_once_give_one_account_and_one_conflict(
    fresh_postgres_url, clock
):
    store = open_store(fresh_postgres_url)
    try:
        service = RectoratService(store, clock, hasher=fast_hasher())
        kiosk_a, kiosk_b = new_kiosk(service, "borne-a")[0], new_kiosk(service, "borne-b")[0]
        holding, release, answer_a, answer_b = threading.Event(), threading.Event(), [], []
        first = threading.Thread(
            target=_hold_open_push,
            args=(service, kiosk_a, [account_item()], holding, release, answer_a),
        )
        first.start()
        assert holding.wait(30)

        def push_b():
            with service.db.connection_context():
                answer_b.extend(
                    service.push(kiosk_b, [account_item(email="JEAN.dupont@exemple.fr")])
                )

        second = threading.Thread(target=push_b)
        second.start()
        time.sleep(0.3)  # B waits on the unique e-mail that A's open transaction holds
        assert not answer_b
        release.set()
        first.join(30)
        second.join(30)
        assert results(answer_a) == ["applied"] and results(answer_b) == ["conflict"]
        assert store.Account.select().count() == 1 and store.Conflict.select().count() == 1
    finally:
        store.close()


def test_a_change_carries_its_accounts_origin_from_the_push_or_from_the_sequencer(
    service, store, kiosk_a, kiosk_b
):
    """The origin kiosk's batch writes its changes' origin itself; a registration pushed
    by a kiosk that borrowed the account leaves it to the sequencer, which finds kiosk A."""

    def changes(where: str) -> list[tuple]:
        return store.db.execute_sql(
            f"SELECT entity, origin_kiosk_id FROM rc_change WHERE {where} ORDER BY id"
        ).fetchall()

    account = account_item()
    registration = registration_item(account["id"])
    lent = account_item(email="prete@exemple.fr", family="Prete")
    pushed = service.push(kiosk_a, [account, registration, lent])
    assert results(pushed) == ["applied"] * 3
    assert changes("seq IS NULL") == [
        ("account", kiosk_a.id), ("registration", kiosk_a.id), ("account", kiosk_a.id),
    ]  # fmt: skip
    store.sequence()

    service.login(kiosk_b, "prete@exemple.fr", PASSWORD)
    own = account_item(email="autre@exemple.fr", family="Autre")
    borrowed = registration_item(lent["id"], who=answers("Prete"))
    assert results(service.push(kiosk_b, [own, borrowed])) == ["applied", "applied"]
    assert changes("seq IS NULL") == [("account", kiosk_b.id), ("registration", None)]
    store.sequence()
    assert changes("seq IS NOT NULL") == [
        ("account", kiosk_a.id), ("registration", kiosk_a.id), ("account", kiosk_a.id),
        ("account", kiosk_b.id), ("registration", kiosk_a.id),
    ]  # fmt: skip
    # A pulls its candidate's registration made at B; B pulls it too, as a borrower.
    assert [c["id"] for c in service.changes(kiosk_a, 0)["changes"]] == [
        account["id"], registration["id"], lent["id"], borrowed["id"],
    ]  # fmt: skip
    assert [c["id"] for c in service.changes(kiosk_b, 0)["changes"]] == [
        lent["id"], own["id"], borrowed["id"],
    ]  # fmt: skip


# -- login elsewhere -------------------------------------------------------------------


def test_login_elsewhere_lends_the_account_and_records_the_interest(
    service, store, kiosk_a, kiosk_b
):
    account = account_item()
    registration = registration_item(account["id"])
    service.push(kiosk_a, [account, registration])
    found = service.login(kiosk_b, "Jean.Dupont@exemple.fr", PASSWORD)
    # The item came without a language, as from a kiosk of an earlier version: French.
    assert found["account"] == {
        "id": account["id"],
        "version": 1,
        **account["data"],
        "language": "fr",
    }
    assert [(r["id"], r["version"], r["number"], r["answers"]) for r in found["registrations"]] == [
        (registration["id"], 1, "2020-PO-000001", answers()),
    ]
    # Kiosk B now holds the account: it pulls its changes and may write it.
    start = service.changes(kiosk_b, 0)["last"]
    service.set_paper_status(registration["id"], "received")
    assert [c["id"] for c in service.changes(kiosk_b, start)["changes"]] == [registration["id"]]
    assert results(service.push(kiosk_b, [account_item(account["id"], 2, family="Dupont")])) == [
        "applied"
    ]

    with pytest.raises(LoginRefused) as wrong:
        service.login(kiosk_b, "jean.dupont@exemple.fr", "not the password at all")
    assert wrong.value.reason == "login"
    with pytest.raises(LoginRefused) as unknown:
        service.login(kiosk_b, "personne@exemple.fr", PASSWORD)
    assert unknown.value.reason == "login"
    service.push(kiosk_a, [account_item(email="attente@exemple.fr", status="pending")])
    with pytest.raises(LoginRefused) as pending:
        service.login(kiosk_b, "attente@exemple.fr", PASSWORD)
    assert pending.value.reason == "pending"


def test_login_elsewhere_waits_after_five_failures(service, store, clock, kiosk_a, kiosk_b):
    service.push(kiosk_a, [account_item()])
    for _ in range(5):
        with pytest.raises(LoginRefused) as refused:
            service.login(kiosk_b, "jean.dupont@exemple.fr", "wrong password, again")
        assert refused.value.reason == "login"
    with pytest.raises(LoginRefused) as locked:
        service.login(kiosk_b, "jean.dupont@exemple.fr", PASSWORD)  # even the right one
    assert (locked.value.reason, locked.value.retry_after) == ("locked", 30)
    clock.advance(timedelta(seconds=31))
    assert (
        service.login(kiosk_b, "jean.dupont@exemple.fr", PASSWORD)["account"]["family_name"]
        == "Dupont"
    )
    stored = store.Account.get()
    assert (stored.failed_logins, stored.locked_until) == (0, None)


# -- credentials -----------------------------------------------------------------------


def test_credentials_are_issued_checked_and_revoked(service, store):
    kiosk, token = new_kiosk(service, "borne-1")
    assert store.Kiosk.get().token_sha256 != token and len(store.Kiosk.get().token_sha256) == 64
    assert service.authenticate("borne-1", token + "x") is None
    assert service.authenticate("borne-2", token) is None
    with pytest.raises(ValueError, match="déjà un identifiant"):
        service.issue_credential("borne-1")
    with pytest.raises(ValueError):
        service.issue_credential("borne:1")
    service.revoke_credential("borne-1")
    assert service.authenticate("borne-1", token) is None
    fresh = service.issue_credential("borne-1")  # the same kiosk, a new token
    assert service.authenticate("borne-1", fresh) == kiosk
    assert service.authenticate("borne-1", token) is None


def test_identity_key_ignores_case_accents_and_date_format():
    same = identity_key(answers("dupont", "jean", "2001-05-04"))
    assert identity_key(answers("DUPONT", "Jéan ", "04/05/2001")) == same
    assert identity_key(answers(birth="")) is None


# -- HTTP ------------------------------------------------------------------------------


def _bearer(name: str, token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {name}:{token}"}


class _Uvicorn:
    """A real uvicorn server on 127.0.0.1, in a thread of this process."""

    def __init__(self, app) -> None:
        import uvicorn

        self.port = _free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "uvicorn did not start"
            time.sleep(0.02)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(20)


@pytest.fixture
def http(service, store, clock):
    """An HTTP client of the app served by a real uvicorn on 127.0.0.1, without the
    background sequencer: a pull numbers what waits, so it brings what was pushed before."""
    from kiosk.rectorat.api import make_app

    app = make_app(store, clock, service=service, max_body=64 * 1024, sequence_interval=None)
    with _Uvicorn(app) as base, httpx.Client(base_url=base, timeout=10) as client:
        yield client


def test_http_answers_and_refusals(http, service, clock):
    health = http.get("/v1/health")
    assert health.status_code == 200 and health.json() == {"ok": True, "now": iso(clock.now())}
    kiosk, token = new_kiosk(service, "borne-a")
    auth = _bearer("borne-a", token)
    for headers in ({}, {"Authorization": f"Bearer borne-a:{token}x"},
                    {"Authorization": f"Basic borne-a:{token}"},
                    {"Authorization": "Bearer borne-a"}):  # fmt: skip
        answer = http.post("/v1/push", json={"items": []}, headers=headers)
        assert (answer.status_code, answer.json()) == (401, {"error": "unauthorised"})
    assert http.get("/v1/changes", headers={}).status_code == 401

    bad = http.post("/v1/push", content=b"{not json", headers=auth)
    assert bad.status_code == 400 and "JSON" in bad.json()["error"]
    assert http.post("/v1/push", json={"things": []}, headers=auth).status_code == 400
    assert (
        http.post("/v1/push", json={"items": [{}] * (MAX_BATCH + 1)}, headers=auth).status_code
        == 400
    )
    huge = http.post("/v1/push", content=b"[" + b" " * 70_000 + b"]", headers=auth)
    assert huge.status_code == 413
    assert http.get("/v1/changes?after=x", headers=auth).status_code == 400
    assert http.get("/v1/changes?limit=0", headers=auth).status_code == 400
    assert http.get("/v1/nowhere").status_code == 404

    account = account_item()
    pushed = http.post("/v1/push", json={"items": [account]}, headers=auth)
    assert pushed.status_code == 200
    assert pushed.json() == {
        "results": [{"id": account["id"], "result": "applied"}],
        "now": iso(clock.now()),
    }
    pulled = http.get("/v1/changes", params={"after": 0, "limit": 10}, headers=auth).json()
    assert [c["id"] for c in pulled["changes"]] == [account["id"]] and pulled["last"] == pulled[
        "changes"
    ][0]["seq"]

    right = {"email_key": "jean.dupont@exemple.fr", "password": PASSWORD}
    good = http.post("/v1/accounts/login", json=right, headers=auth)
    assert good.status_code == 200 and good.json()["account"]["id"] == account["id"]
    for _ in range(5):
        wrong = http.post("/v1/accounts/login", json={**right, "password": "nope"}, headers=auth)
        assert (wrong.status_code, wrong.json()) == (401, {"error": "login"})
    locked = http.post("/v1/accounts/login", json=right, headers=auth)
    assert (locked.status_code, locked.json()) == (429, {"error": "locked", "retry_after": 30})
    assert locked.headers["retry-after"] == "30"
    assert http.post("/v1/accounts/login", json={"email_key": 3}, headers=auth).status_code == 400

    service.revoke_credential("borne-a")
    revoked = http.get("/v1/changes", headers=auth)
    assert (revoked.status_code, revoked.json()) == (401, {"error": "unauthorised"})


def test_the_background_sequencer_numbers_the_feed(service, store, clock):
    from kiosk.rectorat.api import make_app

    kiosk = new_kiosk(service, "borne-a")[0]
    service.push(kiosk, [account_item()])
    assert store.Change.get().seq is None
    with _Uvicorn(make_app(store, clock, service=service, sequence_interval=0.05)):
        deadline = time.monotonic() + 10
        while (
            store.Change.select().where(store.Change.seq.is_null()).exists()
            and time.monotonic() < deadline
        ):
            time.sleep(0.02)
    assert store.Change.get().seq == 1


def test_sync_through_a_real_uvicorn_server(service, store, clock):
    from kiosk.rectorat.api import make_app

    kiosk, token = new_kiosk(service, "borne-a")
    other_token = new_kiosk(service, "borne-b")[1]
    account = account_item()
    registration = registration_item(account["id"])
    with (
        _Uvicorn(make_app(store, clock, service=service, sequence_interval=None)) as base,
        httpx.Client(base_url=base, timeout=10) as client,
    ):
        assert client.get("/v1/health").json()["ok"] is True
        auth = _bearer("borne-a", token)
        pushed = client.post("/v1/push", json={"items": [account, registration]}, headers=auth)
        assert [r["result"] for r in pushed.json()["results"]] == ["applied", "applied"]
        replayed = client.post("/v1/push", json={"items": [account, registration]}, headers=auth)
        assert [r["result"] for r in replayed.json()["results"]] == ["stale", "stale"]
        pulled = client.get("/v1/changes", params={"after": 0}, headers=auth).json()
        assert [c["entity"] for c in pulled["changes"]] == ["account", "registration"]
        assert pulled["changes"][1]["data"]["number"] == "2020-PO-000001"

        borrowed = client.post(
            "/v1/accounts/login",
            json={"email_key": "jean.dupont@exemple.fr", "password": PASSWORD},
            headers=_bearer("borne-b", other_token),
        )  # fmt: skip
        assert borrowed.status_code == 200 and len(borrowed.json()["registrations"]) == 1

        service.revoke_credential("borne-a")  # takes effect on the next request
        answer = client.get("/v1/changes", params={"after": pulled["last"]}, headers=auth)
        assert (answer.status_code, answer.json()) == (401, {"error": "unauthorised"})


# -- command line ----------------------------------------------------------------------


def _kiosk_command(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "kiosk.py", *args], cwd=ROOT, capture_output=True, text=True,
        timeout=timeout, env=dict(os.environ, **(env or {})), check=False,
    )  # fmt: skip


@pytest.fixture
def cli_store(store_url, tmp_path):
    """How the command is told where the store is: --data-dir for SQLite, the
    environment for PostgreSQL."""
    if store_url.startswith("sqlite"):
        data_dir = tmp_path
        assert store_url == default_url(data_dir)
        return ["--data-dir", str(data_dir)], {"KIOSK_RECTORAT_DB": ""}
    return [], {"KIOSK_RECTORAT_DB": store_url}


def test_cli_adds_lists_and_revokes_kiosk_credentials(cli_store, store_url, clock):
    options, env = cli_store
    added = _kiosk_command("rectorat", *options, "kiosk", "add", "borne-1", env=env)
    assert added.returncode == 0, added.stderr
    name, _, token = added.stdout.strip().partition(":")
    assert name == "borne-1" and len(token) >= 43 and token not in added.stderr
    again = _kiosk_command("rectorat", "kiosk", "add", "borne-1", *options, env=env)
    assert again.returncode == 2 and "a déjà un identifiant" in again.stderr

    store = open_store(store_url)
    try:
        service = RectoratService(store, clock)
        assert service.authenticate("borne-1", token) is not None
        listed = _kiosk_command("rectorat", "kiosk", "list", *options, env=env)
        assert (
            listed.returncode == 0
            and listed.stdout.startswith("borne-1\t")
            and "active" in listed.stdout
        )
        assert token not in listed.stdout
        revoked = _kiosk_command("rectorat", *options, "kiosk", "revoke", "borne-1", env=env)
        assert revoked.returncode == 0, revoked.stderr
        assert service.authenticate("borne-1", token) is None
        assert "révoquée" in _kiosk_command("rectorat", "kiosk", "list", *options, env=env).stdout
        unknown = _kiosk_command("rectorat", *options, "kiosk", "revoke", "borne-9", env=env)
        assert unknown.returncode == 2 and "borne-9" in unknown.stderr
    finally:
        store.close()


def _self_signed(folder: Path) -> tuple[Path, Path]:
    from tests.support.requirements import need_program

    openssl = need_program("openssl", "openssl")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
         "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


@pytest.mark.parametrize(
    "workers, tls", [(1, False), (2, False), (1, True)], ids=["one", "two-workers", "tls"]
)
def test_cli_serves_the_api(tmp_path, workers, tls):
    import ssl

    data = ["--data-dir", str(tmp_path)]
    env = {"KIOSK_RECTORAT_DB": ""}
    credential = _kiosk_command(
        "rectorat", *data, "kiosk", "add", "borne-1", env=env
    ).stdout.strip()
    token = credential.partition(":")[2]
    port = _free_port()
    secret = "mot de passe secret 1234"
    options, verify, scheme = [], True, "http"
    if tls:
        cert, key = _self_signed(tmp_path)
        options, scheme = ["--tls-cert", str(cert), "--tls-key", str(key)], "https"
        verify = ssl.create_default_context(cafile=cert)
    server = subprocess.Popen(
        [sys.executable, "kiosk.py", "rectorat", "serve", *data, "--port", str(port),
         "--workers", str(workers), "--log-level", "info", *options],
        cwd=ROOT, env=dict(os.environ, **env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, start_new_session=True,
    )  # fmt: skip
    try:
        with httpx.Client(
            base_url=f"{scheme}://127.0.0.1:{port}", verify=verify, timeout=10
        ) as client:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if client.get("/v1/health", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert server.poll() is None and time.monotonic() < deadline, (
                    "the server did not start"
                )
                time.sleep(0.1)
            auth = _bearer("borne-1", token)
            answer = client.post("/v1/push", json={"items": [account_item()]}, headers=auth)
            assert [r["result"] for r in answer.json()["results"]] == ["applied"]
            assert client.get("/v1/changes", params={"after": 0}, headers=auth).json()["changes"]
            login = client.post(
                "/v1/accounts/login",
                json={"email_key": "jean.dupont@exemple.fr", "password": secret},
                headers=auth,
            )
            assert login.status_code == 401
            assert client.get("/v1/changes", headers=_bearer("borne-1", "x")).status_code == 401
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0]
    assert "/v1/push" in output  # the access log is on…
    assert token not in output and secret not in output  # …and tells no secret
