"""The ids of records: UUIDs that sort in the order the records were made.

A kiosk makes the id of every record it creates, and the rectorat keeps them in B-tree
indexes a million entries long. Random ids (version 4) put each new record at a random
place of each index, so that a push of 2,000 records reads and writes pages all over a
gigabyte of indexes. Ids of version 7 (RFC 9562: the Unix time in milliseconds, then
random bits) put the records of a push side by side, at the indexes' right edge.
"""

from __future__ import annotations

import secrets
import time
import uuid

_VERSION_7 = 0x7 << 76
_VARIANT_RFC = 0x2 << 62
_RANDOM_BITS = 74  # of 128: 48 of time, 4 of version and 2 of variant leave 74


def new_id() -> uuid.UUID:
    """A new UUID of version 7: 48 bits of wall-clock milliseconds, then 74 random bits.

    The wall clock, not the kiosk's Clock: the id orders records for the indexes and
    says nothing a candidate or the rectorat reads as a date (``created_at`` does).
    """
    milliseconds = time.time_ns() // 1_000_000 & (1 << 48) - 1
    chance = secrets.randbits(_RANDOM_BITS)
    # Random bits: 12 after the version, 62 after the variant.
    low = chance & (1 << 62) - 1
    high = chance >> 62
    return uuid.UUID(int=milliseconds << 80 | _VERSION_7 | high << 64 | _VARIANT_RFC | low)
