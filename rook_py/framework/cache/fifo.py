"""DeltaFIFO (client-go tools/cache/delta_fifo.go).

A FIFO of object keys where each key carries the ordered list of changes ("deltas") seen for
that object since it was last popped. Consumers therefore see every transition of an object in
order, including its deletion, while the queue holds each key once.

* ``replace`` (a relist) emits ``Replaced`` for every listed object and, for every object the
  consumer still knows (``known_objects``, the informer's indexer) or that is still queued but is
  absent from the list, a ``Deleted`` whose object is ``DeletedFinalStateUnknown`` carrying the
  last known state: the deletion happened while the watch was down.
* ``resync`` emits ``Sync`` for every known object that has no pending deltas.
* Two consecutive ``Deleted`` deltas collapse into one (keeping the one with real final state).
* ``pop`` calls the process function *under the FIFO's lock*, as client-go does, so that the
  consumer's store and the queue never disagree while ``replace``/``resync`` compute against it.
* ``has_synced`` is True once the first ``replace`` (or add/update/delete) happened and every key
  from that first batch has been popped.
* ``pop_batch`` processes several keys per lock round trip (each still on its own, in order), and
  ``replace_initial`` lets an informer take its very first list straight into an empty cache;
  both only remove per-object overhead from the hot path, not change what consumers observe.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from enum import StrEnum
from typing import Any, NamedTuple, Protocol

from rook_py.framework.cache.store import DeletedFinalStateUnknown, KeyFunc, meta_namespace_key

JSON = dict[str, Any]
Transform = Callable[[JSON], JSON]


class DeltaType(StrEnum):
    ADDED = "Added"
    UPDATED = "Updated"
    DELETED = "Deleted"
    REPLACED = "Replaced"  # emitted by a relist
    SYNC = "Sync"  # emitted by a periodic resync


class Delta(NamedTuple):
    type: DeltaType
    object: Any  # JSON, or DeletedFinalStateUnknown for a Deleted inferred by a relist


Deltas = list[Delta]


class KnownObjects(Protocol):
    """What the FIFO needs of the consumer's store (the indexer)."""

    def list_keys(self) -> list[str]: ...

    def get_by_key(self, key: str) -> JSON | None: ...


class FIFOClosedError(Exception):
    """``pop`` on a closed, empty FIFO."""


ProcessFunc = Callable[[Deltas, bool], None]
KeyedProcessFunc = Callable[[str, Deltas, bool], None]


