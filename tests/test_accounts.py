"""The account rules: sign-up, 48 h activation, codes, login throttling, forgotten password."""

from __future__ import annotations

import unicodedata
from dataclasses import replace
from datetime import timedelta

import pytest
from peewee import SQL

from kiosk import accounts as accounts_module
from kiosk.accounts import LONGEST_DELAY, AccountService, email_key, login_delay
from kiosk.errors import Refused
from kiosk.store.database import open_store
from tests.factories import CANDIDATE, fast_hasher, mailed_code, sent_body

PASSWORD = CANDIDATE.password
NEW_PASSWORD = "poisson volant sur la lune"


def problem_key(refused: pytest.ExceptionInfo[Refused], field: str = "") -> str:
    return refused.value.problems[field].key


def activate(accounts, signed_up):
    account, code = signed_up
    return accounts.activate(account.email, code)


def reset_code(accounts, email: str) -> str:
    return mailed_code(accounts.store, email)


def mailed_body(store, email: str) -> str:
    """The body of the latest mail to ``email``, as sent (see ``mailed_code``)."""
    rows = store.OutboxRow.select().where(store.OutboxRow.kind == "mail").order_by(SQL("rowid"))
    return sent_body(store, [r for r in rows if r.payload["to"] == email][-1])


# -- sign-up ---------------------------------------------------------------------------


def test_sign_up_normalises_the_address_and_stores_a_pending_account(accounts):
    account = accounts.sign_up(replace(CANDIDATE, email="  Jean.Dupont@EXEMPLE.fr "))
    stored = accounts.store.Account.get_by_id(account.id)
    assert stored.email == "Jean.Dupont@exemple.fr"
    assert stored.email_key == "jean.dupont@exemple.fr"
    assert stored.status == "pending"
    assert stored.password_hash.startswith("$argon2id$")
    assert PASSWORD not in stored.password_hash


@pytest.mark.parametrize(
    "first, second",
    [
        ("jean.dupont@exemple.fr", "JEAN.DUPONT@Exemple.FR"),
        (
            unicodedata.normalize("NFC", "jérôme@exemple.fr"),
            unicodedata.normalize("NFD", "JÉRÔME@exemple.fr"),
        ),
        (
            unicodedata.normalize("NFD", "jérôme@exemple.fr"),
            unicodedata.normalize("NFC", "jérôme@exemple.fr"),
        ),
        ("jean@exämple.fr", "JEAN@xn--exmple-cua.fr"),
        ("JEAN@xn--exmple-cua.fr", unicodedata.normalize("NFD", "jean@exämple.fr")),
    ],
)
def test_sign_up_makes_no_second_account_for_the_same_address_written_differently(
    accounts, first, second
):
    # No « Un compte existe déjà »: the same answer, and the owner is told by e-mail.
    accounts.sign_up(replace(CANDIDATE, email=first))
    accounts.sign_up(replace(CANDIDATE, email=second))
    assert accounts.store.Account.select().count() == 1
    OutboxRow = accounts.store.OutboxRow
    subjects = [r.payload["subject"] for r in OutboxRow.select().where(OutboxRow.kind == "mail")]
    assert len(subjects) == 2 and subjects[1].startswith("Votre compte candidat attend")
    assert accounts.store.Account.select().count() == 1


def test_email_key_is_one_key_for_case_unicode_and_idn_variants():
    nfc, nfd = (unicodedata.normalize(form, "Jérôme@Exämple.FR") for form in ("NFC", "NFD"))
    assert (
        email_key(nfc)
        == email_key(nfd)
        == email_key("JÉRÔME@xn--exmple-cua.fr")
        == "jérôme@xn--exmple-cua.fr"
    )
    assert email_key("jean@exemple.fr") != email_key("jean@exemple.com")


@pytest.mark.parametrize(
    "email", ["jean.dupont", "jean@", "@exemple.fr", "jean dupont@exemple.fr", "jean@@exemple.fr"]
)
def test_sign_up_refuses_an_invalid_address(accounts, email):
    with pytest.raises(Refused) as refused:
        accounts.sign_up(replace(CANDIDATE, email=email))
    assert problem_key(refused, "email") == "email.invalid"
    assert accounts.store.Account.select().count() == 0


