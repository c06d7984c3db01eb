"""Adoption and release by the simulated workload controllers (the ControllerRefManager).

The unit tests drive ``ControllerRefManager`` against the synchronous in-memory fake API, so each
rule of upstream's claimObject is pinned deterministically; the cluster tests run the real
controllers (against the fake and the emulator) through the scenario that motivated adoption: a
workload deleted with ``propagationPolicy: Orphan`` and created again takes its old children back
without restarting them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pytest_mock import MockerFixture

from rook_py.envtest.cluster import SimulatedCluster
from rook_py.envtest.cluster.controller_ref_manager import CannotAdopt, ControllerRefManager, owner_selector
from rook_py.envtest.cluster.replicaset import ReplicaSetController
from rook_py.envtest.cluster.statefulset import StatefulSetController
from rook_py.framework.client.errors import Conflict
from tests.envtest import cluster_support
from tests.envtest.cluster_support import eventually, items, pod_template
from tests.envtest.fakeapi import FakeLocalAPI

api = cluster_support.api
cluster = cluster_support.cluster

APPS = "apps/v1"
POD = ("v1", "pods")


# --- ControllerRefManager against the synchronous fake -------------------------------------------

@pytest.fixture
def fake() -> Iterator[FakeLocalAPI]:
    f = FakeLocalAPI()
    f.create("v1", "namespaces", {"metadata": {"name": "default"}})
    yield f
    f.close()


def _rs(name: str, labels: dict[str, str], replicas: int = 1, **meta: Any) -> dict[str, Any]:
    return {"apiVersion": APPS, "kind": "ReplicaSet", "metadata": {"name": name, **meta},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": pod_template(labels)}}


def _pod(name: str, labels: dict[str, str], *owners: dict[str, Any], finalizers: list[str] | None = None
         ) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": labels}
    if owners:
        meta["ownerReferences"] = [
            {"apiVersion": o["apiVersion"], "kind": o["kind"], "name": o["metadata"]["name"],
             "uid": o["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True} for o in owners]
    if finalizers:
        meta["finalizers"] = finalizers
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"containers": [{"name": "main", "image": "nginx"}]}}


def _create(api: Any, obj: dict[str, Any]) -> dict[str, Any]:
    resource = {"Pod": "pods", "ReplicaSet": "replicasets", "StatefulSet": "statefulsets",
                "ConfigMap": "configmaps"}[obj["kind"]]
    created: dict[str, Any] = api.create(obj["apiVersion"], resource, obj, namespace="default")
    return created


def _refs(api: Any, name: str) -> list[tuple[str, bool]]:
    pod = api.get("v1", "pods", name, "default")
    return [(r["uid"], bool(r.get("controller"))) for r in pod["metadata"].get("ownerReferences") or []]


def _pods(api: Any) -> list[dict[str, Any]]:
    return items(api, "v1", "pods", "default")


def _being_deleted_pod(api: Any, name: str, labels: dict[str, str]) -> None:
    _create(api, _pod(name, labels, finalizers=["test.rook-py.io/hold"]))
    api.delete("v1", "pods", name, "default")
    assert api.get("v1", "pods", name, "default")["metadata"].get("deletionTimestamp")


def test_claim_adopts_orphans_releases_mismatches_and_ignores_others(fake: FakeLocalAPI) -> None:
    rs = _create(fake, _rs("web", {"app": "web"}))
    other = _create(fake, _rs("other", {"app": "other"}))
    _create(fake, _pod("kept", {"app": "web"}, rs))
    _create(fake, _pod("orphan", {"app": "web"}))
    _create(fake, _pod("stranger", {"app": "nope"}))
    _create(fake, _pod("relabelled", {"app": "changed"}, rs))
    _create(fake, _pod("foreign", {"app": "web"}, other))
    _being_deleted_pod(fake, "dying", {"app": "web"})

    claimed = ControllerRefManager(fake, rs, POD).claim(_pods(fake))

    assert sorted(p["metadata"]["name"] for p in claimed) == ["kept", "orphan"]
    uid = rs["metadata"]["uid"]
    assert _refs(fake, "orphan") == [(uid, True)]
    adopted_ref = fake.get("v1", "pods", "orphan", "default")["metadata"]["ownerReferences"][0]
    assert adopted_ref == {"apiVersion": APPS, "kind": "ReplicaSet", "name": "web", "uid": uid,
                           "controller": True, "blockOwnerDeletion": True}
    # The adopted pod comes back as written, so the caller sees its new ownerReference.
    assert next(p for p in claimed if p["metadata"]["name"] == "orphan")["metadata"]["ownerReferences"]
    assert "ownerReferences" not in fake.get("v1", "pods", "relabelled", "default")["metadata"]
    assert _refs(fake, "foreign") == [(other["metadata"]["uid"], True)]
    assert _refs(fake, "stranger") == [] and _refs(fake, "dying") == []


def test_release_keeps_other_owner_references(fake: FakeLocalAPI) -> None:
    rs = _create(fake, _rs("web", {"app": "web"}))
    cm = _create(fake, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "keeper"}})
    pod = _pod("p", {"app": "moved"}, rs)
    pod["metadata"]["ownerReferences"].append(
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "keeper", "uid": cm["metadata"]["uid"]})
    _create(fake, pod)

    assert ControllerRefManager(fake, rs, POD).claim(_pods(fake)) == []

    assert _refs(fake, "p") == [(cm["metadata"]["uid"], False)]


def test_claim_returns_private_copies(fake: FakeLocalAPI) -> None:
    rs = _create(fake, _rs("web", {"app": "web"}))
    _create(fake, _pod("kept", {"app": "web"}, rs))
    view = _pods(fake)

    claimed = ControllerRefManager(fake, rs, POD).claim(view)

    claimed[0]["metadata"]["labels"]["app"] = "edited"
    assert view[0]["metadata"]["labels"]["app"] == "web"


def test_owner_being_deleted_neither_adopts_nor_releases(fake: FakeLocalAPI) -> None:
    rs = _create(fake, _rs("web", {"app": "web"}, finalizers=["test.rook-py.io/hold"]))
    _create(fake, _pod("kept", {"app": "web"}, rs))
    _create(fake, _pod("orphan", {"app": "web"}))
    _create(fake, _pod("relabelled", {"app": "changed"}, rs))
    fake.delete(APPS, "replicasets", "web", "default")
    deleting = fake.get(APPS, "replicasets", "web", "default")
    assert deleting["metadata"].get("deletionTimestamp")

    claimed = ControllerRefManager(fake, deleting, POD).claim(_pods(fake))

    # What it already owns and still matches stays claimed: that takes no write.
    assert [p["metadata"]["name"] for p in claimed] == ["kept"]
    assert _refs(fake, "orphan") == []
    assert _refs(fake, "relabelled") == [(rs["metadata"]["uid"], True)]


def test_stale_owner_is_rechecked_once_before_adopting(fake: FakeLocalAPI, mocker: MockerFixture) -> None:
    rs = _create(fake, _rs("web", {"app": "web"}, finalizers=["test.rook-py.io/hold"]))
    _create(fake, _pod("kept", {"app": "web"}, rs))
    _create(fake, _pod("orphan-a", {"app": "web"}))
    _create(fake, _pod("orphan-b", {"app": "web"}))
    fake.delete(APPS, "replicasets", "web", "default")  # our copy, rs, does not know yet
    get = mocker.spy(fake, "get")

    with pytest.raises(CannotAdopt, match="has just been deleted"):
        ControllerRefManager(fake, rs, POD).claim(_pods(fake))

    assert [c.args[:3] for c in get.call_args_list] == [(APPS, "replicasets", "web")]
    assert _refs(fake, "orphan-a") == [] and _refs(fake, "orphan-b") == []


def test_recheck_happens_once_per_pass_and_only_when_adopting(fake: FakeLocalAPI, mocker: MockerFixture) -> None:
    rs = _create(fake, _rs("web", {"app": "web"}))
    _create(fake, _pod("kept", {"app": "web"}, rs))
    get = mocker.spy(fake, "get")

    ControllerRefManager(fake, rs, POD).claim(_pods(fake))
    assert get.call_count == 0  # nothing to adopt, nothing to recheck
    get.reset_mock()

    _create(fake, _pod("orphan-a", {"app": "web"}))
    _create(fake, _pod("orphan-b", {"app": "web"}))
    claimed = ControllerRefManager(fake, rs, POD).claim(_pods(fake))

    assert sorted(p["metadata"]["name"] for p in claimed) == ["kept", "orphan-a", "orphan-b"]
    # (the fake's patch reads the pod through get too: count the owner re-reads only)
    assert [c.args[:3] for c in get.call_args_list if c.args[1] == "replicasets"] == [(APPS, "replicasets", "web")]


def test_a_successor_with_the_same_name_does_not_adopt_for_the_original(fake: FakeLocalAPI) -> None:
    rs = _create(fake, _rs("web", {"app": "web"}))
    fake.delete(APPS, "replicasets", "web", "default")
    _create(fake, _rs("web", {"app": "web"}))
    _create(fake, _pod("orphan", {"app": "web"}))

    with pytest.raises(CannotAdopt, match="is gone"):
        ControllerRefManager(fake, rs, POD).claim(_pods(fake))
    assert _refs(fake, "orphan") == []


def test_a_lost_adoption_race_fails_the_pass_after_claiming_the_rest(fake: FakeLocalAPI) -> None:
    rs = _create(fake, _rs("web", {"app": "web"}))
    _create(fake, _pod("a", {"app": "web"}))
    _create(fake, _pod("b", {"app": "web"}))
    view = _pods(fake)
    fake.patch("v1", "pods", "a", {"metadata": {"annotations": {"touched": "yes"}}}, namespace="default")

    with pytest.raises(Conflict):
        ControllerRefManager(fake, rs, POD).claim(view)  # "a" changed since it was listed
    assert _refs(fake, "a") == [] and _refs(fake, "b") == [(rs["metadata"]["uid"], True)]


def test_statefulset_membership_requires_the_set_name_and_an_ordinal(fake: FakeLocalAPI) -> None:
    ss = _create(fake, {"apiVersion": APPS, "kind": "StatefulSet", "metadata": {"name": "db"},
                        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "db"}},
                                 "template": pod_template({"app": "db"})}})
    for name in ("db-7", "db-x", "dbx-1", "db-1-0"):
        _create(fake, _pod(name, {"app": "db"}))
    _create(fake, _pod("renamed", {"app": "db"}, ss))
    ctrl = StatefulSetController(fake)

    claimed = ctrl.claim_pods(ss)

    assert [p["metadata"]["name"] for p in claimed] == ["db-7"]
    assert _refs(fake, "renamed") == []  # ours but not a member: released
    assert all(_refs(fake, n) == [] for n in ("db-x", "dbx-1", "db-1-0"))


def test_missing_or_empty_selector_claims_only_what_it_created(fake: FakeLocalAPI) -> None:
    rs = _create(fake, _rs("web", {"app": "web"}))
    _create(fake, _pod("kept", {"app": "anything"}, rs))
    _create(fake, _pod("orphan", {"app": "web"}))
    for selector in (None, {}):
        owner = dict(rs, spec=dict(rs["spec"], selector=selector))
        assert owner_selector(owner) is None
        claimed = ControllerRefManager(fake, owner, POD).claim(_pods(fake))
        assert [p["metadata"]["name"] for p in claimed] == ["kept"]
    assert _refs(fake, "orphan") == []


def test_orphan_events_wake_only_owners_whose_selector_matches(fake: FakeLocalAPI) -> None:
    rs = _create(fake, _rs("web", {"app": "web"}))
    _create(fake, _rs("db", {"app": "db"}))
    ctrl = ReplicaSetController(fake)
    orphan = _pod("o", {"app": "web"})
    orphan["metadata"]["namespace"] = "default"
    owned = _pod("p", {"app": "zzz"}, rs)
    owned["metadata"]["namespace"] = "default"

    assert list(ctrl.on_event("ADDED", "v1", "pods", orphan)) == [(APPS, "replicasets", "default", "web")]
    assert list(ctrl.on_event("DELETED", "v1", "pods", orphan)) == []
    # A pod's controller is woken for it whatever its labels: that is how a release happens.
    assert list(ctrl.on_event("MODIFIED", "v1", "pods", owned)) == [(APPS, "replicasets", "default", "web")]


# --- the controllers, in the simulated cluster ---------------------------------------------------

def _owner_uids(objs: list[dict[str, Any]]) -> set[str]:
    return {r["uid"] for o in objs for r in o["metadata"].get("ownerReferences") or [] if r.get("controller")}


def _uids(objs: list[dict[str, Any]]) -> dict[str, str]:
    return {o["metadata"]["name"]: o["metadata"]["uid"] for o in objs}


def _orphan_delete(api: Any, resource: str, name: str, children: tuple[str, str], selector: str) -> None:
    """Delete with propagationPolicy Orphan and wait until the owner is gone and its children
    carry no controller reference (the garbage collector strips them first)."""
    api.delete(APPS, resource, name, "default", propagation_policy="Orphan")

    def done() -> bool:
        if any(o["metadata"]["name"] == name for o in items(api, APPS, resource, "default")):
            return False
        return not _owner_uids(items(api, *children, "default", label_selector=selector))

    eventually(done, what=f"{resource}/{name} orphan-deleted")


def _adopted(api: Any, resource: str, name: str, children: tuple[str, str], selector: str,
             count: int) -> dict[str, Any] | None:
    owner = api.get(APPS, resource, name, "default")
    kids = items(api, *children, "default", label_selector=selector)
    if len(kids) != count or _owner_uids(kids) != {owner["metadata"]["uid"]}:
        return None
    return owner


def _ready(api: Any, resource: str, name: str, **want: int) -> dict[str, Any] | None:
    obj: dict[str, Any] = api.get(APPS, resource, name, "default")
    status = obj.get("status") or {}
    ok = all(status.get(k) == v for k, v in want.items())
    return obj if ok and status.get("observedGeneration") == obj["metadata"].get("generation") else None


def test_recreated_statefulset_adopts_its_pods_without_restarting_them(api: Any, cluster: SimulatedCluster) -> None:
    ss = {"apiVersion": APPS, "kind": "StatefulSet", "metadata": {"name": "db"},
          "spec": {"replicas": 2, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                   "template": pod_template({"app": "db"})}}
    first = api.create(APPS, "statefulsets", ss, namespace="default")
    eventually(lambda: _ready(api, "statefulsets", "db", replicas=2, readyReplicas=2), what="first set ready")
    before = _uids(items(api, "v1", "pods", "default", label_selector="app=db"))
    assert sorted(before) == ["db-0", "db-1"]

    _orphan_delete(api, "statefulsets", "db", POD, "app=db")
    second = api.create(APPS, "statefulsets", ss, namespace="default")
    assert second["metadata"]["uid"] != first["metadata"]["uid"]

    eventually(lambda: _adopted(api, "statefulsets", "db", POD, "app=db", 2), what="pods adopted")
    eventually(lambda: _ready(api, "statefulsets", "db", replicas=2, readyReplicas=2), what="second set ready")
    assert _uids(items(api, "v1", "pods", "default", label_selector="app=db")) == before  # same pods
    pod = api.get("v1", "pods", "db-1", "default")
    ref = pod["metadata"]["ownerReferences"][0]
    assert (ref["kind"], ref["name"], ref["controller"], ref["blockOwnerDeletion"]) == ("StatefulSet", "db", True, True)
    assert pod["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"] == "db-1"  # its ordinal kept


def test_recreated_replicaset_adopts_orphaned_pods(api: Any, cluster: SimulatedCluster) -> None:
    api.create(APPS, "replicasets", _rs("web", {"app": "web"}, replicas=2), namespace="default")
    eventually(lambda: _ready(api, "replicasets", "web", replicas=2, readyReplicas=2), what="rs ready")
    before = _uids(items(api, "v1", "pods", "default", label_selector="app=web"))

    _orphan_delete(api, "replicasets", "web", POD, "app=web")
    api.create(APPS, "replicasets", _rs("web", {"app": "web"}, replicas=2), namespace="default")

    eventually(lambda: _adopted(api, "replicasets", "web", POD, "app=web", 2), what="pods adopted")
    eventually(lambda: _ready(api, "replicasets", "web", replicas=2, readyReplicas=2), what="rs ready again")
    assert _uids(items(api, "v1", "pods", "default", label_selector="app=web")) == before


def test_recreated_deployment_adopts_its_replicaset(api: Any, cluster: SimulatedCluster) -> None:
    dep = {"apiVersion": APPS, "kind": "Deployment", "metadata": {"name": "app"},
           "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "app"}},
                    "template": pod_template({"app": "app"})}}
    api.create(APPS, "deployments", dep, namespace="default")
    eventually(lambda: _ready(api, "deployments", "app", replicas=2, availableReplicas=2), what="deployment ready")
    rs_before = _uids(items(api, APPS, "replicasets", "default"))
    pods_before = _uids(items(api, "v1", "pods", "default", label_selector="app=app"))

    _orphan_delete(api, "deployments", "app", (APPS, "replicasets"), "app=app")
    api.create(APPS, "deployments", dep, namespace="default")

    eventually(lambda: _adopted(api, "deployments", "app", (APPS, "replicasets"), "app=app", 1),
               what="replicaset adopted")
    eventually(lambda: _ready(api, "deployments", "app", replicas=2, availableReplicas=2),
               what="deployment ready again")
    assert _uids(items(api, APPS, "replicasets", "default")) == rs_before  # no new ReplicaSet
    assert _uids(items(api, "v1", "pods", "default", label_selector="app=app")) == pods_before


def test_recreated_daemonset_adopts_its_pods(api: Any, cluster: SimulatedCluster) -> None:
    ds = {"apiVersion": APPS, "kind": "DaemonSet", "metadata": {"name": "agent"},
          "spec": {"selector": {"matchLabels": {"app": "agent"}},
                   "template": pod_template({"app": "agent"}, nodeSelector={"role": "storage"})}}
    api.create(APPS, "daemonsets", ds, namespace="default")
    eventually(lambda: _ready(api, "daemonsets", "agent", desiredNumberScheduled=2, numberReady=2),
               what="daemonset ready")
    before = _uids(items(api, "v1", "pods", "default", label_selector="app=agent"))

    _orphan_delete(api, "daemonsets", "agent", POD, "app=agent")
    api.create(APPS, "daemonsets", ds, namespace="default")

    eventually(lambda: _adopted(api, "daemonsets", "agent", POD, "app=agent", 2), what="pods adopted")
    eventually(lambda: _ready(api, "daemonsets", "agent", currentNumberScheduled=2, numberReady=2),
               what="daemonset ready again")
    assert _uids(items(api, "v1", "pods", "default", label_selector="app=agent")) == before


def test_pod_whose_labels_stop_matching_is_released_and_replaced(api: Any, cluster: SimulatedCluster) -> None:
    api.create(APPS, "replicasets", _rs("web", {"app": "web"}, replicas=1), namespace="default")
    eventually(lambda: _ready(api, "replicasets", "web", replicas=1, readyReplicas=1), what="rs ready")
    pod = items(api, "v1", "pods", "default", label_selector="app=web")[0]
    name = pod["metadata"]["name"]

    api.patch("v1", "pods", name, {"metadata": {"labels": {"app": "debug"}}}, namespace="default")

    eventually(lambda: not api.get("v1", "pods", name, "default")["metadata"].get("ownerReferences"),
               what="pod released")
    replacement = eventually(lambda: [p for p in items(api, "v1", "pods", "default", label_selector="app=web")
                                      if p["metadata"]["name"] != name], what="replacement pod")
    assert len(replacement) == 1
    assert api.get("v1", "pods", name, "default")["metadata"]["uid"] == pod["metadata"]["uid"]  # kept, not deleted


def test_foreign_and_dying_pods_are_not_adopted(api: Any, cluster: SimulatedCluster) -> None:
    keeper = _create(api, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "keeper"}})
    _create(api, _pod("foreign", {"app": "web"}, keeper))
    _being_deleted_pod(api, "dying", {"app": "web"})

    api.create(APPS, "replicasets", _rs("web", {"app": "web"}, replicas=1), namespace="default")

    rs = eventually(lambda: _ready(api, "replicasets", "web", replicas=1, readyReplicas=1), what="rs ready")
    # It made its own pod rather than counting either candidate.
    mine = [p for p in items(api, "v1", "pods", "default", label_selector="app=web")
            if _owner_uids([p]) == {rs["metadata"]["uid"]}]
    assert len(mine) == 1 and mine[0]["metadata"]["name"] not in ("foreign", "dying")
    assert _refs(api, "foreign") == [(keeper["metadata"]["uid"], True)]
    assert _refs(api, "dying") == []
    api.patch("v1", "pods", "dying", {"metadata": {"finalizers": None}}, namespace="default")
