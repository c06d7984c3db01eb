"""``DeltaFIFO.has_synced`` is a latch that readers may query without the FIFO's lock.

Reconcilers ask ``has_synced`` on every cache read while the informer thread holds the FIFO lock
for a whole ``pop_batch``; the answer must not wait for that batch once the FIFO has synced, and
must stay False (under the lock) until the initial list has been processed.
"""

from __future__ import annotations

import threading

from rook_py.framework.cache import DeltaFIFO, Deltas
from tests.unit.cache.fakes import cm


def test_has_synced_false_until_initial_list_popped_then_latched() -> None:
    fifo = DeltaFIFO()
    assert not fifo.has_synced()
    fifo.replace([cm("a", 1), cm("b", 1)], "1")
    assert not fifo.has_synced()
    fifo.pop(lambda d, initial: None, timeout=0)
    assert not fifo.has_synced()
    fifo.pop(lambda d, initial: None, timeout=0)
    assert fifo.has_synced()
    # Later deltas do not un-sync the FIFO.
    fifo.update(cm("a", 2))
    assert fifo.has_synced()
    assert fifo.wait_synced(0)


def test_has_synced_does_not_wait_for_a_batch_in_progress_once_synced() -> None:
    fifo = DeltaFIFO()
    fifo.replace([], "1")
    assert fifo.has_synced()
    fifo.update(cm("a", 2))

    in_batch = threading.Event()
    release = threading.Event()
    answers: list[bool] = []

    def slow(key: str, deltas: Deltas, initial: bool) -> None:
        in_batch.set()
        release.wait(5)

    popper = threading.Thread(target=lambda: fifo.pop_batch(slow, timeout=1))
    popper.start()
    try:
        assert in_batch.wait(5)
        # The popper holds the FIFO lock right now; the synced answer must not need it.
        reader = threading.Thread(target=lambda: answers.append(fifo.has_synced()))
        reader.start()
        reader.join(5)
        # Had it needed the lock, the reader would still be blocked behind ``slow`` (released
        # only below) and ``answers`` would be empty.
        assert answers == [True]
    finally:
        release.set()
        popper.join(5)


def test_has_synced_before_sync_still_consults_state_under_the_lock() -> None:
    fifo = DeltaFIFO()
    fifo.add(cm("a", 1))  # an add before any replace: nothing initial to wait for
    assert fifo.has_synced()
