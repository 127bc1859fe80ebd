"""Text from outside (names, addresses, anything synced) made safe to show or print.

Control characters would drive the terminal (escape and OSC sequences) or reorder what
is shown (bidirectional overrides); they are refused at input and neutralised at output.
"""

from __future__ import annotations

import re
import unicodedata

# C0 and C1 controls but new line, and the invisible formatting characters that change
# how text reads: bidi embeddings, overrides and isolates, zero-width marks, BOM.
_UNSAFE = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]"
)
REPLACEMENT = "\ufffd"


def has_control(text: str) -> bool:
    """Whether ``text`` holds a character no one should type in a form."""
    return _UNSAFE.search(text) is not None or any(
        unicodedata.category(c) in ("Cs", "Co", "Cn") for c in text
    )


def displayable(text: str) -> str:
    """``text`` with every unsafe character shown as « � », visibly, instead of acting."""
    return _UNSAFE.sub(REPLACEMENT, text)


# For Textual's Input(restrict=…): a value made only of safe characters.
SAFE_INPUT = "[^\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]*"
