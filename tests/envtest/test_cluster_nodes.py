"""Simulated nodes, scheduling predicates, and the fake kubelet's pod lifecycle and test hooks."""

from __future__ import annotations

from typing import Any

from rook_py.envtest.cluster import SimulatedCluster
from rook_py.envtest.cluster.nodes import node_affinity_matches, node_fits, tolerates
from rook_py.framework.client.errors import NotFound
from tests.envtest import cluster_support
from tests.envtest.cluster_support import eventually, items, names

# Fixtures shared by the simulated-cluster tests (re-exported so pytest finds them here).
api = cluster_support.api
cluster = cluster_support.cluster

POD = {"apiVersion": "v1", "kind": "Pod",
       "spec": {"containers": [{"name": "main", "image": "busybox"}, {"name": "side", "image": "envoy"}]}}


def _pod(name: str, **spec: Any) -> dict[str, Any]:
    return {**POD, "metadata": {"name": name}, "spec": {**POD["spec"], **spec}}


def _ready(api: Any, name: str) -> dict[str, Any] | None:
    pod: dict[str, Any] = api.get("v1", "pods", name, "default")
    conds = {c["type"]: c["status"] for c in pod.get("status", {}).get("conditions", [])}
    return pod if pod["status"].get("phase") == "Running" and conds.get("Ready") == "True" else None


def test_nodes_are_registered_ready_with_labels_and_taints(api: Any, cluster: SimulatedCluster) -> None:
    nodes = {n["metadata"]["name"]: n for n in items(api, "v1", "nodes")}
    assert sorted(nodes) == ["node-a", "node-b", "node-c"]
    assert nodes["node-a"]["metadata"]["labels"]["zone"] == "a"
    assert nodes["node-a"]["metadata"]["labels"]["kubernetes.io/hostname"] == "node-a"
    assert nodes["node-c"]["spec"]["taints"] == [{"key": "dedicated", "value": "infra", "effect": "NoSchedule"}]
    ready = eventually(lambda: all(
        any(c["type"] == "Ready" and c["status"] == "True" for c in n.get("status", {}).get("conditions", []))
        for n in items(api, "v1", "nodes")), what="nodes Ready")
    assert ready


def test_node_deleted_by_a_test_is_registered_again(api: Any, cluster: SimulatedCluster) -> None:
    api.delete("v1", "nodes", "node-b")
    node = eventually(lambda: api.get("v1", "nodes", "node-b"), what="node-b re-registered")
    assert node["metadata"]["labels"]["zone"] == "b"


def test_pod_is_bound_then_running_and_ready_with_full_status(api: Any, cluster: SimulatedCluster) -> None:
    api.create("v1", "pods", _pod("web"), namespace="default")
    pod = eventually(lambda: _ready(api, "web"), what="pod ready")
    assert pod["spec"]["nodeName"] in ("node-a", "node-b")  # node-c is tainted
    status = pod["status"]
    assert status["podIP"].startswith("10.244.")
    assert status["podIPs"] == [{"ip": status["podIP"]}]
    assert status["hostIP"].startswith("172.18.0.")
    assert status["qosClass"] == "BestEffort"
    by_name = {c["name"]: c for c in status["containerStatuses"]}
    assert sorted(by_name) == ["main", "side"]
    assert all(c["ready"] and c["restartCount"] == 0 and "running" in c["state"] for c in by_name.values())
    assert {c["type"] for c in status["conditions"]} >= {"PodScheduled", "Initialized", "ContainersReady", "Ready"}
    managers = {m["manager"] for m in pod["metadata"].get("managedFields") or []}
    if managers:  # the emulator records field managers (the fake does not): writes name their component
        assert {"kube-scheduler", "kubelet"} <= managers


def test_init_containers_are_reported_completed_and_cluster_goes_idle(api: Any, cluster: SimulatedCluster) -> None:
    api.create("v1", "pods", _pod("with-init", initContainers=[{"name": "setup", "image": "busybox"}]),
               namespace="default")
    pod = eventually(lambda: _ready(api, "with-init"), what="ready")
    (init,) = pod["status"]["initContainerStatuses"]
    assert init["name"] == "setup" and init["state"]["terminated"]["reason"] == "Completed"
    assert cluster.wait_idle(timeout=10)
    assert cluster.reconcile_errors == 0


