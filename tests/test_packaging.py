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
            "import kiosk.assets as a; print(a.assets_dir());"
            " print(a.asset('locales', 'fr.toml').is_file())",
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


# -- what each role installs ---------------------------------------------------------------

# The rectorat's server: in the extra ``rectorat``, never in a kiosk's install.
SERVER_PACKAGES = {
    "starlette",
    "uvicorn",
    "httptools",
    "psycopg",
    "psycopg2-binary",
    "orjson",
    "msgspec",
}


def _requirements(wheel: Path) -> list[tuple[str, str]]:
    """The wheel's Requires-Dist as (package, marker): the marker is '' for a kiosk's."""
    import email.parser
    import re

    with zipfile.ZipFile(wheel) as archive:
        [name] = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        metadata = email.parser.Parser().parsestr(archive.read(name).decode("utf-8"))
    found = []
    for line in metadata.get_all("Requires-Dist") or []:
        requirement, _, marker = line.partition(";")
        package = re.match(r"[A-Za-z0-9._-]+", requirement.strip())
        assert package, line
        found.append((package.group(0).lower().replace("_", "-"), marker.strip()))
    return found


def test_a_kiosk_installs_no_server_and_the_rectorat_extra_holds_it(tmp_path):
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(ROOT)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    [wheel] = tmp_path.glob("*.whl")
    requirements = _requirements(wheel)
    kiosk = {package for package, marker in requirements if not marker}
    rectorat = {package for package, marker in requirements if "rectorat" in marker}
    assert {"textual", "peewee", "email-validator", "fpdf2", "argon2-cffi"} <= kiosk
    assert not kiosk & SERVER_PACKAGES, kiosk & SERVER_PACKAGES
    assert rectorat == {"starlette", "uvicorn", "httptools", "psycopg", "orjson", "msgspec"}
    assert "psycopg2-binary" not in {package for package, _ in requirements}
    # make test installs everything: the test extra pulls the rectorat's (the build
    # writes the self-reference out as the extra's packages).
    test = {package for package, marker in requirements if "'test'" in marker}
    assert rectorat <= test, rectorat - test


# The rectorat's modules hidden, as on a kiosk installed without the extra.
_WITHOUT_SERVICE = """
import sys
from kiosk.rectorat.cli import SERVICE_MODULES

# None in sys.modules: import fails, and importlib.util.find_spec answers None.
for name in [n for n in sys.modules if n.partition(".")[0] in SERVICE_MODULES]:
    del sys.modules[name]
sys.modules.update(dict.fromkeys(SERVICE_MODULES))
from kiosk.runtime.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_kiosk_without_the_rectorat_extra_says_so_in_french(tmp_path):
    for argv in (["rectorat", "serve"], ["rectorat", "kiosk", "list"]):
        ran = subprocess.run(
            [sys.executable, "-c", _WITHOUT_SERVICE, "--data-dir", str(tmp_path), *argv],
            cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert ran.returncode == 2, (argv, ran.stderr)
        assert "Traceback" not in ran.stderr
        assert "Le service du rectorat n'est pas installé ici" in ran.stderr, ran.stderr
        assert "son extra « rectorat »" in ran.stderr
