"""Client-side request throttling: a token bucket with a steady rate and a burst.

The behaviour of client-go's ``flowcontrol.NewTokenBucketRateLimiter``
(k8s.io/client-go/util/flowcontrol/throttle.go): the bucket starts full with ``burst`` tokens,
refills at ``qps`` tokens per second up to ``burst``, and ``accept()`` blocks until a token is
available. Callers reserve a token under the lock and sleep outside it, so waiting callers are
served in reservation order and the lock is never held while sleeping.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["TokenBucket"]


class TokenBucket:
    """Thread-safe token bucket.

    Invariant: over any interval of length ``t`` at most ``burst + qps * t`` callers are let
    through, because every caller takes exactly one token (possibly on credit) and credit is
    only repaid by the refill.
    """

    def __init__(self, qps: float, burst: int, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if qps <= 0:
            raise ValueError("qps must be > 0")
        if burst < 1:
            raise ValueError("burst must be >= 1")
        self.qps = float(qps)
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        # May go negative: a negative balance is a queue of callers that already reserved
        # a future token and are sleeping until it exists.
        self._tokens = float(burst)
        self._last = clock()

    def _advance(self, now: float) -> None:
        elapsed = now - self._last
        if elapsed > 0:
            self._tokens = min(float(self.burst), self._tokens + elapsed * self.qps)
            self._last = now

    def reserve(self) -> float:
        """Take a token now (possibly on credit) and return how long to wait before using it."""
        with self._lock:
            self._advance(self._clock())
            self._tokens -= 1.0
            if self._tokens >= 0:
                return 0.0
            return -self._tokens / self.qps

    def try_accept(self) -> bool:
        """Take a token only if one is available right now."""
        with self._lock:
            self._advance(self._clock())
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            return False

    def accept(self) -> float:
        """Block until a token is available; returns the time spent waiting."""
        delay = self.reserve()
        if delay > 0:
            self._sleep(delay)
        return delay
