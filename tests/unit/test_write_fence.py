"""The leader-election write fence: WriteFence, the client's write_guard hook, the elector's use of
the fence (renew and release), the controller's handling of a fenced write, and the manager
exiting with LeaderElectionLost after one.
"""

from __future__ import annotations

import threading
import time
from functools import partial
from typing import Any

import pytest

from rook_py.framework.client import Client, RestConfig
from rook_py.framework.client.errors import TooManyRequests
from rook_py.framework.controller import Channel, Controller, EnqueueRequestForObject, Request
from rook_py.framework.controller.controller import ControllerQueue
from rook_py.framework.leaderelection import (
    LeaderCallbacks,
    LeaderElectionLost,
    LeaderElector,
    LeaseLock,
    NotLeader,
    WriteFence,
)
from rook_py.framework.manager import Manager, ManagerOptions
from rook_py.framework.metrics import REGISTRY
from rook_py.framework.workqueue import ItemExponentialFailureRateLimiter, RateLimitingQueue
from tests.support import waiting
from tests.support.managers import ManagerRun
from tests.unit.client.fake_apiserver import Canned, FakeAPIServer
from tests.unit.controller.fakes import FakeCache, FakeObjectClient

JSON = dict[str, Any]
NS = "ns"
eventually = partial(waiting.eventually, timeout=5.0, interval=0.005)


class Clock:
    def __init__(self) -> None:
        self.t = 500.0

    def __call__(self) -> float:
        return self.t


class GuardedClient(FakeObjectClient):
    """FakeObjectClient that, like rest.Client, asks ``write_guard`` before every write, records
    the writes the guard let through, and can hold Lease updates (a renew stuck in flight)."""

    def __init__(self) -> None:
        super().__init__()
        self.write_guard: Any = None
        self.passed: list[tuple[str, str]] = []
        self.hold_lease_updates = threading.Event()
        self.lease_update_held = threading.Event()
        self.release_lease_updates = threading.Event()

    def _guard(self, method: str, kind: str, name: str) -> None:
        if self.write_guard is not None:
            self.write_guard(method, f"/{kind}/{name}")
        self.passed.append((kind, name))

    def create(self, obj: JSON, *, namespace: str | None = None) -> JSON:
        self._guard("POST", obj["kind"], obj["metadata"]["name"])
        return super().create(obj, namespace=namespace)

    def update(self, obj: JSON) -> JSON:
        self._guard("PUT", obj["kind"], obj["metadata"]["name"])
        if obj["kind"] == "Lease" and self.hold_lease_updates.is_set():
            self.lease_update_held.set()
            assert self.release_lease_updates.wait(10)
        return super().update(obj)


def fast_queue(name: str) -> ControllerQueue:
    return RateLimitingQueue(ItemExponentialFailureRateLimiter(0.001, 0.01), name)


def sample(metric: str, controller: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(metric, {"controller": controller, **labels}) or 0.0


# -- WriteFence ---------------------------------------------------------------------------------


def test_fence_is_open_before_leading_and_time_bounded_while_leading() -> None:
    clock, lost = Clock(), list[str]()
    fence = WriteFence(10.0, clock=clock, on_lost=lost.append, name="lock")
    fence.check("POST", "/x")  # never led: writes pass, as without election
    assert fence.state == WriteFence.OPEN and not fence.holds()
    fence.renewed(clock.t)
    clock.t += 9.999
    fence.check("PUT", "/x")
    assert fence.holds()
    fence.renewed(clock.t - 1.0)  # a renewal sent one second ago succeeded
    clock.t += 8.999
    fence.check("PATCH", "/x")
    clock.t += 0.001  # exactly renew_deadline since that renewal was sent
    assert not fence.holds()
    with pytest.raises(NotLeader, match="lease 'lock'"):
        fence.check("DELETE", "/x")
    assert fence.state == WriteFence.LOST and len(lost) == 1 and "renew deadline" in lost[0]


def test_lost_fence_is_latched_and_reports_once() -> None:
    clock, lost = Clock(), list[str]()
    fence = WriteFence(1.0, clock=clock, on_lost=lost.append)
    fence.renewed(clock.t)
    fence.lose("renewal failed")
    fence.renewed(clock.t)  # a renewal that completes after the loss does not reopen it
    fence.released()
    for method in ("POST", "PUT"):
        with pytest.raises(NotLeader):
            fence.check(method, "/x")
    assert fence.state == WriteFence.LOST and not fence.holds()
    fence.lose("again")
    assert lost == ["renewal failed"]
    assert issubclass(NotLeader, LeaderElectionLost)


def test_clean_release_reopens_the_fence() -> None:
    clock = Clock()
    fence = WriteFence(1.0, clock=clock)
    fence.renewed(clock.t)
    fence.released()
    clock.t += 100
    fence.check("POST", "/events")  # e.g. queued Events flushed after a drained shutdown
    assert fence.state == WriteFence.OPEN


def test_fence_rejects_a_non_positive_deadline() -> None:
    with pytest.raises(ValueError):
        WriteFence(0)


# -- rest.Client write_guard --------------------------------------------------------------------


def cm(name: str) -> JSON:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": NS}}


def writes(server: FakeAPIServer) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in server.requests if r.method not in ("GET", "HEAD")]


