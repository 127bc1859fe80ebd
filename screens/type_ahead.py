"""Keys typed before the screen they are meant for can take them, kept in order until it can.

Textual hands a key to the focused widget as it comes in, and answers the bindings once
the key has come back up from it. A key typed right behind one that opens a screen was
handed to the screen that is going; and until a screen opened, or a form's tab shown,
is drawn (screens/base.py, ``draw_next_frame``), its focus waits. Either way the key
comes back unanswered and would be lost: « c » then « Dupré » at once, or « F8 » then
« Entrée ». The app holds such a key, and every key that comes after it, and sends them
in again, in the order they came, once the screen shown can take them.

Held keys go in again after :data:`LONGEST_HOLD` whatever the screen does, so that no
screen can keep the keyboard from the person at it.
"""

from __future__ import annotations

from collections import deque
from typing import Generic, TypeVar

Key = TypeVar("Key")
Target = TypeVar("Target")

LONGEST_HOLD = 0.5  # seconds: a screen drawn later than this gets its keys anyway
# Keys held, or followed, beyond this many are let go: a stuck key or a paste of
# thousands, not typing.
MOST_HELD = 64


class TypeAhead(Generic[Key, Target]):
    """Where each key was sent, the keys held, and those sent in again but not back yet."""

    def __init__(self) -> None:
        self._sent_to: dict[Key, Target] = {}
        self._held: deque[Key] = deque()
        self._released: deque[Key] = deque()
        self._held_since = 0.0

    @property
    def holding(self) -> bool:
        """Whether some key waits to be sent in again."""
        return bool(self._held)

    def came_in(self, key: Key, target: Target, now: float) -> bool:
        """Whether ``key``, just come in to be sent to ``target``, goes on (True) or waits
        behind keys that came before it (held, or sent in again but not back yet); then it
        is held with them. ``now``: seconds on a monotonic clock."""
        if self._released and key is self._released[0]:
            self._released.popleft()
        elif self._held or self._released:
            self.hold(key, now)
            return False
        if len(self._sent_to) >= MOST_HELD:  # those a widget took never come back
            del self._sent_to[next(iter(self._sent_to))]
        self._sent_to[key] = target
        return True

    def sent_to(self, key: Key) -> Target | None:
        """Where ``key``, back unanswered, was sent as it came in (None: not followed)."""
        return self._sent_to.pop(key, None)

    def hold(self, key: Key, now: float) -> None:
        """Keep ``key`` until :meth:`release`."""
        if not self._held:
            self._held_since = now
        if len(self._held) < MOST_HELD:
            self._held.append(key)

    def release(self, can_take: bool, now: float) -> list[Key]:
        """The held keys to send in again, in order, once the screen ``can_take`` them or
        they have waited :data:`LONGEST_HOLD`. Until each is back through
        :meth:`came_in`, a new key is held behind them."""
        if not self._held or self._released:
            return []
        if not can_take and now - self._held_since < LONGEST_HOLD:
            return []
        self._released.extend(self._held)
        self._held.clear()
        return list(self._released)
