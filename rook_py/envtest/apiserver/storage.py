"""The emulator's versioned object store: one global resourceVersion, a history ring, watchers.

It plays the part etcd plus the watch cache play for kube-apiserver:

* Every committed change gets the next value of ONE monotonic counter, shared by all resources
  (etcd's revision), and that value becomes the object's ``metadata.resourceVersion``.
* Stored objects are never mutated after commit: an update stores a new dict. Readers may therefore
  hand stored dicts to a serialiser without copying them, as long as they do not change them.
* The last ``history_size`` events are kept in a ring. A watch or a paginated list may resume from
  any resourceVersion still covered by the ring; anything older is "compacted" and answers 410
  Expired, as the watch cache does (staging/src/k8s.io/apiserver/pkg/storage/cacher/watch_cache.go).
* Watchers and subscribers are fed under the store lock, so every consumer sees events in commit
  order, but consumers never *run* under the lock: they drain their own queues on their own threads.

The store knows nothing about Kubernetes semantics (defaults, validation, finalizers); the verbs in
``local.py`` implement those on top of :meth:`Store.locked` transactions.
"""

from __future__ import annotations

import json
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]
StorageKey = tuple[str, str]            # (group, resource): where a resource's objects live
ObjectKey = tuple[str, str]             # (namespace or "", name)

ADDED = "ADDED"
MODIFIED = "MODIFIED"
DELETED = "DELETED"


