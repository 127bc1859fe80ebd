"""What the public keyboard learns about an address or a staff name: nothing.

Every operation a stranger can start at the kiosk (sign-up, activation, a new code, login,
the forgotten password and its code, leaving kiosk mode with F12) is tried on each state
its target can be in, and three things must be the same whatever the state: the answer
(the refusal's fields, message names and parameters, or what is returned), the argon2
work (counted on a real hasher, with tiny costs), and what the try costs in the kiosk's
cap (which the next person at the keyboard would notice). How long each takes with the
kiosk's own argon2 costs is a bench figure (``python -m bench no_oracle``), not a test.

Then: what a stranger does at the keyboard never keeps the owner out. Most of that is in
``test_accounts.py`` and ``test_staff.py`` (a burnt activation code replaced at once, the
day's codes that cannot be spent, the lock lifted by a reset code, F12 failures that never
touch the console); the cases here are the ones they leave out.

Last, the screens themselves: what the login and activation screens show after a try is
the same, letter for letter, for an unknown, a pending, an active and a locked account.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from textual.widgets import Input, Static

from kiosk.accounts import AccountService
from kiosk.clock import Clock, parse_instant
from kiosk.codes import CODE_MARK
from kiosk.errors import Refused
from kiosk.passwords import Hasher
from kiosk.runtime.config import load_config
from kiosk.runtime.services import Services, build_services
from kiosk.staff import StaffService
from kiosk.store.database import KioskStore
from screens.app import build_app
from screens.fields import Field
from tests.factories import CANDIDATE, fast_hasher, mailed_code
from tests.support.pilot import SESSION, SIZE, SUNDAY_MORNING, settle
from tests.support.pilot import mailed_code as pilot_mailed_code

PASSWORD = CANDIDATE.password
WRONG = "pas le bon mot de passe"
WRONG_CODE = "ZZZZ-ZZZZ"
NEW_PASSWORD = "poisson volant sur la lune"
STAFF_PASSWORD = "guichet du hall nord 2019"

# One address per state; « inconnu » has no account.
ADDRESSES = {
    "unknown": "inconnu@exemple.fr",
    "pending": "attente@exemple.fr",
    "active": "actif@exemple.fr",
    "locked": "bloque@exemple.fr",
}


class CountingHasher(Hasher):
    """argon2id for real, with the tiny costs of ``fast_hasher``, telling what it was asked.

    ``waste_time`` is one argon2 check of a decoy: it is counted as itself, not as the
    check it makes inside.
    """

    def __init__(self) -> None:
        super().__init__(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
        self.calls: list[str] = []
        self._in_decoy = False
        # The decoy's hash is made on the first decoy check of a process, once; made now,
        # it is not counted against the first path that needs it.
        self.waste_time("")
        self.calls.clear()

    def hash(self, secret: str) -> str:
        self.calls.append("hash")
        return super().hash(secret)

    def verify(self, hashed: str, secret: str) -> bool:
        if not self._in_decoy:
            self.calls.append("verify")
        return super().verify(hashed, secret)

    def waste_time(self, secret: str) -> None:
        self.calls.append("waste_time")
        self._in_decoy = True
        try:
            super().waste_time(secret)
        finally:
            self._in_decoy = False


@dataclass(frozen=True)
class Outcome:
    """What one try showed: the answer, the argon2 operations, the tries it added to the
    kiosk's cap."""

    answer: tuple[str, Any]
    argon2: int
    cap: int


def refusal(refused: Refused) -> dict[str, tuple[str, dict]]:
    return {field: (p.key, p.params) for field, p in refused.problems.items()}


def outcome(
    store: KioskStore, hasher: CountingHasher, call: Callable[[], Any], shape=repr
) -> Outcome:
    hasher.calls.clear()
    before = store.LoginFailure.select().count()
    try:
        answer: tuple[str, Any] = ("answered", shape(call()))
    except Refused as refused:
        answer = ("refused", refusal(refused))
    cap = store.LoginFailure.select().count() - before
    return Outcome(answer, len(hasher.calls), cap)


def alike(outcomes: dict[str, Outcome]) -> Outcome:
    """The one outcome every state had; fails showing them all when they differ."""
    first = next(iter(outcomes.values()))
    assert outcomes == dict.fromkeys(outcomes, first)
    return first


# -- the accounts, one per state ---------------------------------------------------------------


@pytest.fixture
def hasher() -> CountingHasher:
    return CountingHasher()


