"""Record ids of version 7: the wall clock's milliseconds first, so that they sort as made."""

from __future__ import annotations

import time
import uuid

from kiosk.ids import new_id


def test_an_id_is_a_uuid_of_version_7_with_the_rfc_variant():
    made = new_id()
    assert made.version == 7 and made.variant == uuid.RFC_4122
    assert uuid.UUID(str(made)) == made


def test_its_first_48_bits_are_the_wall_clock_in_milliseconds():
    before = time.time_ns() // 1_000_000
    made = new_id()
    after = time.time_ns() // 1_000_000
    assert before <= made.int >> 80 <= after


def test_ids_made_a_millisecond_apart_sort_in_order_as_uuids_and_as_text():
    ids = []
    for _ in range(20):
        ids.append(new_id())
        time.sleep(0.002)
    assert sorted(ids) == ids
    assert sorted(str(i) for i in ids) == [str(i) for i in ids]  # the store's text order


def test_ids_made_in_the_same_millisecond_are_distinct():
    made = [new_id() for _ in range(20_000)]
    assert len(set(made)) == len(made)
    # 74 random bits, around the version (bits 76-79) and the variant (62-63).
    for bit in [*range(0, 62), *range(64, 76)]:
        assert len({i.int >> bit & 1 for i in made}) == 2, bit
    assert {i.int >> 76 & 0xF for i in made} == {7} and {i.int >> 62 & 3 for i in made} == {2}
