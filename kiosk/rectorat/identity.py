"""How one person shows twice at the rectorat: a registration's identity key.

Two registrations of one exam session with the same key are the same person registered
twice (at two kiosks, under two accounts): the push keeps the second as a conflict. The
exam office sets a registration aside by clearing its key.
"""

from __future__ import annotations

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
    birth = parse_date(str(answers.get("birth_date") or ""))
    if birth is None:
        return None
    family = plain_name(answers.get("family_name") or family_name)[:NAME_KEY_MAX]
    given = plain_name(answers.get("given_names") or given_names)[:NAME_KEY_MAX]
    return f"{family}|{given}|{birth.isoformat()}"


def plain_name(text: object) -> str:
    """Lower case, without accents, anything but letters and digits made one space."""
    text = str(text or "")
    if text.isascii():  # the common case, the same answer without the Unicode tables
        return _NOT_ALNUM.sub(" ", text.lower()).strip()
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _NOT_ALNUM.sub(" ", bare).strip()
