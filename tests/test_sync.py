"""Sync end to end: kiosks built with ``build_services`` on their own data dirs, each
with its own credential, against the rectorat's API served by a real uvicorn on
127.0.0.1 over a real PostgreSQL 15 (started by the tests). Clocks are frozen inside
the window of bacpro-poitiers-2020; every wait has a deadline."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

from kiosk.accounts import ACTIVATION_DEADLINE, SignUp
from kiosk.delivery.mail_queue import enqueue
from kiosk.rectorat.wire import common_batch
from kiosk.sync import client
from kiosk.sync.client import (
    FIRST_BACKOFF,
    LONGEST_BACKOFF,
    account_data,
    registration_data,
)
from tests.factories import PASSWORD, mailed_code, valid_values
from tests.support.sync_world import Kiosk

ROOT = Path(__file__).resolve().parents[1]
KIOSK_NOW = "2019-11-10T10:00:00"  # the conftest clock's instant, for the kiosk processes
# An account signed up online is the rectorat's at once (one change), then its activation
# comes with the push (another).
SIGNED_UP_THEN_ACTIVATED = 2


def wait_for(condition, timeout: float = 20, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


# -- 1. offline, then online ----------------------------------------------------------------


def test_a_registration_made_offline_reaches_the_rectorat_and_its_number_comes_back(
    rectorat, kiosks, clock
):
    kiosk = kiosks("borne-a")  # the server is not started: nothing listens on its port
    account, registration = kiosk.candidate(
        "jean.dupont@exemple.fr", "Dupont", "Jean", "05/03/2002"
    )
    offline = kiosk.sync()
    assert not offline.online and offline.error and offline.pending > 0
    assert rectorat.count("rc_account") == 0

    rectorat.start()
    clock.advance(FIRST_BACKOFF)  # the first backoff is over: the next round tries
    report = kiosk.sync()
    assert report.online and report.error == "" and report.pending == 0 and kiosk.pending() == 0
    assert report.pushed == offline.pending
    stored = rectorat.store.Account.get_by_id(account.id)
    assert (stored.version, stored.status, stored.email_key) == (
        3,
        "active",
        "jean.dupont@exemple.fr",
    )
    at_rectorat = rectorat.store.Registration.get_by_id(registration.id)
    assert at_rectorat.account_id == account.id and at_rectorat.version == 1
    assert at_rectorat.number and at_rectorat.number.startswith("2020-PO-")

    kiosk.sync()  # a later round pulls too: the number is the kiosk's, unchanged
    here = kiosk.registration(registration.id)
    assert here.number == at_rectorat.number and here.version == 1 and here.origin == "kiosk"
    assert kiosk.pending() == 0


# -- 2. a replayed batch is a no-op ---------------------------------------------------------


def test_a_replayed_batch_is_all_stale_and_changes_nothing(rectorat, kiosks):
    rectorat.start()
    kiosk = kiosks("borne-a")
    account, registration = kiosk.candidate(
        "jean.dupont@exemple.fr", "Dupont", "Jean", "05/03/2002"
    )
    account = kiosk.account(account.id)
    items = [
        {"entity": "account", "id": str(account.id), "version": account.version,
         "data": account_data(account)},
        {"entity": "registration", "id": str(registration.id), "version": registration.version,
         "data": registration_data(registration)},
    ]  # fmt: skip
    client = kiosk.services.sync.client
    assert [r["result"] for r in client.push(items)] == ["applied", "applied"]
    before = rectorat.snapshot()
    assert client.push(items) == [{"id": item["id"], "result": "stale"} for item in items]
    assert rectorat.snapshot() == before
    assert rectorat.count("rc_account") == 1 and rectorat.count("rc_registration") == 1
    assert rectorat.changes_of(account.id) == SIGNED_UP_THEN_ACTIVATED
    assert rectorat.changes_of(registration.id) == 1
    # The kiosk's own round sends them a third time: stale, and delivered.
    report = kiosk.sync()
    assert report.online and report.pending == 0
    assert rectorat.count("rc_account") == 1 and rectorat.count("rc_registration") == 1


# -- 3. killed between the rectorat's commit and the kiosk's acknowledgement ----------------


class HoldPushAnswer:
    """ASGI wrapper that only DELAYS the real answer of ``POST /v1/push``: the app has
    applied and committed the batch before its response starts; the response is held
    there until ``release`` is set. Every push answer is recorded as sent."""

    def __init__(self) -> None:
        self.app = None
        self.committed = threading.Event()
        self.release = threading.Event()
        self.answers: list[dict] = []

    def wrap(self, app) -> HoldPushAnswer:
        self.app = app
        return self

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] != "/v1/push":
            return await self.app(scope, receive, send)
        body = bytearray()

        async def held(message):
            if message["type"] == "http.response.start":
                self.committed.set()
                deadline = time.monotonic() + 30
                while not self.release.is_set() and time.monotonic() < deadline:
                    await asyncio.sleep(0.01)
            elif message["type"] == "http.response.body":
                body.extend(message.get("body", b""))
                if not message.get("more_body"):
                    self.answers.append(json.loads(body))
            await send(message)

        await self.app(scope, receive, held)


def _kiosk_sync_process(data_dir: Path, url: str, credential: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIOSK_")}
    env.update(
        KIOSK_SYNC_URL=url,
        KIOSK_SYNC_TOKEN=credential,
        KIOSK_NOW=KIOSK_NOW,
        KIOSK_SYNC_TIMEOUT="20",
    )
    return subprocess.Popen(
        [sys.executable, "kiosk.py", "--data-dir", str(data_dir), "sync", "--once"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_a_kiosk_killed_before_the_acknowledgement_resends_and_nothing_is_doubled(
    rectorat, tmp_path, clock
):
    hold = HoldPushAnswer()
    rectorat.start(wrap=hold.wrap)
    credential = rectorat.credential("borne-a")
    kiosk = Kiosk(tmp_path / "borne-a", clock, rectorat.base, credential)
    people = [("jean.dupont@exemple.fr", "Dupont", "Jean", "05/03/2002"),
              ("marie.curie@exemple.fr", "Curie", "Marie", "07/11/2001"),
              ("leo.ferre@exemple.fr", "Ferré", "Léo", "24/08/2000")]  # fmt: skip
    made = [kiosk.candidate(*person) for person in people]
    kiosk.close()  # the kiosk program below has the data dir to itself

    first = _kiosk_sync_process(kiosk.folder, rectorat.base, credential)
    try:
        assert hold.committed.wait(30), "the kiosk's push did not reach the rectorat"
        first.send_signal(signal.SIGKILL)  # while it waits for the answer
        assert first.wait(10) == -signal.SIGKILL
    finally:
        if first.poll() is None:
            first.kill()
        first.communicate(timeout=10)
        hold.release.set()
    wait_for(lambda: len(hold.answers) == 1, what="the held answer")
    assert {r["result"] for r in hold.answers[0]["results"]} == {"applied"}
    # Three accounts, their activation codes, three registrations.
    assert len(hold.answers[0]["results"]) == 9

    second = _kiosk_sync_process(kiosk.folder, rectorat.base, credential)
    out, err = second.communicate(timeout=60)
    assert second.returncode == 0, out + err
    assert len(hold.answers) == 2
    assert [r["result"] for r in hold.answers[1]["results"]] == ["stale"] * 9
    assert "en attente : 0" in out

    assert rectorat.count("rc_account") == 3 and rectorat.count("rc_registration") == 3
    for account, registration in made:
        assert rectorat.count("rc_account", "id = %s", str(account.id)) == 1
        assert rectorat.count("rc_registration", "id = %s", str(registration.id)) == 1
        assert rectorat.changes_of(account.id) == SIGNED_UP_THEN_ACTIVATED
        assert rectorat.changes_of(registration.id) == 1
    assert rectorat.count("rc_conflict") == 0

    from kiosk.store.database import open_store as open_kiosk_store

    kiosk_store = open_kiosk_store(kiosk.folder / "kiosk.sqlite3")
    OutboxRow, Registration = kiosk_store.OutboxRow, kiosk_store.Registration
    try:
        assert kiosk_store.db.execute_sql("PRAGMA integrity_check").fetchall() == [("ok",)]
        pending = OutboxRow.select().where(
            OutboxRow.kind == "sync",
            OutboxRow.delivered_at.is_null(),
            OutboxRow.failed_at.is_null(),
        )
        assert pending.count() == 0
        assert all(Registration.get_by_id(r.id).number for _, r in made)
    finally:
        kiosk_store.close()


# -- 3b. a long outbox goes in several batches ----------------------------------------------


class RecordPushes:
    """ASGI wrapper that records each ``POST /v1/push``: when its request came and its
    answer went, how many items it held, and whether it was of the shape the rectorat
    decodes typed (:mod:`kiosk.rectorat.wire`). ``spoil``: the number of answers, from the
    first, whose results come back in the wrong order."""

    def __init__(self, spoil: int = 0) -> None:
        self.app = None
        self.spoil = spoil
        self.pushes: list[dict] = []

    def wrap(self, app) -> RecordPushes:
        self.app = app
        return self

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] != "/v1/push":
            return await self.app(scope, receive, send)
        push = {"came": time.monotonic(), "items": 0}
        body, answer = bytearray(), bytearray()

        async def read():
            message = await receive()
            body.extend(message.get("body", b""))
            if not message.get("more_body"):
                push["items"] = len(json.loads(body)["items"])
                push["typed"] = common_batch(bytes(body)) is not None
            return message

        async def answered(message):
            if message["type"] == "http.response.body":
                answer.extend(message.get("body", b""))
                if self.spoil:  # the whole answer, sent at its end
                    if message.get("more_body"):
                        return
                    # The same results in reverse order: the length, already sent, holds.
                    self.spoil -= 1
                    results = json.loads(answer)
                    results["results"].reverse()
                    spoilt = json.dumps(results, separators=(",", ":")).encode()
                    message = {**message, "body": spoilt}
                if not message.get("more_body"):
                    push["went"] = time.monotonic()
                    self.pushes.append(push)
            await send(message)

        await self.app(scope, read, answered)


def _outbox_of(kiosk: Kiosk, people: int, clock) -> None:
    """``people`` accounts, each registered, written straight into the kiosk's store: an
    outbox of two rows each, as after a long day offline."""
    store, now = kiosk.services.store, clock.now()
    with store.atomic():
        for n in range(people):
            email = f"candidat{n}@exemple.fr"
            account = store.Account.create(
                email=email, email_key=email, family_name=f"Nom{n:04d}", given_names="Camille",
                password_hash="$argon2id$v=19$m=8,t=1,p=1$c2VsZWw$aGFjaGU", status="active",
                activated_at=now, created_at=now, updated_at=now,
            )  # fmt: skip
            values = valid_values(
                kiosk.services.session, family_name=f"Nom{n:04d}", given_names="Camille",
                birth_date=f"{1 + n % 28:02d}/05/2002",
            )  # fmt: skip
            store.Registration.create(
                account=account.id, session_id=kiosk.services.session.id, answers=values,
                status="registered", saved_at=now, created_at=now, updated_at=now,
            )  # fmt: skip


def test_a_long_outbox_goes_in_batches_each_sent_once_the_one_before_is_answered(
    rectorat, kiosks, clock, monkeypatch
):
    monkeypatch.setattr(client, "ACK_CHUNK", 100)  # the acknowledgements in several statements
    recorder = RecordPushes()
    rectorat.start(recorder.wrap)
    kiosk = kiosks("borne-a")
    _outbox_of(kiosk, 300, clock)
    assert kiosk.pending() == 600
    assert kiosk.services.sync.push_waiting() == 600 and kiosk.pending() == 0
    # A small batch first, read at once; then the rest, read while the first was at work.
    assert [push["items"] for push in recorder.pushes] == [250, 350]
    assert all(push["typed"] for push in recorder.pushes)  # what a kiosk sends, read typed
    first, second = recorder.pushes
    assert second["came"] > first["went"]  # an account is applied before its registration
    assert rectorat.count("rc_account") == 300 and rectorat.count("rc_registration") == 300
    # Each registration's next change goes from the version the rectorat took, as the
    # answers said (no pull yet).
    registrations = kiosk.services.store.Registration
    assert {r.synced_version for r in registrations.select()} == {1}


def test_an_answer_that_is_not_its_batchs_leaves_every_row_waiting_then_all_goes(
    rectorat, kiosks, clock
):
    recorder = RecordPushes(spoil=1)
    rectorat.start(recorder.wrap)
    kiosk = kiosks("borne-a")
    _outbox_of(kiosk, 300, clock)
    report = kiosk.sync()
    assert not report.online and "does not match" in report.error
    # The batch after it may have gone: applied there, it is not marked delivered here.
    assert kiosk.pending() == 600
    report = kiosk.sync(force=True)
    assert (report.online, report.pending) == (True, 0)
    assert rectorat.count("rc_account") == 300 and rectorat.count("rc_registration") == 300
    assert rectorat.count("rc_conflict") == 0


# -- 4. one person at two offline kiosks ----------------------------------------------------


def test_one_person_registered_at_two_offline_kiosks_gives_one_registration_and_one_conflict(
    rectorat, kiosks
):
    kiosk_a, kiosk_b = kiosks("borne-a"), kiosks("borne-b")
    account_a, registration_a = kiosk_a.candidate(
        "jean.dupont@exemple.fr", "Dupont", "Jean", "05/03/2002"
    )
    account_b, registration_b = kiosk_b.candidate(
        "jdupont@exemple.fr", "Dupont", "Jean", "05/03/2002"
    )
    answers_a, answers_b = dict(registration_a.answers), dict(registration_b.answers)

    rectorat.start()
    assert kiosk_a.sync().online and kiosk_b.sync().online
    assert kiosk_a.pending() == 0 and kiosk_b.pending() == 0
    assert rectorat.count("rc_account") == 2  # two e-mails: two accounts
    assert rectorat.count("rc_registration", "session_id = %s", "bacpro-poitiers-2020") == 1
    kept = rectorat.store.Registration.get()
    assert kept.id == registration_a.id
    conflicts = rectorat.service.conflicts()
    assert [(c.kind, c.entity_id, c.existing_id) for c in conflicts] == [
        ("identity", registration_b.id, str(registration_a.id))
    ]

    # Neither kiosk's data was overwritten.
    here_a, here_b = (
        kiosk_a.registration(registration_a.id),
        kiosk_b.registration(registration_b.id),
    )
    assert (here_a.answers, here_a.status, here_a.version, here_a.number) == (
        answers_a,
        "registered",
        1,
        kept.number,
    )
    assert (here_b.answers, here_b.status, here_b.version, here_b.number) == (
        answers_b,
        "registered",
        1,
        None,
    )
    assert (
        kiosk_a.registration(registration_b.id) is None
        and kiosk_b.registration(registration_a.id) is None
    )
    assert (
        kiosk_b.account(account_b.id).email == "jdupont@exemple.fr"
        and kiosk_b.account(account_a.id) is None
    )

    before = rectorat.snapshot()
    for kiosk in (kiosk_a, kiosk_b):
        again = kiosk.sync(force=True)
        assert again.online and (again.pushed, again.pulled, again.pending) == (0, 0, 0)
    assert rectorat.snapshot() == before
    assert kiosk_b.registration(registration_b.id).answers == answers_b


# -- 5. a transaction that commits late is not skipped by the pull --------------------------


def _pulled_once_numbered(kiosk: Kiosk) -> int:
    """What the kiosk pulls once the change waiting at the rectorat is numbered.

    The next pull numbers it, or, when the service's sequencer is at it just then, that
    round does, which a pull does not wait for (pulls never queue on its lock): the pull
    after it brings the change. Either way, it comes exactly once.
    """
    pulled: list[int] = []
    while not sum(pulled) and len(pulled) < 20:
        report = kiosk.sync()
        assert report.online
        pulled.append(report.pulled)
        if not report.pulled:
            time.sleep(0.1)
    assert kiosk.sync().pulled == 0  # not twice
    return sum(pulled)


def test_a_paper_status_committed_late_still_reaches_the_kiosk(rectorat, kiosks):
    rectorat.start(sequence_interval=0.2)
    kiosk = kiosks("borne-a")
    _, late = kiosk.candidate("jean.dupont@exemple.fr", "Dupont", "Jean", "05/03/2002")
    _, early = kiosk.candidate("marie.curie@exemple.fr", "Curie", "Marie", "07/11/2001")
    assert kiosk.sync().pending == 0
    office = rectorat.service
    holding, release, failed = threading.Event(), threading.Event(), []

    def exam_office_in_an_open_transaction():
        try:
            with office.db.connection_context(), office.db.atomic():  # its own connection
                office.set_paper_status(late.id, "incomplete", ["photo"])
                holding.set()
                release.wait(30)
        except Exception as error:  # pragma: no cover - reported below
            failed.append(error)
            holding.set()

    transaction = threading.Thread(target=exam_office_in_an_open_transaction)
    transaction.start()
    try:
        assert holding.wait(30) and not failed
        office.set_paper_status(early.id, "complete", [])  # commits while the first is open
        assert _pulled_once_numbered(kiosk) == 1
        assert kiosk.registration(early.id).paper_status == "complete"
        assert kiosk.registration(late.id).paper_status is None
    finally:
        release.set()
        transaction.join(30)
    assert not transaction.is_alive() and not failed
    assert _pulled_once_numbered(kiosk) == 1
    here = kiosk.registration(late.id)
    assert (here.paper_status, here.missing_pieces, here.version) == ("incomplete", ["photo"], 1)
    assert (
        kiosk.services.registrations.standing(kiosk.account(here.account_id)).state
        == "paper_incomplete"
    )
    assert kiosk.pending() == 0  # applied from the rectorat: nothing to send back


# -- 6. a revoked kiosk -----------------------------------------------------------------------


def test_a_revoked_kiosk_is_refused_and_keeps_its_changes_pending(rectorat, kiosks):
    rectorat.start()
    kiosk = kiosks("borne-a")
    kiosk.candidate("jean.dupont@exemple.fr", "Dupont", "Jean", "05/03/2002")
    assert kiosk.sync().pending == 0
    revoked = subprocess.run(
        [sys.executable, "kiosk.py", "rectorat", "--db", rectorat.url, "kiosk", "revoke",
         "borne-a"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
        env=dict(os.environ, KIOSK_NOW=KIOSK_NOW),
    )  # fmt: skip
    assert revoked.returncode == 0, revoked.stderr

    _, registration = kiosk.candidate("marie.curie@exemple.fr", "Curie", "Marie", "07/11/2001")
    waiting = kiosk.pending()
    assert waiting > 0
    before = rectorat.snapshot()
    for force in (False, True):
        report = kiosk.sync(force=force)
        assert not report.online and "credential" in report.error
        assert report.pending == waiting
    assert rectorat.snapshot() == before
    assert rectorat.count("rc_registration", "id = %s", str(registration.id)) == 0
    OutboxRow = kiosk.services.store.OutboxRow
    rows = list(
        OutboxRow.select().where(OutboxRow.kind == "sync", OutboxRow.delivered_at.is_null())
    )
    assert len(rows) == waiting and all(row.failed_at is None for row in rows)


# -- 7. the rectorat down for a while, then back ----------------------------------------------


def test_the_rectorat_down_for_a_while_then_back(rectorat, kiosks, clock):
    rectorat.start()
    kiosk = kiosks("borne-a")
    made = [kiosk.candidate("jean.dupont@exemple.fr", "Dupont", "Jean", "05/03/2002")]
    assert kiosk.sync().pending == 0

    rectorat.stop()
    made.append(kiosk.candidate("marie.curie@exemple.fr", "Curie", "Marie", "07/11/2001"))
    failed = kiosk.sync()
    assert not failed.online and failed.error not in ("", "waiting") and failed.pending > 0
    assert kiosk.sync().error == "waiting"  # backing off: it does not even try
    forced = kiosk.sync(force=True)
    assert not forced.online and forced.error not in ("", "waiting")
    made.append(kiosk.candidate("leo.ferre@exemple.fr", "Ferré", "Léo", "24/08/2000"))
    clock.advance(LONGEST_BACKOFF)  # the backoff is over: the next round tries, and fails
    later = kiosk.sync()
    assert not later.online and later.error not in ("", "waiting")

    rectorat.start()  # the same port
    assert kiosk.sync().error == "waiting"  # up again, but the kiosk still waits its turn
    back = kiosk.sync(force=True)
    assert back.online and back.pending == 0 and kiosk.pending() == 0
    assert rectorat.count("rc_account") == 3 and rectorat.count("rc_registration") == 3
    # The first signed up online (the rectorat had it at once, then its activation);
    # the others offline, pushed once as they are.
    for (account, registration), changes in zip(made, (2, 1, 1), strict=True):
        assert rectorat.changes_of(account.id) == changes
        assert rectorat.changes_of(registration.id) == 1
        assert kiosk.registration(registration.id).number == (
            rectorat.store.Registration.get_by_id(registration.id).number
        )
    assert rectorat.count("rc_conflict") == 0
    clock.advance(FIRST_BACKOFF)
    assert kiosk.sync().error == ""  # backing off is over after a success


# -- 8. login elsewhere -----------------------------------------------------------------------


def test_an_account_borrowed_for_a_login_elsewhere_is_forgotten_once_nothing_waits(
    rectorat, kiosks
):
    rectorat.start()
    kiosk_a, kiosk_b = kiosks("borne-a"), kiosks("borne-b")
    account, _ = kiosk_a.candidate(
        "jean.dupont@exemple.fr", "Dupont", "Jean", "05/03/2002", register=False
    )
    assert kiosk_a.sync().pending == 0

    assert kiosk_b.account(account.id) is None
    borrowed = kiosk_b.services.accounts.log_in("Jean.Dupont@exemple.fr", PASSWORD)
    assert borrowed.id == account.id
    here = kiosk_b.account(account.id)
    assert (here.origin, here.version, here.email) == ("rectorat", 2, "jean.dupont@exemple.fr")
    assert kiosk_b.pending() == 0  # borrowed: nothing to send back
    sync_b = kiosk_b.services.sync
    registrations_b = kiosk_b.services.registrations
    registrations_b.save_draft(here, {"town": "Niort"})
    assert sync_b.forget_borrowed(str(account.id)) is False  # a draft waits
    registrations_b.discard_draft(here)
    assert sync_b.forget_borrowed(str(account.id)) is True
    drafts = kiosk_b.services.store.Draft
    assert kiosk_b.account(account.id) is None and drafts.select().count() == 0

    # Back at kiosk B: the candidate registers there.
    here = kiosk_b.services.accounts.log_in("jean.dupont@exemple.fr", PASSWORD)
    values = valid_values(
        kiosk_b.services.session, family_name="Dupont", given_names="Jean", birth_date="05/03/2002"
    )
    registration = registrations_b.save(here, values)
    assert kiosk_b.pending() > 0
    assert sync_b.forget_borrowed(str(account.id)) is False  # the registration is not pushed yet
    assert (
        kiosk_b.account(account.id) is not None
        and kiosk_b.registration(registration.id) is not None
    )
    assert kiosk_b.sync().pending == 0
    at_rectorat = rectorat.store.Registration.get_by_id(registration.id)
    assert at_rectorat.account_id == account.id
    # Its mail, with the confirmation attached, has not left yet: the file must stay.
    assert sync_b.forget_borrowed(str(account.id)) is False
    assert kiosk_b.services.mail.deliver_due().sent == 1
    assert sync_b.forget_borrowed(str(account.id)) is True
    assert kiosk_b.account(account.id) is None and kiosk_b.registration(registration.id) is None

    # Kiosk A holds the account: the registration made at B comes to it.
    assert kiosk_a.sync().online
    at_a = kiosk_a.registration(registration.id)
    assert (at_a.origin, at_a.number, at_a.answers) == (
        "rectorat",
        at_rectorat.number,
        at_rectorat.answers,
    )


def test_a_borrowed_account_stays_while_a_mail_attaches_its_confirmation_then_goes(
    rectorat, kiosks
):
    """The candidate mails their confirmation at kiosk B and leaves before the mail does:
    the file stays until it has left; the next sweep, the candidate gone, forgets them."""
    rectorat.start()
    kiosk_a, kiosk_b = kiosks("borne-a"), kiosks("borne-b")
    account, _ = kiosk_a.candidate("jean.dupont@exemple.fr", "Dupont", "Jean", "05/03/2002")
    assert kiosk_a.sync().pending == 0
    b = kiosk_b.services
    here = b.accounts.log_in("jean.dupont@exemple.fr", PASSWORD)
    assert b.mail.deliver_due().failed == 0
    (confirmation,) = b.documents.documents(here)
    b.documents.email(here, confirmation.id)
    folder = b.config.data_dir / "documents"
    path = b.documents.path(b.store.Document.get_by_id(confirmation.id))

    assert b.sync.forget_borrowed(str(account.id), folder) is False
    assert b.sync.forget_idle_borrowed(folder) == 0 and path.exists()
    assert b.mail.deliver_due().sent == 1
    assert b.sync.forget_idle_borrowed(folder) == 1
    assert kiosk_b.account(account.id) is None and not path.exists()


def test_a_borrowed_account_stays_until_a_code_mailed_here_has_reached_the_rectorat(
    rectorat, kiosks
):
    rectorat.start()
    kiosk_a, kiosk_b = kiosks("borne-a"), kiosks("borne-b")
    account, _ = kiosk_a.candidate("jean.dupont@exemple.fr", "Dupont", "Jean", "05/03/2002")
    assert kiosk_a.sync().pending == 0
    b = kiosk_b.services
    b.accounts.log_in("jean.dupont@exemple.fr", PASSWORD)
    b.mail.deliver_due()
    b.accounts.request_reset("jean.dupont@exemple.fr")
    assert b.mail.deliver_due().sent == 1  # the code made as its mail left: its hashes wait
    assert b.sync.forget_borrowed(str(account.id)) is False
    assert kiosk_b.sync().pending == 0
    assert b.sync.forget_borrowed(str(account.id)) is True


# -- 9. a purge reaches the rectorat ----------------------------------------------------------


def test_an_unactivated_account_purged_at_the_kiosk_is_deleted_at_the_rectorat(
    rectorat, kiosks, clock
):
    rectorat.start()
    kiosk = kiosks("borne-a")
    account = kiosk.services.accounts.sign_up(
        SignUp("jean.dupont@exemple.fr", "Dupont", "Jean", PASSWORD, PASSWORD)
    )
    assert kiosk.sync().pending == 0
    assert rectorat.store.Account.get_by_id(account.id).status == "pending"

    clock.advance(ACTIVATION_DEADLINE)
    assert kiosk.services.accounts.purge_unactivated() == 1
    assert kiosk.pending() == 1
    report = kiosk.sync()
    assert report.online and report.pending == 0
    assert rectorat.count("rc_account", "id = %s", str(account.id)) == 0
    assert rectorat.count("rc_tombstone", "entity_id = %s", str(account.id)) == 1
    assert rectorat.count("rc_interest") == 0
    assert kiosk.account(account.id) is None


# -- regressions found while writing these tests ----------------------------------------------


def test_a_registration_is_sent_after_its_account_whatever_the_clock(rectorat, kiosks, clock):
    """The outbox is sent in the order it was written: the kiosk's clock giving the same
    instant, or stepping back, never sends a registration before its account."""
    rectorat.start()
    kiosk = kiosks("borne-a")
    people = [
        (f"candidat{n}@exemple.fr", f"Martin{'e' * n}", "Paul", f"{10 + n:02d}/01/2001")
        for n in range(6)
    ]
    made = []
    for email, family, given, birth in people:
        account, _ = kiosk.candidate(email, family, given, birth, register=False)
        clock.advance(timedelta(seconds=-30))  # NTP puts a clock that ran fast back
        s = kiosk.services
        values = valid_values(s.session, family_name=family, given_names=given, birth_date=birth)
        made.append((account, s.registrations.save(kiosk.account(account.id), values)))
    assert kiosk.sync().pending == 0
    assert rectorat.count("rc_conflict") == 0
    assert rectorat.count("rc_registration") == len(made)


def test_borrowed_records_wait_for_their_address_change_and_stay_forgotten(rectorat, kiosks, clock):
    rectorat.start()
    kiosk_a, kiosk_b = kiosks("borne-a"), kiosks("borne-b")
    account, registration = kiosk_a.candidate(
        "jean.dupont@exemple.fr", "Dupont", "Jean", "05/03/2002"
    )
    assert kiosk_a.sync().pending == 0

    here = kiosk_b.services.accounts.log_in("jean.dupont@exemple.fr", PASSWORD)
    assert kiosk_b.registration(registration.id).origin == "rectorat"
    address = {"address_line1": "3 rue des Lilas", "address_line2": "", "postal_code": "79000",
               "town": "Niort", "country": "France", "phone": "05 49 00 00 00"}  # fmt: skip
    # After the close: a notice for the exam office, not a new version.
    clock.set(kiosk_b.services.session.closes + timedelta(days=1))
    change = kiosk_b.services.registrations.report_address_change(here, address)
    assert kiosk_b.pending() == 1
    sync_b = kiosk_b.services.sync
    assert sync_b.forget_borrowed(str(account.id)) is False  # the address change is not sent yet
    assert kiosk_b.sync().pending == 0
    assert rectorat.count("rc_address_change", "id = %s", str(change.id)) == 1
    assert kiosk_b.services.sync.forget_borrowed(str(account.id)) is True

    # The candidate changes their password at kiosk A: kiosk B, which forgot them, does
    # not take their records back from the feed.
    s = kiosk_a.services
    email, new_password = "jean.dupont@exemple.fr", PASSWORD + " !"
    s.accounts.request_reset(email)
    s.accounts.reset_password(email, mailed_code(s.store, email), new_password, new_password)
    assert kiosk_a.sync().pending == 0
    assert rectorat.store.Account.get_by_id(account.id).version == 4
    assert kiosk_b.sync().online
    assert kiosk_b.account(account.id) is None and kiosk_b.registration(registration.id) is None


def test_two_registrations_of_one_account_at_two_kiosks_do_not_stop_the_pull(rectorat, kiosks):
    """The candidate registers at kiosk A and, borrowed, at kiosk B, both offline: the
    rectorat keeps one and a conflict; the other kiosk keeps its own and pulls on."""
    rectorat.start()
    kiosk_a, kiosk_b = kiosks("borne-a"), kiosks("borne-b")
    account, _ = kiosk_a.candidate(
        "jean.dupont@exemple.fr", "Dupont", "Jean", "05/03/2002", register=False
    )
    assert kiosk_a.sync().pending == 0
    here_b = kiosk_b.services.accounts.log_in("jean.dupont@exemple.fr", PASSWORD)
    rectorat.stop()
    values = valid_values(
        kiosk_a.services.session, family_name="Dupont", given_names="Jean", birth_date="05/03/2002"
    )
    at_a = kiosk_a.services.registrations.save(kiosk_a.account(account.id), values)
    at_b = kiosk_b.services.registrations.save(here_b, dict(values, phone="05 49 00 00 00"))
    rectorat.start()
    assert kiosk_a.sync(force=True).online
    report = kiosk_b.sync(force=True)
    assert report.online and report.pending == 0
    assert [c.entity_id for c in rectorat.service.conflicts()] == [
        at_b.id
    ]  # same person, same account
    assert kiosk_b.registration(at_b.id).answers["phone"] == "05 49 00 00 00"
    assert kiosk_b.registration(at_a.id) is None
    rectorat.service.set_paper_status(at_a.id, "received")
    assert kiosk_b.sync().online  # the pull goes on past it
    assert kiosk_a.sync().online and kiosk_a.registration(at_a.id).paper_status == "received"


def test_a_change_made_offline_while_the_exam_office_corrected_the_file_overwrites_neither(
    rectorat, kiosks, clock
):
    """The candidate changes their file at a kiosk cut off from the rectorat while the
    exam office corrects its identity: both are version 2. The rectorat keeps its
    correction and holds the kiosk's change for the exam office; the kiosk shows the
    correction, and the candidate's next save goes on top of it."""
    rectorat.start()
    kiosk = kiosks("borne-a")
    account, registration = kiosk.candidate(
        "jean.dupont@exemple.fr", "Dupont", "Jean", "05/03/2002"
    )
    assert kiosk.sync().pending == 0 and kiosk.registration(registration.id).synced_version == 1
    rectorat.stop()
    values = valid_values(
        kiosk.services.session, family_name="Dupont", given_names="Jean", birth_date="05/03/2002"
    )
    changed = kiosk.services.registrations.save(
        kiosk.account(account.id), dict(values, phone="05 49 00 00 00")
    )
    assert changed.version == 2
    rectorat.service.correct_identity(
        registration.id, {"family_name": "Dupont", "given_names": "Jean", "birth_town": "Niort"}
    )
    rectorat.start()
    clock.advance(FIRST_BACKOFF)
    report = kiosk.sync()
    assert report.online and report.pending == 0

    at_rectorat = rectorat.store.Registration.get_by_id(registration.id)
    assert (at_rectorat.version, at_rectorat.answers["birth_town"]) == (2, "Niort")
    assert at_rectorat.answers["phone"] == "06 12 34 56 78"
    (conflict,) = rectorat.service.conflicts()
    assert (conflict.kind, conflict.entity_id) == ("version", registration.id)
    assert conflict.incoming["answers"]["phone"] == "05 49 00 00 00"
    here = kiosk.registration(registration.id)
    assert here.answers == at_rectorat.answers  # the correction, shown at the kiosk
    # A version the kiosk never had: what it printed for its version 2 is out of date.
    assert (here.version, here.synced_version) == (3, 2)

    again = kiosk.services.registrations.save(
        kiosk.account(account.id), dict(values, phone="05 49 11 11 11")
    )
    assert kiosk.sync().pending == 0
    at_rectorat = rectorat.store.Registration.get_by_id(registration.id)
    assert (at_rectorat.version, at_rectorat.answers["birth_town"]) == (again.version, "Niort")
    assert at_rectorat.answers["phone"] == "05 49 11 11 11"
    assert rectorat.service.conflicts() == []  # superseded by the candidate's newer change
    assert kiosk.registration(registration.id).synced_version == again.version


