"""What a kiosk may ask of the rectorat per unit of time, and how long a login elsewhere
waits after failures: both kept in the server process's memory.

:class:`RateLimiter` gives each kiosk a bucket per kind of request (push, pull, login
elsewhere) that refills at a steady rate: a kiosk that empties one is answered ``429``
with the seconds to wait, before its body is read. :class:`LoginFailures` counts the
failed logins elsewhere per kiosk and per address, whether the address has an account or
not: a kiosk that fails locks itself out of that address, never the other kiosks, and
the answer says nothing of which addresses have accounts.

Both are per server process: with several workers, each has its own buckets (a kiosk
gets at most that many times the rate), and a restart forgets them.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from kiosk.accounts import login_delay

__all__ = ["DEFAULT_RATES", "LoginFailures", "Rate", "RateLimiter"]


@dataclass(frozen=True)
class Rate:
    """``burst`` requests at once, then ``per_second`` on average."""

    burst: int
    per_second: float


DEFAULT_RATES: Mapping[str, Rate] = {
    # A kiosk back online after days pushes its outbox batch after batch (2,000 rows each).
    "push": Rate(burst=60, per_second=1.0),
    # A pull is page after page (1,000 changes at most each) until the feed's head.
    "pull": Rate(burst=120, per_second=2.0),
    # A login elsewhere is a candidate at the kiosk, and an argon2 hash at the rectorat.
    "login": Rate(burst=10, per_second=1 / 6),
}
_KEPT = 100_000  # buckets or failure counts: beyond, the settled ones are forgotten


class RateLimiter:
    """Token buckets per (kiosk, kind of request)."""

    def __init__(
        self,
        rates: Mapping[str, Rate] = DEFAULT_RATES,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rates = dict(rates)
        self._monotonic = monotonic
        self._buckets: dict[tuple[int, str], tuple[float, float]] = {}  # tokens, at
        self._lock = threading.Lock()

    def wait(self, kiosk_id: int, kind: str) -> int:
        """Take one request of ``kind`` for the kiosk: 0 when it may go on, else the whole
        seconds to wait (its bucket is left as it was)."""
        rate = self.rates.get(kind)
        if rate is None:
            return 0
        now = self._monotonic()
        with self._lock:
            tokens, at = self._buckets.get((kiosk_id, kind), (float(rate.burst), now))
            tokens = min(float(rate.burst), tokens + (now - at) * rate.per_second)
            if tokens >= 1.0:
                if len(self._buckets) >= _KEPT:
                    self._forget_full(now)
                self._buckets[(kiosk_id, kind)] = (tokens - 1.0, now)
                return 0
            self._buckets[(kiosk_id, kind)] = (tokens, now)
            return max(1, math.ceil((1.0 - tokens) / rate.per_second))

    def _forget_full(self, now: float) -> None:
        """Drop the buckets that have refilled: forgetting them changes nothing."""
        for key, (tokens, at) in list(self._buckets.items()):
            rate = self.rates[key[1]]
            if tokens + (now - at) * rate.per_second >= rate.burst:
                del self._buckets[key]


class LoginFailures:
    """Failed logins elsewhere per (kiosk, address), with the kiosk's own delays
    (:func:`kiosk.accounts.login_delay`: none up to 4, then 30 s doubling to 15 min)."""

    def __init__(self) -> None:
        self._failures: dict[tuple[int, str], tuple[int, datetime | None]] = {}
        self._lock = threading.Lock()

    def wait(self, kiosk_id: int, key: str, now: datetime) -> int:
        """The whole seconds this kiosk waits before it may try this address again (0: now)."""
        with self._lock:
            _count, locked_until = self._failures.get((kiosk_id, key), (0, None))
        if locked_until is None or locked_until <= now:
            return 0
        return max(1, math.ceil((locked_until - now).total_seconds()))

    def failed(self, kiosk_id: int, key: str, now: datetime) -> None:
        with self._lock:
            count = self._failures.get((kiosk_id, key), (0, None))[0] + 1
            delay = login_delay(count)
            if len(self._failures) >= _KEPT:
                self._forget_settled(now)
            self._failures[(kiosk_id, key)] = (count, now + delay if delay else None)

    def succeeded(self, kiosk_id: int, key: str) -> None:
        with self._lock:
            self._failures.pop((kiosk_id, key), None)

    def forget(self, key: str) -> bool:
        """Lift the delays of an address at every kiosk; whether there was any."""
        with self._lock:
            found = [k for k in self._failures if k[1] == key]
            for k in found:
                del self._failures[k]
        return bool(found)

    def _forget_settled(self, now: datetime) -> None:
        for key, (_count, locked_until) in list(self._failures.items()):
            if locked_until is None or locked_until <= now:
                del self._failures[key]