def test_scheduler_spreads_and_honours_selector_affinity_and_tolerations(api: Any, cluster: SimulatedCluster) -> None:
    api.create("v1", "pods", _pod("a1"), namespace="default")
    api.create("v1", "pods", _pod("a2"), namespace="default")
    api.create("v1", "pods", _pod("sel", nodeSelector={"zone": "b"}), namespace="default")
    api.create("v1", "pods", _pod("tol", nodeSelector={"zone": "c"},
                                  tolerations=[{"key": "dedicated", "operator": "Equal", "value": "infra",
                                                "effect": "NoSchedule"}]), namespace="default")
    api.create("v1", "pods", _pod("aff", affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["a", "b"]}]}]}}},
        tolerations=[{"operator": "Exists"}]), namespace="default")
    for name in ("a1", "a2", "sel", "tol", "aff"):
        eventually(lambda n=name: _ready(api, n), what=f"{name} ready")
    node = {n: api.get("v1", "pods", n, "default")["spec"]["nodeName"] for n in ("a1", "a2", "sel", "tol", "aff")}
    assert {node["a1"], node["a2"]} == {"node-a", "node-b"}  # least-loaded spreading
    assert node["sel"] == "node-b"
    assert node["tol"] == "node-c"
    assert node["aff"] == "node-c"


def test_unschedulable_pod_stays_pending_with_reason(api: Any, cluster: SimulatedCluster) -> None:
    api.create("v1", "pods", _pod("nowhere", nodeSelector={"zone": "mars"}), namespace="default")

    def unschedulable() -> dict[str, Any] | None:
        pod: dict[str, Any] = api.get("v1", "pods", "nowhere", "default")
        conds = {c["type"]: c for c in pod.get("status", {}).get("conditions", [])}
        sched = conds.get("PodScheduled")
        return pod if sched and sched["status"] == "False" and sched["reason"] == "Unschedulable" else None

    pod = eventually(unschedulable, what="Unschedulable condition")
    assert pod["status"]["phase"] == "Pending"
    assert not pod["spec"].get("nodeName")


def test_hooks_not_ready_crashloop_and_ready_again(api: Any, cluster: SimulatedCluster) -> None:
    api.create("v1", "pods", _pod("flaky"), namespace="default")
    eventually(lambda: _ready(api, "flaky"), what="ready")

    cluster.set_pod_not_ready("default", "flaky")

    def not_ready() -> dict[str, Any] | None:
        pod: dict[str, Any] = api.get("v1", "pods", "flaky", "default")
        return None if _ready(api, "flaky") else pod

    pod = eventually(not_ready, what="not ready")
    assert pod["status"]["phase"] == "Running"
    assert not any(c["ready"] for c in pod["status"]["containerStatuses"])

    cluster.set_pod_crashloop("default", "flaky")

    def crashed_twice() -> dict[str, Any] | None:
        p: dict[str, Any] = api.get("v1", "pods", "flaky", "default")
        statuses = p["status"]["containerStatuses"]
        ok = all(c["restartCount"] >= 2 and c["state"].get("waiting", {}).get("reason") == "CrashLoopBackOff"
                 for c in statuses)
        return p if ok else None

    pod = eventually(crashed_twice, what="restartCount growing in CrashLoopBackOff")
    assert pod["status"]["containerStatuses"][0]["lastState"]["terminated"]["exitCode"] == 1

    cluster.set_pod_mode("default", "flaky", "ready")
    pod = eventually(lambda: _ready(api, "flaky"), what="ready again")
    assert all(c["restartCount"] >= 2 for c in pod["status"]["containerStatuses"])  # history is kept


