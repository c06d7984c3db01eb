"""Controllers on envtest: real client, informers, workqueue; owns/requeue, retries, shutdown."""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from rook_py.framework import ControllerBuilder, Manager, ManagerOptions, Request, Result
from rook_py.framework.client.errors import AlreadyExists, NotFound
from rook_py.framework.objects import set_controller_reference
from tests.support.waiting import eventually

NS = "default"
NOT_YET = (NotFound, KeyError)  # the object, or the key in a record, is not there yet


def configmap(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": NS}, "data": data}


class ManagerRun:
    def __init__(self, mgr: Manager) -> None:
        self.mgr, self.stop = mgr, threading.Event()
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.mgr.start(self.stop)
        except BaseException as err:
            self.errors.append(err)

    def __enter__(self) -> ManagerRun:
        self.thread.start()
        assert self.mgr.elected.wait(15)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(30)
        assert not self.thread.is_alive()


def options(**kw: Any) -> ManagerOptions:
    base: dict[str, Any] = {"metrics_bind_address": "0", "health_probe_bind_address": "0",
                            "graceful_shutdown_timeout": 10.0}
    base.update(kw)
    return ManagerOptions(**base)


class SecretPerConfigMap:
    """For each ConfigMap, keep an owned Secret; counts reconciles per key."""

    def __init__(self, client: Any, reader: Any) -> None:
        self.client, self.reader = client, reader
        self.count: Counter[str] = Counter()
        self.lock = threading.Lock()

    def reconcile(self, request: Request) -> Result | None:
        with self.lock:
            self.count[request.name] += 1
        cm = self.reader.get("v1", "ConfigMap", request.name, request.namespace)
        if cm is None:
            return None
        secret = {"apiVersion": "v1", "kind": "Secret",
                  "metadata": {"name": f"{request.name}-secret", "namespace": request.namespace},
                  "stringData": {"copy": "x"}}
        set_controller_reference(cm, secret)
        with contextlib.suppress(AlreadyExists):
            self.client.create(secret, namespace=request.namespace)
        return None


@pytest.fixture
def client(envtest: Any) -> Iterator[Any]:
    yield envtest.client()


def test_owned_object_events_reconcile_the_owner(client: Any) -> None:
    mgr = Manager(client, options())
    rec = SecretPerConfigMap(client, mgr.reader)
    ControllerBuilder(mgr).for_("v1", "ConfigMap").owns("v1", "Secret").complete(rec)
    with ManagerRun(mgr):
        client.create(configmap("app"), namespace=NS)
        eventually(lambda: client.get("v1", "Secret", "app-secret", NS), ignore=NOT_YET)
        eventually(lambda: rec.count["app"], ignore=NOT_YET)
        time.sleep(0.2)  # let the create's own follow-up events settle
        settled = rec.count["app"]
        # A change to the owned Secret wakes its controller owner.
        client.patch("v1", "Secret", "app-secret", {"metadata": {"labels": {"touched": "yes"}}}, namespace=NS)
        eventually(lambda: rec.count["app"] > settled, ignore=NOT_YET)
        # Deleting the child is repaired through the owner.
        client.delete("v1", "Secret", "app-secret", NS)
        eventually(lambda: client.get("v1", "Secret", "app-secret", NS)["metadata"]["uid"], ignore=NOT_YET)


def test_errors_retry_and_requeue_after_through_the_cache(client: Any) -> None:
    attempts: Counter[str] = Counter()

    class Flaky:
        def reconcile(self, request: Request) -> Result | None:
            attempts[request.name] += 1
            if request.name == "flaky" and attempts["flaky"] < 3:
                raise RuntimeError("transient")
            if request.name == "periodic" and attempts["periodic"] < 4:
                return Result(requeue_after=0.05)
            return None

    mgr = Manager(client, options())
    ControllerBuilder(mgr).named("flaky").for_("v1", "ConfigMap").complete(Flaky())
    with ManagerRun(mgr):
        client.create(configmap("flaky"), namespace=NS)
        client.create(configmap("periodic"), namespace=NS)
        eventually(lambda: attempts["flaky"] >= 3 and attempts["periodic"] >= 4, ignore=NOT_YET)


def test_watches_maps_other_kinds_to_requests(client: Any) -> None:
    seen: Counter[tuple[str | None, str]] = Counter()

    class Seen:
        def reconcile(self, request: Request) -> None:
            seen[request.namespace, request.name] += 1

    def by_label(secret: dict[str, Any]) -> list[Request]:
        target = (secret["metadata"].get("labels") or {}).get("config")
        return [Request(secret["metadata"]["namespace"], target)] if target else []

    mgr = Manager(client, options())
    ControllerBuilder(mgr).named("mapped").for_("v1", "ConfigMap").watches("v1", "Secret", by_label).complete(Seen())
    with ManagerRun(mgr):
        client.create(configmap("target"), namespace=NS)
        eventually(lambda: seen[NS, "target"], ignore=NOT_YET)
        before = seen[NS, "target"]
        client.create({"apiVersion": "v1", "kind": "Secret",
                       "metadata": {"name": "s", "namespace": NS, "labels": {"config": "target"}}}, namespace=NS)
        eventually(lambda: seen[NS, "target"] > before, ignore=NOT_YET)
        client.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "unlabelled", "namespace": NS}},
                      namespace=NS)
        time.sleep(0.2)
        # Only this test's namespace: a real API server keeps ConfigMaps of its own in kube-system.
        assert {name for namespace, name in seen if namespace == NS} == {"target"}


