"""A kiosk at work, to be killed: the child process of the crash trials
(tests/test_crash_trials.py).

``python -m tests.support.crash_child`` is a fork server. It imports the kiosk's modules once and
says ``ready``; then each line it reads on stdin starts one kiosk process, forked from it:

- ``run DATA_DIR NOW SEED``: a kiosk that works until it is killed, as the kiosk program
  does, with a thread for each of its jobs: the candidates' desk (sign up, activate,
  save, change, withdraw, report an address, make, print and mail the documents), mail
  delivery from the outbox, and sync with the rectorat;
- ``drain DATA_DIR NOW SEED``: a kiosk that only delivers the outbox's mail and syncs
  until nothing waits, then exits 0.

The server answers ``pid PID`` as soon as the kiosk runs, then ``exit PID STATUS`` when
it has ended (``STATUS`` as ``os.waitpid`` gives it). Forking a warm interpreter starts
a kiosk in milliseconds instead of the third of a second a fresh one takes to import:
that is what lets a test kill a hundred kiosks in well under a minute. Nothing of the
store is opened before the fork; each kiosk opens it as the kiosk program does.

A kiosk writes, in its data dir:

- ``journal``: what it was told is saved, one line per fact, written only after the
  service call returned (``registration ID VERSION STATUS``, ``document ID SHA256``,
  ``printed PATH``); a line is one ``write`` on a file opened for appending, so a kill
  leaves whole lines only;
- ``activity``: ``THREAD begin WHAT`` / ``THREAD end WHAT`` around each step, so that the
  test knows what each thread was doing when the kill came;
- ``failure``: the traceback of anything unexpected, after which it exits with code 3.

The configuration comes from the environment (``KIOSK_SYNC_URL``, ``KIOSK_SYNC_TOKEN``);
mail goes to the data dir's Maildir, documents are printed into its print folder.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import sys
import threading
import time
import traceback
import uuid
from dataclasses import replace
from pathlib import Path

from argon2 import PasswordHasher

import kiosk.delivery.mail_queue  # noqa: F401
import kiosk.delivery.mail_transport  # noqa: F401
import kiosk.delivery.pdf  # noqa: F401
import kiosk.delivery.printing  # noqa: F401

# The kiosks' other modules, imported before forking so that a kiosk starts at once.
import kiosk.documents  # noqa: F401
import kiosk.registrations  # noqa: F401
import kiosk.store.database  # noqa: F401
import kiosk.sync.client  # noqa: F401
from kiosk.accounts import SignUp
from kiosk.delivery.mail_queue import pending_count
from kiosk.errors import Refused
from kiosk.passwords import Hasher
from kiosk.runtime.config import load_config
from kiosk.runtime.services import build_services
from kiosk.store.models import AddressChange, Registration
from tests.test_registration_form import valid_values

PASSWORD = "cheval agrafe lumière 42"
FAILED = 3
_CODE = re.compile(r"est : (\w{4}-\w{4})")
_LETTERS = "abcdefghijklmnopqrstuvwxyz"


class Kiosk:
    """One kiosk process: its services, its journal, and the threads that do its jobs."""

    def __init__(self, data_dir: Path, now: str, seed: int) -> None:
        self.data_dir = data_dir
        self.random = random.Random(seed)
        config = load_config(overrides={"data_dir": data_dir, "session": "bacpro-poitiers-2020"})
        self.services = build_services(replace(config, now=now))
        # Tests only: argon2 with tiny costs. The kiosk uses argon2-cffi's defaults.
        self.services.accounts.hasher = Hasher(
            PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
        )
        # The codes are made (and hashed) as their mails are sent: the same tiny costs.
        self.services.mail.hasher = self.services.accounts.hasher
        self._journal = os.open(data_dir / "journal", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._activity = os.open(
            data_dir / "activity", os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_TRUNC, 0o600
        )

    # -- records of what happened --------------------------------------------------------

    def journal(self, line: str) -> None:
        os.write(self._journal, (line + "\n").encode())

    @contextlib.contextmanager
    def step(self, thread: str, what: str):
        """Mark the start and the end of one step of ``thread`` in the activity file."""
        os.write(self._activity, f"{thread} begin {what}\n".encode())
        yield
        os.write(self._activity, f"{thread} end {what}\n".encode())

    # -- the threads ---------------------------------------------------------------------

    def run(self) -> None:
        """Work until killed: the desk, mail delivery and sync, each in its thread."""
        _ = self.services.store  # opened here, after the fork, as the kiosk opens it
        threads = [
            threading.Thread(target=self._guard, args=(job,), name=job.__name__, daemon=True)
            for job in (self.console, self.mailer, self.syncer)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def drain(self) -> None:
        """Deliver every mail and push every change, then stop."""
        services = self.services
        for _ in range(200):
            services.mail.deliver_due(limit=500)
            report = services.sync.sync_once(force=True)
            if report.online and report.pending == 0 and pending_count(services.store, "mail") == 0:
                return
            time.sleep(0.05)
        raise RuntimeError(
            f"the outbox does not drain: {report}, mail {pending_count(services.store, 'mail')}"
        )

    def _guard(self, job) -> None:
        try:
            with self.services.store.connection_context():
                job()
        except BaseException:
            failure = self.data_dir / "failure"
            failure.write_text(traceback.format_exc(), encoding="utf-8")
            os._exit(FAILED)

    def mailer(self) -> None:
        while True:
            with self.step("mail", "deliver"):
                self.services.mail.deliver_due()
            time.sleep(0.002)

    def syncer(self) -> None:
        while True:
            with self.step("sync", "sync"):
                self.services.sync.sync_once(force=True)
            time.sleep(0.005)

    def console(self) -> None:
        store = self.services.store
        active = store.Account.select(store.Account.id).where(store.Account.status == "active")
        accounts = [a.id for a in active]
        while True:
            roll = self.random.random()
            if roll < 0.35 or not accounts:
                with self.step("desk", "save"):
                    accounts.append(self.new_candidate())
                continue
            account = store.Account.get_by_id(self.random.choice(accounts))
            if roll < 0.6:
                with self.step("desk", "save"):
                    self.change(account)
            elif roll < 0.7:
                with self.step("desk", "save"):
                    self.withdraw_or_register_again(account)
            elif roll < 0.78:
                with self.step("desk", "save"):
                    self.report_address(account)
            else:
                with self.step("desk", "print"):
                    self.documents(account)

    # -- the desk's steps, as the screens call them ------------------------------------

    def new_candidate(self):
        services, r = self.services, self.random
        family = "Martin" + "".join(r.choice(_LETTERS) for _ in range(8))
        email = f"c{uuid.uuid4().hex[:16]}@exemple.fr"
        account = services.accounts.sign_up(SignUp(email, family, "Paul", PASSWORD, PASSWORD))
        account = services.accounts.activate(account.email, self._code(account.email))
        birth = f"{r.randint(1, 28):02d}/{r.randint(1, 12):02d}/{r.randint(1990, 2001)}"
        values = valid_values(
            services.session, family_name=family, given_names="Paul", birth_date=birth
        )
        self._saved(services.registrations.save(account, values))
        return account.id

    def change(self, account) -> None:
        registrations = self.services.registrations
        registration = registrations.registration(account)
        if registration is None:
            return
        r = self.random
        values = dict(
            registration.answers, phone=f"06 12 {r.randint(10, 99)} 56 {r.randint(10, 99)}"
        )
        try:
            self._saved(registrations.save(account, values))
        except Refused:
            pass  # unchanged, or set aside: nothing was saved

    def withdraw_or_register_again(self, account) -> None:
        registrations = self.services.registrations
        registration = registrations.registration(account)
        if registration is None:
            return
        if registration.status == "registered":
            self._saved(registrations.withdraw(account))
        elif registration.status == "withdrawn":
            # The candidate registers again with the answers withdrawn.
            self._saved(registrations.save(account, dict(registration.answers)))

    def report_address(self, account) -> None:
        address = {
            "address_line1": f"{self.random.randint(1, 99)} rue des Lilas", "address_line2": "",
            "postal_code": "79000", "town": "Niort", "country": "France", "phone": "05 49 00 00 00",
        }  # fmt: skip
        try:
            outcome = self.services.registrations.report_address_change(account, address)
        except Refused:
            return  # withdrawn, or the same address: nothing to change
        if isinstance(outcome, AddressChange):  # a notice (after the close)
            self.journal(f"address_change {outcome.id}")
        else:  # while the window is open: a new version of the registration
            self._saved(outcome)

    def documents(self, account) -> None:
        documents = self.services.documents
        current = [d for d in documents.documents(account) if not d.superseded]
        for view in current:
            document = self.services.store.Document.get_by_id(view.id)
            self.journal(f"document {view.id} {document.sha256}")
            job = documents.print(account, view.id)
            self.journal(f"printed {job.path}")
            documents.email(account, view.id)

    def _saved(self, registration) -> None:
        self.journal(f"registration {registration.id} {registration.version} {registration.status}")

    def _code(self, email: str) -> str:
        """The activation code, as the candidate reads it: in the Maildir, once the mail
        thread has sent it (a queued mail holds no code: it is made as the mail is sent)."""
        outbox = self.services.store.OutboxRow
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            mails = outbox.select().where(outbox.kind == "mail").order_by(outbox.created_at.desc())
            for mail in mails:
                if mail.payload.get("to") != email or mail.delivered_at is None:
                    continue
                path = self.services.config.maildir_path / "new" / f"{mail.id.hex}.kiosk"
                found = _CODE.search(path.read_text(encoding="utf-8"))
                if found:
                    return found.group(1)
            time.sleep(0.005)
        raise AssertionError(f"no activation mail for {email}")


def _child(command: str, data_dir: str, now: str, seed: str) -> None:
    try:
        kiosk_ = Kiosk(Path(data_dir), now, int(seed))
        if command == "drain":
            with kiosk_.services.store.connection_context():
                kiosk_.drain()
        else:
            kiosk_.run()
    except BaseException:
        Path(data_dir, "failure").write_text(traceback.format_exc(), encoding="utf-8")
        os._exit(FAILED)
    os._exit(0)


def _warm_up() -> None:
    """Render one confirmation, so that every kiosk forked from here finds the fonts parsed,
    as a kiosk that has made one document before does (it keeps them for its lifetime)."""
    from kiosk.clock import Clock, parse_instant
    from kiosk.delivery.pdf import render_confirmation
    from kiosk.exam_sessions import load_session
    from kiosk.registration_form import check

    now = parse_instant("2019-11-10T10:00:00")
    session = load_session("bacpro-poitiers-2020", Clock(now, frozen=True))
    answers = check(valid_values(session), session).answers
    registration = Registration(
        id=uuid.uuid4(), version=1, answers=answers, status="registered", saved_at=now
    )
    render_confirmation(registration, "jean.dupont@exemple.fr", session, now)


def serve() -> None:
    """The fork server's loop: one kiosk at a time, as the test asks."""
    _warm_up()
    print("ready", flush=True)
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == "quit":
            return
        pid = os.fork()
        if pid == 0:
            _child(*words)
        print(f"pid {pid}", flush=True)
        _, status = os.waitpid(pid, 0)
        print(f"exit {pid} {status}", flush=True)


if __name__ == "__main__":
    serve()
