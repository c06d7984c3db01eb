"""Deployments, ReplicaSets, StatefulSets, DaemonSets and PVC binding in the simulated cluster."""

from __future__ import annotations

import time
from typing import Any

from rook_py.envtest.cluster import SimulatedCluster
from rook_py.envtest.cluster.base import DelayingQueue, int_or_percent, spec_hash
from rook_py.framework.client.errors import NotFound
from tests.envtest import cluster_support
from tests.envtest.cluster_support import eventually, items, names, pod_template

# Fixtures shared by the simulated-cluster tests (re-exported so pytest finds them here).
api = cluster_support.api
cluster = cluster_support.cluster

APPS = "apps/v1"


def _deployment(name: str, replicas: int, image: str = "nginx:1.25", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": APPS, "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": pod_template({"app": name}, image), **spec}}


def _status_is(api: Any, resource: str, name: str, **want: Any) -> dict[str, Any] | None:
    obj: dict[str, Any] = api.get(APPS, resource, name, "default")
    status = obj.get("status") or {}
    ok = all(status.get(k, 0) == v for k, v in want.items())
    ok = ok and status.get("observedGeneration") == obj["metadata"].get("generation")
    return obj if ok else None


def _cond(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in obj["status"]["conditions"] if c["type"] == type_)


def test_deployment_gets_replicaset_ready_pods_and_full_status(api: Any, cluster: SimulatedCluster) -> None:
    api.create(APPS, "deployments", _deployment("web", 3), namespace="default")
    dep = eventually(lambda: _status_is(api, "deployments", "web", replicas=3, readyReplicas=3,
                                        updatedReplicas=3, availableReplicas=3), what="deployment ready")
    assert _cond(dep, "Available")["status"] == "True"
    assert _cond(dep, "Available")["reason"] == "MinimumReplicasAvailable"
    progressing = _cond(dep, "Progressing")
    assert (progressing["status"], progressing["reason"]) == ("True", "NewReplicaSetAvailable")
    rs_list = items(api, APPS, "replicasets", "default")
    assert len(rs_list) == 1
    rs = rs_list[0]
    pod_hash = rs["metadata"]["labels"]["pod-template-hash"]
    assert rs["metadata"]["name"] == f"web-{pod_hash}"
    assert rs["spec"]["selector"]["matchLabels"] == {"app": "web", "pod-template-hash": pod_hash}
    assert rs["metadata"]["ownerReferences"][0]["uid"] == dep["metadata"]["uid"]
    assert rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    pods = items(api, "v1", "pods", "default", label_selector="app=web")
    assert len(pods) == 3
    for pod in pods:
        ref = pod["metadata"]["ownerReferences"][0]
        assert (ref["kind"], ref["uid"], ref["controller"], ref["blockOwnerDeletion"]) == (
            "ReplicaSet", rs["metadata"]["uid"], True, True)
        assert pod["metadata"]["name"].startswith(f"web-{pod_hash}-")
        assert pod["metadata"]["labels"]["pod-template-hash"] == pod_hash


def test_deployment_scales_and_rolls_to_a_new_template(api: Any, cluster: SimulatedCluster) -> None:
    api.create(APPS, "deployments", _deployment("roll", 2), namespace="default")
    eventually(lambda: _status_is(api, "deployments", "roll", replicas=2, availableReplicas=2), what="v1")
    dep = api.get(APPS, "deployments", "roll", "default")
    dep["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.26"
    dep["spec"]["replicas"] = 4
    api.update(APPS, "deployments", dep)

    def rolled() -> dict[str, Any] | None:
        d = _status_is(api, "deployments", "roll", replicas=4, updatedReplicas=4, readyReplicas=4,
                       availableReplicas=4)
        pods = items(api, "v1", "pods", "default", label_selector="app=roll")
        if d is None or len(pods) != 4:
            return None
        if any(p["spec"]["containers"][0]["image"] != "nginx:1.26" for p in pods):
            return None
        return d

    d = eventually(rolled, what="rolled out")
    assert _cond(d, "Progressing")["reason"] == "NewReplicaSetAvailable"
    replicas = {rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]: rs["spec"]["replicas"]
                for rs in items(api, APPS, "replicasets", "default")}
    assert replicas == {"1": 0, "2": 4}  # the old ReplicaSet is kept, scaled to zero (history)

    d["spec"]["replicas"] = 1
    api.update(APPS, "deployments", d)
    eventually(lambda: _status_is(api, "deployments", "roll", replicas=1, availableReplicas=1)
               and len(items(api, "v1", "pods", "default", label_selector="app=roll")) == 1, what="scaled down")


def test_deployment_revision_annotation_without_generation_bump(api: Any, cluster: SimulatedCluster) -> None:
    # The controller writes the revision annotation through /status (upstream sync.go); the
    # Deployment status strategy keeps annotation changes, so generation stays 1.
    api.create(APPS, "deployments", _deployment("rev", 1), namespace="default")
    dep = eventually(lambda: _status_is(api, "deployments", "rev", availableReplicas=1), what="ready")
    assert dep["metadata"]["generation"] == 1
    assert dep["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"


def test_deployment_that_cannot_progress_exceeds_its_deadline(api: Any, cluster: SimulatedCluster) -> None:
    body = _deployment("stuck", 1, progressDeadlineSeconds=1)
    body["spec"]["template"]["spec"]["nodeSelector"] = {"zone": "nowhere"}  # never schedulable
    api.create(APPS, "deployments", body, namespace="default")

    def timed_out() -> dict[str, Any] | None:
        d: dict[str, Any] = api.get(APPS, "deployments", "stuck", "default")
        conds = {c["type"]: c for c in (d.get("status") or {}).get("conditions", [])}
        return d if conds.get("Progressing", {}).get("reason") == "ProgressDeadlineExceeded" else None

    d = eventually(timed_out, timeout=15, what="ProgressDeadlineExceeded")
    assert _cond(d, "Progressing")["status"] == "False"
    assert _cond(d, "Available")["status"] == "False"


def test_rollback_reuses_the_earlier_replicaset(api: Any, cluster: SimulatedCluster) -> None:
    api.create(APPS, "deployments", _deployment("back", 1, image="app:1"), namespace="default")
    eventually(lambda: _status_is(api, "deployments", "back", availableReplicas=1), what="v1")
    for image in ("app:2", "app:1"):
        d = api.get(APPS, "deployments", "back", "default")
        d["spec"]["template"]["spec"]["containers"][0]["image"] = image
        api.update(APPS, "deployments", d)
        eventually(lambda i=image: _status_is(api, "deployments", "back", updatedReplicas=1, availableReplicas=1)
                   and [p["spec"]["containers"][0]["image"]
                        for p in items(api, "v1", "pods", "default", label_selector="app=back")] == [i],
                   what=f"rolled to {image}")
    sets = items(api, APPS, "replicasets", "default")
    assert len(sets) == 2  # app:1's ReplicaSet came back instead of a third one
    by_image = {rs["spec"]["template"]["spec"]["containers"][0]["image"]: rs for rs in sets}
    assert by_image["app:1"]["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    assert by_image["app:1"]["spec"]["replicas"] == 1 and by_image["app:2"]["spec"]["replicas"] == 0


def test_steady_state_makes_no_writes(api: Any) -> None:
    """Level-based controllers must converge: once everything is Ready, resyncs write nothing."""
    sim = SimulatedCluster(api, nodes=2, pod_ready_delay=0.01, resync_period=0.05)
    sim.start()
    try:
        api.create(APPS, "deployments", _deployment("calm", 2), namespace="default")
        api.create(APPS, "statefulsets", _statefulset("still", 2), namespace="default")
        api.create(APPS, "daemonsets", {"apiVersion": APPS, "kind": "DaemonSet", "metadata": {"name": "quiet"},
                                        "spec": {"selector": {"matchLabels": {"app": "quiet"}},
                                                 "template": pod_template({"app": "quiet"})}}, namespace="default")
        eventually(lambda: _status_is(api, "deployments", "calm", availableReplicas=2)
                   and _status_is(api, "statefulsets", "still", readyReplicas=2)
                   and _status_is(api, "daemonsets", "quiet", numberReady=2), what="all ready")
        assert sim.wait_idle(timeout=10)
        events: list[tuple[str, str]] = []
        unsubscribe = api.subscribe(lambda event_type, _v, resource, obj: events.append((event_type, resource)))
        try:
            time.sleep(0.3)  # six resync periods
        finally:
            unsubscribe()
        assert events == []
    finally:
        sim.stop()


def test_recreate_strategy_replaces_all_pods(api: Any, cluster: SimulatedCluster) -> None:
    api.create(APPS, "deployments", _deployment("rec", 2, strategy={"type": "Recreate"}), namespace="default")
    eventually(lambda: _status_is(api, "deployments", "rec", replicas=2, availableReplicas=2), what="v1")
    d = api.get(APPS, "deployments", "rec", "default")
    d["spec"]["template"]["metadata"]["labels"]["tier"] = "x"
    api.update(APPS, "deployments", d)
    eventually(lambda: _status_is(api, "deployments", "rec", replicas=2, updatedReplicas=2, availableReplicas=2)
               and all(p["metadata"]["labels"].get("tier") == "x"
                       for p in items(api, "v1", "pods", "default", label_selector="app=rec")), what="recreated")


def test_deleting_a_deployment_cascades_to_pods(api: Any, cluster: SimulatedCluster) -> None:
    api.create(APPS, "deployments", _deployment("gone", 2), namespace="default")
    eventually(lambda: _status_is(api, "deployments", "gone", availableReplicas=2), what="ready")
    api.delete(APPS, "deployments", "gone", "default", propagation_policy="Foreground")
    eventually(lambda: not items(api, APPS, "replicasets", "default")
               and not items(api, "v1", "pods", "default", label_selector="app=gone"), what="cascade")
    eventually(lambda: _missing(api, APPS, "deployments", "gone"), what="deployment removed")


def _missing(api: Any, api_version: str, resource: str, name: str, namespace: str = "default") -> bool:
    try:
        api.get(api_version, resource, name, namespace)
    except NotFound:
        return True
    return False


def _statefulset(name: str, replicas: int, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": APPS, "kind": "StatefulSet", "metadata": {"name": name},
            "spec": {"replicas": replicas, "serviceName": name, "selector": {"matchLabels": {"app": name}},
                     "template": pod_template({"app": name}),
                     "volumeClaimTemplates": [{"metadata": {"name": "data"},
                                               "spec": {"accessModes": ["ReadWriteOnce"],
                                                        "resources": {"requests": {"storage": "2Gi"}}}}],
                     **spec}}


def test_statefulset_ordered_pods_pvcs_status_and_rolling_update(api: Any, cluster: SimulatedCluster) -> None:
    api.create(APPS, "statefulsets", _statefulset("db", 3), namespace="default")
    ss = eventually(lambda: _status_is(api, "statefulsets", "db", replicas=3, readyReplicas=3,
                                       currentReplicas=3, updatedReplicas=3, availableReplicas=3), what="ready")
    assert ss["status"]["currentRevision"] == ss["status"]["updateRevision"]
    pods = {p["metadata"]["name"]: p for p in items(api, "v1", "pods", "default", label_selector="app=db")}
    assert sorted(pods) == ["db-0", "db-1", "db-2"]
    # OrderedReady: each pod was created only after its predecessor was Ready.
    created = [pods[f"db-{i}"]["metadata"]["creationTimestamp"] for i in range(3)]
    assert created == sorted(created)
    pod = pods["db-1"]
    assert pod["spec"]["hostname"] == "db-1" and pod["spec"]["subdomain"] == "db"
    assert pod["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"] == "db-1"
    assert {"name": "data", "persistentVolumeClaim": {"claimName": "data-db-1"}} in pod["spec"]["volumes"]
    claims = eventually(lambda: (lambda cs: cs if len(cs) == 3 and all(
        c.get("status", {}).get("phase") == "Bound" for c in cs) else None)(
        items(api, "v1", "persistentvolumeclaims", "default")), what="claims bound")
    assert names(claims) == ["data-db-0", "data-db-1", "data-db-2"]
    old_revision = ss["status"]["updateRevision"]

    ss["spec"]["template"]["spec"]["containers"][0]["image"] = "postgres:17"
    api.update(APPS, "statefulsets", ss)

    def updated() -> dict[str, Any] | None:
        s = _status_is(api, "statefulsets", "db", replicas=3, readyReplicas=3, updatedReplicas=3)
        return s if s and s["status"]["currentRevision"] == s["status"]["updateRevision"] != old_revision else None

    ss = eventually(updated, what="rolling update complete")
    assert ss["status"]["currentReplicas"] == 3
    assert all(p["spec"]["containers"][0]["image"] == "postgres:17"
               for p in items(api, "v1", "pods", "default", label_selector="app=db"))

    ss["spec"]["replicas"] = 1
    api.update(APPS, "statefulsets", ss)
    eventually(lambda: names(items(api, "v1", "pods", "default", label_selector="app=db")) == ["db-0"],
               what="scaled down from the highest ordinal")
    # StatefulSets never delete their claims on scale-down (default retention policy).
    assert names(items(api, "v1", "persistentvolumeclaims", "default")) == ["data-db-0", "data-db-1", "data-db-2"]


def test_statefulset_claim_retention_policy_delete(api: Any, cluster: SimulatedCluster) -> None:
    body = _statefulset("tmp", 2, podManagementPolicy="Parallel",
                        persistentVolumeClaimRetentionPolicy={"whenDeleted": "Delete", "whenScaled": "Delete"})
    api.create(APPS, "statefulsets", body, namespace="default")
    ss = eventually(lambda: _status_is(api, "statefulsets", "tmp", readyReplicas=2), what="ready")
    claims = {c["metadata"]["name"]: c for c in items(api, "v1", "persistentvolumeclaims", "default")}
    assert claims["data-tmp-0"]["metadata"]["ownerReferences"][0]["uid"] == ss["metadata"]["uid"]
    ss["spec"]["replicas"] = 1
    api.update(APPS, "statefulsets", ss)
    eventually(lambda: names(items(api, "v1", "persistentvolumeclaims", "default")) == ["data-tmp-0"],
               what="scaled-down ordinal's claim collected")
    api.delete(APPS, "statefulsets", "tmp", "default")
    eventually(lambda: not items(api, "v1", "persistentvolumeclaims", "default")
               and not items(api, "v1", "pods", "default", label_selector="app=tmp"), what="all collected")


def test_statefulset_partitioned_rollout_stops_at_partition(api: Any, cluster: SimulatedCluster) -> None:
    api.create(APPS, "statefulsets", _statefulset("part", 3, podManagementPolicy="Parallel",
                                                  updateStrategy={"type": "RollingUpdate",
                                                                  "rollingUpdate": {"partition": 2}}),
               namespace="default")
    ss = eventually(lambda: _status_is(api, "statefulsets", "part", readyReplicas=3), what="ready")
    ss["spec"]["template"]["metadata"]["labels"]["v"] = "2"
    api.update(APPS, "statefulsets", ss)

    def partial() -> dict[str, Any] | None:
        s = _status_is(api, "statefulsets", "part", readyReplicas=3, updatedReplicas=1, currentReplicas=2)
        return s

    ss = eventually(partial, what="only ordinal 2 updated")
    assert ss["status"]["currentRevision"] != ss["status"]["updateRevision"]
    labels = {p["metadata"]["name"]: p["metadata"]["labels"].get("v")
              for p in items(api, "v1", "pods", "default", label_selector="app=part")}
    assert labels == {"part-0": None, "part-1": None, "part-2": "2"}


def test_daemonset_one_pod_per_eligible_node(api: Any, cluster: SimulatedCluster) -> None:
    ds = {"apiVersion": APPS, "kind": "DaemonSet", "metadata": {"name": "agent"},
          "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": pod_template({"app": "agent"})}}
    api.create(APPS, "daemonsets", ds, namespace="default")
    # node-c is tainted dedicated=infra:NoSchedule; the template does not tolerate it.
    got = eventually(lambda: _status_is(api, "daemonsets", "agent", desiredNumberScheduled=2,
                                        currentNumberScheduled=2, numberReady=2, updatedNumberScheduled=2,
                                        numberAvailable=2), what="daemonset ready")
    pods = items(api, "v1", "pods", "default", label_selector="app=agent")
    assert sorted(p["spec"]["nodeName"] for p in pods) == ["node-a", "node-b"]
    assert got["status"]["numberMisscheduled"] == 0

    got["spec"]["template"]["spec"]["tolerations"] = [{"key": "dedicated", "operator": "Exists"}]
    got["spec"]["template"]["spec"]["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "c"]}]}]}}}
    api.update(APPS, "daemonsets", got)

    def moved() -> dict[str, Any] | None:
        d = _status_is(api, "daemonsets", "agent", desiredNumberScheduled=2, numberReady=2, updatedNumberScheduled=2)
        nodes = sorted(p["spec"].get("nodeName", "") for p in items(api, "v1", "pods", "default",
                                                                    label_selector="app=agent"))
        return d if d and nodes == ["node-a", "node-c"] else None

    eventually(moved, what="pods follow affinity and tolerations")

    got = api.get(APPS, "daemonsets", "agent", "default")
    got["spec"]["template"]["spec"]["nodeSelector"] = {"role": "storage"}
    api.update(APPS, "daemonsets", got)
    eventually(lambda: _status_is(api, "daemonsets", "agent", desiredNumberScheduled=1, numberReady=1), what="selector")


def test_daemonset_surge_update_starts_new_pod_before_removing_old(api: Any, cluster: SimulatedCluster) -> None:
    ds = {"apiVersion": APPS, "kind": "DaemonSet", "metadata": {"name": "surge"},
          "spec": {"selector": {"matchLabels": {"app": "surge"}}, "template": pod_template({"app": "surge"}, "v:1"),
                   "updateStrategy": {"type": "RollingUpdate",
                                      "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}}}
    api.create(APPS, "daemonsets", ds, namespace="default")
    got = eventually(lambda: _status_is(api, "daemonsets", "surge", numberReady=2, updatedNumberScheduled=2),
                     what="ready")
    peak: list[int] = []
    unsubscribe = api.subscribe(lambda *_: peak.append(
        len(items(api, "v1", "pods", "default", label_selector="app=surge"))))
    try:
        got["spec"]["template"]["spec"]["containers"][0]["image"] = "v:2"
        api.update(APPS, "daemonsets", got)

        def done() -> bool:
            pods = items(api, "v1", "pods", "default", label_selector="app=surge")
            return bool(_status_is(api, "daemonsets", "surge", numberReady=2, updatedNumberScheduled=2)) and \
                sorted(p["spec"]["containers"][0]["image"] for p in pods) == ["v:2", "v:2"]

        eventually(done, what="surge rollout complete")
    finally:
        unsubscribe()
    assert max(peak) == 3  # one extra pod at a time...
    assert min(peak) >= 2  # ...and never fewer than one per node


def test_standalone_pvc_is_bound_to_a_new_volume_and_volume_reclaimed(api: Any, cluster: SimulatedCluster) -> None:
    claim = api.create("v1", "persistentvolumeclaims", {
        "metadata": {"name": "scratch"},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "fast",
                 "resources": {"requests": {"storage": "5Gi"}}}}, namespace="default")
    bound = eventually(lambda: (lambda c: c if c.get("status", {}).get("phase") == "Bound" else None)(
        api.get("v1", "persistentvolumeclaims", "scratch", "default")), what="bound")
    volume_name = bound["spec"]["volumeName"]
    assert volume_name == f"pvc-{claim['metadata']['uid']}"
    assert bound["status"]["capacity"] == {"storage": "5Gi"}
    pv = api.get("v1", "persistentvolumes", volume_name)
    assert pv["spec"]["claimRef"]["uid"] == claim["metadata"]["uid"]
    assert pv["spec"]["storageClassName"] == "fast"
    assert pv["status"]["phase"] == "Bound"
    bound["spec"]["resources"]["requests"]["storage"] = "8Gi"
    api.update("v1", "persistentvolumeclaims", bound)
    eventually(lambda: api.get("v1", "persistentvolumeclaims", "scratch", "default")["status"]["capacity"]
               == {"storage": "8Gi"}, what="claim expanded")
    assert api.get("v1", "persistentvolumes", volume_name)["spec"]["capacity"] == {"storage": "8Gi"}
    api.delete("v1", "persistentvolumeclaims", "scratch", "default")
    eventually(lambda: _missing(api, "v1", "persistentvolumes", volume_name, None), what="volume reclaimed")


# --- pure helpers -----------------------------------------------------------------------------------

def test_int_or_percent_rounding() -> None:
    assert int_or_percent("25%", 10, round_up=True) == 3
    assert int_or_percent("25%", 10, round_up=False) == 2
    assert int_or_percent(2, 10, round_up=False) == 2
    assert int_or_percent(None, 10, round_up=True) == 0


def test_spec_hash_is_stable_and_label_safe() -> None:
    a = spec_hash({"spec": {"containers": [{"name": "x"}]}})
    assert a == spec_hash({"spec": {"containers": [{"name": "x"}]}})
    assert a != spec_hash({"spec": {"containers": [{"name": "y"}]}})
    assert a != spec_hash({"spec": {"containers": [{"name": "x"}]}}, collision_count=1)
    assert len(a) == 10 and a.isalnum() and a.islower()


def test_delaying_queue_dedups_and_orders_by_due_time() -> None:
    q = DelayingQueue()
    q.add("late", 0.05)
    q.add("now")
    q.add("now")
    q.add("late", 0.0)  # an earlier due time wins
    assert q.pending() == 2
    assert {q.get(timeout=1), q.get(timeout=1)} == {"now", "late"}
    assert q.get(timeout=0.01) is None
    q.add("x", 10)
    q.close()
    assert q.get() is None
