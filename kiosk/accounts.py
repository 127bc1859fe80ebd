"""Candidate accounts: sign-up, activation within 48 h, login, forgotten password.

Every rule of the note and of the account policy is decided here; the screens only
show the outcome. Argon2 makes most of these calls take a tenth of a second: the
screens call them from worker threads.

No call tells whether an address has an account, nor in which state: sign-up,
activation, resending a code, login and the forgotten password answer in the same
words, after the same argon2 work (one hash or one check, a decoy's when there is no
account), whether the address is unknown, pending, active or locked. What the person
must do next, when it depends on the account, is said by e-mail to its owner. Every
failed try and every code asked for again counts in the kiosk's cap; each address has its
own limits too (a code's five tries, the growing delay after failed logins), which a
stranger cannot turn against the owner: a new code may always be asked for once the
last one is burnt, and it comes with five fresh tries.

A code is never written to the store in clear, not even in its queued mail: the mail
holds a mark where the code goes, and the code is made, and its hash stored, when the
mail is sent (:func:`code_for_mail`).
"""

from __future__ import annotations

import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from peewee import IntegrityError

from kiosk import formatting
from kiosk.clock import Clock
from kiosk.codes import (
    CODE_MARK,
    LINK_MARK,
    code_problem,
    typed_code,
)
from kiosk.delivery.mail_queue import enqueue, enqueue_mail
from kiosk.errors import Problem, Refused, Unreachable
from kiosk.exam_sessions import ExamSession, WindowState
from kiosk.i18n import DEFAULT_LANGUAGE, LANGUAGES, Messages
from kiosk.passwords import Hasher, check_password
from kiosk.store.models import Account, OneTimeCode, StaffAccount
from kiosk.text import has_control

if TYPE_CHECKING:
    from kiosk.store.database import KioskStore

ACTIVATION_DEADLINE = timedelta(hours=48)
RESET_VALIDITY = timedelta(minutes=30)
CODE_TRIES = 5
# Within this time of the last code sent, asking again sends no other (unless that code
# is burnt): the answer is the same, and the mail already sent holds a valid code.
RESEND_INTERVAL = timedelta(seconds=60)
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


def check_kiosk_cap(store: KioskStore, now: datetime) -> None:
    """Refused, alike for every address or name, after 30 failed tries (or codes asked
    for) at this kiosk in 15 minutes."""
    failures = store.LoginFailure
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


class Elsewhere(Protocol):
    """The rectorat, for the accounts made at other kiosks."""

    @property
    def reachable(self) -> bool:
        """False since a call to the rectorat failed, until one succeeds."""
        ...

    def borrow(self, email_key: str, password: str) -> Account | None:
        """The account, fetched for this login, or None; raises :class:`Unreachable`."""
        ...

    def address_taken(self, account: Account) -> bool:
        """Whether another account has this new one's address; when not, the rectorat
        keeps this one. Raises :class:`Unreachable`."""
        ...

    def activate(self, email_key: str, code: str) -> Account | None:
        """The account, activated by the rectorat with this code, or None for a wrong
        code. Raises :class:`Unreachable`."""
        ...

    def request_reset(self, email_key: str) -> None:
        """Have the rectorat mail a reset code to the owner. Raises :class:`Unreachable`."""
        ...

    def reset(self, email_key: str, code: str, password: str) -> Account | None:
        """The account, its new password set by the rectorat with this code, or None for
        a wrong code; :class:`Refused` for a password the policy refuses. Raises
        :class:`Unreachable`."""
        ...


@dataclass(frozen=True)
class SignUp:
    """What the sign-up form sends."""

    email: str
    family_name: str
    given_names: str
    password: str
    password_again: str
    # The language of the mails to come: the kiosk's at sign-up, unless the candidate chose.
    language: str = DEFAULT_LANGUAGE


