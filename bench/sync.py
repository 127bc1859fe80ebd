"""Sync end to end on PostgreSQL: a kiosk's push rate against a raw upsert, and 200 kiosks at once."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

from bench import ROOT, Figure

ORDER = 85
N = 2_000  # registrations (each with its account) made in one kiosk store
KIOSKS = 200  # simulated kiosks pushing at once
PER_KIOSK = 5  # registrations (each with its account) a simulated kiosk pushes
NOW = "2019-11-10T10:00:00"  # inside the window of bacpro-poitiers-2020 (Paris time)
SESSION = "bacpro-poitiers-2020"
PASSWORD_HASH = "$argon2id$v=19$m=8,t=1,p=1$YmVuY2hzYWx0$YmVuY2hoYXNo"  # never checked here
DEADLINE = 300  # seconds, for any one wait


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def _postgres():
    """A private PostgreSQL 15, started and removed as tests/pg_server.py does."""
    from tests.pg_server import PG_BIN, running_postgres

    missing = [p for p in ("initdb", "pg_ctl", "postgres", "createdb") if not (PG_BIN / p).exists()]
    if missing:
        raise RuntimeError(f"needs PostgreSQL 15's programs in {PG_BIN} (Debian package postgresql-15)")
    with running_postgres(PG_BIN) as server:
        yield server


@contextmanager
def _rectorat_server(url: str):
    """``kiosk rectorat serve`` in its own process on 127.0.0.1: the real HTTP service."""
    import httpx

    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIOSK_")}
    env["KIOSK_NOW"] = NOW
    log = tempfile.TemporaryFile(mode="w+")
    process = subprocess.Popen(
        [sys.executable, "kiosk.py", "rectorat", "serve", "--db", url, "--port", str(port), "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/v1/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                raise RuntimeError(f"the rectorat server did not start:\n{log.read()[-2000:]}")
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        log.close()


def _answers(n: int, prefix: str) -> dict:
    """Registration answers of a distinct person: the rectorat's same-person rule sees no one twice."""
    return {
        "family_name": f"{prefix}{n:05d}", "given_names": "Camille",
        "birth_date": f"{1 + n % 28:02d}/{1 + n % 12:02d}/2001",
        "birth_town": "Poitiers", "address_line1": "12 rue de la Paix", "postal_code": "86000", "town": "Poitiers",
        "country": "France", "specialty": "x",
    }  # fmt: skip


# -- 1. one kiosk's push against a raw upsert ------------------------------------------------


def _kiosk_with_registrations(folder: Path, clock):
    """A kiosk store holding N active accounts and their registrations, written through the
    models in one transaction: the store's triggers queue one outbox row for each."""
    from kiosk.models import Account, Registration
    from kiosk.store import open_store

    db = open_store(folder / "kiosk.sqlite3")
    now = clock.now()
    with db.atomic():
        for n in range(N):
            account = Account.create(
                email=f"bench{n}@exemple.fr", email_key=f"bench{n}@exemple.fr", family_name=f"Bench{n:05d}",
                given_names="Camille", password_hash=PASSWORD_HASH, status="active", activated_at=now,
                created_at=now, updated_at=now,
            )  # fmt: skip
            Registration.create(
                account=account.id, session_id=SESSION, answers=_answers(n, "Bench"), status="registered",
                saved_at=now, created_at=now, updated_at=now,
            )  # fmt: skip
    return db


