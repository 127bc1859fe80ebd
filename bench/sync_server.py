"""The rectorat's sync API through a real uvicorn on 127.0.0.1: push and pull rates."""

from __future__ import annotations

import os
import socket
import statistics
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from bench import Figure

ORDER = 80
KIOSKS = 4
BATCHES = 10  # per kiosk
PAIRS = 100  # account + registration pairs a batch: 200 items


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _auth(name: str, token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {name}:{token}"}


def _batch(kiosk: int, batch: int, password_hash: str) -> list[dict]:
    stamp = "2019-11-09T14:00:00.000000+00:00"
    items = []
    for n in range(PAIRS):
        account_id, registration_id = str(uuid.uuid4()), str(uuid.uuid4())
        name = f"k{kiosk}b{batch}n{n}"
        items.append({"entity": "account", "id": account_id, "version": 1, "data": {
            "created_at": stamp, "updated_at": stamp, "email": f"{name}@exemple.fr",
            "email_key": f"{name}@exemple.fr", "family_name": name, "given_names": "Bench",
            "password_hash": password_hash, "status": "active", "activated_at": stamp,
        }})  # fmt: skip
        items.append({"entity": "registration", "id": registration_id, "version": 1, "data": {
            "created_at": stamp, "updated_at": stamp, "account_id": account_id,
            "session_id": "bacpro-poitiers-2020",
            "answers": {"family_name": name, "given_names": "Bench", "birth_date": "04/05/2001"},
            "status": "registered", "saved_at": stamp, "withdrawn_at": None}})  # fmt: skip
    return items


def measure() -> list[Figure]:
    import httpx
    import uvicorn

    from kiosk.clock import Clock, parse_instant
    from kiosk.rectorat.api import make_app
    from kiosk.rectorat.service import RectoratService
    from kiosk.rectorat.store import open_store, sqlite_url

    with tempfile.TemporaryDirectory(prefix="kiosk-bench-sync-") as folder:
        url = os.environ.get("KIOSK_RECTORAT_DB") or sqlite_url(
            os.path.join(folder, "rectorat.sqlite3")
        )
        backend = "postgresql" if url.startswith("postgres") else "sqlite"
        store = open_store(url, pool=True)
        clock = Clock(parse_instant("2019-11-10T10:00:00"))
        service = RectoratService(store, clock)
        tokens = {f"bench-{uuid.uuid4().hex[:8]}-{k}": None for k in range(KIOSKS)}
        for name in tokens:
            tokens[name] = service.issue_credential(name)
        port = _free_port()
        app = make_app(store, clock, service=service)
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.02)
        base = f"http://127.0.0.1:{port}"
        batches = {
            name: [_batch(k, b, "$argon2id$bench") for b in range(BATCHES)]
            for k, name in enumerate(tokens)
        }
        latencies: list[float] = []

        def kiosk(name: str) -> None:
            with httpx.Client(base_url=base, timeout=60, headers=_auth(name, tokens[name])) as c:
                for items in batches[name]:
                    t0 = time.perf_counter()
                    answer = c.post("/v1/push", json={"items": items})
                    latencies.append(time.perf_counter() - t0)
                    if answer.status_code != 200:
                        raise RuntimeError(f"push answered {answer.status_code}")

        try:
            t0 = time.perf_counter()
            with ThreadPoolExecutor(KIOSKS) as pool:
                list(pool.map(kiosk, tokens))
            push_s = time.perf_counter() - t0
            name = next(iter(tokens))
            pulls = []
            with httpx.Client(base_url=base, timeout=60, headers=_auth(name, tokens[name])) as c:
                after = 0
                while True:
                    t0 = time.perf_counter()
                    page = c.get("/v1/changes", params={"after": after, "limit": 500}).json()
                    pulls.append(time.perf_counter() - t0)
                    if not page["changes"]:
                        break
                    after = page["last"]
        finally:
            server.should_exit = True
            thread.join(20)
            store.close()

    items = KIOSKS * BATCHES * PAIRS * 2
    ms = lambda xs: statistics.median(xs) * 1000  # noqa: E731
    return [
        Figure("sync.push_rate", items / push_s, "items/s", better="higher",
               note=f"{backend}, {KIOSKS} kiosks at once, batches of {PAIRS * 2} new accounts and"
                    " registrations"),
        Figure("sync.push_batch", ms(latencies), "ms",
               note=f"median of {len(latencies)}, max {max(latencies)*1000:.0f} ms"),
        Figure("sync.pull_page", ms(pulls), "ms", note="500 changes a page, median"),
    ]  # fmt: skip
