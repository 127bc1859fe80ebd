"""The store's triggers: every change meant for the rectorat writes its outbox row, in the
same transaction; local bookkeeping and what came from the rectorat write none."""

from __future__ import annotations

import json

import pytest

from kiosk.accounts import ACTIVATION_DEADLINE, SignUp
from kiosk.errors import Refused
from kiosk.registrations import RegistrationService
from kiosk.sync.client import SyncService, account_data, registration_data
from tests.factories import CANDIDATE, mailed_code, valid_values


def sync_rows(store) -> list[dict]:
    outbox = store.OutboxRow
    return [
        row.payload
        for row in outbox.select().where(outbox.kind == "sync").order_by(outbox.created_at)
    ]


def of(entity: str, rows: list[dict]) -> list[dict]:
    return [row for row in rows if row["entity"] == entity]


def test_a_sign_up_writes_one_sync_row_with_the_account(accounts, signed_up):
    account, _ = signed_up
    rows = sync_rows(accounts.store)
    assert of("account", rows) == [{"entity": "account", "id": str(account.id), "version": 1}]


def test_a_code_is_queued_once_its_mail_has_made_it(accounts):
    account = accounts.sign_up(CANDIDATE)
    assert of("code", sync_rows(accounts.store)) == []  # its hash is of a secret nobody has
    code = mailed_code(accounts.store, account.email)
    (row,) = of("code", sync_rows(accounts.store))
    stored = accounts.store.OneTimeCode.get()
    assert row == {"entity": "code", "id": str(stored.id), "version": 2}
    accounts.activate(account.email, code)
    assert [r["version"] for r in of("code", sync_rows(accounts.store))] == [2, 3]  # spent


def test_activation_raises_the_version_and_writes_a_row(accounts, signed_up):
    account, code = signed_up
    accounts.activate(account.email, code)
    assert [row["version"] for row in of("account", sync_rows(accounts.store))] == [1, 2]


def test_failed_logins_are_local_bookkeeping_and_write_nothing(accounts, signed_up):
    account, code = signed_up
    accounts.activate(account.email, code)
    before = len(sync_rows(accounts.store))
    for _ in range(3):
        with pytest.raises(Refused):
            accounts.log_in(account.email, "pas le bon mot de passe")
    assert len(sync_rows(accounts.store)) == before


def test_a_registration_and_its_changes_are_queued(
    kiosk_store, clock, session, accounts, signed_up
):
    account, code = signed_up
    account = accounts.activate(account.email, code)
    registrations = RegistrationService(kiosk_store, clock, session)
    registration = registrations.save(account, valid_values(session))
    registrations.save(account, valid_values(session, phone="05 49 00 00 00"))
    queued = [
        (row["entity"], row["version"])
        for row in sync_rows(kiosk_store)
        if row["id"] == str(registration.id)
    ]
    assert queued == [("registration", 1), ("registration", 2)]


def test_a_draft_stays_on_the_kiosk(kiosk_store, clock, session, accounts, signed_up):
    account, code = signed_up
    account = accounts.activate(account.email, code)
    before = len(sync_rows(kiosk_store))
    RegistrationService(kiosk_store, clock, session).save_draft(account, {"town": "Niort"})
    assert len(sync_rows(kiosk_store)) == before


def test_what_comes_from_the_rectorat_is_not_sent_back(kiosk_store, clock):
    Account = kiosk_store.Account
    sync = SyncService(kiosk_store, clock, client=None)
    now = clock.now().isoformat()
    sync._guarded(
        lambda: sync._keep_borrowed(
            {
                "account": {
                    "id": "6f1d1d8e-2b7a-4d3c-9a51-0d6f3c1f7b10",
                    "version": 4,
                    "created_at": now,
                    "updated_at": now,
                    "email": "ailleurs@exemple.fr",
                    "email_key": "ailleurs@exemple.fr",
                    "family_name": "Ailleurs",
                    "given_names": "Zoé",
                    "password_hash": "x",
                    "status": "active",
                    "activated_at": now,
                }
            }
        )
    )
    assert Account.get_by_id("6f1d1d8e-2b7a-4d3c-9a51-0d6f3c1f7b10").origin == "rectorat"
    assert sync_rows(kiosk_store) == []
    assert kiosk_store.db.execute_sql("SELECT count(*) FROM sync_guard").fetchone()[0] == 0


def test_the_purge_sends_a_deletion(accounts, signed_up, clock):
    account, _ = signed_up
    clock.advance(ACTIVATION_DEADLINE)
    assert accounts.purge_unactivated() == 1
    assert sync_rows(accounts.store)[-1] == {
        "entity": "account_deletion",
        "id": str(account.id),
        "data": {"reason": "not_activated"},
    }