class AccountService:
    """The account rules, over the local store, with the one clock."""

    def __init__(
        self,
        store: KioskStore,
        clock: Clock,
        session: ExamSession,
        hasher: Hasher | None = None,
        elsewhere: Elsewhere | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.session = session
        self.hasher = hasher or Hasher()
        # The rectorat, asked for an account made at another kiosk (it checks the password).
        self.elsewhere = elsewhere

    # -- sign-up and activation -------------------------------------------------------

    def sign_up(self, form: SignUp) -> Account:
        """Create a pending account and e-mail its activation code.

        An address that already has an account gets the same answer, after the same
        work: its owner is told by e-mail what to do (log in, reset the password, or
        use the latest code). The account returned is then the one that would have
        been made, unsaved: the screen shows the same words either way.
        """
        if self.session.window_state(self.clock.now()) is WindowState.CLOSED:
            raise Refused.one("", "signup.closed")
        self._check_kiosk_cap(self.clock.now())
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
        code_hash = self._unusable_hash()
        now = self.clock.now()
        key = email_key(email)
        accounts = self.store.Account
        language = form.language if form.language in LANGUAGES else DEFAULT_LANGUAGE
        fields = dict(
            email=email, email_key=key, family_name=family, given_names=given, language=language
        )
        with self.store.atomic():
            existing = accounts.get_or_none(accounts.email_key == key)
            if existing is not None and not self._delete_if_expired(existing, now):
                # Not counted in the kiosk's cap, as a new account is not: the cap's next
                # answer would tell the two apart.
                self._mail_state(existing, now)
                return accounts(**fields, password_hash="", created_at=now, updated_at=now)
            try:
                account = accounts.create(
                    **fields, password_hash=password_hash, created_at=now, updated_at=now
                )
            except IntegrityError:
                raise Refused.one("email", "email.taken") from None
            if self.elsewhere is None:
                self._issue_code(account, "activation", code_hash, now)
                return account
        # Made here first, then the rectorat asked: killed in between, the kiosk keeps an
        # account that its push settles (and whose code is asked for again); the other
        # way round, the rectorat would keep one the kiosk never made.
        if self._taken_elsewhere(account):
            with self.store.atomic():
                self._give_way(account)
                # Answered as an address with an account here is: its owner learns it by mail.
                self._mail(account, "account_elsewhere", now)
            return accounts(**fields, password_hash="", created_at=now, updated_at=now)
        try:
            with self.store.atomic():
                self._issue_code(account, "activation", code_hash, now)
        except Exception:
            with self.store.atomic():  # no account without its code's mail
                self._give_way(account)
            raise
        return account

    def _taken_elsewhere(self, account: Account) -> bool:
        """Whether another account, made at another kiosk, has this new account's
        address; when the rectorat cannot answer in time, the account stays made here
        alone and the push settles the rest."""
        if self.elsewhere is None:
            return False
        try:
            return self.elsewhere.address_taken(account)
        except Unreachable:
            return False

    def _give_way(self, account: Account) -> None:
        """Undo a sign-up whose address the rectorat found taken: the account, and its
        row waiting for the rectorat, unless sent already (then the push settles it)."""
        self.store.db.execute_sql(
            "DELETE FROM outbox WHERE kind = 'sync' AND delivered_at IS NULL"
            " AND json_extract(payload, '$.entity') = 'account'"
            " AND json_extract(payload, '$.id') = ?",
            (str(account.id),),
        )
        accounts = self.store.Account
        accounts.delete().where(accounts.id == account.id).execute()

    def activate(self, email: str, code: str) -> Account:
        """Activate a pending account with the code it was sent; refused alike for a
        wrong, spent or expired code, an unknown address and an active account."""
        now = self.clock.now()
        self._check_kiosk_cap(now)
        if incomplete := code_problem(code):
            raise Refused.one("code", incomplete)
        key = email_key(normalise_email(email))
        # As for a login: while the rectorat is away, every refusal says it may be why,
        # for every address alike.
        wrong = "code.wrong_or_away" if self._rectorat_away() else "code.wrong_or_expired"
        account = self._own_account(key, now)
        if account is None and self.elsewhere is not None:
            return self._activate_elsewhere(key, code, now, wrong)
        if account is not None and account.status != "pending":
            account = None
        right_code = self._check_code(account, "activation", code, now, wrong)
        assert account is not None  # a right code has its account
        with self.store.atomic():
            self._spend(right_code, now)
            account.status = "active"
            account.activated_at = now
            account.touch(now)
            account.save()
        return account

    def _activate_elsewhere(self, key: str, code: str, now: datetime, wrong: str) -> Account:
        """An address with no account here: its account may have been made at another
        kiosk, and the rectorat checks the code (the same argon2 work as here)."""
        assert self.elsewhere is not None
        try:
            account = self.elsewhere.activate(key, typed_code(code))
        except Unreachable:
            self.hasher.waste_time(code)
            raise Refused.one("code", "code.wrong_or_away") from None
        if account is None:
            self._record_attempt(now)
            raise Refused.one("code", wrong)
        return account

    def resend_activation(self, email: str) -> None:
        """A new activation code by e-mail when the address has a pending account; the
        owner of an active account is told so by e-mail; the same answer either way."""
        now = self.clock.now()
        self._check_kiosk_cap(now)
        account = self._account(email, now)
        # Made whether or not it is used: the same argon2 work on every path.
        code_hash = self._unusable_hash()
        with self.store.atomic():
            self._record_attempt(now)
            if account is not None and account.status == "pending":
                self._send_code(account, "activation", code_hash, now)
            elif account is not None:
                self._mail_state(account, now)

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
            key: str | None = email_key(normalise_email(email))
        except Refused:
            key = None
        # While the rectorat is away, every refusal says it may be why: an account made at
        # another kiosk cannot be checked. Said for every address alike, from the kiosk's
        # state, so that it tells nobody which addresses have an account here.
        wrong = "login.wrong_or_away" if self._rectorat_away() else "login.wrong"
        account = self._account_by_key(key, now)
        # An account signed up here offline whose address was taken elsewhere: its
        # candidate logs in with the account that stays (borrowed from the rectorat).
        taken, account = (
            (account, None) if account and account.taken_elsewhere_at else (None, account)
        )
        if account is None and key and self.elsewhere is not None:
            try:
                account = self.elsewhere.borrow(key, password)
            except Unreachable:
                # Not the candidate's failure: nothing is counted against anyone.
                self._check_taken(taken, password)
                self.hasher.waste_time(password)
                raise Refused.one("", "login.wrong_or_away") from None
            if account is not None:
                return self._logged_in(account, password, now)
        self._check_taken(taken, password)
        if account is None:
            self.hasher.waste_time(password)
            self._record_failure(None, now)
            raise Refused.one("", wrong)
        # A locked account pays the same check and answers as a wrong password: the lock
        # is told to its owner by e-mail, not to whoever types the address.
        right = self.hasher.verify(account.password_hash, password)
        if account.locked_until and account.locked_until > now:
            self._record_failure(None, now)
            raise Refused.one("", wrong)
        if not right:
            self._record_failure(account, now)
            raise Refused.one("", wrong)
        return self._logged_in(account, password, now)

    def _check_taken(self, taken: Account | None, password: str) -> None:
        """Its own password on an account that gave way: say what to do instead."""
        if taken is not None and self.hasher.verify(taken.password_hash, password):
            raise Refused.one("", "login.taken_elsewhere")

    def _rectorat_away(self) -> bool:
        return self.elsewhere is not None and not self.elsewhere.reachable

    def _logged_in(self, account: Account, password: str, now: datetime) -> Account:
        if account.status != "active":
            raise Refused.one("", "login.pending")
        with self.store.atomic():
            clear_failures(account, password, self.hasher, now)
        return account

    def _record_failure(self, account: Account | None, now: datetime) -> None:
        with self.store.atomic():
            self._record_attempt(now)
            if account is not None:
                count_failure(account, now)
                if account.failed_logins + 1 == FREE_FAILURES + 1:
                    # The lock begins: its owner learns it, and what to do, by e-mail.
                    wait = formatting.duration(login_delay(FREE_FAILURES + 1))
                    self._mail(account, "locked", now, wait=wait)

    def _record_attempt(self, now: datetime) -> None:
        """One more failed try, or code asked for, at this kiosk: for the kiosk-wide cap."""
        self.store.LoginFailure.create(created_at=now, updated_at=now)

    def _check_kiosk_cap(self, now: datetime) -> None:
        check_kiosk_cap(self.store, now)

    # -- forgotten password -------------------------------------------------------------

    def request_reset(self, email: str) -> bool:
        """Send a reset code when the address has an active account (the owner of a
        pending one is told by e-mail to activate it); say the same either way.

        An address with no account here may have one made at another kiosk: the
        rectorat mails its code then. False when the rectorat could not be asked (now,
        or at the last try for an address of this kiosk): the screen says that an
        account made elsewhere gets no code for now, whatever the address.
        """
        now = self.clock.now()
        self._check_kiosk_cap(now)
        account = self._account(email, now)
        # Made whether or not it is used: the same argon2 work on every path.
        code_hash = self._unusable_hash()
        asked = not self._rectorat_away()
        if account is None and self.elsewhere is not None:
            try:
                self.elsewhere.request_reset(email_key(normalise_email(email)))
                asked = True
            except Unreachable:
                asked = False
        with self.store.atomic():
            self._record_attempt(now)
            if account is not None and account.status == "active":
                self._send_code(account, "reset", code_hash, now)
            elif account is not None:
                self._mail_state(account, now)
        return asked

    def reset_password(self, email: str, code: str, password: str, password_again: str) -> Account:
        """A new password for an active account, with the code it was sent.

        What depends on the account (its names and address in the password) is only
        looked at once the code is found right: until then, every address is answered
        alike.
        """
        now = self.clock.now()
        self._check_kiosk_cap(now)
        if incomplete := code_problem(code):
            raise Refused.one("code", incomplete)
        problem = check_password(password)
        if problem:
            raise Refused({"password": problem})
        if password != password_again:
            raise Refused.one("password_again", "password.mismatch")
        try:
            key: str | None = email_key(normalise_email(email))
        except Refused:
            key = None
        wrong = "code.reset_wrong_or_away" if self._rectorat_away() else "code.wrong_or_expired"
        account = self._own_account(key, now)
        if account is None and key and self.elsewhere is not None:
            return self._reset_elsewhere(key, code, password, now, wrong)
        if account is not None and account.status != "active":
            account = None
        right_code = self._check_code(account, "reset", code, now, wrong)
        assert account is not None  # a right code has its account
        problem = check_password(
            password, names=(account.family_name, account.given_names), email=account.email
        )
        if problem:
            raise Refused({"password": problem})
        password_hash = self.hasher.hash(password)
        with self.store.atomic():
            self._spend(right_code, now)
            account.password_hash = password_hash
            account.failed_logins = 0
            account.locked_until = None
            account.touch(now)
            account.save()
        return account

    def _reset_elsewhere(
        self, key: str, code: str, password: str, now: datetime, wrong: str
    ) -> Account:
        """An address with no account here: its account may have been made at another
        kiosk, and the rectorat checks the code, then the password against the names."""
        assert self.elsewhere is not None
        try:
            account = self.elsewhere.reset(key, typed_code(code), password)
        except Unreachable:
            self.hasher.waste_time(code)
            raise Refused.one("code", "code.reset_wrong_or_away") from None
        if account is None:
            self._record_attempt(now)
            raise Refused.one("code", wrong)
        return account

    # -- codes --------------------------------------------------------------------------

    def _unusable_hash(self) -> str:
        """The hash a code has until its mail is sent: of a secret nobody ever sees."""
        return self.hasher.hash(secrets.token_urlsafe(24))

    def _send_code(self, account: Account, purpose: str, code_hash: str, now: datetime) -> None:
        """A new code for ``account``, unless one was sent less than a minute ago and can
        still be used: that mail holds a valid code. A burnt code never stops the next one.
        """
        codes = self.store.OneTimeCode
        latest = (
            codes.select()
            .where(codes.account == account, codes.purpose == purpose)
            .order_by(codes.created_at.desc())
            .first()
        )
        if latest is not None and latest.spent_at is None and latest.expires_at > now:
            if now - latest.created_at < RESEND_INTERVAL:
                return
        self._issue_code(account, purpose, code_hash, now)

    def _issue_code(self, account: Account, purpose: str, code_hash: str, now: datetime) -> None:
        """Spend the earlier codes, store the new one, and queue its e-mail.

        The code itself is made when the mail is sent (:func:`code_for_mail`): until
        then the stored hash is of a secret nobody knows, and the mail has a mark in
        its place.
        """
        codes = self.store.OneTimeCode
        codes.update(spent_at=now, updated_at=now).where(
            codes.account == account, codes.purpose == purpose, codes.spent_at.is_null()
        ).execute()
        if purpose == "activation":
            expires = self.activation_deadline(account)
        else:
            expires = now + RESET_VALIDITY
        row = codes.create(
            account=account,
            purpose=purpose,
            code_hash=code_hash,
            expires_at=expires,
            tries_left=CODE_TRIES,
            created_at=now,
            updated_at=now,
        )
        self._mail(account, purpose, now, code_id=str(row.id), until=expires)

    def _mail(
        self,
        account: Account,
        what: str,
        now: datetime,
        *,
        code_id: str | None = None,
        until: datetime | None = None,
        **extra: str,
    ) -> None:
        messages = Messages(account.language)
        params = {
            "name": account.display_name,
            "code": CODE_MARK,
            "link": LINK_MARK,
            "until": formatting.instant(until or now, self.session.zone, messages),
            "exam": self.session.title,
            "signature": self.session.contact.signature(messages),
            **extra,
        }
        enqueue_mail(
            self.store,
            account.email,
            messages(f"mail.{what}.subject", **params),
            messages(f"mail.{what}.body", **params),
            now,
            code_id=code_id,
        )

    def _mail_state(self, account: Account, now: datetime) -> None:
        """Tell the owner of ``account`` what to do, after a request that does not fit its
        state (sign-up on a taken address, a code for an active account…)."""
        if account.status == "active":
            self._mail(account, "account_active", now)
        else:
            self._mail(account, "account_pending", now, until=self.activation_deadline(account))

    def _check_code(
        self, account: Account | None, purpose: str, typed: str, now: datetime, wrong: str
    ) -> OneTimeCode:
        """The account's current code if ``typed`` is it; a wrong try costs one of five,
        and counts in the kiosk's cap. One argon2 check on every path.

        The right code is returned unspent, so that the caller spends it in the same
        transaction as the change it allows. Every refusal is the same, whether the
        code is wrong, spent or expired, or there is no such account.
        """
        codes = self.store.OneTimeCode
        code = None
        if account is not None:
            code = (
                codes.select()
                .where(codes.account == account, codes.purpose == purpose, codes.spent_at.is_null())
                .order_by(codes.created_at.desc())
                .first()
            )
        if code is None or code.expires_at <= now:
            self.hasher.waste_time(typed)
            code = None
        elif self.hasher.verify(code.code_hash, typed_code(typed)):
            return code
        with self.store.atomic():
            self._record_attempt(now)
            if code is not None:
                code.tries_left -= 1
                if code.tries_left <= 0:
                    code.spent_at = now
                code.touch(now)
                code.save()
        raise Refused.one("code", wrong)

    @staticmethod
    def _spend(code: OneTimeCode, now: datetime) -> None:
        code.spent_at = now
        code.touch(now)
        code.save()

    # -- helpers ------------------------------------------------------------------------

    def _account(self, email: str, now: datetime) -> Account | None:
        """The account of a typed address (refused only when the address is not valid)."""
        return self._own_account(email_key(normalise_email(email)), now)

    def _own_account(self, key: str | None, now: datetime) -> Account | None:
        """The account of this address here, unless it gave way to one made elsewhere."""
        account = self._account_by_key(key, now)
        return None if account is None or account.taken_elsewhere_at else account

    def _account_by_key(self, key: str | None, now: datetime) -> Account | None:
        if not key:
            return None
        accounts = self.store.Account
        account = accounts.get_or_none(accounts.email_key == key)
        if account is not None and self._delete_if_expired(account, now):
            return None
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