def test_sign_up_refuses_an_empty_address(accounts):
    with pytest.raises(Refused) as refused:
        accounts.sign_up(replace(CANDIDATE, email="   "))
    assert problem_key(refused, "email") == "email.required"


def test_sign_up_reports_every_field_at_once(accounts):
    form = replace(CANDIDATE, email="nope", family_name=" ", given_names="", password="court")
    with pytest.raises(Refused) as refused:
        accounts.sign_up(form)
    assert {name: p.key for name, p in refused.value.problems.items()} == {
        "email": "email.invalid",
        "family_name": "name.required",
        "given_names": "name.required",
        "password": "password.too_short",
    }


def test_sign_up_refuses_two_different_passwords(accounts):
    with pytest.raises(Refused) as refused:
        accounts.sign_up(replace(CANDIDATE, password_again=PASSWORD + "!"))
    assert problem_key(refused, "password_again") == "password.mismatch"


def test_sign_up_queues_exactly_one_mail_with_the_code(accounts, signed_up):
    OneTimeCode, OutboxRow = accounts.store.OneTimeCode, accounts.store.OutboxRow
    account, code = signed_up
    rows = list(OutboxRow.select().where(OutboxRow.kind == "mail"))
    assert len(rows) == 1
    assert rows[0].kind == "mail"
    assert rows[0].payload["to"] == account.email
    assert code in mailed_body(accounts.store, account.email)
    assert OneTimeCode.select().where(OneTimeCode.account == account).count() == 1


def test_a_duplicate_sign_up_mails_the_owner_no_new_code(accounts, signed_up):
    OneTimeCode, OutboxRow = accounts.store.OneTimeCode, accounts.store.OutboxRow
    account, code = signed_up
    accounts.sign_up(CANDIDATE)  # answered as a new sign-up
    mails = list(OutboxRow.select().where(OutboxRow.kind == "mail").order_by(OutboxRow.created_at))
    assert len(mails) == 2 and "code_id" not in mails[1].payload
    assert "existe déjà et n'est pas encore activé" in mails[1].payload["body"]
    assert OneTimeCode.select().count() == 1
    assert accounts.activate(account.email, code).status == "active"  # the code still works
    accounts.sign_up(CANDIDATE)
    last = OutboxRow.select().where(OutboxRow.kind == "mail").order_by(SQL("rowid").desc()).first()
    body = last.payload["body"]
    assert "est déjà activé" in body and "Mot de passe oublié" in body


def test_no_mail_when_the_account_cannot_be_created(accounts, monkeypatch):
    def broken_create(*args, **kwargs):
        raise RuntimeError("disk full")

    OneTimeCode, OutboxRow = accounts.store.OneTimeCode, accounts.store.OutboxRow
    monkeypatch.setattr(accounts.store.Account, "create", broken_create)
    with pytest.raises(RuntimeError):
        accounts.sign_up(CANDIDATE)
    monkeypatch.undo()
    assert OutboxRow.select().where(OutboxRow.kind == "mail").count() == 0
    assert OneTimeCode.select().count() == 0


def test_no_account_when_its_mail_cannot_be_queued(accounts, monkeypatch):
    def broken_enqueue(*args, **kwargs):
        raise RuntimeError("disk full")

    store = accounts.store
    Account, OneTimeCode, OutboxRow = store.Account, store.OneTimeCode, store.OutboxRow
    monkeypatch.setattr(accounts_module, "enqueue_mail", broken_enqueue)
    with pytest.raises(RuntimeError):
        accounts.sign_up(CANDIDATE)
    assert Account.select().count() == 0
    assert OneTimeCode.select().count() == 0
    assert OutboxRow.select().where(OutboxRow.kind == "mail").count() == 0


# -- activation within 48 h -------------------------------------------------------------