def test_a_change_saved_while_the_batch_before_is_on_its_way_follows_the_kiosks_own(
    rectorat, kiosks, clock
):
    """A long outbox goes in batches, the next read while the rectorat answers the one
    before. A registration in that one, saved again meanwhile, goes with the base the
    kiosk knew before both: the rectorat, whose version is this kiosk's own change, takes
    it. No conflict is made of the candidate's own two saves."""
    rectorat.start()
    kiosk = kiosks("borne-a")
    account, registration = kiosk.candidate(
        "jean.dupont@exemple.fr", "Dupont", "Jean", "05/03/2002"
    )
    assert kiosk.sync().pending == 0
    values = valid_values(
        kiosk.services.session, family_name="Dupont", given_names="Jean", birth_date="05/03/2002"
    )
    save = kiosk.services.registrations.save
    save(kiosk.account(account.id), dict(values, phone="05 49 00 00 02"))  # in the first batch
    _outbox_of(kiosk, 200, clock)
    sync, read = kiosk.services.sync, kiosk.services.sync.waiting

    def saved_again_before_the_next_batch(limit, after=0):
        if after and not saved:
            saved.append(save(kiosk.account(account.id), dict(values, phone="05 49 00 00 03")))
        return read(limit, after)

    saved: list = []
    sync.waiting = saved_again_before_the_next_batch
    assert kiosk.sync().pending == 0
    at_rectorat = rectorat.store.Registration.get_by_id(registration.id)
    assert (at_rectorat.version, at_rectorat.answers["phone"]) == (3, "05 49 00 00 03")
    assert rectorat.service.conflicts() == []
    assert kiosk.registration(registration.id).synced_version == 3


