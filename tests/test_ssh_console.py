"""The staff console over SSH: the shipped sshd block lets staff reach it, and nothing else.

A real OpenSSH server (``tests/support/ssh_server.py``) runs
``deploy/sshd_config.d/kiosk-staff.conf`` with its ForceCommand pointed at this checkout's
console on a store of the test's own. A real ``ssh`` in a tmux pane of 80×24 reaches the
console and logs in; a command, SFTP, scp and every kind of forwarding are tried and must
be refused.

Each refusal is also tried on the same server without the block (the ``no-block``
variant of the ``server`` fixture), where it must go through: so a refusal here is the
block's doing, and a test that cannot reach the server cannot pass by accident.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.requirements import need_program
from tests.support.ssh_server import (
    HOST,
    ROOT,
    SshServer,
    need_openssh,
    need_terminal_from_sshd,
    sshd_server,
)
from tests.support.terminal import Pane, field, state

STAFF = "accueil"
STAFF_PASSWORD = "horloge cuivrée 73 marée"
TITLE = "Console du personnel"
HOME = "Recherche et suivi"  # the title of the console's home, once logged in
PROHIBITED = "administratively prohibited"
# Generous: Python and Textual start on a loaded 2-core machine, behind an SSH handshake.
START = 60.0


# -- the servers -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def openssh():
    return need_openssh()


@pytest.fixture(scope="module")
def kiosk_config(tmp_path_factory) -> Path:
    """A kiosk configuration and its store, with a staff account made as staff make one.

    sshd clears the environment, so the console finds its store through ``--config``,
    as the shipped ForceCommand does.
    """
    folder = tmp_path_factory.mktemp("ssh-console")
    config = folder / "kiosk.toml"
    config.write_text(f'data_dir = {json.dumps(str(folder / "data"))}\nsession = "demo"\n')
    done = subprocess.run(
        [sys.executable, "kiosk.py", "--config", str(config),
         "staff-account", "add", STAFF, "--role", "reception", "--password-stdin"],
        input=STAFF_PASSWORD + "\n", capture_output=True, text=True, cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return config


@pytest.fixture(scope="module")
def sshd(openssh, kiosk_config) -> Iterator[SshServer]:
    """sshd with the shipped staff block, forcing this checkout's console."""
    console = [sys.executable, str(ROOT / "kiosk.py"), "--config", str(kiosk_config), "staff"]
    with sshd_server(openssh, console) as server:
        yield server


@pytest.fixture(scope="module")
def open_sshd(openssh) -> Iterator[SshServer]:
    """The same server without the staff block: the control."""
    with sshd_server(openssh, [], restricted=False) as server:
        yield server


@pytest.fixture(params=["staff-block", "no-block"])
def server(request) -> SshServer:
    """Each refusal test runs against the block, then against the control."""
    return request.getfixturevalue("sshd" if request.param == "staff-block" else "open_sshd")


def blocked(server: SshServer) -> bool:
    return server.restricted


# -- what the tests connect to -----------------------------------------------------------------


class Listener:
    """A TCP port or a Unix socket on this machine that counts the connections it gets
    and answers each with the line it read, prefixed by « listener: ».

    ``connections`` counts them all, ``lines`` those that brought a line: waiting for a
    forwarded port to open connects to it, and that probe, forwarded, brings none.
    """

    def __init__(self, unix_path: Path | None = None) -> None:
        family = socket.AF_UNIX if unix_path else socket.AF_INET
        self.socket = socket.socket(family, socket.SOCK_STREAM)
        self.socket.bind(str(unix_path) if unix_path else (HOST, 0))
        self.socket.listen(8)
        self.target = str(unix_path) if unix_path else f"{HOST}:{self.socket.getsockname()[1]}"
        self.connections = 0
        self.lines = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            if select.select([self.socket], [], [], 0.1)[0]:
                self._answer()

    def _answer(self) -> None:
        connection, _ = self.socket.accept()
        self.connections += 1
        with connection:
            connection.settimeout(30)
            with contextlib.suppress(OSError):
                line = connection.makefile("rb").readline()
                if line:
                    self.lines += 1
                    connection.sendall(b"listener: " + line)

    def __enter__(self) -> Listener:
        return self

    def __exit__(self, *_) -> None:
        self.close()

    def close(self) -> None:
        """Stops serving. The connections the kernel accepted but the thread had not yet
        taken are counted too, so none is missed."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._thread.join(timeout=10)
        self.socket.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            while True:
                self.socket.accept()[0].close()
                self.connections += 1
        self.socket.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def run(command: list[str], stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=90)


def ping(port: int) -> bytes:
    """A line through a forwarded port, and what came back: nothing when ssh, refused
    the channel, closed the connection (or reset it, before reading the line)."""
    with socket.create_connection((HOST, port), timeout=30) as connection:
        try:
            connection.sendall(b"ping\n")
            return connection.makefile("rb").read()
        except ConnectionResetError:
            return b""


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = 30.0) -> bool:
    """Until ``port`` accepts connections (True) or ``process`` ends (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=1):
            return True
        time.sleep(0.05)
    raise AssertionError(
        f"after {timeout} s, nothing listens on {port} and {process.args} still runs"
    )


