"""The keyboard stays the candidate's: what the terminal sends is read in bounded time
and memory, whatever it is.

Textual's parser (``textual/_xterm_parser.py``) reads a bracketed paste
(``ESC [ 200 ~`` … ``ESC [ 201 ~``) one character at a time into a list, and waits for
its end forever: a paste that is never closed takes every key after it, and a 1 MB
paste costs minutes and gigabytes. :class:`KioskParser` reads pastes itself, before
Textual's parser sees them:

- a paste ends with ``ESC [ 201 ~``, after ``PASTE_SILENCE`` seconds without input, or
  after ``PASTE_LIMIT`` characters; what comes next is read as keys again;
- of a paste, only the first ``PASTE_KEEP`` characters are kept (no field is longer: each
  cuts a paste to its own length, see screens/fields.py); the rest is skipped in chunks,
  never a character at a time;
- text that arrives faster than anyone types (``BURST`` characters or more in one read,
  without a control character: a terminal that pastes without brackets) is a paste too,
  not thousands of keys.

:class:`KioskDriver` is Textual's Linux driver with this parser; it also drops the keys
of a burst that the app cannot keep up with (more than ``MAX_PENDING`` messages waiting),
so that memory stays bounded whatever is typed or sent.
"""

from __future__ import annotations

import logging
import os
import re
import selectors
from codecs import getincrementaldecoder
from collections.abc import Iterable, Iterator

from textual import constants, events
from textual._loop import loop_last
from textual._parser import ParseError
from textual._time import get_time
from textual._xterm_parser import BRACKETED_PASTE_END, BRACKETED_PASTE_START, XTermParser
from textual.drivers.linux_driver import LinuxDriver
from textual.message import Message

log = logging.getLogger(__name__)

PASTE_SILENCE = 0.5  # seconds without input that end a paste left open
PASTE_KEEP = 4096  # characters of a paste kept for the app
PASTE_LIMIT = 4 * 1024 * 1024  # characters after which a paste ends, closed or not
MAX_PENDING = 1000  # messages waiting for the app beyond which a key is dropped
READ_SIZE = 64 * 1024  # bytes read from the terminal at a time

BURST = 256  # characters read at once, without a control character: a paste, not keys

_START, _END = BRACKETED_PASTE_START, BRACKETED_PASTE_END
_RUN = re.compile(f"[^\x00-\x1f\x7f-\x9f]{{{BURST},}}")
_HOLD = len(_END) - 1  # characters that may be the start of the end of a paste


