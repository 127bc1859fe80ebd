"""Sync end to end on PostgreSQL: a kiosk's push rate against a raw upsert; 200 kiosks at once."""

from __future__ import annotations

import asyncio
import json
import shutil
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from bench import Figure
from bench._collector import as_in_the_kiosk_process
from bench._rectorat import percentiles, postgres, rectorat_server

ORDER = 85
N = 2_000  # registrations (each with its account) a kiosk store holds in each round
ROUNDS = 5  # rounds of N, pushed one after the other: the figures are their medians
KIOSKS = 200  # simulated kiosks pushing at once
PER_KIOSK = 5  # registrations (each with its account) a simulated kiosk pushes
NOW = "2019-11-10T10:00:00"  # inside the window of bacpro-poitiers-2020 (Paris time)
SESSION = "bacpro-poitiers-2020"
PASSWORD_HASH = "$argon2id$v=19$m=8,t=1,p=1$YmVuY2hzYWx0$YmVuY2hoYXNo"  # never checked here
DEADLINE = 300  # seconds, for any one wait


def _answers(n: int, prefix: str) -> dict:
    """Registration answers of a distinct person: the rectorat's same-person rule sees no one
    twice."""
    return {
        "family_name": f"{prefix}{n:05d}", "given_names": "Camille",
        "birth_date": f"{1 + n % 28:02d}/{1 + n % 12:02d}/2001",
        "birth_town": "Poitiers", "address_line1": "12 rue de la Paix", "postal_code": "86000",
        "town": "Poitiers", "country": "France", "specialty": "x",
    }  # fmt: skip


# -- 1. one kiosk's push against a raw upsert ------------------------------------------------


def _register(kiosk_store, clock, first: int) -> None:
    """N more active accounts and their registrations in the kiosk store, written through
    the models in one transaction: the store's triggers queue one outbox row for each."""
    accounts, registrations = kiosk_store.Account, kiosk_store.Registration
    now = clock.now()
    with kiosk_store.atomic():
        for n in range(first, first + N):
            account = accounts.create(
                email=f"bench{n}@exemple.fr", email_key=f"bench{n}@exemple.fr",
                family_name=f"Bench{n:05d}", given_names="Camille", password_hash=PASSWORD_HASH,
                status="active", activated_at=now, created_at=now, updated_at=now,
            )  # fmt: skip
            registrations.create(
                account=account.id, session_id=SESSION, answers=_answers(n, "Bench"),
                status="registered", saved_at=now, created_at=now, updated_at=now,
            )  # fmt: skip


