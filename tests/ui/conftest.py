"""The kiosk as the ``kiosk`` command builds it, driven by Textual's Pilot.

Every app here runs on a frozen clock (by default Sunday 10 November 2019, 10:00 in
Paris, inside the Poitiers window), so that what the screens say about time never
changes between runs. The helpers that drive it (settle, type_into, log_in…) and the
candidate they use are in ``tests/support/pilot.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from kiosk.clock import Clock, parse_instant
from kiosk.runtime.config import load_config
from kiosk.runtime.services import Services, build_services
from screens.app import KioskApp, build_app
from tests.factories import fast_hasher
from tests.support.pilot import SESSION, SUNDAY_MORNING


@pytest.fixture
def make_services(tmp_path: Path) -> Callable[..., Services]:
    """Build services as the CLI does, each in its own data dir, on a frozen clock."""
    built: list[Services] = []

    def make(now: str = SUNDAY_MORNING) -> Services:
        config = load_config(
            environ={}, overrides={"data_dir": tmp_path / f"kiosk-{len(built)}", "session": SESSION}
        )
        services = build_services(config, Clock(parse_instant(now), frozen=True))
        # Tests only: argon2 with tiny costs. The kiosk uses argon2-cffi's defaults.
        services.accounts.hasher = fast_hasher()
        built.append(services)
        return services

    yield make
    for services in built:
        services.close()


@pytest.fixture
def services(make_services) -> Services:
    return make_services()


@pytest.fixture
def app(services) -> KioskApp:
    return build_app(services)