def test_unguarded_client_has_no_guard(server: FakeAPIServer) -> None:
    with Client(RestConfig.for_host(server.url)) as client:
        assert client.write_guard is None
        client.create(cm("a"))
    assert writes(server) == [("POST", "/api/v1/namespaces/ns/configmaps")]


def test_guard_refuses_every_mutating_verb_before_it_is_sent_and_lets_reads_pass(
        server: FakeAPIServer) -> None:
    clock = Clock()
    fence = WriteFence(1.0, clock=clock, name="lock")
    seen: list[tuple[str, str]] = []

    def guard(method: str, path: str) -> None:
        seen.append((method, path))
        fence.check(method, path)

    with Client(RestConfig.for_host(server.url), timeout=2.0) as client:
        client.write_guard = guard
        fence.renewed(clock.t)
        live = client.create(cm("a"))  # leading, within the deadline
        clock.t += 1.0  # "frozen" for a whole renew deadline
        attempts: list[Any] = [
            lambda: client.create(cm("b")),
            lambda: client.update(live),
            lambda: client.update_status(live),
            lambda: client.patch("v1", "ConfigMap", "a", {"data": {"k": "v"}}, namespace=NS),
            lambda: client.delete("v1", "ConfigMap", "a", NS),
            lambda: client.delete_collection("v1", "ConfigMap", NS),
            lambda: client.request_json("POST", "/api/v1/namespaces/ns/configmaps", body=cm("c")),
        ]
        for attempt in attempts:
            with pytest.raises(NotLeader):
                attempt()
        # Reads stay allowed: informers keep working while the process shuts down.
        assert client.get("v1", "ConfigMap", "a", NS)["metadata"]["name"] == "a"
        assert [i["metadata"]["name"] for i in client.list("v1", "ConfigMap", NS)["items"]] == ["a"]
    assert writes(server) == [("POST", "/api/v1/namespaces/ns/configmaps")]
    assert [m for m, _ in seen] == ["POST", "POST", "PUT", "PUT", "PATCH", "DELETE", "DELETE", "POST"]
    assert seen[3] == ("PUT", "/api/v1/namespaces/ns/configmaps/a/status")
    assert all(m != "GET" for m, _ in seen)


def test_guard_is_asked_again_before_each_retry(server: FakeAPIServer) -> None:
    """A 429 retry sleeps; if the lease became uncertain meanwhile, the retry is not sent."""
    clock = Clock()
    fence = WriteFence(1.0, clock=clock)
    fence.renewed(clock.t)

    def sleep(seconds: float) -> None:
        clock.t += 5.0  # the Retry-After wait outlasted the renew deadline

    server.script.append(Canned(429, {"kind": "Status", "code": 429, "reason": "TooManyRequests"},
                                {"Retry-After": "1"}))
    with Client(RestConfig.for_host(server.url), timeout=2.0, sleep=sleep) as client:
        client.write_guard = fence.check
        with pytest.raises(NotLeader):
            client.create(cm("a"))
    assert writes(server) == [("POST", "/api/v1/namespaces/ns/configmaps")]  # the first attempt only
    assert not issubclass(NotLeader, TooManyRequests)


# -- the elector and the fence ------------------------------------------------------------------


def elector(client: FakeObjectClient, identity: str, clock: Clock, **kw: Any) -> LeaderElector:
    le = LeaderElector(LeaseLock(client, NS, "lock", identity), lease_duration=15, renew_deadline=10,
                       retry_period=2, clock=clock, **kw)
    if isinstance(client, GuardedClient):
        client.write_guard = le.fence.check
    return le