def test_an_aborted_change_leaves_no_row(accounts, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr("kiosk.accounts.enqueue_mail", broken)
    with pytest.raises(RuntimeError):
        accounts.sign_up(CANDIDATE)
    assert sync_rows(accounts.store) == [] and accounts.store.Account.select().count() == 0


def test_pending_counts_what_waits(kiosk_store, clock, accounts, signed_up):
    # The account, and its code once mailed.
    assert SyncService(kiosk_store, clock, client=None).pending() == 2
    report = SyncService(kiosk_store, clock, client=None).sync_once()
    assert (report.online, report.pending, report.error) == (False, 2, "not configured")


def test_a_push_sends_each_records_latest_state_once(
    kiosk_store, clock, session, accounts, signed_up
):
    """The items the kiosk reads for a push (built by SQLite) are the records as the
    protocol writes them, each record once at its first waiting row, however many rows
    it has; a deletion carries its row's reason."""
    Account, Registration = kiosk_store.Account, kiosk_store.Registration
    AddressChange = kiosk_store.AddressChange
    account, code = signed_up
    account = accounts.activate(account.email, code)
    registrations = RegistrationService(kiosk_store, clock, session)
    registrations.save(account, valid_values(session))
    registration = registrations.save(account, valid_values(session, phone="05 49 00 00 00"))
    other = accounts.sign_up(SignUp(
        email="autre@exemple.fr", family_name="Autre", given_names="Zoé",
        password=CANDIDATE.password, password_again=CANDIDATE.password,
    ))  # fmt: skip
    clock.set(session.closes)  # after the close, a new address is a notice: a record of its own
    change = registrations.report_address_change(
        account, {**valid_values(session), "town": "Niort"}
    )
    # A registration the exam office set aside is sent as registered: the status is the rectorat's.
    Registration.update(status="set_aside").where(Registration.id == registration.id).execute()
    clock.advance(ACTIVATION_DEADLINE)
    accounts.purge_unactivated()

    batch = SyncService(kiosk_store, clock, client=None).waiting()
    account, registration = Account.get_by_id(account.id), Registration.get_by_id(registration.id)
    change = AddressChange.get_by_id(change.id)
    items = [json.loads(item) for item in batch.items]
    (code_item,) = of("code", items)
    code = kiosk_store.OneTimeCode.get_by_id(code_item["id"])
    assert code_item["version"] == code.version and code_item["data"]["spent_at"]
    assert code_item["data"]["code_hash"] == code.code_hash
    assert code.code_hash.startswith("$argon2id$")  # a hash: never the code itself
    assert [item for item in items if item["entity"] != "code"] == [
        {"entity": "account", "id": str(account.id), "version": account.version,
         "data": account_data(account)},
        {"entity": "registration", "id": str(registration.id), "version": 2, "base": 0,
         "data": registration_data(registration)},
        {"entity": "address_change", "id": str(change.id), "version": 1, "data": {
            "created_at": change.created_at.isoformat(timespec="microseconds"),
            "registration_id": str(registration.id), "address": change.address}},
        {"entity": "account_deletion", "id": str(other.id), "version": 1,
         "data": {"reason": "not_activated"}},
    ]  # fmt: skip
    assert registration_data(registration)["status"] == "registered"
    # Every waiting row is settled with its record: the pending account's row has nothing to send.
    assert batch.rows == len(sync_rows(kiosk_store))
    assert sorted(len(rows) for (entity, _), rows in batch.rows_of.items() if entity != "code") == [
        1,
        1,
        2,
        3,
    ]
    assert len(batch.gone) == 1


def test_the_waiting_rows_are_read_in_order_from_an_index_of_rows_not_yet_delivered(
    kiosk_store, clock, accounts, signed_up
):
    # The outbox keeps every row it has delivered: read through an index of all of them
    # and sorted, each batch would cost more as the session goes on.
    statements: list[str] = []
    connection = kiosk_store.db.connection()
    connection.set_trace_callback(statements.append)
    try:
        assert SyncService(kiosk_store, clock, None).waiting().rows == 2  # the account, its code
    finally:
        connection.set_trace_callback(None)
    (read,) = [statement for statement in statements if "FROM outbox" in statement]
    plan = [row[3] for row in kiosk_store.db.execute_sql(f"EXPLAIN QUERY PLAN {read}")]
    assert "SEARCH o USING INDEX outbox_waiting (kind=? AND failed_at=? AND rowid>?)" in plan
    assert not [step for step in plan if "TEMP B-TREE" in step]
