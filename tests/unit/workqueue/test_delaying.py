"""Behaviours of client-go's util/workqueue/delaying_queue_test.go, ported (fake clock, no sleeps)."""

from __future__ import annotations

import random

from rook_py.framework.workqueue import DelayingQueue, FakeClock
from tests.unit.workqueue.helpers import eventually


def _q() -> tuple[DelayingQueue, FakeClock]:
    clock = FakeClock()
    return DelayingQueue(clock=clock), clock


def test_simple_queue() -> None:
    q, clock = _q()
    q.add_after("foo", 0.05)
    assert not eventually(lambda: len(q) == 1, timeout=0.02)
    assert len(q) == 0
    clock.step(0.06)
    assert eventually(lambda: len(q) == 1)
    item, _ = q.get()
    q.done(item)
    # step past all remaining time: nothing left anywhere
    clock.step(10)
    assert eventually(lambda: q.waiting_len() == 0)
    assert len(q) == 0
    q.shut_down()


def test_zero_delay_adds_immediately() -> None:
    q, _ = _q()
    q.add_after("foo", 0)
    assert len(q) == 1
    q.shut_down()


def test_deduping_keeps_earliest_ready_time() -> None:
    q, clock = _q()
    q.add_after("foo", 0.05)
    q.add_after("foo", 0.07)  # later: ignored
    assert q.waiting_len() == 1
    clock.step(0.06)
    assert eventually(lambda: len(q) == 1)
    clock.step(0.02)
    assert not eventually(lambda: len(q) > 1, timeout=0.02)
    assert len(q) == 1
    item, _ = q.get()
    q.done(item)

    # Re-adding with an earlier time moves it up.
    q.add_after("foo", 0.07)
    q.add_after("foo", 0.05)
    assert q.waiting_len() == 1
    clock.step(0.06)
    assert eventually(lambda: len(q) == 1)
    assert q.waiting_len() == 0
    q.shut_down()


def test_add_two_fire_early() -> None:
    q, clock = _q()
    q.add_after("foo", 1)
    q.add_after("bar", 0.05)
    clock.step(0.06)
    assert eventually(lambda: len(q) == 1)
    assert q.get()[0] == "bar"
    q.add_after("foo", 0.05)  # earlier than its current 1 s
    clock.step(0.06)
    assert eventually(lambda: len(q) == 1)
    assert q.get()[0] == "foo"
    assert q.waiting_len() == 0
    q.shut_down()


def test_copy_shifting_order_by_ready_time() -> None:
    q, clock = _q()
    q.add_after("foo", 3)
    q.add_after("bar", 1)
    q.add_after("baz", 2)
    clock.step(4)
    assert eventually(lambda: len(q) == 3)
    assert [q.get()[0] for _ in range(3)] == ["bar", "baz", "foo"]
    q.shut_down()


def test_many_random_delays_come_out_sorted() -> None:
    q, clock = _q()
    rnd = random.Random(7)
    delays = {f"item-{i}": rnd.uniform(0.001, 5) for i in range(300)}
    for item, d in delays.items():
        q.add_after(item, d)
    clock.step(6)
    assert eventually(lambda: len(q) == len(delays))
    got = [q.get()[0] for _ in range(len(delays))]
    assert got == sorted(delays, key=lambda k: delays[k])
    q.shut_down()


def test_real_clock_fires() -> None:
    q = DelayingQueue()
    q.add_after("foo", 0.01)
    item, shutdown = q.get(timeout=5)
    assert (item, shutdown) == ("foo", False)
    q.shut_down()


def test_add_after_ignored_after_shut_down() -> None:
    q, clock = _q()
    q.shut_down()
    q.add_after("foo", 0.01)
    clock.step(1)
    assert q.waiting_len() == 0
    assert q.get() == (None, True)
