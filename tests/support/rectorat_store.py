"""Fixtures: the rectorat's store, on SQLite and on PostgreSQL, and its service.

A plugin of ``tests/conftest.py`` (``pytest_plugins``): every test module may ask for
``store_url`` (one SQLite file, then one fresh PostgreSQL database: the test runs on
both), ``store`` (that store, opened) and ``service`` (a :class:`RectoratService` on it,
with a fast hasher). A module's own fixture of the same name takes precedence.
"""

from __future__ import annotations

import pytest

from kiosk.rectorat.service import RectoratService
from kiosk.rectorat.store import open_store, sqlite_url
from tests.factories import fast_hasher


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return sqlite_url(tmp_path / "rectorat.sqlite3")
    return request.getfixturevalue("fresh_postgres_url")


@pytest.fixture
def store(store_url):
    opened = open_store(store_url)
    yield opened
    opened.close()


@pytest.fixture
def service(store, clock) -> RectoratService:
    return RectoratService(store, clock, hasher=fast_hasher())
