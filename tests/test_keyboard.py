"""The kiosk's reading of the terminal (screens/keyboard.py), without a terminal: pastes
end, are bounded, and whatever is sent is read in bounded time and memory."""

from __future__ import annotations

import time
import tracemalloc

import pytest
from textual import events
from textual._xterm_parser import XTermParser

import screens.keyboard as keyboard
from screens.keyboard import PASTE_KEEP, KioskParser

START, END = "\x1b[200~", "\x1b[201~"


def read(parser: KioskParser, *chunks: str) -> list[tuple[str, str]]:
    """What the parser makes of ``chunks``, read one after the other."""
    found = []
    for chunk in chunks:
        for event in parser.feed(chunk):
            if isinstance(event, events.Paste):
                found.append(("paste", event.text))
            elif isinstance(event, events.Key):
                found.append(("key", event.key))
    return found


WHOLE = f"a{START}Dupont Jean{END}b"
EXPECTED = [("key", "a"), ("paste", "Dupont Jean"), ("key", "b")]


@pytest.mark.parametrize("cut", range(1, len(WHOLE)))
def test_a_paste_cut_anywhere_by_the_terminal_s_reads_is_one_paste(cut):
    assert read(KioskParser(), WHOLE[:cut], WHOLE[cut:]) == EXPECTED


def test_a_paste_read_a_character_at_a_time_is_one_paste():
    assert read(KioskParser(), *WHOLE) == EXPECTED


KEYS = [
    ("c",),
    ("\x1b[A", "\x1b[B"),
    ("\x1b[2", "0~", "\r"),  # ESC [ 2 0 ~ (F9): begins as a paste's start does
    ("\x1b[20", "1~"),  # a paste's end, alone
    ("\x1b[<0;10;10M\x1b[<0;10;10m",),
    ("é", "\t", "\x7f"),
]


@pytest.mark.parametrize("chunks", KEYS, ids=repr)
def test_keys_and_sequences_are_read_as_textual_reads_them(chunks):
    textual = XTermParser()
    expected = [repr(e) for chunk in chunks for e in textual.feed(chunk)]
    assert [repr(e) for e in _all(KioskParser(), chunks)] == expected


def _all(parser: KioskParser, chunks: tuple[str, ...]) -> list[events.Event]:
    return [event for chunk in chunks for event in parser.feed(chunk)]


def test_a_paste_left_open_ends_after_a_short_silence(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(keyboard, "get_time", lambda: now[0])
    parser = KioskParser()
    assert read(parser, START, "abc") == []
    now[0] += keyboard.PASTE_SILENCE / 2
    assert list(parser.tick()) == []
    assert read(parser, "d") == []  # still the paste: it goes on
    now[0] += keyboard.PASTE_SILENCE
    [pasted] = parser.tick()
    assert isinstance(pasted, events.Paste) and pasted.text == "abcd"
    assert not parser.pasting
    assert read(parser, "c") == [("key", "c")]


def test_a_paste_that_never_ends_ends_at_its_size_limit(monkeypatch):
    monkeypatch.setattr(keyboard, "PASTE_LIMIT", 10_000)
    parser = KioskParser()
    found = read(parser, START, *["x" * 4096] * 3)
    assert not parser.pasting
    assert found == [("paste", "x" * PASTE_KEEP)]
    assert read(parser, "c") == [("key", "c")]


def test_of_a_paste_only_what_a_field_could_hold_is_kept():
    found = read(KioskParser(), START + "é" * 100_000 + END)
    assert found == [("paste", "é" * PASTE_KEEP)]


def test_nul_characters_are_left_out_of_a_paste():
    assert read(KioskParser(), f"{START}Du\x00pont{END}") == [("paste", "Dupont")]


@pytest.mark.parametrize("bracketed", [True, False], ids=["bracketed", "bare"])
def test_a_1_mb_paste_is_read_in_bounded_time_and_memory(bracketed):
    text = "Dupont\u00e9" * (1024 * 1024 // 7)
    data = f"{START}{text}{END}c" if bracketed else f"{text}\rc"
    parser = KioskParser()
    tracemalloc.start()
    started = time.perf_counter()
    pastes = keys = 0
    for at in range(0, len(data), 4096):
        for event in parser.feed(data[at : at + 4096]):
            pastes += isinstance(event, events.Paste)
            keys += isinstance(event, events.Key)
            assert not isinstance(event, events.Paste) or len(event.text) <= PASTE_KEEP
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert elapsed < 0.5
    assert peak < 1024 * 1024  # beyond the chunk being read: next to nothing
    assert pastes >= 1
    assert keys <= (1 if bracketed else 2 + 255 * 2)  # « c » (and the edges of each read)