@pytest.fixture
def accounts(kiosk_store, clock, session, hasher) -> AccountService:
    return AccountService(kiosk_store, clock, session, hasher=hasher)


def make_account(accounts: AccountService, email: str, *, active: bool = True) -> None:
    accounts.sign_up(replace(CANDIDATE, email=email))
    if active:
        accounts.activate(email, mailed_code(accounts.store, email))


@pytest.fixture
def states(accounts) -> dict[str, str]:
    """An account per state: pending (its code live, its mail not yet sent), active, locked
    (five wrong passwords); the kiosk's cap emptied afterwards, as if it had been long ago."""
    make_account(accounts, ADDRESSES["pending"], active=False)
    make_account(accounts, ADDRESSES["active"])
    make_account(accounts, ADDRESSES["locked"])
    for _ in range(5):
        with pytest.raises(Refused):
            accounts.log_in(ADDRESSES["locked"], WRONG)
    Account = accounts.store.Account
    locked = Account.get(Account.email == ADDRESSES["locked"])
    assert locked.locked_until is not None
    accounts.store.LoginFailure.delete().execute()
    return ADDRESSES


def each_state(store, hasher, states, call, shape=repr) -> dict[str, Outcome]:
    return {
        state: outcome(store, hasher, partial(call, email), shape)
        for state, email in states.items()
    }


# -- the same answer, the same argon2 work, the same cost in the cap ----------------------------


def test_sign_up_answers_alike(accounts, hasher, states, clock):
    def shape(account):
        # What the screen shows next: the address, and the 48 h deadline of its code.
        deadline = accounts.activation_deadline(account)
        return type(account).__name__, account.status, account.family_name, deadline

    def sign_up(email):
        return accounts.sign_up(replace(CANDIDATE, email=email))

    said = alike(each_state(accounts.store, hasher, states, sign_up, shape))
    deadline = clock.now() + timedelta(hours=48)
    assert said == Outcome(("answered", ("Account", "pending", "Dupont", deadline)), 2, cap=0)
    # The unknown address has a pending account now: asked again, every state says the same.
    assert alike(each_state(accounts.store, hasher, states, sign_up, shape)) == said


def test_sign_up_returns_the_typed_address_in_every_state(accounts, states):
    # The next screen shows it: as typed, normalised (the domain in lower case).
    for email in states.values():
        typed = " " + email.upper()
        local = email.partition("@")[0].upper()
        assert accounts.sign_up(replace(CANDIDATE, email=typed)).email == f"{local}@exemple.fr"


def test_activation_refuses_alike(accounts, hasher, states):
    said = alike(
        each_state(accounts.store, hasher, states, lambda e: accounts.activate(e, WRONG_CODE))
    )
    assert said == Outcome(("refused", {"code": ("code.wrong_or_expired", {})}), argon2=1, cap=1)


def test_activation_refuses_a_burnt_code_as_a_wrong_one(accounts, hasher, states):
    for _ in range(5):
        with pytest.raises(Refused):
            accounts.activate(states["pending"], WRONG_CODE)
    burnt = outcome(
        accounts.store, hasher, lambda: accounts.activate(states["pending"], WRONG_CODE)
    )
    live = outcome(accounts.store, hasher, lambda: accounts.activate(states["active"], WRONG_CODE))
    assert burnt == live


def test_a_new_activation_code_is_answered_alike_and_again_within_the_minute(
    accounts, hasher, states
):
    def ask(email):
        return accounts.resend_activation(email)

    first = alike(each_state(accounts.store, hasher, states, ask))
    again = alike(each_state(accounts.store, hasher, states, ask))  # within 60 s: no code sent
    assert first == again
    assert (first.answer[0], first.argon2, first.cap) == ("answered", 1, 1)


def test_login_refuses_alike(accounts, hasher, states):
    said = alike(each_state(accounts.store, hasher, states, lambda e: accounts.log_in(e, WRONG)))
    assert said == Outcome(("refused", {"": ("login.wrong", {})}), argon2=1, cap=1)


def test_a_locked_account_refuses_its_right_password_as_a_wrong_one(accounts, hasher, states):
    right = outcome(accounts.store, hasher, lambda: accounts.log_in(states["locked"], PASSWORD))
    unknown = outcome(accounts.store, hasher, lambda: accounts.log_in(states["unknown"], PASSWORD))
    assert right == unknown


