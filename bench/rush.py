"""Deadline rush: many kiosks registering and syncing in the window's last hour, all land once."""

from __future__ import annotations

import random
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from bench import Figure
from bench._collector import as_in_the_kiosk_process
from bench._rectorat import percentiles, postgres, rectorat_server

ORDER = 90
KIOSKS = 100
PER_KIOSK = 10  # candidates each kiosk registers
RUSH_NOW = "2019-11-27T18:00:00"  # the last hour of bacpro-poitiers-2020 (closes at 19:00, Paris)
SESSION = "bacpro-poitiers-2020"
THINK = 1.5  # mean seconds between two candidates at one kiosk
SYNC_EVERY = 1.0  # mean seconds between two sync rounds of one kiosk (30 s on a real kiosk)
CLOCK_SKEW = 60  # kiosk clocks are up to this many seconds off the rectorat's
DEADLINE = 600  # seconds for the whole run


@dataclass
class RushReport:
    """What a rush measured, and what it checked."""

    kiosks: int
    per_kiosk: int
    wall_s: float = 0.0
    saves: list[float] = field(default_factory=list)  # « Enregistrer », seconds
    pushes: list[float] = field(default_factory=list)  # one HTTP push, seconds
    lands: list[float] = field(default_factory=list)  # saved -> its push acknowledged, seconds
    landed: int = 0  # registrations of the run at the rectorat
    numbers: int = 0  # distinct numbers among them
    changes: int = 0  # change-feed rows of them: one each, or one was applied twice
    conflicts: int = 0
    numbered_back: int = 0  # registrations whose number came back to their kiosk
    offline_rounds: int = 0  # sync rounds that did not reach the rectorat
    errors: list[str] = field(default_factory=list)

    @property
    def expected(self) -> int:
        return self.kiosks * self.per_kiosk

    @property
    def all_landed_once(self) -> bool:
        n = self.expected
        return (self.landed, self.numbers, self.changes, self.conflicts, self.numbered_back) == (
            n,
            n,
            n,
            0,
            n,
        ) and not self.errors


