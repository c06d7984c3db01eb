"""Behaviours of client-go's util/workqueue/queue_test.go, ported."""

from __future__ import annotations

import threading

import pytest

from rook_py.framework import metrics as m
from rook_py.framework.workqueue import FakeClock, Queue
from tests.unit.workqueue.helpers import eventually


def test_basic_many_producers_and_consumers() -> None:
    q = Queue()
    producers, consumers, per_producer = 50, 10, 50
    seen: list[int] = []
    seen_lock = threading.Lock()

    def produce(base: int) -> None:
        for i in range(per_producer):
            q.add(base * 1000 + i)

    def consume() -> None:
        while True:
            item, shutdown = q.get()
            if shutdown:
                return
            with seen_lock:
                seen.append(item)
            q.done(item)

    ps = [threading.Thread(target=produce, args=(p,)) for p in range(producers)]
    cs = [threading.Thread(target=consume) for _ in range(consumers)]
    for t in ps + cs:
        t.start()
    for t in ps:
        t.join()
    assert eventually(lambda: len(q) == 0)
    q.shut_down()
    for t in cs:
        t.join(5)
        assert not t.is_alive()
    # Every distinct item is processed at least once, and none was lost.
    assert set(seen) == {p * 1000 + i for p in range(producers) for i in range(per_producer)}


def test_add_deduplicates_waiting_items() -> None:
    q = Queue()
    q.add("foo")
    q.add("foo")
    q.add("bar")
    assert len(q) == 2
    assert q.get() == ("foo", False)
    assert q.get() == ("bar", False)
    assert q.get(timeout=0.01) == (None, False)


def test_add_while_processing_requeues_after_done() -> None:
    q = Queue()
    q.add("foo")
    item, _ = q.get()
    q.add("foo")  # arrives while being processed: must not be handed to a second worker
    assert len(q) == 0
    assert q.get(timeout=0.01) == (None, False)
    q.done(item)
    assert len(q) == 1
    assert q.get() == ("foo", False)
    q.done("foo")
    assert len(q) == 0


def test_len_counts_waiting_only() -> None:
    q = Queue()
    q.add("foo")
    assert q.len() == 1
    q.add("bar")
    assert q.len() == 2
    q.add("foo")
    assert q.len() == 2
    q.get()
    assert q.len() == 1


def test_reinsert_after_done() -> None:
    q = Queue()
    q.add("foo")
    i, _ = q.get()
    assert i == "foo"
    q.add(i)
    q.done(i)
    i, _ = q.get()
    assert i == "foo"
    q.done(i)
    assert len(q) == 0


def test_get_blocks_until_add() -> None:
    q = Queue()
    got: list[object] = []
    t = threading.Thread(target=lambda: got.append(q.get()))
    t.start()
    assert not eventually(lambda: bool(got), timeout=0.05)
    q.add("x")
    t.join(5)
    assert got == [("x", False)]


def test_shut_down_hands_out_queued_then_reports_shutdown() -> None:
    q = Queue()
    q.add("a")
    q.add("b")
    q.shut_down()
    assert q.shutting_down()
    q.add("c")  # ignored after shut-down
    assert q.get() == ("a", False)
    assert q.get() == ("b", False)
    assert q.get() == (None, True)


def test_shut_down_wakes_blocked_getters() -> None:
    q = Queue()
    results: list[tuple[object, bool]] = []
    ts = [threading.Thread(target=lambda: results.append(q.get())) for _ in range(3)]
    for t in ts:
        t.start()
    q.shut_down()
    for t in ts:
        t.join(5)
    assert results == [(None, True)] * 3


def test_shut_down_with_drain_waits_for_in_flight_items() -> None:
    q = Queue()
    q.add("foo")
    q.add("bar")
    first, _ = q.get()
    second, _ = q.get()
    finished = threading.Event()

    def drain() -> None:
        assert q.shut_down_with_drain()
        finished.set()

    t = threading.Thread(target=drain)
    t.start()
    assert eventually(q.shutting_down)
    q.done(first)
    assert not finished.wait(0.05)  # second still in flight
    q.done(second)
    assert finished.wait(5)
    t.join(5)