def test_login_refuses_an_address_that_is_not_one_alike(accounts, hasher, states):
    not_one = outcome(accounts.store, hasher, lambda: accounts.log_in("pas une adresse", WRONG))
    assert not_one == outcome(
        accounts.store, hasher, lambda: accounts.log_in(states["active"], WRONG)
    )


def test_a_reset_request_is_answered_alike_and_again_within_the_minute(accounts, hasher, states):
    def ask(email):
        return accounts.request_reset(email)

    first = alike(each_state(accounts.store, hasher, states, ask))
    again = alike(each_state(accounts.store, hasher, states, ask))  # within 60 s: no code sent
    assert first == again
    assert (first.answer[0], first.argon2, first.cap) == ("answered", 1, 1)


def test_a_reset_with_a_wrong_code_is_refused_alike(accounts, hasher, states):
    for email in states.values():
        accounts.request_reset(email)  # an active account has a live reset code now
    accounts.store.LoginFailure.delete().execute()
    said = alike(
        each_state(
            accounts.store,
            hasher,
            states,
            lambda e: accounts.reset_password(e, WRONG_CODE, NEW_PASSWORD, NEW_PASSWORD),
        )
    )
    assert said == Outcome(("refused", {"code": ("code.wrong_or_expired", {})}), argon2=1, cap=1)


def test_a_reset_with_the_activation_code_is_refused_as_a_wrong_one(accounts, hasher, states):
    code = mailed_code(accounts.store, states["pending"])
    pending = outcome(
        accounts.store,
        hasher,
        lambda: accounts.reset_password(states["pending"], code, NEW_PASSWORD, NEW_PASSWORD),
    )
    unknown = outcome(
        accounts.store,
        hasher,
        lambda: accounts.reset_password(states["unknown"], code, NEW_PASSWORD, NEW_PASSWORD),
    )
    assert pending == unknown


# -- F12: the staff's way out of kiosk mode ---------------------------------------------------


@pytest.fixture
def staff(kiosk_store, clock, hasher) -> StaffService:
    return StaffService(kiosk_store, clock, hasher)


@pytest.fixture
def staff_states(staff, kiosk_store, clock) -> dict[str, str]:
    """A staff name per state: unknown, active, locked at the console (five wrong
    passwords there), disabled, and held at F12 (five wrong passwords there)."""
    for name in ("actif", "bloque", "desactive", "retenu"):
        staff.add(name, "reception", STAFF_PASSWORD)
    for _ in range(5):
        with pytest.raises(Refused):
            staff.authenticate("bloque", WRONG)
        with pytest.raises(Refused):
            staff.leave_kiosk(kiosk_store, "retenu", WRONG)
    model = kiosk_store.StaffAccount
    model.update(disabled_at=clock.now()).where(model.name == "desactive").execute()
    assert model.get(model.name == "bloque").locked_until is not None
    kiosk_store.LoginFailure.delete().execute()
    return {
        "unknown": "personne",
        "active": "actif",
        "locked": "bloque",
        "disabled": "desactive",
        "held": "retenu",
    }


def test_f12_refuses_alike_whatever_the_name(staff, kiosk_store, hasher, staff_states):
    said = alike(
        each_state(
            kiosk_store, hasher, staff_states, lambda n: staff.leave_kiosk(kiosk_store, n, WRONG)
        )
    )
    assert said == Outcome(("refused", {"": ("staff.wrong", {})}), argon2=1, cap=1)


def test_f12_refuses_a_disabled_or_held_name_s_right_password_as_a_wrong_one(
    staff, kiosk_store, hasher, staff_states
):
    def leave(name: str, password: str) -> Outcome:
        return outcome(kiosk_store, hasher, lambda: staff.leave_kiosk(kiosk_store, name, password))

    wrong = leave("personne", STAFF_PASSWORD)
    assert leave("desactive", STAFF_PASSWORD) == leave("retenu", STAFF_PASSWORD) == wrong


def test_failed_f12_tries_are_audited_alike_whatever_the_name(staff, kiosk_store, staff_states):
    audit = kiosk_store.StaffAudit
    earlier = {a.id for a in audit.select(audit.id)}
    for name in staff_states.values():
        with pytest.raises(Refused):
            staff.leave_kiosk(kiosk_store, name.upper(), WRONG)
    rows = [(a.staff, a.action, a.subject, a.detail) for a in audit.select() if a.id not in earlier]
    assert sorted(rows) == sorted(
        (name, "kiosk_exit_refused", name, "F12") for name in staff_states.values()
    )


