"""Text from outside is refused at input when it holds controls, and shown inert."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiosk.text import REPLACEMENT, displayable, has_control

UNSAFE = [
    "\x1b[31mrouge",  # an escape sequence
    "\x1b]52;c;cGF3bmVk\x07",  # OSC 52: write the terminal's clipboard
    "\x9b2J",  # a C1 control sequence introducer
    "abc\u202edcb",  # right-to-left override
    "a\u2066b\u2069",  # bidi isolates
    "zero\u200bwidth",
    "\ufeffbom",
    "nul\x00",
    "unit\x1fseparator",
]


@pytest.mark.parametrize("text", UNSAFE)
def test_unsafe_text_is_detected_and_neutralised(text):
    assert has_control(text)
    shown = displayable(text)
    assert not has_control(shown)
    assert REPLACEMENT in shown


@pytest.mark.parametrize(
    "text", ["Élodie Dupré-Lefèvre", "محمد عبد الله", "王小明", "Zoé 🎓", "[b]Jean[/b]", "O'Brien"]
)
def test_names_from_everywhere_are_safe(text):
    assert not has_control(text)
    assert displayable(text) == text


def test_a_new_line_is_kept_for_multi_line_texts():
    assert displayable("ligne 1\nligne 2") == "ligne 1\nligne 2"


@given(st.text())
def test_what_is_shown_never_holds_a_control(text):
    assert not any(c in displayable(text) for c in "\x1b\x07\x9b\u202e\u2066")