class Client:
    """A client that stays connected (``ssh -N``) until the ``with`` block ends; then
    ``errors`` is what it wrote on stderr."""

    def __init__(self, command: list[str]) -> None:
        self.process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        self.errors = ""

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.errors = self.process.communicate(timeout=10)[1]
        except subprocess.TimeoutExpired:
            # A client still waiting on a refused channel may sit through SIGTERM; what
            # it wrote so far is what the test reads.
            self.process.kill()
            self.errors = self.process.communicate(timeout=30)[1]


# -- the console, in a terminal ----------------------------------------------------------------


class SshPane(Pane):
    """The test_terminal pane, running an ssh client instead of the kiosk."""

    def run(self, command: list[str]) -> None:
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("KIOSK_", "TEXTUAL", "TMUX"))
        }
        # Several arguments: tmux runs ssh itself, no shell in between.
        self.tmux("new-session", "-d", "-s", "kiosk", "-x", "80", "-y", "24", *command, env=env)
        self.started = [self.pane_pid()]
        self.socket_path = Path(self.tmux("display-message", "-p", "#{socket_path}").strip())

    def stop(self) -> None:
        """Once: a test may end the client itself, and the fixture ends it again."""
        if not getattr(self, "stopped", False):
            self.stopped = True
            super().stop()


@pytest.fixture
def pane(tmp_path) -> Iterator[SshPane]:
    """A private tmux server, killed at the end with the ssh client in it."""
    need_terminal_from_sshd()
    pane = SshPane(
        need_program("tmux", "tmux"), f"kiosk-ssh-{uuid.uuid4().hex[:12]}", tmp_path / "unused"
    )
    yield pane
    pane.stop()


def wait_for_console(pane: SshPane) -> str:
    """Until the console's title is on the screen; fails at once if ssh has ended."""
    screen = pane.wait_for(
        lambda s: TITLE in s or "Pane is dead" in s, f"« {TITLE} »", timeout=START
    )
    assert TITLE in screen, f"ssh ended before the console showed:\n{screen}"
    return screen


def console_processes(server: SshServer) -> list[int]:
    """The consoles that sshd runs: its descendants whose command line is the console's."""
    found = []
    for pid in server.descendants():
        with contextlib.suppress(OSError):
            arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if b"staff" in arguments and any(a.endswith(b"kiosk.py") for a in arguments):
                found.append(pid)
    return found


def audit_trail(config: Path) -> list[tuple[str, str]]:
    """(staff, action) of the store's audit trail, oldest first: what the console recorded."""
    data_dir = Path(tomllib.loads(config.read_text())["data_dir"])
    with contextlib.closing(sqlite3.connect(data_dir / "kiosk.sqlite3")) as db:
        return db.execute(
            "SELECT staff, action FROM staff_audit ORDER BY created_at, rowid"
        ).fetchall()


