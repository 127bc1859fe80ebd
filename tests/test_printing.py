"""Printing: a real private CUPS scheduler with cups-pdf queues, and the print folder."""

from __future__ import annotations

import os
import shutil
import stat
import threading
import time
from pathlib import Path

import pytest
from fpdf import FPDF
from pypdf import PdfReader

from kiosk.delivery.printing import (
    CupsPrinter,
    FolderPrinter,
    PrintJob,
    PrintProblem,
    clean_title,
    printer_from_config,
    safe_file_name,
)
from kiosk.runtime.config import Config, PrintConfig


@pytest.fixture(scope="module")
def pdf(tmp_path_factory) -> Path:
    """Two A4 pages, with a title."""
    document = FPDF()
    document.set_title("Confirmation d'inscription")
    document.set_font("helvetica", size=16)
    for number in (1, 2):
        document.add_page()
        document.cell(text=f"Page {number} sur 2")
    path = tmp_path_factory.mktemp("documents") / "confirmation.pdf"
    document.output(str(path))
    return path


def wait_for(predicate, limit: float = 10.0):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out waiting")


def in_background(function):
    """Run ``function`` in a thread; returns a callable giving its result or raising its error."""
    outcome: dict = {}

    def run():
        try:
            outcome["value"] = function()
        except BaseException as error:  # handed back to the test
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def result(limit: float = 30.0):
        thread.join(limit)
        assert not thread.is_alive(), "print() did not return"
        if "error" in outcome:
            raise outcome["error"]
        return outcome["value"]

    return result


# --- a real CUPS ---------------------------------------------------------------------


def test_a_two_page_pdf_is_printed_by_cups_pdf(cups, pdf):
    queue = cups.add_pdf_queue("kiosk-pdf")
    printer = CupsPrinter(queue, server=cups.server, timeout=30)
    assert printer.status() == "idle"

    job = printer.print(pdf, "Confirmation 2020-PT-0042 v1")

    assert job.printer == queue and job.path is None
    assert job.job_id.startswith(f"{queue}-") and job.job_id.rsplit("-", 1)[1].isdigit()
    assert cups.active_jobs(queue) == []
    [output] = cups.output_for(job.job_id)
    assert output.name.startswith("Confirmation_2020-PT-0042_v1")
    assert len(PdfReader(output).pages) == 2
    assert printer.status() == "idle"


def test_a_title_with_unicode_and_control_characters(cups, pdf):
    queue = cups.add_pdf_queue("kiosk-unicode")
    printer = CupsPrinter(queue, server=cups.server, timeout=30)

    job = printer.print(pdf, "Récépissé\x1b[31m Élodie\x00 Ŋ\n«\u202eLyon»\x7f")

    [output] = cups.output_for(job.job_id)
    assert "Récépissé" in output.name and "Élodie" in output.name and "Lyon" in output.name
    assert not any(
        ord(char) < 32 or 0x7F <= ord(char) < 0xA0 or char == "\u202e" for char in output.name
    )
    assert len(PdfReader(output).pages) == 2


def test_copies_and_the_server_socket(cups, pdf):
    queue = cups.add_pdf_queue("kiosk-socket")
    printer = CupsPrinter(queue, server=str(cups.socket_path), timeout=30)

    job = printer.print(pdf, "Deux exemplaires", copies=2)

    assert cups.output_for(job.job_id)
    with pytest.raises(ValueError):
        printer.print(pdf, "Aucun", copies=0)


def test_a_stopped_queue_is_refused_at_once_and_nothing_is_queued(cups, pdf):
    queue = cups.add_pdf_queue("kiosk-stopped")
    cups.run("cupsdisable", queue)
    printer = CupsPrinter(queue, server=cups.server, timeout=60)
    assert printer.status() == "stopped"

    started = time.monotonic()
    with pytest.raises(PrintProblem) as caught:
        printer.print(pdf, "Jamais")

    assert caught.value.key == "print.stopped"
    assert time.monotonic() - started < 5
    assert cups.active_jobs(queue) == []


def test_a_queue_stopped_while_the_job_waits_cancels_the_job(cups, pdf):
    # Jobs on this queue are held, so the job waits until the queue is stopped.
    queue = cups.add_pdf_queue("kiosk-held-stop", "job-hold-until-default=indefinite")
    printer = CupsPrinter(queue, server=cups.server, timeout=60, poll=0.2)

    result = in_background(lambda: printer.print(pdf, "Attente"))
    [job_id] = wait_for(lambda: cups.active_jobs(queue))
    stopped_at = time.monotonic()
    cups.run("cupsdisable", queue)
    with pytest.raises(PrintProblem) as caught:
        result()

    assert caught.value.key == "print.stopped"
    assert time.monotonic() - stopped_at < 5
    assert cups.active_jobs(queue) == []  # cancelled: restarting the queue prints nothing
    cups.run("cupsenable", queue)
    cups.run("lpadmin", "-p", queue, "-o", "job-hold-until-default=no-hold")
    time.sleep(0.5)
    assert cups.output_for(job_id) == []


def test_a_job_cancelled_by_staff_has_failed(cups, pdf):
    queue = cups.add_pdf_queue("kiosk-held-cancel", "job-hold-until-default=indefinite")
    printer = CupsPrinter(queue, server=cups.server, timeout=60, poll=0.2)

    result = in_background(lambda: printer.print(pdf, "Annulé"))
    [job_id] = wait_for(lambda: cups.active_jobs(queue))
    cups.run("cancel", job_id)
    with pytest.raises(PrintProblem) as caught:
        result()

    assert caught.value.key == "print.failed"
    assert job_id in caught.value.detail and "canceled" in caught.value.detail