class KioskParser(XTermParser):
    """Textual's parser, with pastes read here: bounded, and ended when left open."""

    def __init__(self, debug: bool = False) -> None:
        self._pasting = False
        self._kept: list[str] = []
        self._kept_length = 0
        self._read = 0  # characters of the current paste, kept or not
        self._held = ""  # the last characters of a paste: maybe the start of its end
        self._fed = ""  # the last characters handed to Textual's parser
        self._last_input = 0.0
        super().__init__(debug)

    @property
    def pasting(self) -> bool:
        return self._pasting

    def feed(self, data: str) -> Iterable[Message]:
        return self._feed(data)  # a generator: a burst's events are made as they are taken

    def _feed(self, data: str) -> Iterator[Message]:
        if not data:  # the end of input
            if self._pasting:
                yield self._end_paste()
            yield from self._textual(data, end=True)
            return
        self._last_input = get_time()
        while data:
            if self._pasting:
                data = self._paste(data)
                if self._pasting:
                    return
                yield self._end_paste()
                continue
            seen = self._fed + data
            at = seen.find(_START)
            if at < 0:
                yield from self._keys(data)
                return
            # Textual's parser has the first characters of the start, if the terminal's read
            # cut it: it is given the rest, and an empty paste to close it at once.
            already = max(0, len(self._fed) - at)
            if at > len(self._fed):
                yield from self._keys(data[: at - len(self._fed)])
            if already:
                yield from self._textual(_START[already:] + _END)
            self._fed = ""
            data = seen[at + len(_START) :]
            self._start_paste()

    def tick(self) -> Iterable[Message]:
        found: list[Message] = []
        silence = get_time() - self._last_input
        if silence >= 2 * constants.ESCAPE_DELAY:
            self._fed = ""  # Textual's parser has given up on what it had: a key, not a start
        if self._pasting and silence >= PASTE_SILENCE:
            log.info("a paste left open was ended after %.1f s of silence", PASTE_SILENCE)
            found.append(self._end_paste())
        found.extend(super().tick())
        return found

    # -- Textual's parser, for everything but pastes ------------------------------------

    def _keys(self, data: str) -> Iterator[Message]:
        """``data`` as keys; but a run of ``BURST`` characters or more without a control
        character, which no one types between two reads, is a paste (bounded as one)."""
        if len(data) < BURST:
            yield from self._textual(data)
            return
        done = 0
        for run in _RUN.finditer(data):
            yield from self._textual(data[done : run.start()])
            self._start_paste()
            self._keep(run.group())
            yield self._end_paste()
            self._fed = ""
            done = run.end()
        yield from self._textual(data[done:])

    def _textual(self, data: str, *, end: bool = False) -> Iterator[Message]:
        """Textual's parser on ``data``; with ``end``, the end of input."""
        if not (data or end):
            return  # "" is the end of input to Textual's parser
        self._fed = (self._fed + data)[-(len(_START) - 1) :]
        for message in super().feed(data):
            if not isinstance(message, events.Paste):  # its pastes are all empty: see _feed
                yield message

    # -- a paste ------------------------------------------------------------------------

    def _start_paste(self) -> None:
        self._pasting = True
        self._kept, self._kept_length, self._read, self._held = [], 0, 0, ""

    def _paste(self, data: str) -> str:
        """Take ``data`` as part of the paste; what follows the paste's end, if it ended."""
        seen = self._held + data
        at = seen.find(_END)
        if at >= 0:
            self._keep(seen[:at])
            self._held = ""
            self._pasting = False
            return seen[at + len(_END) :]
        cut = max(0, len(seen) - _HOLD)
        self._keep(seen[:cut])
        self._held = seen[cut:]
        if self._read >= PASTE_LIMIT:
            log.warning("a paste of more than %d characters was ended", PASTE_LIMIT)
            self._pasting = False
        return ""

    def _keep(self, text: str) -> None:
        self._read += len(text)
        room = PASTE_KEEP - self._kept_length
        if room > 0 and text:
            kept = text[:room]
            self._kept.append(kept)
            self._kept_length += len(kept)

    def _end_paste(self) -> events.Paste:
        self._keep(self._held)
        self._pasting = False
        text = "".join(self._kept).replace("\x00", "")
        self._kept, self._kept_length, self._held = [], 0, ""
        return events.Paste(text)


class KioskDriver(LinuxDriver):
    """Textual's Linux driver, reading the terminal through :class:`KioskParser`."""

    def run_input_thread(self) -> None:
        """Textual's loop (LinuxDriver.run_input_thread), with the kiosk's parser and
        larger reads."""
        selector = selectors.SelectSelector()
        selector.register(self.fileno, selectors.EVENT_READ)
        fileno = self.fileno
        parser = KioskParser(self._debug)
        decode = getincrementaldecoder("utf-8")(errors="replace").decode

        def process(selector_events: list[tuple[selectors.SelectorKey, int]], final=False) -> None:
            for last, (_key, mask) in loop_last(selector_events):
                if mask & selectors.EVENT_READ:
                    data = decode(os.read(fileno, READ_SIZE), final=final and last)
                    if not data:
                        break
                    for event in parser.feed(data):
                        self.process_message(event)
            for event in parser.tick():
                self.process_message(event)

        try:
            while not self.exit_event.is_set():
                process(selector.select(0.1))
            selector.unregister(self.fileno)
            process(selector.select(0.1), final=True)
        finally:
            selector.close()
            try:
                for _event in parser.feed(""):
                    pass
            except (EOFError, ParseError):
                pass

    def process_message(self, message: Message) -> None:
        if isinstance(message, events.Key) and self._behind():
            return  # a burst the app cannot keep up with: its keys are not queued
        super().process_message(message)

    def _behind(self) -> bool:
        return self._app.message_queue_size > MAX_PENDING
