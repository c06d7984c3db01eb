"""Fault injection for tests: scripted failures, random error rates, latency, watch disruption.

Faults apply to resource requests arriving over HTTP (what an operator's client sees); the
in-process LocalAPI, used by the cluster simulator, is never affected. Every rule can be scoped to
a verb and/or a resource (and a subresource); ``None`` matches anything.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rook_py.framework.client import errors

from .storage import Store

_MESSAGES = {
    429: "Too many requests, please try again later.",
    500: "Internal error occurred: injected fault",
    503: "The server is currently unable to handle the request (injected fault)",
    504: "The server was unable to return a response in the time allotted, but may still be processing "
         "the request (injected fault)",
}


@dataclass
class _Scope:
    verb: str | None = None
    resource: str | None = None
    subresource: str | None = None

    def matches(self, verb: str, resource: str, subresource: str) -> bool:
        return ((self.verb is None or self.verb == verb)
                and (self.resource is None or self.resource == resource)
                and (self.subresource is None or self.subresource == subresource))


@dataclass
class _FailNext:
    scope: _Scope
    remaining: int
    code: int
    retry_after: float | None
    message: str | None


def make_error(code: int, retry_after: float | None = None, message: str | None = None) -> errors.ApiError:
    """The ApiError a real server would answer with ``code`` (Retry-After on 429 by default)."""
    if code == 429 and retry_after is None:
        retry_after = 1
    status: dict[str, Any] = {"message": message or _MESSAGES.get(code, f"injected fault ({code})"), "code": code}
    err = errors.from_status(status, code, retry_after=retry_after)
    if retry_after is not None:
        err.details["retryAfterSeconds"] = max(1, math.ceil(retry_after))
    return err


class Faults:
    """The fault plan of one APIServer. Thread-safe."""

    def __init__(self, store: Store, seed: int | None = None) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._random = random.Random(seed)
        self._fail_next: list[_FailNext] = []
        self._rates: list[tuple[_Scope, dict[int, float]]] = []
        self._latency: list[tuple[_Scope, float]] = []
        self._stalled_until = 0.0
        self._stall_changed = threading.Condition(self._lock)

    # -- configuration ------------------------------------------------------------------------

    def fail_next(self, count: int = 1, code: int = 500, *, verb: str | None = None, resource: str | None = None,
                  subresource: str | None = None, retry_after: float | None = None,
                  message: str | None = None) -> None:
        """Fail the next ``count`` matching requests with ``code`` (before they touch storage)."""
        if count < 1:
            raise ValueError("count must be at least 1")
        with self._lock:
            self._fail_next.append(_FailNext(_Scope(verb, resource, subresource), count, code, retry_after, message))

    def set_error_rates(self, rates: Mapping[int | str, float], *, verb: str | None = None,
                        resource: str | None = None, subresource: str | None = None) -> None:
        """Fail matching requests at random: ``{503: 0.1, 500: 0.05}`` (rates add up, at most 1)."""
        parsed = {int(code): float(rate) for code, rate in rates.items()}
        if any(r < 0 for r in parsed.values()) or sum(parsed.values()) > 1:
            raise ValueError("error rates must be non-negative and sum to at most 1")
        with self._lock:
            self._rates.append((_Scope(verb, resource, subresource), parsed))

    def set_latency(self, seconds: float, *, verb: str | None = None, resource: str | None = None,
                    subresource: str | None = None) -> None:
        """Delay matching requests by ``seconds`` before they are served."""
        if seconds < 0:
            raise ValueError("latency must be non-negative")
        with self._lock:
            self._latency.append((_Scope(verb, resource, subresource), seconds))

    def close_watches(self) -> int:
        """End every open watch now (cleanly: clients see end of stream and re-watch)."""
        return self._store.close_watchers()

    def compact(self) -> int:
        """Forget the event history: resuming a watch or list from an older rv answers 410."""
        return self._store.compact()

    def stall_watches(self, seconds: float | None = None) -> None:
        """Open watches send nothing (connection kept open) for ``seconds``, or until reset."""
        with self._lock:
            self._stalled_until = math.inf if seconds is None else time.monotonic() + seconds
            self._stall_changed.notify_all()

    def reset(self) -> None:
        """Clear every rule and end any stall."""
        with self._lock:
            self._fail_next.clear()
            self._rates.clear()
            self._latency.clear()
            self._stalled_until = 0.0
            self._stall_changed.notify_all()

    # -- used by the server -------------------------------------------------------------------

    def latency_for(self, verb: str, resource: str, subresource: str) -> float:
        with self._lock:
            return sum(s for scope, s in self._latency if scope.matches(verb, resource, subresource))

    def error_for(self, verb: str, resource: str, subresource: str) -> errors.ApiError | None:
        """The injected error for this request, if any (consumes one ``fail_next`` count)."""
        with self._lock:
            for rule in self._fail_next:
                if rule.scope.matches(verb, resource, subresource):
                    rule.remaining -= 1
                    if rule.remaining <= 0:
                        self._fail_next.remove(rule)
                    return make_error(rule.code, rule.retry_after, rule.message)
            for scope, rates in self._rates:
                if not scope.matches(verb, resource, subresource):
                    continue
                draw = self._random.random()
                for code, rate in sorted(rates.items()):
                    if draw < rate:
                        return make_error(code)
                    draw -= rate
        return None

    def wait_while_stalled(self, stop: threading.Event | None = None) -> None:
        """Block a watch stream while a stall is in force (wakes on reset or expiry)."""
        with self._lock:
            while (stop is None or not stop.is_set()):
                remaining = self._stalled_until - time.monotonic()
                if remaining <= 0:
                    return
                self._stall_changed.wait(min(remaining, 0.5))

    def stalled(self) -> bool:
        with self._lock:
            return self._stalled_until > time.monotonic()
