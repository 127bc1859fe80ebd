"""The rectorat's feed at the size of its history: each pull read from an index per holding,
its records read as stored (the same items as the models give), and the store's schema 5."""

from __future__ import annotations

import json
import uuid

from kiosk.rectorat.feed import record_item
from kiosk.rectorat.service import RectoratService
from kiosk.rectorat.store import SCHEMA_VERSION, open_store
from tests.factories import (
    account_item,
    address_item,
    answers,
    deletion_item,
    fast_hasher,
    new_kiosk,
    registration_item,
    results,
)


def _candidates(prefix: str, count: int) -> list[dict]:
    """``count`` accounts, then their registrations: distinct people."""
    accounts = [
        account_item(email=f"{prefix}{n}@exemple.fr", family=f"{prefix.title()}{n:05d}")
        for n in range(count)
    ]
    registrations = [
        registration_item(
            account["id"], who=answers(family=account["data"]["family_name"], given="Camille")
        )
        for account in accounts
    ]
    return accounts + registrations


def _page_statement(store, service, kiosk, after: int) -> tuple[str, tuple]:
    """The statement a pull runs to find its page, and its parameters."""
    seen: list[tuple[str, tuple]] = []
    execute = store.db.execute_sql

    def watching(sql, params=None, *rest):
        if "rc_interest" in sql and "FROM rc_change" in sql:
            seen.append((sql, tuple(params or ())))
        return execute(sql, params, *rest)

    store.db.execute_sql = watching
    try:
        service.changes(kiosk, after)
    finally:
        store.db.execute_sql = execute
    assert len(seen) == 1
    return seen[0]


def _scans(plan: dict) -> list[tuple[str, str | None, str | None]]:
    """Every node of a JSON plan that reads a table or an index: (type, table, index)."""
    found = [(plan["Node Type"], plan.get("Relation Name"), plan.get("Index Name"))]
    for child in plan.get("Plans", []):
        found += _scans(child)
    return [scan for scan in found if scan[1] is not None or scan[2] is not None]


_FEED_INDEXES = {"change_origin_kiosk_id_seq", "change_account_id_seq"}


