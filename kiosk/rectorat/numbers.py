"""Registration numbers, given by the rectorat when it first takes a registration:
``2020-PO-000042``, the session's year, its académie's code, then a number that rises.

SQLite: one counter per prefix (``rc_counter``), so numbers follow on. PostgreSQL: one
sequence for all (``rc_registration_number``), which no transaction holds: concurrent
pushes number their registrations without waiting on one another, and numbers are
unique and rising, and may skip.
"""

from __future__ import annotations

import unicodedata

from kiosk.exam_sessions import ExamSession
from kiosk.rectorat.store import RectoratStore

_PG_NEXT = "SELECT nextval('rc_registration_number')"
_PG_NEXT_MANY = "SELECT nextval('rc_registration_number') FROM generate_series(1, %s)"


def academie_code(academie: str) -> str:
    """Its first two ASCII letters, upper case (``XX`` without any)."""
    plain = unicodedata.normalize("NFKD", academie)
    letters = "".join(c for c in plain if c.isascii() and c.isalpha()).upper()
    return letters[:2] or "XX"


def number_prefix(session: ExamSession) -> str:
    return f"{session.year}-{academie_code(session.academie_place)}"


def _number(prefix: str, n: int) -> str:
    return f"{prefix}-{n:06d}"


class Numbering:
    """Numbers for the registrations of one store, inside the caller's transaction."""

    def __init__(self, store: RectoratStore) -> None:
        self.db = store.db
        self.postgresql = store.postgresql
        p = self.db.param
        self._next_on_counter = (
            f"INSERT INTO rc_counter (prefix, last) VALUES ({p}, 1)"
            " ON CONFLICT (prefix) DO UPDATE SET last = rc_counter.last + 1 RETURNING last"
        )
        self._take_on_counter = (
            f"INSERT INTO rc_counter (prefix, last) VALUES ({p}, {p})"
            f" ON CONFLICT (prefix) DO UPDATE SET last = rc_counter.last + {p} RETURNING last"
        )

    def next(self, session: ExamSession) -> str:
        """The next number under the session's prefix."""
        prefix = number_prefix(session)
        if self.postgresql:
            row = self.db.execute_sql(_PG_NEXT).fetchone()
        else:
            row = self.db.execute_sql(self._next_on_counter, (prefix,)).fetchone()
        return _number(prefix, row[0])

    def take(self, sessions: list[ExamSession]) -> list[str]:
        """The next number of each session's registration, in order, in one statement
        (SQLite: one a prefix)."""
        if not sessions:
            return []
        known: dict[int, str] = {}  # a batch is mostly one session
        prefixes = []
        for session in sessions:
            prefix = known.get(id(session))
            if prefix is None:
                prefix = known[id(session)] = number_prefix(session)
            prefixes.append(prefix)
        if self.postgresql:
            rows = self.db.execute_sql(_PG_NEXT_MANY, (len(prefixes),)).fetchall()
            values = sorted(row[0] for row in rows)
            return [_number(prefix, n) for prefix, n in zip(prefixes, values, strict=True)]
        counts: dict[str, int] = {}
        for prefix in prefixes:
            counts[prefix] = counts.get(prefix, 0) + 1
        following: dict[str, int] = {}
        for prefix, count in counts.items():
            row = self.db.execute_sql(self._take_on_counter, (prefix, count, count)).fetchone()
            following[prefix] = row[0] - count + 1
        numbers = []
        for prefix in prefixes:
            numbers.append(_number(prefix, following[prefix]))
            following[prefix] += 1
        return numbers
