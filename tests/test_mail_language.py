"""Mail in the candidate's language: chosen at sign-up, kept on the account, and every mail
to that account (codes, warnings, registration, documents) written in it."""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import replace

import pytest
from peewee import SQL

from kiosk.accounts import FREE_FAILURES
from kiosk.documents import DocumentService
from kiosk.errors import Refused
from kiosk.exam_sessions import Contact
from kiosk.i18n import Messages
from kiosk.registrations import RegistrationService
from kiosk.store.database import open_store
from kiosk.sync.client import SyncService
from tests.factories import CANDIDATE, PASSWORD, sent_body, valid_values

ENGLISH = replace(CANDIDATE, language="en")
_ENGLISH_CODE = re.compile(r"Your (?:activation )?code is: (\w{4}-\w{4})")
CONTACT = Contact(
    name="Rectorat de l'académie de Poitiers",
    bureau="Bureau des examens professionnels (DEC)",
    address=("22 rue Guillaume VII le Troubadour", "86022 Poitiers"),
    email="examens@exemple.fr",
    phone="05 00 00 00 00",
)


def mails_to(store, to: str) -> list[dict]:
    outbox = store.OutboxRow
    rows = outbox.select().where(outbox.kind == "mail").order_by(SQL("rowid"))
    return [
        row.payload | {"body": sent_body(store, row)} for row in rows if row.payload["to"] == to
    ]


def english_code(store, to: str) -> str:
    found = _ENGLISH_CODE.search(mails_to(store, to)[-1]["body"])
    assert found, mails_to(store, to)[-1]["body"]
    return found.group(1)


@pytest.fixture
def english(accounts):
    """An English-speaking candidate's active account."""
    account = accounts.sign_up(ENGLISH)
    return accounts.activate(account.email, english_code(accounts.store, account.email))


# -- chosen at sign-up, kept on the account ----------------------------------------------------


@pytest.mark.parametrize("chosen, kept", [("en", "en"), ("fr", "fr"), ("de", "fr"), ("", "fr")])
def test_the_language_chosen_at_sign_up_is_kept_on_the_account(accounts, chosen, kept):
    account = accounts.sign_up(replace(CANDIDATE, language=chosen))
    assert accounts.store.Account.get_by_id(account.id).language == kept


def test_without_a_choice_the_account_is_french(accounts):
    account = accounts.sign_up(CANDIDATE)
    assert accounts.store.Account.get_by_id(account.id).language == "fr"


def test_an_account_made_before_the_language_was_asked_for_is_french(tmp_path):
    path = tmp_path / "kiosk.sqlite3"
    open_store(path).close()
    raw = sqlite3.connect(path)
    try:
        raw.execute(
            "INSERT INTO account (id, version, created_at, updated_at, email, email_key,"
            " family_name, given_names, password_hash, status, failed_logins)"
            " VALUES ('a', 1, 't', 't', 'x@exemple.fr', 'x@exemple.fr', 'X', 'Y', '', 'active', 0)"
        )
        raw.commit()
        assert raw.execute("SELECT language FROM account").fetchone() == ("fr",)
        with pytest.raises(sqlite3.IntegrityError):
            raw.execute("UPDATE account SET language = 'de'")
    finally:
        raw.close()


def test_the_language_travels_with_the_account_to_the_rectorat(kiosk_store, clock, english):
    items = [
        json.loads(item) for item in SyncService(kiosk_store, clock, client=None).waiting().items
    ]
    [account] = [item for item in items if item["entity"] == "account"]
    assert account["data"]["language"] == "en"


# -- every mail to the account in its language -------------------------------------------------


def test_the_activation_mail_is_in_english(accounts, session):
    account = accounts.sign_up(ENGLISH)
    [mail] = mails_to(accounts.store, account.email)
    assert mail["subject"] == f"Activate your candidate account – {session.title}"
    assert "Dear Jean Dupont," in mail["body"]
    assert "before Tuesday 12 November 2019 at 10:00" in mail["body"]
    assert "Bonjour" not in mail["body"]
    assert re.fullmatch(r"\w{4}-\w{4}", english_code(accounts.store, account.email))


def test_a_second_sign_up_tells_the_owner_in_the_owners_language(accounts, english):
    # Someone signs up again with the address, at a kiosk in French: the owner reads English.
    accounts.sign_up(replace(CANDIDATE, language="fr"))
    mail = mails_to(accounts.store, english.email)[-1]
    assert mail["subject"].startswith("Your candidate account is already activated")


def test_the_reset_and_locked_mails_are_in_english(accounts, english):
    accounts.request_reset(english.email)
    assert mails_to(accounts.store, english.email)[-1]["subject"].startswith(
        "Code to reset your password"
    )
    for _ in range(FREE_FAILURES + 1):
        with pytest.raises(Refused):
            accounts.log_in(english.email, PASSWORD + "?")
    assert mails_to(accounts.store, english.email)[-1]["subject"].startswith(
        "Failed login attempts"
    )


def test_the_registration_mails_are_in_english_with_the_sessions_facts(
    kiosk_store, clock, session, english
):
    service = RegistrationService(kiosk_store, clock, replace(session, contact=CONTACT))
    service.save(english, valid_values(session))
    service.save(english, valid_values(session, phone="07 11 22 33 44"))
    service.withdraw(english)
    registered, changed, withdrawn = mails_to(kiosk_store, english.email)[1:]
    assert registered["subject"] == f"Confirmation of registration: {session.title}"
    assert changed["subject"] == f"Change of registration: {session.title}"
    assert withdrawn["subject"] == f"Cancellation of registration: {session.title}"
    assert "saved on Sunday 10 November 2019 at 10:00" in registered["body"]
    assert "Post it, with the supporting documents, to:" in registered["body"]
    en = Messages("en")
    assert en("pieces.jdc.title") in registered["body"]
    for mail in (registered, changed, withdrawn):
        assert mail["body"].startswith("Dear Jean Dupont,")
        assert (
            mail["body"]
            .rstrip()
            .endswith(
                "Bureau des examens professionnels (DEC)\n"
                "E-mail: examens@exemple.fr\nTelephone: 05 00 00 00 00"
            )
        )
        assert "Bonjour" not in mail["body"] and "Téléphone" not in mail["body"]


def test_a_french_candidates_registration_mail_stays_french(
    kiosk_store, clock, session, accounts, signed_up
):
    account, code = signed_up
    account = accounts.activate(account.email, code)
    RegistrationService(kiosk_store, clock, session).save(account, valid_values(session))
    mail = mails_to(kiosk_store, account.email)[-1]
    assert mail["subject"] == f"Confirmation d'inscription : {session.title}"
    assert mail["body"].startswith("Bonjour Jean Dupont,")


def test_the_documents_mail_is_in_english(kiosk_store, clock, session, english, tmp_path):
    RegistrationService(kiosk_store, clock, session).save(english, valid_values(session))
    documents = DocumentService(kiosk_store, clock, session, tmp_path / "documents", lambda: None)
    [view] = documents.documents(english)
    documents.email(english, view.id)
    mail = mails_to(kiosk_store, english.email)[-1]
    assert mail["subject"] == f"Your confirmation of registration: {session.title}"
    assert mail["body"].startswith("Dear Jean Dupont,")
    assert mail["attachments"][0]["filename"].endswith("-v1.pdf")
