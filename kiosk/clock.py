"""The one source of time for the whole program."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")


def parse_instant(text: str, default_zone: ZoneInfo = PARIS) -> datetime:
    """Read an ISO 8601 instant; a time without offset is taken in ``default_zone``."""
    moment = datetime.fromisoformat(text.strip())
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=default_zone)
    return moment.astimezone(UTC)


def instant_text(moment: datetime | None) -> str | None:
    """An instant as the store and the sync protocol write it: ISO 8601 in UTC, to the
    microsecond, so that texts sort as the instants do. ``None`` stays ``None``."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        raise ValueError("instants are written with their timezone")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def instant_from_text(text: str | None) -> datetime | None:
    """The instant that :func:`instant_text` wrote."""
    return None if text is None else datetime.fromisoformat(text)


class Clock:
    """Tells the time, possibly shifted to another instant, and runs on from there.

    Every deadline in the program (the registration window, the 48 h activation rule,
    login delays, code validity) reads this clock and nothing else, so that one
    ``KIOSK_NOW`` moves the whole program in time. ``advance`` moves it further; tests
    use it to stand on either side of a boundary.
    """

    def __init__(self, start: datetime | None = None, *, frozen: bool = False) -> None:
        self._lock = threading.Lock()
        self._frozen = frozen
        real = datetime.now(UTC)
        if start is None:
            self._offset = timedelta(0)
            self._frozen_at = real
        else:
            start = start.astimezone(UTC)
            self._offset = start - real
            self._frozen_at = start

    @classmethod
    def from_setting(cls, value: str | None) -> Clock:
        """The clock a ``KIOSK_NOW`` setting asks for: the system clock when empty."""
        if not value:
            return cls()
        return cls(parse_instant(value))

    def now(self) -> datetime:
        """The current instant, timezone-aware, in UTC."""
        with self._lock:
            if self._frozen:
                return self._frozen_at
            return datetime.now(UTC) + self._offset

    def advance(self, delta: timedelta) -> None:
        """Move the clock forward (or back, with a negative delta)."""
        with self._lock:
            self._offset += delta
            self._frozen_at += delta

    def set(self, instant: datetime) -> None:
        """Put the clock at ``instant``; a running clock runs on from there."""
        with self._lock:
            instant = instant.astimezone(UTC)
            self._offset = instant - datetime.now(UTC)
            self._frozen_at = instant
