"""A private CUPS scheduler for the printing tests, with cups-pdf queues.

:func:`cups_server` starts ``cupsd -f`` with its own ServerRoot, spool, cache, state
and logs in a fresh folder under /tmp, listening on 127.0.0.1 at a free port and on a
socket of its own, so it neither sees nor touches the machine's CUPS. It runs as root
(the cups-pdf backend refuses anything else), with an open policy limited to local
connections and to the lifetime of the tests.

cups-pdf reads its settings only from /etc/cups (the path is compiled in), but a
device URI ``cups-pdf:/NAME`` makes it read ``/etc/cups/cups-pdf-NAME.conf`` instead
of the system's ``cups-pdf.conf``. So the server writes one such file, named after
this process, pointing the output, spool and log into its folder, and deletes it when
it stops (and deletes those of dead test runs when it starts). Nothing else outside
its folder is written, and /etc/cups/cups-pdf.conf is never changed.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.requirements import need_program

CUPS_PDF_BACKEND = Path("/usr/lib/cups/backend/cups-pdf")
CUPS_PDF_PPD = Path("/usr/share/ppd/cups-pdf/CUPS-PDF_opt.ppd")
CUPS_ETC = Path("/etc/cups")
INSTANCE_PREFIX = "kiosktest"
_SBIN = "/usr/local/sbin:/usr/sbin:/sbin"
_ENV = dict(os.environ, LC_ALL="C", LANG="C")


def need_cups() -> dict[str, str]:
    """The CUPS programs the tests run, by name; skips when a package is missing."""
    programs = {
        "cupsd": "cups-daemon",
        "lpadmin": "cups-client",
        "cupsenable": "cups-client",
        "cupsdisable": "cups-client",
        "lp": "cups-client",
        "lpstat": "cups-client",
        "cancel": "cups-client",
    }
    found = {}
    for program, package in programs.items():
        # cupsd and lpadmin live in sbin, which a non-login PATH may lack.
        located = shutil.which(program) or shutil.which(program, path=_SBIN)
        found[program] = need_program(located or program, package)
    if not (CUPS_PDF_BACKEND.exists() and CUPS_PDF_PPD.exists()):
        pytest.skip("needs the cups-pdf backend and PPD (Debian package printer-driver-cups-pdf)")
    if os.geteuid() != 0:
        pytest.skip("needs root: the cups-pdf backend runs only as root (CI runs as root)")
    return found


@dataclass
class CupsServer:
    root: Path
    port: int
    process: subprocess.Popen
    programs: dict[str, str]
    instance: str

    @property
    def server(self) -> str:
        """For ``lp -h`` / ``CupsPrinter(server=...)``."""
        return f"127.0.0.1:{self.port}"

    @property
    def socket_path(self) -> Path:
        return self.root / "state" / "cups.sock"

    @property
    def output(self) -> Path:
        """Where cups-pdf writes the PDFs it « prints »."""
        return self.root / "out"

    def run(self, program: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """A CUPS command against this server (``-h`` added), in the C locale."""
        command = [self.programs.get(program, program), "-h", self.server, *args]
        result = subprocess.run(
            command, capture_output=True, text=True, env=_ENV, timeout=30, check=False
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{' '.join(command)} failed: {result.stdout}{result.stderr}\n{self.log_tail()}"
            )
        return result

    def add_pdf_queue(self, name: str, *options: str) -> str:
        """A cups-pdf queue, enabled and accepting, whose files are named from the job
        title (``TitlePref=1``); ``options`` are more ``-o`` settings."""
        extra = [arg for option in options for arg in ("-o", option)]
        self.run(
            "lpadmin", "-p", name, "-E", "-v", f"cups-pdf:/{self.instance}",
            "-P", str(CUPS_PDF_PPD), "-o", "TitlePref=1", *extra,
        )  # fmt: skip
        return name

    def active_jobs(self, queue: str) -> list[str]:
        listing = self.run("lpstat", "-W", "not-completed", "-o", queue).stdout
        return [line.split()[0] for line in listing.splitlines() if line.strip()]

    def output_for(self, job_id: str) -> list[Path]:
        """The files cups-pdf wrote for ``job_id`` (it suffixes names with ``-job_N``)."""
        number = job_id.rsplit("-", 1)[1]
        return sorted(self.output.glob(f"*-job_{number}.pdf"))

    def log_tail(self, lines: int = 30) -> str:
        log = self.root / "log" / "error_log"
        if not log.exists():
            return ""
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


_SERVERS = itertools.count(1)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _remove_stale_instances() -> None:
    """Delete the cups-pdf configurations left by test runs that were killed."""
    for stale in CUPS_ETC.glob(f"cups-pdf-{INSTANCE_PREFIX}-*.conf"):
        pid = (
            stale.name.removeprefix(f"cups-pdf-{INSTANCE_PREFIX}-")
            .removesuffix(".conf")
            .split("-")[0]
        )
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            stale.unlink(missing_ok=True)


def _write_configuration(root: Path, port: int) -> None:
    (root / "cups-files.conf").write_text(
        f"""ServerRoot {root}
