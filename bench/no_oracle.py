"""The public keyboard's answers timed per state of the address or staff name (argon2 defaults).

Login, activation, a new activation code, a reset request and F12 are each tried 50
times on every state their target can be in (unknown, pending, active, locked; for
staff: unknown, active, locked at the console, disabled), with the kiosk's own argon2
costs, on a kiosk store in a temporary folder and a frozen clock. The tries take turns
across the states, so that what else the machine does falls on all of them alike.

Between two tries, outside the timing, each target is put back in its state (the
kiosk's cap emptied, an active account's failures forgotten, a pending account's code
given back its five tries): each try meets the state it is named for.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from bench import Figure

ORDER = 45
TRIES = 50
NOW = "2019-11-10T10:00:00"  # inside the window of bacpro-poitiers-2020
SESSION = "bacpro-poitiers-2020"
PASSWORD = "cheval agrafe lumière 42"
WRONG = "pas le bon mot de passe"
WRONG_CODE = "ZZZZ-ZZZZ"
STAFF_PASSWORD = "guichet du hall nord 2019"
GOAL_MS = 10.0

ADDRESSES = {
    "unknown": "inconnu@exemple.fr",
    "pending": "attente@exemple.fr",
    "active": "actif@exemple.fr",
    "locked": "bloque@exemple.fr",
}
STAFF = {"unknown": "personne", "active": "actif", "locked": "bloque", "disabled": "desactive"}


def _timed(call: Callable[[], Any]) -> float:
    """Seconds that ``call`` took; a refusal is an answer like any other."""
    from kiosk.errors import Refused

    t0 = time.perf_counter()
    try:
        call()
    except Refused:
        pass
    return time.perf_counter() - t0


def _run(
    targets: dict[str, str], attempt: Callable[[str], Any], restore: Callable[[], None]
) -> dict[str, list[float]]:
    """``TRIES`` timed tries per state, taking turns, after one untimed try each (the
    decoy hash is made on the first check of an unknown name)."""
    times: dict[str, list[float]] = {state: [] for state in targets}
    for round_ in range(TRIES + 1):
        for state, target in targets.items():
            restore()
            took = _timed(partial(attempt, target))
            if round_:
                times[state].append(took)
    return times


def _figures(operation: str, what: str, times: dict[str, list[float]]) -> list[Figure]:
    medians = {state: statistics.median(values) * 1000 for state, values in times.items()}
    figures = [
        Figure(
            f"oracle.{operation}.{state}",
            median,
            "ms",
            note=f"{what}, {state}: median of {len(times[state])} "
            f"(min {min(times[state]) * 1000:.1f}, max {max(times[state]) * 1000:.1f} ms)",
        )
        for state, median in medians.items()
    ]
    slowest = max(medians, key=medians.__getitem__)
    fastest = min(medians, key=medians.__getitem__)
    figures.append(
        Figure(
            f"oracle.{operation}.spread",
            medians[slowest] - medians[fastest],
            "ms",
            goal=GOAL_MS,
            note=f"{what}: the largest difference between the medians of two states "
            f"({slowest} {medians[slowest]:.1f} ms, {fastest} {medians[fastest]:.1f} ms)",
        )
    )
    return figures


def measure() -> list[Figure]:
    from bench._kiosks import activation_code
    from kiosk.accounts import AccountService, SignUp
    from kiosk.clock import Clock, parse_instant
    from kiosk.errors import Refused
    from kiosk.exam_sessions import load_session
    from kiosk.passwords import Hasher
    from kiosk.staff import StaffService
    from kiosk.store.database import open_store

    clock = Clock(parse_instant(NOW), frozen=True)
    session = load_session(SESSION, clock)
    hasher = Hasher()  # argon2-cffi's defaults, as the kiosk builds it
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="kiosk-bench-oracle-") as folder:
        store = open_store(Path(folder) / "kiosk.sqlite3")
        try:
            accounts = AccountService(store, clock, session, hasher=hasher)
            staff = StaffService(store, clock, hasher)
            now = clock.now()
            for state in ("pending", "active", "locked"):
                email = ADDRESSES[state]
                accounts.sign_up(SignUp(email, "Dupont", "Jean", PASSWORD, PASSWORD))
                if state != "pending":
                    accounts.activate(email, activation_code(store, hasher, email, now))
            for _ in range(5):
                try:
                    accounts.log_in(ADDRESSES["locked"], WRONG)
                except Refused:
                    pass
            for state in ("active", "locked", "disabled"):
                staff.add(STAFF[state], "reception", STAFF_PASSWORD)
            for _ in range(5):
                try:
                    staff.authenticate(STAFF["locked"], WRONG)
                except Refused:
                    pass
            Staff = store.StaffAccount
            Staff.update(disabled_at=now).where(Staff.name == STAFF["disabled"]).execute()

            Account, Code, Failures = store.Account, store.OneTimeCode, store.LoginFailure
            unlocked = [ADDRESSES["pending"], ADDRESSES["active"]]
            pending = Account.get(Account.email == ADDRESSES["pending"])

            def restore() -> None:
                Failures.delete().execute()
                Account.update(failed_logins=0, locked_until=None).where(
                    Account.email.in_(unlocked)
                ).execute()
                Code.update(tries_left=5, spent_at=None).where(
                    Code.account == pending.id, Code.purpose == "activation"
                ).execute()

            operations: list[tuple[str, str, dict[str, str], Callable[[str], Any]]] = [
                ("login", "login, wrong password", ADDRESSES,
                 lambda email: accounts.log_in(email, WRONG)),
                ("activation", "activation, wrong code", ADDRESSES,
                 lambda email: accounts.activate(email, WRONG_CODE)),
                ("resend", "a new activation code", ADDRESSES, accounts.resend_activation),
                ("reset", "a reset code asked for", ADDRESSES, accounts.request_reset),
                ("staff_exit", "F12, wrong password", STAFF,
                 lambda name: staff.leave_kiosk(store, name, WRONG)),
            ]  # fmt: skip
            for operation, what, targets, attempt in operations:
                figures += _figures(operation, what, _run(targets, attempt, restore))
        finally:
            store.close()
    return figures
