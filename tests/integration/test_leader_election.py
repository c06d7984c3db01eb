"""Leader election between managers sharing one envtest API server."""

from __future__ import annotations

import time
from typing import Any

from rook_py.framework import ControllerBuilder, LeaderElectionLost, Manager, ManagerOptions, Request
from rook_py.framework.client.errors import NotFound
from rook_py.framework.leaderelection import LeaderElector, LeaseLock
from rook_py.framework.objects import retry_on_conflict
from tests.support.managers import ManagerRun
from tests.support.waiting import eventually

NS = "default"
NOT_YET = (NotFound, KeyError)  # the object, or the key in a record, is not there yet
LOCK = "le-test-lock"
LEASE = ("coordination.k8s.io/v1", "Lease", LOCK, NS)


class Seen:
    def __init__(self) -> None:
        self.names: set[str] = set()

    def reconcile(self, request: Request) -> None:
        self.names.add(request.name)


def manager(client: Any, identity: str, seen: Seen, lease_duration: float = 60.0) -> Manager:
    mgr = Manager(client, ManagerOptions(
        leader_election=True, leader_election_id=LOCK, leader_election_namespace=NS,
        lease_duration=lease_duration, renew_deadline=0.5, retry_period=0.05, identity=identity,
        metrics_bind_address="0", health_probe_bind_address="0"))
    ControllerBuilder(mgr).named(f"le-{identity}").for_("v1", "ConfigMap").complete(seen)
    return mgr


def cm(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": NS}}


def test_handover_between_two_managers(envtest: Any) -> None:
    client = envtest.client()
    seen_a, seen_b = Seen(), Seen()
    # 60 s leases: b can only take over within this test because a releases on shutdown.
    a = ManagerRun(manager(envtest.client(), "a", seen_a))
    assert a.mgr.elected.wait(15)
    b = ManagerRun(manager(envtest.client(), "b", seen_b))
    try:
        client.create(cm("one"), namespace=NS)
        eventually(lambda: "one" in seen_a.names, ignore=NOT_YET)
        time.sleep(0.3)
        assert not b.mgr.is_leader() and seen_b.names == set()  # the standby does not reconcile
        assert client.get(*LEASE)["spec"]["holderIdentity"] == "a"
        a.shutdown()
        assert a.errors == []
        assert b.mgr.elected.wait(15)
        spec = client.get(*LEASE)["spec"]
        assert spec["holderIdentity"] == "b" and spec["leaseTransitions"] == 1
        # The new leader lists everything and reconciles from there.
        client.create(cm("two"), namespace=NS)
        eventually(lambda: {"one", "two"} <= seen_b.names, ignore=NOT_YET)
    finally:
        b.shutdown()
    assert b.errors == []


def test_standby_takes_over_an_expired_lease(envtest: Any) -> None:
    client = envtest.client()
    # A "crashed" leader: it acquired the lease and never renewed it.
    crashed = LeaderElector(LeaseLock(client, NS, LOCK, "crashed"), lease_duration=1.0,
                            renew_deadline=0.5, retry_period=0.05)
    assert crashed.try_acquire_or_renew()
    seen = Seen()
    b = ManagerRun(manager(envtest.client(), "b", seen, lease_duration=1.0))
    try:
        assert b.mgr.elected.wait(15)
        assert client.get(*LEASE)["spec"]["holderIdentity"] == "b"
    finally:
        b.shutdown()


def test_lost_lease_exits_with_an_error(envtest: Any) -> None:
    client = envtest.client()
    seen = Seen()
    a = ManagerRun(manager(envtest.client(), "a", seen, lease_duration=2.0))
    assert a.mgr.elected.wait(15)

    def usurp() -> None:
        lease = client.get(*LEASE)
        lease["spec"]["holderIdentity"] = "usurper"
        client.update(lease)

    # "a" renews every retry period: a renewal between our GET and PUT is a 409, so read again.
    retry_on_conflict(usurp, attempts=20)
    a.thread.join(30)
    assert not a.thread.is_alive()
    assert len(a.errors) == 1 and isinstance(a.errors[0], LeaderElectionLost)
    assert client.get(*LEASE)["spec"]["holderIdentity"] == "usurper"  # not "released" by the loser
