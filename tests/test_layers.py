"""The domain never imports Textual, and the command starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

IMPORT_EVERYTHING = """
import importlib, pkgutil, sys
import kiosk
# kiosk.__main__ is the command itself: importing it runs the kiosk.
names = ["kiosk"] + [m.name for m in pkgutil.walk_packages(kiosk.__path__, "kiosk.") if m.name != "kiosk.__main__"]
for name in names:
    importlib.import_module(name)
print(len(names))
print(sorted(m for m in sys.modules if m == "textual" or m.startswith("textual.")))
"""


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )


def test_no_kiosk_module_imports_textual():
    result = run("-c", IMPORT_EVERYTHING)
    assert result.returncode == 0, result.stderr
    count, textual = result.stdout.splitlines()
    assert int(count) >= 15  # every module under kiosk/ was found and imported
    assert textual == "[]"


def test_python_m_kiosk_is_the_command():
    result = run("-m", "kiosk", "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "kiosk 0.1.0"


def test_kiosk_py_prints_its_version():
    result = run("kiosk.py", "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "kiosk 0.1.0"