def test_activation_at_47_59_59_works(accounts, signed_up, clock):
    clock.advance(timedelta(hours=47, minutes=59, seconds=59))
    account = activate(accounts, signed_up)
    assert account.status == "active"
    assert accounts.store.Account.get_by_id(account.id).activated_at == clock.now()


def test_activation_at_48_hours_fails_and_the_account_is_gone(accounts, signed_up, clock):
    clock.advance(timedelta(hours=48))
    with pytest.raises(Refused) as refused:
        activate(accounts, signed_up)
    assert problem_key(refused, "code") == "code.wrong_or_expired"
    assert accounts.store.Account.select().count() == 0


def test_the_code_may_be_typed_in_lower_case_and_without_dash(accounts, signed_up):
    account, code = signed_up
    assert accounts.activate(account.email, " " + code.replace("-", " ").lower()).status == "active"


def test_an_active_account_cannot_be_activated_again(accounts, signed_up):
    activate(accounts, signed_up)
    with pytest.raises(Refused) as refused:
        activate(accounts, signed_up)
    assert problem_key(refused, "code") == "code.wrong_or_expired"  # as a wrong code


def test_purge_deletes_at_48_hours_not_before(accounts, signed_up, clock):
    account, _ = signed_up
    clock.advance(timedelta(hours=47, minutes=59, seconds=59))
    assert accounts.purge_unactivated() == 0
    assert accounts.store.Account.get_or_none(accounts.store.Account.id == account.id) is not None
    clock.advance(timedelta(seconds=1))
    assert accounts.purge_unactivated() == 1
    assert accounts.store.Account.get_or_none(accounts.store.Account.id == account.id) is None
    assert accounts.store.OneTimeCode.select().count() == 0


def test_activated_accounts_are_never_purged(accounts, signed_up, clock):
    activate(accounts, signed_up)
    clock.advance(timedelta(days=400))
    assert accounts.purge_unactivated() == 0
    assert accounts.store.Account.select().count() == 1


def test_a_purged_address_can_sign_up_again(accounts, signed_up, clock):
    clock.advance(timedelta(hours=48))
    accounts.purge_unactivated()
    again = accounts.sign_up(CANDIDATE)
    code = mailed_code(accounts.store, again.email)
    assert accounts.activate(again.email, code).status == "active"


def test_an_expired_address_can_sign_up_again_before_any_purge(accounts, signed_up, clock):
    first, _ = signed_up
    clock.advance(timedelta(hours=48))
    again = accounts.sign_up(replace(CANDIDATE, email="JEAN.DUPONT@exemple.fr"))
    assert again.id != first.id
    assert accounts.store.Account.select().count() == 1


# -- code tries -------------------------------------------------------------------------


def test_four_wrong_codes_then_the_right_one_activates(accounts, signed_up):
    account, code = signed_up
    OneTimeCode = accounts.store.OneTimeCode
    for left in (4, 3, 2, 1):
        with pytest.raises(Refused) as refused:
            accounts.activate(account.email, "ZZZZ-ZZZZ")
        assert problem_key(refused, "code") == "code.wrong_or_expired"
        assert OneTimeCode.get(OneTimeCode.account == account.id).tries_left == left
    assert accounts.activate(account.email, code).status == "active"


def test_five_wrong_codes_spend_the_code(accounts, signed_up):
    account, code = signed_up
    keys = []
    for _ in range(5):
        with pytest.raises(Refused) as refused:
            accounts.activate(account.email, "ZZZZ-ZZZZ")
        keys.append(problem_key(refused, "code"))
    assert keys == ["code.wrong_or_expired"] * 5
    with pytest.raises(Refused) as refused:
        accounts.activate(account.email, code)
    assert problem_key(refused, "code") == "code.wrong_or_expired"
    assert accounts.store.Account.get_by_id(account.id).status == "pending"


