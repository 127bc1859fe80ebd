"""« M'inscrire »: the window, versions and their mails, drafts, withdrawal, address changes,
standing."""

from __future__ import annotations

import re
import uuid
from dataclasses import replace
from datetime import date

import pytest
from peewee import SQL, IntegrityError

from kiosk.clock import parse_instant
from kiosk.errors import Refused
from kiosk.i18n import french
from kiosk.pieces import required_pieces
from kiosk.registration_form import LOCKED_FIELDS
from kiosk.registrations import RegistrationService
from kiosk.store.database import open_store
from kiosk.store.models import Account, Registration
from tests.factories import CANDIDATE, mailed_code, valid_values

OTHER = replace(
    CANDIDATE, email="claire.martin@exemple.fr", family_name="Martin", given_names="Claire"
)
NEW_ADDRESS = {
    "address_line1": "3 quai Duperré",
    "address_line2": "Appartement 12",
    "postal_code": "17000",
    "town": "La Rochelle",
    "country": "France",
    "phone": "05 46 00 00 00",
}
RECTORAT_EMAIL = "examens@exemple.fr"
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def at(text: str):
    return parse_instant(text)  # Europe/Paris


def after_close(clock):
    clock.set(at("2019-11-27T19:00:00"))


def key(refused: pytest.ExceptionInfo[Refused], field: str = "") -> str:
    return refused.value.problems[field].key


def mails(store, to: str) -> list[dict]:
    outbox = store.OutboxRow
    return [
        row.payload
        for row in outbox.select().where(outbox.kind == "mail").order_by(SQL("rowid"))
        if row.payload["to"] == to
    ]


def registration_mails(store, to: str) -> list[dict]:
    """The mails of this module's service: not the activation code mail."""
    return [m for m in mails(store, to) if not m["subject"].startswith("Activez")]


@pytest.fixture
def active(accounts, signed_up) -> Account:
    """CANDIDATE's account, activated."""
    account, code = signed_up
    return accounts.activate(account.email, code)


@pytest.fixture
def other(accounts) -> Account:
    """Another candidate's active account."""
    account = accounts.sign_up(OTHER)
    return accounts.activate(account.email, mailed_code(accounts.store, account.email))


@pytest.fixture
def service(kiosk_store, clock, session) -> RegistrationService:
    return RegistrationService(kiosk_store, clock, session)


@pytest.fixture
def registered(service, active) -> Registration:
    return service.save(active, valid_values(service.session))


# -- the window ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "local, refusal",
    [
        ("2019-11-04T08:59:59", "registration.not_yet_open"),
        ("2019-11-27T19:00:00", "registration.closed"),
    ],
)
def test_save_is_refused_outside_the_window(service, active, clock, local, refusal):
    clock.set(at(local))
    with pytest.raises(Refused) as refused:
        service.save(active, valid_values(service.session))
    assert key(refused) == refusal
    assert service.store.Registration.select().count() == 0
    assert registration_mails(service.store, active.email) == []


@pytest.mark.parametrize("local", ["2019-11-04T09:00:00", "2019-11-27T18:59:59"])
def test_save_is_accepted_on_the_edges_of_the_window(service, active, clock, local):
    clock.set(at(local))
    registration = service.save(active, valid_values(service.session))
    assert registration.version == 1
    assert registration.saved_at == at(local)


def test_a_change_is_refused_after_the_window_closes(service, active, registered, clock):
    after_close(clock)
    with pytest.raises(Refused) as refused:
        service.save(active, valid_values(service.session, phone="07 00 00 00 00"))
    assert key(refused) == "registration.closed"
    assert service.store.Registration.get_by_id(registered.id).version == 1


# -- saving and versions ----------------------------------------------------------------


def test_the_first_save_registers_version_1_and_mails_the_confirmation(service, active, session):
    registration = service.save(active, valid_values(session))
    stored = service.store.Registration.get_by_id(registration.id)
    assert (stored.version, stored.status, stored.session_id) == (1, "registered", session.id)
    assert stored.answers["birth_date"] == "2002-03-05"
    sent = registration_mails(service.store, active.email)
    assert len(sent) == 1
    assert sent[0]["subject"] == f"Confirmation d'inscription : {session.title}"
    expected = required_pieces(stored.answers, session)
    assert "jdc" in expected
    for piece in expected:
        assert french(f"pieces.{piece}.title") in sent[0]["body"]
    assert french("pieces.recensement.title") not in sent[0]["body"]
    assert stored.reference in sent[0]["body"]


