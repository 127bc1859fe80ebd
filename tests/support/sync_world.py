"""Sync end to end, for the tests: the rectorat (PostgreSQL behind a real uvicorn on
127.0.0.1) and kiosks built with ``build_services`` on their own data dirs, each with
its own credential.

A plugin of ``tests/conftest.py`` (``pytest_plugins``): the fixtures ``rectorat`` (a
:class:`Rectorat` on a fresh PostgreSQL database, not started) and ``kiosks``
(``make(name)``: a :class:`Kiosk` with a credential issued for it) are there for every
test module; a module's own fixture of the same name takes precedence.
"""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path

import pytest

from kiosk.accounts import SignUp
from kiosk.delivery.mail_transport import MailboxEntry, MaildirTransport, read_maildir
from kiosk.exam_sessions import load_session
from kiosk.rectorat.mail import RectoratMail
from kiosk.rectorat.service import RectoratService
from kiosk.rectorat.store import open_store
from kiosk.runtime.config import Config, MailConfig, SyncConfig
from kiosk.runtime.services import build_services
from kiosk.store.models import Account, Registration
from kiosk.sync.client import SyncReport
from tests.factories import PASSWORD, fast_hasher, mailed_code, valid_values
from tests.support.pg_server import _free_port

HASHER = fast_hasher()


# -- the rectorat: PostgreSQL behind a real uvicorn -----------------------------------------


class Rectorat:
    """The rectorat's store (the test's and the exam office's own connection) and its API,
    served by a real uvicorn in a thread on a port chosen once: stopped, it refuses
    connections on that port; started again, it serves on the same one."""

    def __init__(self, url: str, clock, folder: Path | None = None) -> None:
        self.url = url
        self.clock = clock
        # What the rectorat mails itself (reset codes) goes to a Maildir here.
        self.maildir = (folder or Path(tempfile.mkdtemp())) / "Maildir"
        self.port = _free_port()
        self.store = open_store(url)
        self.service = RectoratService(self.store, clock, hasher=HASHER)
        self._server = None
        self._thread: threading.Thread | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def credential(self, name: str) -> str:
        return f"{name}:{self.service.issue_credential(name)}"

    def start(self, wrap=None, *, sequence_interval: float | None = None) -> None:
        """Serve the API. Without ``sequence_interval`` there is no background sequencer:
        a pull numbers whatever waits, so what the rectorat wrote before it is in that
        pull. With one, a pull can meet the sequencer's round and leave it what it numbers,
        which the next pull brings, as in production."""
        import uvicorn

        from kiosk.rectorat.api import make_app

        served = open_store(self.url, pool=True)
        mail = RectoratMail(
            lambda: MaildirTransport(self.maildir),
            MailConfig().sender,
            load_session("bacpro-poitiers-2020", self.clock),
        )
        app = make_app(
            served,
            self.clock,
            service=RectoratService(served, self.clock, hasher=HASHER, mail=mail),
            sequence_interval=sequence_interval,
            close_store=True,
        )
        config = uvicorn.Config(
            wrap(app) if wrap else app, host="127.0.0.1", port=self.port, log_level="warning"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="uvicorn", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            assert self._thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)

    def mailbox(self) -> list[MailboxEntry]:
        """What the rectorat mailed, oldest first."""
        return read_maildir(self.maildir) if self.maildir.exists() else []

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            self._thread.join(20)
            assert not self._thread.is_alive(), "uvicorn did not stop"
            self._server = self._thread = None

    def close(self) -> None:
        self.stop()
        self.store.close()

    # What the rectorat holds, read on the test's own connection.

    def count(self, table: str, where: str = "TRUE", *params) -> int:
        return self.store.db.execute_sql(
            f"SELECT count(*) FROM {table} WHERE {where}", params
        ).fetchone()[0]

    def rows(self, table: str) -> list[tuple]:
        return self.store.db.execute_sql(f"SELECT * FROM {table} ORDER BY 1").fetchall()

    def snapshot(self) -> dict[str, list[tuple]]:
        return {
            t: self.rows(t)
            for t in ("rc_account", "rc_registration", "rc_conflict", "rc_change", "rc_tombstone")
        }

    def changes_of(self, record_id) -> int:
        return self.count("rc_change", "entity_id = %s", str(record_id))


@pytest.fixture
def rectorat(fresh_postgres_url, clock, tmp_path):
    made = Rectorat(fresh_postgres_url, clock, tmp_path / "rectorat")
    yield made
    made.close()


# -- kiosks ---------------------------------------------------------------------------------


class Kiosk:
    """One kiosk: its own data dir, store and credential, built by ``build_services``.

    Each kiosk's services work on its own store (``services.store``, the kiosk models bound
    to it): kiosks live side by side in the test's process, nothing is rebound."""

    def __init__(self, folder: Path, clock, url: str, credential: str) -> None:
        self.folder = folder
        config = Config(data_dir=folder, sync=SyncConfig(url=url, token=credential, timeout=5))
        self.services = build_services(config, clock)
        self.services.accounts.hasher = HASHER  # tiny argon2 costs: tests only

    def candidate(self, email: str, family: str, given: str, birth: str, *, register: bool = True):
        """Sign up, activate and (by default) register: the account and the registration."""
        s = self.services
        account = s.accounts.sign_up(SignUp(email, family, given, PASSWORD, PASSWORD))
        account = s.accounts.activate(account.email, mailed_code(s.store, account.email))
        if not register:
            return account, None
        values = valid_values(s.session, family_name=family, given_names=given, birth_date=birth)
        return account, s.registrations.save(account, values)

    def sync(self, *, force: bool = False) -> SyncReport:
        return self.services.sync.sync_once(force=force)

    def pending(self) -> int:
        return self.services.sync.pending()

    def registration(self, registration_id) -> Registration | None:
        registrations = self.services.store.Registration
        return registrations.get_or_none(registrations.id == registration_id)

    def account(self, account_id) -> Account | None:
        accounts = self.services.store.Account
        return accounts.get_or_none(accounts.id == account_id)

    def close(self) -> None:
        if self.services.sync.client is not None:
            self.services.sync.client.close()
        self.services.close()


@pytest.fixture
def kiosks(tmp_path, clock, rectorat):
    """``make(name)``: a kiosk with its own data dir and a credential issued for it."""
    made: list[Kiosk] = []

    def make(name: str) -> Kiosk:
        kiosk = Kiosk(tmp_path / name, clock, rectorat.base, rectorat.credential(name))
        made.append(kiosk)
        return kiosk

    yield make
    for kiosk in made:
        kiosk.close()
