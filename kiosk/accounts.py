"""Candidate accounts: sign-up, activation within 48 h, login, forgotten password.

Every rule of the note and of the account policy is decided here; the screens only
show the outcome. Argon2 makes most of these calls take a tenth of a second: the
screens call them from worker threads.
"""

from __future__ import annotations

import secrets
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from peewee import IntegrityError

from kiosk import formatting
from kiosk.clock import Clock
from kiosk.delivery.mail_queue import enqueue, enqueue_mail
from kiosk.errors import Problem, Refused
from kiosk.exam_sessions import ExamSession, WindowState
from kiosk.i18n import french
from kiosk.passwords import Hasher, check_password
from kiosk.store.models import Account, OneTimeCode, StaffAccount
from kiosk.text import has_control

if TYPE_CHECKING:
    from kiosk.store.database import KioskStore

ACTIVATION_DEADLINE = timedelta(hours=48)
RESET_VALIDITY = timedelta(minutes=30)
CODE_TRIES = 5
CODE_LENGTH = 8
# No 0/O, 1/I/L or U/V: a code read off a phone screen is typed right the first time.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTWXYZ23456789"
RESEND_INTERVAL = timedelta(seconds=60)
RESEND_PER_DAY = 5
FREE_FAILURES = 4
FIRST_DELAY = timedelta(seconds=30)
LONGEST_DELAY = timedelta(minutes=15)
KIOSK_FAILURES = 30
KIOSK_WINDOW = timedelta(minutes=15)
NAME_MAX = 100


def email_key(normalised: str) -> str:
    """The address as compared for uniqueness: one key for case, Unicode and IDN variants."""
    local, _, domain = normalised.rpartition("@")
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        pass
    return f"{unicodedata.normalize('NFC', local).lower()}@{domain.lower()}"


def normalise_email(text: str, field_name: str = "email") -> str:
    """The address as email-validator normalises it; refused with a message when invalid."""
    # Imported on first use: its tables cost ~14 ms, which start-up need not pay.
    from email_validator import EmailNotValidError, validate_email

    text = text.strip()
    if not text:
        raise Refused.one(field_name, "email.required")
    try:
        # No deliverability check: the kiosk may be offline, and DNS says little anyway.
        return validate_email(text, check_deliverability=False).normalized
    except EmailNotValidError:
        raise Refused.one(field_name, "email.invalid") from None


def login_delay(failures: int) -> timedelta:
    """The wait after ``failures`` consecutive failures: none up to 4, then 30 s doubling,
    at most 15 min."""
    if failures <= FREE_FAILURES:
        return timedelta(0)
    # Cap the exponent before multiplying: from 47 failures on, 30 s * 2**n overflows timedelta.
    doublings = min(failures - FREE_FAILURES - 1, 16)
    return min(FIRST_DELAY * 2**doublings, LONGEST_DELAY)


def count_failure(record: Account | StaffAccount, now: datetime) -> None:
    """One more failed login on ``record``; from the fifth, a growing wait before the next try."""
    failures = record.failed_logins + 1
    delay = login_delay(failures)
    model = type(record)
    model.update(
        failed_logins=failures, locked_until=now + delay if delay else None, updated_at=now
    ).where(model.id == record.id).execute()


def clear_failures(
    record: Account | StaffAccount, password: str, hasher: Hasher, now: datetime
) -> None:
    """A login succeeded: the count starts again, and a hash made with old parameters is redone."""
    record.failed_logins = 0
    record.locked_until = None
    if hasher.needs_rehash(record.password_hash):
        record.password_hash = hasher.hash(password)
        record.touch(now)
    record.save()


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def typed_code(text: str) -> str:
    """A code as typed, in the form it was sent: capitals, no spaces or dashes."""
    return "".join(c for c in text.upper() if c.isalnum())


def show_code(code: str) -> str:
    return f"{code[:4]}-{code[4:]}"