@pytest.mark.parametrize("typed", ["", "   ", "ABCD-234", "ABCD-23456"])
def test_a_code_left_empty_or_half_typed_costs_no_try_whatever_the_address(
    accounts, signed_up, typed
):
    account, code = signed_up
    OneTimeCode = accounts.store.OneTimeCode
    for email in (account.email, "inconnu@exemple.fr"):
        for _ in range(6):
            with pytest.raises(Refused) as refused:
                accounts.activate(email, typed)
            assert problem_key(refused, "code") == "code.incomplete"
    assert OneTimeCode.get(OneTimeCode.account == account.id).tries_left == 5
    assert accounts.activate(account.email, code).status == "active"
    accounts.request_reset(account.email)
    for _ in range(6):
        with pytest.raises(Refused) as refused:
            accounts.reset_password(account.email, typed, NEW_PASSWORD, NEW_PASSWORD)
        assert problem_key(refused, "code") == "code.incomplete"
    reset = reset_code(accounts, account.email)
    assert accounts.reset_password(account.email, reset, NEW_PASSWORD, NEW_PASSWORD)


def test_a_code_works_once(accounts, signed_up):
    Account = accounts.store.Account
    account, code = signed_up
    accounts.activate(account.email, code)
    Account.update(status="pending").where(Account.id == account.id).execute()
    with pytest.raises(Refused):
        accounts.activate(account.email, code)


# -- resending the activation code ----------------------------------------------------


def test_resend_within_60_seconds_sends_nothing_more_and_after_sends(accounts, signed_up, clock):
    OutboxRow = accounts.store.OutboxRow
    account, _ = signed_up
    clock.advance(timedelta(seconds=59))
    accounts.resend_activation(account.email)  # the same answer, no second mail
    assert OutboxRow.select().where(OutboxRow.kind == "mail").count() == 1
    clock.advance(timedelta(seconds=1))
    accounts.resend_activation(account.email)
    assert OutboxRow.select().where(OutboxRow.kind == "mail").count() == 2


def test_a_burnt_code_is_replaced_at_once(accounts, signed_up, clock):
    account, _ = signed_up
    for _ in range(5):
        with pytest.raises(Refused):
            accounts.activate(account.email, "ZZZZ-ZZZZ")
    accounts.resend_activation(account.email)  # within the minute, but the code is burnt
    fresh = mailed_code(accounts.store, account.email)
    assert accounts.activate(account.email, fresh).status == "active"


def test_a_stranger_cannot_spend_the_owners_codes_for_the_day(accounts, signed_up, clock):
    # No per-address daily cap a stranger could spend: each request mails a new code.
    account, _ = signed_up
    for _ in range(10):
        clock.advance(timedelta(minutes=2))
        accounts.resend_activation(account.email)
        for _ in range(5):
            with pytest.raises(Refused):
                accounts.activate(account.email, "ZZZZ-ZZZZ")
        clock.advance(timedelta(minutes=20))  # the kiosk's cap is the stranger's limit
    clock.advance(timedelta(minutes=2))
    accounts.resend_activation(account.email)
    code = mailed_code(accounts.store, account.email)
    assert accounts.activate(account.email, code).status == "active"


def test_only_the_latest_code_is_valid(accounts, signed_up, clock):
    account, first = signed_up
    clock.advance(timedelta(minutes=1))
    accounts.resend_activation(account.email)
    latest = mailed_code(accounts.store, account.email)
    assert latest != first
    with pytest.raises(Refused) as refused:
        accounts.activate(account.email, first)
    assert problem_key(refused, "code") == "code.wrong_or_expired"
    assert accounts.activate(account.email, latest).status == "active"


def test_an_earlier_code_stays_dead_when_the_latest_is_spent(accounts, signed_up, clock):
    account, first = signed_up
    clock.advance(timedelta(minutes=1))
    accounts.resend_activation(account.email)
    for _ in range(5):
        with pytest.raises(Refused):
            accounts.activate(account.email, "ZZZZ-ZZZZ")
    with pytest.raises(Refused) as refused:
        accounts.activate(account.email, first)
    assert problem_key(refused, "code") == "code.wrong_or_expired"


def test_a_resent_code_keeps_the_48_hour_deadline(accounts, signed_up, clock):
    account, _ = signed_up
    clock.advance(timedelta(hours=47))
    accounts.resend_activation(account.email)
    code = mailed_code(accounts.store, account.email)
    clock.advance(timedelta(hours=1))
    with pytest.raises(Refused):
        accounts.activate(account.email, code)
    assert accounts.store.Account.select().count() == 0