def test_hook_does_not_outlive_the_pod(api: Any, cluster: SimulatedCluster) -> None:
    api.create("v1", "pods", _pod("again"), namespace="default")
    eventually(lambda: _ready(api, "again"), what="ready")
    cluster.set_pod_crashloop("default", "again")
    eventually(lambda: not _ready(api, "again"), what="crash looping")
    api.delete("v1", "pods", "again", "default")
    api.create("v1", "pods", _pod("again"), namespace="default")  # a successor with the same name
    pod = eventually(lambda: _ready(api, "again"), what="successor ready")
    assert all(c["restartCount"] == 0 for c in pod["status"]["containerStatuses"])


def test_endpoints_follow_selected_pods_and_readiness(api: Any, cluster: SimulatedCluster) -> None:
    api.create("v1", "services", {"metadata": {"name": "web", "labels": {"app": "web"}},
                                  "spec": {"selector": {"app": "web"},
                                           "ports": [{"name": "http", "port": 80, "targetPort": "http"},
                                                     {"name": "metrics", "port": 9090, "targetPort": 9100}]}},
               namespace="default")
    for name in ("w1", "w2"):
        pod = _pod(name)
        pod["metadata"]["labels"] = {"app": "web"}
        pod["spec"]["containers"][0]["ports"] = [{"name": "http", "containerPort": 8080}]
        api.create("v1", "pods", pod, namespace="default")
    api.create("v1", "pods", _pod("other"), namespace="default")  # not selected

    def endpoints(ready: int, not_ready: int) -> dict[str, Any] | None:
        ep: dict[str, Any] = api.get("v1", "endpoints", "web", "default")
        subsets = ep.get("subsets") or []
        got = (sum(len(s.get("addresses", [])) for s in subsets), sum(len(s.get("notReadyAddresses", [])) for s in subsets))
        return ep if got == (ready, not_ready) else None

    ep = eventually(lambda: endpoints(2, 0), what="two ready addresses")
    (subset,) = ep["subsets"]
    assert sorted(a["targetRef"]["name"] for a in subset["addresses"]) == ["w1", "w2"]
    assert all(a["ip"].startswith("10.244.") for a in subset["addresses"])
    assert {(p["name"], p["port"]) for p in subset["ports"]} == {("http", 8080), ("metrics", 9100)}
    assert ep["metadata"]["labels"] == {"app": "web"}

    cluster.set_pod_not_ready("default", "w2")
    ep = eventually(lambda: endpoints(1, 1), what="w2 moves to notReadyAddresses")
    assert ep["subsets"][0]["notReadyAddresses"][0]["targetRef"]["name"] == "w2"

    api.delete("v1", "services", "web", "default")

    def endpoints_gone() -> bool:
        try:
            api.get("v1", "endpoints", "web", "default")
        except NotFound:
            return True
        return False

    eventually(endpoints_gone, what="endpoints removed with the service")


def test_node_hook_not_ready_then_back(api: Any, cluster: SimulatedCluster) -> None:
    api.create("apps/v1", "daemonsets", {
        "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
        "spec": {"selector": {"matchLabels": {"app": "agent"}},
                 "template": {"metadata": {"labels": {"app": "agent"}},
                              "spec": {"containers": [{"name": "a", "image": "agent"}]}}}}, namespace="default")
    pod = _pod("on-a", nodeSelector={"zone": "a"})
    api.create("v1", "pods", pod, namespace="default")
    eventually(lambda: _ready(api, "on-a"), what="ready on node-a")
    eventually(lambda: api.get("apps/v1", "daemonsets", "agent", "default").get("status", {}).get("numberReady") == 2,
               what="daemonset ready")

    cluster.set_node_ready("node-a", False)

    def node_down() -> dict[str, Any] | None:
        node: dict[str, Any] = api.get("v1", "nodes", "node-a")
        ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
        taints = {(t["key"], t["effect"]) for t in node["spec"].get("taints") or []}
        down = ready["status"] == "Unknown" and ("node.kubernetes.io/unreachable", "NoExecute") in taints
        return node if down else None

    eventually(node_down, what="node-a Unknown and tainted unreachable")
    eventually(lambda: _ready(api, "on-a") is None, what="pod on node-a not ready")
    # The daemon pod stays (it tolerates unreachable:NoExecute) but the node no longer counts.
    ds = eventually(lambda: (lambda d: d if d["status"].get("desiredNumberScheduled") == 1 else None)(
        api.get("apps/v1", "daemonsets", "agent", "default")), what="daemonset status")
    assert ds["status"]["numberMisscheduled"] == 1
    assert len(items(api, "v1", "pods", "default", label_selector="app=agent")) == 2
    api.create("v1", "pods", _pod("new-on-a", nodeSelector={"zone": "a"}), namespace="default")

    cluster.set_node_ready("node-a", True)
    eventually(lambda: _ready(api, "on-a"), what="pod ready again")
    eventually(lambda: _ready(api, "new-on-a"), what="pending pod scheduled once the node is back")
    node = api.get("v1", "nodes", "node-a")
    assert not [t for t in node["spec"].get("taints") or [] if t["key"] == "node.kubernetes.io/unreachable"]
    try:
        cluster.set_node_ready("node-z", False)
    except ValueError:
        pass
    else:
        raise AssertionError("expected ValueError for an unknown node")


