"""The deadline rush of ``bench.rush``, scaled down: simulated kiosks, each with its own
store, credential and clock, register candidates through the real services in the last
hour of the window while their sync workers push and pull through ``kiosk rectorat
serve`` to a real PostgreSQL 15. Only correctness is asserted, never a timing."""

from __future__ import annotations

import pytest

from bench._rectorat import rectorat_server
from bench.rush import RUSH_NOW, run_rush


@pytest.mark.slow
def test_every_registration_of_a_rush_lands_once(postgres_server, tmp_path):
    url = postgres_server.create_database()
    with rectorat_server(url, RUSH_NOW) as base:
        report = run_rush(url, base, tmp_path, kiosks=10, per_kiosk=5, think=0.05, sync_every=0.3)
    assert report.errors == []
    assert len(report.saves) == 50
    # One row, one change and a unique number each at the rectorat, and that number back at its
    # kiosk.
    assert (report.landed, report.numbers, report.changes) == (50, 50, 50)
    assert report.conflicts == 0
    assert report.numbered_back == 50
    assert report.all_landed_once