def test_a_change_waiting_at_the_kiosk_is_not_overwritten_by_a_newer_one_pulled(
    rectorat, kiosks, clock
):
    """A pull that meets a registration changed here and not yet answered leaves it as the
    candidate saved it (the rectorat's numbers and paper status still arrive); the push
    that follows settles it."""
    rectorat.start()
    kiosk_a, kiosk_b = kiosks("borne-a"), kiosks("borne-b")
    account, registration = kiosk_a.candidate(
        "jean.dupont@exemple.fr", "Dupont", "Jean", "05/03/2002"
    )
    assert kiosk_a.sync().pending == 0
    values = valid_values(
        kiosk_a.services.session, family_name="Dupont", given_names="Jean", birth_date="05/03/2002"
    )
    # The candidate changes the file at kiosk B (taken by the rectorat: version 2), then at
    # kiosk A, which has not pulled B's change: its version 2 waits there.
    here_b = kiosk_b.services.accounts.log_in("jean.dupont@exemple.fr", PASSWORD)
    kiosk_b.services.registrations.save(here_b, dict(values, phone="05 49 22 22 22"))
    assert kiosk_b.sync().pending == 0
    at_a = kiosk_a.services.registrations.save(
        kiosk_a.account(account.id), dict(values, phone="05 49 33 33 33")
    )
    rectorat.service.set_paper_status(registration.id, "received")
    kiosk_a.services.sync.pull()
    here = kiosk_a.registration(registration.id)
    assert (here.answers["phone"], here.version, here.paper_status) == (
        "05 49 33 33 33",
        at_a.version,
        "received",
    )
    assert kiosk_a.pending() == 1 and here.synced_version == 1

    assert kiosk_a.sync().pending == 0  # B's change and A's: one kept aside for the exam office
    (conflict,) = rectorat.service.conflicts()
    assert (conflict.kind, conflict.incoming["answers"]["phone"]) == ("version", "05 49 33 33 33")
    assert kiosk_a.registration(registration.id).answers["phone"] == "05 49 22 22 22"


