"""Debug-mode detection of callers mutating cached objects (client-go tools/cache/mutation_detector.go).

Objects handed out by the cache are shared, not copied (copying every read would double the
cost of the hot path). A caller that changes one corrupts every other reader's view and the
informer's diffing. In debug mode the cache keeps a pristine deep copy of each stored object
next to the shared one and compares them: on every write that replaces the object, on demand
(``check``) and, in an informer, periodically. Enable it with ``ROOK_CACHE_MUTATION_DETECTOR=true``
or a constructor flag. It costs a deep copy per write, so it is for tests and debugging only.
"""

from __future__ import annotations

import os
import pickle
import threading
from collections.abc import Callable, Iterable
from typing import Any

from rook_py.framework.logging import get_logger

JSON = dict[str, Any]
ENV_VAR = "ROOK_CACHE_MUTATION_DETECTOR"

log = get_logger(__name__)


def mutation_detection_enabled() -> bool:
    """True when ``ROOK_CACHE_MUTATION_DETECTOR`` is set to a true value."""
    return os.environ.get(ENV_VAR, "").strip().lower() in ("1", "true", "yes", "on")


class CacheMutationError(RuntimeError):
    """A cached object was changed in place by a caller. ``keys`` names the objects."""

    def __init__(self, keys: list[str]) -> None:
        super().__init__(
            "cached objects were mutated in place (cache objects are read-only; deep-copy before "
            f"changing them): {', '.join(sorted(keys))}")
        self.keys = keys


def _deep_copy(obj: JSON) -> JSON:
    # Objects are plain JSON data; a pickle round trip copies them several times faster than
    # copy.deepcopy, which matters when every cache write is copied.
    copied: JSON = pickle.loads(pickle.dumps(obj, pickle.HIGHEST_PROTOCOL))
    return copied


class MutationDetector:
    """Keeps a pristine copy per key and reports keys whose shared object no longer matches.

    ``report`` is called with each newly found error (default: log it). Found keys accumulate in
    ``mutated`` until ``check`` raises them. Thread-safe.
    """

    def __init__(self, report: Callable[[CacheMutationError], None] | None = None) -> None:
        self._report = report or self._log
        self._lock = threading.Lock()
        self._pristine: dict[str, JSON] = {}
        self.mutated: set[str] = set()

    @staticmethod
    def _log(err: CacheMutationError) -> None:
        log.error("cache mutation detected", keys=err.keys)

    def track(self, key: str, obj: JSON) -> None:
        """Remember ``obj`` as the state stored under ``key``."""
        copy = _deep_copy(obj)
        with self._lock:
            self._pristine[key] = copy

    def forget(self, key: str) -> None:
        with self._lock:
            self._pristine.pop(key, None)

    def verify(self, key: str, live: JSON | None) -> bool:
        """Compare the shared object about to be replaced or removed with its copy."""
        if live is None:
            return True
        with self._lock:
            pristine = self._pristine.get(key)
        if pristine is None or pristine == live:
            return True
        self._found([key])
        return False

    def scan(self, live: Iterable[tuple[str, JSON]]) -> list[str]:
        """Compare every ``(key, shared object)``; report and return the mutated keys."""
        with self._lock:
            pristine = dict(self._pristine)
        bad = [key for key, obj in live if key in pristine and pristine[key] != obj]
        if bad:
            self._found(bad)
        return bad

    def check(self, live: Iterable[tuple[str, JSON]]) -> None:
        """Scan, then raise ``CacheMutationError`` for everything found so far (and reset)."""
        self.scan(live)
        with self._lock:
            found, self.mutated = sorted(self.mutated), set()
        if found:
            raise CacheMutationError(found)

    def _found(self, keys: list[str]) -> None:
        with self._lock:
            new = [k for k in keys if k not in self.mutated]
            self.mutated.update(keys)
        if new:
            self._report(CacheMutationError(new))