def _raw_upsert(url: str, items: list[dict], now_iso: str) -> float:
    """The same rows upserted straight into plain tables of the rc_* shape, in batches as
    the kiosk sends them, one transaction each; returns the seconds taken."""
    import json

    import psycopg2
    from psycopg2.extras import execute_values

    from kiosk.rectorat.service import identity_key

    account_columns = ("id", "version", "created_at", "updated_at", "email", "email_key", "family_name",
                       "given_names", "password_hash", "status", "activated_at", "failed_logins", "received_at")
    registration_columns = ("id", "version", "created_at", "updated_at", "account_id", "session_id", "answers",
                            "status", "saved_at", "withdrawn_at", "identity_key", "number", "received_at")  # fmt: skip
    batches, number = [], 0
    for start in range(0, len(items), 500):
        accounts, registrations = [], []
        for item in items[start:start + 500]:
            d = item["data"]
            if item["entity"] == "account":
                accounts.append((item["id"], item["version"], d["created_at"], d["updated_at"], d["email"],
                                 d["email_key"], d["family_name"], d["given_names"], d["password_hash"], d["status"],
                                 d["activated_at"], 0, now_iso))  # fmt: skip
            else:
                number += 1
                registrations.append((item["id"], item["version"], d["created_at"], d["updated_at"], d["account_id"],
                                      d["session_id"], json.dumps(d["answers"], sort_keys=True), d["status"],
                                      d["saved_at"], d["withdrawn_at"], identity_key(d["answers"]),
                                      f"2020-PO-{number:06d}", now_iso))  # fmt: skip
        batches.append((accounts, registrations))

    def upsert(table: str, columns: tuple[str, ...]) -> str:
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c != "id")
        return (f"INSERT INTO {table} ({', '.join(columns)}) VALUES %s ON CONFLICT (id) DO UPDATE SET {updates}"
                f" WHERE {table}.version < excluded.version")

    connection = psycopg2.connect(url)
    try:
        with connection, connection.cursor() as cursor:
            for table, like in (("raw_account", "rc_account"), ("raw_registration", "rc_registration")):
                cursor.execute(f"CREATE TABLE {table} (LIKE {like} INCLUDING DEFAULTS)")
                cursor.execute(f"ALTER TABLE {table} ADD PRIMARY KEY (id)")
        sql_accounts = upsert("raw_account", account_columns)
        sql_registrations = upsert("raw_registration", registration_columns)
        t0 = time.perf_counter()
        for accounts, registrations in batches:
            with connection, connection.cursor() as cursor:
                if accounts:
                    execute_values(cursor, sql_accounts, accounts, page_size=500)
                if registrations:
                    execute_values(cursor, sql_registrations, registrations, page_size=500)
        elapsed = time.perf_counter() - t0
        with connection.cursor() as cursor:
            cursor.execute("SELECT (SELECT count(*) FROM raw_account), (SELECT count(*) FROM raw_registration)")
            if cursor.fetchone() != (N, N):
                raise RuntimeError("the raw upsert did not write every row")
        return elapsed
    finally:
        connection.close()


def _one_kiosk(url: str, base: str, folder: Path) -> list[Figure]:
    from kiosk.clock import Clock, parse_instant
    from kiosk.config import SyncConfig
    from kiosk.models import OutboxRow
    from kiosk.rectorat.service import RectoratService
    from kiosk.rectorat.store import open_store
    from kiosk.sync import SyncClient, SyncService

    clock = Clock(parse_instant(NOW), frozen=True)
    store = open_store(url)
    try:
        token = RectoratService(store, clock).issue_credential("bench-kiosk")
    finally:
        store.close()
    db = _kiosk_with_registrations(folder, clock)
    client = SyncClient(SyncConfig(url=base, token=f"bench-kiosk:{token}", timeout=120))
    sync = SyncService(db, clock, client)
    try:
        # What is sent, read as the kiosk reads it, for the raw upsert (outside any timing).
        rows = OutboxRow.select().where(OutboxRow.kind == "sync")
        items = [sync._item(row.payload) for row in rows]
        # The kiosk's own path: read the outbox, send each batch over HTTP, mark it delivered.
        t0 = time.perf_counter()
        while sync.push_batch():
            pass
        push_s = time.perf_counter() - t0
        if sync.pending():
            raise RuntimeError(f"{sync.pending()} outbox rows still pending after the push")
        t0 = time.perf_counter()
        pulled = sync.pull()
        pull_s = time.perf_counter() - t0
    finally:
        client.close()
        db.close()

    store = open_store(url)
    try:
        counts = store.db.execute_sql(
            "SELECT (SELECT count(*) FROM rc_account), (SELECT count(*) FROM rc_registration),"
            " (SELECT count(DISTINCT number) FROM rc_registration), (SELECT count(*) FROM rc_conflict)"
        ).fetchone()
    finally:
        store.close()
    if counts != (N, N, N, 0):
        raise RuntimeError(f"the rectorat holds {counts} (accounts, registrations, numbers, conflicts)")
    raw_s = _raw_upsert(url, items, clock.now().isoformat())

    sync_rate = N / push_s
    raw_rows = 2 * N / raw_s
    ratio = (2 * N / push_s) / raw_rows
    return [
        Figure("sync.push_registrations", sync_rate, "reg/s", better="higher",
               note=f"{N} registrations with their accounts ({2 * N} items, batches of 500) from one kiosk store"
                    " through `kiosk rectorat serve` (its own process) to PostgreSQL 15 (fsync off);"
                    f" {push_s:.2f} s, kiosk side included"),
        Figure("sync.raw_upsert", raw_rows, "rows/s", better="higher",
               note=f"the same {2 * N} rows, psycopg2 execute_values INSERT … ON CONFLICT DO UPDATE WHERE version <"
                    f" excluded.version into plain tables of the rc_* shape, 500 a transaction; {raw_s:.2f} s"),
        Figure("sync.push_vs_raw", ratio, "ratio", goal=0.5, better="higher",
               note="items/s through the sync service over rows/s of the raw upsert"),
        Figure("sync.pull_changes", pulled / pull_s, "changes/s", better="higher",
               note=f"the kiosk pulls its {pulled} changes back (numbers), pages of 500; {pull_s:.2f} s"),
    ]  # fmt: skip


