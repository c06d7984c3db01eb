"""Request counts by (User-Agent, verb, resource, subresource, HTTP code).

Tests use them to assert how a controller talks to the API: e.g. "the operator issued no update
when nothing changed", counted per client identity (``Client(user_agent=...)``).
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

StatKey = tuple[str, str, str, str, int]


class RequestStats:
    """Thread-safe counters; ``count`` sums every key that matches the given filters."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[StatKey] = Counter()

    def record(self, user_agent: str, verb: str, resource: str, subresource: str, code: int) -> None:
        with self._lock:
            self._counts[(user_agent, verb, resource, subresource, code)] += 1

    def count(self, *, user_agent: str | None = None, verb: str | None = None, resource: str | None = None,
              subresource: str | None = None, code: int | None = None) -> int:
        """Sum of matching requests. ``user_agent`` matches as a prefix (clients append versions)."""
        wanted = (verb, resource, subresource, code)
        with self._lock:
            return sum(n for key, n in self._counts.items()
                       if (user_agent is None or key[0].startswith(user_agent))
                       and all(w is None or w == k for w, k in zip(wanted, key[1:], strict=True)))

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return [{"userAgent": k[0], "verb": k[1], "resource": k[2], "subresource": k[3], "code": k[4],
                     "count": n} for k, n in sorted(self._counts.items())]

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()