def test_acquire_and_renew_open_the_fence_from_when_the_write_was_sent() -> None:
    clock = Clock()

    class SlowClient(GuardedClient):
        def update(self, obj: JSON) -> JSON:
            clock.t += 3.0  # the renewal takes 3 s to be answered
            return super().update(obj)

    client = SlowClient()
    le = elector(client, "a", clock)
    assert le.try_acquire_or_renew() and le.fence.holds()
    sent = clock.t
    assert le.try_acquire_or_renew()  # the fast-path renewal: an update
    assert clock.t == sent + 3.0
    clock.t = sent + 9.999
    assert le.fence.holds()
    clock.t = sent + 10.0  # counted from the send, not from the answer
    assert not le.fence.holds()


def test_a_frozen_leader_neither_renews_nor_releases() -> None:
    clock = Clock()
    client = GuardedClient()
    le = elector(client, "a", clock)
    assert le.try_acquire_or_renew()
    clock.t += 10.0  # frozen past the renew deadline (the lease itself is still ours on the server)
    client.calls.clear()
    client.passed.clear()
    assert not le._renew_once()
    assert not le.release()
    assert client.calls == [] and client.passed == []  # not even a read
    assert client.lease(NS, "lock")["spec"]["holderIdentity"] == "a"  # type: ignore[index]


def test_fenced_lease_write_is_a_failed_attempt_not_an_exception() -> None:
    clock = Clock()
    client = GuardedClient()
    le = elector(client, "a", clock)
    assert le.try_acquire_or_renew()
    clock.t += 10.0
    with pytest.raises(NotLeader):  # e.g. a worker's write closes it: the fence latches LOST
        le.fence.check("PUT", "/")
    assert le.fence.state == WriteFence.LOST
    assert not le.try_acquire_or_renew()  # the guard refuses the lease write; reported as False
    assert not le.release()


def test_release_within_the_lease_reopens_the_fence() -> None:
    clock = Clock()
    client = GuardedClient()
    le = elector(client, "a", clock)
    assert le.try_acquire_or_renew()
    clock.t += 9.0
    assert le.release() and le.fence.state == WriteFence.OPEN
    assert client.lease(NS, "lock")["spec"]["holderIdentity"] == ""  # type: ignore[index]


def test_run_loop_after_a_freeze_stops_without_writing() -> None:
    """Real renew loop; the elector's clock jumps as a SIGSTOP/SIGCONT would make it."""
    offset = [0.0]
    client = GuardedClient()
    started, stopped, lost = threading.Event(), threading.Event(), list[str]()

    def clock() -> float:
        return time.monotonic() + offset[0]

    fence = WriteFence(0.5, clock=clock, on_lost=lost.append)
    le = LeaderElector(LeaseLock(client, NS, "run", "a"), lease_duration=1.0, renew_deadline=0.5,
                       retry_period=0.02, clock=clock, fence=fence,
                       callbacks=LeaderCallbacks(on_started_leading=started.set,
                                                 on_stopped_leading=stopped.set))
    client.write_guard = fence.check
    stop = threading.Event()
    thread = threading.Thread(target=le.run, args=(stop,), daemon=True)
    thread.start()
    try:
        assert started.wait(5)
        eventually(lambda: len(client.passed) >= 3)  # renewing
        passed = len(client.passed)
        offset[0] += 30.0  # resumed 30 s later
        assert stopped.wait(5)
        thread.join(5)
    finally:
        stop.set()
    assert not thread.is_alive()
    # At most one renewal that had already passed the guard when the clock jumped completes.
    assert len(client.passed) <= passed + 1
    assert fence.state == WriteFence.LOST and len(lost) == 1
    assert client.lease(NS, "run")["spec"]["holderIdentity"] == "a"  # type: ignore[index] # not released


# -- the controller -----------------------------------------------------------------------------


class Writer:
    """A reconciler that creates a ConfigMap per request through ``client``."""

    def __init__(self, client: GuardedClient, wrap: bool = False) -> None:
        self.client, self.wrap = client, wrap
        self.attempts: list[str] = []
        self.refused = threading.Event()

    def reconcile(self, request: Request) -> None:
        self.attempts.append(request.name)
        try:
            self.client.create(cm(request.name))
        except NotLeader as err:
            self.refused.set()
            if self.wrap:
                raise RuntimeError("could not write the child object") from err
            raise


