"""An account made at kiosk A is activated anywhere: with the code of its mail at kiosk
B, or with the link of that mail, served by the rectorat. Kiosks are built with
``build_services`` on their own data dirs; the rectorat's API runs on a real uvicorn
over PostgreSQL 15 (tests/support/sync_world.py); the link is followed with a real
HTTP client. Clocks are frozen inside the Poitiers window and shared."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
import pytest
from peewee import SQL

from kiosk.accounts import ACTIVATION_DEADLINE, CODE_TRIES, RESEND_INTERVAL, SignUp
from kiosk.errors import Refused
from tests.factories import PASSWORD, mailed_code, sent_body
from tests.support.sync_world import Kiosk

EMAIL = "jean.dupont@exemple.fr"
PUBLIC = "https://inscriptions.example.fr"
_LINK = re.compile(r"(https://\S+/activation/(\S+))")


def _refusal(call, field: str = "code") -> str:
    with pytest.raises(Refused) as caught:
        call()
    return caught.value.problems[field].key


def _signed_up_at_a(kiosk: Kiosk) -> None:
    kiosk.services.accounts.sign_up(SignUp(EMAIL, "Dupont", "Jean", PASSWORD, PASSWORD))


def _latest_body(kiosk: Kiosk) -> str:
    """The latest mail to the candidate, as sent (its code made then)."""
    outbox = kiosk.services.store.OutboxRow
    rows = [
        row
        for row in outbox.select().where(outbox.kind == "mail").order_by(SQL("rowid"))
        if row.payload["to"] == EMAIL
    ]
    return sent_body(kiosk.services.store, rows[-1])


def _status_at_rectorat(rectorat) -> str:
    return rectorat.store.Account.get(rectorat.store.Account.email_key == EMAIL).status


@pytest.fixture
def two_kiosks(rectorat, kiosks, monkeypatch):
    monkeypatch.setenv("KIOSK_RECTORAT_PUBLIC_URL", PUBLIC + "/")
    rectorat.start()
    kiosk_a, kiosk_b = kiosks("borne-a"), kiosks("borne-b")
    assert kiosk_a.sync().online  # the feed's first page tells it the public address
    return kiosk_a, kiosk_b


def test_the_code_mailed_at_kiosk_a_activates_the_account_at_kiosk_b(rectorat, two_kiosks):
    kiosk_a, kiosk_b = two_kiosks
    _signed_up_at_a(kiosk_a)
    code = mailed_code(kiosk_a.services.store, EMAIL)
    assert kiosk_a.sync().pending == 0  # the code's hashes reach the rectorat

    account = kiosk_b.services.accounts.activate(EMAIL, code.lower())
    assert (account.email, account.status) == (EMAIL, "active")
    assert kiosk_b.account(account.id).origin == "rectorat"  # B holds it, as after a login
    assert _status_at_rectorat(rectorat) == "active"
    assert kiosk_b.services.accounts.log_in(EMAIL, PASSWORD).id == account.id

    # Single use: the same code again, at B or at A, is refused as any wrong code.
    assert _refusal(lambda: kiosk_b.services.accounts.activate(EMAIL, code)) == (
        "code.wrong_or_expired"
    )
    assert kiosk_a.sync().online
    assert kiosk_a.account(account.id).status == "active"  # A learns it from the feed
    assert _refusal(lambda: kiosk_a.services.accounts.activate(EMAIL, code)) == (
        "code.wrong_or_expired"
    )


def test_at_kiosk_b_a_wrong_code_and_an_unknown_address_are_refused_alike(
    rectorat, two_kiosks, clock
):
    kiosk_a, kiosk_b = two_kiosks
    _signed_up_at_a(kiosk_a)
    code = mailed_code(kiosk_a.services.store, EMAIL)
    assert kiosk_a.sync().pending == 0
    accounts_b = kiosk_b.services.accounts
    wrong = _refusal(lambda: accounts_b.activate(EMAIL, "AAAA-AAAA"))
    unknown = _refusal(lambda: accounts_b.activate("personne@exemple.fr", code))
    assert wrong == unknown == "code.wrong_or_expired"
    # Five wrong tries in all spend the code, wherever they were made; this kiosk then
    # waits for this address, as after failed logins elsewhere (the other kiosks do not).
    for _ in range(CODE_TRIES - 1):
        assert _refusal(lambda: accounts_b.activate(EMAIL, "AAAA-AAAA")) == (
            "code.wrong_or_expired"
        )
    assert _refusal(lambda: accounts_b.activate(EMAIL, code)) == "code.wait"
    clock.advance(timedelta(seconds=30))
    assert _refusal(lambda: accounts_b.activate(EMAIL, code)) == "code.wrong_or_expired"
    assert _status_at_rectorat(rectorat) == "pending"
    # A new code, asked for at A, comes with its own tries: the owner is not blocked.
    # (Kiosk A does not know that its code was burnt elsewhere: it sends another once a
    # minute has passed since the last.)
    clock.advance(RESEND_INTERVAL)  # and B's own delay for this address is over
    kiosk_a.services.accounts.resend_activation(EMAIL)
    fresh = mailed_code(kiosk_a.services.store, EMAIL)
    assert fresh != code and kiosk_a.sync().pending == 0
    assert kiosk_b.services.accounts.activate(EMAIL, fresh).status == "active"


def test_at_kiosk_b_with_the_rectorat_away_the_candidate_is_told_and_nothing_counts(
    rectorat, two_kiosks
):
    kiosk_a, kiosk_b = two_kiosks
    _signed_up_at_a(kiosk_a)
    code = mailed_code(kiosk_a.services.store, EMAIL)
    assert kiosk_a.sync().pending == 0
    rectorat.stop()
    assert _refusal(lambda: kiosk_b.services.accounts.activate(EMAIL, code)) == (
        "code.wrong_or_away"
    )
    assert kiosk_b.services.store.LoginFailure.select().count() == 0
    rectorat.start()
    assert kiosk_b.services.accounts.activate(EMAIL, code).status == "active"


def test_the_link_of_the_mail_activates_the_account_once(rectorat, two_kiosks):
    kiosk_a, _ = two_kiosks
    _signed_up_at_a(kiosk_a)
    body = _latest_body(kiosk_a)
    found = _LINK.search(body)
    assert found, body
    assert "Vous pouvez aussi cliquer sur le lien « Activer mon compte » :" in body
    url, token = found.groups()
    assert url.startswith(PUBLIC + "/activation/") and "//activation" not in url
    stored = kiosk_a.services.store.OneTimeCode.get()
    assert token not in (stored.link_hash or "") and token not in str(stored.code_hash)
    assert kiosk_a.sync().pending == 0

    path = url.removeprefix(PUBLIC)
    with httpx.Client(base_url=rectorat.base) as browser:
        page = browser.get(path)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "<script" not in page.text and "src=" not in page.text and "href=" not in page.text
        assert "Activer mon compte" in page.text
        assert "default-src 'none'" in page.headers["content-security-policy"]
        assert _status_at_rectorat(rectorat) == "pending"  # opening the link changes nothing

        done = browser.post(path)
        assert done.status_code == 200 and "Votre compte est activé" in done.text
        assert _status_at_rectorat(rectorat) == "active"
        again = browser.post(path)
        assert again.status_code == 410 and "n'est plus valable" in again.text

    assert kiosk_a.sync().online
    assert kiosk_a.services.store.Account.get().status == "active"


def test_the_link_ends_with_the_48_hours(rectorat, two_kiosks, clock):
    kiosk_a, _ = two_kiosks
    _signed_up_at_a(kiosk_a)
    url, _ = _LINK.search(_latest_body(kiosk_a)).groups()
    assert kiosk_a.sync().pending == 0
    clock.advance(ACTIVATION_DEADLINE)
    with httpx.Client(base_url=rectorat.base) as browser:
        refused = browser.post(url.removeprefix(PUBLIC))
    assert refused.status_code == 410 and _status_at_rectorat(rectorat) == "pending"


def test_the_link_works_up_to_the_last_second(rectorat, two_kiosks, clock):
    kiosk_a, _ = two_kiosks
    _signed_up_at_a(kiosk_a)
    url, _ = _LINK.search(_latest_body(kiosk_a)).groups()
    assert kiosk_a.sync().pending == 0
    clock.advance(ACTIVATION_DEADLINE - timedelta(seconds=1))
    with httpx.Client(base_url=rectorat.base) as browser:
        assert browser.post(url.removeprefix(PUBLIC)).status_code == 200
    assert _status_at_rectorat(rectorat) == "active"


def test_without_a_public_address_the_mail_has_no_link(rectorat, kiosks):
    rectorat.start()
    kiosk_a = kiosks("borne-a")
    assert kiosk_a.sync().online
    _signed_up_at_a(kiosk_a)
    body = _latest_body(kiosk_a)
    assert "/activation/" not in body and "lien" not in body
    assert "\x1f" not in body


# -- a forgotten password, at any kiosk -------------------------------------------------------

NEW_PASSWORD = "un tout autre mot de passe 77"
_RESET_CODE = re.compile(r"Votre code est : ([A-Z0-9]{4}-[A-Z0-9]{4})")


def _active_at_a(kiosk: Kiosk) -> None:
    _signed_up_at_a(kiosk)
    kiosk.services.accounts.activate(EMAIL, mailed_code(kiosk.services.store, EMAIL))
    assert kiosk.sync().pending == 0


def _rectorat_code(rectorat) -> str:
    (mail,) = [m for m in rectorat.mailbox() if m.to == EMAIL]
    assert mail.subject.startswith("Code de réinitialisation de votre mot de passe")
    return _RESET_CODE.search(mail.body).group(1)


def test_a_reset_code_asked_for_at_kiosk_b_comes_from_the_rectorat(rectorat, two_kiosks):
    kiosk_a, kiosk_b = two_kiosks
    _active_at_a(kiosk_a)
    accounts_b = kiosk_b.services.accounts
    assert accounts_b.request_reset(EMAIL) is True
    assert accounts_b.request_reset("personne@exemple.fr") is True  # the same answer
    code = _rectorat_code(rectorat)  # one mail: to the owner only
    stored = rectorat.store.Code.get(rectorat.store.Code.purpose == "reset")
    assert code.replace("-", "") not in stored.code_hash

    # A password with the candidate's name is refused by the rectorat, code kept.
    assert (
        _refusal(
            lambda: accounts_b.reset_password(
                EMAIL, code, "Dupont Jean 2019!", "Dupont Jean 2019!"
            ),
            "password",
        )
        == "password.personal"
    )
    account = accounts_b.reset_password(EMAIL, code, NEW_PASSWORD, NEW_PASSWORD)
    assert account.email == EMAIL and kiosk_b.account(account.id).origin == "rectorat"
    assert accounts_b.log_in(EMAIL, NEW_PASSWORD).id == account.id
    # The code works once; kiosk A learns the new password from the feed.
    assert _refusal(lambda: accounts_b.reset_password(EMAIL, code, NEW_PASSWORD, NEW_PASSWORD)) in (
        "code.wrong_or_expired",
    )
    assert kiosk_a.sync().online
    assert kiosk_a.services.accounts.log_in(EMAIL, NEW_PASSWORD).id == account.id


def test_a_reset_code_made_at_kiosk_a_works_at_kiosk_b(rectorat, two_kiosks):
    kiosk_a, kiosk_b = two_kiosks
    _active_at_a(kiosk_a)
    kiosk_a.services.accounts.request_reset(EMAIL)
    code = mailed_code(kiosk_a.services.store, EMAIL)
    assert kiosk_a.sync().pending == 0
    account = kiosk_b.services.accounts.reset_password(EMAIL, code, NEW_PASSWORD, NEW_PASSWORD)
    assert kiosk_b.services.accounts.log_in(EMAIL, NEW_PASSWORD).id == account.id


def test_a_reset_at_kiosk_b_with_the_rectorat_away_says_so(rectorat, two_kiosks):
    kiosk_a, kiosk_b = two_kiosks
    _active_at_a(kiosk_a)
    rectorat.stop()
    accounts_b = kiosk_b.services.accounts
    assert accounts_b.request_reset(EMAIL) is False
    assert (
        _refusal(lambda: accounts_b.reset_password(EMAIL, "AAAA-AAAA", NEW_PASSWORD, NEW_PASSWORD))
        == "code.reset_wrong_or_away"
    )
    assert kiosk_b.services.store.LoginFailure.select().count() == 1  # the request, as always


def test_with_the_rectorat_away_an_address_of_this_kiosk_and_an_unknown_one_are_refused_alike(
    rectorat, two_kiosks
):
    """Kiosk A holds the address; another is unknown here, and may have an account at a
    kiosk the rectorat cannot be asked about now: both are told so, in the same words."""
    kiosk_a, _ = two_kiosks
    _signed_up_at_a(kiosk_a)
    rectorat.stop()
    assert not kiosk_a.sync().online
    accounts_a = kiosk_a.services.accounts
    here = _refusal(lambda: accounts_a.activate(EMAIL, "AAAA-AAAA"))
    unknown = _refusal(lambda: accounts_a.activate("personne@exemple.fr", "AAAA-AAAA"))
    assert here == unknown == "code.wrong_or_away"
    accounts_a.activate(EMAIL, mailed_code(kiosk_a.services.store, EMAIL))
    accounts_a.request_reset(EMAIL)
    for email in (EMAIL, "personne@exemple.fr"):
        refused = _refusal(
            lambda email=email: accounts_a.reset_password(
                email, "AAAA-AAAA", NEW_PASSWORD, NEW_PASSWORD
            )
        )
        assert refused == "code.reset_wrong_or_away"
