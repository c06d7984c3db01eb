"""Sources: where a controller's events come from.

``Kind`` (controller-runtime pkg/source/source.go, internal/source/kind.go) attaches to a shared
informer: informer callbacks -> predicates -> event handler -> workqueue. ``Channel`` lets code
outside the cluster (a timer, a storage daemon's callback) inject generic events.

A source's callbacks run on the informer's per-handler delivery thread. A handler or predicate
that raises must not stop delivery for the next events, so errors are logged and swallowed here.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any, Protocol

from rook_py.framework.controller.handler import EventHandler, Queue
from rook_py.framework.controller.predicates import Predicate
from rook_py.framework.logging import get_logger

JSON = dict[str, Any]
log = get_logger(__name__)


class Informer(Protocol):
    """The part of cache.SharedIndexInformer a source uses."""

    def add_event_handler(self, handler: Any, resync_period: float | None = None) -> Any: ...

    def has_synced(self) -> bool: ...


class Source(Protocol):
    """Something a controller starts with its queue; it feeds the queue until the process stops."""

    def start(self, queue: Queue) -> None: ...

    def has_synced(self) -> bool: ...


def _unwrap(obj: Any) -> JSON | None:
    """The object of a delete, unwrapping cache.DeletedFinalStateUnknown (duck-typed on ``.obj``)."""
    if isinstance(obj, dict):
        return obj
    inner = getattr(obj, "obj", None)
    return inner if isinstance(inner, dict) else None


class _InformerAdapter:
    """cache.ResourceEventHandler -> predicates -> EventHandler, bound to one queue."""

    def __init__(self, handler: EventHandler, predicates: Sequence[Predicate], queue: Queue,
                 description: str) -> None:
        self._handler, self._predicates, self._queue = handler, tuple(predicates), queue
        self._description = description

    def on_add(self, obj: JSON, is_initial_list: bool = False) -> None:
        try:
            if all(p.create(obj) for p in self._predicates):
                self._handler.create(obj, self._queue)
        except Exception:
            log.exception("event handler failed", source=self._description, event_type="create")

    def on_update(self, old: JSON, new: JSON) -> None:
        try:
            if all(p.update(old, new) for p in self._predicates):
                self._handler.update(old, new, self._queue)
        except Exception:
            log.exception("event handler failed", source=self._description, event_type="update")

    def on_delete(self, obj: Any) -> None:
        unwrapped = _unwrap(obj)
        if unwrapped is None:
            log.warning("delete event without an object", source=self._description)
            return
        try:
            if all(p.delete(unwrapped) for p in self._predicates):
                self._handler.delete(unwrapped, self._queue)
        except Exception:
            log.exception("event handler failed", source=self._description, event_type="delete")


class Kind:
    """Events of one kind, from a shared informer (usually ``manager.cache.informer(...)``)."""

    def __init__(self, informer: Informer, handler: EventHandler, predicates: Sequence[Predicate] = (),
                 *, description: str = "") -> None:
        self.informer = informer
        self.handler = handler
        self.predicates = tuple(predicates)
        self.description = description or type(handler).__name__
        self._started = False
        self._registration: Any = None

    def start(self, queue: Queue) -> None:
        """Registers the handler; a late registration gets the cache's contents as initial adds."""
        if self._started:
            raise RuntimeError(f"source {self.description} already started")
        self._started = True
        self._registration = self.informer.add_event_handler(
            _InformerAdapter(self.handler, self.predicates, queue, self.description))

    def wait_for_sync(self, timeout: float) -> bool:
        """Block until ``has_synced`` (woken by the informer and the handler's delivery thread
        when the registration supports it; otherwise polled); False on timeout."""
        deadline = time.monotonic() + timeout
        wait = getattr(self._registration, "wait_for_sync", None)
        if callable(wait):
            return bool(wait(timeout))
        while not self.has_synced():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def has_synced(self) -> bool:
        """The informer has listed, and this handler has received that initial list.

        The registration's own sync state matters for a handler added to a running informer:
        the informer synced long ago, but this handler's initial adds may still be in flight.
        """
        registration_synced = getattr(self._registration, "has_synced", None)
        if callable(registration_synced):
            return bool(registration_synced())
        return bool(self.informer.has_synced())

    def __repr__(self) -> str:
        return f"Kind({self.description})"


class Channel:
    """Generic events pushed by code: ``trigger(obj)`` runs predicates' ``generic`` then the handler.

    Triggers before ``start`` are held and delivered at start, so no event is lost to ordering.
    """

    def __init__(self, handler: EventHandler, predicates: Sequence[Predicate] = ()) -> None:
        self.handler = handler
        self.predicates = tuple(predicates)
        self._lock = threading.Lock()
        self._queue: Queue | None = None
        self._pending: list[JSON] = []

    def start(self, queue: Queue) -> None:
        with self._lock:
            self._queue = queue
            pending, self._pending = self._pending, []
        for obj in pending:
            self._deliver(obj, queue)

    def trigger(self, obj: JSON) -> None:
        with self._lock:
            queue = self._queue
            if queue is None:
                self._pending.append(obj)
                return
        self._deliver(obj, queue)

    def _deliver(self, obj: JSON, queue: Queue) -> None:
        if all(p.generic(obj) for p in self.predicates):
            self.handler.generic(obj, queue)

    def has_synced(self) -> bool:
        return True
