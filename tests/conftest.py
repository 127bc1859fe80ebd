"""Fixtures shared by the logic tests: one frozen clock, one store, one exam session.

The builders the tests share (the standard candidate, valid form values, pushed items…)
are plain functions in ``tests/factories.py``. The fixtures of the harness modules below
are registered as plugins, so test modules ask for them by name and never import them.
"""

from __future__ import annotations

import pytest

from kiosk.accounts import AccountService
from kiosk.clock import Clock, parse_instant
from kiosk.exam_sessions import load_session
from kiosk.store.database import open_store
from tests.factories import CANDIDATE, fast_hasher, mailed_code
from tests.support.requirements import REQUIRE_ALL

pytest_plugins = [
    "tests.support.pg_server",  # postgres_server, postgres_url, fresh_postgres_url
    "tests.support.rectorat_store",  # store_url, store, service: the rectorat's store
    "tests.support.sync_world",  # rectorat, kiosks: sync end to end
]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under ``KIOSK_REQUIRE_ALL=1`` (CI), a test skipped for a missing part fails."""
    outcome = yield
    report = outcome.get_result()
    if REQUIRE_ALL and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped, but KIOSK_REQUIRE_ALL=1 requires every part: {reason}"


@pytest.fixture
def clock() -> Clock:
    """Sunday 10 Nov 2019, 10:00 Paris: inside the Poitiers window; moves only when told."""
    return Clock(parse_instant("2019-11-10T10:00:00"), frozen=True)


@pytest.fixture
def kiosk_store(tmp_path):
    """The kiosk's store: its connection (``kiosk_store.db``) and the models bound to it
    (``kiosk_store.Account``…). ``store`` is the rectorat's (tests/support/rectorat_store.py)."""
    opened = open_store(tmp_path / "kiosk.sqlite3")
    yield opened
    opened.close()


@pytest.fixture
def session(clock):
    return load_session("bacpro-poitiers-2020", clock)


@pytest.fixture
def accounts(kiosk_store, clock, session) -> AccountService:
    return AccountService(kiosk_store, clock, session, hasher=fast_hasher())


@pytest.fixture
def signed_up(accounts):
    """A pending account for CANDIDATE and its activation code, read back from the mail."""
    account = accounts.sign_up(CANDIDATE)
    return account, mailed_code(accounts.store, account.email)


@pytest.fixture(scope="session")
def cups():
    """A private CUPS server with the cups-pdf backend, for the whole test run."""
    from tests.support.cups_server import cups_server, need_cups

    with cups_server(need_cups()) as server:
        yield server