RequestRoot {root}/spool
CacheDir {root}/cache
StateDir {root}/state
ErrorLog {root}/log/error_log
AccessLog {root}/log/access_log
PageLog {root}/log/page_log
User lp
Group lp
SystemGroup root
FileDevice No
"""
    )
    # No authentication: only this machine can connect, and only while the tests run.
    (root / "cupsd.conf").write_text(
        f"""Listen 127.0.0.1:{port}
Listen {root}/state/cups.sock
LogLevel info
Browsing No
WebInterface No
DefaultAuthType None
<Location />
  Order allow,deny
  Allow 127.0.0.1
</Location>
<Policy default>
  JobPrivateAccess all
  JobPrivateValues none
  SubscriptionPrivateAccess all
  SubscriptionPrivateValues none
  <Limit All>
    Order deny,allow
  </Limit>
</Policy>
"""
    )


@contextlib.contextmanager
def cups_server(programs: dict[str, str]) -> Iterator[CupsServer]:
    """A running private cupsd; stopped and cleaned up on exit."""
    root = Path(tempfile.mkdtemp(prefix="kiosk-cups-"))
    # The filters run as lp and must reach the spool inside this folder.
    root.chmod(0o755)
    for folder in ("log", "out", "state"):
        (root / folder).mkdir()
    # One per server, not per process: a test may run a second server beside the session's.
    instance = f"{INSTANCE_PREFIX}-{os.getpid()}-{next(_SERVERS)}"
    instance_conf = CUPS_ETC / f"cups-pdf-{instance}.conf"
    process = None
    try:
        _remove_stale_instances()
        instance_conf.write_text(
            f"""# Written by the kiosk's printing tests (tests/support/cups_server.py);
# deleted when they end.
Out {root}/out
AnonDirName {root}/out
Spool {root}/cups-pdf-spool
GSTmp {root}/cups-pdf-spool
Log {root}/log
Grp lp
DecodeHexStrings 1
"""
        )
        for _attempt in range(3):
            port = _free_port()
            _write_configuration(root, port)
            with open(root / "log" / "cupsd.out", "ab") as out:
                process = subprocess.Popen(
                    [
                        programs["cupsd"],
                        "-f",
                        "-c",
                        str(root / "cupsd.conf"),
                        "-s",
                        str(root / "cups-files.conf"),
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    env=_ENV,
                )
            server = CupsServer(root, port, process, programs, instance)
            if _wait_until_running(server):
                break
            _stop(process)
        else:
            out = (root / "log" / "cupsd.out").read_text()
            raise RuntimeError(f"cupsd did not start:\n{out}\n{server.log_tail()}")
        yield server
    finally:
        if process is not None:
            _stop(process)
        instance_conf.unlink(missing_ok=True)
        shutil.rmtree(root, ignore_errors=True)


def _wait_until_running(server: CupsServer, limit: float = 15.0) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            return False
        if "scheduler is running" in server.run("lpstat", "-r", check=False).stdout:
            return True
        time.sleep(0.1)
    return False


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