class _RawTables:
    """The same rows upserted straight into plain tables of the rc_* shape (their primary
    key only), as the kiosk sends them, 500 items a transaction, with psycopg 3 (the
    rectorat's driver), ``INSERT … ON CONFLICT (id) DO UPDATE … WHERE version <``, one of
    two ways: ``pipeline``, psycopg 3's ``executemany`` of the one-row statement, which
    sends a batch in pipeline mode (what replaces psycopg2's ``execute_values``); ``copy``,
    each batch COPY'd into a temporary table, then moved in by one ``INSERT … SELECT``."""

    ACCOUNT = (
        "id", "version", "created_at", "updated_at", "email", "email_key", "family_name",
        "given_names", "password_hash", "status", "activated_at", "failed_logins", "received_at",
        "language",
    )  # fmt: skip
    REGISTRATION = (
        "id", "version", "created_at", "updated_at", "account_id", "session_id", "answers",
        "status", "saved_at", "withdrawn_at", "identity_key", "number", "received_at",
    )  # fmt: skip

    def __init__(self, url: str, method: str) -> None:
        import psycopg

        self.connection = psycopg.connect(url, autocommit=True)
        self.method = method
        self.accounts, self.registrations = f"{method}_account", f"{method}_registration"
        self.numbered = 0
        with self.connection.cursor() as cursor:
            for table, like in (
                (self.accounts, "rc_account"),
                (self.registrations, "rc_registration"),
            ):
                cursor.execute(f"CREATE TABLE {table} (LIKE {like} INCLUDING DEFAULTS)")
                cursor.execute(f"ALTER TABLE {table} ADD PRIMARY KEY (id)")
                cursor.execute(
                    f"CREATE TEMPORARY TABLE incoming_{table} (LIKE {table}) ON COMMIT DELETE ROWS"
                )

    @staticmethod
    def _upsert(table: str, columns: tuple[str, ...], source: str) -> str:
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c != "id")
        return (
            f"INSERT INTO {table} ({', '.join(columns)}) {source}"
            f" ON CONFLICT (id) DO UPDATE SET {updates} WHERE {table}.version < excluded.version"
        )

    def _move(self, cursor, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
        if not rows:
            return
        listed = ", ".join(columns)
        if self.method == "pipeline":
            values = f"VALUES ({', '.join(['%s'] * len(columns))})"
            cursor.executemany(self._upsert(table, columns, values), rows)
            return
        with cursor.copy(f"COPY incoming_{table} ({listed}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute(self._upsert(table, columns, f"SELECT {listed} FROM incoming_{table}"))

    def upsert(self, items: list[dict], now_iso: str) -> float:
        """Upsert ``items``; returns the seconds taken (the rows are made before)."""
        from kiosk.rectorat.identity import identity_key

        batches = []
        for start in range(0, len(items), 500):
            accounts, registrations = [], []
            for item in items[start : start + 500]:
                d = item["data"]
                if item["entity"] == "account":
                    accounts.append((
                        item["id"], item["version"], d["created_at"], d["updated_at"], d["email"],
                        d["email_key"], d["family_name"], d["given_names"], d["password_hash"],
                        d["status"], d["activated_at"], 0, now_iso, d.get("language", "fr"),
                    ))  # fmt: skip
                else:
                    self.numbered += 1
                    registrations.append((
                        item["id"], item["version"], d["created_at"], d["updated_at"],
                        d["account_id"], d["session_id"], json.dumps(d["answers"], sort_keys=True),
                        d["status"], d["saved_at"], d["withdrawn_at"], identity_key(d["answers"]),
                        f"2020-PO-{self.numbered:06d}", now_iso,
                    ))  # fmt: skip
            batches.append((accounts, registrations))
        t0 = time.perf_counter()
        for accounts, registrations in batches:
            with self.connection.transaction(), self.connection.cursor() as cursor:
                self._move(cursor, self.accounts, self.ACCOUNT, accounts)
                self._move(cursor, self.registrations, self.REGISTRATION, registrations)
        return time.perf_counter() - t0

    def count(self) -> tuple[int, int]:
        with self.connection.cursor() as cursor:
            cursor.execute(
                f"SELECT (SELECT count(*) FROM {self.accounts}),"
                f" (SELECT count(*) FROM {self.registrations})"
            )
            return cursor.fetchone()

    def close(self) -> None:
        self.connection.close()


def _one_kiosk(url: str, base: str, folder: Path) -> list[Figure]:
    from kiosk.clock import Clock, parse_instant
    from kiosk.rectorat.service import RectoratService
    from kiosk.rectorat.store import open_store as open_rectorat
    from kiosk.runtime.config import SyncConfig
    from kiosk.store.database import open_store
    from kiosk.sync.client import SyncClient, SyncService

    clock = Clock(parse_instant(NOW), frozen=True)
    store = open_rectorat(url)
    try:
        token = RectoratService(store, clock).issue_credential("bench-kiosk")
    finally:
        store.close()
    kiosk_store = open_store(folder / "kiosk.sqlite3")
    client = SyncClient(SyncConfig(url=base, token=f"bench-kiosk:{token}", timeout=120))
    sync = SyncService(kiosk_store, clock, client)
    raw, copied = _RawTables(url, "pipeline"), _RawTables(url, "copy")
    push_s, raw_s, copy_s = [], [], []
    try:
        with as_in_the_kiosk_process():
            for round_ in range(ROUNDS):
                _register(kiosk_store, clock, round_ * N)
                # What is sent, read as the kiosk reads it, for the raw upsert (outside any
                # timing).
                items = [json.loads(item) for item in sync.waiting(2 * N).items]
                # The kiosk's own path: read the outbox, send each batch over HTTP, mark it
                # delivered.
                t0 = time.perf_counter()
                sync.push_waiting()
                push_s.append(time.perf_counter() - t0)
                if sync.pending():
                    raise RuntimeError(f"{sync.pending()} outbox rows still pending after the push")
                raw_s.append(raw.upsert(items, clock.now().isoformat()))
                copy_s.append(copied.upsert(items, clock.now().isoformat()))
        t0 = time.perf_counter()
        pulled = sync.pull()
        pull_s = time.perf_counter() - t0
        if raw.count() != (ROUNDS * N, ROUNDS * N) or copied.count() != raw.count():
            raise RuntimeError("the raw upsert did not write every row")
    finally:
        raw.close()
        copied.close()
        client.close()
        kiosk_store.close()

    store = open_rectorat(url)
    try:
        counts = store.db.execute_sql(
            "SELECT (SELECT count(*) FROM rc_account), (SELECT count(*) FROM rc_registration),"
            " (SELECT count(DISTINCT number) FROM rc_registration),"
            " (SELECT count(*) FROM rc_conflict)"
        ).fetchone()
    finally:
        store.close()
    total = ROUNDS * N
    if counts != (total, total, total, 0):
        raise RuntimeError(
            f"the rectorat holds {counts} (accounts, registrations, numbers, conflicts)"
        )

    push, raw_median = statistics.median(push_s), statistics.median(raw_s)
    copy_median = statistics.median(copy_s)
    rounds = f"median of {ROUNDS} rounds of {N} (the tables grow from 0 to {total} rows)"
    return [
        Figure("sync.push_registrations", N / push, "reg/s", better="higher",
               note=f"{N} registrations with their accounts ({2 * N} items, batches of 250 then up"
                    " to 2,000) from one kiosk store through `kiosk rectorat serve` (its own"
                    " process) to PostgreSQL 15 (fsync off), kiosk side included (its collector"
                    " set as in the kiosk process);"
                    f" {rounds}: {', '.join(f'{s:.2f}' for s in push_s)} s"),
        Figure("sync.raw_upsert", 2 * N / raw_median, "rows/s", better="higher",
               note=f"the same {2 * N} rows with psycopg 3, 500 a transaction, executemany of"
                    " INSERT … ON CONFLICT DO UPDATE WHERE version < excluded.version (pipeline"
                    " mode, as psycopg 3 sends executemany) into plain tables of the rc_* shape;"
                    f" {rounds}: {', '.join(f'{s:.3f}' for s in raw_s)} s"),
        Figure("sync.push_vs_raw", raw_median / push, "ratio", goal=0.5, better="higher",
               note="items/s through the sync service over rows/s of the raw upsert (medians)"),
        Figure("sync.copy_upsert", 2 * N / copy_median, "rows/s", better="higher",
               note=f"the same {2 * N} rows, psycopg 3's COPY into a temporary table, then one"
                    " INSERT … SELECT … ON CONFLICT DO UPDATE WHERE version < excluded.version a"
                    f" batch of 500; {rounds}: {', '.join(f'{s:.3f}' for s in copy_s)} s"),
        Figure("sync.push_vs_copy", copy_median / push, "ratio", better="higher",
               note="items/s through the sync service over rows/s of the COPY upsert (medians):"
                    " the stricter baseline"),
        Figure("sync.pull_changes", pulled / pull_s, "changes/s", better="higher",
               note=f"the kiosk pulls its {pulled} changes back (numbers), pages of 500;"
                    f" {pull_s:.2f} s"),
    ]  # fmt: skip


# -- 2. 200 kiosks at once ---------------------------------------------------------------------


def _kiosk_batch(k: int) -> list[dict]:
    stamp = "2019-11-10T09:00:00.000000+00:00"
    items: list[dict] = []
    for n in range(PER_KIOSK):
        account_id, registration_id, name = (
            str(uuid.uuid4()),
            str(uuid.uuid4()),
            f"k{k}n{n}@exemple.fr",
        )
        items.append({"entity": "account", "id": account_id, "version": 3, "data": {
            "created_at": stamp, "updated_at": stamp, "email": name, "email_key": name,
            "family_name": f"Borne{k:03d}", "given_names": f"Camille{n}",
            "password_hash": PASSWORD_HASH, "status": "active", "activated_at": stamp,
        }})  # fmt: skip
        items.append({"entity": "registration", "id": registration_id, "version": 1, "data": {
            "created_at": stamp, "updated_at": stamp, "account_id": account_id,
            "session_id": SESSION, "answers": _answers(k * PER_KIOSK + n, "Borne"),
            "status": "registered", "saved_at": stamp, "withdrawn_at": None}})  # fmt: skip
    return items


def _many_kiosks(url: str, base: str) -> list[Figure]:
    import httpx

    from kiosk.clock import Clock, parse_instant
    from kiosk.rectorat.service import RectoratService
    from kiosk.rectorat.store import open_store

    store = open_store(url)
    try:
        service = RectoratService(store, Clock(parse_instant(NOW)))
        credentials = [
            f"borne-{k:03d}:{service.issue_credential(f'borne-{k:03d}')}" for k in range(KIOSKS)
        ]
    finally:
        store.close()
    batches = [_kiosk_batch(k) for k in range(KIOSKS)]
    latencies: list[float] = []
    results: list[list[dict]] = [[] for _ in range(KIOSKS)]

    async def kiosk(k: int, go: asyncio.Event) -> None:
        headers = {"Authorization": f"Bearer {credentials[k]}"}
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=120) as client:
            await client.get("/v1/health")  # connected before the start, as a kiosk that is online
            await go.wait()
            t0 = time.perf_counter()
            answer = await client.post("/v1/push", json={"items": batches[k]})
            latencies.append(time.perf_counter() - t0)
            answer.raise_for_status()
            results[k] = answer.json()["results"]

    async def all_at_once() -> float:
        go = asyncio.Event()
        tasks = [asyncio.create_task(kiosk(k, go)) for k in range(KIOSKS)]
        await asyncio.sleep(1.0)  # every kiosk connected
        t0 = time.perf_counter()
        go.set()
        await asyncio.wait_for(asyncio.gather(*tasks), DEADLINE)
        return time.perf_counter() - t0

    wall_s = asyncio.run(all_at_once())
    outcomes = [r["result"] for answer in results for r in answer]
    if outcomes != ["applied"] * (2 * KIOSKS * PER_KIOSK):
        raise RuntimeError(f"not every item was applied: {sorted(set(outcomes))}")
    ids = [item["id"] for batch in batches for item in batch if item["entity"] == "registration"]
    store = open_store(url)
    try:
        landed, numbers, changes = store.db.execute_sql(
            "SELECT count(*), count(DISTINCT number),"
            " (SELECT count(*) FROM rc_change"
            " WHERE entity = 'registration' AND entity_id = ANY(%s))"
            " FROM rc_registration WHERE id = ANY(%s)", (ids, ids),
        ).fetchone()  # fmt: skip
    finally:
        store.close()
    expected = KIOSKS * PER_KIOSK
    if (landed, numbers, changes) != (expected, expected, expected):
        raise RuntimeError(
            f"{landed} registrations landed, {numbers} numbers, {changes} changes;"
            f" expected {expected}"
        )

    p50, p95, p99 = percentiles(latencies, 50, 95, 99)
    return [
        Figure("sync.kiosks_at_once_wall", wall_s, "s",
               note=f"{KIOSKS} kiosks, each its credential and one push of {PER_KIOSK}"
                    " registrations with their accounts, all at once (asyncio + httpx, loopback);"
                    f" {landed} landed once each"),
        Figure("sync.kiosks_push_p50", p50 * 1000, "ms",
               note=f"push latency, {len(latencies)} pushes"),
        Figure("sync.kiosks_push_p95", p95 * 1000, "ms"),
        Figure("sync.kiosks_push_p99", p99 * 1000, "ms",
               note=f"max {max(latencies) * 1000:.0f} ms"),
    ]  # fmt: skip


def measure() -> list[Figure]:
    folder = Path(tempfile.mkdtemp(prefix="kiosk-bench-sync-"))
    try:
        with postgres() as server:
            url = server.create_database("bench_sync")
            with rectorat_server(url, NOW) as base:
                figures = _one_kiosk(url, base, folder)
                figures += _many_kiosks(url, base)
        return figures
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":  # python -m bench.sync: this measure alone, with its figures
    for figure in measure():
        print(f"{figure.name:28} {figure.value:12.1f} {figure.unit:10} {figure.note}")
