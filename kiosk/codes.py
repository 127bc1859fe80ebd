"""One-time codes (activation, password reset): how they are made, shown and typed.

A queued mail holds :data:`CODE_MARK` in place of its code; the code is made, and its
hash stored, only when the mail is sent (:func:`code_for_mail`), so that nothing in the
store's outbox is a usable code.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import TYPE_CHECKING

from kiosk.passwords import Hasher

if TYPE_CHECKING:
    from kiosk.store.database import KioskStore

CODE_LENGTH = 8
# No 0/O, 1/I/L or U/V: a code read off a phone screen is typed right the first time.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTWXYZ23456789"
# Where a code goes in a queued mail; replaced by the code when the mail is sent. A
# control character, which no name, address or message holds.
CODE_MARK = "\x1fcode\x1f"


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def code_for_mail(store: KioskStore, hasher: Hasher, code_id: str, now: datetime) -> str | None:
    """Make the code of a queued mail, as it is sent: its hash replaces the unusable one
    stored when the code was issued. ``None`` when the code is no longer worth sending
    (spent, replaced by a later one, expired or gone with its account).

    The hash is committed before the mail leaves: a crash in between only means the
    next attempt sends another code, which replaces this one.
    """
    codes = store.OneTimeCode
    with store.atomic():
        row = codes.get_or_none(codes.id == code_id)
        if row is None or row.spent_at is not None or row.expires_at <= now:
            return None
        code = new_code()
        codes.update(code_hash=hasher.hash(code), updated_at=now, version=codes.version + 1).where(
            codes.id == row.id
        ).execute()
    return show_code(code)


def typed_code(text: str) -> str:
    """A code as typed, in the form it was sent: capitals, no spaces or dashes."""
    return "".join(c for c in text.upper() if c.isalnum())


def show_code(code: str) -> str:
    return f"{code[:4]}-{code[4:]}"
