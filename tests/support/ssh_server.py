"""A private OpenSSH server for the staff console tests, with the shipped restrictions.

:func:`sshd_server` starts the real ``/usr/sbin/sshd -D -e`` in a fresh folder under
/tmp: it listens on 127.0.0.1 at a free port with a host key made for it, and lets in
one user, the one running the tests, with a client key made for it. Its global part is
what Debian's ``sshd_config`` allows (forwarding, X11, an sftp subsystem); with
``restricted=True`` it includes ``deploy/sshd_config.d/kiosk-staff.conf`` as Debian
includes ``sshd_config.d/*.conf``, so what the tests refuse is refused by the very block
that the docs tell administrators to install. Without it, the same server lets
everything through: the control that shows the tests can fail.

The block matches ``Group kiosk-staff``; a test cannot create Unix groups on any
machine, so here it matches ``User <the current user>``. Its ForceCommand runs this
checkout's console (``python kiosk.py --config … staff``) on a store of the test's own,
and its AuthorizedKeysFile is the test's. Every other line is the shipped one.

As root (CI), sshd needs its privilege-separation folder ``/run/sshd``, which Debian's
service creates when it starts and a fresh machine may lack: the server creates it. As
another user, sshd runs unprivileged on the high port and lets in only that user.
The server, and every process left under it (sessions, consoles), is ended at the end.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.requirements import need_program

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "deploy" / "sshd_config.d" / "kiosk-staff.conf"
SSHD = "/usr/sbin/sshd"  # sshd re-executes itself, so it must be started by its absolute path
PRIVSEP_DIR = Path("/run/sshd")
HOST = "127.0.0.1"


@dataclass(frozen=True)
class OpenSSH:
    """The programs of OpenSSH that the tests run."""

    sshd: str
    ssh: str
    sftp: str
    scp: str
    keygen: str


def need_openssh() -> OpenSSH:
    """OpenSSH's server and client; skips when a package is missing."""
    return OpenSSH(
        sshd=need_program(SSHD, "openssh-server"),
        ssh=need_program("ssh", "openssh-client"),
        sftp=need_program("sftp", "openssh-client"),
        scp=need_program("scp", "openssh-client"),
        keygen=need_program("ssh-keygen", "openssh-client"),
    )


def need_terminal_from_sshd() -> None:
    """Skips when sshd could not hand the current user a terminal.

    Before a session gets its pty, sshd gives it to the user and to the group ``tty``.
    Only root may chown; an unprivileged sshd gets by only when the kernel already made
    the pty so, that is when /dev/pts is mounted with ``gid=5`` as on a usual Debian
    system (some containers mount it without).
    """
    if os.geteuid() == 0:
        return
    try:
        tty_gid = grp.getgrnam("tty").gr_gid
    except KeyError:
        return  # no tty group: sshd gives the pty to the user's own group, which it may
    master, slave = os.openpty()
    try:
        given = os.fstat(slave).st_gid
    finally:
        os.close(master)
        os.close(slave)
    if given != tty_gid:
        pytest.skip(
            "an unprivileged sshd cannot give a terminal here: /dev/pts is mounted without "
            "gid=5, and only root may chown a pty to the tty group (CI runs as root)"
        )


def staff_block(user: str, console: list[str], authorized_keys: Path) -> str:
    """The shipped block, matching ``user`` instead of the group, running ``console``.

    Each replaced line must be there exactly once: a change to the shipped file that
    this does not follow fails here rather than testing something else.
    """
    text = EXAMPLE.read_text()
    for pattern, line in (
        (r"^()Match Group kiosk-staff$", f"Match User {user}"),
        # sshd runs it with the user's shell (« $SHELL -c »): quoted for a POSIX shell.
        (r"^(\s*)ForceCommand .*$", f"ForceCommand {shlex.join(console)}"),
        (r"^(\s*)AuthorizedKeysFile .*$", f"AuthorizedKeysFile {authorized_keys}"),
    ):
        text, count = re.subn(
            pattern, lambda found, line=line: found.group(1) + line, text, flags=re.M
        )
        assert count == 1, f"{EXAMPLE} should have one line matching {pattern!r}, has {count}"
    return text


@dataclass
class SshServer:
    """A running sshd, and how to reach it as its one user."""

    root: Path
    port: int
    user: str
    process: subprocess.Popen
    programs: OpenSSH
    restricted: bool  # whether the staff block is in

    @property
    def key(self) -> Path:
        return self.root / "client_ed25519"

    @property
    def log(self) -> Path:
        return self.root / "sshd.log"

    def client_options(self) -> list[str]:
        """Options common to ssh, sftp and scp: this key only, this host key only, no
        user or system configuration, never a question."""
        return [
            "-F", "/dev/null",
            "-i", str(self.key),
            "-o", "IdentitiesOnly=yes",
            "-o", "IdentityAgent=none",
            "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=yes",
            "-o", f"UserKnownHostsFile={self.root / 'known_hosts'}",
            "-o", "ConnectTimeout=30",
        ]  # fmt: skip

    @property
    def destination(self) -> str:
        return f"{self.user}@{HOST}"

    def ssh(self, *options: str, command: str | None = None) -> list[str]:
        """``ssh`` to the server with ``options``, asking to run ``command`` if given."""
        return [self.programs.ssh, *self.client_options(), "-p", str(self.port), *options,
                self.destination, *([command] if command is not None else [])]  # fmt: skip

    def sftp(self, *args: str) -> list[str]:
        return [
            self.programs.sftp,
            *self.client_options(),
            "-P",
            str(self.port),
            *args,
            self.destination,
        ]

    def scp(self, *args: str) -> list[str]:
        """``scp`` with ``args``; ``REMOTE:`` in an argument stands for the server."""
        args = tuple(a.replace("REMOTE:", f"{self.destination}:") for a in args)
        return [self.programs.scp, *self.client_options(), "-P", str(self.port), *args]

    def log_size(self) -> int:
        """A mark in sshd's log, for :meth:`wait_for_log`."""
        return self.log.stat().st_size

    def wait_for_log(self, text: str, since: int, timeout: float = 30.0) -> bool:
        """Whether sshd logs ``text`` after the mark ``since``: its per-connection
        processes write their lines through the listener, a little after the fact."""
        deadline = time.monotonic() + timeout
        while True:
            with self.log.open("rb") as log:
                log.seek(since)
                if text in log.read().decode(errors="replace"):
                    return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)

    def log_tail(self, lines: int = 40) -> str:
        return (
            "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
            if self.log.exists()
            else ""
        )

    def descendants(self) -> list[int]:
        """The processes under sshd: per-connection servers, shells, consoles."""
        return _descendants(self.process.pid)