def dumps(obj: Any) -> bytes:
    """Compact JSON, the one serialiser of the emulator (no spaces, UTF-8)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(eq=False)
class Event:
    """One committed change. ``prev`` is the object before the change (None for ADDED).

    ``obj`` is the stored object after the change, or for DELETED the last state (carrying the
    deletion's resourceVersion, as kube-apiserver sends it).
    """

    rv: int
    type: str
    skey: StorageKey
    obj: JSON
    prev: JSON | None
    _line: bytes | None = field(default=None, repr=False)

    @property
    def namespace(self) -> str:
        ns: str = self.obj.get("metadata", {}).get("namespace") or ""
        return ns

    def line(self) -> bytes:
        """The watch frame ``{"type":...,"object":...}\\n``, serialised once for every watcher.

        The object's apiVersion is the one it was stored with; watchers reading through another
        served version re-serialise (rare: only multi-version CRDs).
        """
        if self._line is None:  # benign race: two threads may both compute identical bytes
            self._line = b'{"type":"' + self.type.encode() + b'","object":' + dumps(self.obj) + b"}\n"
        return self._line


class Watcher:
    """A consumer of events for one storage key, fed under the store lock, drained by its owner.

    ``queue`` yields :class:`Event` objects, or ``None`` once the watcher has been closed (by the
    consumer, by a fault "close every watch", or by the server stopping).
    """

    def __init__(self, store: Store, skey: StorageKey, namespace: str | None) -> None:
        self.store = store
        self.skey = skey
        self.namespace = namespace
        self.queue: queue.SimpleQueue[Event | None] = queue.SimpleQueue()
        self.closed = False

    def wants(self, event: Event) -> bool:
        return event.skey == self.skey and (not self.namespace or event.namespace == self.namespace)

    def close(self) -> None:
        """Stop the watcher; idempotent. The consumer sees ``None`` after any queued events."""
        self.store._remove_watcher(self)


class Store:
    """Objects by storage key, the global resourceVersion counter and the event history.

    Invariants (hold whenever the lock is free):
    * ``rv`` is the resourceVersion of the newest committed event (or the initial value).
    * ``history`` holds events with strictly increasing rv; every event with rv > ``compacted_rv``
      is in it. A resume from ``N`` is possible iff ``N >= compacted_rv``.
    """

    def __init__(self, history_size: int = 10_000, initial_rv: int = 1) -> None:
        if history_size < 1:
            raise ValueError("history_size must be at least 1")
        self.lock = threading.RLock()
        self.rv = initial_rv
        self.compacted_rv = initial_rv
        self.history: deque[Event] = deque(maxlen=history_size)
        self._objects: dict[StorageKey, dict[ObjectKey, JSON]] = {}
        # The same objects per namespace: a namespaced list (the simulated cluster lists a
        # namespace's pods per service and per workload) then scans its namespace, not the whole
        # kind. Invariant: put/remove/drop_storage keep it equal to ``_objects``, grouped by key[0].
        self._by_namespace: dict[StorageKey, dict[str, dict[ObjectKey, JSON]]] = {}
        self._watchers: set[Watcher] = set()
        self._sinks: list[Callable[[Event], None]] = []

    # -- transactions ---------------------------------------------------------------------------

    @contextmanager
    def locked(self) -> Iterator[Store]:
        with self.lock:
            yield self

    def next_rv(self) -> int:
        """Reserve the next resourceVersion; call with the lock held, then commit with it."""
        self.rv += 1
        return self.rv

    def get(self, skey: StorageKey, okey: ObjectKey) -> JSON | None:
        return self._objects.get(skey, {}).get(okey)

    def items(self, skey: StorageKey) -> dict[ObjectKey, JSON]:
        """The live mapping of one storage key; callers must hold the lock while using it."""
        return self._objects.setdefault(skey, {})

    def items_in(self, skey: StorageKey, namespace: str) -> dict[ObjectKey, JSON]:
        """The live mapping of one storage key's objects in ``namespace`` (hold the lock)."""
        return self._by_namespace.get(skey, {}).get(namespace) or {}

    def put(self, skey: StorageKey, okey: ObjectKey, obj: JSON, rv: int) -> Event:
        """Store ``obj`` (whose resourceVersion is already ``rv``) and publish ADDED/MODIFIED."""
        bucket = self._objects.setdefault(skey, {})
        prev = bucket.get(okey)
        bucket[okey] = obj
        self._by_namespace.setdefault(skey, {}).setdefault(okey[0], {})[okey] = obj
        return self._publish(Event(rv, MODIFIED if prev is not None else ADDED, skey, obj, prev))

    def remove(self, skey: StorageKey, okey: ObjectKey, last: JSON, rv: int) -> Event:
        """Remove the object and publish DELETED carrying ``last`` (resourceVersion ``rv``)."""
        prev = self._objects.get(skey, {}).pop(okey, None)
        namespaces = self._by_namespace.get(skey, {})
        in_ns = namespaces.get(okey[0])
        if in_ns is not None:
            in_ns.pop(okey, None)
            if not in_ns:
                del namespaces[okey[0]]  # a deleted namespace leaves no empty bucket behind
        return self._publish(Event(rv, DELETED, skey, last, prev))

    def drop_storage(self, skey: StorageKey) -> None:
        """Forget a storage key once it has been emptied (a deleted CRD)."""
        self._objects.pop(skey, None)
        self._by_namespace.pop(skey, None)

    def _publish(self, event: Event) -> Event:
        if len(self.history) == self.history.maxlen:
            self.compacted_rv = self.history[0].rv
        self.history.append(event)
        for watcher in self._watchers:
            if watcher.wants(event):
                watcher.queue.put(event)
        for sink in self._sinks:
            sink(event)
        return event

    # -- history --------------------------------------------------------------------------------

    def events_since(self, since: int, skey: StorageKey | None = None) -> list[Event] | None:
        """Events with rv > ``since`` (for ``skey`` when given), oldest first; None if compacted.

        Walks backwards from the newest event because resumes are almost always recent.
        """
        if since < self.compacted_rv:
            return None
        out: list[Event] = []
        for event in reversed(self.history):
            if event.rv <= since:
                break
            if skey is None or event.skey == skey:
                out.append(event)
        out.reverse()
        return out

    def snapshot(self, skey: StorageKey, at_rv: int) -> dict[ObjectKey, JSON] | None:
        """The objects of ``skey`` as they were at ``at_rv`` (etcd-style consistent read).

        Rebuilt from the current state by undoing newer events; None when ``at_rv`` is compacted.
        """
        newer = self.events_since(at_rv, skey)
        if newer is None:
            return None
        state = dict(self._objects.get(skey, {}))
        for event in reversed(newer):
            meta = event.obj.get("metadata", {})
            okey = (meta.get("namespace") or "", meta.get("name", ""))
            if event.prev is None:
                state.pop(okey, None)
            else:
                state[okey] = event.prev
        return state

    def compact(self) -> int:
        """Drop the whole history (a fault); resumes from any older rv now get 410. Returns rv."""
        with self.lock:
            self.history.clear()
            self.compacted_rv = self.rv
            return self.rv

    # -- consumers ------------------------------------------------------------------------------

    def add_watcher(self, skey: StorageKey, namespace: str | None) -> Watcher:
        """Register a watcher; call with the lock held so that no event can slip in between."""
        watcher = Watcher(self, skey, namespace)
        self._watchers.add(watcher)
        return watcher

    def _remove_watcher(self, watcher: Watcher) -> None:
        with self.lock:
            if watcher.closed:
                return
            watcher.closed = True
            self._watchers.discard(watcher)
            watcher.queue.put(None)

    def close_watchers(self) -> int:
        """Close every open watcher; each consumer ends its stream cleanly. Returns how many."""
        with self.lock:
            watchers = list(self._watchers)
        for watcher in watchers:
            watcher.close()
        return len(watchers)

    def watcher_count(self) -> int:
        with self.lock:
            return len(self._watchers)

    def add_sink(self, sink: Callable[[Event], None]) -> None:
        """Call ``sink(event)`` under the lock for every commit; it must only enqueue."""
        with self.lock:
            self._sinks.append(sink)