def test_resend_for_an_unknown_address_sends_nothing_and_says_the_same(accounts):
    OutboxRow = accounts.store.OutboxRow
    assert accounts.resend_activation("personne@exemple.fr") is None
    assert OutboxRow.select().where(OutboxRow.kind == "mail").count() == 0


# -- login ------------------------------------------------------------------------------


@pytest.fixture
def active(accounts, signed_up):
    return activate(accounts, signed_up)


def fail_login(accounts, email=CANDIDATE.email, password="pas le bon mot de passe") -> str:
    with pytest.raises(Refused) as refused:
        accounts.log_in(email, password)
    return problem_key(refused)


def test_login_with_the_right_password(accounts, active):
    assert accounts.log_in("JEAN.DUPONT@exemple.fr", PASSWORD).id == active.id


def test_unknown_address_and_wrong_password_look_the_same(accounts, active):
    assert fail_login(accounts, email="inconnu@exemple.fr") == "login.wrong"
    assert fail_login(accounts) == "login.wrong"
    assert fail_login(accounts, email="pas une adresse") == "login.wrong"


def test_four_failures_cost_no_delay_the_fifth_locks(accounts, active):
    for _ in range(4):
        assert fail_login(accounts) == "login.wrong"
        assert accounts.store.Account.get_by_id(active.id).locked_until is None
    accounts.log_in(CANDIDATE.email, PASSWORD)  # still free, and resets the count

    for _ in range(4):
        fail_login(accounts)
    assert fail_login(accounts) == "login.wrong"
    # Locked: the right password too is answered as a wrong one; the owner is told by mail.
    assert fail_login(accounts, password=PASSWORD) == "login.wrong"
    OutboxRow = accounts.store.OutboxRow
    last = OutboxRow.select().where(OutboxRow.kind == "mail").order_by(SQL("rowid").desc()).first()
    assert last.payload["subject"].startswith("Essais de connexion infructueux")
    assert "30 s" in last.payload["body"]


def test_lock_grows_and_ends_when_the_clock_passes_it(accounts, active, clock):
    Account = accounts.store.Account
    for _ in range(5):
        fail_login(accounts)
    locked_until = Account.get_by_id(active.id).locked_until
    assert locked_until - clock.now() == timedelta(seconds=30)
    clock.advance(timedelta(seconds=29))
    assert fail_login(accounts, password=PASSWORD) == "login.wrong"  # locked, said alike
    clock.advance(timedelta(seconds=1))
    assert fail_login(accounts) == "login.wrong"  # sixth failure
    assert Account.get_by_id(active.id).locked_until - clock.now() == timedelta(seconds=60)
    clock.advance(timedelta(seconds=60))
    assert accounts.log_in(CANDIDATE.email, PASSWORD).failed_logins == 0
    assert Account.get_by_id(active.id).locked_until is None


def test_login_delay_grows_and_is_capped_at_15_minutes():
    assert [login_delay(n) for n in range(0, 5)] == [timedelta(0)] * 5
    assert [login_delay(n).total_seconds() for n in range(5, 11)] == [30, 60, 120, 240, 480, 900]
    delays = [login_delay(n) for n in range(0, 2000)]
    assert delays == sorted(delays)
    assert max(delays) == LONGEST_DELAY == timedelta(minutes=15)


def test_a_long_series_of_failures_stays_a_refusal(accounts, active, clock):
    Account = accounts.store.Account
    Account.update(failed_logins=500).where(Account.id == active.id).execute()
    assert fail_login(accounts) == "login.wrong"
    assert Account.get_by_id(active.id).locked_until - clock.now() == LONGEST_DELAY


