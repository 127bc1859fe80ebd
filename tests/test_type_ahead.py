"""Keys held until their screen can take them (screens/type_ahead.py), as plain logic.

The keys and screens are plain strings here; tests/ui/test_public_terminal.py drives the
app with real key events.
"""

from __future__ import annotations

from screens.type_ahead import LONGEST_HOLD, MOST_HELD, TypeAhead


def test_a_key_with_nothing_held_goes_on_and_its_screen_is_remembered():
    keys: TypeAhead[str, str] = TypeAhead()
    assert keys.came_in("a", "welcome", now=0.0)
    assert keys.sent_to("a") == "welcome"
    assert keys.sent_to("a") is None  # told once: the key has come back
    assert not keys.holding


def test_held_keys_wait_until_the_screen_can_take_them_then_go_in_order():
    keys: TypeAhead[str, str] = TypeAhead()
    keys.hold("enter", now=0.0)
    assert not keys.came_in("x", "form", now=0.01)  # behind « enter »
    assert keys.release(can_take=False, now=0.1) == []
    assert keys.release(can_take=True, now=0.1) == ["enter", "x"]
    assert not keys.holding


def test_a_key_coming_before_the_released_ones_are_back_waits_behind_them():
    keys: TypeAhead[str, str] = TypeAhead()
    keys.hold("a", now=0.0)
    keys.hold("b", now=0.0)
    released = keys.release(can_take=True, now=0.0)
    assert not keys.came_in("c", "form", now=0.01)  # typed as « a » and « b » go back in
    assert keys.release(can_take=True, now=0.02) == []  # « a » and « b » are not back yet
    assert [keys.came_in(k, "form", now=0.02) for k in released] == [True, True]
    assert keys.release(can_take=True, now=0.03) == ["c"]


def test_held_keys_go_in_after_the_longest_hold_whatever_the_screen_does():
    keys: TypeAhead[str, str] = TypeAhead()
    keys.hold("f10", now=10.0)
    keys.hold("x", now=10.3)  # the wait counts from the first key held
    assert keys.release(can_take=False, now=10.0 + LONGEST_HOLD - 0.001) == []
    assert keys.release(can_take=False, now=10.0 + LONGEST_HOLD) == ["f10", "x"]


def test_keys_beyond_the_most_held_are_let_go():
    keys: TypeAhead[str, str] = TypeAhead()
    for n in range(MOST_HELD + 1):
        keys.hold(f"k{n}", now=0.0)
    released = keys.release(can_take=True, now=0.0)
    assert len(released) == MOST_HELD
    assert released[-1] == f"k{MOST_HELD - 1}"


def test_keys_a_widget_took_are_forgotten_past_the_most_followed():
    keys: TypeAhead[str, str] = TypeAhead()
    for n in range(MOST_HELD + 1):  # letters typed into a field never come back
        assert keys.came_in(f"k{n}", "form", now=0.0)
    assert keys.sent_to("k0") is None
    assert keys.sent_to("k1") == "form"
    assert keys.sent_to(f"k{MOST_HELD}") == "form"
