"""The staff console's tasks, without the screens: rights, audit, both stores."""

from __future__ import annotations

import csv
import os
import stat
import unicodedata
from datetime import timedelta

import pytest

from kiosk import formatting
from kiosk.clock import Clock, parse_instant
from kiosk.console import open_console, rights
from kiosk.console.base import _cell
from kiosk.console.views import Officer, bars
from kiosk.errors import Refused
from kiosk.registration_form import LOCKED_FIELDS
from kiosk.runtime.config import load_config
from kiosk.runtime.services import build_services
from tests.factories import CANDIDATE, fast_hasher, mailed_code, valid_values

PASSWORD = "guichet du hall nord 2019"
RECEPTION = Officer("accueil", "reception")
EXAM_OFFICE = Officer("dec", "exam_office")


def key(caught: pytest.ExceptionInfo[Refused], field: str = "") -> str:
    return caught.value.problems[field].key


@pytest.fixture
def services(tmp_path):
    config = load_config(
        environ={}, overrides={"data_dir": tmp_path / "kiosk", "session": "bacpro-poitiers-2020"}
    )
    built = build_services(config, Clock(parse_instant("2019-11-10T10:00:00"), frozen=True))
    built.accounts.hasher = fast_hasher()
    built.staff.hasher = fast_hasher()
    yield built
    built.close()


@pytest.fixture
def console(services):
    return open_console(services)


@pytest.fixture
def registered(services):
    """Jean Dupont, active and registered at this kiosk."""
    account = services.accounts.sign_up(CANDIDATE)
    account = services.accounts.activate(account.email, mailed_code(services.store, account.email))
    registration = services.registrations.save(account, valid_values(services.session))
    return account, registration


def audit_lines(store) -> list[tuple[str, str, str | None, str]]:
    audit = store.StaffAudit
    return [
        (r.staff, r.action, r.subject, r.detail) for r in audit.select().order_by(audit.created_at)
    ]


# -- who may do what -------------------------------------------------------------------


def test_the_exam_office_has_every_right_of_the_reception_and_more():
    assert rights.RECEPTION < rights.EXAM_OFFICE
    assert {"receive_paper", "mark_paper", "set_aside", "resolve_conflict", "export", "audit",
            "correct_identity"} <= rights.EXAM_OFFICE - rights.RECEPTION  # fmt: skip


@pytest.mark.parametrize(
    "task",
    [
        lambda console, who: console.correct_identity(
            who, who_id(console), {"family_name": "Durand"}
        ),
        lambda console, who: console.receive_paper(who, "2020-PO-000001"),
        lambda console, who: console.mark_paper(who, who_id(console), True),
        lambda console, who: console.set_aside(who, who_id(console)),
        lambda console, who: console.conflicts(who),
        lambda console, who: console.resolve_conflict(who, "x", True),
        lambda console, who: console.export_csv(who),
        lambda console, who: console.audit_trail(who),
    ],
    ids=[
        "correct_identity",
        "receive_paper",
        "mark_paper",
        "set_aside",
        "conflicts",
        "resolve",
        "export",
        "audit",
    ],
)
def test_the_reception_cannot_do_the_exam_office_s_work(console, registered, task):
    before = console.store.Registration.get().version
    with pytest.raises(Refused) as caught:
        task(console, RECEPTION)
    assert key(caught) == "console.forbidden"
    assert console.store.Registration.get().version == before
    assert not console.exports_dir.exists()


def who_id(console) -> str:
    return str(console.store.Account.get().id)


def test_a_kiosk_store_sends_the_paper_work_to_the_rectorat_s(console, registered):
    account, _ = registered
    with pytest.raises(Refused) as caught:
        console.mark_paper(EXAM_OFFICE, str(account.id), True)
    assert key(caught) == "console.not_here.kiosk"
    assert not console.can(EXAM_OFFICE, "receive_paper")
    assert console.can(RECEPTION, "reprint") and not console.can(RECEPTION, "export")


# -- staff login -----------------------------------------------------------------------


def test_staff_log_in_with_their_role_and_the_login_is_in_the_trail(services, console):
    services.staff.add("accueil", "reception", PASSWORD)
    officer = console.log_in("Accueil", PASSWORD)
    assert officer == RECEPTION
    with pytest.raises(Refused) as caught:
        console.log_in("accueil", "pas le bon mot de passe")
    assert key(caught) == "staff.wrong"
    # A refused login is in the trail too, under the name as typed.
    assert audit_lines(console.store) == [
        ("accueil", "login", None, ""),
        ("accueil", "login_refused", None, ""),
    ]


