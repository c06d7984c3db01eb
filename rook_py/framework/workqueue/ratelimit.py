"""Rate limiters and the rate-limiting queue (client-go util/workqueue/default_rate_limiters.go,
rate_limiting_queue.go).

A limiter answers "how long should this item wait before its next attempt?" (``when``), is told
when an item succeeded (``forget``) and counts failures (``num_requeues``). Only per-item
limiters keep per-item state; ``forget`` must be called when processing succeeds, or the
per-item backoff keeps growing and the failure map keeps the key forever.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

from rook_py.framework.workqueue.clock import Clock, RealClock
from rook_py.framework.workqueue.delaying import DelayingQueue
from rook_py.framework.workqueue.queue import Item


class RateLimiter(Protocol):
    def when(self, item: Item) -> float:
        """Seconds ``item`` should wait before being processed again; records one failure."""
        ...

    def forget(self, item: Item) -> None:
        """Stop tracking ``item`` (it succeeded)."""
        ...

    def num_requeues(self, item: Item) -> int:
        """Failures recorded for ``item`` since it was last forgotten."""
        ...


class _PerItemFailures:
    """The failure count per item that the per-item limiters share (thread-safe).

    ``forget`` and ``num_requeues`` are the ``RateLimiter`` methods; subclasses implement ``when``
    on top of ``_record_failure``.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failures: dict[Any, int] = {}

    def _record_failure(self, item: Item) -> int:
        """Count one more failure of ``item``; returns the failures recorded *before* this one."""
        with self._lock:
            previous = self._failures.get(item, 0)
            self._failures[item] = previous + 1
        return previous

    def forget(self, item: Item) -> None:
        with self._lock:
            self._failures.pop(item, None)

    def num_requeues(self, item: Item) -> int:
        with self._lock:
            return self._failures.get(item, 0)


class ItemExponentialFailureRateLimiter(_PerItemFailures):
    """``base * 2**failures`` per item, capped at ``max_delay``: 5 ms, 10 ms, 20 ms ... 1000 s."""

    def __init__(self, base_delay: float = 0.005, max_delay: float = 1000.0) -> None:
        super().__init__()
        self.base_delay = base_delay
        self.max_delay = max_delay

    def when(self, item: Item) -> float:
        exp = self._record_failure(item)
        # Python ints do not overflow, but 2**exp gets huge; once past the cap stop computing it.
        if exp > 1023:
            return self.max_delay
        return min(self.base_delay * (2.0 ** exp), self.max_delay)


class ItemFastSlowRateLimiter(_PerItemFailures):
    """``fast_delay`` for the first ``max_fast_attempts`` failures of an item, then ``slow_delay``."""

    def __init__(self, fast_delay: float, slow_delay: float, max_fast_attempts: int) -> None:
        super().__init__()
        self.fast_delay = fast_delay
        self.slow_delay = slow_delay
        self.max_fast_attempts = max_fast_attempts

    def when(self, item: Item) -> float:
        attempt = self._record_failure(item) + 1
        return self.fast_delay if attempt <= self.max_fast_attempts else self.slow_delay


class BucketRateLimiter:
    """An overall token bucket (golang.org/x/time/rate semantics): ``qps`` refill, ``burst`` size.

    ``when`` reserves one token; when the bucket is empty the reservation goes into debt and the
    returned delay is the time until that token exists. It does not track items, so ``forget`` is
    a no-op and ``num_requeues`` is 0.
    """

    def __init__(self, qps: float = 10.0, burst: int = 100, *, clock: Clock | None = None) -> None:
        if qps <= 0 or burst <= 0:
            raise ValueError("qps and burst must be positive")
        self.qps = qps
        self.burst = burst
        self._clock: Clock = clock or RealClock()
        self._lock = threading.Lock()
        self._tokens = float(burst)
        self._last = self._clock.now()

    def when(self, item: Item) -> float:
        with self._lock:
            now = self._clock.now()
            elapsed = max(0.0, now - self._last)
            self._last = now
            self._tokens = min(float(self.burst), self._tokens + elapsed * self.qps)
            self._tokens -= 1.0
            return 0.0 if self._tokens >= 0 else -self._tokens / self.qps

    def forget(self, item: Item) -> None:
        """Not per item."""

    def num_requeues(self, item: Item) -> int:
        return 0


class MaxOfRateLimiter:
    """The longest delay of several limiters; every limiter records every failure."""

    def __init__(self, *limiters: RateLimiter) -> None:
        if not limiters:
            raise ValueError("MaxOfRateLimiter needs at least one limiter")
        self.limiters = limiters

    def when(self, item: Item) -> float:
        return max(limiter.when(item) for limiter in self.limiters)

    def forget(self, item: Item) -> None:
        for limiter in self.limiters:
            limiter.forget(item)

    def num_requeues(self, item: Item) -> int:
        return max(limiter.num_requeues(item) for limiter in self.limiters)


def default_controller_rate_limiter(*, clock: Clock | None = None) -> MaxOfRateLimiter:
    """client-go's DefaultControllerRateLimiter: per-item 5 ms..1000 s, overall 10 qps burst 100."""
    return MaxOfRateLimiter(ItemExponentialFailureRateLimiter(0.005, 1000.0),
                            BucketRateLimiter(10.0, 100, clock=clock))


class RateLimitingQueue(DelayingQueue):
    """A delaying queue whose retries are paced by a ``RateLimiter``."""

    def __init__(self, rate_limiter: RateLimiter | None = None, name: str = "", *,
                 clock: Clock | None = None) -> None:
        super().__init__(name, clock=clock)
        self.rate_limiter: RateLimiter = rate_limiter or default_controller_rate_limiter(clock=clock)

    def add_rate_limited(self, item: Item) -> None:
        """Re-add ``item`` after the limiter's delay (records a failure)."""
        self.add_after(item, self.rate_limiter.when(item))

    def forget(self, item: Item) -> None:
        """Clear ``item``'s failure history; call it when processing succeeded."""
        self.rate_limiter.forget(item)

    def num_requeues(self, item: Item) -> int:
        return self.rate_limiter.num_requeues(item)