# -- 2. 200 kiosks at once ---------------------------------------------------------------------


def _kiosk_batch(k: int) -> list[dict]:
    stamp = "2019-11-10T09:00:00.000000+00:00"
    items: list[dict] = []
    for n in range(PER_KIOSK):
        account_id, registration_id, name = str(uuid.uuid4()), str(uuid.uuid4()), f"k{k}n{n}@exemple.fr"
        items.append({"entity": "account", "id": account_id, "version": 3, "data": {
            "created_at": stamp, "updated_at": stamp, "email": name, "email_key": name,
            "family_name": f"Borne{k:03d}", "given_names": f"Camille{n}", "password_hash": PASSWORD_HASH,
            "status": "active", "activated_at": stamp}})  # fmt: skip
        items.append({"entity": "registration", "id": registration_id, "version": 1, "data": {
            "created_at": stamp, "updated_at": stamp, "account_id": account_id, "session_id": SESSION,
            "answers": _answers(k * PER_KIOSK + n, "Borne"), "status": "registered", "saved_at": stamp,
            "withdrawn_at": None}})  # fmt: skip
    return items


def _many_kiosks(url: str, base: str) -> list[Figure]:
    import httpx

    from kiosk.clock import Clock, parse_instant
    from kiosk.rectorat.service import RectoratService
    from kiosk.rectorat.store import open_store

    store = open_store(url)
    try:
        service = RectoratService(store, Clock(parse_instant(NOW)))
        credentials = [f"borne-{k:03d}:{service.issue_credential(f'borne-{k:03d}')}" for k in range(KIOSKS)]
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
            " (SELECT count(*) FROM rc_change WHERE entity = 'registration' AND entity_id = ANY(%s))"
            " FROM rc_registration WHERE id = ANY(%s)", (ids, ids),
        ).fetchone()  # fmt: skip
    finally:
        store.close()
    expected = KIOSKS * PER_KIOSK
    if (landed, numbers, changes) != (expected, expected, expected):
        raise RuntimeError(f"{landed} registrations landed, {numbers} numbers, {changes} changes; expected {expected}")

    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return [
        Figure("sync.kiosks_at_once_wall", wall_s, "s",
               note=f"{KIOSKS} kiosks, each its credential and one push of {PER_KIOSK} registrations with their"
                    f" accounts, all at once (asyncio + httpx, loopback); {landed} landed once each"),
        Figure("sync.kiosks_push_p50", cuts[49] * 1000, "ms", note=f"push latency, {len(latencies)} pushes"),
        Figure("sync.kiosks_push_p95", cuts[94] * 1000, "ms"),
        Figure("sync.kiosks_push_p99", cuts[98] * 1000, "ms", note=f"max {max(latencies) * 1000:.0f} ms"),
    ]  # fmt: skip


def measure() -> list[Figure]:
    folder = Path(tempfile.mkdtemp(prefix="kiosk-bench-sync-"))
    try:
        with _postgres() as postgres:
            url = postgres.create_database("bench_sync")
            with _rectorat_server(url) as base:
                figures = _one_kiosk(url, base, folder)
                figures += _many_kiosks(url, base)
        return figures
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":  # python -m bench.sync: this measure alone, with its figures
    for figure in measure():
        print(f"{figure.name:28} {figure.value:12.1f} {figure.unit:10} {figure.note}")
