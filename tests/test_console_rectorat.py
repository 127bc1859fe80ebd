"""The staff console's tasks on the rectorat's store (SQLite file and PostgreSQL)."""

from __future__ import annotations

import uuid

import pytest

from kiosk.console.on_rectorat import RectoratConsole
from kiosk.console.views import Officer
from kiosk.errors import Refused
from kiosk.exam_sessions import load_session
from kiosk.rectorat.feed import LoginRefused
from kiosk.staff import StaffService
from kiosk.store.models import reference_of
from tests.factories import PASSWORD as CANDIDATE_PASSWORD
from tests.factories import (
    account_item,
    answers,
    fast_hasher,
    new_kiosk,
    registration_item,
    results,
)

PASSWORD = "bureau des examens 2019"
RECEPTION = Officer("accueil", "reception")
EXAM_OFFICE = Officer("dec", "exam_office")


def key(caught: pytest.ExceptionInfo[Refused], field: str = "") -> str:
    return caught.value.problems[field].key


@pytest.fixture
def console(store, clock, tmp_path) -> RectoratConsole:
    return RectoratConsole(
        store, clock, load_session("bacpro-poitiers-2020", clock), tmp_path / "exports"
    )


@pytest.fixture
def pushed(service):
    """Jean Dupont's account and registration, pushed by a kiosk: (account id, registration id)."""
    kiosk = new_kiosk(service, "borne-a")[0]
    account = account_item()
    registration = registration_item(account["id"])
    assert results(service.push(kiosk, [account, registration])) == ["applied", "applied"]
    return account["id"], registration["id"]


def registration(store, registration_id):
    return store.Registration.get_by_id(uuid.UUID(registration_id))


def test_staff_accounts_and_their_trail_live_in_the_rectorat_s_store(store, clock, console):
    StaffService(store.db, clock, fast_hasher(), model=store.Staff).add(
        "dec", "exam_office", PASSWORD
    )
    console.staff.hasher = fast_hasher()
    assert console.log_in("DEC", PASSWORD) == EXAM_OFFICE
    assert [(a.staff, a.action) for a in console.audit_trail(EXAM_OFFICE)] == [("dec", "login")]


def test_a_paper_file_is_received_by_number_or_scanned_reference(store, console, pushed):
    account_id, registration_id = pushed
    number = registration(store, registration_id).number
    reference = reference_of(uuid.UUID(registration_id))
    candidate, news = console.receive_paper(EXAM_OFFICE, number)
    assert (candidate.paper_status, news) == ("received", True)
    # Scanned again, or typed from paper with O for 0: found, and nothing changes.
    typed = reference.lower().replace("0", "o")
    candidate, news = console.receive_paper(EXAM_OFFICE, typed)
    assert (candidate.reference, news) == (reference, False)
    assert [line.action for line in console.audit_trail(EXAM_OFFICE)] == ["receive_paper"]
    with pytest.raises(Refused) as caught:
        console.receive_paper(EXAM_OFFICE, "2020-PO-999999")
    assert key(caught, "code") == "console.unknown_code"


def test_an_incomplete_file_names_its_missing_pieces_and_the_kiosks_are_told(
    store, service, console, pushed
):
    account_id, registration_id = pushed
    last = store.last_seq()
    pieces = console.open_file(EXAM_OFFICE, account_id).pieces
    assert "confirmation" in pieces
    with pytest.raises(Refused) as caught:
        console.mark_paper(EXAM_OFFICE, account_id, False)
    assert key(caught, "missing") == "console.missing_required"
    with pytest.raises(Refused) as caught:
        console.mark_paper(EXAM_OFFICE, account_id, False, ["passeport_martien"])
    assert key(caught, "missing") == "console.unknown_piece"
    console.mark_paper(EXAM_OFFICE, account_id, False, ["confirmation"])
    row = registration(store, registration_id)
    assert (row.paper_status, row.missing_pieces) == ("incomplete", ["confirmation"])
    service.sequence()
    assert store.last_seq() > last
    console.mark_paper(EXAM_OFFICE, account_id, True)
    assert registration(store, registration_id).missing_pieces is None


