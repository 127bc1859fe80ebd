"""Staff accounts: who may leave kiosk mode and use the staff console, and with which role."""

from __future__ import annotations

import unicodedata
from datetime import timedelta
from typing import TYPE_CHECKING

from peewee import Database, IntegrityError

from kiosk.accounts import FREE_FAILURES, check_kiosk_cap, clear_failures, count_failure
from kiosk.clock import Clock
from kiosk.errors import Refused
from kiosk.passwords import Hasher, check_password
from kiosk.store.models import StaffAccount

if TYPE_CHECKING:
    from kiosk.store.database import KioskStore

ROLES = ("reception", "exam_office")
# Leaving kiosk mode (F12) has its own limit per name, apart from the console's: the
# public keyboard can neither lock a staff account out of the console nor be locked by it.
KIOSK_EXIT_FAILURES = FREE_FAILURES + 1
KIOSK_EXIT_WINDOW = timedelta(minutes=15)
KIOSK_EXIT_REFUSED = "kiosk_exit_refused"


def staff_name(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip().lower()


class StaffService:
    """Staff accounts, with the same password rules and login delays as candidates'.

    On a kiosk's store (``StaffService(store, clock)``) they are its ``StaffAccount``
    rows; on the rectorat's, ``StaffService(store.db, clock, model=store.Staff)``: its
    own table with the same columns, bound to that database.
    """

    def __init__(
        self,
        store: KioskStore | Database,
        clock: Clock,
        hasher: Hasher | None = None,
        model: type[StaffAccount] | None = None,
    ) -> None:
        if model is None:
            if isinstance(store, Database):
                raise TypeError("staff on a database other than a kiosk store need their model")
            model = store.StaffAccount
        self.model = model
        self.db = model._meta.database
        self.clock = clock
        self.hasher = hasher or Hasher()

    def add(self, name: str, role: str, password: str) -> StaffAccount:
        name = staff_name(name)
        if not name or not name.replace("-", "").replace(".", "").isalnum():
            raise Refused.one("name", "staff.name")
        if role not in ROLES:
            raise Refused.one("role", "staff.role")
        problem = check_password(password, names=(name,))
        if problem:
            raise Refused({"password": problem})
        now = self.clock.now()
        try:
            return self.model.create(
                name=name,
                role=role,
                password_hash=self.hasher.hash(password),
                created_at=now,
                updated_at=now,
            )
        except IntegrityError:
            raise Refused.one("name", "staff.taken") from None

    def authenticate(self, name: str, password: str) -> StaffAccount:
        """The staff member for this name and password, at the console; refused alike,
        after the same argon2 work, for an unknown, disabled or locked name."""
        now = self.clock.now()
        staff = self.model.get_or_none(self.model.name == staff_name(name))
        if staff is None or staff.disabled_at is not None:
            self.hasher.waste_time(password)
            raise Refused.one("", "staff.wrong")
        right = self.hasher.verify(staff.password_hash, password)
        if staff.locked_until and staff.locked_until > now:
            raise Refused.one("", "staff.wrong")
        if not right:
            count_failure(staff, now)
            raise Refused.one("", "staff.wrong")
        with self.db.atomic():
            clear_failures(staff, password, self.hasher, now)
        return staff

    def leave_kiosk(self, store: KioskStore, name: str, password: str) -> StaffAccount:
        """The staff member leaving kiosk mode (F12) at the public keyboard.

        Its failures never touch the staff account's delay at the console: they are
        written to the staff audit of ``store`` (the name as typed) and count in the
        kiosk's cap; after five failures in 15 minutes on one name, even the right
        password is refused there, alike for every name, known or not.
        """
        now = self.clock.now()
        typed = staff_name(name)[:64]
        check_kiosk_cap(store, now)
        staff = self.model.get_or_none(self.model.name == typed)
        if staff is None or staff.disabled_at is not None:
            self.hasher.waste_time(password)
            right = False
        else:
            right = self.hasher.verify(staff.password_hash, password)
        audit = store.StaffAudit
        earlier = audit.select().where(
            audit.action == KIOSK_EXIT_REFUSED,
            audit.subject == typed,
            audit.created_at > now - KIOSK_EXIT_WINDOW,
        )
        if right and staff is not None and earlier.count() < KIOSK_EXIT_FAILURES:
            return staff
        with store.atomic():
            store.LoginFailure.create(created_at=now, updated_at=now)
            role = staff.role if staff is not None else ""
            audit.create(
                staff=typed, role=role, action=KIOSK_EXIT_REFUSED, subject=typed, detail="F12",
                created_at=now, updated_at=now,
            )  # fmt: skip
        raise Refused.one("", "staff.wrong")

    def names(self) -> list[tuple[str, str]]:
        return [(s.name, s.role) for s in self.model.select().order_by(self.model.name)]
