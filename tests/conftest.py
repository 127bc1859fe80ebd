"""Fixtures shared by the logic tests: one frozen clock, one store, one exam session."""

from __future__ import annotations

import re

import pytest
from argon2 import PasswordHasher
from peewee import SQL

from kiosk.accounts import AccountService, SignUp
from kiosk.clock import Clock, parse_instant
from kiosk.exam_sessions import load_session
from kiosk.store.database import open_store
from kiosk.store.models import OutboxRow
from tests.support.requirements import REQUIRE_ALL

CANDIDATE = SignUp(
    email="jean.dupont@exemple.fr",
    family_name="Dupont",
    given_names="Jean",
    password="cheval agrafe lumière 42",
    password_again="cheval agrafe lumière 42",
)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under ``KIOSK_REQUIRE_ALL=1`` (CI), a test skipped for a missing part fails."""
    outcome = yield
    report = outcome.get_result()
    if REQUIRE_ALL and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped, but KIOSK_REQUIRE_ALL=1 requires every part: {reason}"


_CODE = re.compile(r"Votre code .*est : (\w{4}-\w{4})")


@pytest.fixture
def clock() -> Clock:
    """Sunday 10 Nov 2019, 10:00 Paris: inside the Poitiers window; moves only when told."""
    return Clock(parse_instant("2019-11-10T10:00:00"), frozen=True)


@pytest.fixture
def db(tmp_path):
    store = open_store(tmp_path / "kiosk.sqlite3")
    yield store
    store.close()


@pytest.fixture
def session(clock):
    return load_session("bacpro-poitiers-2020", clock)


def fast_hasher(**params):
    """Argon2id with tiny costs, for tests only: production uses argon2-cffi's defaults
    (Hasher()), which take ~50 ms a hash and would make the suite slow."""
    from kiosk.passwords import Hasher

    costs = {"time_cost": 1, "memory_cost": 8, "parallelism": 1} | params
    return Hasher(PasswordHasher(**costs))


@pytest.fixture
def accounts(db, clock, session) -> AccountService:
    return AccountService(db, clock, session, hasher=fast_hasher())


def mailed_code(email: str) -> str:
    """The code in the latest mail queued for ``email``, as the candidate reads it."""
    rows = OutboxRow.select().where(OutboxRow.kind == "mail").order_by(SQL("rowid"))
    bodies = [row.payload["body"] for row in rows if row.payload["to"] == email]
    assert bodies, f"no mail for {email}"
    found = _CODE.search(bodies[-1])
    assert found, bodies[-1]
    return found.group(1)


@pytest.fixture
def signed_up(accounts):
    """A pending account for CANDIDATE and its activation code, read back from the mail."""
    account = accounts.sign_up(CANDIDATE)
    return account, mailed_code(account.email)


@pytest.fixture(scope="session")
def cups():
    """A private CUPS server with the cups-pdf backend, for the whole test run."""
    from tests.support.cups_server import cups_server, need_cups

    with cups_server(need_cups()) as server:
        yield server