# -- nothing a stranger does at the keyboard keeps the owner out ---------------------------
# Already in test_accounts.py: test_a_burnt_code_is_replaced_at_once,
# test_a_stranger_cannot_spend_the_owners_codes_for_the_day, test_only_the_latest_code_is_valid,
# test_reset_with_the_right_code_changes_the_password_and_clears_the_lock,
# test_a_duplicate_sign_up_mails_the_owner_no_new_code; in test_staff.py:
# test_the_public_kiosk_cannot_lock_a_staff_account_out_of_the_console,
# test_kiosk_exit_limit_per_name_is_the_same_for_every_name.


def test_a_burnt_reset_code_is_replaced_at_once(accounts, states):
    email = states["active"]
    accounts.request_reset(email)
    for _ in range(5):
        with pytest.raises(Refused):
            accounts.reset_password(email, WRONG_CODE, NEW_PASSWORD, NEW_PASSWORD)
    accounts.request_reset(email)  # within the minute, but the code is burnt
    fresh = mailed_code(accounts.store, email)
    accounts.reset_password(email, fresh, NEW_PASSWORD, NEW_PASSWORD)
    assert accounts.log_in(email, NEW_PASSWORD).email == email


def test_a_stranger_s_sign_up_or_reset_request_changes_nothing_for_the_owner(accounts, states):
    email = states["active"]
    other = "un tout autre mot de passe"
    accounts.sign_up(replace(CANDIDATE, email=email, password=other, password_again=other))
    accounts.request_reset(email)
    with pytest.raises(Refused):
        accounts.log_in(email, other)
    assert accounts.log_in(email, PASSWORD).email == email


def test_a_locked_owner_gets_in_at_once_with_a_reset_code_even_at_the_longest_delay(
    accounts, states, clock
):
    email = states["locked"]
    Account = accounts.store.Account
    Account.update(failed_logins=500).where(Account.email == email).execute()
    with pytest.raises(Refused):
        accounts.log_in(email, WRONG)  # the 501st failure: the longest delay, 15 min
    accounts.request_reset(email)
    accounts.reset_password(email, mailed_code(accounts.store, email), NEW_PASSWORD, NEW_PASSWORD)
    assert accounts.log_in(email, NEW_PASSWORD).failed_logins == 0


def test_a_pending_owner_activates_after_a_stranger_burnt_the_code_and_locked_the_login(
    accounts, states
):
    email = states["pending"]
    for _ in range(5):
        with pytest.raises(Refused):
            accounts.activate(email, WRONG_CODE)
        with pytest.raises(Refused):
            accounts.log_in(email, WRONG)
    accounts.resend_activation(email)
    assert accounts.activate(email, mailed_code(accounts.store, email)).status == "active"


def test_a_staff_account_locked_at_the_console_still_leaves_kiosk_mode(
    staff, kiosk_store, staff_states
):
    # Separate throttles by origin: the console's delay is not the public kiosk's.
    assert staff.leave_kiosk(kiosk_store, "bloque", STAFF_PASSWORD).name == "bloque"
    with pytest.raises(Refused) as refused:
        staff.authenticate("bloque", STAFF_PASSWORD)
    assert refused.value.problems[""].key == "staff.wrong"  # still waiting at the console


# -- a code at rest ------------------------------------------------------------------------------


def test_neither_a_queued_nor_a_sent_mail_leaves_a_usable_code_in_the_store(services):
    """Whoever reads the store's files (the outbox included) finds no code that activates."""
    store = services.store
    with store.connection_context():
        services.accounts.sign_up(CANDIDATE)
        (queued,) = store.OutboxRow.select().where(store.OutboxRow.kind == "mail")
        assert CODE_MARK in queued.payload["body"]
        code = pilot_mailed_code(services, CANDIDATE.email)  # sent now, read in the Maildir
        store.db.execute_sql("PRAGMA wal_checkpoint(PASSIVE)")
        written = b"".join(
            path.read_bytes()
            for path in services.config.database_path.parent.glob("kiosk.sqlite3*")
        )
        assert CANDIDATE.email.encode() in written  # the account's row is in what was read
        for form in (code, code.replace("-", "")):
            assert form.encode() not in written
        assert services.accounts.activate(CANDIDATE.email, code).status == "active"


