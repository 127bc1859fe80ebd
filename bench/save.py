"""« Enregistrer » on a kiosk: a registration saved to the local store, first save and a change."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from bench import Figure
from bench._rectorat import percentiles

ORDER = 60
CANDIDATES = 40
NOW = "2019-11-27T18:00:00"  # the window of bacpro-poitiers-2020 is open
SESSION = "bacpro-poitiers-2020"


def measure() -> list[Figure]:
    from bench._kiosks import Kiosk, candidate_values, cheap_hasher, register
    from kiosk.accounts import AccountService
    from kiosk.clock import Clock, parse_instant
    from kiosk.exam_sessions import load_session
    from kiosk.registrations import RegistrationService
    from kiosk.store.database import open_store

    clock = Clock(parse_instant(NOW))
    session = load_session(SESSION, clock)
    first, change = [], []
    with tempfile.TemporaryDirectory(prefix="kiosk-bench-save-") as folder:
        store = open_store(Path(folder) / "kiosk.sqlite3")
        try:
            accounts = AccountService(store, clock, session, hasher=cheap_hasher())
            kiosk = Kiosk(
                "bench", store, clock, accounts, RegistrationService(store, clock, session), None
            )
            for n in range(CANDIDATES):
                family, birth = f"Enregistre{n:03d}", f"{1 + n % 28:02d}/{1 + n % 12:02d}/2001"
                registration, took = register(
                    kiosk, f"save{n}@exemple.fr", family, "Camille", birth
                )
                first.append(took)
                account = registration.account
                values = candidate_values(session, family, "Camille", birth) | {
                    "phone": "05 49 00 00 00"
                }
                t0 = time.perf_counter()
                kiosk.registrations.save(account, values)
                change.append(time.perf_counter() - t0)
        finally:
            store.close()
    p50, p95 = percentiles(first, 50, 95)
    return [
        Figure("save.first", p50 * 1000, "ms",
               note=f"« Enregistrer », first save of a registration: form checked, one transaction"
                    f" on the kiosk's SQLite store (WAL, synchronous=FULL) with its sync and mail"
                    f" outbox rows; median of {CANDIDATES}, p95 {p95 * 1000:.1f} ms,"
                    f" max {max(first) * 1000:.1f} ms"),
        Figure("save.change", statistics.median(change) * 1000, "ms",
               note=f"a changed registration saved again (version 2); median of {CANDIDATES},"
                    f" max {max(change) * 1000:.1f} ms"),
    ]  # fmt: skip
