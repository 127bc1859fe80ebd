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
    assert refusal(caught) == "login.locked"
    clock.advance(timedelta(seconds=30))
    assert staff.authenticate("accueil", PASSWORD).failed_logins == 0


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