def test_a_pull_reads_one_index_range_per_holding_whatever_the_statistics(
    fresh_postgres_url, clock
):
    """A few kiosks, each a large share of the feed: the planner's own choice was to walk the
    index on seq from the cursor, filtering everybody's changes. The kiosk's range is read
    from (origin_kiosk_id, seq), each borrowed account's from (account_id, seq)."""
    store = open_store(fresh_postgres_url)
    try:
        service = RectoratService(store, clock, hasher=fast_hasher())
        kiosks = [new_kiosk(service, f"borne-{k}")[0] for k in range(4)]
        for k, kiosk in enumerate(kiosks):
            for part in range(2):
                batch = _candidates(f"k{k}p{part}x", 500)
                assert set(results(service.push(kiosk, batch))) == {"applied"}
        borrowed = store.db.execute_sql(
            "SELECT id, email_key FROM rc_account WHERE origin_kiosk_id = %s LIMIT 3",
            (kiosks[0].id,),
        ).fetchall()
        for account_id, _ in borrowed:
            store.db.execute_sql(
                "INSERT INTO rc_interest (kiosk_id, account_id, created_at) VALUES (%s, %s, %s)",
                (kiosks[-1].id, account_id, "2019-11-10T10:00:00.000000+00:00"),
            )
        store.sequence()
        store.db.execute_sql("ANALYZE")
        last = kiosks[-1]
        for after in (0, store.last_seq() // 2):
            sql, params = _page_statement(store, service, last, after)
            plan = store.db.execute_sql(f"EXPLAIN (FORMAT JSON) {sql}", params).fetchone()[0]
            plan = plan if isinstance(plan, list) else json.loads(plan)
            scans = _scans(plan[0]["Plan"])
            assert ("Index Scan", "rc_change", "change_origin_kiosk_id_seq") in scans, scans
            assert ("Seq Scan", "rc_change", None) not in scans, scans
            on_changes = {index for _, _, index in scans if index and "change" in index}
            assert on_changes <= _FEED_INDEXES, scans
        page = service.changes(last, 0, limit=1000)
        ids = {change["id"] for change in page["changes"]}
        assert {str(account_id) for account_id, _ in borrowed} <= ids
        assert len(page["changes"]) == 1000
    finally:
        store.close()


def test_the_feed_sends_each_record_as_its_model_reads(store_url, clock):
    """The feed reads its records' columns as stored; the items are those the models give."""
    store = open_store(store_url)
    try:
        service = RectoratService(store, clock, hasher=fast_hasher())
        kiosk = new_kiosk(service, "borne-a")[0]
        account = account_item(email="zoé.o'brien@exemple.fr", family="O'Brien", status="pending")
        registration = registration_item(account["id"], who=answers(family="O'Brien"))
        address = address_item(registration["id"])
        assert results(service.push(kiosk, [account, registration, address])) == ["applied"] * 3
        service.set_paper_status(registration["id"], "incomplete", ["photo", "identité"])
        page = service.changes(kiosk, 0)
        m = store
        models = {"account": m.Account, "registration": m.Registration,
                  "address_change": m.AddressChange}  # fmt: skip
        assert {change["entity"] for change in page["changes"]} == set(models)
        for change in page["changes"]:
            model = models[change["entity"]]
            expected = record_item(change["entity"], model.get_by_id(uuid.UUID(change["id"])))
            assert {k: v for k, v in change.items() if k != "seq"} == expected
    finally:
        store.close()


def test_ids_and_keys_with_quotes_and_backslashes_are_looked_up_as_they_are(
    fresh_postgres_url, clock
):
    """The bulk path sends its keys as array literals: a quote or a backslash in an address
    is escaped there, and the same address pushed again is found (a conflict)."""
    store = open_store(fresh_postgres_url)
    try:
        service = RectoratService(store, clock, hasher=fast_hasher())
        kiosk = new_kiosk(service, "borne-a")[0]
        email = 'je"an\\x@exemple.fr'
        first = account_item(email=email)
        assert results(service.push(kiosk, [first])) == ["applied"]
        assert store.db.execute_sql("SELECT email_key FROM rc_account").fetchall() == [(email,)]
        again = account_item(email=email)
        assert results(service.push(kiosk, [again, account_item(email="autre@exemple.fr")])) == [
            "conflict",
            "applied",
        ]
    finally:
        store.close()


def as_before(store, version: int, constraint: str) -> None:
    """``store`` as a store at schema ``version`` left it: with ``constraint``, which a
    later migration drops, and that version recorded."""
    with store.write():
        store.db.execute_sql(constraint)
        store.db.execute_sql("DELETE FROM rc_schema")
        store.db.execute_sql(
            "INSERT INTO rc_schema (version, migrated_at) VALUES (%s, '2019-11-10T10:00:00')",
            (version,),
        )


def test_schema_5_drops_the_origin_kiosks_foreign_key(fresh_postgres_url, clock):
    """A store made before schema 5 checked rc_account.origin_kiosk_id against rc_kiosk on
    every pushed account; its migration drops the constraint, and the accounts stay."""
    store = open_store(fresh_postgres_url)
    try:
        service = RectoratService(store, clock, hasher=fast_hasher())
        kiosk = new_kiosk(service, "borne-a")[0]
        assert results(service.push(kiosk, [account_item()])) == ["applied"]
        as_before(
            store,
            4,
            "ALTER TABLE rc_account ADD CONSTRAINT rc_account_origin_kiosk_id_fkey"
            " FOREIGN KEY (origin_kiosk_id) REFERENCES rc_kiosk (id) ON DELETE SET NULL",
        )
    finally:
        store.close()

    store = open_store(fresh_postgres_url)
    try:
        assert store.schema_version() == SCHEMA_VERSION
        assert 5 in [row[0] for row in store.db.execute_sql("SELECT version FROM rc_schema")]
        constraints = store.db.execute_sql(
            "SELECT conname FROM pg_constraint WHERE conrelid = 'rc_account'::regclass"
            " AND contype = 'f'"
        ).fetchall()
        assert constraints == []
        assert store.db.execute_sql("SELECT count(*) FROM rc_account").fetchone() == (1,)
    finally:
        store.close()


def test_schema_9_drops_the_registrations_foreign_key(fresh_postgres_url, clock):
    """A store made before schema 9 checked rc_registration.account_id against rc_account
    on every pushed registration; its migration drops the constraint. A pending account's
    deletion still takes its registrations, and a registration of an account the store
    does not hold is still a conflict, never a row without its account."""
    store = open_store(fresh_postgres_url)
    try:
        service = RectoratService(store, clock, hasher=fast_hasher())
        kiosk = new_kiosk(service, "borne-a")[0]
        account = account_item()
        assert results(service.push(kiosk, [account, registration_item(account["id"])])) == [
            "applied",
            "applied",
        ]
        as_before(
            store,
            8,
            "ALTER TABLE rc_registration ADD CONSTRAINT rc_registration_account_id_fkey"
            " FOREIGN KEY (account_id) REFERENCES rc_account (id) ON DELETE CASCADE",
        )
    finally:
        store.close()

    store = open_store(fresh_postgres_url)
    try:
        assert store.schema_version() == SCHEMA_VERSION == 10
        constraints = store.db.execute_sql(
            "SELECT conname FROM pg_constraint WHERE conrelid = 'rc_registration'::regclass"
            " AND contype = 'f'"
        ).fetchall()
        assert constraints == []
        service = RectoratService(store, clock, hasher=fast_hasher())
        kiosk = new_kiosk(service, "borne-b")[0]
        stranger = registration_item(uuid.uuid4())
        answer = service.push(kiosk, [stranger])
        assert (answer[0]["result"], answer[0]["kind"]) == ("conflict", "account")
        pending = account_item(email="en.attente@exemple.fr", status="pending")
        assert results(service.push(kiosk, [pending])) == ["applied"]
        # A stored pending account's registration goes down the per-item path, which holds
        # the account's row until it commits: the deletion takes it too.
        late = registration_item(pending["id"], who=answers("Attente", "Jeanne", "02/01/2002"))
        assert results(service.push(kiosk, [late])) == ["applied"]
        assert results(service.push(kiosk, [deletion_item(pending["id"])])) == ["applied"]
        orphans = store.db.execute_sql(
            "SELECT count(*) FROM rc_registration r"
            " WHERE NOT EXISTS (SELECT 1 FROM rc_account a WHERE a.id = r.account_id)"
        ).fetchone()
        assert orphans == (0,)
        assert store.db.execute_sql("SELECT count(*) FROM rc_registration").fetchone() == (1,)
    finally:
        store.close()
