"""The rectorat at national size (PostgreSQL, fsync on): pulls, new kiosks, a push; on request only.

``python -m bench national`` (or ``python -m bench.national``) seeds a store with
1,000,000 accounts and their registrations through the service's own push
(:meth:`RectoratService.push`, its bulk path, the server's sequencer numbering the feed
meanwhile), then measures against ``kiosk rectorat serve`` over HTTP:

- one pull: kiosks that hold 2,000 candidates (of whom a few borrowed for a login) read
  their whole feed from ``after=0``, page after page, then the exam office's decisions
  on their candidates from their cursor;
- 200 new kiosks pulling at once;
- a push of 2,000 registrations with their accounts, against the same push on an empty
  store of the same server, rounds taken in turn.

``KIOSK_BENCH_NATIONAL=N`` seeds N accounts instead (a quicker look while working on it).
Seeding takes minutes: ``make bench`` leaves this measure out.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from bench import Figure
from bench._rectorat import percentiles, rectorat_server
from kiosk.ids import new_id

ORDER = 95
ON_REQUEST = True
"""``python -m bench`` runs this measure only when it is named."""

ACCOUNTS = int(os.environ.get("KIOSK_BENCH_NATIONAL", "1000000"))
PER_KIOSK = 2_000  # candidates a seeded kiosk pushed
BATCH = 1_000  # accounts a push, each with its registration: 2,000 items
SEEDERS = 2  # threads pushing at once while seeding (the machine has two cores)
PULLERS = 20  # seeded kiosks whose pulls are timed
BORROWED = 10  # accounts of other kiosks each of them borrows for a login
DECISIONS = 20  # the exam office's decisions on each timed kiosk's candidates
NEW_KIOSKS = 200
PUSH_ROUNDS = 9  # rounds in turn: a sequencer round or a checkpoint lands in a few of them
PUSH_PAIRS = 2_000
NOW = "2019-11-10T10:00:00"  # inside the window of bacpro-poitiers-2020 (Paris time)
SESSION = "bacpro-poitiers-2020"
STAMP = "2019-11-10T09:00:00.000000+00:00"
PASSWORD = "national bench"
DEADLINE = 300.0
# The rectorat server's settings (docs/architecture.md, « PostgreSQL at the rectorat »):
# the store's indexes in PostgreSQL's cache, checkpoints by time rather than by a burst of
# pushes, page images in the WAL compressed. The tests' server keeps 32 MB.
SERVER_OPTIONS = os.environ.get(
    "KIOSK_BENCH_NATIONAL_PG",
    "-c shared_buffers=4GB -c max_wal_size=8GB -c checkpoint_timeout=15min"
    " -c wal_compression=lz4 -c max_connections=300 -c log_min_messages=warning",
)

GOAL_PULL_P95_MS = 20.0
GOAL_NEW_KIOSKS_S = 2.0
GOAL_PUSH_RATIO = 0.8


def _pair(prefix: str, n: int, password_hash: str) -> tuple[dict, dict]:
    """A candidate's account and registration, as a kiosk pushes them: a distinct person."""
    account_id, registration_id = str(new_id()), str(uuid.uuid4())  # as Account, Registration
    name = f"{prefix}{n:07d}"
    email = f"{name.lower()}@exemple.fr"
    account = {"entity": "account", "id": account_id, "version": 1, "data": {
        "created_at": STAMP, "updated_at": STAMP, "email": email, "email_key": email,
        "family_name": name, "given_names": "Camille", "password_hash": password_hash,
        "status": "active", "activated_at": STAMP,
    }}  # fmt: skip
    answers = {
        "family_name": name, "given_names": "Camille",
        "birth_date": f"{1 + n % 28:02d}/{1 + n % 12:02d}/{1990 + n % 15}",
        "birth_town": "Poitiers", "address_line1": "12 rue de la Paix", "postal_code": "86000",
        "town": "Poitiers", "country": "France", "specialty": "x",
    }  # fmt: skip
    registration = {"entity": "registration", "id": registration_id, "version": 1, "data": {
        "created_at": STAMP, "updated_at": STAMP, "account_id": account_id,
        "session_id": SESSION, "answers": answers, "status": "registered",
        "saved_at": STAMP, "withdrawn_at": None,
    }}  # fmt: skip
    return account, registration


def _batch(prefix: str, first: int, count: int, password_hash: str) -> list[dict]:
    """``count`` candidates: their accounts, then their registrations."""
    pairs = [_pair(prefix, n, password_hash) for n in range(first, first + count)]
    return [account for account, _ in pairs] + [registration for _, registration in pairs]