def run_rush(
    url: str, base: str, folder: Path, *, kiosks: int = KIOSKS, per_kiosk: int = PER_KIOSK,
    think: float = THINK, sync_every: float = SYNC_EVERY, seed: int = 0,
) -> RushReport:  # fmt: skip
    """``kiosks`` simulated kiosks (see :mod:`bench._kiosks`) against the rectorat at ``base``
    (its store at ``url``), each registering ``per_kiosk`` candidates through the real
    services while its sync worker pushes and pulls; then every registration is looked
    for at the rectorat and at its kiosk."""
    from bench._kiosks import open_kiosks, register
    from kiosk.clock import Clock, parse_instant
    from kiosk.rectorat.service import RectoratService
    from kiosk.rectorat.store import open_store as open_rectorat

    rng = random.Random(seed)
    report = RushReport(kiosks, per_kiosk)
    lock = threading.Lock()
    names = [f"rush-{seed}-{k:03d}" for k in range(kiosks)]
    store = open_rectorat(url)
    try:
        service = RectoratService(store, Clock(parse_instant(RUSH_NOW)))
        credentials = [f"{name}:{service.issue_credential(name)}" for name in names]
    finally:
        store.close()
    start = parse_instant(RUSH_NOW)
    clocks = [Clock(start + timedelta(seconds=rng.uniform(-CLOCK_SKEW, CLOCK_SKEW))) for _ in names]
    saved_at: dict[str, float] = {}  # registration id -> when its save returned
    landed_at: dict[
        str, float
    ] = {}  # registration id -> when the push that carried it was answered

    # Each simulated kiosk works on its own store: nothing is bound per thread.
    simulated = open_kiosks(folder, credentials, base, clocks, SESSION, report.pushes, lock)

    def console(k: int, done: threading.Event) -> None:
        """The kiosk's screen: one candidate after another."""
        kiosk, pace = simulated[k], random.Random(seed * 7919 + k)
        try:
            for n in range(per_kiosk):
                time.sleep(pace.expovariate(1 / think))
                registration, took = register(
                    kiosk, f"{kiosk.name}.{n}@exemple.fr", f"Rush{seed}x{k:03d}x{n:03d}", "Camille",
                    f"{1 + (k + n) % 28:02d}/{1 + n % 12:02d}/2001",
                )  # fmt: skip
                with lock:
                    report.saves.append(took)
                    saved_at[str(registration.id)] = time.perf_counter()
        except Exception as error:  # said in the report, and the run goes on
            with lock:
                report.errors.append(f"{kiosk.name} desk: {type(error).__name__}: {error}")
        finally:
            done.set()
            kiosk.store.close()

    def worker(k: int, done: threading.Event) -> None:
        """The kiosk's sync worker: a round now and then, and after the last candidate,
        rounds until nothing waits and every number came back."""
        kiosk, pace = simulated[k], random.Random(seed * 104729 + k)
        pushed = kiosk.sync.push_waiting
        ends: list[float] = []

        def push_waiting() -> int:  # when the push of a round was answered
            count = pushed()
            ends.append(time.perf_counter())
            return count

        kiosk.sync.push_waiting = push_waiting
        try:
            rounds_after = 0
            while rounds_after < 20:
                if done.is_set():
                    rounds_after += 1
                else:
                    time.sleep(pace.uniform(0.5, 1.5) * sync_every)
                finished = done.is_set()  # before the round: nothing is saved after it
                outcome = kiosk.sync.sync_once(force=True)
                if not outcome.online:
                    with lock:
                        report.offline_rounds += 1
                    time.sleep(0.2)
                    continue
                delivered = {row[0] for row in kiosk.store.db.execute_sql(
                    "SELECT json_extract(payload, '$.id') FROM outbox WHERE kind = 'sync'"
                    " AND json_extract(payload, '$.entity') = 'registration'"
                    " AND delivered_at IS NOT NULL"
                )}  # fmt: skip
                with lock:
                    for registration_id in delivered - landed_at.keys():
                        landed_at[registration_id] = ends[-1]
                if finished and outcome.pending == 0 and _numbered(kiosk.store.db) == per_kiosk:
                    break
        except Exception as error:
            with lock:
                report.errors.append(f"{kiosk.name} sync: {type(error).__name__}: {error}")
        finally:
            kiosk.store.close()

    threads = []
    with as_in_the_kiosk_process():
        t0 = time.perf_counter()
        for k in range(kiosks):
            done = threading.Event()
            threads += [
                threading.Thread(target=console, args=(k, done), name=f"desk-{k}", daemon=True),
                threading.Thread(target=worker, args=(k, done), name=f"sync-{k}", daemon=True),
            ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(max(1.0, DEADLINE - (time.perf_counter() - t0)))
            if thread.is_alive():
                report.errors.append(f"{thread.name} still running after {DEADLINE} s")
        report.wall_s = time.perf_counter() - t0
    kiosk_numbers = {}
    for kiosk in simulated:
        try:
            kiosk_numbers.update(
                kiosk.store.db.execute_sql("SELECT id, number FROM registration").fetchall()
            )
        finally:
            kiosk.store.close()

    report.lands = [landed_at[i] - saved_at[i] for i in saved_at if i in landed_at]
    ids = list(saved_at)
    store = open_rectorat(url)
    try:
        report.landed, report.numbers, report.changes = store.db.execute_sql(
            "SELECT count(*), count(DISTINCT number),"
            " (SELECT count(*) FROM rc_change"
            " WHERE entity = 'registration' AND entity_id = ANY(%s))"
            " FROM rc_registration WHERE id = ANY(%s)", (ids, ids),
        ).fetchone()  # fmt: skip
        report.conflicts = store.db.execute_sql("SELECT count(*) FROM rc_conflict").fetchone()[0]
        at_rectorat = dict(store.db.execute_sql(
            "SELECT id, number FROM rc_registration WHERE id = ANY(%s)", (ids,)
        ).fetchall())  # fmt: skip
    finally:
        store.close()
    report.numbered_back = sum(
        1 for i in ids if kiosk_numbers.get(i) and kiosk_numbers[i] == at_rectorat.get(i)
    )
    return report


def _numbered(db) -> int:
    return db.execute_sql("SELECT count(*) FROM registration WHERE number IS NOT NULL").fetchone()[
        0
    ]


def measure() -> list[Figure]:
    folder = Path(tempfile.mkdtemp(prefix="kiosk-bench-rush-"))
    try:
        with postgres() as server:
            url = server.create_database("bench_rush")
            with rectorat_server(url, RUSH_NOW) as base:
                report = run_rush(url, base, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if not report.all_landed_once:
        raise RuntimeError(f"the rush did not land every registration once: {report}")
    ms = lambda values, *cuts: [v * 1000 for v in percentiles(values, *cuts)]  # noqa: E731
    save, push, land = (
        ms(report.saves, 50, 95, 99),
        ms(report.pushes, 50, 95, 99),
        ms(report.lands, 50, 95, 99),
    )
    shared = (
        "one process plays every kiosk, sharing this machine's cores with the rectorat and"
        " PostgreSQL: its latencies include that crowding"
    )
    return [
        Figure("rush.registrations", report.landed, "landed",
               note=f"{report.kiosks} simulated kiosks × {report.per_kiosk} candidates, each kiosk"
                    " its own store, credential and clock (±1 min), sign-up, activation and"
                    " « Enregistrer » through the real services, a sync round about every second,"
                    " at 18:00 on the closing day, against `kiosk rectorat serve` and PostgreSQL"
                    " 15: every registration landed once (one row, one change, a unique number,"
                    f" back at its kiosk); {report.wall_s:.1f} s, {len(report.pushes)} pushes;"
                    f" {shared}"),
        Figure("rush.save_p50", save[0], "ms",
               note="« Enregistrer » at a kiosk during the rush (local store)"),
        Figure("rush.save_p95", save[1], "ms"),
        Figure("rush.save_p99", save[2], "ms", note=f"max {max(report.saves) * 1000:.0f} ms"),
        Figure("rush.push_p50", push[0], "ms",
               note="one push (HTTP POST /v1/push) during the rush"),
        Figure("rush.push_p95", push[1], "ms"),
        Figure("rush.push_p99", push[2], "ms", note=f"max {max(report.pushes) * 1000:.0f} ms"),
        Figure("rush.land_p50", land[0], "ms",
               note="time to land: the save's end to the answer of the push that carried it"
                    " (waiting for the next round included)"),
        Figure("rush.land_p95", land[1], "ms"),
        Figure("rush.land_p99", land[2], "ms", note=f"max {max(report.lands) * 1000:.0f} ms"),
    ]  # fmt: skip


if __name__ == "__main__":  # python -m bench.rush: this measure alone
    for figure in measure():
        print(f"{figure.name:20} {figure.value:10.1f} {figure.unit:8} {figure.note}")