def test_a_saved_change_is_version_2_with_its_mail(service, active, registered, session):
    changed = service.save(active, valid_values(session, phone="07 11 22 33 44"))
    assert changed.id == registered.id
    stored = service.store.Registration.get_by_id(registered.id)
    assert stored.version == 2
    assert stored.answers["phone"] == "07 11 22 33 44"
    sent = registration_mails(service.store, active.email)
    assert len(sent) == 2
    assert sent[-1]["subject"] == f"Modification d'inscription : {session.title}"
    assert "version 2" in sent[-1]["body"]


def test_saving_unchanged_answers_is_refused_without_a_new_version(
    service, active, registered, session
):
    with pytest.raises(Refused) as refused:
        # Typed differently, the same once checked.
        service.save(
            active, valid_values(session, phone=" 06 12 34  56 78 ", birth_date="2002-03-05")
        )
    assert key(refused) == "registration.unchanged"
    assert service.store.Registration.get_by_id(registered.id).version == 1
    assert len(registration_mails(service.store, active.email)) == 1


def test_an_invalid_form_is_refused_at_its_fields_and_registers_nothing(service, active, session):
    with pytest.raises(Refused) as refused:
        service.save(active, valid_values(session, postal_code="860", accept_rules=False))
    assert key(refused, "postal_code") == "form.postal_code.invalid"
    assert key(refused, "accept_rules") == "form.accept_rules.required"
    assert service.store.Registration.select().count() == 0
    assert registration_mails(service.store, active.email) == []


def test_one_registration_per_candidate_and_session(service, active, registered, session, clock):
    service.save(active, valid_values(session, phone="07 11 22 33 44"))
    assert service.store.Registration.select().count() == 1
    now = clock.now()
    with pytest.raises(IntegrityError):
        service.store.Registration.create(
            account=active.id,
            session_id=session.id,
            answers={},
            status="registered",
            saved_at=now,
            created_at=now,
            updated_at=now,
        )


def test_each_candidate_has_their_own_registration(service, active, other, registered, session):
    service.save(other, valid_values(session, family_name="Martin", given_names="Claire"))
    assert service.store.Registration.select().count() == 2
    assert service.registration(other).answers["family_name"] == "Martin"
    assert service.registration(active).id == registered.id


def test_locked_fields_are_empty_before_the_first_save(service, active):
    assert service.locked_fields(active) == ()
    service.save(active, valid_values(service.session))
    assert set(service.locked_fields(active)) == set(LOCKED_FIELDS)


def test_locked_fields_keep_their_saved_value_whatever_the_form_sends(
    service, active, registered, session
):
    forged = {
        "family_name": "Autre",
        "given_names": "Paul",
        "birth_date": "01/01/1990",
        "birth_town": "Lyon",
        "birth_country": "Belgique",
    }
    assert set(forged) == set(LOCKED_FIELDS)
    service.save(active, valid_values(session, phone="07 11 22 33 44", **forged))
    answers = service.store.Registration.get_by_id(registered.id).answers
    assert answers["family_name"] == "Dupont" and answers["given_names"] == "Jean"
    assert answers["birth_date"] == "2002-03-05"
    assert answers["birth_town"] == "Poitiers" and answers["birth_country"] == "France"
    assert answers["phone"] == "07 11 22 33 44"
    # The draft cannot bring them back either.
    service.save_draft(active, valid_values(session, **forged))
    values = service.form_values(active)
    assert {name: values[name] for name in LOCKED_FIELDS} == {
        name: answers[name] for name in LOCKED_FIELDS
    }


def test_changing_only_locked_fields_changes_nothing(service, active, registered, session):
    with pytest.raises(Refused) as refused:
        service.save(active, valid_values(session, family_name="Autre"))
    assert key(refused) == "registration.unchanged"
    assert service.store.Registration.get_by_id(registered.id).version == 1


# Stored values that break a rule of the form, on fields the candidate cannot edit: as the
# exam office or an older version of the kiosk may have left them.
BAD_LOCKED = {
    "family_name": "Dupont" + "-Martin" * 20,  # 146 characters, the field allows 100
    "birth_date": "2002-02-30",  # no such day
    "birth_town": "Poitiers\x1b[31m",  # a control character
}


def stored_badly(service, registration, **answers) -> None:
    Registration = service.store.Registration
    stored = Registration.get_by_id(registration.id)
    Registration.update(answers={**stored.answers, **answers}).where(
        Registration.id == registration.id
    ).execute()


