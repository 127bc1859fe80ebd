"""Outside failures, injected for real, and what the kiosk makes of them.

- the rectorat's service killed and started again while the kiosk syncs;
- its PostgreSQL stopped (as by a crash) and started again while the kiosk syncs;
- the SMTP relay down, then refusing in the middle of a batch;
- the printer's queue stopped, then the CUPS scheduler gone;
- the disk full while saving (a small tmpfs that really fills up);
- a damaged store at start, for the commands and for the launcher;
- the kiosk's clock two hours behind the rectorat's (and ten minutes ahead of it).

Every part is the real one: ``kiosk rectorat serve`` processes over PostgreSQL (a server
of its own for the test that crashes it), aiosmtpd, cupsd with cups-pdf, a tmpfs, the
``kiosk`` command and its launcher. Waits have deadlines; nothing asserts on how long
something took.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from kiosk.accounts import SignUp
from kiosk.clock import Clock, parse_instant
from kiosk.delivery.mail_queue import FIRST_RETRY
from kiosk.errors import Refused
from kiosk.i18n import french
from kiosk.rectorat.service import RectoratService
from kiosk.rectorat.store import open_store as open_rectorat
from kiosk.runtime.config import Config, MailConfig, PrintConfig, SyncConfig
from kiosk.runtime.launcher import SLOW_RESTART, STAFF_EXIT, supervise
from kiosk.runtime.services import Services, build_services
from kiosk.store.check import StoreDamaged, store_trouble
from kiosk.store.database import open_store, storage_problem
from kiosk.store.models import Account, OutboxRow, Registration
from tests.factories import fast_hasher, mailed_code, valid_values
from tests.support.pg_server import need_postgres, running_postgres
from tests.support.rectorat_process import ROOT, RectoratProcess, environment
from tests.support.requirements import need_program
from tests.support.smtp_server import SmtpServer

PASSWORD = "cheval agrafe lumière 42"
KIOSK_NOW = "2019-11-10T10:00:00"  # the conftest clock's instant, for the other processes
_LETTERS = "bcdfghjklmnpqrstvz"


# -- a kiosk, as the kiosk program builds it ---------------------------------------------------


def kiosk(data_dir: Path, clock: Clock, **settings) -> Services:
    """The kiosk's services on ``data_dir``, built by ``build_services``."""
    services = build_services(Config(data_dir=data_dir, **settings), clock)
    services.accounts.hasher = fast_hasher()  # tests only: tiny argon2 costs
    return services


def active_account(services, n: int) -> Account:
    """The ``n``-th candidate's account, signed up and activated; names differ with ``n``."""
    family = "Martin" + "".join(_LETTERS[int(d)] for d in f"{n:03d}")
    email = f"candidat{n}@exemple.fr"
    services.accounts.sign_up(SignUp(email, family, "Paul", PASSWORD, PASSWORD))
    return services.accounts.activate(email, mailed_code(services.store, email))


def values_for(services, account: Account, n: int, **overrides) -> dict:
    birth = f"{n % 28 + 1:02d}/{n % 12 + 1:02d}/{1990 + n % 11}"
    return valid_values(services.session, family_name=account.family_name,
                        given_names=account.given_names, birth_date=birth, **overrides)  # fmt: skip


def registered(services, n: int) -> tuple[Account, Registration]:
    account = active_account(services, n)
    return account, services.registrations.save(account, values_for(services, account, n))


