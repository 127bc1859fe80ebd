"""One-time codes at the rectorat, so that an account is activated wherever its owner is.

A kiosk pushes its codes (entity ``code``) once their mail has made them, and again
when they are tried or spent: the rectorat keeps only their hashes (argon2 for the
code, SHA-256 for the link's 256-bit token). With them, the rectorat activates an
account made at any kiosk: by its code typed at another kiosk online
(``POST /v1/accounts/activate``), or by the link of its mail (``/activation/TOKEN``).

Codes do not go down the feed: the kiosk that holds the account learns the activation
from the account itself, a new version. Tries and spending are merged, whichever side
saw them first: the fewest tries left, the first spending.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kiosk.accounts import (
    ACTIVATION_DEADLINE,
    CODE_TRIES,
    RESEND_INTERVAL,
    RESET_VALIDITY,
)
from kiosk.accounts import email_key as normalise_email_key
from kiosk.clock import Clock
from kiosk.codes import new_code, show_code, token_hash, typed_code
from kiosk.errors import Problem
from kiosk.passwords import MAX_LENGTH as PASSWORD_MAX
from kiosk.passwords import Hasher, check_password
from kiosk.rectorat.items import EMAIL_MAX, Invalid, read_instant, read_text, read_uuid
from kiosk.rectorat.kiosks import KioskIdentity
from kiosk.rectorat.limits import LoginFailures
from kiosk.rectorat.store import RectoratStore

log = logging.getLogger(__name__)

PURPOSES = ("activation", "reset")
TYPED_MAX = 64  # a code is 8 characters: anything much longer is not one


@dataclass(frozen=True)
class ResetCode:
    """A reset code the rectorat made, to be mailed to the account's owner."""

    account_id: uuid.UUID
    email: str
    name: str
    code: str
    until: datetime


class PasswordRefused(Exception):
    """The new password breaks the policy (:func:`kiosk.passwords.check_password`)."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.key)
        self.problem = problem


class CodeRefused(Exception):
    """``reason``: ``code`` (wrong, spent or expired code, or no such account: one
    answer), ``locked`` (this kiosk must wait ``retry_after`` seconds for this address)."""

    def __init__(self, reason: str, retry_after: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


@dataclass(frozen=True)
class CodeFields:
    """A pushed code, read and checked."""

    account_id: uuid.UUID
    purpose: str
    code_hash: str
    link_hash: str | None
    expires_at: datetime
    tries_left: int
    spent_at: datetime | None
    created_at: datetime
    updated_at: datetime


def code_fields(data: Mapping[str, Any]) -> CodeFields:
    """The fields of a pushed code; :class:`Invalid` when one cannot be read."""
    account_id = read_uuid(data.get("account_id"), "account_id")
    purpose = data.get("purpose")
    if purpose not in PURPOSES:
        raise Invalid(f"purpose is one of {', '.join(PURPOSES)}")
    tries = data.get("tries_left")
    if type(tries) is not int or not 0 <= tries <= CODE_TRIES:
        raise Invalid(f"tries_left is an integer from 0 to {CODE_TRIES}")
    link_hash = data.get("link_hash")
    if link_hash is not None and (
        not isinstance(link_hash, str)
        or len(link_hash) != 64
        or any(c not in "0123456789abcdef" for c in link_hash)
    ):
        raise Invalid("link_hash is a SHA-256 in lower-case hex, or null")
    return CodeFields(
        account_id=account_id,
        purpose=purpose,
        code_hash=read_text(data, "code_hash"),
        link_hash=link_hash,
        expires_at=_instant(data, "expires_at"),
        tries_left=tries,
        spent_at=read_instant(data, "spent_at", null=True),
        created_at=_instant(data, "created_at"),
        updated_at=_instant(data, "updated_at"),
    )


def _readable_key(email_key: object) -> str | None:
    """The address as compared, from what a kiosk sent; None when it cannot be one."""
    if not isinstance(email_key, str) or not 0 < len(email_key) <= EMAIL_MAX:
        return None
    if "\x00" in email_key:
        return None
    return normalise_email_key(email_key.strip())


def _instant(data: Mapping[str, Any], key: str) -> datetime:
    moment = read_instant(data, key)
    assert moment is not None  # read_instant refuses a missing one
    return moment


def push_code(
    store: RectoratStore,
    holds: bool,
    record_id: uuid.UUID,
    version: int,
    data: Mapping[str, Any],
) -> dict:
    """The rule of a pushed code, in the caller's transaction (``holds``: whether the
    kiosk holds the code's account): the result without the id."""
    m = store
    fields = code_fields(data)
    if m.Account.get_or_none(m.Account.id == fields.account_id) is None:
        return {"result": "stale"}  # not here (held in a conflict, or deleted): unusable
    if not holds:
        return {"result": "refused", "reason": "forbidden"}
    existing = m.Code.get_or_none(m.Code.id == record_id)
    if existing is None:
        m.Code.insert(id=record_id, version=version, **vars(fields)).execute()
        return {"result": "applied"}
    if str(existing.account_id) != str(fields.account_id) or existing.purpose != fields.purpose:
        raise Invalid("a code keeps its account and purpose")
    changes: dict[str, Any] = {}
    if version > existing.version:
        changes.update(
            version=version,
            code_hash=fields.code_hash,
            link_hash=fields.link_hash,
            expires_at=fields.expires_at,
            updated_at=fields.updated_at,
        )
    if fields.tries_left < existing.tries_left:
        changes["tries_left"] = fields.tries_left
    if existing.spent_at is None and fields.spent_at is not None:
        changes["spent_at"] = fields.spent_at
    if not changes:
        return {"result": "stale"}
    m.Code.update(**changes).where(m.Code.id == record_id).execute()
    return {"result": "applied"}


