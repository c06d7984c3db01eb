"""Injectable clocks, so delay and rate-limit behaviour can be tested without sleeping.

The pattern follows k8s.io/utils/clock (``Clock`` / ``FakeClock``): production code reads time
through a clock and blocks through it; a test steps a fake clock and the blocked thread wakes
to re-evaluate against the new fake time.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    """Monotonic time source plus a way to block on a condition until a (clock) deadline."""

    def now(self) -> float:
        """Seconds on a monotonic scale; only differences are meaningful."""
        ...

    def wait(self, cond: threading.Condition, timeout: float | None) -> None:
        """Block on ``cond`` (whose lock the caller holds) for up to ``timeout`` clock seconds.

        May return early (spurious wake-up or notify); callers re-check their predicate.
        """
        ...

    def register(self, cond: threading.Condition) -> None:
        """Announce that a thread will ``wait`` on ``cond``; a fake clock notifies it on ``step``."""
        ...

    def unregister(self, cond: threading.Condition) -> None:
        ...


class RealClock:
    """The process's monotonic clock."""

    def now(self) -> float:
        return time.monotonic()

    def wait(self, cond: threading.Condition, timeout: float | None) -> None:
        cond.wait(timeout)

    def register(self, cond: threading.Condition) -> None:
        """Nothing to do: real waits time out by themselves."""

    def unregister(self, cond: threading.Condition) -> None:
        """Nothing to do."""


class FakeClock:
    """A clock that only moves when ``step`` or ``set`` is called.

    Invariant: every condition registered here is notified (under its own lock) after each time
    change, so a waiter that computed its deadline against the old time cannot miss the step: it
    holds the condition's lock until it is inside ``wait``, and ``step`` must take that lock to
    notify.
    """

    def __init__(self, start: float = 1_000.0) -> None:
        self._now = start
        self._lock = threading.Lock()
        self._conds: list[threading.Condition] = []

    def now(self) -> float:
        with self._lock:
            return self._now

    def wait(self, cond: threading.Condition, timeout: float | None) -> None:
        # Fake time never passes on its own, so the only useful wake-ups are step() and notify().
        # A short real-time bound keeps a forgotten registration from hanging a test forever.
        cond.wait(1.0)

    def register(self, cond: threading.Condition) -> None:
        with self._lock:
            self._conds.append(cond)

    def unregister(self, cond: threading.Condition) -> None:
        with self._lock:
            if cond in self._conds:
                self._conds.remove(cond)

    def step(self, seconds: float) -> None:
        """Advance fake time and wake every registered waiter."""
        with self._lock:
            self._now += seconds
            conds = list(self._conds)
        for cond in conds:
            with cond:
                cond.notify_all()

    def set(self, now: float) -> None:
        with self._lock:
            delta = now - self._now
        self.step(delta)
