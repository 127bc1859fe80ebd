"""Two kiosk stores open in one process: each service reads and writes its own store only,
through the models bound to it (``store.Account``…), and nothing is ever rebound."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from peewee import SQL

from kiosk.accounts import AccountService
from kiosk.delivery.mail_queue import MailDelivery, pending_count
from kiosk.registrations import RegistrationService
from kiosk.runtime.config import MailConfig
from kiosk.staff import StaffService
from kiosk.store.database import KioskStore, open_store
from kiosk.store.models import (
    MODELS,
    Account,
    AddressChange,
    Document,
    OutboxRow,
    Registration,
)
from kiosk.sync.client import SyncService
from tests.factories import CANDIDATE, fast_hasher, sent_body, valid_values

_CODE = re.compile(r"Votre code .*est : (\w{4}-\w{4})")


def code_in(store: KioskStore, email: str) -> str:
    """The code in the latest mail queued for ``email`` in this store's outbox."""
    outbox = store.OutboxRow
    rows = outbox.select().where(outbox.kind == "mail").order_by(SQL("rowid"))
    mails = [row for row in rows if row.payload["to"] == email]
    assert mails, f"no mail for {email}"
    body = sent_body(store, mails[-1])  # a queued mail holds no code: it is made when sent
    found = _CODE.search(body)
    assert found, body
    return found.group(1)


class Kiosk:
    """One store and the services over it, as ``build_services`` makes them."""

    def __init__(self, store: KioskStore, clock, session) -> None:
        self.store = store
        self.accounts = AccountService(store, clock, session, hasher=fast_hasher())
        self.registrations = RegistrationService(store, clock, session)
        self.staff = StaffService(store, clock, fast_hasher())
        self.sync = SyncService(store, clock, client=None)

    def active_candidate(self, signup=CANDIDATE) -> Account:
        account = self.accounts.sign_up(signup)
        return self.accounts.activate(account.email, code_in(self.store, account.email))


@pytest.fixture
def two(tmp_path, clock, session):
    first = open_store(tmp_path / "a" / "kiosk.sqlite3")
    second = open_store(tmp_path / "b" / "kiosk.sqlite3")
    yield Kiosk(first, clock, session), Kiosk(second, clock, session)
    first.close()
    second.close()


def test_each_store_has_its_own_models_and_the_templates_stay_unbound(two):
    a, b = two
    for template in MODELS:
        name = template.__name__
        mine, theirs = getattr(a.store, name), getattr(b.store, name)
        assert issubclass(mine, template) and mine is not template and mine is not theirs
        assert mine._meta.database is a.store.db and theirs._meta.database is b.store.db
        assert mine._meta.table_name == template._meta.table_name
        assert template._meta.database is None
    assert a.store.models == tuple(getattr(a.store, m.__name__) for m in MODELS)


def test_foreign_keys_point_to_the_same_stores_models(two):
    a, _ = two
    s = a.store
    for model, name, target, backref in (
        (s.OneTimeCode, "account", s.Account, "codes"),
        (s.Registration, "account", s.Account, "registrations"),
        (s.Draft, "account", s.Account, "drafts"),
        (s.AddressChange, "registration", s.Registration, "address_changes"),
        (s.Document, "registration", s.Registration, "documents"),
    ):
        field = model._meta.fields[name]
        template = next(t for t in MODELS if t.__name__ == model.__name__)
        original = template._meta.fields[name]
        assert field.rel_model is target
        assert (field.column_name, field.backref, field.on_delete) == (
            original.column_name,
            original.backref,
            original.on_delete,
        )
        assert getattr(target, backref).rel_model is model
    # The templates keep their own backrefs, pointing to the templates.
    assert Account.registrations.rel_model is Registration


def test_a_candidate_made_in_one_store_is_absent_from_the_other(two, session):
    a, b = two
    account = a.active_candidate()
    registration = a.registrations.save(account, valid_values(session))

    assert isinstance(account, Account) and isinstance(registration, Registration)
    assert a.store.Account.get_or_none(a.store.Account.id == account.id) is not None
    assert b.store.Account.get_or_none(b.store.Account.id == account.id) is None
    assert b.store.Registration.select().count() == 0
    assert b.registrations.registration(account) is None
    assert b.store.OutboxRow.select().count() == 0
    with pytest.raises(Account.DoesNotExist):
        b.store.Account.get_by_id(account.id)

    # The same address signs up in the other store: its own account, its own code.
    other = b.active_candidate()
    assert other.id != account.id
    assert a.store.Account.select().count() == 1 and b.store.Account.select().count() == 1
    assert b.sync.pending() > 0 and a.sync.pending() > 0
    assert b.store.Account.get_by_id(other.id).status == "active"