@pytest.mark.parametrize("name", sorted(BAD_LOCKED))
def test_a_bad_stored_value_on_a_locked_field_never_blocks_a_save(
    service, active, registered, session, name
):
    stored_badly(service, registered, **{name: BAD_LOCKED[name]})
    # It is shown as it is stored…
    assert service.form_values(active)[name] == BAD_LOCKED[name]
    # …a change elsewhere saves, whatever the form sends for the locked field…
    saved = service.save(
        active, valid_values(session, phone="07 11 22 33 44", **{name: "ce que dit l'écran"})
    )
    assert saved.version == 2
    answers = service.store.Registration.get_by_id(registered.id).answers
    assert answers["phone"] == "07 11 22 33 44"
    # …and the stored value is kept as it is, for the exam office to correct.
    assert answers[name] == BAD_LOCKED[name]
    # Later saves are not blocked either.
    assert service.save(active, valid_values(session, phone="07 22 33 44 55")).version == 3


def test_bad_stored_values_on_every_locked_field_at_once_do_not_block(
    service, active, registered, session
):
    stored_badly(service, registered, **BAD_LOCKED)
    service.save(active, valid_values(session, town="Niort", postal_code="79000"))
    answers = service.store.Registration.get_by_id(registered.id).answers
    assert {name: answers[name] for name in BAD_LOCKED} == BAD_LOCKED
    assert answers["town"] == "Niort"


def test_a_field_the_candidate_can_edit_is_still_checked_beside_a_bad_locked_one(
    service, active, registered, session
):
    stored_badly(service, registered, family_name=BAD_LOCKED["family_name"])
    with pytest.raises(Refused) as refused:
        service.save(active, valid_values(session, usage_name="M" * 101))
    assert set(refused.value.problems) == {"usage_name"}
    assert key(refused, "usage_name") == "form.too_long"


def test_before_the_first_save_nothing_is_locked_and_every_rule_applies(service, active, session):
    with pytest.raises(Refused) as refused:
        service.save(active, valid_values(session, family_name=BAD_LOCKED["family_name"]))
    assert key(refused, "family_name") == "form.too_long"


def test_the_first_save_copies_the_names_onto_the_account(service, active, session):
    service.save(
        active, valid_values(session, family_name="Dupont-Martin", given_names="Jean Pierre")
    )
    stored = service.store.Account.get_by_id(active.id)
    assert (stored.family_name, stored.given_names) == ("Dupont-Martin", "Jean Pierre")