def test_hook_on_missing_pod_raises_not_found(api: Any, cluster: SimulatedCluster) -> None:
    try:
        cluster.set_pod_not_ready("default", "ghost")
    except NotFound:
        pass
    else:
        raise AssertionError("expected NotFound")


# --- pure predicates --------------------------------------------------------------------------------

def test_tolerations_match_like_kubernetes() -> None:
    taint = {"key": "k", "value": "v", "effect": "NoSchedule"}
    assert tolerates([{"key": "k", "operator": "Equal", "value": "v", "effect": "NoSchedule"}], taint)
    assert tolerates([{"key": "k", "operator": "Exists"}], taint)  # empty effect: all effects
    assert tolerates([{"operator": "Exists"}], taint)  # empty key + Exists: everything
    assert not tolerates([{"key": "k", "operator": "Equal", "value": "w"}], taint)
    assert not tolerates([{"key": "k", "operator": "Exists", "effect": "NoExecute"}], taint)
    assert not tolerates([], taint)


def test_node_affinity_operators_and_terms() -> None:
    node = {"metadata": {"name": "n1", "labels": {"zone": "a", "disk": "ssd"}}}

    def aff(*terms: dict[str, Any]) -> dict[str, Any]:
        return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": list(terms)}}}

    def expr(key: str, op: str, *values: str) -> dict[str, Any]:
        return {"matchExpressions": [{"key": key, "operator": op, "values": list(values)}]}

    assert node_affinity_matches(node, None)
    assert node_affinity_matches(node, aff(expr("zone", "In", "a", "b")))
    assert not node_affinity_matches(node, aff(expr("zone", "NotIn", "a")))
    assert node_affinity_matches(node, aff(expr("gpu", "DoesNotExist")))
    assert not node_affinity_matches(node, aff(expr("gpu", "Exists")))
    assert node_affinity_matches(node, aff(expr("gpu", "Exists"), expr("disk", "Exists")))  # terms are ORed
    assert node_affinity_matches(node, aff({"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}))
    assert not node_affinity_matches(node, aff({}))  # an empty term matches nothing


def test_node_fits_unschedulable_and_prefer_no_schedule() -> None:
    node = {"metadata": {"name": "n", "labels": {}},
            "spec": {"unschedulable": True, "taints": [{"key": "x", "effect": "PreferNoSchedule"}]}}
    assert not node_fits(node, {})
    assert node_fits(node, {}, ignore_unschedulable=True)  # PreferNoSchedule never filters
    assert node_fits(node, {"tolerations": [{"key": "node.kubernetes.io/unschedulable", "operator": "Exists",
                                             "effect": "NoSchedule"}]})


def test_names_helper_sorts() -> None:
    assert names([{"metadata": {"name": "b"}}, {"metadata": {"name": "a"}}]) == ["a", "b"]