# -- finding and viewing ---------------------------------------------------------------


@pytest.mark.parametrize("query", ["dupont", "DUPONT", "jean.dupont@", "exemple.fr", "Jéan"])
def test_a_candidate_is_found_by_name_or_e_mail_whatever_the_case_and_accents(
    console, registered, query
):
    found = console.find(RECEPTION, query)
    assert [c.family_name for c in found] == ["Dupont"]


def test_a_candidate_is_found_by_the_reference_as_printed_or_typed(console, registered):
    reference = registered[1].reference
    for typed in (reference, reference.lower(), reference.replace("-", "")):
        assert [c.reference for c in console.find(RECEPTION, typed)] == [reference]


def test_a_short_query_is_refused_at_its_field(console):
    with pytest.raises(Refused) as caught:
        console.find(RECEPTION, " d ")
    assert key(caught, "query") == "console.query_short"


def test_viewing_a_file_is_recorded_with_who_and_what_never_a_secret(console, registered):
    account, registration = registered
    file = console.open_file(RECEPTION, str(account.id))
    assert file.candidate.reference == registration.reference
    assert file.candidate.status == "registered" and "confirmation" in file.pieces
    assert file.activation_deadline is None and file.activated_at is not None
    console.find(RECEPTION, "dupont")
    lines = audit_lines(console.store)
    assert lines[0] == ("accueil", "view", str(account.id), "")
    assert lines[1][1] == "find"
    row = console.store.StaffAudit.get(console.store.StaffAudit.action == "view")
    assert row.created_at.utcoffset() == timedelta(0) or row.created_at.tzinfo is not None


def test_the_audit_trail_cannot_be_changed_or_emptied(console, registered):
    console.open_file(RECEPTION, str(registered[0].id))
    with pytest.raises(Exception, match="append-only"):
        console.store.StaffAudit.update(staff="quelqu'un d'autre").execute()
    with pytest.raises(Exception, match="append-only"):
        console.store.StaffAudit.delete().execute()


# -- the reception ---------------------------------------------------------------------


def test_the_reception_resends_an_activation_code_and_the_trail_keeps_no_code(services, console):
    account = services.accounts.sign_up(CANDIDATE)
    first = mailed_code(services.store, account.email)
    services.clock.advance(timedelta(minutes=2))
    console.resend_code(RECEPTION, str(account.id))
    second = mailed_code(services.store, account.email)
    assert second != first
    assert services.accounts.activate(account.email, second).status == "active"
    trail = " ".join(" ".join(filter(None, line)) for line in audit_lines(console.store))
    assert "resend_code" in trail
    assert second not in trail and second.replace("-", "") not in trail


def test_an_active_account_has_no_code_to_resend(console, registered):
    with pytest.raises(Refused) as caught:
        console.resend_code(RECEPTION, str(registered[0].id))
    assert key(caught) == "console.already_active"


def test_the_reception_lifts_a_login_delay(services, console, registered):
    account, _ = registered
    for _ in range(6):
        with pytest.raises(Refused):
            services.accounts.log_in(account.email, "mauvais mot de passe")
    assert console.store.Account.get_by_id(account.id).locked_until is not None
    console.lift_delay(RECEPTION, str(account.id))
    assert console.store.Account.get_by_id(account.id).locked_until is None
    assert services.accounts.log_in(account.email, CANDIDATE.password).id == account.id
    with pytest.raises(Refused) as caught:
        console.lift_delay(RECEPTION, str(account.id))
    assert key(caught) == "console.not_locked"


def test_the_reception_reprints_the_current_confirmation(services, console, registered):
    console.reprint(RECEPTION, str(registered[0].id))
    printed = list(services.config.print_dir.glob("*.pdf"))
    assert len(printed) == 1 and printed[0].read_bytes().startswith(b"%PDF")


def test_there_is_nothing_to_reprint_without_a_registration(services, console):
    account = services.accounts.sign_up(CANDIDATE)
    with pytest.raises(Refused) as caught:
        console.reprint(RECEPTION, str(account.id))
    assert key(caught) == "console.nothing_to_print"


# -- the exam office on a kiosk's store ------------------------------------------------