class Codes:
    """The activations the codes pushed by the kiosks allow."""

    def __init__(
        self,
        store: RectoratStore,
        clock: Clock,
        hasher: Hasher,
        failures: LoginFailures,
        changed: Callable[[str, object, object, datetime], None],
    ) -> None:
        self.store = store
        self.clock = clock
        self.hasher = hasher
        # A wrong code counts as a failed login elsewhere does: per kiosk and address.
        self.failures = failures
        self.changed = changed  # a row of the change feed (PushRules.changed)

    # -- activation ---------------------------------------------------------------------

    def activate_by_code(self, kiosk: KioskIdentity, email_key: object, code: object) -> uuid.UUID:
        """Activate the pending account of this address with the code of its mail, typed
        at ``kiosk``; the account's id. Raises :class:`CodeRefused`, in the same words
        whether the code is wrong, spent or expired, or the address has no such account;
        after the same argon2 work."""
        now = self.clock.now()
        account, found = self._proven(kiosk, email_key, code, "pending", "activation", now)
        self._activate(account.id, found.id, now)
        log.info("kiosk %s activated account %s with its code", kiosk.name, account.id)
        return uuid.UUID(str(account.id))

    # -- password reset -----------------------------------------------------------------

    def issue_reset(self, email_key: object) -> ResetCode | None:
        """A reset code for the active account of this address, to mail to its owner; None
        when there is none (or a code was made less than a minute ago, and its mail holds
        a valid code). The same argon2 work either way."""
        now = self.clock.now()
        key = _readable_key(email_key)
        m = self.store
        account = m.Account.get_or_none(m.Account.email_key == key) if key else None
        code = new_code()
        code_hash = self.hasher.hash(code)
        if account is None or account.status != "active":
            return None
        with self.store.write():
            latest = self._live_code(account.id, now, "reset")
            if latest is not None and now - latest.created_at < RESEND_INTERVAL:
                return None
            m.Code.update(spent_at=now, version=m.Code.version + 1).where(
                m.Code.account_id == account.id,
                m.Code.purpose == "reset",
                m.Code.spent_at.is_null(),
            ).execute()
            until = now + RESET_VALIDITY
            m.Code.insert(
                id=uuid.uuid4(),
                version=1,
                account_id=account.id,
                purpose="reset",
                code_hash=code_hash,
                link_hash=None,
                expires_at=until,
                tries_left=CODE_TRIES,
                spent_at=None,
                created_at=now,
                updated_at=now,
            ).execute()
        name = f"{account.given_names} {account.family_name}"
        return ResetCode(uuid.UUID(str(account.id)), account.email, name, show_code(code), until)

    def reset(
        self, kiosk: KioskIdentity, email_key: object, code: object, password: object
    ) -> uuid.UUID:
        """A new password for the active account of this address, with the reset code of
        its mail (made at any kiosk, or here); the account's id. Raises
        :class:`CodeRefused` (as :meth:`activate_by_code`), or :class:`PasswordRefused`."""
        now = self.clock.now()
        if not isinstance(password, str) or len(password) > PASSWORD_MAX:
            raise CodeRefused("code")
        account, found = self._proven(kiosk, email_key, code, "active", "reset", now)
        m = self.store
        problem = check_password(
            password, names=(account.family_name, account.given_names), email=account.email
        )
        if problem:
            raise PasswordRefused(problem)
        password_hash = self.hasher.hash(password)
        with self.store.write():
            m.Code.update(spent_at=now, version=m.Code.version + 1).where(
                m.Code.id == found.id
            ).execute()
            m.Account.update(
                password_hash=password_hash,
                failed_logins=0,
                locked_until=None,
                updated_at=now,
                version=m.Account.version + 1,
            ).where(m.Account.id == account.id).execute()
            self.changed("account", account.id, account.id, now)
        self.failures.forget(account.email_key)  # a new password lifts the delays, at every kiosk
        log.info("kiosk %s reset the password of account %s", kiosk.name, account.id)
        return uuid.UUID(str(account.id))

    def _proven(
        self,
        kiosk: KioskIdentity,
        email_key: object,
        code: object,
        status: str,
        purpose: str,
        now: datetime,
    ) -> tuple[Any, Any]:
        """The account of this address in ``status`` and its live code for ``purpose``,
        when ``code`` is it; else :class:`CodeRefused`, the same for every reason, after
        one argon2 check (a decoy's when there is no such code). A wrong try costs one of
        the code's tries, and counts for this kiosk and address."""
        key = _readable_key(email_key)
        if key is None or not isinstance(code, str) or len(code) > TYPED_MAX:
            raise CodeRefused("code")
        wait = self.failures.wait(kiosk.id, key, now)
        if wait:
            raise CodeRefused("locked", retry_after=wait)
        m = self.store
        account = m.Account.get_or_none(m.Account.email_key == key)
        found = None
        if account is not None and account.status == status:
            found = self._live_code(account.id, now, purpose)
        typed = typed_code(code)
        if found is None:
            self.hasher.waste_time(typed)
            self.failures.failed(kiosk.id, key, now)
            raise CodeRefused("code")
        if not self.hasher.verify(found.code_hash, typed):
            self.failures.failed(kiosk.id, key, now)
            with self.store.write():
                left = max(found.tries_left - 1, 0)
                m.Code.update(tries_left=left, spent_at=now if left == 0 else None).where(
                    m.Code.id == found.id
                ).execute()
            raise CodeRefused("code")
        self.failures.succeeded(kiosk.id, key)
        return account, found

    def activate_by_link(self, token: str) -> bool:
        """Activate the account whose activation mail holds the link of ``token``;
        whether it did (a link works once, within the 48 hours)."""
        now = self.clock.now()
        if not token or len(token) > TYPED_MAX or not token.isascii():
            return False
        m = self.store
        found = m.Code.get_or_none(m.Code.link_hash == token_hash(token))
        if found is None or found.purpose != "activation":
            return False
        if found.spent_at is not None or found.expires_at <= now or found.tries_left <= 0:
            return False
        account = m.Account.get_or_none(m.Account.id == found.account_id)
        if account is None or account.status != "pending":
            return False
        if now >= account.created_at + ACTIVATION_DEADLINE:
            return False
        latest = self._live_code(account.id, now, "activation")
        if latest is None or latest.id != found.id:
            return False  # only the latest code, and its link, is valid
        self._activate(account.id, found.id, now)
        log.info("account %s activated by the link of its mail", account.id)
        return True

    def _live_code(self, account_id: object, now: datetime, purpose: str) -> Any:
        """The account's latest code for ``purpose`` if it can still be used."""
        m = self.store
        latest = (
            m.Code.select()
            .where(m.Code.account_id == account_id, m.Code.purpose == purpose)
            .order_by(m.Code.created_at.desc())
            .first()
        )
        if latest is None or latest.spent_at is not None or latest.tries_left <= 0:
            return None
        return latest if latest.expires_at > now else None

    def _activate(self, account_id: object, code_id: object, now: datetime) -> None:
        """The account active (a new version, for the kiosks that hold it), its code spent."""
        m = self.store
        with self.store.write():
            m.Code.update(spent_at=now, version=m.Code.version + 1).where(
                m.Code.id == code_id
            ).execute()
            m.Account.update(
                status="active",
                activated_at=now,
                updated_at=now,
                version=m.Account.version + 1,
            ).where(m.Account.id == account_id, m.Account.status == "pending").execute()
            self.changed("account", account_id, account_id, now)