def test_the_lock_survives_reopening_the_store(
    accounts, active, kiosk_store, clock, session, tmp_path
):
    for _ in range(5):
        fail_login(accounts)
    kiosk_store.close()
    reopened = open_store(tmp_path / "kiosk.sqlite3")
    try:
        service = AccountService(reopened, clock, session, hasher=fast_hasher())
        with pytest.raises(Refused) as refused:
            service.log_in(CANDIDATE.email, PASSWORD)
        assert problem_key(refused) == "login.wrong"  # locked, said alike
        clock.advance(timedelta(seconds=30))
        assert service.log_in(CANDIDATE.email, PASSWORD).id == active.id
    finally:
        reopened.close()


def test_kiosk_wide_cap_after_30_failures_in_15_minutes(accounts, active, clock):
    for n in range(30):
        assert fail_login(accounts, email=f"inconnu{n}@exemple.fr") == "login.wrong"
    assert fail_login(accounts, password=PASSWORD) == "login.kiosk_locked"
    clock.advance(timedelta(minutes=14, seconds=59))
    assert fail_login(accounts, password=PASSWORD) == "login.kiosk_locked"
    clock.advance(timedelta(seconds=1))
    assert accounts.log_in(CANDIDATE.email, PASSWORD).id == active.id


def test_29_failures_do_not_lock_the_kiosk(accounts, active, clock):
    for n in range(29):
        fail_login(accounts, email=f"inconnu{n}@exemple.fr")
    assert accounts.log_in(CANDIDATE.email, PASSWORD).id == active.id


def test_failures_older_than_15_minutes_do_not_count(accounts, active, clock):
    for n in range(29):
        fail_login(accounts, email=f"inconnu{n}@exemple.fr")
    clock.advance(timedelta(minutes=15))
    fail_login(accounts, email="encore@exemple.fr")
    assert accounts.log_in(CANDIDATE.email, PASSWORD).id == active.id


def test_a_pending_account_cannot_log_in(accounts, signed_up):
    assert fail_login(accounts, password=PASSWORD) == "login.pending"
    assert fail_login(accounts) == "login.wrong"


def test_login_rehashes_when_the_argon2_parameters_change(
    accounts, active, kiosk_store, clock, session
):
    before = kiosk_store.Account.get_by_id(active.id)
    stronger = AccountService(
        kiosk_store, clock, session, hasher=fast_hasher(time_cost=2, memory_cost=16)
    )
    stronger.log_in(CANDIDATE.email, PASSWORD)
    after = kiosk_store.Account.get_by_id(active.id)
    assert after.password_hash != before.password_hash
    assert "m=16,t=2,p=1" in after.password_hash
    assert after.version == before.version + 1
    assert stronger.log_in(CANDIDATE.email, PASSWORD).password_hash == after.password_hash
    assert accounts.log_in(CANDIDATE.email, PASSWORD).id == active.id


def test_login_does_not_rehash_when_the_parameters_are_the_same(accounts, active):
    before = accounts.store.Account.get_by_id(active.id).password_hash
    accounts.log_in(CANDIDATE.email, PASSWORD)
    assert accounts.store.Account.get_by_id(active.id).password_hash == before


# -- forgotten password -----------------------------------------------------------------


def test_reset_request_for_an_unknown_address_sends_nothing(accounts, active):
    OutboxRow = accounts.store.OutboxRow
    outbox = OutboxRow.select().where(OutboxRow.kind == "mail").count()
    assert accounts.request_reset("inconnu@exemple.fr") is True  # the same answer
    assert OutboxRow.select().where(OutboxRow.kind == "mail").count() == outbox


def test_reset_request_for_a_pending_account_sends_no_code(accounts, signed_up):
    OutboxRow, OneTimeCode = accounts.store.OutboxRow, accounts.store.OneTimeCode
    accounts.request_reset(CANDIDATE.email)
    mails = list(OutboxRow.select().where(OutboxRow.kind == "mail").order_by(SQL("rowid")))
    assert len(mails) == 2 and "code_id" not in mails[1].payload  # how to activate, by mail
    assert "pas encore activé" in mails[1].payload["body"]
    assert OneTimeCode.select().where(OneTimeCode.purpose == "reset").count() == 0