class DeltaFIFO:
    def __init__(self, *, key_func: KeyFunc = meta_namespace_key,
                 known_objects: KnownObjects | None = None,
                 emit_delta_type_replaced: bool = True,
                 transform: Transform | None = None) -> None:
        """``transform`` runs once per object entering the FIFO from the server (not for ``Sync``
        nor for ``DeletedFinalStateUnknown``, whose objects come from the cache already
        transformed). Without ``emit_delta_type_replaced`` a relist emits ``Sync`` instead of
        ``Replaced``, as old client-go did."""
        self._cond = threading.Condition(threading.Lock())
        self._items: dict[str, Deltas] = {}
        self._queue: deque[str] = deque()
        self._key_func = key_func
        self._known = known_objects
        self._replaced_type = DeltaType.REPLACED if emit_delta_type_replaced else DeltaType.SYNC
        self._transform = transform
        self._populated = False
        self._initial_population_count = 0
        self._closed = False
        self._synced = threading.Event()  # set once, when has_synced() first becomes True

    @property
    def lock(self) -> threading.Condition:
        """Held while deltas are processed; hold it to see the consumer's store stand still."""
        return self._cond

    # -- producers (the reflector) ------------------------------------------------------------

    def add(self, obj: JSON) -> None:
        with self._cond:
            self._mark_populated()
            self._queue_action(DeltaType.ADDED, obj)
            self._cond.notify()

    def update(self, obj: JSON) -> None:
        with self._cond:
            self._mark_populated()
            self._queue_action(DeltaType.UPDATED, obj)
            self._cond.notify()

    def delete(self, obj: Any) -> None:
        """Queue a deletion, unless neither the consumer nor the queue knows the object (then a
        relist already accounted for it)."""
        key = self._key_func(obj)
        with self._cond:
            self._mark_populated()
            if key not in self._items and (self._known is None
                                           or self._known.get_by_key(key) is None):
                return
            self._queue_action(DeltaType.DELETED, obj)
            self._cond.notify()

    def replace(self, objs: list[JSON], resource_version: str | None = None) -> None:
        """A relist's result: ``Replaced`` for each object, then the deletions it implies."""
        with self._cond:
            keys: set[str] = set()
            replaced = self._replaced_type
            key_func, transform = self._key_func, self._transform
            items, queue = self._items, self._queue
            # _queue_action inlined: this loop runs once per listed object on every relist.
            for obj in objs:
                if transform is not None:
                    obj = transform(obj)
                key = key_func(obj)
                keys.add(key)
                deltas = items.get(key)
                if deltas is None:
                    items[key] = [Delta(replaced, obj)]
                    queue.append(key)
                else:
                    deltas.append(Delta(replaced, obj))

            queued_deletions = 0
            # Queued objects missing from the list: their deletion was missed.
            for key in [k for k in items if k not in keys]:
                newest = items[key][-1].object
                if isinstance(newest, DeletedFinalStateUnknown):
                    newest = newest.obj
                queued_deletions += 1
                self._queue_action(DeltaType.DELETED, DeletedFinalStateUnknown(key, newest))

            # Known (cached) objects missing from the list, with nothing queued for them.
            if self._known is not None:
                for key in self._known.list_keys():
                    if key in keys or items.get(key):
                        continue
                    last = self._known.get_by_key(key)
                    if last is None:
                        continue
                    queued_deletions += 1
                    self._queue_action(DeltaType.DELETED, DeletedFinalStateUnknown(key, last))

            if not self._populated:
                self._populated = True
                self._initial_population_count = len(keys) + queued_deletions
                if self._initial_population_count == 0:
                    self._synced.set()
            self._cond.notify_all()

    def replace_initial(self, objs: list[JSON], apply: Callable[[list[JSON]], None]) -> bool:
        """The first list, handed straight to the consumer: the fast path of an informer's start.

        Only when nothing was ever queued and the consumer knows no object (so a ``replace``
        could produce nothing but ``Replaced`` deltas that pop as adds): calls ``apply(objs)``
        under the lock, marks the FIFO populated and synced, and returns True. Otherwise does
        nothing and returns False; the caller then uses ``replace``. This skips a delta, a queue
        entry and a pop per object on the hot path; consumers observe the same adds.
        """
        with self._cond:
            if self._populated or self._items or (self._known is not None and self._known.list_keys()):
                return False
            apply(objs)
            self._populated = True
            self._initial_population_count = 0
            self._synced.set()
            self._cond.notify_all()
            return True

    def resync(self) -> None:
        """Queue ``Sync`` for every known object with no pending deltas."""
        if self._known is None:
            return
        with self._cond:
            for key in self._known.list_keys():
                if self._items.get(key):
                    continue
                obj = self._known.get_by_key(key)
                if obj is not None:
                    self._queue_action(DeltaType.SYNC, obj)
            self._cond.notify_all()

    def close(self) -> None:
        """Wake and end every ``pop``; queued deltas are abandoned."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    # -- consumer ------------------------------------------------------------------------------

    def pop(self, process: ProcessFunc, timeout: float | None = None) -> bool:
        """Pop the oldest key and call ``process(deltas, is_in_initial_list)`` under the lock.

        Returns False on timeout. Raises ``FIFOClosedError`` once closed. An exception from
        ``process`` propagates; the key's deltas are dropped (the next relist or resync repairs
        the consumer), as client-go does for anything but ErrRequeue.
        """
        return self.pop_batch(lambda _key, deltas, initial: process(deltas, initial), 1, timeout) > 0

    def pop_batch(self, process: KeyedProcessFunc, max_items: int = 256,
                  timeout: float | None = None) -> int:
        """``pop`` for up to ``max_items`` keys in one hold of the lock; ``process`` also gets the key.

        Each key is still processed on its own and in order, exactly as by repeated ``pop``
        calls; batching only saves the per-key lock round trip on the hot path (a relist of
        10,000 objects). Returns how many keys were processed, 0 on timeout. If ``process``
        raises, the keys after it stay queued.
        """
        with self._cond:
            while not self._queue:
                if self._closed:
                    raise FIFOClosedError("DeltaFIFO is closed")
                if not self._cond.wait(timeout) and timeout is not None and not self._queue:
                    if self._closed:
                        raise FIFOClosedError("DeltaFIFO is closed")
                    return 0
            queue, items = self._queue, self._items
            done = 0
            try:
                while queue and done < max_items:
                    key = queue.popleft()
                    in_initial_list = not (self._populated and self._initial_population_count == 0)
                    if self._initial_population_count > 0:
                        self._initial_population_count -= 1
                        if self._initial_population_count == 0:
                            self._synced.set()
                    deltas = items.pop(key, None)
                    done += 1
                    if deltas:  # always true while _queue and _items stay in step
                        process(key, deltas, in_initial_list)
            finally:
                if not items:
                    # A dict never shrinks its table; once the initial list has drained, drop
                    # the 10,000-slot table rather than keep it for the informer's lifetime.
                    self._items = {}
            return done

    def has_synced(self) -> bool:
        # Synced is a latch (populated only turns True, the initial count only falls to 0), and
        # ``_synced`` is set under the lock at the moment it first holds. Reading the Event is
        # lock-free: reconcilers ask on every cache read, and ``pop_batch`` holds the lock while
        # it processes a whole batch, so taking it here stalled every worker behind the informer.
        if self._synced.is_set():
            return True
        with self._cond:
            return self._has_synced_locked()

    def wait_synced(self, timeout: float | None = None) -> bool:
        """Block until ``has_synced`` is True; False on timeout."""
        return self._synced.wait(timeout)

    def is_closed(self) -> bool:
        with self._cond:
            return self._closed

    def list_keys(self) -> list[str]:
        with self._cond:
            return list(self._items)

    def get_by_key(self, key: str) -> Deltas | None:
        """A copy of the pending deltas for ``key``."""
        with self._cond:
            deltas = self._items.get(key)
            return list(deltas) if deltas else None

    def __len__(self) -> int:
        with self._cond:
            return len(self._queue)

    # -- internals ---------------------------------------------------------------------------

    def _mark_populated(self) -> None:
        if not self._populated:
            # An add/update/delete before any replace: nothing initial to wait for.
            self._populated = True
            if self._initial_population_count == 0:
                self._synced.set()

    def _has_synced_locked(self) -> bool:
        return self._populated and self._initial_population_count == 0

    def _queue_action(self, action: DeltaType, obj: Any) -> None:
        key = self._key_func(obj)
        if (self._transform is not None and action is not DeltaType.SYNC
                and not isinstance(obj, DeletedFinalStateUnknown)):
            obj = self._transform(obj)
        deltas = self._items.get(key)
        if deltas is None:
            # Callers notify consumers once per batch: notify() per object costs more than
            # the rest of the bookkeeping on a 10,000-object relist.
            self._items[key] = [Delta(action, obj)]
            self._queue.append(key)
            return
        deltas.append(Delta(action, obj))
        if action is DeltaType.DELETED and len(deltas) > 1 and deltas[-2].type is DeltaType.DELETED:
            # Two deletions in a row: keep the one that knows the real final state.
            last = deltas.pop()
            if not isinstance(last.object, DeletedFinalStateUnknown):
                deltas[-1] = last
