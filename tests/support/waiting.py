"""Bounded polling for tests that wait on threads, servers and processes.

One helper instead of a loop per test module, so every wait has the same guarantees: it is bounded,
it looks at the condition at least once after the deadline (a slow machine is not a failure if the
condition holds by then), and a timeout says what was awaited and what the last attempt saw.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(fn: Callable[[], T | None], timeout: float = 15.0, *, interval: float = 0.02,
               ignore: tuple[type[BaseException], ...] = (), what: str = "condition") -> T:
    """Call ``fn`` until it returns something truthy, and return that value.

    An exception of a type in ``ignore`` counts as "not yet" (a 404 before a controller has created
    an object, a refused connection before a server listens); any other exception propagates at
    once, so a probe can end the wait early by raising. ``fn`` runs at least once, and once more
    after ``timeout`` seconds have passed before the wait gives up with an ``AssertionError`` naming
    ``what`` and the outcome of the last attempt (chained to the last tolerated exception, if any).
    """
    deadline = time.monotonic() + timeout
    while True:
        # Read the clock before the attempt so the attempt that ends the wait began at or after the
        # deadline: the condition always gets its full ``timeout``.
        expired = time.monotonic() >= deadline
        last_error: BaseException | None = None
        try:
            value = fn()
        except ignore as err:
            last_error, value = err, None
        if value:
            return value
        if expired:
            last = f"last error: {last_error!r}" if last_error is not None else f"last value: {value!r}"
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; {last}") from last_error
        time.sleep(interval)