def test_a_row_made_under_the_rowid_of_a_row_deleted_during_a_push_waits_for_its_turn(
    rectorat, kiosks
):
    """A sign-up that gives way deletes its account's row, which may be the last one and
    on its way in a push; SQLite gives its rowid to the next row, the mail that tells the
    candidate. The push's acknowledgement leaves that mail to be sent."""
    rectorat.start()
    kiosk = kiosks("borne-a")
    s = kiosk.services
    account, _ = kiosk.candidate("jean.dupont@exemple.fr", "Dupont", "Jean", "05/03/2002")
    accounts, outbox = s.store.Account, s.store.OutboxRow
    # A change of the account, its row the last one (the triggers write it as its version rises).
    accounts.update(version=accounts.version + 1).where(accounts.id == account.id).execute()
    last = s.store.db.execute_sql("SELECT rowid, kind FROM outbox ORDER BY rowid DESC").fetchone()
    assert last[1] == "sync"
    answered = s.sync.client.push_body
    queued = []

    def answered_then_given_way(body: bytes) -> list:
        results = answered(body)
        with s.store.atomic():
            s.store.db.execute_sql("DELETE FROM outbox WHERE rowid = ?", (last[0],))
            queued.append(enqueue(s.store, "mail", {"to": "jean.dupont@exemple.fr"}, s.clock.now()))
        return results

    s.sync.client.push_body = answered_then_given_way
    s.sync.push_waiting()
    (mail,) = queued
    rowid = s.store.db.execute_sql("SELECT rowid FROM outbox WHERE id = ?", (str(mail.id),))
    assert rowid.fetchone()[0] == last[0]  # the freed rowid, as SQLite gives it
    assert outbox.get_by_id(mail.id).delivered_at is None