def test_foreign_keys_are_navigated_within_the_store_both_ways(two, clock, session):
    a, b = two
    account = a.active_candidate()
    registration = a.registrations.save(account, valid_values(session))
    address = {"address_line1": "3 rue des Lilas", "address_line2": "", "postal_code": "79000",
               "town": "Niort", "country": "France", "phone": "05 49 00 00 00"}  # fmt: skip
    clock.set(session.closes)  # after the close, a new address is a record of its own
    change = a.registrations.report_address_change(account, address)
    now = clock.now()
    document = a.store.Document.create(
        registration=registration.id, registration_version=1, file_name="c.pdf", sha256="x",
        size=1, created_at=now, updated_at=now,
    )  # fmt: skip

    stored = a.store.Registration.get_by_id(registration.id)
    assert type(stored.account) is a.store.Account and stored.account.email == account.email
    owner = a.store.Account.get_by_id(account.id)
    assert [r.id for r in owner.registrations] == [registration.id]
    assert [c.id for c in owner.codes.where(a.store.OneTimeCode.purpose == "activation")]
    assert [c.id for c in stored.address_changes] == [change.id]
    assert [d.id for d in stored.documents] == [document.id]
    assert isinstance(stored.documents[0], Document)
    assert isinstance(stored.address_changes[0], AddressChange)
    assert a.store.Document.get_by_id(document.id).registration.account.id == account.id
    joined = (
        a.store.Document.select()
        .join(a.store.Registration)
        .join(a.store.Account)
        .where(a.store.Account.email == account.email)
    )
    assert [d.id for d in joined] == [document.id]

    # The other store's rows navigate within it (saved while the window is open).
    clock.set(session.closes - timedelta(days=1))
    theirs = b.active_candidate()
    b_registration = b.registrations.save(theirs, valid_values(session, phone="07 11 22 33 44"))
    assert b.store.Registration.get_by_id(b_registration.id).account.id == theirs.id
    assert [r.id for r in b.store.Account.get_by_id(theirs.id).registrations] == [b_registration.id]
    assert b.store.Document.select().join(b.store.Registration).count() == 0

    # A cascade deletes in its own store only.
    a.store.Account.delete().where(a.store.Account.id == account.id).execute()
    assert a.store.Registration.select().count() == 0 and a.store.Document.select().count() == 0
    assert b.store.Registration.select().count() == 1


def test_staff_mail_and_sync_keep_to_their_store(two, tmp_path, clock):
    a, b = two
    a.staff.add("accueil", "reception", "guichet du hall nord 2019")
    assert a.staff.names() == [("accueil", "reception")] and b.staff.names() == []
    assert b.store.StaffAccount.select().count() == 0

    a.active_candidate()
    assert pending_count(a.store, "mail") == 1 and pending_count(b.store, "mail") == 0
    sent = MailDelivery(b.store, MailConfig(), tmp_path / "maildir-b", clock).deliver_due()
    assert sent.sent == 0 and pending_count(a.store, "mail") == 1
    sent = MailDelivery(a.store, MailConfig(), tmp_path / "maildir-a", clock).deliver_due()
    assert sent.sent == 1 and pending_count(a.store, "mail") == 0
    delivered = a.store.OutboxRow.get(a.store.OutboxRow.kind == "mail")
    assert isinstance(delivered, OutboxRow) and delivered.delivered_at == clock.now()

    # Sync keeps its state in its own store.
    a.sync._set_state("cursor", "42")
    assert a.sync._state("cursor") == "42" and b.sync._state("cursor", "0") == "0"


def test_transactions_are_per_store(two, session):
    a, b = two
    account = a.active_candidate()
    with pytest.raises(RuntimeError), a.store.atomic():
        a.registrations.save(account, valid_values(session))
        b.active_candidate()  # committed in B whatever happens in A
        raise RuntimeError("A's transaction is rolled back")
    assert a.store.Registration.select().count() == 0
    assert b.store.Account.select().count() == 1
