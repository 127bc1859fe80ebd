"""A kiosk in the network: what the rectorat refuses stays visible, and the status
follows the rectorat coming and going. Kiosks are built with ``build_services`` on
their own data dirs, against the rectorat's API on a real uvicorn over PostgreSQL 15
(tests/support/sync_world.py); clocks are frozen inside the Poitiers window."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from kiosk.accounts import SignUp
from kiosk.console import open_console
from kiosk.console.views import Officer
from kiosk.errors import Refused
from kiosk.runtime.config import Config, SyncConfig
from kiosk.runtime.services import build_services
from kiosk.sync.client import FIRST_BACKOFF
from tests.factories import PASSWORD, mailed_code, valid_values
from tests.support.rectorat_process import RectoratProcess
from tests.support.sync_world import HASHER, Kiosk

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "assets" / "sessions" / "bacpro-poitiers-2020.toml"
KIOSK_NOW = "2019-11-10T10:00:00"  # the conftest clock's instant, for the kiosk processes


class KioskOnSessionFile(Kiosk):
    """A kiosk started with ``--session FILE``: a session the rectorat does not know."""

    def __init__(self, folder: Path, clock, url: str, credential: str, session: Path) -> None:
        self.folder = folder
        config = Config(
            data_dir=folder,
            session=str(session),
            sync=SyncConfig(url=url, token=credential, timeout=5),
        )
        self.config = config
        self.services = build_services(config, clock)
        self.services.accounts.hasher = HASHER


@pytest.fixture
def local_session(tmp_path) -> Path:
    text = SHIPPED.read_text(encoding="utf-8")
    path = tmp_path / "session-locale.toml"
    path.write_text(
        text.replace('id = "bacpro-poitiers-2020"', 'id = "bacpro-essai-local"'), encoding="utf-8"
    )
    return path


@pytest.fixture
def refusing_kiosk(tmp_path, clock, rectorat, local_session):
    kiosk = KioskOnSessionFile(
        tmp_path / "borne-a", clock, rectorat.base, rectorat.credential("borne-a"), local_session
    )
    yield kiosk
    kiosk.close()


def test_an_item_refused_for_good_is_kept_with_its_reason_and_not_sent_again(
    rectorat, refusing_kiosk
):
    rectorat.start()
    account, registration = refusing_kiosk.candidate(
        "jean.dupont@exemple.fr", "Dupont", "Jean", "05/03/2002"
    )
    report = refusing_kiosk.sync()
    assert report.online and report.pending == 0
    assert report.refused == {"session": 1} and report.refused_count == 1
    assert rectorat.count("rc_account") == 1 and rectorat.count("rc_registration") == 0

    again = refusing_kiosk.sync(force=True)
    assert again.refused == {"session": 1} and again.pushed == 0
    rows = refusing_kiosk.services.store.OutboxRow
    refused = list(rows.select().where(rows.kind == "sync", rows.failed_at.is_null(False)))
    assert [(r.payload["id"], r.attempts) for r in refused] == [(str(registration.id), 1)]
    assert '"session"' in refused[0].last_error


def test_staff_see_the_refused_items_in_the_console(rectorat, refusing_kiosk):
    rectorat.start()
    _, registration = refusing_kiosk.candidate(
        "jean.dupont@exemple.fr", "Dupont", "Jean", "05/03/2002"
    )
    refusing_kiosk.sync()
    glance = open_console(refusing_kiosk.services).glance(Officer("accueil", "reception"))
    assert [(i.entity, i.record_id, i.reason) for i in glance.refused] == [
        ("registration", str(registration.id), "session")
    ]


def test_kiosk_sync_once_says_how_many_were_refused_and_why(rectorat, refusing_kiosk):
    rectorat.start()
    refusing_kiosk.candidate("jean.dupont@exemple.fr", "Dupont", "Jean", "05/03/2002")
    refusing_kiosk.services.close()  # the command opens the same store
    credential = refusing_kiosk.config.sync.token
    env = dict(
        os.environ,
        KIOSK_NOW=KIOSK_NOW,
        KIOSK_SYNC_URL=rectorat.base,
        KIOSK_SYNC_TOKEN=credential,
        KIOSK_LANGUAGE="fr",
    )
    done = subprocess.run(
        [sys.executable, "kiosk.py", "--data-dir", str(refusing_kiosk.folder),
         "--session", refusing_kiosk.config.session, "sync", "--once"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "en attente : 0" in lines[0]
    assert lines[1:] == [
        "refusés par le rectorat, à voir dans la console du personnel : 1"
        " (session d'examen inconnue du rectorat)"
    ]


def test_the_status_follows_the_rectorat_within_one_sync_interval(rectorat, kiosks, clock):
    interval = timedelta(seconds=Config().sync.interval)
    kiosk = kiosks("borne-a")
    kiosk.candidate("jean.dupont@exemple.fr", "Dupont", "Jean", "05/03/2002")
    # Down for a long while: many rounds fail, the back-off grows…
    for _ in range(8):
        assert not kiosk.sync(force=True).online
    assert kiosk.sync().error == "waiting"
    rectorat.start()
    # …yet the first scheduled round after one interval tries again, and says so.
    clock.advance(interval)
    assert kiosk.sync().online
    rectorat.stop()
    clock.advance(interval)
    gone = kiosk.sync()
    assert not gone.online and gone.error not in ("", "waiting")


def test_a_short_outage_is_retried_sooner_than_the_interval(rectorat, kiosks, clock):
    kiosk = kiosks("borne-a")
    assert not kiosk.sync().online
    assert kiosk.sync().error == "waiting"
    rectorat.start()
    clock.advance(FIRST_BACKOFF)
    assert kiosk.sync().online


# -- the truth when the rectorat is away ------------------------------------------------------


def _refusal(call) -> str:
    with pytest.raises(Refused) as caught:
        call()
    return caught.value.problems[""].key


def _failures(kiosk: Kiosk) -> int:
    return kiosk.services.store.LoginFailure.select().count()


def test_a_login_elsewhere_while_the_rectorat_is_away_says_so_and_counts_nothing(rectorat, kiosks):
    rectorat.start()
    kiosk_a, kiosk_b = kiosks("borne-a"), kiosks("borne-b")
    kiosk_a.candidate("jean.dupont@exemple.fr", "Dupont", "Jean", "05/03/2002", register=False)
    assert kiosk_a.sync().pending == 0
    rectorat.stop()

    accounts_b = kiosk_b.services.accounts
    assert _refusal(lambda: accounts_b.log_in("jean.dupont@exemple.fr", PASSWORD)) == (
        "login.wrong_or_away"
    )
    assert _failures(kiosk_b) == 0  # not the candidate's failure

    rectorat.start()
    assert accounts_b.log_in("jean.dupont@exemple.fr", PASSWORD).email == "jean.dupont@exemple.fr"


def test_while_away_every_refused_login_says_the_same_whoever_the_address(rectorat, kiosks):
    kiosk = kiosks("borne-a")
    kiosk.candidate("marie.curie@exemple.fr", "Curie", "Marie", "07/11/2001", register=False)
    accounts = kiosk.services.accounts
    assert not kiosk.sync().online  # the rectorat was never started

    local_wrong = _refusal(lambda: accounts.log_in("marie.curie@exemple.fr", "pas le bon mot"))
    unknown = _refusal(lambda: accounts.log_in("personne@exemple.fr", PASSWORD))
    assert local_wrong == unknown == "login.wrong_or_away"
    assert _failures(kiosk) == 1  # the wrong password on this kiosk's account counts

    rectorat.start()
    assert kiosk.sync(force=True).online
    assert _refusal(lambda: accounts.log_in("marie.curie@exemple.fr", "pas le bon mot")) == (
        "login.wrong"
    )
    assert _refusal(lambda: accounts.log_in("personne@exemple.fr", PASSWORD)) == "login.wrong"


# -- one address, one account, network-wide ---------------------------------------------------


def _sign_up(kiosk: Kiosk, email: str, family: str = "Dupont", given: str = "Jean"):
    return kiosk.services.accounts.sign_up(SignUp(email, family, given, PASSWORD, PASSWORD))


def _accounts_here(kiosk: Kiosk) -> int:
    return kiosk.services.store.Account.select().count()


def _mails_to(kiosk: Kiosk, email: str) -> list[str]:
    rows = kiosk.services.store.OutboxRow
    return [
        row.payload["subject"]
        for row in rows.select().where(rows.kind == "mail").order_by(rows.created_at)
        if row.payload["to"] == email
    ]


def test_online_a_sign_up_is_the_rectorats_at_once_and_its_push_changes_nothing(rectorat, kiosks):
    rectorat.start()
    kiosk = kiosks("borne-a")
    account = _sign_up(kiosk, "jean.dupont@exemple.fr")
    assert rectorat.count("rc_account", "id = %s", str(account.id)) == 1
    report = kiosk.sync()
    assert report.online and report.pending == 0 and report.refused == {}
    assert rectorat.count("rc_account") == 1 and rectorat.count("rc_conflict") == 0


def test_an_address_with_an_account_at_another_kiosk_is_answered_alike_and_its_owner_told(
    rectorat, kiosks
):
    rectorat.start()
    kiosk_a, kiosk_b = kiosks("borne-a"), kiosks("borne-b")
    first = _sign_up(kiosk_a, "jean.dupont@exemple.fr")
    again = _sign_up(kiosk_b, "Jean.Dupont@Exemple.fr", "Martin", "Paul")
    # The screen shows the same answer as for a new account; nothing is made at B.
    assert again.email == "Jean.Dupont@exemple.fr" and again.id != first.id
    assert _accounts_here(kiosk_b) == 0
    assert _mails_to(kiosk_b, "Jean.Dupont@exemple.fr") == [
        "Votre compte candidat existe déjà – Baccalauréat professionnel — session de juin 2020"
    ]
    assert kiosk_b.sync().pending == 0
    assert rectorat.count("rc_account") == 1 and rectorat.count("rc_conflict") == 0


def test_offline_a_sign_up_is_made_here_alone(rectorat, kiosks):
    kiosk = kiosks("borne-a")  # the rectorat is not started
    account = _sign_up(kiosk, "jean.dupont@exemple.fr")
    assert _accounts_here(kiosk) == 1 and kiosk.account(account.id).status == "pending"
    rectorat.start()
    assert kiosk.sync(force=True).online
    assert rectorat.count("rc_account", "id = %s", str(account.id)) == 1


def test_two_kiosks_signing_up_one_address_at_once_through_two_service_processes(
    tmp_path, clock, fresh_postgres_url
):
    services = [
        RectoratProcess(tmp_path / f"rectorat-{n}", now=KIOSK_NOW, db_url=fresh_postgres_url)
        for n in (1, 2)
    ]
    kiosks_made: list[Kiosk] = []
    try:
        for service in services:
            service.start()
        for n, service in enumerate(services, 1):
            credential = services[0].kiosk_credential(f"borne-{n}")
            kiosks_made.append(Kiosk(tmp_path / f"borne-{n}", clock, service.url, credential))
        for attempt in range(5):
            email = f"meme.adresse.{attempt}@exemple.fr"
            start = threading.Barrier(2)

            def sign_up(kiosk: Kiosk, email: str = email, start=start) -> None:
                start.wait()
                _sign_up(kiosk, email)

            threads = [threading.Thread(target=sign_up, args=(k,)) for k in kiosks_made]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(30)
            made_here = [
                k.services.store.Account.select()
                .where(k.services.store.Account.email == email)
                .count()
                for k in kiosks_made
            ]
            assert sorted(made_here) == [0, 1], (email, made_here)
        for kiosk in kiosks_made:
            assert kiosk.sync(force=True).online
        with psycopg.connect(fresh_postgres_url) as db:
            (live,) = db.execute("SELECT count(*) FROM rc_account").fetchone()
            (conflicts,) = db.execute("SELECT count(*) FROM rc_conflict").fetchone()
        assert (live, conflicts) == (5, 0)
    finally:
        for kiosk in kiosks_made:
            kiosk.close()
        for service in services:
            service.stop()


class Busy:
    """ASGI wrapper that answers every push ``429`` with ``Retry-After``, as the
    rectorat's rate limiter does, while ``busy`` is set; everything else goes through."""

    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after
        self.busy = True
        self.pushes = 0

    def wrap(self, app):
        async def asgi(scope, receive, send):
            if self.busy and scope["type"] == "http" and scope["path"] == "/v1/push":
                self.pushes += 1
                await send({
                    "type": "http.response.start", "status": 429,
                    "headers": [(b"retry-after", str(self.retry_after).encode()),
                                (b"content-type", b"application/json")],
                })  # fmt: skip
                await send({"type": "http.response.body", "body": b'{"error": "rate_limited"}'})
                return
            await app(scope, receive, send)

        return asgi


