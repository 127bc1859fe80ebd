"""What the kiosk writes is readable by the kiosk's account alone, whatever the umask.

The kiosk is started as staff start it (``kiosk …`` commands, and its services as the
kiosk builds them), each in its own process under the usual umask 022, on a data dir
that an older version left open; then every folder and file in the data dir is looked
at: folders 0700, files 0600.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOW = "2019-11-10T10:00:00"  # registrations are open in the Poitiers 2020 session
# Each process starts its clock at KIOSK_NOW: the steps after the sign-up stand a few
# minutes later, so that its mail is due however long the sign-up's process took.
LATER = "2019-11-10T10:05:00"

# The candidate's journey through the kiosk's services, as the screens drive them: sign
# up (a mail queued), then, once ``kiosk deliver`` has written the mail, activate with its
# code, register (a PDF), print it (the print folder) and export the registrations (CSV).
SIGN_UP = """
import sys
from kiosk.runtime.config import load_config
from kiosk.runtime.services import build_services
from tests.factories import CANDIDATE, fast_hasher

services = build_services(load_config(overrides={"data_dir": sys.argv[1]}))
services.accounts.hasher = fast_hasher()
services.accounts.sign_up(CANDIDATE)
services.close()
"""
REGISTER = """
import re, sys
from pathlib import Path
from kiosk.console import open_console
from kiosk.console.views import Officer
from kiosk.delivery.mail_transport import read_maildir
from kiosk.runtime.config import load_config
from tests.factories import CANDIDATE, fast_hasher, valid_values
from kiosk.runtime.services import build_services

services = build_services(load_config(overrides={"data_dir": sys.argv[1]}))
services.accounts.hasher = fast_hasher()
[mail] = read_maildir(services.config.maildir_path)
code = re.search(r"\\b(\\w{4}-\\w{4})\\b", mail.body).group(1)
account = services.accounts.activate(CANDIDATE.email, code)
services.registrations.save(account, valid_values(services.session))
[document] = services.documents.documents(account)
services.documents.print(account, document.id)
open_console(services).export_csv(Officer("dec", "exam_office"))
services.close()
"""


def _under_umask_022() -> None:
    os.umask(0o022)


def run(*args: str, data_dir: Path, now: str = NOW) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("KIOSK_")}
    environment.update(KIOSK_NOW=now, KIOSK_SESSION="bacpro-poitiers-2020")
    done = subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=_under_umask_022,
    )
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done


def kiosk(*args: str, data_dir: Path, now: str = NOW) -> subprocess.CompletedProcess[str]:
    return run("kiosk.py", "--data-dir", str(data_dir), *args, data_dir=data_dir, now=now)


def too_open(data_dir: Path) -> list[str]:
    """Every folder not 0700 and every file not 0600 under ``data_dir``, itself included."""
    found = []
    for path in [data_dir, *data_dir.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        expected = 0o700 if path.is_dir() else 0o600
        if mode != expected:
            found.append(f"{path.relative_to(data_dir.parent)}: {mode:o}")
    return found


def test_everything_the_kiosk_writes_is_its_own_under_umask_022(tmp_path):
    data_dir = tmp_path / "data"
    # Left open by an older version: tightened when the kiosk starts.
    (data_dir / "documents").mkdir(parents=True, mode=0o755)
    data_dir.chmod(0o755)
    (data_dir / "documents").chmod(0o755)
    old = data_dir / "documents" / "ancien.pdf"
    old.write_bytes(b"%PDF-1.4\n")
    old.chmod(0o644)

    kiosk("purge", data_dir=data_dir)
    run("-c", SIGN_UP, str(data_dir), data_dir=data_dir)
    kiosk("deliver", data_dir=data_dir, now=LATER)
    run("-c", REGISTER, str(data_dir), data_dir=data_dir, now=LATER)
    kiosk("purge", data_dir=data_dir, now=LATER)

    written = {p.relative_to(data_dir).parts[0] for p in data_dir.rglob("*") if p.is_file()}
    assert {"kiosk.sqlite3", "kiosk.log", "maildir", "documents", "impressions",
            "exports"} <= written  # fmt: skip
    assert list((data_dir / "maildir" / "new").iterdir()), "no mail delivered"
    assert too_open(data_dir) == []


def test_the_store_and_its_log_are_private_when_the_services_make_them(tmp_path, monkeypatch):
    """Built by the services alone (as the tests and the bench do), under umask 022."""
    from kiosk.runtime.config import load_config
    from kiosk.runtime.services import build_services

    previous = os.umask(0o022)
    try:
        services = build_services(load_config(environ={}, overrides={"data_dir": tmp_path / "d"}))
        assert services.store is not None  # opened: the store, its -wal and -shm
        services.close()
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "d").stat().st_mode) == 0o700
    files = sorted(p.name for p in (tmp_path / "d").iterdir())
    assert "kiosk.sqlite3" in files
    for name in files:
        assert stat.S_IMODE((tmp_path / "d" / name).stat().st_mode) == 0o600, name


@pytest.mark.parametrize("command", [("sessions",), ("mailbox",), ("--version",)])
def test_commands_that_read_leave_the_callers_umask_alone(command, tmp_path):
    from kiosk.runtime.cli import main

    previous = os.umask(0o022)
    try:
        try:
            main(["--data-dir", str(tmp_path / "d"), *command])
        except SystemExit:
            pass
        assert os.umask(0o022) == 0o022
    finally:
        os.umask(previous)


def test_the_rectorat_s_data_dir_left_open_is_tightened_by_its_commands(tmp_path):
    data_dir = tmp_path / "rectorat"
    run("kiosk.py", "rectorat", "--data-dir", str(data_dir), "kiosk", "add", "borne-a",
        data_dir=data_dir)  # fmt: skip
    # Left open by hand, or by an older version.
    data_dir.chmod(0o755)
    (data_dir / "rectorat.sqlite3").chmod(0o644)
    run("kiosk.py", "rectorat", "--data-dir", str(data_dir), "kiosk", "list", data_dir=data_dir)
    assert too_open(data_dir) == []


def test_a_rectorat_store_given_by_its_url_is_made_private_not_its_folder(tmp_path):
    from kiosk.rectorat.store import open_store, sqlite_url

    shared = tmp_path / "partage"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    path = shared / "rectorat.sqlite3"
    open_store(sqlite_url(path)).close()
    path.chmod(0o644)
    store = open_store(sqlite_url(path))
    store.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(shared.stat().st_mode) == 0o755  # the operator's folder