def _check_name(value: str, field_name: str, problems: dict[str, Problem]) -> str:
    # Controls are looked for before spaces are folded: some count as white space.
    unsafe = has_control(value.replace("\t", " "))
    value = unicodedata.normalize("NFC", " ".join(value.split()))
    if not value:
        problems[field_name] = Problem("name.required")
    elif len(value) > NAME_MAX:
        problems[field_name] = Problem("name.too_long", {"maximum": NAME_MAX})
    elif unsafe:
        problems[field_name] = Problem("name.control")
    return value


@dataclass(frozen=True)
class SignUp:
    """What the sign-up form sends."""

    email: str
    family_name: str
    given_names: str
    password: str
    password_again: str


class AccountService:
    """The account rules, over the local store, with the one clock."""

    def __init__(
        self,
        store: KioskStore,
        clock: Clock,
        session: ExamSession,
        hasher: Hasher | None = None,
        elsewhere: Callable[[str, str], Account | None] | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.session = session
        self.hasher = hasher or Hasher()
        # Asks the rectorat for an account made at another kiosk (checks the password there).
        self.elsewhere = elsewhere

    # -- sign-up and activation -------------------------------------------------------

    def sign_up(self, form: SignUp) -> Account:
        """Create a pending account and e-mail its activation code."""
        if self.session.window_state(self.clock.now()) is WindowState.CLOSED:
            raise Refused.one("", "signup.closed")
        problems: dict[str, Problem] = {}
        family = _check_name(form.family_name, "family_name", problems)
        given = _check_name(form.given_names, "given_names", problems)
        email = ""
        try:
            email = normalise_email(form.email)
        except Refused as refused:
            problems.update(refused.problems)
        problem = check_password(form.password, names=(family, given), email=email)
        if problem:
            problems["password"] = problem
        elif form.password != form.password_again:
            problems["password_again"] = Problem("password.mismatch")
        if problems:
            raise Refused(problems)
        password_hash = self.hasher.hash(form.password)
        code = new_code()
        code_hash = self.hasher.hash(code)
        now = self.clock.now()
        key = email_key(email)
        with self.store.atomic():
            accounts = self.store.Account
            self._delete_if_expired(accounts.get_or_none(accounts.email_key == key), now)
            try:
                account = accounts.create(
                    email=email,
                    email_key=key,
                    family_name=family,
                    given_names=given,
                    password_hash=password_hash,
                    created_at=now,
                    updated_at=now,
                )
            except IntegrityError:
                raise Refused.one("email", "email.taken") from None
            self._issue_code(account, "activation", code, code_hash, now)
        return account

    def activate(self, email: str, code: str) -> Account:
        """Activate a pending account with the code it was sent."""
        account = self._pending_account(email, "email")
        now = self.clock.now()
        right_code = self._check_code(account, "activation", code, now)
        with self.store.atomic():
            self._spend(right_code, now)
            account.status = "active"
            account.activated_at = now
            account.touch(now)
            account.save()
        return account

    def resend_activation(self, email: str) -> None:
        account = self._pending_account(email, "email")
        now = self.clock.now()
        self._check_resend(account, "activation", now)
        code = new_code()
        code_hash = self.hasher.hash(code)
        with self.store.atomic():
            self._issue_code(account, "activation", code, code_hash, now)

    def activation_deadline(self, account: Account) -> datetime:
        return account.created_at + ACTIVATION_DEADLINE

    def purge_unactivated(self) -> int:
        """Delete the accounts not activated within 48 h; returns how many."""
        now = self.clock.now()
        with self.store.atomic():
            accounts, failures = self.store.Account, self.store.LoginFailure
            expired = accounts.select().where(
                accounts.status == "pending", accounts.created_at <= now - ACTIVATION_DEADLINE
            )
            deleted = sum(self._delete_if_expired(account, now) for account in expired)
            failures.delete().where(failures.created_at <= now - KIOSK_WINDOW).execute()
        return deleted

    # -- login --------------------------------------------------------------------------

    def log_in(self, email: str, password: str) -> Account:
        """The account for this address and password, or a refusal that tells no more than
        needed."""
        now = self.clock.now()
        self._check_kiosk_cap(now)
        try:
            key = email_key(normalise_email(email))
        except Refused:
            key = None
        accounts = self.store.Account
        account = accounts.get_or_none(accounts.email_key == key) if key else None
        if account is not None and self._delete_if_expired(account, now):
            account = None
        if account is not None and account.locked_until and account.locked_until > now:
            raise Refused.one(
                "", "login.locked", wait=formatting.duration(account.locked_until - now)
            )
        if account is None and key and self.elsewhere is not None:
            account = self.elsewhere(key, password)
            if account is not None:
                return self._logged_in(account, password, now)
        if account is None:
            self.hasher.waste_time(password)
            self._record_failure(None, now)
            raise Refused.one("", "login.wrong")
        if not self.hasher.verify(account.password_hash, password):
            self._record_failure(account, now)
            raise Refused.one("", "login.wrong")
        return self._logged_in(account, password, now)

    def _logged_in(self, account: Account, password: str, now: datetime) -> Account:
        if account.status != "active":
            raise Refused.one("", "login.pending")
        with self.store.atomic():
            clear_failures(account, password, self.hasher, now)
        return account

    def _record_failure(self, account: Account | None, now: datetime) -> None:
        with self.store.atomic():
            self.store.LoginFailure.create(created_at=now, updated_at=now)
            if account is not None:
                count_failure(account, now)

    def _check_kiosk_cap(self, now: datetime) -> None:
        failures = self.store.LoginFailure
        recent = (
            failures.select(failures.created_at)
            .where(failures.created_at > now - KIOSK_WINDOW)
            .order_by(failures.created_at.desc())
            .limit(KIOSK_FAILURES)
        )
        times = [row.created_at for row in recent]
        if len(times) >= KIOSK_FAILURES:
            wait = times[-1] + KIOSK_WINDOW - now
            raise Refused.one("", "login.kiosk_locked", wait=formatting.duration(wait))

    # -- forgotten password -------------------------------------------------------------

    def request_reset(self, email: str) -> None:
        """Send a reset code when the address has an active account; say the same either way."""
        key = email_key(normalise_email(email))
        accounts = self.store.Account
        account = accounts.get_or_none(accounts.email_key == key, accounts.status == "active")
        if account is None:
            self.hasher.waste_time(email)
            return
        now = self.clock.now()
        self._check_resend(account, "reset", now)
        code = new_code()
        code_hash = self.hasher.hash(code)
        with self.store.atomic():
            self._issue_code(account, "reset", code, code_hash, now)

    def reset_password(self, email: str, code: str, password: str, password_again: str) -> Account:
        try:
            key = email_key(normalise_email(email))
        except Refused:
            key = None
        accounts = self.store.Account
        account = (
            accounts.get_or_none(accounts.email_key == key, accounts.status == "active")
            if key
            else None
        )
        if account is None:
            self.hasher.waste_time(code)
            raise Refused.one("code", "code.wrong_or_expired")
        problem = check_password(
            password, names=(account.family_name, account.given_names), email=account.email
        )
        if problem:
            raise Refused({"password": problem})
        if password != password_again:
            raise Refused.one("password_again", "password.mismatch")
        now = self.clock.now()
        right_code = self._check_code(account, "reset", code, now)
        password_hash = self.hasher.hash(password)
        with self.store.atomic():
            self._spend(right_code, now)
            account.password_hash = password_hash
            account.failed_logins = 0
            account.locked_until = None
            account.touch(now)
            account.save()
        return account

    # -- codes --------------------------------------------------------------------------

    def _issue_code(
        self, account: Account, purpose: str, code: str, code_hash: str, now: datetime
    ) -> None:
        """Spend the earlier codes, store the new one hashed, and queue its e-mail."""
        codes = self.store.OneTimeCode
        codes.update(spent_at=now, updated_at=now).where(
            codes.account == account, codes.purpose == purpose, codes.spent_at.is_null()
        ).execute()
        if purpose == "activation":
            expires = self.activation_deadline(account)
        else:
            expires = now + RESET_VALIDITY
        codes.create(
            account=account,
            purpose=purpose,
            code_hash=code_hash,
            expires_at=expires,
            tries_left=CODE_TRIES,
            created_at=now,
            updated_at=now,
        )
        params = {
            "name": account.display_name,
            "code": show_code(code),
            "until": formatting.instant(expires, self.session.zone),
            "exam": self.session.title,
            "contact": self.session.contact.email,
        }
        enqueue_mail(
            self.store,
            account.email,
            french(f"mail.{purpose}.subject", **params),
            french(f"mail.{purpose}.body", **params),
            now,
        )

    def _check_resend(self, account: Account, purpose: str, now: datetime) -> None:
        codes = self.store.OneTimeCode
        sent = list(
            codes.select(codes.created_at)
            .where(
                codes.account == account,
                codes.purpose == purpose,
                codes.created_at > now - timedelta(days=1),
            )
            .order_by(codes.created_at.desc())
        )
        if sent and now - sent[0].created_at < RESEND_INTERVAL:
            wait = sent[0].created_at + RESEND_INTERVAL - now
            raise Refused.one("", "code.resend_wait", wait=formatting.duration(wait))
        if len(sent) >= RESEND_PER_DAY:
            raise Refused.one("", "code.resend_limit", maximum=RESEND_PER_DAY)

    def _check_code(self, account: Account, purpose: str, typed: str, now: datetime) -> OneTimeCode:
        """The account's current code if ``typed`` is it; a wrong try costs one of five.

        The right code is returned unspent, so that the caller spends it in the same
        transaction as the change it allows.
        """
        codes = self.store.OneTimeCode
        code = (
            codes.select()
            .where(codes.account == account, codes.purpose == purpose, codes.spent_at.is_null())
            .order_by(codes.created_at.desc())
            .first()
        )
        if code is None or code.expires_at <= now:
            raise Refused.one("code", "code.expired")
        if self.hasher.verify(code.code_hash, typed_code(typed)):
            return code
        code.tries_left -= 1
        if code.tries_left <= 0:
            code.spent_at = now
        code.touch(now)
        code.save()
        if code.tries_left <= 0:
            raise Refused.one("code", "code.spent", tries=CODE_TRIES)
        raise Refused.one("code", "code.wrong", tries_left=code.tries_left)

    @staticmethod
    def _spend(code: OneTimeCode, now: datetime) -> None:
        code.spent_at = now
        code.touch(now)
        code.save()

    # -- helpers ------------------------------------------------------------------------

    def _pending_account(self, email: str, field_name: str) -> Account:
        key = email_key(normalise_email(email))
        account = self.store.Account.get_or_none(self.store.Account.email_key == key)
        now = self.clock.now()
        if account is None or self._delete_if_expired(account, now):
            raise Refused.one(field_name, "activation.unknown")
        if account.status == "active":
            raise Refused.one(field_name, "activation.already")
        return account

    def _delete_if_expired(self, account: Account | None, now: datetime) -> bool:
        """Delete a pending account whose 48 h have passed; says whether it did."""
        if account is None or account.status != "pending":
            return False
        if now < self.activation_deadline(account):
            return False
        with self.store.atomic():
            # The rectorat deletes it too, whether or not it has heard of it yet.
            enqueue(
                self.store,
                "sync",
                {
                    "entity": "account_deletion",
                    "id": str(account.id),
                    "data": {"reason": "not_activated"},
                },
                now,
            )
            accounts = self.store.Account
            accounts.delete().where(accounts.id == account.id).execute()
        return True
