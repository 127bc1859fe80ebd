"""The wheel carries the assets and the migrations, and an installed copy finds them."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_an_installed_wheel_finds_its_assets(tmp_path):
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    [wheel] = tmp_path.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for expected in (
        "kiosk/assets/locales/fr.toml",
        "kiosk/assets/fonts/DejaVuSans.ttf",
        "kiosk/store/migrations/0001_initial.sql",
        "screens/app.py",
        "kiosk/assets/sessions/demo.toml",
    ):
        assert expected in names, expected

    installed = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(installed)
    # Run from elsewhere, with the unpacked wheel first on the path: not the source tree.
    found = subprocess.run(
        [
            sys.executable,
            "-c",
            "import kiosk.assets as a; print(a.assets_dir()); print(a.asset('locales', 'fr.toml').is_file())",
        ],
        cwd=tmp_path,
        env={"PYTHONPATH": str(installed)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert found.returncode == 0, found.stderr
    folder, exists = found.stdout.split()
    assert Path(folder) == installed / "kiosk" / "assets" and exists == "True"
