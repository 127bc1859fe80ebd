"""How one person shows twice at the rectorat: a registration's identity key.

Two registrations of one exam session with the same key are the same person registered
twice (at two kiosks, under two accounts): the push keeps the second as a conflict. The
exam office sets a registration aside by clearing its key.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from kiosk.registration_form import parse_date

_NOT_ALNUM = re.compile(r"[^0-9a-z]+")
NAME_KEY_MAX = 500
"""A name's part of the key, at most: the key is indexed, and PostgreSQL's index entries
hold at most 2,704 bytes (the form takes names of at most 100 characters)."""


def identity_key(
    answers: Mapping[str, Any], family_name: str = "", given_names: str = ""
) -> str | None:
    """Family name, given names and birth date, normalised: how one person shows twice.

    The names are the answers', else the account's (``family_name``, ``given_names``).
    ``None`` without a readable birth date: names alone would join different people.
    """
    birth = _birth_day(str(answers.get("birth_date") or ""))
    if birth is None:
        return None
    family = _name_part(str(answers.get("family_name") or family_name or ""))
    given = _name_part(str(answers.get("given_names") or given_names or ""))
    return f"{family}|{given}|{birth}"


def plain_name(text: object) -> str:
    """Lower case, without accents, anything but letters and digits made one space."""
    text = str(text or "")
    if text.isascii():  # the common case, the same answer without the Unicode tables
        return _NOT_ALNUM.sub(" ", text.lower()).strip()
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _NOT_ALNUM.sub(" ", bare).strip()


def _birth_iso(text: str) -> str | None:
    birth = parse_date(text)
    return None if birth is None else birth.isoformat()


def _name_key(text: str) -> str:
    return plain_name(text)[:NAME_KEY_MAX]


# A batch of 2,000 items makes 1,000 keys, of few birth dates and given names: each is
# read once (5.5 ms a thousand keys before, 2.3 after). Only texts of the form's length are
# kept, so that the memory they take stays small whatever is pushed.
_KEPT_TEXT = 100
_kept_birth = functools.lru_cache(maxsize=2048)(_birth_iso)
_kept_name = functools.lru_cache(maxsize=2048)(_name_key)


def _birth_day(text: str) -> str | None:
    """The birth date as ISO text, ``None`` when it is no date."""
    return _kept_birth(text) if len(text) <= _KEPT_TEXT else _birth_iso(text)


def _name_part(text: str) -> str:
    """A name's part of the key."""
    return _kept_name(text) if len(text) <= _KEPT_TEXT else _name_key(text)
