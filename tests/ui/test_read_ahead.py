"""The screens' modules are imported in a thread once the first screen is drawn, so that
the first key opens its screen without importing it; not before the first frame."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# In a fresh interpreter: a test process has imported every screen already.
SCRIPT = """
import asyncio, sys, tempfile
from pathlib import Path
from kiosk.runtime.config import load_config
from kiosk.runtime.services import build_services
from screens.app import build_app

services = build_services(load_config(environ={}, overrides={"data_dir": Path(tempfile.mkdtemp())}))
app = build_app(services)

async def main():
    async with app.run_test() as pilot:
        print("first frame:", "screens.registration" in sys.modules)
        await pilot.pause(1.0)
        await app.workers.wait_for_complete()
        print("a second later:", all(m in sys.modules for m in (
            "screens.registration", "screens.signup", "screens.home", "screens.documents")))

asyncio.run(main())
services.close()
"""


def test_the_screens_are_read_ahead_after_the_first_frame(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["first frame: False", "a second later: True"]