@pytest.mark.emulator_only(reason="fault injection: dropping watch streams")
def test_events_keep_flowing_after_watches_are_dropped(envtest: Any, client: Any) -> None:
    seen: set[str] = set()

    class Seen:
        def reconcile(self, request: Request) -> None:
            seen.add(request.name)

    mgr = Manager(client, options())
    ControllerBuilder(mgr).named("resume").for_("v1", "ConfigMap").complete(Seen())
    with ManagerRun(mgr):
        client.create(configmap("before"), namespace=NS)
        eventually(lambda: "before" in seen, ignore=NOT_YET)
        envtest.faults.close_watches()
        client.create(configmap("after"), namespace=NS)
        eventually(lambda: "after" in seen, ignore=NOT_YET)


def test_graceful_shutdown_waits_for_the_reconcile_in_flight(client: Any) -> None:
    entered, release = threading.Event(), threading.Event()

    class Slow:
        def reconcile(self, request: Request) -> None:
            if request.name != "slow":
                return
            entered.set()
            release.wait(10)
            # Still the leader while finishing: this write must land before the lease is released.
            client.create(configmap("written-during-shutdown"), namespace=NS)

    mgr = Manager(client, options(leader_election=True, leader_election_id="shutdown-lock",
                                  leader_election_namespace=NS, lease_duration=2.0, renew_deadline=1.0,
                                  retry_period=0.1, identity="graceful"))
    ControllerBuilder(mgr).named("slow").for_("v1", "ConfigMap").complete(Slow())
    run = ManagerRun(mgr)
    run.__enter__()
    client.create(configmap("slow"), namespace=NS)
    assert entered.wait(15)
    run.stop.set()
    time.sleep(0.3)
    assert run.thread.is_alive()  # draining
    lease = client.get("coordination.k8s.io/v1", "Lease", "shutdown-lock", NS)
    assert lease["spec"]["holderIdentity"] == "graceful"  # not released while work is in flight
    release.set()
    run.thread.join(30)
    assert not run.thread.is_alive() and run.errors == []
    assert client.get("v1", "ConfigMap", "written-during-shutdown", NS)
    lease = client.get("coordination.k8s.io/v1", "Lease", "shutdown-lock", NS)
    assert lease["spec"]["holderIdentity"] == ""