def test_the_outbox_row_is_written_in_the_same_transaction(service, active, session, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr("kiosk.registrations.enqueue_mail", broken)
    with pytest.raises(RuntimeError):
        service.save(active, valid_values(session, family_name="Dupont-Martin"))
    assert service.store.Registration.select().count() == 0
    assert service.store.Account.get_by_id(active.id).family_name == "Dupont"


def test_a_change_whose_mail_fails_keeps_the_saved_version(
    service, active, registered, session, monkeypatch
):
    service.save_draft(active, valid_values(session, phone="07 11 22 33 44"))
    monkeypatch.setattr("kiosk.registrations.enqueue_mail", lambda *a, **k: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        service.save(active, valid_values(session, phone="07 11 22 33 44"))
    stored = service.store.Registration.get_by_id(registered.id)
    assert stored.version == 1 and stored.answers["phone"] == "06 12 34 56 78"
    assert service.draft(active) is not None


# -- drafts ------------------------------------------------------------------------------


def test_a_draft_survives_closing_and_reopening_the_store(
    service, active, kiosk_store, tmp_path, clock, session
):
    service.save_draft(active, {"birth_town": "Niort", "accept_rules": True})
    kiosk_store.close()
    reopened = open_store(tmp_path / "kiosk.sqlite3")
    try:
        values = RegistrationService(reopened, clock, session).form_values(active)
        assert values["birth_town"] == "Niort" and values["accept_rules"] is True
        assert reopened.Registration.select().count() == 0
    finally:
        reopened.close()


def test_a_draft_keeps_what_was_typed_even_when_invalid(service, active):
    service.save_draft(active, {"birth_date": "31/02/2002", "postal_code": "8"})
    service.save_draft(active, {"birth_date": "31/02/2002", "postal_code": "86"})
    assert service.store.Draft.select().count() == 1
    values = service.form_values(active)
    assert values["birth_date"] == "31/02/2002" and values["postal_code"] == "86"


def test_a_draft_belongs_to_its_account(service, active, other):
    service.save_draft(active, {"birth_town": "Niort", "phone": "06 99 99 99 99"})
    values = service.form_values(other)
    assert values["birth_town"] == "" and values["phone"] == ""
    assert values["family_name"] == "Martin"
    assert service.draft(other) is None
    assert service.standing(other).state == "none"


def test_a_draft_is_not_a_registration_and_is_deleted_by_a_save(service, active, session):
    service.save_draft(active, valid_values(session))
    assert service.registration(active) is None
    assert service.standing(active).state == "draft"
    service.save(active, service.form_values(active))
    assert service.draft(active) is None
    assert service.store.Draft.select().count() == 0


def test_form_values_prefer_the_draft_to_the_saved_answers(service, active, registered, session):
    assert service.form_values(active)["phone"] == "06 12 34 56 78"
    service.save_draft(active, valid_values(session, phone="07 11 22 33 44"))
    assert service.form_values(active)["phone"] == "07 11 22 33 44"


def test_a_new_form_opens_with_the_account_names(service, active):
    values = service.form_values(active)
    assert (values["family_name"], values["given_names"]) == ("Dupont", "Jean")
    assert values["accept_rules"] is False


# -- withdrawal ----------------------------------------------------------------------------


def test_withdrawal_before_close(service, active, registered, session):
    withdrawn = service.withdraw(active)
    stored = service.store.Registration.get_by_id(registered.id)
    assert (stored.status, stored.version) == ("withdrawn", 2)
    assert stored.withdrawn_at is not None
    assert withdrawn.version == 2
    sent = registration_mails(service.store, active.email)
    assert len(sent) == 2
    assert sent[-1]["subject"] == f"Annulation d'inscription : {session.title}"
    standing = service.standing(active)
    assert (standing.state, standing.pieces) == ("withdrawn", ())


def test_withdrawal_after_close_is_refused(service, active, registered, clock):
    after_close(clock)
    with pytest.raises(Refused) as refused:
        service.withdraw(active)
    assert key(refused) == "registration.closed"
    assert service.store.Registration.get_by_id(registered.id).status == "registered"


def test_nothing_to_withdraw(service, active, registered):
    service.withdraw(active)
    with pytest.raises(Refused) as refused:
        service.withdraw(active)
    assert key(refused) == "registration.nothing_to_withdraw"
    assert service.store.Registration.get_by_id(registered.id).version == 2


def test_withdrawal_without_registration_is_refused(service, active):
    with pytest.raises(Refused) as refused:
        service.withdraw(active)
    assert key(refused) == "registration.nothing_to_withdraw"


def test_saving_again_after_a_withdrawal_registers_again(service, active, registered, session):
    service.withdraw(active)
    again = service.save(active, valid_values(session))
    stored = service.store.Registration.get_by_id(registered.id)
    assert again.id == registered.id
    assert (stored.status, stored.version, stored.withdrawn_at) == ("registered", 3, None)
    assert service.standing(active).state == "registered"
    assert (
        registration_mails(service.store, active.email)[-1]["subject"]
        == f"Confirmation d'inscription : {session.title}"
    )


def test_a_registration_set_aside_by_the_rectorat_cannot_be_changed_at_the_kiosk(
    service, active, registered, session
):
    Registration = service.store.Registration
    Registration.update(status="set_aside").where(Registration.id == registered.id).execute()
    with pytest.raises(Refused) as refused:
        service.save(active, valid_values(session, phone="05 49 00 00 00"))
    assert key(refused) == "registration.set_aside"
    stored = Registration.get_by_id(registered.id)
    assert (stored.status, stored.version) == ("set_aside", 1)


def test_a_first_save_racing_another_is_refused_not_crashed(service, active, session, monkeypatch):
    service.save(active, valid_values(session))
    # As if this kiosk had read « no registration yet » just before the other save landed.
    monkeypatch.setattr(service, "registration", lambda account: None)
    with pytest.raises(Refused) as refused:
        service.save(active, valid_values(session, phone="05 49 00 00 00"))
    assert key(refused) == "registration.conflict"
    assert service.store.Registration.select().count() == 1
    assert service.store.Registration.select().count() == 1


# -- address change -----------------------------------------------------------------------


@pytest.fixture
def rectorat_email(service) -> str:
    """The service's session gives the rectorat's e-mail, as a session's file may."""
    contact = replace(service.session.contact, email=RECTORAT_EMAIL)
    service.session = replace(service.session, contact=contact)
    return RECTORAT_EMAIL


def test_an_address_change_after_close_is_sent_to_the_rectorat(
    service, active, registered, rectorat_email, clock
):
    after_close(clock)
    change = service.report_address_change(active, NEW_ADDRESS)
    stored = service.store.AddressChange.get_by_id(change.id)
    assert stored.registration.id == registered.id
    assert stored.address == NEW_ADDRESS
    assert stored.created_at == clock.now()
    to_rectorat = mails(service.store, rectorat_email)
    assert len(to_rectorat) == 1
    body = to_rectorat[0]["body"]
    assert "3 quai Duperré" in body and "Appartement 12" in body and "17000 La Rochelle" in body
    assert "Téléphone : 05 46 00 00 00" in body
    assert active.email in body and registered.reference in body
    assert registered.reference in to_rectorat[0]["subject"]
    # The registration itself stays as it was saved.
    assert service.store.Registration.get_by_id(registered.id).version == 1


def test_without_the_rectorats_e_mail_an_address_change_is_recorded_and_mailed_nowhere(
    service, active, registered, session, clock
):
    # The shipped session gives no e-mail for the rectorat: none is guessed.
    assert session.contact.email == ""
    after_close(clock)
    before = service.store.OutboxRow.select().where(service.store.OutboxRow.kind == "mail").count()
    change = service.report_address_change(active, NEW_ADDRESS)
    assert service.store.AddressChange.get_by_id(change.id).address == NEW_ADDRESS
    outbox = service.store.OutboxRow
    assert outbox.select().where(outbox.kind == "mail").count() == before
    # It still reaches the rectorat, with the next sync.
    synced = [row.payload for row in outbox.select().where(outbox.kind == "sync")]
    assert {"entity": "address_change", "id": str(change.id)}.items() <= synced[-1].items()


def test_an_address_change_with_an_invalid_postal_code_is_refused_at_its_field(
    service, active, registered, rectorat_email
):
    with pytest.raises(Refused) as refused:
        service.report_address_change(active, dict(NEW_ADDRESS, postal_code="1700"))
    assert set(refused.value.problems) == {"postal_code"}
    assert key(refused, "postal_code") == "form.postal_code.invalid"
    assert service.store.AddressChange.select().count() == 0
    assert mails(service.store, rectorat_email) == []


def test_an_address_abroad_needs_no_french_postal_code(service, active, registered):
    changed = service.report_address_change(
        active, dict(NEW_ADDRESS, postal_code="1000", country="Belgique")
    )
    assert (changed.version, changed.answers["country"]) == (2, "Belgique")


def test_an_address_change_keeps_the_changes_of_the_form_not_saved_yet(
    service, active, registered, session
):
    """A draft (the language changed, not saved) and another street typed in it: the new
    version carries the address reported, and the draft stays, with that address."""
    service.save_draft(active, valid_values(session, language="espagnol", address_line1="9 rue X"))
    assert service.address_on_file(active)["address_line1"] == registered.answers["address_line1"]
    changed = service.report_address_change(active, NEW_ADDRESS)
    assert (changed.version, changed.answers["address_line1"]) == (2, "3 quai Duperré")
    assert changed.answers["language"] == registered.answers["language"]
    draft = service.draft(active)
    assert draft is not None
    assert (draft.values["language"], draft.values["address_line1"]) == (
        "espagnol",
        "3 quai Duperré",
    )
    assert service.address_on_file(active) == {name: NEW_ADDRESS[name] for name in NEW_ADDRESS}
    # The same address again changes nothing, and the draft stays all the same.
    with pytest.raises(Refused) as refused:
        service.report_address_change(active, NEW_ADDRESS)
    assert key(refused) == "registration.unchanged"
    assert service.draft(active).values["language"] == "espagnol"


def test_an_address_change_without_registration_is_refused(service, active, rectorat_email):
    with pytest.raises(Refused) as refused:
        service.report_address_change(active, NEW_ADDRESS)
    assert key(refused) == "address.no_registration"
    assert mails(service.store, rectorat_email) == []


# -- standing -------------------------------------------------------------------------------


def test_standing_none_then_draft_then_registered(service, active, session):
    assert service.standing(active).state == "none"
    service.save_draft(active, {"birth_town": "Niort"})
    standing = service.standing(active)
    assert (standing.state, standing.has_draft, standing.version) == ("draft", True, 0)
    service.save(active, valid_values(session))
    standing = service.standing(active)
    assert (standing.state, standing.version, standing.has_draft) == ("registered", 1, False)
    assert standing.pieces == tuple(required_pieces(service.registration(active).answers, session))
    assert standing.paper_deadline is None  # the shipped session gives no date
    service.save(active, valid_values(session, phone="07 11 22 33 44"))
    assert (service.standing(active).state, service.standing(active).version) == ("registered", 2)


def test_standing_after_close(service, active, other, registered, clock, session):
    service.save_draft(other, {"birth_town": "Niort"})
    after_close(clock)
    standing = service.standing(active)
    assert (standing.state, standing.version) == ("validated", 1)
    assert service.standing(other).state == "not_validated"


def test_a_withdrawal_stays_withdrawn_after_close(service, active, registered, clock):
    service.withdraw(active)
    after_close(clock)
    assert service.standing(active).state == "withdrawn"


def test_a_registration_saved_before_close_stays_saved(service, active, registered, clock, session):
    saved_at = registered.saved_at
    after_close(clock)
    stored = service.registration(active)
    assert (stored.id, stored.version, stored.status, stored.saved_at) == (
        registered.id,
        1,
        "registered",
        saved_at,
    )
    assert service.form_values(active)["phone"] == "06 12 34 56 78"
    assert service.locked_fields(active)


# -- reference -------------------------------------------------------------------------------


def test_the_reference_is_11_characters_of_crockford_base_32(registered, kiosk_store):
    reference = registered.reference
    assert re.fullmatch(f"[{CROCKFORD}]{{5}}-[{CROCKFORD}]{{5}}", reference), reference
    assert not set(reference) & set("ILOU")
    assert kiosk_store.Registration.get_by_id(registered.id).reference == reference


def test_the_reference_is_stable_for_a_given_id():
    some = uuid.uuid4()
    assert Registration(id=some).reference == Registration(id=some).reference
    assert Registration(id=uuid.UUID(int=0)).reference == "00000-00000"
    assert Registration(id=uuid.UUID(int=(1 << 128) - 1)).reference == "ZZZZZ-ZZZZZ"
    # The reference reads the high bits: it differs when they differ.
    assert Registration(id=uuid.UUID(int=1 << 127)).reference == "G0000-00000"
    references = {Registration(id=uuid.uuid4()).reference for _ in range(1000)}
    assert len(references) == 1000


# -- facts only from the session's data, in the mails ----------------------------------------


def test_the_mails_of_the_shipped_session_name_no_date_e_mail_or_telephone_it_lacks(
    service, active, session
):
    service.save(active, valid_values(session))
    service.save(active, valid_values(session, phone="07 11 22 33 44"))
    service.withdraw(active)
    sent = registration_mails(service.store, active.email)
    assert len(sent) == 3
    for mail in sent:
        body = mail["body"]
        assert "avant le" not in body
        assert "E-mail :" not in body and "Téléphone :" not in body
        # Signed by the rectorat as the session names it, and nothing else.
        assert body.rstrip().endswith(
            "Rectorat de l'académie de Poitiers\nBureau des examens professionnels (DEC)"
        )
    assert "Envoyez-la par courrier, avec les pièces justificatives, à :" in sent[0]["body"]
    assert "22 rue Guillaume VII le Troubadour\n86022 Poitiers" in sent[0]["body"]
    assert "c'est elle que vous devez signer et envoyer au rectorat, avec" in sent[1]["body"]


def test_the_mails_give_every_fact_the_session_gives(service, active, session):
    service.session = replace(
        session,
        paper_deadline=date(2019, 12, 13),
        contact=replace(session.contact, email="examens@exemple.fr", phone="05 00 00 00 00"),
    )
    service.save(active, valid_values(session))
    service.save(active, valid_values(session, phone="07 11 22 33 44"))
    registered_mail, changed_mail = registration_mails(service.store, active.email)
    assert "avant le vendredi 13 décembre 2019, à :" in registered_mail["body"]
    assert "envoyer au rectorat avant le vendredi 13 décembre 2019" in changed_mail["body"]
    for mail in (registered_mail, changed_mail):
        assert (
            mail["body"]
            .rstrip()
            .endswith(
                "Bureau des examens professionnels (DEC)\n"
                "E-mail : examens@exemple.fr\nTéléphone : 05 00 00 00 00"
            )
        )
