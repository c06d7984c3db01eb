"""A queue whose items can be added after a delay (client-go util/workqueue/delaying_queue.go).

Waiting items live in a min-heap ordered by ready time, with at most one entry per item: adding
an item that is already waiting keeps the *earlier* ready time (so a re-add can only move it
forward, never postpone it). One daemon thread moves ready items into the underlying queue;
it sleeps on a condition until the earliest ready time or the next ``add_after``, whichever is
sooner, so an early insert is never stuck behind a later one.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from dataclasses import dataclass, field
from typing import Any

from rook_py.framework.workqueue.clock import Clock
from rook_py.framework.workqueue.queue import Item, Queue


@dataclass(order=True)
class _Waiting:
    ready_at: float
    seq: int  # FIFO among equal ready times; also makes entries totally ordered
    item: Any = field(compare=False)
    cancelled: bool = field(default=False, compare=False)


class DelayingQueue(Queue):
    """``Queue`` plus ``add_after``. ``shut_down`` also stops the waiting thread."""

    def __init__(self, name: str = "", *, clock: Clock | None = None) -> None:
        super().__init__(name, clock=clock)
        self._wait_cond = threading.Condition(threading.Lock())
        self._heap: list[_Waiting] = []
        self._waiting: dict[Any, _Waiting] = {}
        self._seq = itertools.count()
        self._stopped = False
        self._clock.register(self._wait_cond)
        self._thread = threading.Thread(target=self._waiting_loop, name=f"delaying-queue-{name}",
                                        daemon=True)
        self._thread.start()

    def add_after(self, item: Item, seconds: float) -> None:
        """Add ``item`` once ``seconds`` have passed; immediately when ``seconds <= 0``."""
        if self.shutting_down():
            return
        self._record_retry()
        if seconds <= 0:
            self.add(item)
            return
        ready_at = self._clock.now() + seconds
        with self._wait_cond:
            existing = self._waiting.get(item)
            if existing is not None:
                if existing.ready_at <= ready_at:
                    return
                # Lazy deletion: the stale heap entry is skipped when it surfaces.
                existing.cancelled = True
            entry = _Waiting(ready_at, next(self._seq), item)
            self._waiting[item] = entry
            heapq.heappush(self._heap, entry)
            if self._heap[0] is entry:
                self._wait_cond.notify()

    def waiting_len(self) -> int:
        """Items scheduled for later (diagnostics and tests)."""
        with self._wait_cond:
            return len(self._waiting)

    def shut_down(self) -> None:
        super().shut_down()
        self._stop_waiting()

    def shut_down_with_drain(self, timeout: float | None = None) -> bool:
        self._stop_waiting()
        return super().shut_down_with_drain(timeout)

    def _stop_waiting(self) -> None:
        with self._wait_cond:
            self._stopped = True
            self._wait_cond.notify_all()
        self._clock.unregister(self._wait_cond)

    def _waiting_loop(self) -> None:
        while True:
            ready: list[Any] = []
            with self._wait_cond:
                if self._stopped:
                    return
                now = self._clock.now()
                while self._heap and (self._heap[0].cancelled or self._heap[0].ready_at <= now):
                    entry = heapq.heappop(self._heap)
                    if not entry.cancelled:
                        del self._waiting[entry.item]
                        ready.append(entry.item)
                if not ready:
                    timeout = self._heap[0].ready_at - now if self._heap else None
                    self._clock.wait(self._wait_cond, timeout)
                    continue
            # Outside our lock: add() takes the queue's lock, and holding both would order locks.
            for item in ready:
                self.add(item)
