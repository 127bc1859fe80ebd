"""A private PostgreSQL 15 server for the tests that need the rectorat's production store.

:func:`running_postgres` runs ``initdb`` and ``pg_ctl start`` in a fresh folder under
/tmp: the server listens on 127.0.0.1 at a free port, with its socket in that folder,
trusts local connections, and neither sees nor touches the machine's clusters. initdb
refuses to run as root, so as root the folder belongs to the ``postgres`` user and the
programs run through ``runuser -u postgres --``. The server is stopped
(``pg_ctl stop -m fast``) and its folder removed at the end.

Its fixtures are registered for every test module by ``pytest_plugins`` in
``tests/conftest.py``: a test asks for them by name, and imports nothing.
``postgres_server`` (session) is the :class:`PostgresServer`; ``postgres_url``
(session) is one database for the whole run; ``fresh_postgres_url`` (function) is a
new empty database for each test. One server serves the whole run, started when a
test first asks for it.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

PG_BIN = Path(os.environ.get("KIOSK_PG_BIN", "/usr/lib/postgresql/15/bin"))
PACKAGE = "postgresql-15"
SUPERUSER = "postgres"
_ENV = dict(os.environ, LC_ALL="C", LANG="C", TZ="UTC")


def need_postgres() -> Path:
    """The folder of PostgreSQL 15's programs; skips when they are missing."""
    for program in ("initdb", "pg_ctl", "postgres", "createdb"):
        if not (PG_BIN / program).exists():
            pytest.skip(f"needs {PG_BIN / program} (Debian package {PACKAGE})")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip(f"running as root needs the postgres user (Debian package {PACKAGE})")
        if shutil.which("runuser") is None:
            pytest.skip("running as root needs runuser (Debian package util-linux)")
    return PG_BIN


@dataclass
class PostgresServer:
    root: Path
    port: int
    bin_dir: Path
    as_postgres: bool
    database: str = "kiosk"
    _names: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "socket"

    def url_for(self, database: str) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    @property
    def url(self) -> str:
        return self.url_for(self.database)

    def run(self, program: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        command = _as_owner([str(self.bin_dir / program), *args], self.as_postgres)
        result = subprocess.run(
            command, capture_output=True, text=True, env=_ENV, timeout=60, check=False
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{program} failed ({result.returncode}): {result.stdout}{result.stderr}\n"
                f"{self.log_tail()}"
            )
        return result

    def create_database(self, name: str | None = None) -> str:
        """A new empty database; returns its URL."""
        name = name or f"t{os.getpid()}_{next(self._names)}"
        self.run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", SUPERUSER, name)
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        self.run("dropdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", SUPERUSER, "--if-exists",
                 "--force", name, check=False)  # fmt: skip

    def log_tail(self, lines: int = 30) -> str:
        log = self.root / "server.log"
        if not log.exists():
            return ""
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def _as_owner(command: list[str], as_postgres: bool) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if as_postgres else command


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def running_postgres(bin_dir: Path, *, durable: bool = False) -> Iterator[PostgresServer]:
    """A running private PostgreSQL with a database ``kiosk``; stopped and removed on exit.

    ``durable``: every commit flushed before it is acknowledged, as in production, for a
    test that crashes the server; by default commits are not flushed (faster).
    """
    as_postgres = os.geteuid() == 0
    root = Path(tempfile.mkdtemp(prefix="kiosk-pg-"))
    started = False
    server = PostgresServer(root, 0, bin_dir, as_postgres)
    try:
        (root / "socket").mkdir()
        if as_postgres:
            for path in (root, root / "socket"):
                shutil.chown(path, user="postgres", group="postgres")
        server.run(
            "initdb", "-D", str(server.data_dir), "-U", SUPERUSER, "--auth=trust",
            "--encoding=UTF8", "--locale=C", "--no-sync",
        )  # fmt: skip
        for _attempt in range(3):
            server.port = _free_port()
            # fsync off: a test server's data need not survive a power cut.
            fast = "-F -c full_page_writes=off -c synchronous_commit=off "
            options = (
                f"-h 127.0.0.1 -p {server.port} -k {server.socket_dir} {'' if durable else fast}"
                "-c max_connections=200 -c shared_buffers=32MB -c log_min_messages=warning"
            )
            result = server.run(
                "pg_ctl", "-D", str(server.data_dir), "-l", str(root / "server.log"), "-o", options,
                "-w", "-t", "60", "start", check=False,
            )  # fmt: skip
            if result.returncode == 0:
                started = True
                break
        if not started:
            raise RuntimeError(
                f"PostgreSQL did not start:\n{result.stdout}{result.stderr}\n{server.log_tail()}"
            )
        server.create_database(server.database)
        yield server
    finally:
        if started:
            server.run(
                "pg_ctl", "-D", str(server.data_dir), "-m", "fast", "-w", "stop", check=False
            )
        shutil.rmtree(root, ignore_errors=True)


# One server for the whole run, whichever modules import the fixtures below.
_shared: dict[str, object] = {}
_shared_lock = threading.Lock()


@contextlib.contextmanager
def _shared_server() -> Iterator[PostgresServer]:
    with _shared_lock:
        if "server" not in _shared:
            context = running_postgres(need_postgres())
            _shared["server"] = context.__enter__()
            _shared["context"] = context
            _shared["users"] = 0
        _shared["users"] = int(_shared["users"]) + 1
    try:
        yield _shared["server"]  # type: ignore[misc]
    finally:
        with _shared_lock:
            _shared["users"] = int(_shared["users"]) - 1
            if _shared["users"] == 0:
                context = _shared.pop("context")
                _shared.clear()
                context.__exit__(None, None, None)  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    with _shared_server() as server:
        yield server


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    """The URL of one PostgreSQL database for the whole test run."""
    return postgres_server.url


@pytest.fixture
def fresh_postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database, dropped after the test."""
    url = postgres_server.create_database()
    yield url
    postgres_server.drop_database(url.rsplit("/", 1)[1])