def current_user() -> pwd.struct_passwd:
    return pwd.getpwuid(os.geteuid())


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def _global_config(root: Path, port: int, include: Path | None) -> str:
    """sshd's global part: the test's own, then Debian's permissive defaults."""
    lines = [
        # First, as in Debian's sshd_config: the drop-ins' settings win.
        f"Include {include}/*.conf" if include else "# no staff block: the control server",
        f"ListenAddress {HOST}:{port}",
        "AddressFamily inet",
        f"HostKey {root / 'host_ed25519'}",
        f"PidFile {root / 'sshd.pid'}",
        f"AuthorizedKeysFile {root / 'authorized_keys'}",
        # The temp folders' owners and modes are not an administrator's.
        "StrictModes no",
        # No PAM: a test's sshd must not depend on the machine's PAM stack.
        "UsePAM no",
        # CI runs as root: let root in by key, as the tests need, never by password.
        "PermitRootLogin prohibit-password",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "LogLevel VERBOSE",
        # Everything open (Debian's defaults, and tunnels too): the staff block must
        # close it for staff.
        "X11Forwarding yes",
        "AllowTcpForwarding yes",
        "AllowStreamLocalForwarding yes",
        "AllowAgentForwarding yes",
        "PermitTunnel yes",
        "Subsystem sftp internal-sftp",
    ]
    return "\n".join(lines) + "\n"


def _keygen(programs: OpenSSH, path: Path) -> str:
    subprocess.run(
        [programs.keygen, "-q", "-t", "ed25519", "-N", "", "-C", "kiosk-test", "-f", str(path)],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    return path.with_suffix(".pub").read_text().strip()


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _stop(process: subprocess.Popen) -> None:
    """End sshd and, by their ids, every process it left: sessions outlive the listener."""
    pids = _descendants(process.pid)
    process.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in [p for p in pids if _alive(p)] + ([process.pid] if process.poll() is None else []):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)


def _start(programs: OpenSSH, config: Path, log: Path, port: int) -> subprocess.Popen | None:
    """sshd in the foreground, logging to ``log``; None when the port was taken meanwhile."""
    with log.open("ab") as output:
        process = subprocess.Popen(
            [programs.sshd, "-D", "-e", "-f", str(config)],
            stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"},
        )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if f"Server listening on {HOST} port {port}" in log.read_text(errors="replace"):
            return process
        if process.poll() is not None:
            if "Address already in use" in log.read_text(errors="replace"):
                return None
            raise RuntimeError(
                f"sshd ended with {process.returncode}:\n{log.read_text(errors='replace')}"
            )
        time.sleep(0.05)
    _stop(process)
    raise RuntimeError(f"sshd did not listen within 30 s:\n{log.read_text(errors='replace')}")


@contextlib.contextmanager
def sshd_server(
    programs: OpenSSH, console: list[str], *, restricted: bool = True
) -> Iterator[SshServer]:
    """A running sshd letting the current user in by key; stopped and removed on exit.

    ``console`` is the command the staff block forces (restricted servers only).
    """
    user = current_user().pw_name
    root = Path(tempfile.mkdtemp(prefix="kiosk-sshd-"))
    process = None
    try:
        host_key = _keygen(programs, root / "host_ed25519")
        (root / "authorized_keys").write_text(_keygen(programs, root / "client_ed25519") + "\n")
        include = None
        if restricted:
            include = root / "sshd_config.d"
            include.mkdir()
            (include / EXAMPLE.name).write_text(
                staff_block(user, console, root / "authorized_keys")
            )
        if os.geteuid() == 0:
            # Debian's service makes it at each start (RuntimeDirectory); sshd chroots its
            # pre-authentication child there. Left in place: it is the service's, not ours.
            PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)
        config = root / "sshd_config"
        for _attempt in range(3):
            port = _free_port()
            config.write_text(_global_config(root, port, include))
            (root / "known_hosts").write_text(f"[{HOST}]:{port} {host_key}\n")
            process = _start(programs, config, root / "sshd.log", port)
            if process is not None:
                break
        if process is None:
            raise RuntimeError(
                f"sshd found no free port:\n{(root / 'sshd.log').read_text(errors='replace')}"
            )
        yield SshServer(root, port, user, process, programs, restricted)
    finally:
        if process is not None:
            _stop(process)
        shutil.rmtree(root, ignore_errors=True)
