"""One-time codes (activation, password reset): how they are made, shown and typed.

A queued mail holds :data:`CODE_MARK` in place of its code; the code is made, and its
hash stored, only when the mail is sent (:func:`code_for_mail`), so that nothing in the
store's outbox is a usable code.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from kiosk.i18n import Messages
from kiosk.passwords import Hasher

if TYPE_CHECKING:
    from kiosk.store.database import KioskStore

CODE_LENGTH = 8
# No 0/O, 1/I/L or U/V: a code read off a phone screen is typed right the first time.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTWXYZ23456789"
# Where a code goes in a queued mail; replaced by the code when the mail is sent. A
# control character, which no name, address or message holds.
CODE_MARK = "\x1fcode\x1f"
# Where an activation mail's link paragraph goes, made as the mail is sent; or nothing.
LINK_MARK = "\x1flink\x1f"


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


@dataclass(frozen=True)
class MailedCode:
    """What a queued mail's marks become as it is sent: the code, and the paragraph with
    the activation link (empty when there is no link to give)."""

    code: str
    link: str = ""

    def fill(self, body: str) -> str:
        """The body of a queued mail with its marks replaced."""
        return body.replace(CODE_MARK, self.code).replace(LINK_MARK, self.link)


def code_for_mail(
    store: KioskStore, hasher: Hasher, code_id: str, now: datetime
) -> MailedCode | None:
    """Make the code of a queued mail, as it is sent: its hash replaces the unusable one
    stored when the code was issued; an activation code gets a link too when the
    rectorat has told its public address. ``None`` when the code is no longer worth
    sending (spent, replaced by a later one, expired or gone with its account).

    The hashes are committed before the mail leaves: a crash in between only means the
    next attempt sends another code, which replaces this one.
    """
    codes = store.OneTimeCode
    with store.atomic():
        row = codes.get_or_none(codes.id == code_id)
        if row is None or row.spent_at is not None or row.expires_at <= now:
            return None
        code = new_code()
        public_url = _public_url(store) if row.purpose == "activation" else ""
        token = secrets.token_urlsafe(32) if public_url else ""
        codes.update(
            code_hash=hasher.hash(code),
            link_hash=token_hash(token) if token else None,
            updated_at=now,
            version=codes.version + 1,
        ).where(codes.id == row.id).execute()
        link = ""
        if token:
            messages = Messages(row.account.language)
            link = messages("mail.activation.link", url=f"{public_url}/activation/{token}")
    return MailedCode(show_code(code), link)


def token_hash(token: str) -> str:
    """How a link's token is kept: it has 256 random bits, so a fast hash is enough."""
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def _public_url(store: KioskStore) -> str:
    """The rectorat's public address, as its feed last gave it ("" when it gives none)."""
    states = store.SyncState
    row = states.get_or_none(states.name == "public_url")
    return row.value.rstrip("/") if row else ""


def typed_code(text: str) -> str:
    """A code as typed, in the form it was sent: capitals, no spaces or dashes."""
    return "".join(c for c in text.upper() if c.isalnum())


def code_problem(typed: str) -> str | None:
    """Why ``typed`` cannot be a code (a catalogue key), or ``None``. Asked before any
    account is looked at: a field left empty or half typed costs none of the code's
    tries, and is answered alike for every address."""
    return None if len(typed_code(typed)) == CODE_LENGTH else "code.incomplete"


def show_code(code: str) -> str:
    return f"{code[:4]}-{code[4:]}"
