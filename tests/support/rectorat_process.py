"""``kiosk rectorat serve`` as a real process on loopback, for the crash and fault tests.

The port is chosen once: stopped or killed, the service refuses connections there;
started again, it serves on the same one, as a restarted server does. Its store is the
SQLite file of its folder, or the database ``db_url`` names (PostgreSQL). Its clock is
``KIOSK_NOW`` when ``now`` is given.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support.pg_server import _free_port

ROOT = Path(__file__).resolve().parents[2]


def environment(**extra: str) -> dict[str, str]:
    """This process's environment without any kiosk or Textual setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KIOSK_", "TEXTUAL"))}
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


class RectoratProcess:
    """One ``kiosk rectorat serve`` at a time, on a port of 127.0.0.1 chosen once."""

    def __init__(self, folder: Path, *, now: str | None = None, db_url: str | None = None) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.port = _free_port()
        self.env = environment(**({"KIOSK_NOW": now} if now else {}))
        self.store_args = ["--db", db_url] if db_url else ["--data-dir", str(folder)]
        self.process: subprocess.Popen | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.folder / "serve.log"

    def command(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        """``kiosk rectorat --db … ARGS`` (or ``--data-dir``), run to its end."""
        return subprocess.run(
            [sys.executable, "kiosk.py", "rectorat", *self.store_args, *args],
            cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip

    def kiosk_credential(self, name: str) -> str:
        """``NAME:TOKEN`` from ``kiosk rectorat kiosk add NAME``."""
        added = self.command("kiosk", "add", name)
        assert added.returncode == 0, added.stderr
        return added.stdout.strip()

    def start(self) -> None:
        """Serve, and return once the health check answers."""
        assert self.process is None or self.process.poll() is not None, "already serving"
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "kiosk.py", "rectorat", *self.store_args, "serve",
                 "--port", str(self.port), "--log-level", "warning"],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        self.starts += 1
        deadline = time.monotonic() + 60
        while True:
            assert self.process.poll() is None, f"the rectorat stopped:\n{self.log.read_text()}"
            try:
                if httpx.get(f"{self.url}/v1/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the rectorat did not start"
            time.sleep(0.05)

    def kill(self, how: signal.Signals = signal.SIGKILL) -> None:
        """Stop the service with ``how`` (SIGKILL: a crash; SIGTERM: an orderly stop)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(how)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def stop(self) -> None:
        self.kill(signal.SIGTERM)

    def rows(self, sql: str, *params) -> list[tuple]:
        """A query on the SQLite store, read-only (for a PostgreSQL store, open it instead)."""
        path = self.folder / "rectorat.sqlite3"
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as db:
            return db.execute(sql, params).fetchall()
