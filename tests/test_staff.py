"""Staff accounts: who may leave kiosk mode; the same password rules and delays as candidates."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from kiosk.errors import Refused
from kiosk.staff import StaffService
from tests.factories import fast_hasher

PASSWORD = "guichet du hall nord 2019"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def staff(kiosk_store, clock) -> StaffService:
    return StaffService(kiosk_store, clock, fast_hasher())


def refusal(caught: pytest.ExceptionInfo[Refused], field: str = "") -> str:
    return caught.value.problems[field].key


def test_a_staff_account_is_made_and_logs_in(staff):
    staff.add(" Accueil ", "reception", PASSWORD)
    member = staff.authenticate("ACCUEIL", PASSWORD)
    assert (member.name, member.role) == ("accueil", "reception")


@pytest.mark.parametrize(
    ("name", "role", "password", "field", "key"),
    [
        ("", "reception", PASSWORD, "name", "staff.name"),
        ("a b", "reception", PASSWORD, "name", "staff.name"),
        ("accueil", "admin", PASSWORD, "role", "staff.role"),
        ("accueil", "reception", "court", "password", "password.too_short"),
        ("accueil", "reception", "accueil du rectorat", "password", "password.personal"),
    ],
)
def test_bad_staff_accounts_are_refused_at_their_field(staff, name, role, password, field, key):
    with pytest.raises(Refused) as caught:
        staff.add(name, role, password)
    assert refusal(caught, field) == key
    assert staff.model.select().count() == 0


def test_a_name_is_taken_once(staff):
    staff.add("accueil", "reception", PASSWORD)
    with pytest.raises(Refused) as caught:
        staff.add("Accueil", "exam_office", PASSWORD)
    assert refusal(caught, "name") == "staff.taken"


def test_unknown_name_and_wrong_password_get_the_same_answer(staff):
    staff.add("accueil", "reception", PASSWORD)
    for name, password in (("personne", PASSWORD), ("accueil", "mauvais mot de passe")):
        with pytest.raises(Refused) as caught:
            staff.authenticate(name, password)
        assert refusal(caught) == "staff.wrong"


def test_the_fifth_failure_makes_staff_wait_too(staff, clock):
    staff.add("accueil", "reception", PASSWORD)
    for _ in range(4):
        with pytest.raises(Refused):
            staff.authenticate("accueil", "mauvais mot de passe")
    staff.authenticate("accueil", PASSWORD)  # four failures: no wait, and the count starts again
    for _ in range(5):
        with pytest.raises(Refused):
            staff.authenticate("accueil", "mauvais mot de passe")
    with pytest.raises(Refused) as caught:
        staff.authenticate("accueil", PASSWORD)
    assert refusal(caught) == "staff.wrong"  # locked: said as a wrong password
    clock.advance(timedelta(seconds=30))
    assert staff.authenticate("accueil", PASSWORD).failed_logins == 0


# -- leaving kiosk mode (F12): its own limits, audited, never the console's -----------------


def leave(staff, kiosk_store, name: str, password: str) -> str:
    with pytest.raises(Refused) as caught:
        staff.leave_kiosk(kiosk_store, name, password)
    return refusal(caught)


def test_the_public_kiosk_cannot_lock_a_staff_account_out_of_the_console(staff, kiosk_store):
    staff.add("accueil", "reception", PASSWORD)
    for _ in range(12):
        assert leave(staff, kiosk_store, "accueil", "mauvais mot de passe") == "staff.wrong"
    member = kiosk_store.StaffAccount.get()
    assert member.failed_logins == 0 and member.locked_until is None
    assert staff.authenticate("accueil", PASSWORD).name == "accueil"  # the console: open


def test_failed_kiosk_exits_are_audited_and_count_in_the_kiosks_cap(staff, kiosk_store, clock):
    staff.add("accueil", "reception", PASSWORD)
    leave(staff, kiosk_store, "Accueil", "mauvais mot de passe")
    leave(staff, kiosk_store, "personne", "mauvais mot de passe")
    audit = kiosk_store.StaffAudit
    lines = [(a.staff, a.role, a.action) for a in audit.select().order_by(audit.created_at)]
    assert lines == [
        ("accueil", "reception", "kiosk_exit_refused"),
        ("personne", "", "kiosk_exit_refused"),
    ]
    assert kiosk_store.LoginFailure.select().count() == 2
    for n in range(28):
        leave(staff, kiosk_store, f"inconnu{n}", "mauvais mot de passe")
    assert leave(staff, kiosk_store, "accueil", PASSWORD) == "login.kiosk_locked"
    clock.advance(timedelta(minutes=15))
    assert staff.leave_kiosk(kiosk_store, "accueil", PASSWORD).name == "accueil"


def test_kiosk_exit_limit_per_name_is_the_same_for_every_name(staff, kiosk_store, clock):
    staff.add("accueil", "reception", PASSWORD)
    for name in ("accueil", "personne"):
        for _ in range(5):
            assert leave(staff, kiosk_store, name, "mauvais mot de passe") == "staff.wrong"
    assert leave(staff, kiosk_store, "accueil", PASSWORD) == "staff.wrong"  # limited, said alike
    clock.advance(timedelta(minutes=15))
    assert staff.leave_kiosk(kiosk_store, "accueil", PASSWORD).name == "accueil"


def test_an_old_hash_is_redone_at_login(kiosk_store, clock):
    StaffAccount = kiosk_store.StaffAccount
    StaffService(kiosk_store, clock, fast_hasher()).add("accueil", "reception", PASSWORD)
    old = StaffAccount.get().password_hash
    current = StaffService(kiosk_store, clock, fast_hasher(time_cost=2))
    current.authenticate("accueil", PASSWORD)
    assert StaffAccount.get().password_hash != old
    assert current.hasher.verify(StaffAccount.get().password_hash, PASSWORD)


def test_the_command_line_makes_and_lists_staff_accounts(tmp_path):
    def kiosk(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "kiosk.py", "--data-dir", str(tmp_path), *args],
            cwd=ROOT,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    made = kiosk(
        "staff-account",
        "add",
        "dec",
        "--role",
        "exam_office",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert made.returncode == 0, made.stderr
    refused = kiosk(
        "staff-account", "add", "dec2", "--role", "reception", "--password-stdin", stdin="court\n"
    )
    assert refused.returncode == 2 and "au moins 12 caractères" in refused.stderr
    assert kiosk("staff-account", "list").stdout.split() == ["dec", "exam_office"]