def test_shut_down_does_not_drain() -> None:
    q = Queue()
    q.add("foo")
    q.get()
    q.shut_down()  # returns at once although "foo" is in flight
    assert q.get() == (None, True)


def test_force_shut_down_interrupts_drain() -> None:
    q = Queue()
    q.add("foo")
    q.get()
    done = threading.Event()
    results: list[bool] = []

    def drain() -> None:
        results.append(q.shut_down_with_drain())
        done.set()

    t = threading.Thread(target=drain)
    t.start()
    assert not done.wait(0.05)
    q.shut_down()
    assert done.wait(5)
    t.join(5)
    assert results == [True]


def test_drain_with_dirty_item_processes_it_again() -> None:
    q = Queue()
    q.add("foo")
    item, _ = q.get()
    q.add("foo")  # dirty while in flight
    finished = threading.Event()
    t = threading.Thread(target=lambda: (q.shut_down_with_drain(), finished.set()))
    t.start()
    assert eventually(q.shutting_down)
    q.done(item)
    again, shutdown = q.get()
    assert (again, shutdown) == ("foo", False)
    assert not finished.wait(0.05)
    q.done(again)
    assert finished.wait(5)
    assert q.get() == (None, True)
    t.join(5)


def test_drain_timeout_returns_false() -> None:
    q = Queue()
    q.add("foo")
    q.get()
    assert q.shut_down_with_drain(timeout=0.01) is False


def _sample(name: str, metric: str, suffix: str = "") -> float:
    value = m.REGISTRY.get_sample_value(metric + suffix, {"name": name, "controller": name})
    return 0.0 if value is None else value


def test_metrics_follow_add_get_done() -> None:
    clock = FakeClock()
    name = "test-metrics-queue"
    q = Queue(name, clock=clock)
    adds0 = _sample(name, "workqueue_adds_total")
    q.add("a")
    q.add("a")  # deduplicated: not an add
    q.add("b")
    assert _sample(name, "workqueue_adds_total") == adds0 + 2
    assert _sample(name, "workqueue_depth") == 2
    clock.step(3)
    item, _ = q.get()
    assert _sample(name, "workqueue_depth") == 1
    assert _sample(name, "workqueue_queue_duration_seconds", "_sum") == pytest.approx(3.0)
    clock.step(2)
    assert _sample(name, "workqueue_unfinished_work_seconds") == pytest.approx(2.0)
    assert _sample(name, "workqueue_longest_running_processor_seconds") == pytest.approx(2.0)
    q.done(item)
    assert _sample(name, "workqueue_work_duration_seconds", "_sum") == pytest.approx(2.0)
    assert _sample(name, "workqueue_unfinished_work_seconds") == 0.0
    assert _sample(name, "workqueue_longest_running_processor_seconds") == 0.0


def test_duration_histogram_buckets_are_cumulative_with_le_inclusive() -> None:
    clock = FakeClock()
    name = "test-metrics-buckets"
    q = Queue(name, clock=clock)
    for delay in (0.001, 0.5, 20.0):   # 0.001 sits exactly on a bound: it belongs to le="0.001"
        q.add("x")
        clock.step(delay)
        item, _ = q.get()
        q.done(item)

    def bucket(le: str) -> float:
        return m.REGISTRY.get_sample_value("workqueue_queue_duration_seconds_bucket",
                                           {"name": name, "controller": name, "le": le}) or 0.0

    assert bucket("0.0001") == 0
    assert bucket("0.001") == 1
    assert bucket("1.0") == 2
    assert bucket("100.0") == 3
    assert bucket("+Inf") == 3
    assert _sample(name, "workqueue_queue_duration_seconds", "_count") == 3
    assert _sample(name, "workqueue_queue_duration_seconds", "_sum") == pytest.approx(20.501)


def test_queues_sharing_a_name_add_up() -> None:
    name = "test-metrics-shared-name"
    adds0 = _sample(name, "workqueue_adds_total")
    first, second = Queue(name), Queue(name)
    first.add("a")
    second.add("a")
    second.add("b")
    assert _sample(name, "workqueue_adds_total") == adds0 + 3
    assert _sample(name, "workqueue_depth") == 3