def test_a_job_that_never_completes_times_out_and_is_cancelled(cups, pdf):
    queue = cups.add_pdf_queue("kiosk-held-timeout", "job-hold-until-default=indefinite")
    printer = CupsPrinter(queue, server=cups.server, timeout=1.5, poll=0.2)

    started = time.monotonic()
    with pytest.raises(PrintProblem) as caught:
        printer.print(pdf, "Trop long")

    assert caught.value.key == "print.timeout"
    assert 1.5 <= time.monotonic() - started < 5
    assert cups.active_jobs(queue) == []


def test_a_missing_queue(cups, pdf):
    printer = CupsPrinter("kiosk-nowhere", server=cups.server, timeout=30)

    assert printer.status() == "missing"
    with pytest.raises(PrintProblem) as caught:
        printer.print(pdf, "Nulle part")
    assert caught.value.key == "print.no_queue"


def test_an_unreachable_server_is_a_failure_not_a_missing_queue(cups, pdf):
    closed = f"127.0.0.1:{_closed_port()}"
    printer = CupsPrinter("kiosk-pdf", server=closed, timeout=30)

    assert printer.status() == "missing"
    with pytest.raises(PrintProblem) as caught:
        printer.print(pdf, "Injoignable")
    assert caught.value.key == "print.failed"
    assert "cannot reach" in caught.value.detail


def _closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- without CUPS ---------------------------------------------------------------------


def test_titles_lose_control_characters_only():
    assert (
        clean_title("Récépissé\x1b[31m\t\nÉlodie\x00\u202e\u200b ok") == "Récépissé[31m Élodie ok"
    )
    assert clean_title("\x00\x01 \n") == "document"
    assert len(clean_title("é" * 500).encode()) <= 200


def test_print_problems_carry_a_catalogue_key():
    problem = PrintProblem("print.stopped", "queue kiosk is stopped")
    assert (problem.key, problem.detail) == ("print.stopped", "queue kiosk is stopped")
    with pytest.raises(ValueError):
        PrintProblem("print.jammed")


def test_queue_names_are_checked():
    for bad in ("", "two words", "a/b", "new\nline"):
        with pytest.raises(ValueError):
            CupsPrinter(bad)


def test_the_folder_printer_copies_atomically_into_a_private_folder(tmp_path, pdf):
    folder = tmp_path / "data" / "impressions"
    printer = FolderPrinter(folder)

    first = printer.print(pdf, "Confirmation 2020-PT-0042 v1")
    second = printer.print(pdf, "Confirmation 2020-PT-0042 v1")

    assert first == PrintJob(
        job_id=None, path=folder / "Confirmation 2020-PT-0042 v1.pdf", printer=f"folder:{folder}"
    )
    assert second.path == folder / "Confirmation 2020-PT-0042 v1 (2).pdf"
    assert first.path.read_bytes() == pdf.read_bytes() == second.path.read_bytes()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(first.path.stat().st_mode) == 0o600
    assert {p.name for p in folder.iterdir()} == {
        first.path.name,
        second.path.name,
    }  # no partial file left


def test_the_folder_printer_leaves_nothing_when_the_copy_fails(tmp_path, pdf, monkeypatch):
    folder = tmp_path / "impressions"

    def broken_copy(source, target):
        target.write(source.read(100))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(shutil, "copyfileobj", broken_copy)
    with pytest.raises(PrintProblem) as caught:
        FolderPrinter(folder).print(pdf, "Confirmation")
    assert caught.value.key == "print.failed"
    assert list(folder.iterdir()) == []

    with pytest.raises(PrintProblem) as caught:
        FolderPrinter(folder).print(tmp_path / "absent.pdf", "Absent")
    assert caught.value.key == "print.failed"
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize(
    "title",
    [
        "../../etc/passwd",
        "/etc/cron.d/evil",
        "..",
        ".",
        "a/../../b",
        "..\\..\\win",
        "x\x00y\n/z",
        "\u202e",
        "  ",
    ],
)
def test_the_folder_printer_never_leaves_its_folder(tmp_path, pdf, title):
    folder = tmp_path / "impressions"

    job = FolderPrinter(folder).print(pdf, title)

    assert job.path.parent == folder
    assert job.path.name.endswith(".pdf") and not job.path.name.startswith(".")
    assert "/" not in job.path.name and "\\" not in job.path.name
    assert not any(ord(char) < 32 for char in job.path.name)
    assert [p.name for p in tmp_path.iterdir()] == ["impressions"]
    assert safe_file_name(title) == job.path.stem


def test_an_existing_folder_keeps_its_files(tmp_path, pdf):
    folder = tmp_path / "impressions"
    folder.mkdir(mode=0o700)
    (folder / "Confirmation.pdf").write_bytes(b"earlier")

    job = FolderPrinter(folder).print(pdf, "Confirmation")

    assert job.path.name == "Confirmation (2).pdf"
    assert (folder / "Confirmation.pdf").read_bytes() == b"earlier"


def test_printer_from_config(tmp_path):
    config = Config(data_dir=tmp_path)

    folder = printer_from_config(config.printing, config.print_dir)
    cups = printer_from_config(PrintConfig(queue=" accueil "), config.print_dir)

    assert isinstance(folder, FolderPrinter) and folder.folder == tmp_path / "impressions"
    assert isinstance(cups, CupsPrinter) and cups.queue == "accueil" and cups.server is None
    assert not os.path.exists(config.print_dir)  # nothing is created before printing
