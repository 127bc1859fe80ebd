"""The ``kiosk`` command's entry point reads the kiosk's command line as the command's
parser does, and leaves every other one to the parser; a kiosk started by the launcher
runs without building that parser."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kiosk.runtime import cli
from kiosk.runtime.entry import kiosk_options
from kiosk.runtime.launcher import CHILD_VARIABLE

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = ("config", "data_dir", "session", "language")

THE_KIOSK_S = [
    [],
    ["run"],
    ["--data-dir", "d"],
    ["--data-dir=d", "--session", "demo", "run"],
    ["--session", "a", "--session", "b"],  # the last one counts
    ["--language", "en", "--config", "kiosk.toml"],
    ["--language=fr", "--data-dir", "d=e"],
    ["--session=-s"],
]

LEFT_TO_THE_PARSER = [
    ["--version"],
    ["-h"],
    ["staff"],
    ["sync", "--once"],
    ["run", "--session", "demo"],  # an option after the command
    ["--data", "d"],  # abbreviated: the parser accepts it, the entry does not guess
    ["--language", "de"],
    ["--session"],
    ["--session", "--data-dir", "d"],
    ["--data-dir="],
    ["--data-dir", ""],
    ["--config", "-"],
    ["--config=--"],  # argparse reads no value there, not a file named « -- »
    ["--session=--", "--data-dir", "d"],
]


@pytest.mark.parametrize("arguments", THE_KIOSK_S, ids=" ".join)
def test_the_kiosk_s_command_line_is_read_as_the_parser_reads_it(arguments):
    parsed = vars(cli.parser().parse_args(arguments))
    assert parsed["command"] is cli.RUN
    expected = {name: str(parsed[name]) for name in SETTINGS if parsed[name] is not None}
    assert kiosk_options(arguments) == expected


@pytest.mark.parametrize("arguments", LEFT_TO_THE_PARSER, ids=" ".join)
def test_any_other_command_line_is_left_to_the_parser(arguments):
    assert kiosk_options(arguments) is None


def _launched_kiosk(tmp_path: Path, *arguments: str) -> subprocess.CompletedProcess:
    """``python -X importtime -m kiosk ARGUMENTS`` as the launcher starts a kiosk."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIOSK_")}
    env[CHILD_VARIABLE] = "1"
    return subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "kiosk", *arguments],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_launched_kiosk_that_cannot_run_says_why_in_the_log_only(tmp_path):
    data_dir = tmp_path / "data"
    ran = _launched_kiosk(tmp_path, "--data-dir", str(data_dir), "--session", "inconnue")
    assert ran.returncode == 2
    # Its terminal is the public's screen: the launcher says « Borne hors service » there.
    said = [line for line in ran.stderr.splitlines() if not line.startswith("import time:")]
    assert said == []
    log = (data_dir / "kiosk.log").read_text(encoding="utf-8")
    assert "Aucune session d'examen ne s'appelle « inconnue »" in log
    # Read by the entry point: the command's module and its parser were not on the way.
    imported = {line.rpartition("|")[2].strip() for line in ran.stderr.splitlines()}
    assert "kiosk.runtime.kiosk_process" in imported
    assert "kiosk.runtime.cli" not in imported


def test_a_launched_kiosk_whose_data_dir_cannot_be_used_says_nothing_on_its_screen(tmp_path):
    (tmp_path / "a-file").write_text("", encoding="utf-8")
    data_dir = tmp_path / "a-file" / "data"  # no log can be opened there either
    ran = _launched_kiosk(tmp_path, "--data-dir", str(data_dir), "--session", "demo")
    assert ran.returncode == 2
    said = [line for line in ran.stderr.splitlines() if not line.startswith("import time:")]
    assert said == []  # the launcher, which checks the data dir too, says why for staff
