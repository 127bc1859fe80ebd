"""Parts of the machine that some tests need: a missing one skips, unless all are required.

On a laptop without a Debian package, its tests skip with the reason. CI installs every
such package and sets ``KIOSK_REQUIRE_ALL=1``, under which such a skip is a failure
(see the hook in ``conftest.py``).
"""

from __future__ import annotations

import os
import shutil

import pytest

REQUIRE_ALL = os.environ.get("KIOSK_REQUIRE_ALL") == "1"


def need_program(program: str, package: str) -> str:
    """The path of ``program``; skips the test when it is not installed."""
    path = shutil.which(program)
    if path is None:
        pytest.skip(f"needs {program} (Debian package {package})")
    return path