def wait_for(condition, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- the rectorat down during sync --------------------------------------------------------------


class SyncLoop:
    """The kiosk's sync worker: one round after the other in a thread, as the app runs them,
    while the test's thread goes on saving."""

    def __init__(self, services) -> None:
        self.services = services
        self.reports: list = []
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sync", daemon=True)

    def __enter__(self) -> SyncLoop:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(60)
        assert not self._thread.is_alive(), "the sync rounds did not stop"

    def _run(self) -> None:
        try:
            with self.services.store.connection_context():
                while not self._stop.is_set():
                    self.reports.append(self.services.sync.sync_once(force=True))
                    time.sleep(0.02)
        except BaseException as error:  # handed to the test
            self.errors.append(error)

    def wait_for(self, wanted, what: str, state=lambda: "") -> None:
        """Until a round that starts from now gives a report ``wanted`` accepts; ``state``
        says what the test was waiting for, should it time out."""
        since = len(self.reports)
        try:
            wait_for(lambda: self.errors or any(wanted(r) for r in self.reports[since:]), what)
        except AssertionError as timeout:
            raise AssertionError(f"{timeout}; last report {self.reports[-1:]}; {state()}") from None
        assert not self.errors, self.errors


def assert_the_rectorat_holds_everything_once(services, url: str) -> None:
    """Each account, registration and address change of the kiosk, once, at its version;
    no conflict; every registration's number known at the kiosk."""
    store = open_rectorat(url)
    try:
        for table, model in (
            ("account", services.store.Account),
            ("registration", services.store.Registration),
            ("address_change", services.store.AddressChange),
        ):
            here = {str(record.id): record.version for record in model.select()}
            there = store.db.execute_sql(f"SELECT id, version FROM rc_{table}").fetchall()
            assert Counter(str(i) for i, _ in there) == Counter(here.keys()), table
            assert {str(i): v for i, v in there} == here, table
        assert store.db.execute_sql("SELECT count(*) FROM rc_conflict").fetchone()[0] == 0
        numbers = dict(store.db.execute_sql("SELECT id, number FROM rc_registration").fetchall())
        assert {str(r.id): r.number for r in services.store.Registration.select()} == {
            str(i): n for i, n in numbers.items()
        }
    finally:
        store.close()
    assert services.sync.pending() == 0


def _all_numbered(services) -> bool:
    registrations = services.store.Registration
    return not registrations.select().where(registrations.number.is_null()).exists()


def _sync_state(services, url: str):
    """What the kiosk and the rectorat hold of what is not through yet (for a timeout's message)."""

    def state() -> str:
        OutboxRow, Registration = services.store.OutboxRow, services.store.Registration
        waiting = [row.payload for row in OutboxRow.select().where(
            OutboxRow.kind == "sync", OutboxRow.delivered_at.is_null())]  # fmt: skip
        unnumbered = [str(r.id) for r in Registration.select().where(Registration.number.is_null())]
        store = open_rectorat(url)
        try:
            there = {
                i: store.db.execute_sql(
                    "SELECT r.number, r.version,"
                    " (SELECT string_agg(coalesce(c.seq::text, 'null'), ',')"
                    " FROM rc_change c WHERE c.entity_id = r.id)"
                    " FROM rc_registration r WHERE r.id = %s",
                    (i,),
                ).fetchall()
                for i in unnumbered
            }
            conflicts = store.db.execute_sql("SELECT kind, entity_id FROM rc_conflict").fetchall()
            last = store.db.execute_sql("SELECT max(seq), count(*) FROM rc_change").fetchone()
        finally:
            store.close()
        cursor = services.sync._state("cursor", "0")
        return (
            f"waiting at the kiosk: {waiting}; without a number here: {there}; "
            f"conflicts: {conflicts}; kiosk cursor {cursor}, "
            f"rectorat feed (max seq, changes) {last}"
        )

    return state


def test_the_rectorat_killed_and_restarted_during_sync_loses_nothing(
    tmp_path, clock, fresh_postgres_url
):
    rectorat = RectoratProcess(tmp_path / "rectorat", now=KIOSK_NOW, db_url=fresh_postgres_url)
    credential = rectorat.kiosk_credential("borne-a")
    rectorat.start()
    services = kiosk(
        tmp_path / "borne-a", clock, sync=SyncConfig(url=rectorat.url, token=credential, timeout=5)
    )
    try:
        made = [registered(services, n) for n in range(10)]
        with SyncLoop(services) as rounds:
            for outage, how in enumerate((signal.SIGKILL, signal.SIGTERM, signal.SIGKILL)):
                rounds.wait_for(lambda report: report.online, "a round with the rectorat")
                # Candidates go on saving while the rounds run; the service dies among them.
                made += [registered(services, 100 * (outage + 1) + n) for n in range(4)]
                rectorat.kill(how)
                rounds.wait_for(
                    lambda report: not report.online and report.error, "a round that finds it down"
                )
                # Alone, the kiosk still saves, changes and reports addresses.
                made += [registered(services, 100 * (outage + 1) + 50 + n) for n in range(3)]
                account, registration = made[outage]
                phone = f"05 49 00 00 0{outage}"
                services.registrations.save(
                    account, values_for(services, account, outage, phone=phone)
                )
                rectorat.start()
            rounds.wait_for(
                lambda report: report.online and report.pending == 0 and _all_numbered(services),
                "every change pushed and every number back",
                _sync_state(services, fresh_postgres_url),
            )
        assert rectorat.starts == 4
        assert_the_rectorat_holds_everything_once(services, fresh_postgres_url)
    finally:
        services.sync.client.close()
        services.close()
        rectorat.stop()


@pytest.fixture
def private_postgres():
    """A PostgreSQL of this test's own, durable as in production (a commit is flushed before
    it is acknowledged): it is stopped as by a crash, which no other test should see."""
    with running_postgres(need_postgres(), durable=True) as server:
        yield server


def _postgres_crash(server) -> None:
    """``pg_ctl stop -m immediate``: the server's processes quit at once, without a
    checkpoint, as a power cut or an OOM kill would leave them; starting needs recovery."""
    server.run("pg_ctl", "-D", str(server.data_dir), "-m", "immediate", "-w", "stop")


def _postgres_start(server) -> None:
    """Start it again on the same port, with the options of its last start (postmaster.opts)."""
    server.run("pg_ctl", "-D", str(server.data_dir), "-l", str(server.root / "server.log"),
               "-w", "-t", "60", "restart")  # fmt: skip


def test_postgresql_stopped_and_restarted_during_sync_loses_nothing(
    tmp_path, clock, private_postgres
):
    url = private_postgres.url
    rectorat = RectoratProcess(tmp_path / "rectorat", now=KIOSK_NOW, db_url=url)
    credential = rectorat.kiosk_credential("borne-a")
    rectorat.start()
    services = kiosk(
        tmp_path / "borne-a", clock, sync=SyncConfig(url=rectorat.url, token=credential, timeout=5)
    )
    try:
        made = [registered(services, n) for n in range(10)]
        with SyncLoop(services) as rounds:
            for outage in range(2):
                rounds.wait_for(lambda report: report.online, "a round with the rectorat")
                made += [registered(services, 100 * (outage + 1) + n) for n in range(4)]
                _postgres_crash(private_postgres)
                rounds.wait_for(
                    lambda report: not report.online and report.error, "a round without PostgreSQL"
                )
                made += [registered(services, 100 * (outage + 1) + 50 + n) for n in range(3)]
                _postgres_start(private_postgres)
            rounds.wait_for(
                lambda report: report.online and report.pending == 0 and _all_numbered(services),
                "every change pushed and every number back",
                _sync_state(services, url),
            )
        # The service rode out both outages: the same process, never restarted.
        assert rectorat.starts == 1 and rectorat.process.poll() is None
        assert_the_rectorat_holds_everything_once(services, url)
    finally:
        services.sync.client.close()
        services.close()
        rectorat.stop()


# -- the SMTP relay down ----------------------------------------------------------------------


def _mail_rows(services) -> list[OutboxRow]:
    outbox = services.store.OutboxRow
    return list(outbox.select().where(outbox.kind == "mail"))


def test_two_deliveries_at_once_send_each_code_mail_once_and_every_code_works(tmp_path, clock):
    """The kiosk's timer and a save each start a delivery, and ``kiosk deliver`` may run
    beside them: a code mail taken by one is left alone by the others, for a second code
    would replace the first one the candidate reads."""
    from kiosk.delivery.mail_transport import read_maildir

    services = kiosk(tmp_path / "borne", clock)
    try:
        emails = [f"candidat{n}@exemple.fr" for n in range(8)]
        for n, email in enumerate(emails):
            services.accounts.sign_up(SignUp(email, f"Martin{chr(97 + n)}", "Paul", PASSWORD,
                                             PASSWORD))  # fmt: skip
        transport = services.mail.transport
        send = transport.send

        def slow_send(message, key):  # a relay that takes its time: the deliveries overlap
            time.sleep(0.02)
            send(message, key)

        transport.send = slow_send
        both = threading.Barrier(2)

        def deliver() -> None:
            with services.store.db.connection_context():
                both.wait()
                services.mail.deliver_due()

        workers = [threading.Thread(target=deliver) for _ in range(2)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(30)
        sent = Counter(mail.to for mail in read_maildir(services.config.maildir_path))
        assert sent == Counter(emails)  # each once
        for email in emails:
            mail = next(m for m in read_maildir(services.config.maildir_path) if m.to == email)
            code = re.search(r"\b(\w{4}-\w{4})\b", mail.body).group(1)
            assert services.accounts.activate(email, code).status == "active"
    finally:
        services.close()


def test_mail_waits_while_the_smtp_relay_is_down_and_each_is_sent_once(tmp_path, clock):
    relay = SmtpServer()  # not started: nothing listens on its port
    mail = MailConfig(transport="smtp", smtp_host="127.0.0.1", smtp_port=relay.port,
                      smtp_security="none", smtp_timeout=5)  # fmt: skip
    services = kiosk(tmp_path / "borne", clock, mail=mail)
    try:
        account, registration = registered(services, 1)  # saving does not wait for the relay
        assert registration.version == 1
        down = services.mail.deliver_due()
        assert (down.sent, down.retrying, down.failed) == (0, 2, 0)  # activation, confirmation
        for row in _mail_rows(services):
            assert row.delivered_at is None and row.failed_at is None and row.attempts == 1
            assert (
                "unreachable" in row.last_error and row.next_attempt_at == clock.now() + FIRST_RETRY
            )
            assert row.payload["body"]  # kept until it is sent

        relay.start()
        try:
            assert services.mail.deliver_due().sent == 0  # its retry is not due: no hammering
            clock.advance(FIRST_RETRY)
            assert services.mail.deliver_due().sent == 2
            expected = sorted(row.payload["message_id"] for row in _mail_rows(services))
            assert sorted(relay.message_ids()) == expected
            assert all(row.delivered_at is not None for row in _mail_rows(services))

            # The relay takes one message of the batch, then refuses the rest (421).
            services.documents.email(account, services.documents.documents(account)[0].id)
            _, other = registered(services, 2)
            relay.refuse_after(1)
            batch = services.mail.deliver_due()
            assert (batch.sent, batch.retrying, batch.failed) == (1, 2, 0)
            relay.refuse_after(None)
            clock.advance(FIRST_RETRY)
            assert services.mail.deliver_due().sent == 2
            clock.advance(timedelta(hours=2))
            assert services.mail.deliver_due().sent == 0
            ids = relay.message_ids()
            assert sorted(ids) == sorted(row.payload["message_id"] for row in _mail_rows(services))
            assert len(ids) == len(set(ids)) == 5  # every mail once: none lost, none twice
        finally:
            relay.stop()
    finally:
        services.close()


# -- the printer -------------------------------------------------------------------------------


def _outputs(cups, reference: str) -> list[Path]:
    return sorted(p for p in cups.output.glob("*.pdf") if reference in p.name)


def test_a_stopped_printer_queue_is_said_and_prints_nothing_later(tmp_path, clock, cups):
    queue = cups.add_pdf_queue("borne-faults")
    services = kiosk(
        tmp_path / "borne", clock, printing=PrintConfig(queue=queue, server=cups.server)
    )
    try:
        account, registration = registered(services, 1)
        [document] = services.documents.documents(account)
        cups.run("cupsdisable", queue)
        with pytest.raises(Refused) as refused:
            services.documents.print(account, document.id)
        assert refused.value.problems[""].key == "print.stopped"
        assert french("print.stopped") == "L'imprimante de cette borne est arrêtée."
        assert (
            cups.active_jobs(queue) == []
        )  # nothing waits to come out after the candidate has left

        # The way out: the PDF by e-mail. The kiosk keeps working.
        services.documents.email(account, document.id)
        assert services.mail.deliver_due().sent >= 1

        cups.run("cupsenable", queue)
        job = services.documents.print(account, document.id)
        wait_for(lambda: cups.output_for(job.job_id), "the printed file")
        assert len(_outputs(cups, registration.reference)) == 1  # the refused attempt never printed
    finally:
        services.close()


def test_a_dead_print_scheduler_is_a_failure_said_to_the_candidate(tmp_path, clock):
    from tests.support.cups_server import cups_server, need_cups

    with cups_server(need_cups()) as private:
        queue = private.add_pdf_queue("borne-seule")
        services = kiosk(
            tmp_path / "borne", clock, printing=PrintConfig(queue=queue, server=private.server)
        )
        try:
            account, _ = registered(services, 1)
            [document] = services.documents.documents(account)
            private.process.kill()  # cupsd gone, as when it crashes
            private.process.wait(10)
            with pytest.raises(Refused) as refused:
                services.documents.print(account, document.id)
            assert refused.value.problems[""].key == "print.failed"
            # The store and the documents are as they were; the kiosk still saves.
            assert services.documents.documents(account)[0].id == document.id
            assert registered(services, 2)[1].version == 1
        finally:
            services.close()


# -- the disk full -------------------------------------------------------------------------------


class SmallDisk:
    """A tmpfs of a few megabytes, mounted for one test: a real file system that fills up."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.filler = path / "filler"

    def fill(self) -> None:
        """Write a file until the file system refuses another byte (ENOSPC)."""
        descriptor = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            for size in (1 << 20, 1 << 16, 4096, 512, 64, 1):
                while True:
                    try:
                        os.write(descriptor, b"\0" * size)
                    except OSError as error:
                        assert error.errno == 28, error  # ENOSPC
                        break
        finally:
            os.close(descriptor)

    def free(self) -> None:
        self.filler.unlink()


@pytest.fixture
def small_disk(tmp_path):
    """A 16 MB tmpfs at ``tmp_path/disk``. Mounting needs root, as CI has; elsewhere the
    test skips (and under KIOSK_REQUIRE_ALL=1 that skip fails)."""
    mount = need_program("mount", "mount")
    umount = need_program("umount", "mount")
    if os.geteuid() != 0:
        pytest.skip(
            "needs root to mount a small tmpfs, a disk that really fills up (CI runs as root)"
        )
    point = tmp_path / "disk"
    point.mkdir()
    mounted = subprocess.run(
        [mount, "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", str(point)],
        capture_output=True, text=True,
    )  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield SmallDisk(point)
    finally:
        subprocess.run([umount, "-l", str(point)], capture_output=True)


def _counts(db) -> dict[str, int]:
    return {table: db.execute_sql(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("account", "registration", "draft", "outbox", "document")}  # fmt: skip


def _full(services, disk: SmallDisk) -> None:
    # The write-ahead log emptied first, as a checkpoint leaves it: the next save must grow it.
    services.store.db.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    disk.fill()


def test_a_save_on_a_full_disk_is_refused_whole_with_its_cause_and_works_once_there_is_room(
    small_disk, clock
):
    services = kiosk(small_disk.path / "borne", clock)
    Draft, Registration = services.store.Draft, services.store.Registration
    try:
        account = active_account(services, 1)
        values = values_for(services, account, 1)
        services.registrations.save_draft(account, values)
        before = _counts(services.store.db)
        _full(services, small_disk)
        with pytest.raises(Exception) as failed:
            services.registrations.save(account, values)
        # The real cause, not the rollback's « no transaction is active » that hid it.
        assert "full" in str(failed.value), repr(failed.value)
        assert storage_problem(failed.value) == "fault.disk_full"
        small_disk.free()

        assert services.store.db.execute_sql("PRAGMA integrity_check").fetchall() == [("ok",)]
        # Nothing half-written: no registration, no mail.
        assert _counts(services.store.db) == before
        assert Draft.get().values == values  # what was typed is kept

        registration = services.registrations.save(account, values)
        assert registration.version == 1 and Registration.select().count() == 1
        assert Draft.select().count() == 0
        assert [row.payload["subject"] for row in _mail_rows(services)][-1].startswith(
            "Confirmation d'inscription"
        )
    finally:
        services.close()


def test_documents_and_mail_on_a_full_disk_leave_no_half_file(small_disk, clock):
    services = kiosk(small_disk.path / "borne", clock)
    try:
        account, _ = registered(services, 1)
        maildir = services.config.maildir_path
        _full(services, small_disk)
        with pytest.raises(OSError) as failed:
            services.documents.documents(account)
        assert storage_problem(failed.value) == "fault.disk_full"
        with pytest.raises(Exception) as undelivered:
            services.mail.deliver_due()  # the Maildir refuses, and so does the store's bookkeeping
        assert storage_problem(undelivered.value) == "fault.disk_full"
        folder = services.config.data_dir / "documents"
        assert list(folder.iterdir()) == []  # no .part left behind
        # The store refused first (the mail could not be taken) or the Maildir did: no file.
        assert [
            p for d in ("tmp", "new") if (maildir / d).exists() for p in (maildir / d).iterdir()
        ] == []
        assert services.store.Document.select().count() == 0
        small_disk.free()

        [document] = services.documents.documents(account)
        assert (
            sha256(folder / services.store.Document.get_by_id(document.id).file_name)
            == services.store.Document.get_by_id(document.id).sha256
        )
        assert services.mail.deliver_due().sent == 2
        assert len(list((maildir / "new").iterdir())) == 2
    finally:
        services.close()


async def test_a_candidate_saving_on_a_full_disk_is_told_and_keeps_what_they_typed(
    small_disk, clock
):
    from screens.app import build_app
    from screens.home import HomeScreen
    from screens.registration import RegistrationScreen
    from tests.support.pilot import SIZE, click, log_in, settle, text_of

    services = kiosk(small_disk.path / "borne", clock)
    try:
        account = active_account(services, 1)
        services.registrations.save_draft(account, values_for(services, account, 1))
        app = build_app(services)
        async with app.run_test(size=SIZE) as pilot:
            await log_in(pilot, account)
            await pilot.press("f2")
            await settle(pilot)
            screen = pilot.app.screen
            assert isinstance(screen, RegistrationScreen)
            await click(pilot, "#--content-tab-tab-recapitulatif")
            await settle(pilot)
            typed = screen.values()
            _full(services, small_disk)

            await click(pilot, "#save")
            await settle(pilot)
            assert pilot.app.screen is screen
            assert text_of(pilot, "#form-problem") == french("fault.disk_full")
            assert screen.values() == typed
            assert services.store.Registration.select().count() == 0

            small_disk.free()
            await click(pilot, "#save")
            await settle(pilot)
            assert isinstance(pilot.app.screen, HomeScreen)
            assert services.store.Registration.get().answers["family_name"] == account.family_name
    finally:
        services.close()


# -- a damaged store at start ---------------------------------------------------------------------


def _damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    with open(path, "r+b") as handle:
        if how == "header":
            handle.write(b"ceci n'est pas une base\0" * 4)
        elif how == "page":
            # The first table leaf page after the schema: its header smashed.
            page = next(n for n in range(2, len(data) // 4096) if data[n * 4096] == 13)
            handle.seek(page * 4096)
            handle.write(b"\xff" * 64)
        else:
            handle.truncate(len(data) // 2)


@pytest.fixture(params=["header", "page", "truncated"])
def damaged(request, tmp_path, clock):
    """A kiosk's data dir whose store, in use until now, is then damaged (``request.param``)."""
    data_dir = tmp_path / "borne"
    services = kiosk(data_dir, clock)
    for n in range(8):
        registered(services, n)
    services.store.db.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    services.close()
    path = data_dir / "kiosk.sqlite3"
    _damage(path, request.param)
    return path


def _kiosk_command(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "kiosk.py", "--data-dir", str(data_dir), *args], cwd=ROOT,
        env=environment(KIOSK_NOW=KIOSK_NOW), capture_output=True, text=True, timeout=60,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


def test_a_damaged_store_is_refused_with_a_message_for_staff_and_left_as_it_is(damaged):
    before, mtime = sha256(damaged), damaged.stat().st_mtime_ns
    with pytest.raises(StoreDamaged):
        open_store(damaged)
    for command in (["purge"], ["deliver"]):
        ran = _kiosk_command(damaged.parent, *command)
        assert ran.returncode != 0
        assert "La base de données de la borne est endommagée" in ran.stderr, ran.stderr
        assert str(damaged) in ran.stderr and "ni modifiée ni remplacée" in ran.stderr
    log = (damaged.parent / "kiosk.log").read_text(encoding="utf-8")
    assert log.count("La base de données de la borne est endommagée") == 2
    # No silent reset: the file is the one staff will look at, byte for byte.
    assert sha256(damaged) == before and damaged.stat().st_mtime_ns == mtime


LOOK_WITHOUT_PEEWEE = """
import sys
sys.modules["peewee"] = None  # importing it now fails
from kiosk.store.check import store_trouble
print(store_trouble(sys.argv[1]))
"""


def test_the_launchers_look_at_a_damaged_store_needs_no_peewee(damaged):
    # The launcher looks at the store while the first kiosk loads its code beside it.
    looked = subprocess.run(
        [sys.executable, "-c", LOOK_WITHOUT_PEEWEE, str(damaged)], cwd=ROOT,
        env=environment(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert looked.returncode == 0, looked.stderr
    assert looked.stdout.startswith("La base de données de la borne est endommagée")


def _children(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/task/{pid}/children").read_text().split()


def test_the_launcher_does_not_restart_a_kiosk_on_a_damaged_store(damaged):
    before = sha256(damaged)
    launcher = subprocess.Popen(
        [sys.executable, "kiosk.py", "--data-dir", str(damaged.parent)], cwd=ROOT,
        env=environment(KIOSK_NOW=KIOSK_NOW), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(launcher.stderr), daemon=True)
    reader.start()
    try:
        log = damaged.parent / "kiosk.log"
        wait_for(
            lambda: log.exists() and "Borne hors service" in log.read_text(encoding="utf-8"),
            "the log's message",
        )
        # It waits for staff, on its own: no kiosk started, none started again, not gone.
        for _ in range(10):
            assert _children(launcher.pid) == [] and launcher.poll() is None
            time.sleep(0.1)
    finally:
        launcher.terminate()
        launcher.wait(20)
        reader.join(10)
    text = log.read_text(encoding="utf-8")
    assert text.count("Borne hors service") == 1 and "the kiosk stopped" not in text
    assert any(
        "Borne hors service. La base de données de la borne est endommagée" in line
        for line in lines
    ), lines
    assert sha256(damaged) == before


def test_the_launcher_starts_the_kiosk_once_staff_have_restored_the_store(damaged, tmp_path, clock):
    """``supervise`` itself, with its child replaced by a stand-in that records the start
    (a real kiosk needs a terminal; the test above runs the real launcher)."""
    sound = tmp_path / "sauvegarde" / "kiosk.sqlite3"
    kiosk(sound.parent, clock).close()
    slept, started = [], []

    def sleep(seconds):
        slept.append(seconds)
        if len(slept) == 2:
            damaged.write_bytes(sound.read_bytes())  # staff restore the backup

    def run(command, **options):
        started.append(command)
        return subprocess.CompletedProcess(command, STAFF_EXIT)

    handlers = {
        name: signal.getsignal(getattr(signal, name)) for name in ("SIGINT", "SIGQUIT", "SIGTSTP")
    }
    try:
        code = supervise(["--data-dir", str(damaged.parent)], sleep=sleep, run=run,
                         check=lambda: store_trouble(damaged))  # fmt: skip
    finally:
        for name, handler in handlers.items():
            signal.signal(getattr(signal, name), handler)
    assert code == STAFF_EXIT and slept == [SLOW_RESTART, SLOW_RESTART] and len(started) == 1


# -- the kiosk's clock behind the rectorat's ------------------------------------------------------


def test_a_kiosk_two_hours_behind_the_rectorat_syncs_by_versions_and_loses_nothing(
    tmp_path, fresh_postgres_url
):
    """The window closes on 27 November at 19:00. The rectorat's clock says 20:30; the
    kiosk's says 18:30, and for the kiosk the window is still open."""
    rectorat = RectoratProcess(
        tmp_path / "rectorat", now="2019-11-27T20:30:00", db_url=fresh_postgres_url
    )
    credential = rectorat.kiosk_credential("borne-lente")
    rectorat.start()
    clock = Clock(parse_instant("2019-11-27T18:30:00"), frozen=True)
    data_dir = tmp_path / "borne-lente"
    services = kiosk(data_dir, clock)
    Registration = services.store.Registration

    def sync_process() -> str:
        """``kiosk sync --once`` as its own process, with KIOSK_NOW at the kiosk's time."""
        env = environment(
            KIOSK_NOW=clock.now().isoformat(),
            KIOSK_SYNC_URL=rectorat.url,
            KIOSK_SYNC_TOKEN=credential,
        )
        ran = subprocess.run(
            [sys.executable, "kiosk.py", "--data-dir", str(data_dir), "sync", "--once"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert ran.returncode == 0, ran.stdout + ran.stderr
        return ran.stdout

    office_store = open_rectorat(fresh_postgres_url)
    office = RectoratService(
        office_store, Clock(parse_instant("2019-11-27T20:35:00")), hasher=fast_hasher()
    )
    try:
        first_account, first = registered(services, 1)
        assert "en attente : 0" in sync_process()
        at_rectorat = office_store.Registration.get_by_id(first.id)
        assert (
            at_rectorat.number and at_rectorat.saved_at == first.saved_at
        )  # the kiosk's save time

        # The exam office receives the paper file, on the rectorat's clock (later than any
        # of the kiosk's timestamps); then the candidate changes their phone at the kiosk.
        office.set_paper_status(first.id, "received")
        clock.advance(timedelta(minutes=10))
        changed = services.registrations.save(
            first_account, values_for(services, first_account, 1, phone="05 49 11 22 33")
        )
        assert changed.version == 2 and changed.updated_at < at_rectorat.received_at
        clock.set(parse_instant("2019-11-27T18:59:59"))
        _, last_minute = registered(services, 2)

        def caught_up() -> bool:
            # The last-minute registration's number comes by a pull too, and a pull that
            # meets the rectorat's sequencer at work brings it at the next one.
            sync_process()
            received = Registration.get_by_id(first.id).paper_status == "received"
            return received and _all_numbered(services)

        wait_for(caught_up, "the paper status and every number at the kiosk")
        again = office_store.Registration.get_by_id(first.id)
        assert (again.version, again.answers["phone"], again.paper_status) == (
            2,
            "05 49 11 22 33",
            "received",
        )
        late = office_store.Registration.get_by_id(last_minute.id)
        assert late.status == "registered" and late.number and late.saved_at == last_minute.saved_at
        here = Registration.get_by_id(first.id)
        assert (here.version, here.answers["phone"], here.number) == (
            2,
            "05 49 11 22 33",
            at_rectorat.number,
        )

        # At 19:00 by its own clock, the kiosk closes: it refuses, it does not guess.
        clock.set(parse_instant("2019-11-27T19:00:01"))
        with pytest.raises(Refused) as refused:
            services.registrations.save(
                first_account, values_for(services, first_account, 1, phone="05 49 99 99 99")
            )
        assert refused.value.problems[""].key == "registration.closed"

        assert services.sync.pending() == 0
        assert_the_rectorat_holds_everything_once(services, fresh_postgres_url)
    finally:
        office_store.close()
        services.close()
        rectorat.stop()


def test_a_kiosk_ten_minutes_ahead_of_the_rectorat_loses_nothing(tmp_path, fresh_postgres_url):
    """The other way round: the kiosk's clock ten minutes ahead. The rectorat may refuse a
    save dated in its future, but then the kiosk must keep it to send again, not drop it."""
    rectorat = RectoratProcess(
        tmp_path / "rectorat", now="2019-11-10T10:00:00", db_url=fresh_postgres_url
    )
    credential = rectorat.kiosk_credential("borne-rapide")
    rectorat.start()
    clock = Clock(parse_instant("2019-11-10T10:10:00"), frozen=True)
    services = kiosk(
        tmp_path / "borne-rapide",
        clock,
        sync=SyncConfig(url=rectorat.url, token=credential, timeout=5),
    )
    try:
        _, registration = registered(services, 1)
        assert services.sync.sync_once(force=True).online
        store = open_rectorat(fresh_postgres_url)
        try:
            # Dated in the rectorat's future: not taken, and kept at the kiosk to send again.
            assert store.Registration.get_or_none(store.Registration.id == registration.id) is None
            assert services.sync.pending() > 0
            # The rectorat's clock catches up: the next round lands it, once.
            rectorat.stop()
            rectorat.env["KIOSK_NOW"] = "2019-11-10T10:11:00"
            rectorat.start()
            assert services.sync.sync_once(force=True).online
            assert services.sync.pending() == 0
            rows = store.Registration.select().where(store.Registration.id == registration.id)
            assert [r.version for r in rows] == [registration.version]
        finally:
            store.close()
    finally:
        services.sync.client.close()
        services.close()
        rectorat.stop()
