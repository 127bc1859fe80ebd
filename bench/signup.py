"""Sign-up at a kiosk: online (the rectorat asked first, on loopback) and offline."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import ROOT, Figure
from bench._rectorat import free_port, percentiles, postgres, rectorat_server

ORDER = 55
SIGN_UPS = 30
NOW = "2019-11-10T10:00:00"  # inside the window of bacpro-poitiers-2020
SESSION = "bacpro-poitiers-2020"
PASSWORD = "une phrase de passe assez longue"


def _credential(url: str) -> str:
    added = subprocess.run(
        [sys.executable, "kiosk.py", "rectorat", "--db", url, "kiosk", "add", "bench-signup"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return added.stdout.strip()


def _sign_ups(folder: Path, base: str, token: str, prefix: str) -> list[float]:
    """``SIGN_UPS`` sign-ups as the screen makes them (argon2 at the production costs),
    each timed from the call to its answer."""
    from kiosk.accounts import AccountService, SignUp
    from kiosk.clock import Clock, parse_instant
    from kiosk.exam_sessions import load_session
    from kiosk.runtime.config import SyncConfig
    from kiosk.store.database import open_store
    from kiosk.sync.client import SyncClient, SyncService

    clock = Clock(parse_instant(NOW))
    store = open_store(folder / f"{prefix}.sqlite3")
    client = SyncClient(SyncConfig(url=base, token=token, timeout=5))
    try:
        sync = SyncService(store, clock, client)
        accounts = AccountService(store, clock, load_session(SESSION, clock), elsewhere=sync)
        took = []
        for n in range(SIGN_UPS):
            form = SignUp(f"{prefix}{n}@exemple.fr", "Martin", "Camille", PASSWORD, PASSWORD)
            t0 = time.perf_counter()
            accounts.sign_up(form)
            took.append(time.perf_counter() - t0)
        return took
    finally:
        client.close()
        store.close()


def measure() -> list[Figure]:
    with postgres() as server, tempfile.TemporaryDirectory(prefix="kiosk-bench-signup-") as tmp:
        url = server.create_database()
        token = _credential(url)
        with rectorat_server(url, NOW) as base:
            online = _sign_ups(Path(tmp), base, token, "enligne")
        # Nothing listens there any more: the rectorat is away, as for a kiosk offline.
        offline = _sign_ups(Path(tmp), f"http://127.0.0.1:{free_port()}", token, "horsligne")
    on50, on95 = percentiles(online, 50, 95)
    off50, off95 = percentiles(offline, 50, 95)
    how = (
        f"{SIGN_UPS} sign-ups through AccountService with argon2-cffi's default costs (a hash"
        " of the password and one of the code's stand-in)"
    )
    return [
        Figure("signup.online_p50", on50 * 1000, "ms",
               note=f"{how}; the rectorat asked first (kiosk rectorat serve on loopback,"
                    f" PostgreSQL 15): p95 {on95 * 1000:.1f} ms"),
        Figure("signup.online_p95", on95 * 1000, "ms"),
        Figure("signup.offline_p50", off50 * 1000, "ms",
               note=f"{how}; the rectorat's port closed (connection refused): made here"
                    f" alone; p95 {off95 * 1000:.1f} ms"),
        Figure("signup.offline_p95", off95 * 1000, "ms"),
    ]  # fmt: skip