@contextmanager
def _durable_postgres() -> Iterator:
    """A private PostgreSQL 15 as the tests start it, but durable (fsync on, every commit
    flushed), restarted with :data:`SERVER_OPTIONS`."""
    from tests.support.pg_server import PG_BIN, running_postgres

    with running_postgres(PG_BIN, durable=True) as server:
        options = f"-h 127.0.0.1 -p {server.port} -k {server.socket_dir} {SERVER_OPTIONS}"
        server.run(
            "pg_ctl", "-D", str(server.data_dir), "-l", str(server.root / "server.log"),
            "-o", options, "-w", "-t", "120", "restart",
        )  # fmt: skip
        yield server


def _sequencer(store, stop: threading.Event) -> None:
    """The server's sequencer thread: a round every second."""
    while not stop.wait(1.0):
        with store.db.connection_context():
            store.sequence()


def _seed(url: str, service, clock, kiosks: list, password_hash: str) -> float:
    """Every seeded kiosk pushes its candidates, batch after batch; returns the seconds."""
    store = service.store
    work = [(k, at) for k in range(len(kiosks)) for at in range(0, PER_KIOSK, BATCH)]
    work = [(k, at) for k, at in work if k * PER_KIOSK + at < ACCOUNTS]
    lock = threading.Lock()
    failures: list[BaseException] = []
    done = [0]

    def seeder() -> None:
        with store.db.connection_context():
            while not failures:
                with lock:
                    if not work:
                        return
                    k, at = work.pop()
                count = min(BATCH, PER_KIOSK - at, ACCOUNTS - k * PER_KIOSK - at)
                items = _batch(f"N{k:04d}x", at, count, password_hash)
                try:
                    results = service.push(kiosks[k], items, clock.now())
                except BaseException as error:
                    failures.append(error)
                    return
                if any(r["result"] != "applied" for r in results):
                    failures.append(RuntimeError(f"seeding: not applied: {results[:2]}"))
                    return
                with lock:
                    done[0] += count
                    if done[0] % 100_000 < count:
                        print(f"bench: national: {done[0]:,} seeded", file=sys.stderr, flush=True)

    stop = threading.Event()
    sequencer = threading.Thread(target=_sequencer, args=(store, stop), daemon=True)
    t0 = time.perf_counter()
    sequencer.start()
    threads = [threading.Thread(target=seeder) for _ in range(SEEDERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stop.set()
    sequencer.join()
    if failures:
        raise failures[0]
    with store.db.connection_context():
        store.sequence()
    return time.perf_counter() - t0


def _page_times(base: str, credential: str, after: int) -> tuple[list[float], int, int]:
    """A kiosk's pull from ``after`` to the head: each page's time, the changes, the cursor."""
    import httpx

    times: list[float] = []
    changes = 0
    headers = {"Authorization": f"Bearer {credential}"}
    with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
        client.get("/v1/health")  # connected, as a kiosk that is online
        while True:
            t0 = time.perf_counter()
            answer = client.get("/v1/changes", params={"after": after, "limit": 500})
            times.append(time.perf_counter() - t0)
            answer.raise_for_status()
            page = answer.json()
            changes += len(page["changes"])
            after = page["last"]
            if len(page["changes"]) < 500:
                break
    return times, changes, after


def _new_kiosks(base: str, credentials: list[str]) -> tuple[float, list[float]]:
    """Every new kiosk's first pull, all at once: the wall time and each one's."""
    import httpx

    latencies: list[float] = []
    lasts: list[int] = []

    async def kiosk(credential: str, go: asyncio.Event) -> None:
        headers = {"Authorization": f"Bearer {credential}"}
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=120) as client:
            await client.get("/v1/health")
            await go.wait()
            t0 = time.perf_counter()
            answer = await client.get("/v1/changes", params={"after": 0})
            latencies.append(time.perf_counter() - t0)
            answer.raise_for_status()
            page = answer.json()
            if page["changes"]:
                raise RuntimeError("a new kiosk was sent changes")
            lasts.append(page["last"])

    async def all_at_once() -> float:
        go = asyncio.Event()
        tasks = [asyncio.create_task(kiosk(c, go)) for c in credentials]
        await asyncio.sleep(1.0)
        t0 = time.perf_counter()
        go.set()
        await asyncio.wait_for(asyncio.gather(*tasks), DEADLINE)
        return time.perf_counter() - t0

    wall = asyncio.run(all_at_once())
    if len(set(lasts)) != 1 or lasts[0] == 0:
        raise RuntimeError(f"new kiosks did not start at the head: {sorted(set(lasts))[:5]}")
    return wall, latencies


def _push_time(base: str, credential: str, items: list[dict]) -> float:
    """A kiosk's push of ``items`` in batches of 2,000, as its sync worker sends them."""
    import httpx
    import orjson

    headers = {"Authorization": f"Bearer {credential}", "Content-Type": "application/json"}
    bodies = [orjson.dumps({"items": items[at : at + 2000]}) for at in range(0, len(items), 2000)]
    with httpx.Client(base_url=base, headers=headers, timeout=120) as client:
        client.get("/v1/health")
        t0 = time.perf_counter()
        for body in bodies:
            answer = client.post("/v1/push", content=body)
            answer.raise_for_status()
            if any(r["result"] != "applied" for r in answer.json()["results"]):
                raise RuntimeError("a push was not applied")
        return time.perf_counter() - t0


def _numbered(url: str) -> None:
    """Wait until the server's sequencer has numbered every change of the store at ``url``."""
    import psycopg

    deadline = time.monotonic() + DEADLINE
    with psycopg.connect(url, autocommit=True) as connection:
        while connection.execute("SELECT 1 FROM rc_change WHERE seq IS NULL LIMIT 1").fetchone():
            if time.monotonic() > deadline:
                raise RuntimeError("the sequencer did not number the pushed changes")
            time.sleep(0.05)


def _size(store) -> tuple[int, dict[str, int]]:
    db = store.db
    size = db.execute_sql("SELECT pg_database_size(current_database())").fetchone()[0]
    counts = {
        table: db.execute_sql(f"SELECT count(*) FROM {table}").fetchone()[0]
        for table in ("rc_account", "rc_registration", "rc_change", "rc_interest", "rc_kiosk")
    }
    return size, counts


def measure() -> list[Figure]:
    from bench._kiosks import cheap_hasher
    from kiosk.clock import Clock, parse_instant
    from kiosk.rectorat.service import RectoratService
    from kiosk.rectorat.store import open_store

    clock = Clock(parse_instant(NOW), frozen=True)
    hasher = cheap_hasher()
    password_hash = hasher.hash(PASSWORD)
    seeded_kiosks = -(-ACCOUNTS // PER_KIOSK)
    with _durable_postgres() as server:
        url = server.create_database("national")
        empty_url = server.create_database("empty")
        store = open_store(url)
        service = RectoratService(store, clock, hasher)
        with store.db.connection_context():
            names = [f"borne-{k:04d}" for k in range(seeded_kiosks)]
            tokens = [service.issue_credential(name) for name in names]
            pairs = zip(names, tokens, strict=True)
            found = [service.authenticate(name, token) for name, token in pairs]
        kiosks = [kiosk for kiosk in found if kiosk is not None]
        if len(kiosks) != len(found):
            raise RuntimeError("a seeded kiosk's credential does not authenticate")
        seed_s = _seed(url, service, clock, kiosks, password_hash)
        with store.db.connection_context():
            # What autovacuum does soon after a load this size: statistics, visibility.
            store.db.execute_sql("VACUUM (ANALYZE)")
            # The timed kiosks borrow a few candidates of the next kiosk for a login.
            for k, kiosk in enumerate(kiosks[:PULLERS]):
                lender = kiosks[(k + 1) % len(kiosks)]
                borrowed = store.db.execute_sql(
                    "SELECT email_key FROM rc_account WHERE origin_kiosk_id = %s"
                    " ORDER BY email_key LIMIT %s",
                    (lender.id, BORROWED),
                ).fetchall()
                for (email_key,) in borrowed:
                    service.login(kiosk, email_key, PASSWORD)
            store.sequence()
            size, counts = _size(store)
        new_names = [f"nouvelle-{k:03d}" for k in range(NEW_KIOSKS)]
        with store.db.connection_context():
            new_credentials = [f"{n}:{service.issue_credential(n)}" for n in new_names]
            pusher = f"pousse:{service.issue_credential('pousse')}"
        empty = open_store(empty_url)
        try:
            with empty.db.connection_context():
                empty_pusher = f"pousse:{RectoratService(empty, clock).issue_credential('pousse')}"
        finally:
            empty.close()

        with rectorat_server(url, NOW) as base, rectorat_server(empty_url, NOW) as empty_base:
            # 1. Each timed kiosk reads its whole feed, then the exam office's decisions.
            page_s: list[float] = []
            cursors: list[int] = []
            pulled = 0
            for kiosk, token in zip(kiosks[:PULLERS], tokens[:PULLERS], strict=True):
                times, changes, cursor = _page_times(base, f"{kiosk.name}:{token}", 0)
                page_s += times
                pulled += changes
                cursors.append(cursor)
            with store.db.connection_context():
                for kiosk in kiosks[:PULLERS]:
                    decided = store.db.execute_sql(
                        "SELECT r.id FROM rc_registration r JOIN rc_account a"
                        " ON a.id = r.account_id WHERE a.origin_kiosk_id = %s LIMIT %s",
                        (kiosk.id, DECISIONS),
                    ).fetchall()
                    for (registration_id,) in decided:
                        service.set_paper_status(registration_id, "received")
                store.sequence()
            later_s: list[float] = []
            for kiosk, token, cursor in zip(
                kiosks[:PULLERS], tokens[:PULLERS], cursors, strict=True
            ):
                times, changes, _ = _page_times(base, f"{kiosk.name}:{token}", cursor)
                later_s += times
                if changes < DECISIONS:
                    raise RuntimeError(f"a kiosk pulled {changes} of {DECISIONS} decisions")
            # 2. New kiosks, all at once.
            new_wall, new_latencies = _new_kiosks(base, new_credentials)
            # 3. The same push on this store and on the empty one, in turn.
            national_push: list[float] = []
            empty_push: list[float] = []
            for round_ in range(PUSH_ROUNDS):
                items = _batch(f"P{round_}x", 0, PUSH_PAIRS, password_hash)
                national_push.append(_push_time(base, pusher, items))
                _numbered(url)  # each push alone: its server's sequencer done with the last
                empty_push.append(_push_time(empty_base, empty_pusher, items))
                _numbered(empty_url)
        store.close()

    all_pulls = page_s + later_s
    (p95,) = percentiles(all_pulls, 95)
    p50_first, p95_first = percentiles(page_s, 50, 95)
    (p95_later,) = percentiles(later_s, 95)
    (new_p95,) = percentiles(new_latencies, 95)
    national_rate = PUSH_PAIRS / statistics.median(national_push)
    empty_rate = PUSH_PAIRS / statistics.median(empty_push)
    held = PER_KIOSK + BORROWED
    return [
        Figure("national.accounts", counts["rc_account"], "accounts",
               note=f"and {counts['rc_registration']:,} registrations,"
                    f" {counts['rc_change']:,} changes, {counts['rc_interest']:,} borrowed,"
                    f" {counts['rc_kiosk']:,} kiosks (PostgreSQL 15, fsync on, {SERVER_OPTIONS})"),
        Figure("national.store_size", size / 2**30, "GiB", note="pg_database_size after seeding"),
        Figure("national.seed", seed_s, "s",
               note=f"{ACCOUNTS:,} accounts and registrations through RectoratService.push,"
                    f" {BATCH * 2:,} items a push, {SEEDERS} threads, the sequencer every second;"
                    f" {2 * ACCOUNTS / seed_s:,.0f} items/s; then VACUUM (ANALYZE)"),
        Figure("national.pull_p95", p95 * 1000, "ms", goal=GOAL_PULL_P95_MS,
               note=f"{len(all_pulls)} pulls over HTTP by {PULLERS} kiosks holding {held:,}"
                    f" candidates ({BORROWED} borrowed): their whole feed from after=0, pages of"
                    f" 500 ({pulled:,} changes; p50 {p50_first * 1000:.1f} ms, p95"
                    f" {p95_first * 1000:.1f} ms), then the exam office's {DECISIONS} decisions"
                    f" each (p95 {p95_later * 1000:.1f} ms)"),
        Figure("national.new_kiosks_wall", new_wall, "s", goal=GOAL_NEW_KIOSKS_S,
               note=f"{NEW_KIOSKS} new kiosks' first pull (after=0) at once, asyncio + httpx;"
                    f" each at the head with no change; p95 {new_p95 * 1000:.0f} ms"),
        Figure("national.push", national_rate, "reg/s", better="higher",
               note=f"{PUSH_PAIRS:,} registrations with their accounts, 2,000 items a push, over"
                    f" HTTP; median of {PUSH_ROUNDS}:"
                    f" {', '.join(f'{s:.2f}' for s in national_push)} s"),
        Figure("national.push_empty", empty_rate, "reg/s", better="higher",
               note=f"the same on an empty store of the same server; median of {PUSH_ROUNDS}:"
                    f" {', '.join(f'{s:.2f}' for s in empty_push)} s"),
        Figure("national.push_vs_empty", national_rate / empty_rate, "ratio",
               goal=GOAL_PUSH_RATIO, better="higher",
               note="push rate on the national store / on the empty store (medians)"),
    ]  # fmt: skip


if __name__ == "__main__":  # python -m bench.national: this measure alone, with its figures
    for figure in measure():
        print(f"{figure.name:26} {figure.value:12.2f} {figure.unit:9} {figure.goal_text:7} "
              f"{figure.note}")  # fmt: skip
