"""The password policy and the password hasher.

The policy follows current guidance: a length (12 to 128 characters after NFKC), no
composition rules, and a refusal of passwords that are common or contain the person's
name or e-mail. Hashing is argon2id with argon2-cffi's defaults; a hash made with other
parameters is redone at the next login.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache, cached_property
from typing import TYPE_CHECKING

from kiosk.assets import asset
from kiosk.errors import Problem

if TYPE_CHECKING:
    from argon2 import PasswordHasher

MIN_LENGTH = 12
MAX_LENGTH = 128
_NAME_PART = re.compile(r"[^\W\d_]{3,}")
_AROUND_WORD = re.compile(r"^[\W\d_]+|[\W\d_]+$")


def normalise(password: str) -> str:
    """The form a password is measured, hashed and checked in."""
    return unicodedata.normalize("NFKC", password)


def _plain(text: str) -> str:
    """Lower case without accents, for comparisons that a person would call equal."""
    if text.isascii():
        return text.lower()  # the same result, 30 times faster: the common lists are ASCII
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@cache
def common_passwords() -> frozenset[str]:
    """The international list shipped with zxcvbn, and the French one shipped here."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS  # ~20 ms: loaded on first check only

    words = {_plain(w) for w in FREQUENCY_LISTS["passwords"]}
    with open(asset("common-passwords-fr.txt"), encoding="utf-8") as handle:
        words.update(
            _plain(line.strip()) for line in handle if line.strip() and not line.startswith("#")
        )
    return frozenset(words)


def _is_common(password: str) -> bool:
    plain = _plain(password)
    core = _AROUND_WORD.sub("", plain)
    if len(set(plain)) <= 3:
        return True
    words = common_passwords()
    if plain in words or (len(core) >= 4 and core in words):
        return True
    if not core:
        # No letters, so no word to strip the digits around ("1234567890" + "12"): look
        # for a common password of 4 or more characters at either end instead.
        return any(plain[:n] in words or plain[-n:] in words for n in range(4, len(plain)))
    return False


def check_password(
    password: str, *, names: tuple[str, ...] = (), email: str = ""
) -> Problem | None:
    """Why this password is refused, or ``None`` when it may be used."""
    password = normalise(password)
    if len(password) < MIN_LENGTH:
        return Problem("password.too_short", {"minimum": MIN_LENGTH, "length": len(password)})
    if len(password) > MAX_LENGTH:
        return Problem("password.too_long", {"maximum": MAX_LENGTH, "length": len(password)})
    plain = _plain(password)
    personal = [part for name in names for part in _NAME_PART.findall(_plain(name))]
    local_part = _plain(email.rpartition("@")[0]) if "@" in email else ""
    if len(local_part) >= 3:
        personal.append(local_part)
    if any(part in plain for part in personal):
        return Problem("password.personal")
    if _is_common(password):
        return Problem("password.common")
    return None


class Hasher:
    """Hashes and checks passwords and codes with argon2id."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self._given = hasher
        self._decoy: str | None = None

    @cached_property
    def _hasher(self) -> PasswordHasher:
        # Made on first use, in a worker: start-up has no password to check.
        from argon2 import PasswordHasher

        return self._given or PasswordHasher()

    def hash(self, secret: str) -> str:
        return self._hasher.hash(normalise(secret))

    def verify(self, hashed: str, secret: str) -> bool:
        from argon2.exceptions import InvalidHashError, VerificationError

        try:
            return self._hasher.verify(hashed, normalise(secret))
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, hashed: str) -> bool:
        return self._hasher.check_needs_rehash(hashed)

    def waste_time(self, secret: str) -> None:
        """Spend what a real check costs, so that an unknown address takes as long."""
        if self._decoy is None:
            self._decoy = self._hasher.hash("decoy password, never matches")
        self.verify(self._decoy, secret)
