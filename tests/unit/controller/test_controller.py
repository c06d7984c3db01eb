from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import pytest
import structlog

from rook_py.framework.cache.reader import NamespaceOutOfScopeError
from rook_py.framework.controller import (
    CacheSyncTimeout,
    Channel,
    Controller,
    EnqueueRequestForObject,
    Kind,
    Request,
    Result,
    TerminalError,
)
from rook_py.framework.controller.controller import ControllerQueue, is_panic
from rook_py.framework.metrics import REGISTRY
from rook_py.framework.workqueue import ItemExponentialFailureRateLimiter, RateLimitingQueue
from tests.support import waiting
from tests.unit.controller.fakes import FakeInformer

_names = itertools.count()


def fast_queue(name: str) -> ControllerQueue:
    return RateLimitingQueue(ItemExponentialFailureRateLimiter(0.001, 0.02), name)


# The shared poll, bound to this suite's pace: the fakes react within microseconds.
eventually = partial(waiting.eventually, timeout=5.0, interval=0.002)


def sample(metric: str, controller: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(metric, {"controller": controller, **labels}) or 0.0


class Recorder:
    """A reconciler whose behaviour per call is scripted by a function of (request, attempt)."""

    def __init__(self, behaviour: Callable[[Request, int], Result | None] | None = None) -> None:
        self.behaviour = behaviour or (lambda req, n: None)
        self.calls: list[Request] = []
        self.attempts: Counter[Request] = Counter()
        self.contexts: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def reconcile(self, request: Request) -> Result | None:
        with self.lock:
            self.calls.append(request)
            self.attempts[request] += 1
            n = self.attempts[request]
            self.contexts.append(structlog.contextvars.get_contextvars())
        return self.behaviour(request, n)


class Running:
    def __init__(self, ctrl: Controller, channel: Channel) -> None:
        self.ctrl, self.channel = ctrl, channel
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.ctrl.start(self.stop)
        except BaseException as err:
            self.error = err

    def enqueue(self, name: str, namespace: str = "ns") -> None:
        self.channel.trigger({"metadata": {"name": name, "namespace": namespace}})


@pytest.fixture
def run() -> Iterator[Callable[..., Running]]:
    started: list[Running] = []

    def make(reconciler: Any, workers: int = 1) -> Running:
        name = f"test-ctrl-{next(_names)}"
        ctrl = Controller(name, reconciler, max_concurrent_reconciles=workers, queue_factory=fast_queue)
        channel = Channel(EnqueueRequestForObject())
        ctrl.watch(channel)
        r = Running(ctrl, channel)
        r.thread.start()
        started.append(r)
        return r

    yield make
    for r in started:
        r.stop.set()
        r.thread.join(5)
        assert not r.thread.is_alive()


def test_success_counts_and_forgets(run: Callable[..., Running]) -> None:
    rec = Recorder()
    r = run(rec)
    r.enqueue("a")
    eventually(lambda: sample("controller_runtime_reconcile_total", r.ctrl.name, result="success") == 1)
    assert rec.calls == [Request("ns", "a")]
    assert sample("controller_runtime_max_concurrent_reconciles", r.ctrl.name) == 1
    assert sample("controller_runtime_reconcile_time_seconds_count", r.ctrl.name) == 1
    assert r.ctrl.queue.num_requeues(Request("ns", "a")) == 0  # type: ignore[attr-defined]


def test_error_is_retried_with_backoff_until_success(run: Callable[..., Running]) -> None:
    def flaky(req: Request, n: int) -> None:
        if n < 3:
            raise RuntimeError("transient")

    rec = Recorder(flaky)
    r = run(rec)
    r.enqueue("a")
    eventually(lambda: sample("controller_runtime_reconcile_total", r.ctrl.name, result="success") == 1)
    assert rec.attempts[Request("ns", "a")] == 3
    assert sample("controller_runtime_reconcile_errors_total", r.ctrl.name) == 2
    assert sample("controller_runtime_reconcile_total", r.ctrl.name, result="error") == 2
    assert sample("controller_runtime_reconcile_panics_total", r.ctrl.name) == 0
    # Success forgets the failure history, so the next failure starts from the base delay again.
    assert r.ctrl.queue.num_requeues(Request("ns", "a")) == 0  # type: ignore[attr-defined]


def test_terminal_error_is_not_retried(run: Callable[..., Running]) -> None:
    def terminal(req: Request, n: int) -> None:
        raise TerminalError("spec.replicas must be odd")

    rec = Recorder(terminal)
    r = run(rec)
    r.enqueue("a")
    eventually(lambda: sample("controller_runtime_terminal_reconcile_errors_total", r.ctrl.name) == 1)
    time.sleep(0.1)  # ample time for a (wrong) retry at the 1 ms base delay
    assert rec.attempts[Request("ns", "a")] == 1
    assert sample("controller_runtime_reconcile_errors_total", r.ctrl.name) == 1
    # A new event for the object reconciles it again.
    r.enqueue("a")
    eventually(lambda: rec.attempts[Request("ns", "a")] == 2)


def test_bug_exceptions_count_as_panics_and_worker_survives(run: Callable[..., Running]) -> None:
    def buggy(req: Request, n: int) -> None:
        if req.name == "bad" and n == 1:
            raise KeyError("spec")

    rec = Recorder(buggy)
    r = run(rec)
    r.enqueue("bad")
    eventually(lambda: rec.attempts[Request("ns", "bad")] == 2)
    r.enqueue("good")
    eventually(lambda: Request("ns", "good") in rec.calls)
    assert sample("controller_runtime_reconcile_panics_total", r.ctrl.name) == 1
    assert sample("controller_runtime_reconcile_errors_total", r.ctrl.name) == 1


def test_framework_errors_are_not_panics(run: Callable[..., Running]) -> None:
    """A read outside the cache's namespace fails the reconcile (a LookupError subclass), but it is
    the framework refusing an operation, not a bug in the reconciler."""
    def out_of_scope(req: Request, n: int) -> None:
        if n == 1:
            raise NamespaceOutOfScopeError("cannot read ConfigMap.v1 in namespace 'other'")

    rec = Recorder(out_of_scope)
    r = run(rec)
    r.enqueue("a")
    eventually(lambda: rec.attempts[Request("ns", "a")] == 2)
    assert sample("controller_runtime_reconcile_panics_total", r.ctrl.name) == 0
    assert sample("controller_runtime_reconcile_errors_total", r.ctrl.name) == 1
    assert is_panic(KeyError("spec")) and not is_panic(NamespaceOutOfScopeError("x"))


def test_requeue_after_and_requeue(run: Callable[..., Running]) -> None:
    def periodic(req: Request, n: int) -> Result | None:
        if req.name == "after" and n < 3:
            return Result(requeue_after=0.01)
        if req.name == "again" and n < 2:
            return Result(requeue=True)
        return None

    rec = Recorder(periodic)
    r = run(rec)
    r.enqueue("after")
    r.enqueue("again")
    eventually(lambda: sample("controller_runtime_reconcile_total", r.ctrl.name, result="success") == 2)
    assert rec.attempts[Request("ns", "after")] == 3
    assert rec.attempts[Request("ns", "again")] == 2
    assert sample("controller_runtime_reconcile_total", r.ctrl.name, result="requeue_after") == 2
    assert sample("controller_runtime_reconcile_total", r.ctrl.name, result="requeue") == 1


def test_a_non_result_return_is_an_error_not_a_crash(run: Callable[..., Running]) -> None:
    rec = Recorder(lambda req, n: "done" if n == 1 else None)  # type: ignore[arg-type,return-value]
    r = run(rec)
    r.enqueue("a")
    eventually(lambda: sample("controller_runtime_reconcile_total", r.ctrl.name, result="success") == 1)
    assert sample("controller_runtime_reconcile_errors_total", r.ctrl.name) == 1


def test_log_context_is_bound_per_reconcile(run: Callable[..., Running]) -> None:
    rec = Recorder()
    r = run(rec, workers=2)
    r.enqueue("a")
    r.enqueue("b", namespace="other")
    eventually(lambda: len(rec.contexts) == 2)
    by_name = {c["name"]: c for c in rec.contexts}
    assert by_name["a"]["controller"] == r.ctrl.name and by_name["a"]["namespace"] == "ns"
    assert by_name["b"]["namespace"] == "other"
    assert by_name["a"]["reconcile_id"] != by_name["b"]["reconcile_id"]
    # The context does not leak out of the reconcile.
    assert "reconcile_id" not in structlog.contextvars.get_contextvars()


def test_never_two_workers_on_the_same_key(run: Callable[..., Running]) -> None:
    active: Counter[Request] = Counter()
    overlap: list[Request] = []
    lock = threading.Lock()
    total = Counter[str]()
    peak = [0]

    class Slow:
        def reconcile(self, req: Request) -> None:
            with lock:
                active[req] += 1
                total[req.name] += 1
                peak[0] = max(peak[0], sum(active.values()))
                if active[req] > 1:
                    overlap.append(req)
            time.sleep(0.003)
            with lock:
                active[req] -= 1

    r = run(Slow(), workers=8)
    keys = [f"k{i}" for i in range(4)]
    for _ in range(50):
        for k in keys:
            r.enqueue(k)
        time.sleep(0.001)
    eventually(lambda: r.ctrl.queue.len() == 0 and not any(active.values()))  # type: ignore[attr-defined]
    time.sleep(0.05)
    assert overlap == []
    # Concurrency did happen across keys, and every key was reconciled (deduplicated, not lost).
    assert set(total) == set(keys)
    assert peak[0] > 1
    assert sample("controller_runtime_active_workers", r.ctrl.name) == 0


def test_cache_sync_timeout_fails_start() -> None:
    informer = FakeInformer(synced=False)
    ctrl = Controller(f"test-ctrl-{next(_names)}", Recorder(), cache_sync_timeout=0.05,
                      queue_factory=fast_queue)
    ctrl.watch(Kind(informer, EnqueueRequestForObject()))
    with pytest.raises(CacheSyncTimeout):
        ctrl.start(threading.Event())


def test_workers_start_only_after_sync() -> None:
    informer = FakeInformer(synced=False)
    rec = Recorder()
    ctrl = Controller(f"test-ctrl-{next(_names)}", rec, queue_factory=fast_queue)
    ctrl.watch(Kind(informer, EnqueueRequestForObject()))
    stop = threading.Event()
    t = threading.Thread(target=ctrl.start, args=(stop,), daemon=True)
    t.start()
    eventually(lambda: len(informer.handlers) == 1)
    informer.emit_add({"metadata": {"name": "a", "namespace": "ns"}})
    time.sleep(0.05)
    assert rec.calls == []
    informer.synced = True
    eventually(lambda: rec.calls == [Request("ns", "a")])
    stop.set()
    t.join(5)
    assert not t.is_alive()


def test_stop_finishes_in_flight_and_drops_queued() -> None:
    entered, release = threading.Event(), threading.Event()
    finished: list[str] = []

    class Blocking:
        def reconcile(self, req: Request) -> None:
            entered.set()
            release.wait(5)
            finished.append(req.name)

    ctrl = Controller(f"test-ctrl-{next(_names)}", Blocking(), queue_factory=fast_queue)
    ch = Channel(EnqueueRequestForObject())
    ctrl.watch(ch)
    stop = threading.Event()
    t = threading.Thread(target=ctrl.start, args=(stop,), daemon=True)
    t.start()
    ch.trigger({"metadata": {"name": "in-flight", "namespace": "ns"}})
    assert entered.wait(5)
    ch.trigger({"metadata": {"name": "queued", "namespace": "ns"}})
    stop.set()
    time.sleep(0.05)
    assert t.is_alive()  # waiting for the in-flight reconcile
    release.set()
    t.join(5)
    assert not t.is_alive()
    assert finished == ["in-flight"]


def test_constructor_validation() -> None:
    with pytest.raises(ValueError):
        Controller("", Recorder())
    with pytest.raises(ValueError):
        Controller("x", Recorder(), max_concurrent_reconciles=0)