def test_a_registration_set_aside_no_longer_counts(store, console, pushed):
    account_id, registration_id = pushed
    console.set_aside(EXAM_OFFICE, account_id)
    assert registration(store, registration_id).status == "set_aside"
    assert console.glance(EXAM_OFFICE).registered == 0
    with pytest.raises(Refused) as caught:
        console.set_aside(EXAM_OFFICE, account_id)
    assert key(caught) == "console.not_registered"


def test_an_identity_correction_is_a_new_version_unless_it_makes_one_person_twice(
    store, service, console, pushed
):
    account_id, registration_id = pushed
    before = registration(store, registration_id).version
    console.correct_identity(EXAM_OFFICE, account_id, {"given_names": "Jean-Marc"})
    row = registration(store, registration_id)
    assert row.version == before + 1 and row.answers["given_names"] == "Jean-Marc"
    assert row.identity_key.startswith("dupont|jean marc|")
    # Claire Martin, born the same day, pushed by another kiosk.
    kiosk = new_kiosk(service, "borne-b")[0]
    other = account_item(email="claire@exemple.fr", family="Martin", given="Claire")
    service.push(kiosk, [other, registration_item(other["id"], who=answers("Martin", "Claire"))])
    with pytest.raises(Refused) as caught:
        console.correct_identity(
            EXAM_OFFICE, other["id"], {"family_name": "Dupont", "given_names": "Jean-Marc"}
        )
    assert key(caught) == "console.identity_taken"
    assert console.find(EXAM_OFFICE, "martin")[0].family_name == "Martin"


def test_a_conflict_is_listed_then_settled_by_the_exam_office(store, service, console, pushed):
    kiosk = new_kiosk(service, "borne-b")[0]
    twin = account_item(email="jean.d@exemple.fr")
    assert results(service.push(kiosk, [twin, registration_item(twin["id"])])) == [
        "applied",
        "conflict",
    ]
    assert console.glance(EXAM_OFFICE).conflicts == 1
    [conflict] = console.conflicts(EXAM_OFFICE)
    assert (conflict.kind, conflict.kiosk) == ("identity", "borne-b")
    assert "Dupont" in conflict.incoming and "Dupont" in conflict.existing
    console.resolve_conflict(EXAM_OFFICE, conflict.id, keep_existing=True)
    assert console.conflicts(EXAM_OFFICE) == []
    with pytest.raises(Refused) as caught:
        console.resolve_conflict(EXAM_OFFICE, conflict.id, keep_existing=False)
    assert key(caught) == "console.conflict_gone"


def test_codes_and_printers_are_the_kiosks(console, pushed):
    with pytest.raises(Refused) as caught:
        console.resend_code(RECEPTION, pushed[0])
    assert key(caught) == "console.not_here.rectorat"
    assert not console.can(RECEPTION, "reprint")


def test_the_reception_lifts_a_delay_of_login_elsewhere(store, service, console, pushed):
    account_id, _ = pushed
    store.Account.update(failed_logins=6).execute()
    console.lift_delay(RECEPTION, account_id)
    assert store.Account.get().failed_logins == 0
    with pytest.raises(Refused) as caught:
        console.lift_delay(RECEPTION, account_id)
    assert key(caught) == "console.not_locked"


def test_a_delay_lifted_at_the_console_is_lifted_for_the_service_s_own_process(
    service, console, pushed
):
    """``kiosk rectorat serve`` keeps the delays of logins elsewhere in its memory; the
    console is another process, with another service over the same store."""
    account_id, _ = pushed
    kiosk_b = new_kiosk(service, "borne-b")[0]
    email = "jean.dupont@exemple.fr"
    for _ in range(6):
        with pytest.raises(LoginRefused):
            service.feed.login(kiosk_b, email, "pas le bon mot de passe")
    with pytest.raises(LoginRefused) as caught:
        service.feed.login(kiosk_b, email, CANDIDATE_PASSWORD)
    assert caught.value.reason == "locked"
    console.lift_delay(RECEPTION, account_id)
    assert service.feed.login(kiosk_b, email, CANDIDATE_PASSWORD)["account"]["id"] == account_id


def test_the_export_lists_the_session_s_registrations_by_number(console, pushed):
    path = console.export_csv(EXAM_OFFICE)
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    assert lines[0].startswith("numero;reference;statut")
    assert len(lines) == 2 and lines[1].startswith("2020-")