def test_reset_request_for_an_active_account_sends_a_code(accounts, active):
    OneTimeCode, OutboxRow = accounts.store.OneTimeCode, accounts.store.OutboxRow
    accounts.request_reset("Jean.Dupont@exemple.fr")
    reset_mails = [
        r.payload
        for r in OutboxRow.select().where(OutboxRow.kind == "mail")
        if "réinitialisation" in r.payload["subject"]
    ]
    assert [p["to"] for p in reset_mails] == [CANDIDATE.email]
    code = reset_code(accounts, CANDIDATE.email)
    assert code in mailed_body(accounts.store, CANDIDATE.email)
    assert OneTimeCode.select().where(OneTimeCode.purpose == "reset").count() == 1


def test_reset_requests_are_throttled_like_activation_codes(accounts, active, clock):
    OneTimeCode = accounts.store.OneTimeCode
    accounts.request_reset(CANDIDATE.email)
    clock.advance(timedelta(seconds=59))
    accounts.request_reset(CANDIDATE.email)  # the same answer, no second code
    assert OneTimeCode.select().where(OneTimeCode.purpose == "reset").count() == 1
    clock.advance(timedelta(seconds=1))
    accounts.request_reset(CANDIDATE.email)
    assert OneTimeCode.select().where(OneTimeCode.purpose == "reset").count() == 2


def test_reset_with_the_right_code_changes_the_password_and_clears_the_lock(accounts, active):
    for _ in range(5):
        fail_login(accounts)
    accounts.request_reset(CANDIDATE.email)
    code = reset_code(accounts, CANDIDATE.email)
    accounts.reset_password(CANDIDATE.email, code, NEW_PASSWORD, NEW_PASSWORD)
    stored = accounts.store.Account.get_by_id(active.id)
    assert stored.failed_logins == 0 and stored.locked_until is None
    assert fail_login(accounts, password=PASSWORD) == "login.wrong"
    assert accounts.log_in(CANDIDATE.email, NEW_PASSWORD).id == active.id


def test_reset_refuses_a_weak_new_password_and_keeps_the_code(accounts, active):
    accounts.request_reset(CANDIDATE.email)
    code = reset_code(accounts, CANDIDATE.email)
    with pytest.raises(Refused) as refused:
        accounts.reset_password(CANDIDATE.email, code, "jean dupont 2020 !", "jean dupont 2020 !")
    assert problem_key(refused, "password") == "password.personal"
    accounts.reset_password(CANDIDATE.email, code, NEW_PASSWORD, NEW_PASSWORD)


def test_reset_with_a_wrong_code_keeps_the_password(accounts, active):
    accounts.request_reset(CANDIDATE.email)
    with pytest.raises(Refused) as refused:
        accounts.reset_password(CANDIDATE.email, "ZZZZ-ZZZZ", NEW_PASSWORD, NEW_PASSWORD)
    assert problem_key(refused, "code") == "code.wrong_or_expired"
    assert accounts.log_in(CANDIDATE.email, PASSWORD).id == active.id


def test_reset_code_is_valid_for_30_minutes(accounts, active, clock):
    accounts.request_reset(CANDIDATE.email)
    code = reset_code(accounts, CANDIDATE.email)
    clock.advance(timedelta(minutes=29, seconds=59))
    accounts.reset_password(CANDIDATE.email, code, NEW_PASSWORD, NEW_PASSWORD)


def test_reset_code_expires_after_30_minutes(accounts, active, clock):
    accounts.request_reset(CANDIDATE.email)
    code = reset_code(accounts, CANDIDATE.email)
    clock.advance(timedelta(minutes=30))
    with pytest.raises(Refused) as refused:
        accounts.reset_password(CANDIDATE.email, code, NEW_PASSWORD, NEW_PASSWORD)
    assert problem_key(refused, "code") == "code.wrong_or_expired"
    assert accounts.log_in(CANDIDATE.email, PASSWORD).id == active.id


def test_the_activation_code_does_not_reset_the_password(accounts, signed_up):
    account, code = signed_up
    accounts.activate(account.email, code)
    with pytest.raises(Refused):
        accounts.reset_password(account.email, code, NEW_PASSWORD, NEW_PASSWORD)