def exit_status(pid: int, pane: SshPane) -> int:
    """The exit status of the pane's process, ended: from the kernel while it is a zombie
    (/proc's exit_code), from tmux once tmux has reaped it."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        fields = []
    if fields and fields[0] == "Z":
        return int(fields[49]) >> 8  # field 52, exit_code, as waitpid gives it
    wait_until(pane.dead, "tmux to see its pane's end", START)
    return int(pane.tmux("display-message", "-p", "-t", "kiosk", "#{pane_dead_status}").strip())


def wait_until(condition, what: str, timeout: float) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"after {timeout} s, still not {what}"
        time.sleep(0.05)


def test_a_staff_member_reaches_the_console_over_ssh_logs_in_and_out(sshd, pane, kiosk_config):
    name, password = "Identifiant", "Mot de passe"
    pane.run(sshd.ssh("-tt"))
    wait_for_console(pane)
    assert console_processes(sshd), "the console on the screen is not the one sshd runs"

    # Each wait below is for what the screen must show before the next key; its limit is
    # START, not a few seconds: a console behind SSH on a loaded machine draws late.
    pane.wait_for_focus(name, (password,), timeout=START)
    pane.text(STAFF)
    pane.wait_for(lambda s: field(s, name) == STAFF, "the staff name typed", timeout=START)
    pane.keys("Tab")
    pane.wait_for_focus(password, (name,), timeout=START)
    pane.text(STAFF_PASSWORD)
    pane.wait_for(
        lambda s: field(s, password) == "•" * len(STAFF_PASSWORD),
        "the password typed, masked",
        timeout=START,
    )
    pane.keys("Enter")
    # The home, with who is at the console and on which store.
    screen = pane.wait_for(lambda s: HOME in s, f"the console's home « {HOME} »", timeout=START)
    assert f"{STAFF} · accueil · registre de cette borne" in screen
    assert (STAFF, "login") in audit_trail(kiosk_config)

    # F10 logs out, then F10 on the login leaves the console, and with it the SSH
    # session: there is no shell behind the console.
    pane.keys("F10")
    pane.wait_for(lambda s: "Vous êtes déconnecté." in s, "the logout", timeout=START)
    # The logout is recorded by a worker once the login form is back: the console is left
    # only when it has been (leaving earlier could end the console in the middle of it, a
    # race that a loaded machine loses), not at the first sight of the form.
    wait_until(lambda: (STAFF, "logout") in audit_trail(kiosk_config), "the logout recorded", START)
    pane.keys("F10")
    # ssh ending is the condition, not tmux's « Pane is dead »: tmux, with no client
    # attached, may reap its pane's process late, and draws that line only then (ssh had
    # printed « Connection … closed. » long before, in a loaded run that waited 60 s).
    ssh = pane.started[0]
    wait_until(lambda: state(ssh) in ("Z", "gone"), "ssh ending with the console", START)
    assert exit_status(ssh, pane) == 0


def test_a_command_given_with_a_terminal_gets_the_console_instead(sshd, pane, tmp_path):
    marker = tmp_path / "shell-ran"
    pane.run(sshd.ssh("-tt", command=f"echo SHELL-RAN; touch {marker}"))
    screen = wait_for_console(pane)
    assert "SHELL-RAN" not in screen
    assert not marker.exists()


def test_closing_the_connection_ends_the_console(sshd, pane):
    """A dropped connection must not leave a console running on the store."""
    pane.run(sshd.ssh("-tt"))
    wait_for_console(pane)
    consoles = console_processes(sshd)
    assert consoles
    pane.stop()  # kills the ssh client: the connection ends
    wait_until(
        lambda: not set(consoles) & set(console_processes(sshd)),
        "the console ended with its connection",
        START,
    )


# -- a command without a terminal ----------------------------------------------------------------


def test_a_shell_command_does_not_run(server, tmp_path):
    marker = tmp_path / "shell-ran"
    done = run(server.ssh(command=f"echo SHELL-RAN; id; touch {marker}"))
    output = done.stdout + done.stderr
    if blocked(server):
        assert "SHELL-RAN" not in output and "uid=" not in output, output
        assert not marker.exists()
        # The console ran instead, found no terminal, and said so.
        assert done.returncode == 2, (done.returncode, output)
        assert "la console du personnel s'ouvre dans un terminal" in done.stderr, done.stderr
    else:
        assert done.returncode == 0 and "SHELL-RAN" in done.stdout and marker.exists(), output


# -- files -----------------------------------------------------------------------------------------


@pytest.fixture
def files(tmp_path) -> tuple[Path, Path, Path]:
    """A folder with a file on « the server » to list or fetch, a local file to send,
    and where it would land."""
    remote = tmp_path / "remote"
    remote.mkdir()
    (remote / "canary-file.txt").write_text("on the server\n")
    local = tmp_path / "upload.txt"
    local.write_text("from the client\n")
    return remote, local, remote / "uploaded.txt"


def test_sftp_is_refused(server, files):
    remote, local, landing = files
    done = run(server.sftp("-b", "-"), stdin=f"ls {remote}\nput {local} {landing}\n")
    if blocked(server):
        assert done.returncode != 0
        assert "canary-file" not in done.stdout
        assert not landing.exists()
    else:
        assert done.returncode == 0 and "canary-file" in done.stdout and landing.exists(), (
            done.stderr
        )


@pytest.mark.parametrize("protocol", [[], ["-O"]], ids=["scp-over-sftp", "scp-legacy"])
def test_scp_is_refused_both_ways(server, files, tmp_path, protocol):
    remote, local, landing = files
    fetched = tmp_path / "fetched.txt"
    download = run(server.scp(*protocol, f"REMOTE:{remote / 'canary-file.txt'}", str(fetched)))
    upload = run(server.scp(*protocol, str(local), f"REMOTE:{landing}"))
    if blocked(server):
        assert download.returncode != 0 and not fetched.exists()
        assert upload.returncode != 0 and not landing.exists()
    else:
        assert fetched.read_text() == "on the server\n", download.stderr
        assert landing.read_text() == "from the client\n", upload.stderr


# -- forwarding ------------------------------------------------------------------------------------


def test_stdio_forwarding_is_refused(server):
    """``ssh -W``: a direct-tcpip channel, as -L and -D open."""
    with Listener() as listener:
        done = run(server.ssh("-W", listener.target), stdin="ping\n")
    if blocked(server):
        assert done.returncode == 255 and PROHIBITED in done.stderr, done.stderr
        assert listener.connections == 0
    else:
        assert done.stdout == "listener: ping\n" and listener.lines == 1, done.stderr


@pytest.mark.parametrize("to", ["tcp", "unix"])
def test_local_forwarding_is_refused(server, tmp_path, to):
    """``ssh -L``, to a TCP port (direct-tcpip, as -D too) or to a Unix socket
    (direct-streamlocal, which ssh reports only as « connect failed »: sshd's log says why)."""
    port = free_port()
    mark = server.log_size()
    with Listener(tmp_path / "listener.sock" if to == "unix" else None) as listener:
        forward = f"{HOST}:{port}:{listener.target}"
        with Client(server.ssh("-N", "-o", "ExitOnForwardFailure=yes", "-L", forward)) as ssh:
            assert wait_for_port(port, ssh.process), "ssh did not listen for -L"
            answer = ping(port)
    if blocked(server):
        assert answer == b"" and listener.connections == 0, answer
        refusal = (
            "refused streamlocal port forward" if to == "unix" else "refused local port forward"
        )
        assert server.wait_for_log(refusal, mark), server.log_tail()
        if to == "tcp":
            assert PROHIBITED in ssh.errors, ssh.errors
    else:
        assert answer == b"listener: ping\n" and listener.lines == 1, ssh.errors


def test_remote_forwarding_is_refused(server):
    """``ssh -R``: sshd would listen on the server's side for the client."""
    port = free_port()
    answer = None
    with Listener() as listener:
        forward = f"{HOST}:{port}:{listener.target}"
        with Client(server.ssh("-N", "-o", "ExitOnForwardFailure=yes", "-R", forward)) as ssh:
            listening = wait_for_port(port, ssh.process)
            if listening:
                answer = ping(port)
    if blocked(server):
        assert not listening and ssh.process.returncode == 255, ssh.errors
        assert "remote port forwarding failed" in ssh.errors, ssh.errors
        assert listener.connections == 0
    else:
        assert listening and answer == b"listener: ping\n" and listener.lines == 1, ssh.errors
