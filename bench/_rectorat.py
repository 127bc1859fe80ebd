"""The real parts the sync measures run against: a private PostgreSQL 15 and
``kiosk rectorat serve`` in its own process on 127.0.0.1. Not a measure."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

from bench import ROOT


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def postgres():
    """A private PostgreSQL 15, started and removed as tests/support/pg_server.py does."""
    from tests.support.pg_server import PG_BIN, running_postgres

    missing = [p for p in ("initdb", "pg_ctl", "postgres", "createdb") if not (PG_BIN / p).exists()]
    if missing:
        raise RuntimeError(
            f"needs PostgreSQL 15's programs in {PG_BIN} (Debian package postgresql-15)"
        )
    with running_postgres(PG_BIN) as server:
        yield server


@contextmanager
def rectorat_server(url: str, now: str) -> Iterator[str]:
    """``kiosk rectorat serve --db URL`` with its clock at ``now`` (``KIOSK_NOW``), running
    until the block ends; yields its base URL once it answers."""
    import httpx

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIOSK_")}
    env["KIOSK_NOW"] = now
    log = tempfile.TemporaryFile(mode="w+")
    process = subprocess.Popen(
        [sys.executable, "kiosk.py", "rectorat", "serve", "--db", url, "--port", str(port),
         "--log-level", "warning"],
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


def percentiles(values: list[float], *cuts: int) -> list[float]:
    """The ``cuts`` percentiles (inclusive method) of ``values``."""
    import statistics

    if len(values) == 1:
        return [values[0]] * len(cuts)
    every = statistics.quantiles(values, n=100, method="inclusive")
    return [every[cut - 1] for cut in cuts]
