"""A work queue with client-go's guarantees (k8s.io/client-go/util/workqueue/queue.go).

Invariants, which are the reason this type exists rather than ``queue.Queue``:

* **Fair and deduplicated**: an item is in the FIFO at most once; adding an item already waiting
  is a no-op (it is "dirty").
* **Never processed concurrently**: while an item is being processed (between ``get`` and
  ``done``) it is not handed to another worker. Adding it meanwhile marks it dirty, and ``done``
  puts it back at the tail, so the change is processed once more after the current pass.
* ``get`` blocks until an item is available or the queue is shutting down *and empty*; items
  queued before shut-down are still handed out, so workers can drain.
* After ``shut_down`` further adds are ignored.

Items must be hashable. ``get(timeout)`` returns ``(None, False)`` when the timeout expires.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Hashable
from typing import Any

from rook_py.framework import metrics as m
from rook_py.framework.workqueue.clock import Clock, RealClock

Item = Hashable


class QueueMetrics:
    """Per-queue bookkeeping behind the ``workqueue_*`` metrics (client-go's defaultQueueMetrics).

    All methods are called with the owning queue's lock held, so neither the dicts nor the
    ``WorkqueueSeries`` need a lock of their own; the two scrape-time gauges take that lock
    themselves (the collector calls them without it).
    """

    def __init__(self, name: str, clock: Clock, lock: threading.Condition) -> None:
        self._clock = clock
        self._lock = lock
        self._series = m.WORKQUEUE.series(name, lock, self.unfinished_work, self.longest_running)
        self._queue_duration = self._series.queue_duration
        self._work_duration = self._series.work_duration
        self._add_times: dict[Item, float] = {}
        self._start_times: dict[Item, float] = {}

    def add(self, item: Item) -> None:
        series = self._series
        series.adds += 1
        series.depth += 1
        self._add_times.setdefault(item, self._clock.now())

    def get(self, item: Item) -> None:
        now = self._clock.now()
        self._series.depth -= 1
        self._start_times[item] = now
        added = self._add_times.pop(item, None)
        if added is not None:
            self._queue_duration.observe(now - added)

    def done(self, item: Item) -> None:
        started = self._start_times.pop(item, None)
        if started is not None:
            self._work_duration.observe(self._clock.now() - started)

    def retry(self) -> None:
        self._series.retries += 1

    def unfinished_work(self) -> float:
        with self._lock:
            now = self._clock.now()
            return sum(now - t for t in self._start_times.values())

    def longest_running(self) -> float:
        with self._lock:
            if not self._start_times:
                return 0.0
            return self._clock.now() - min(self._start_times.values())


class Queue:
    """client-go's ``workqueue.Type``: FIFO + dirty set + processing set, under one condition."""

    def __init__(self, name: str = "", *, clock: Clock | None = None) -> None:
        """``name`` labels the queue's metrics; an empty name records none (as in client-go)."""
        self.name = name
        self._clock: Clock = clock or RealClock()
        self._cond = threading.Condition(threading.Lock())
        self._queue: deque[Any] = deque()
        self._dirty: set[Any] = set()
        self._processing: set[Any] = set()
        self._shutting_down = False
        self._drain = False
        self._metrics = QueueMetrics(name, self._clock, self._cond) if name else None

    def add(self, item: Item) -> None:
        """Mark ``item`` as needing processing; a no-op if it is already waiting or after shut-down."""
        with self._cond:
            if self._shutting_down or item in self._dirty:
                return
            if self._metrics is not None:
                self._metrics.add(item)
            self._dirty.add(item)
            if item in self._processing:
                # Re-queued by done(); never hand the same item to two workers.
                return
            self._queue.append(item)
            self._cond.notify()

    def __len__(self) -> int:
        with self._cond:
            return len(self._queue)

    def len(self) -> int:
        """Number of items waiting (not counting those being processed)."""
        return len(self)

    def get(self, timeout: float | None = None) -> tuple[Any, bool]:
        """Block until an item is ready; returns ``(item, shutdown)``.

        ``shutdown`` is True only when the queue is shutting down and has nothing left, and then
        ``item`` is None; the caller must stop its worker loop. Every item returned must be passed
        to ``done`` once processed. With a ``timeout`` (seconds) that expires, returns
        ``(None, False)``.
        """
        with self._cond:
            if timeout is None:
                while not self._queue and not self._shutting_down:
                    self._cond.wait()
            elif not self._queue and not self._shutting_down:
                self._cond.wait_for(lambda: self._queue or self._shutting_down, timeout)
                if not self._queue and not self._shutting_down:
                    return None, False
            if not self._queue:
                return None, True
            item = self._queue.popleft()
            if self._metrics is not None:
                self._metrics.get(item)
            self._processing.add(item)
            self._dirty.discard(item)
            return item, False

    def done(self, item: Item) -> None:
        """Mark ``item`` processed; if it was added meanwhile it goes back to the tail now."""
        with self._cond:
            if self._metrics is not None:
                self._metrics.done(item)
            self._processing.discard(item)
            if item in self._dirty:
                self._queue.append(item)
                self._cond.notify()
            if not self._processing:
                # Wakes shut_down_with_drain waiting for in-flight work to finish.
                self._cond.notify_all()

    def shut_down(self) -> None:
        """Stop accepting items; ``get`` keeps handing out queued items, then reports shut-down."""
        with self._cond:
            self._drain = False
            self._shutting_down = True
            self._cond.notify_all()

    def shut_down_with_drain(self, timeout: float | None = None) -> bool:
        """Shut down, then wait until every item handed out by ``get`` has been marked ``done``.

        Workers must keep calling ``get``/``done`` for this to return. Returns False if
        ``timeout`` expired with items still in flight. A concurrent ``shut_down`` stops the wait.
        """
        with self._cond:
            self._drain = True
            self._shutting_down = True
            self._cond.notify_all()
            return self._cond.wait_for(lambda: not self._drain or not self._processing, timeout)

    def shutting_down(self) -> bool:
        with self._cond:
            return self._shutting_down

    # -- hooks for the delaying/rate-limiting layers ---------------------------------------------

    def _record_retry(self) -> None:
        if self._metrics is not None:
            with self._cond:
                self._metrics.retry()