def test_a_kiosk_told_to_wait_waits_as_long_as_it_is_told(rectorat, kiosks, clock):
    busy = Busy(retry_after=120)
    rectorat.start(wrap=busy.wrap)
    kiosk = kiosks("borne-a")
    kiosk.candidate("jean.dupont@exemple.fr", "Dupont", "Jean", "05/03/2002")
    told = kiosk.sync()
    assert not told.online and "429" in told.error and busy.pushes == 1
    clock.advance(timedelta(seconds=Config().sync.interval))
    assert kiosk.sync().error == "waiting" and busy.pushes == 1
    busy.busy = False
    clock.advance(timedelta(seconds=120))
    assert kiosk.sync().online and kiosk.pending() == 0


@pytest.mark.parametrize("answer_lost", [False, True])
def test_an_offline_sign_up_found_taken_is_told_at_the_next_login_and_loses_nothing(
    rectorat, kiosks, answer_lost
):
    rectorat.start()
    kiosk_a, kiosk_b = kiosks("borne-a"), kiosks("borne-b")
    first, _ = kiosk_a.candidate(
        "jean.dupont@exemple.fr", "Dupont", "Jean", "05/03/2002", register=False
    )
    assert kiosk_a.sync().pending == 0
    rectorat.stop()

    # At B, offline: the same address signs up again, with another password, and registers.
    other_password = "un autre mot de passe 42"
    accounts_b = kiosk_b.services.accounts
    made = accounts_b.sign_up(
        SignUp("jean.dupont@exemple.fr", "Dupont", "Jean", other_password, other_password)
    )
    accounts_b.activate(made.email, mailed_code(kiosk_b.services.store, made.email))
    here = accounts_b.log_in(made.email, other_password)
    values = valid_values(
        kiosk_b.services.session, family_name="Dupont", given_names="Jean", birth_date="05/03/2002"
    )
    kiosk_b.services.registrations.save(here, {**values, "town": "Niort"})

    rectorat.start()
    if answer_lost:  # the push is taken, its answer lost: the round sends it all again
        sync_b = kiosk_b.services.sync
        assert "conflict" in {r["result"] for r in sync_b.client.push_body(sync_b.waiting().body)}
    assert kiosk_b.sync(force=True).online
    assert rectorat.count("rc_account") == 1  # one live account: A's
    assert rectorat.count("rc_conflict", "kind = %s", "email_key") == 1

    # The next login at B with the account made there says what to do, and counts nothing.
    assert _refusal(lambda: accounts_b.log_in(made.email, other_password)) == (
        "login.taken_elsewhere"
    )
    assert _failures(kiosk_b) == 0
    # With the account that stays, the candidate finds what they saved at B as a draft.
    stays = accounts_b.log_in(made.email, PASSWORD)
    assert stays.id == first.id and kiosk_b.account(made.id) is None
    draft = kiosk_b.services.registrations.draft(stays)
    assert draft is not None and draft.values["town"] == "Niort"
    # What B pushed of it waits at the rectorat too, for the exam office.
    assert rectorat.count("rc_conflict", "kind = %s", "account") == 1


def test_the_language_of_an_account_s_mails_follows_it_to_another_kiosk(rectorat, kiosks):
    rectorat.start()
    kiosk_a, kiosk_b = kiosks("borne-a"), kiosks("borne-b")
    accounts_a = kiosk_a.services.accounts
    made = accounts_a.sign_up(
        SignUp("jean.dupont@exemple.fr", "Dupont", "Jean", PASSWORD, PASSWORD, language="en")
    )
    accounts_a.activate(made.email, mailed_code(kiosk_a.services.store, made.email))
    assert kiosk_a.sync().pending == 0
    assert rectorat.store.Account.get_by_id(made.id).language == "en"

    borrowed = kiosk_b.services.accounts.log_in(made.email, PASSWORD)
    assert borrowed.language == "en"
    kiosk_b.services.accounts.request_reset(made.email)
    assert _mails_to(kiosk_b, made.email)[-1].startswith("Code to reset your password")
