"""Printing a PDF: on a CUPS queue through ``lp``/``lpstat``/``cancel``, or, with no
printer, into the data dir's print folder.

Printers are synchronous and meant for a worker thread: :meth:`CupsPrinter.print`
blocks until CUPS says the job is completed, and raises :class:`PrintProblem`, whose
``key`` names the message to show (``print.no_queue``, ``print.stopped``,
``print.failed``, ``print.timeout``) and whose ``detail`` is for the logs.

CUPS commands run without a shell, with a timeout and in the C locale (their messages
are parsed). ``lpstat`` tells whether a job is still active but not how it ended (its
``Alerts`` are unreliable in CUPS 2.4), so the final state of a job that has left the
active list is read with one IPP Get-Job-Attributes request to the same server.
"""

from __future__ import annotations

import getpass
import http.client
import logging
import os
import re
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from kiosk.runtime.config import PrintConfig

log = logging.getLogger(__name__)

PROBLEM_KEYS = ("print.no_queue", "print.stopped", "print.failed", "print.timeout")
STATUSES = ("idle", "printing", "stopped", "missing")

_COMMAND_TIMEOUT = 15.0  # one lp/lpstat/cancel call; a hung server ends as print.timeout
_LAST_LOOK = 3.0  # the least time one command is given, even past the deadline
_TITLE_MAX_BYTES = 200  # IPP job-name is at most 255 octets
_NAME_MAX_BYTES = 120  # file names in the print folder, before " (2).pdf"
_REQUEST_ID = re.compile(r"request id is (\S+)-(\d+)\b")
_PRINTER_LINE = re.compile(r"^printer (\S+) (is idle|now printing|disabled)")

# IPP job-state values (RFC 8011, 5.3.7).
_JOB_CANCELED, _JOB_ABORTED, _JOB_COMPLETED = 7, 8, 9


class PrintProblem(Exception):
    """Printing did not happen; ``key`` names the catalogue message, ``detail`` says why."""

    def __init__(self, key: str, detail: str = "") -> None:
        if key not in PROBLEM_KEYS:
            raise ValueError(f"unknown print problem: {key!r}")
        super().__init__(f"{key}: {detail}" if detail else key)
        self.key = key
        self.detail = detail


@dataclass(frozen=True)
class PrintJob:
    """A printed document: the CUPS job id (``kiosk-pdf-12``) or, for the print
    folder, where the copy lies; ``printer`` names the queue or the folder."""

    job_id: str | None
    path: Path | None
    printer: str


def clean_title(title: str, fallback: str = "document") -> str:
    """``title`` without control or format characters (newlines become spaces),
    NFC, single-spaced, at most ``_TITLE_MAX_BYTES`` in UTF-8."""
    text = unicodedata.normalize("NFC", str(title))
    kept = []
    for char in text:
        category = unicodedata.category(char)
        if char.isspace():
            kept.append(" ")
        elif not category.startswith("C"):
            kept.append(char)
    cleaned = " ".join("".join(kept).split())
    return _truncate_utf8(cleaned, _TITLE_MAX_BYTES).strip() or fallback


def _truncate_utf8(text: str, limit: int) -> str:
    return text.encode("utf-8")[:limit].decode("utf-8", errors="ignore")