# -- the screens ---------------------------------------------------------------------------------


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    """The services as the kiosk builds them, on the frozen clock of the UI tests."""
    config = load_config(environ={}, overrides={"data_dir": tmp_path / "kiosk", "session": SESSION})
    built = build_services(config, Clock(parse_instant(SUNDAY_MORNING), frozen=True))
    built.accounts.hasher = fast_hasher()  # tests only: argon2 with tiny costs
    yield built
    built.close()


@pytest.fixture
def screen_states(services) -> dict[str, str]:
    """The same four states, made through the services."""
    accounts = services.accounts
    with services.store.connection_context():
        make_account(accounts, ADDRESSES["pending"], active=False)
        make_account(accounts, ADDRESSES["active"])
        make_account(accounts, ADDRESSES["locked"])
        for _ in range(5):
            with pytest.raises(Refused):
                accounts.log_in(ADDRESSES["locked"], WRONG)
        services.store.LoginFailure.delete().execute()
    return ADDRESSES


def on_screen(pilot, *typed: str) -> tuple:
    """Everything the screen shows and where the cursor is, what was typed aside."""

    def plain(text: str) -> str:
        for n, value in enumerate(typed):
            text = text.replace(value, f"<saisie {n}>")
        return text

    screen = pilot.app.screen
    texts = [
        (w.id, plain(str(w.render())))
        for w in screen.query(Static)
        if w.display and all(getattr(a, "display", True) for a in w.ancestors)
    ]
    fields = [(f.id, plain(f.value)) for f in screen.query(Input)]
    invalid = sorted(f.id or "" for f in screen.query(Field) if f.invalid)
    focused = pilot.app.focused.id if pilot.app.focused else None
    return type(screen).__name__, texts, fields, invalid, focused


async def opened(pilot, key: str, email: str, field: str = "", secret: str = "") -> None:
    """From the welcome, the screen of ``key``, with the address and the secret filled in
    (put there whole: the typing is not what is looked at) and the cursor on the last."""
    await pilot.press(key)
    await settle(pilot)
    screen = pilot.app.screen
    screen.query_one("#email", Input).value = email
    if field:
        screen.query_one(f"#{field}", Input).value = secret
    screen.query_one(f"#{field or 'email'}", Input).focus()
    await pilot.pause()


async def tried(pilot, key: str, email: str, field: str, secret: str) -> tuple:
    """What the screen of ``key`` shows once the address and the secret are sent (Enter on
    the last field), then back to the welcome."""
    await opened(pilot, key, email, field, secret)
    await pilot.press("enter")
    await settle(pilot)
    shown = on_screen(pilot, email, secret)
    await pilot.press("escape")
    await settle(pilot)
    return shown


async def test_the_login_screen_shows_the_same_for_every_account(services, screen_states):
    app = build_app(services)
    async with app.run_test(size=SIZE) as pilot:
        shown = {
            state: await tried(pilot, "s", email, "password", WRONG)
            for state, email in screen_states.items()
        }
        locked_right = await tried(pilot, "s", screen_states["locked"], "password", PASSWORD)
    first = shown["unknown"]
    assert first[0] == "LoginScreen"
    assert ("form-problem", "Adresse e-mail ou mot de passe incorrect.") in first[1]
    assert all(s == first for s in shown.values()), shown
    assert locked_right == first


async def test_the_activation_screen_shows_the_same_for_every_account(services, screen_states):
    app = build_app(services)
    async with app.run_test(size=SIZE) as pilot:
        shown = {
            state: await tried(pilot, "a", email, "code", WRONG_CODE)
            for state, email in screen_states.items()
        }
        resent = {}
        for state, email in screen_states.items():
            await opened(pilot, "a", email)
            await pilot.press("f5")
            await settle(pilot)
            resent[state] = on_screen(pilot, email)
            await pilot.press("escape")
            await settle(pilot)
    first = shown["unknown"]
    assert first[0] == "ActivationScreen"
    wrong = (
        "Adresse e-mail ou code incorrect, ou code expiré. Vérifiez-les, ou demandez un "
        "nouveau code : seul le dernier code reçu est valable."
    )
    assert ("problem-code", wrong) in first[1], first
    assert all(s == first for s in shown.values()), shown
    notice = (
        "Si un compte attend d'être activé pour <saisie 0>, un nouveau code vient d'y être "
        "envoyé. Consultez votre messagerie : seul le dernier code reçu est valable."
    )
    assert ("notice", notice) in resent["unknown"][1], resent["unknown"]
    assert all(s == resent["unknown"] for s in resent.values()), resent