def test_the_exam_office_corrects_a_locked_identity_as_a_new_version_sent_on(console, registered):
    Account, OutboxRow = console.store.Account, console.store.OutboxRow
    account, registration = registered
    queued = OutboxRow.select().count()
    corrected = console.correct_identity(
        EXAM_OFFICE, str(account.id), {"family_name": "Dupond", "birth_town": "Niort"}
    )
    assert corrected.version == registration.version + 1
    assert (
        corrected.answers["family_name"] == "Dupond" and corrected.answers["birth_town"] == "Niort"
    )
    assert Account.get_by_id(account.id).family_name == "Dupond"
    assert OutboxRow.select().count() > queued  # the new version waits for the rectorat
    assert ("dec", "correct_identity", str(account.id), "family_name, birth_town") in audit_lines(
        console.store
    )


def test_the_identity_form_sent_back_as_shown_changes_nothing(console, registered):
    """The form shows the birth date as 05/03/2002 (numeric_date); sent back untouched,
    every field is what is stored: no new version, no line in the trail."""
    account, registration = registered
    shown = {name: str(registration.answers.get(name, "")) for name in LOCKED_FIELDS}
    shown["birth_date"] = formatting.numeric_date(shown["birth_date"])
    assert shown["birth_date"] != registration.answers["birth_date"]
    with pytest.raises(Refused) as caught:
        console.correct_identity(EXAM_OFFICE, str(account.id), shown)
    assert key(caught) == "console.nothing_changed"
    corrected = console.correct_identity(
        EXAM_OFFICE, str(account.id), {**shown, "birth_town": "Niort"}
    )
    assert corrected.version == registration.version + 1
    assert corrected.answers["birth_date"] == registration.answers["birth_date"]
    assert ("dec", "correct_identity", str(account.id), "birth_town") in audit_lines(console.store)


def test_a_wrong_correction_is_refused_at_its_field_and_changes_nothing(console, registered):
    account, registration = registered
    with pytest.raises(Refused) as caught:
        console.correct_identity(EXAM_OFFICE, str(account.id), {"birth_date": "31/02/2002"})
    assert "birth_date" in caught.value.problems
    with pytest.raises(Refused) as caught:
        console.correct_identity(EXAM_OFFICE, str(account.id), {"family_name": "Dupont"})
    assert key(caught) == "console.nothing_changed"
    assert console.store.Registration.get().version == registration.version


def test_the_export_is_one_line_per_registration_readable_by_its_owner_only(console, registered):
    path = console.export_csv(EXAM_OFFICE)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with open(path, encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter=";"))
    assert len(rows) == 1
    assert rows[0]["reference"] == registered[1].reference
    assert rows[0]["nom"] == "Dupont" and rows[0]["statut"] == "registered"
    assert audit_lines(console.store)[-1][1] == "export"


def test_two_exports_in_one_second_are_two_files_and_a_planted_link_is_not_followed(
    console, registered, tmp_path
):
    first = console.export_csv(EXAM_OFFICE)
    target = tmp_path / "autre-fichier.txt"
    target.write_text("à garder")
    planted = first.with_name(first.stem + "-2.csv")
    planted.symlink_to(target)  # a share: someone else may write there
    second = console.export_csv(EXAM_OFFICE)  # the same second, on the frozen clock
    assert second not in (first, planted) and second.name == first.stem + "-3.csv"
    assert target.read_text() == "à garder"
    assert first.read_text(encoding="utf-8-sig") == second.read_text(encoding="utf-8-sig")


@pytest.mark.parametrize("text", ["=1+1", "+33 5 49", "-2", "@SUM(A1)"])
def test_a_cell_a_spreadsheet_would_run_is_kept_as_text(text):
    assert _cell(text) == "'" + text
    assert _cell("Dupont") == "Dupont"