@pytest.mark.parametrize("wrap", [False, True], ids=["direct", "as-cause"])
def test_controller_stops_on_a_fenced_write_without_retrying(wrap: bool) -> None:
    clock = Clock()
    fence = WriteFence(1.0, clock=clock)
    client = GuardedClient()
    client.write_guard = fence.check
    fence.renewed(clock.t)
    writer = Writer(client, wrap)
    name = f"fenced-{int(wrap)}"
    ctrl = Controller(name, writer, max_concurrent_reconciles=2, queue_factory=fast_queue)
    channel = Channel(EnqueueRequestForObject())
    ctrl.watch(channel)
    stop = threading.Event()
    thread = threading.Thread(target=ctrl.start, args=(stop,), daemon=True)
    thread.start()
    try:
        channel.trigger(cm("one"))
        eventually(lambda: sample("controller_runtime_reconcile_total", name, result="success") == 1)
        clock.t += 1.0
        channel.trigger(cm("two"))
        assert writer.refused.wait(5)
        eventually(lambda: ctrl.queue.shutting_down())
        channel.trigger(cm("three"))  # intake has stopped
        time.sleep(0.05)  # ample time for a (wrong) retry at the 1 ms base delay
        assert thread.is_alive()  # the manager stops it; the controller does not exit by itself
    finally:
        stop.set()
        thread.join(5)
    assert not thread.is_alive()
    assert writer.attempts == ["one", "two"]
    assert [n for k, n in client.passed if k == "ConfigMap"] == ["one"]
    assert sample("controller_runtime_reconcile_errors_total", name) == 0
    assert sample("controller_runtime_reconcile_total", name, result="error") == 0


# -- the manager --------------------------------------------------------------------------------


def le_options(**kw: Any) -> ManagerOptions:
    base: dict[str, Any] = {"leader_election": True, "leader_election_id": "op-lock",
                            "leader_election_namespace": NS, "lease_duration": 1.0,
                            "renew_deadline": 0.5, "retry_period": 0.05, "identity": "a",
                            "metrics_bind_address": "0", "health_probe_bind_address": "0",
                            "graceful_shutdown_timeout": 5.0}
    base.update(kw)
    return ManagerOptions(**base)


def test_manager_exits_with_leader_election_lost_after_a_fenced_write() -> None:
    """The renew request hangs (as if the process froze mid-renewal); once renew_deadline has
    passed since the last renewal was sent, the reconciler's write is refused before it is sent,
    and the manager shuts down with LeaderElectionLost without releasing the lease."""
    client = GuardedClient()
    mgr = Manager(client, le_options(), cache=FakeCache())
    writer = Writer(client)
    ctrl = Controller("fenced-mgr", writer, queue_factory=fast_queue)
    channel = Channel(EnqueueRequestForObject())
    ctrl.watch(channel)
    mgr.add(ctrl)
    run = ManagerRun(mgr)
    try:
        assert mgr.elected.wait(5) and mgr.fence is not None
        assert client.write_guard == mgr.fence.check
        channel.trigger(cm("one"))
        eventually(lambda: ("ConfigMap", "one") in client.passed)
        assert mgr.is_leader()
        client.hold_lease_updates.set()
        assert client.lease_update_held.wait(5)
        fence = mgr.fence
        eventually(lambda: not fence.holds())
        assert not mgr.is_leader()
        channel.trigger(cm("two"))
        assert writer.refused.wait(5)
        eventually(lambda: fence.state == WriteFence.LOST)
    finally:
        client.release_lease_updates.set()
        run.thread.join(10)
    assert not run.thread.is_alive()
    assert isinstance(run.error, LeaderElectionLost)
    assert [n for k, n in client.passed if k == "ConfigMap"] == ["one"]
    assert client.lease(NS, "op-lock")["spec"]["holderIdentity"] == "a"  # type: ignore[index]


def test_manager_without_leader_election_installs_no_guard() -> None:
    client = GuardedClient()
    mgr = Manager(client, le_options(leader_election=False), cache=FakeCache())
    run = ManagerRun(mgr)
    assert mgr.elected.wait(5)
    client.create(cm("free"))
    run.stop.set()
    run.thread.join(10)
    assert run.error is None and client.write_guard is None and mgr.fence is None


def test_manager_refuses_a_client_already_guarded_by_another_manager() -> None:
    client = GuardedClient()
    client.write_guard = WriteFence(1.0).check
    mgr = Manager(client, le_options(), cache=FakeCache())
    with pytest.raises(RuntimeError, match="write_guard"):
        mgr.start(threading.Event())


def test_clean_shutdown_releases_and_reopens_the_fence() -> None:
    client = GuardedClient()
    mgr = Manager(client, le_options(), cache=FakeCache())
    run = ManagerRun(mgr)
    assert mgr.elected.wait(5)
    run.stop.set()
    run.thread.join(10)
    assert run.error is None and mgr.fence is not None
    assert mgr.fence.state == WriteFence.OPEN
    assert client.lease(NS, "op-lock")["spec"]["holderIdentity"] == ""  # type: ignore[index]
    client.create(cm("after"))  # the leader's work drained: the client writes as without election