class CupsPrinter:
    """A CUPS queue, driven by the ``lp``, ``lpstat`` and ``cancel`` commands.

    ``server`` (``host:port`` or a socket path) is passed with ``-h``; without it the
    commands find the server as usual (``CUPS_SERVER``, ``client.conf``, the local one).
    """

    def __init__(
        self, queue: str, *, server: str | None = None, timeout: float = 120.0, poll: float = 0.5
    ) -> None:
        if not queue or any(c.isspace() or c in "/#" or not c.isprintable() for c in queue):
            raise ValueError(f"unusable CUPS queue name: {queue!r}")
        self.queue = queue
        self.server = server or None
        self.timeout = float(timeout)
        self.poll = float(poll)

    def __repr__(self) -> str:
        return f"CupsPrinter({self.queue!r}, server={self.server!r})"

    # --- what the kiosk calls -------------------------------------------------------

    def print(self, path: Path, title: str, copies: int = 1) -> PrintJob:
        """Submit ``path`` and wait until CUPS has completed the job."""
        if not isinstance(copies, int) or not 1 <= copies <= 100:
            raise ValueError(f"copies must be between 1 and 100, not {copies!r}")
        deadline = time.monotonic() + self.timeout
        self._check_queue(deadline)
        job_id = self._submit(Path(path), clean_title(title), copies, deadline)
        try:
            self._wait(job_id, deadline)
        except PrintProblem as problem:
            if problem.key in ("print.stopped", "print.timeout"):
                # A stopped queue keeps its jobs: without this one it would print
                # whenever the queue is restarted, long after the candidate has left.
                self._cancel(job_id)
            raise
        return PrintJob(job_id=job_id, path=None, printer=self.queue)

    def status(self) -> str:
        """``idle``, ``printing``, ``stopped`` or ``missing`` (also when CUPS is unreachable)."""
        try:
            state = self._printer_state(time.monotonic() + _COMMAND_TIMEOUT)
        except PrintProblem:
            return "missing"
        known = {"idle": "idle", "now printing": "printing", "disabled": "stopped"}
        return known.get(state or "", "missing")

    # --- steps ----------------------------------------------------------------------

    def _check_queue(self, deadline: float) -> None:
        state = self._printer_state(deadline)
        if state is None:
            raise PrintProblem("print.no_queue", f"CUPS has no queue {self.queue!r}")
        if state == "disabled":
            raise PrintProblem("print.stopped", f"queue {self.queue!r} is stopped")

    def _submit(self, path: Path, title: str, copies: int, deadline: float) -> str:
        # An absolute path never starts with "-", so lp cannot take it for an option.
        document = path.resolve()
        if not document.is_file():
            raise PrintProblem("print.failed", f"no document at {document}")
        result = self._run(
            "lp",
            "-d",
            self.queue,
            "-t",
            title,
            "-n",
            str(copies),
            "--",
            str(document),
            deadline=deadline,
        )
        output = f"{result.stdout}\n{result.stderr}".strip()
        if result.returncode != 0:
            if "not accepting" in output:
                raise PrintProblem("print.stopped", f"queue {self.queue!r} refuses jobs: {output}")
            if "does not exist" in output or "not found" in output.lower():
                self._raise_if_scheduler_down(deadline)
                raise PrintProblem("print.no_queue", f"lp: {output}")
            raise PrintProblem("print.failed", f"lp exited with {result.returncode}: {output}")
        found = _REQUEST_ID.search(result.stdout)
        if found is None:
            raise PrintProblem("print.failed", f"no job id in lp's answer: {output!r}")
        return f"{found.group(1)}-{found.group(2)}"

    def _wait(self, job_id: str, deadline: float) -> None:
        while True:
            state = self._printer_state(deadline)
            if state is None:
                raise PrintProblem(
                    "print.no_queue", f"queue {self.queue!r} vanished while {job_id} waited"
                )
            # The job is looked at after the queue: one that ended in between counts.
            if not self._active(job_id, deadline):
                self._check_outcome(job_id, deadline)
                return
            if state == "disabled":
                raise PrintProblem(
                    "print.stopped", f"queue {self.queue!r} stopped while {job_id} waited"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise PrintProblem(
                    "print.timeout", f"{job_id} not completed after {self.timeout:g} s"
                )
            time.sleep(min(self.poll, remaining))

    def _active(self, job_id: str, deadline: float) -> bool:
        """Whether ``job_id`` is still pending, held or processing."""
        result = self._run("lpstat", "-W", "not-completed", "-o", self.queue, deadline=deadline)
        if result.returncode != 0:
            raise PrintProblem(
                "print.failed", f"lpstat -o: {(result.stdout + result.stderr).strip()}"
            )
        return any(line.split()[:1] == [job_id] for line in result.stdout.splitlines())

    def _check_outcome(self, job_id: str, deadline: float) -> None:
        """Raise print.failed when the finished job was canceled or aborted."""
        number = int(job_id.rsplit("-", 1)[1])
        try:
            state = _ipp_job_state(self._server_address(deadline), number, _COMMAND_TIMEOUT)
        except (OSError, http.client.HTTPException, ValueError, struct.error) as error:
            # lpstat already says the job is over; without IPP we cannot tell how.
            log.warning(
                "cannot read the final state of %s, taking it as completed: %s", job_id, error
            )
            return
        if state == _JOB_COMPLETED or state is None:
            return
        how = {_JOB_CANCELED: "canceled", _JOB_ABORTED: "aborted"}.get(
            state, f"in IPP job-state {state}"
        )
        raise PrintProblem("print.failed", f"{job_id} was {how}")

    def _cancel(self, job_id: str) -> None:
        try:
            result = self._run("cancel", job_id, deadline=time.monotonic() + _COMMAND_TIMEOUT)
        except PrintProblem as problem:
            log.warning("could not cancel %s: %s", job_id, problem.detail)
            return
        if result.returncode != 0:
            log.warning("could not cancel %s: %s", job_id, (result.stdout + result.stderr).strip())

    # --- talking to CUPS ------------------------------------------------------------

    def _printer_state(self, deadline: float) -> str | None:
        """``is idle``/``now printing``/``disabled`` from ``lpstat -p``; None when the
        queue does not exist. Raises print.failed when the scheduler is unreachable."""
        result = self._run("lpstat", "-p", self.queue, deadline=deadline)
        for line in result.stdout.splitlines():
            found = _PRINTER_LINE.match(line)
            if found and found.group(1).casefold() == self.queue.casefold():
                return found.group(2).replace("is idle", "idle")
        # lpstat says "Invalid destination name" both for a missing queue and for an
        # unreachable scheduler: ask the scheduler itself.
        self._raise_if_scheduler_down(deadline)
        return None

    def _raise_if_scheduler_down(self, deadline: float) -> None:
        result = self._run("lpstat", "-r", deadline=deadline)
        if "scheduler is running" not in result.stdout:
            where = self.server or "the default CUPS server"
            raise PrintProblem(
                "print.failed", f"cannot reach {where}: {(result.stdout + result.stderr).strip()}"
            )

    def _server_address(self, deadline: float) -> str:
        if self.server:
            return self.server
        result = self._run("lpstat", "-H", deadline=deadline)
        return result.stdout.strip() or "localhost:631"

    def _run(self, program: str, *args: str, deadline: float) -> subprocess.CompletedProcess:
        command = [program, *(["-h", self.server] if self.server else []), *args]
        env = dict(os.environ, LC_ALL="C", LANG="C")
        env.pop("LANGUAGE", None)
        # Past the deadline a last look is still allowed: the caller decides on the timeout.
        remaining = max(deadline - time.monotonic(), _LAST_LOOK)
        try:
            return subprocess.run(
                command,
                capture_output=True,
                text=True,
                errors="replace",
                env=env,
                stdin=subprocess.DEVNULL,
                timeout=min(_COMMAND_TIMEOUT, remaining),
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise PrintProblem("print.timeout", f"{program} did not answer in time") from None
        except OSError as error:
            raise PrintProblem("print.failed", f"cannot run {program}: {error}") from None


# --- one IPP request --------------------------------------------------------------


def _ipp_attribute(tag: int, name: str, value: bytes) -> bytes:
    encoded = name.encode("ascii")
    return struct.pack(">BH", tag, len(encoded)) + encoded + struct.pack(">H", len(value)) + value


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


def _ipp_job_state(server: str, job: int, timeout: float) -> int | None:
    """The IPP ``job-state`` of job ``job`` on ``server`` (``host[:port]`` or a socket
    path), or None when the scheduler does not know the job any more."""
    if server.startswith("/"):
        connection: http.client.HTTPConnection = _UnixHTTPConnection(server, timeout)
        authority = "localhost"
    else:
        found = re.fullmatch(r"(.+?)(?::(\d+))?", server)
        if found is None:
            raise ValueError(f"no CUPS server in {server!r}")
        host, port = found.group(1), int(found.group(2) or 631)
        connection = http.client.HTTPConnection(host.strip("[]"), port, timeout=timeout)
        authority = f"{host}:{port}"
    body = (
        struct.pack(">BBHI", 2, 0, 0x0009, 1)  # IPP 2.0 Get-Job-Attributes, request 1
        + b"\x01"
        + _ipp_attribute(0x47, "attributes-charset", b"utf-8")
        + _ipp_attribute(0x48, "attributes-natural-language", b"en")
        + _ipp_attribute(0x45, "job-uri", f"ipp://{authority}/jobs/{job}".encode())
        + _ipp_attribute(0x42, "requesting-user-name", _user().encode("utf-8"))
        + _ipp_attribute(0x44, "requested-attributes", b"job-state")
        + b"\x03"
    )
    try:
        connection.request("POST", "/jobs/", body, {"Content-Type": "application/ipp"})
        response = connection.getresponse()
        data = response.read()
    finally:
        connection.close()
    if response.status != 200:
        raise ValueError(f"HTTP {response.status} {response.reason}")
    status = struct.unpack(">H", data[2:4])[0]
    if status == 0x0406:  # client-error-not-found: the job was purged
        return None
    if status >= 0x0100:
        raise ValueError(f"IPP status 0x{status:04x}")
    at = 8
    while at < len(data):
        tag = data[at]
        at += 1
        if tag == 0x03:
            break
        if tag < 0x10:  # a group delimiter
            continue
        (length,) = struct.unpack(">H", data[at : at + 2])
        name = data[at + 2 : at + 2 + length].decode("ascii", "replace")
        at += 2 + length
        (length,) = struct.unpack(">H", data[at : at + 2])
        value = data[at + 2 : at + 2 + length]
        at += 2 + length
        if name == "job-state" and tag == 0x23 and length == 4:
            return struct.unpack(">i", value)[0]
    raise ValueError("no job-state in the IPP answer")


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "kiosk"


# --- the print folder -------------------------------------------------------------

_UNSAFE_IN_NAME = re.compile(r'[/\\:*?"<>|\x00]')


def safe_file_name(title: str) -> str:
    """A file name stem from ``title``: no separators, no control characters, no
    leading dot, bounded in length; "document" when nothing is left."""
    cleaned = _UNSAFE_IN_NAME.sub("_", clean_title(title, fallback=""))
    cleaned = re.sub(r"_{2,}", "_", cleaned).strip(" ._-")
    cleaned = _truncate_utf8(cleaned, _NAME_MAX_BYTES).rstrip(" .")
    return cleaned or "document"


class FolderPrinter:
    """« Printing » without a printer: each document is copied into ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def __repr__(self) -> str:
        return f"FolderPrinter({str(self.folder)!r})"

    def print(self, path: Path, title: str, copies: int = 1) -> PrintJob:
        """Copy ``path`` into the folder under a name made from ``title``; the copy
        appears whole or not at all, and never replaces an earlier one."""
        try:
            self._make_folder()
            stem = safe_file_name(title)
            descriptor, partial = tempfile.mkstemp(
                dir=self.folder, prefix=".partial-", suffix=".pdf"
            )
            try:
                with open(descriptor, "wb") as target, open(path, "rb") as source:
                    shutil.copyfileobj(source, target)
                    target.flush()
                    os.fsync(target.fileno())
                final = self._link_unused(Path(partial), stem)
            finally:
                os.unlink(partial)
            self._sync_folder()
        except OSError as error:
            raise PrintProblem(
                "print.failed", f"cannot copy {path} into {self.folder}: {error}"
            ) from None
        return PrintJob(job_id=None, path=final, printer=f"folder:{self.folder}")

    def status(self) -> str:
        return "idle"

    def _make_folder(self) -> None:
        if not self.folder.is_dir():
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(self.folder, 0o700)

    def _link_unused(self, partial: Path, stem: str) -> Path:
        for number in range(1, 1000):
            final = self.folder / (f"{stem}.pdf" if number == 1 else f"{stem} ({number}).pdf")
            try:
                os.link(partial, final)  # fails when the name is taken: nothing is replaced
            except FileExistsError:
                continue
            return final
        raise FileExistsError(f"too many documents named {stem!r}")

    def _sync_folder(self) -> None:
        descriptor = os.open(self.folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def printer_from_config(config: PrintConfig, print_dir: Path) -> CupsPrinter | FolderPrinter:
    """The CUPS queue when one is configured, else the print folder."""
    queue = config.queue.strip()
    return (
        CupsPrinter(queue, server=config.server.strip() or None)
        if queue
        else FolderPrinter(print_dir)
    )