# What reaches the cell (synced data is not checked by the kiosk's forms), what is written.
CELLS = [
    # plain text, untouched
    ("Dupont", "Dupont"),
    ("Jean-Pierre", "Jean-Pierre"),
    ("O'Neil", "O'Neil"),
    ("12 rue de la Paix", "12 rue de la Paix"),
    ("jean+kiosque@exemple.fr", "jean+kiosque@exemple.fr"),
    ("", ""),
    (None, ""),
    (3, "3"),
    # a formula at the start, as typed
    ("=1+1", "'=1+1"),
    ("+33 5 49", "'+33 5 49"),
    ("-2", "'-2"),
    ("@SUM(A1)", "'@SUM(A1)"),
    # behind spaces a spreadsheet trims: ASCII, no-break, the Unicode spaces
    (" =1+1", "' =1+1"),
    ("   @SUM(A1)", "'   @SUM(A1)"),
    ("\u00a0=1+1", "'\u00a0=1+1"),
    ("\u2000+1", "'\u2000+1"),
    ("\u2003-1", "'\u2003-1"),
    ("\u200a=1", "'\u200a=1"),
    ("\u202f=1", "'\u202f=1"),
    ("\u205f=1", "'\u205f=1"),
    ("\u3000=1", "'\u3000=1"),
    ("\u1680=1", "'\u1680=1"),
    # behind line and column breaks, which become spaces
    ("\n=1+1", "' =1+1"),
    ("\r\n=1+1", "'  =1+1"),
    ("\t=1+1", "' =1+1"),
    ("\x0b=1", "' =1"),
    ("\x0c=1", "' =1"),
    ("\x85=1", "' =1"),
    ("\u2028=1", "' =1"),
    ("\u2029@x", "' @x"),
    # behind invisible characters, which are removed
    ("\u200b=1+1", "'=1+1"),
    ("\ufeff=1+1", "'=1+1"),
    ("\u2060+1", "'+1"),
    ("\u202e=1", "'=1"),
    ("\x00=1", "'=1"),
    # full-width and small signs
    ("\uff1dSOMME(A1)", "'\uff1dSOMME(A1)"),
    ("\uff0b1", "'\uff0b1"),
    ("\uff0d1", "'\uff0d1"),
    ("\uff20x", "'\uff20x"),
    ("\ufe62x", "'\ufe62x"),
    ("\ufe63x", "'\ufe63x"),
    ("\ufe66x", "'\ufe66x"),
    ("\ufe6bx", "'\ufe6bx"),
    ("\u2212x", "'\u2212x"),
    ("\u3000\uff1d1", "'\u3000\uff1d1"),
    # control characters are removed wherever they are
    ("Du\x00pont", "Dupont"),
    ("Du\x1b[2Jpont", "Du[2Jpont"),
    ("Du\x07pont\x7f", "Dupont"),
    ("Du\x9bpont", "Dupont"),
    ("Du\u202epont", "Dupont"),
    ("12 rue\nde la Paix", "12 rue de la Paix"),
    ("Du\ud800pont", "Du\ufffdpont"),
    # a sign further in is no formula
    ("Dupont=1", "Dupont=1"),
    ("Jean @ Poitiers", "Jean @ Poitiers"),
]


@pytest.mark.parametrize(("value", "written"), CELLS)
def test_a_cell_holds_no_control_and_no_formula(value, written):
    cell = _cell(value)
    assert cell == written
    assert not any(unicodedata.category(c) in ("Cc", "Cf", "Cs") for c in cell)


def test_the_export_file_holds_no_control_character_and_no_formula(console, registered):
    _, registration = registered
    store = console.store
    # As synced data could hold them: the kiosk's own forms refuse such names.
    hostile = {"family_name": "\u00a0=LIEN_HYPERTEXTE(x)\x1b[2J", "given_names": "\n+1\x00"}
    answers = {**store.Registration.get_by_id(registration.id).answers, **hostile}
    store.Registration.update(answers=answers).where(
        store.Registration.id == registration.id
    ).execute()
    path = console.export_csv(EXAM_OFFICE)
    with open(path, encoding="utf-8-sig", newline="") as handle:
        raw = handle.read()
    assert not any(unicodedata.category(c) == "Cc" for c in raw.replace("\r\n", ""))
    with open(path, encoding="utf-8-sig", newline="") as handle:
        [row] = list(csv.DictReader(handle, delimiter=";"))
    assert row["nom"] == "'\u00a0=LIEN_HYPERTEXTE(x)[2J"
    assert row["prenoms"] == "' +1"


def test_the_glance_counts_registrations_per_day_and_specialty(services, console, registered):
    glance = console.glance(RECEPTION)
    assert glance.registered == 1 and glance.paper_pending == 1 and glance.paper_incomplete == 0
    assert glance.conflicts is None  # a kiosk holds none
    assert [n for _, n in glance.per_day] == [1]
    assert sum(n for _, n in glance.per_specialty) == 1


def test_bars_are_proportional_and_labelled():
    lines = bars([("lun. 4", 10), ("mar. 5", 5), ("mer. 6", 0)], width=10)
    assert lines[0] == "lun. 4 ██████████ 10"
    assert lines[1] == "mar. 5 █████ 5"
    assert lines[2] == "mer. 6  0"


def test_the_export_goes_where_the_configuration_says(tmp_path, services):
    from dataclasses import replace

    services.config = replace(services.config, exports=str(tmp_path / "partage-dec"))
    path = open_console(services).export_csv(EXAM_OFFICE)
    assert path.parent == tmp_path / "partage-dec"
