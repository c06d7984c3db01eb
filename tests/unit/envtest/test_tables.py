"""Server-side Table rendering for CRDs and built-in resources."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from rook_py.envtest.apiserver.tables import builtin_columns, human_duration, to_table

NOW = datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC)


def _ts(ago: timedelta) -> str:
    return (NOW - ago).strftime("%Y-%m-%dT%H:%M:%SZ")


def _meta(name: str, ago: timedelta = timedelta(minutes=5), **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": "ns", "uid": f"uid-{name}", "creationTimestamp": _ts(ago), **extra}


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5, "<invalid>"),
        (-1, "0s"),
        (0, "0s"),
        (59, "59s"),
        (119, "119s"),
        (120, "2m"),
        (7 * 60 + 3, "7m3s"),
        (10 * 60 + 30, "10m"),
        (179 * 60, "179m"),
        (3 * 3600, "3h"),
        (3 * 3600 + 20 * 60, "3h20m"),
        (8 * 3600 + 59 * 60, "8h"),
        (47 * 3600, "47h"),
        (2 * 86400 + 3 * 3600, "2d3h"),
        (3 * 86400, "3d"),
        (8 * 86400, "8d"),
        (729 * 86400, "729d"),
        (2 * 365 * 86400 + 20 * 86400, "2y20d"),
        (3 * 365 * 86400, "3y"),
        (9 * 365 * 86400, "9y"),
    ],
)
def test_human_duration(seconds: int, text: str) -> None:
    assert human_duration(seconds) == text


CRD_COLUMNS = [
    {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas", "description": "desired"},
    {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
    {"name": "Ratio", "type": "number", "jsonPath": ".spec.ratio", "priority": 1, "format": "float"},
    {"name": "Paused", "type": "boolean", "jsonPath": ".spec.paused"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    {"name": "Missing", "type": "string", "jsonPath": ".spec.nope"},
]


def _cr(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "x.io/v1",
        "kind": "Thing",
        "metadata": _meta(name, timedelta(days=2, hours=3)),
        "spec": spec,
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }


def test_crd_table_columns_and_cells() -> None:
    objs = [_cr("a", replicas=3, ratio=1, paused=True), _cr("b", replicas=2.0, paused="yes")]
    table = to_table(objs, CRD_COLUMNS, "things", {"resourceVersion": "42"}, now=NOW)
    assert table["kind"] == "Table"
    assert table["apiVersion"] == "meta.k8s.io/v1"
    assert table["metadata"] == {"resourceVersion": "42"}
    defs = table["columnDefinitions"]
    assert [d["name"] for d in defs] == ["Name", "Replicas", "Ready", "Ratio", "Paused", "Age", "Missing"]
    assert defs[0]["format"] == "name" and defs[0]["type"] == "string" and defs[0]["priority"] == 0
    assert defs[1] == {
        "name": "Replicas",
        "type": "integer",
        "format": "",
        "description": "desired",
        "priority": 0,
    }
    assert defs[3]["priority"] == 1 and defs[3]["format"] == "float"
    assert table["rows"][0]["cells"] == ["a", 3, "True", 1.0, True, "2d3h", None]
    # Values that do not fit the column type render as null, as cellForJSONValue does.
    assert table["rows"][1]["cells"] == ["b", 2, "True", None, None, "2d3h", None]


def test_crd_without_columns_gets_age() -> None:
    table = to_table([_cr("a")], [], "things", {}, now=NOW)
    assert [d["name"] for d in table["columnDefinitions"]] == ["Name", "Age"]
    assert table["columnDefinitions"][1]["type"] == "date"
    assert table["rows"][0]["cells"] == ["a", "2d3h"]


def test_date_column_with_bad_timestamp() -> None:
    obj = _cr("a")
    obj["metadata"]["creationTimestamp"] = "not a time"
    table = to_table([obj], [], "things", {}, now=NOW)
    assert table["rows"][0]["cells"] == ["a", "<invalid>"]


@pytest.mark.parametrize("include", ["Metadata", "Object", "None"])
def test_include_object(include: str) -> None:
    obj = _cr("a", replicas=1)
    row = to_table([obj], CRD_COLUMNS, "things", {}, include, now=NOW)["rows"][0]
    if include == "Metadata":
        assert row["object"] == {
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": obj["metadata"],
        }
    elif include == "Object":
        assert row["object"] == obj
    else:
        assert row["object"] is None


def test_bad_include_object() -> None:
    with pytest.raises(ValueError, match="includeObject"):
        to_table([], None, "pods", {}, "Everything")


def _cells(resource: str, obj: dict[str, Any]) -> dict[str, Any]:
    table = to_table([obj], None, resource, {}, now=NOW)
    return dict(zip([d["name"] for d in table["columnDefinitions"]], table["rows"][0]["cells"], strict=True))


def _headers(resource: str, priority: int = 0) -> list[str]:
    return [d["name"].upper() for d in builtin_columns(resource) if d["priority"] <= priority]


@pytest.mark.parametrize(
    ("resource", "headers"),
    [
        ("pods", ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]),
        ("deployments", ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]),
        ("statefulsets", ["NAME", "READY", "AGE"]),
        (
            "daemonsets",
            ["NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE", "NODE SELECTOR", "AGE"],
        ),
        ("services", ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]),
        ("configmaps", ["NAME", "DATA", "AGE"]),
        ("secrets", ["NAME", "TYPE", "DATA", "AGE"]),
        (
            "persistentvolumeclaims",
            ["NAME", "STATUS", "VOLUME", "CAPACITY", "ACCESS MODES", "STORAGECLASS", "AGE"],
        ),
        ("nodes", ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]),
        ("namespaces", ["NAME", "STATUS", "AGE"]),
        ("leases", ["NAME", "HOLDER", "AGE"]),
        ("roles", ["NAME", "CREATED AT"]),
        ("widgets", ["NAME", "AGE"]),
    ],
)
def test_builtin_headers(resource: str, headers: list[str]) -> None:
    assert _headers(resource) == headers


def test_pod_cells() -> None:
    pod = {
        "metadata": _meta("p", timedelta(minutes=7, seconds=3)),
        "spec": {"containers": [{"name": "a"}, {"name": "b"}], "nodeName": "node-1"},
        "status": {
            "phase": "Running",
            "podIP": "10.0.0.5",
            "containerStatuses": [
                {"name": "a", "ready": True, "restartCount": 2, "state": {"running": {}}},
                {
                    "name": "b",
                    "ready": False,
                    "restartCount": 1,
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                },
            ],
        },
    }
    cells = _cells("pods", pod)
    assert cells["Name"] == "p"
    assert cells["Ready"] == "1/2"
    assert cells["Status"] == "CrashLoopBackOff"
    assert cells["Restarts"] == "3"
    assert cells["Age"] == "7m3s"
    assert cells["IP"] == "10.0.0.5"
    assert cells["Node"] == "node-1"
    assert cells["Nominated Node"] == "<none>"


def test_pod_status_variants() -> None:
    pending = {
        "metadata": _meta("p"),
        "spec": {"containers": [{"name": "a"}]},
        "status": {"phase": "Pending"},
    }
    assert _cells("pods", pending)["Status"] == "Pending"
    assert _cells("pods", pending)["Ready"] == "0/1"
    terminating = {**pending, "metadata": _meta("p", deletionTimestamp=_ts(timedelta(seconds=1)))}
    assert _cells("pods", terminating)["Status"] == "Terminating"
    init = {
        "metadata": _meta("p"),
        "spec": {"initContainers": [{"name": "i"}], "containers": [{"name": "a"}]},
        "status": {"phase": "Pending", "initContainerStatuses": [{"name": "i", "state": {"running": {}}}]},
    }
    assert _cells("pods", init)["Status"] == "Init:0/1"
    exited = {
        "metadata": _meta("p"),
        "spec": {"containers": [{"name": "a"}]},
        "status": {
            "phase": "Failed",
            "containerStatuses": [{"name": "a", "state": {"terminated": {"exitCode": 3}}}],
        },
    }
    assert _cells("pods", exited)["Status"] == "ExitCode:3"


def test_workload_cells() -> None:
    template = {
        "spec": {"containers": [{"name": "app", "image": "app:1"}, {"name": "side", "image": "side:2"}]}
    }
    dep = {
        "metadata": _meta("d", timedelta(hours=3, minutes=20)),
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "d"}}, "template": template},
        "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2},
    }
    cells = _cells("deployments", dep)
    assert (cells["Ready"], cells["Up-to-date"], cells["Available"], cells["Age"]) == ("2/3", 3, 2, "3h20m")
    assert cells["Containers"] == "app,side"
    assert cells["Images"] == "app:1,side:2"
    assert cells["Selector"] == "app=d"
    sts = {"metadata": _meta("s"), "spec": {"template": template}, "status": {}}
    assert _cells("statefulsets", sts)["Ready"] == "0/1"  # replicas defaults to 1
    ds = {
        "metadata": _meta("ds"),
        "spec": {"template": {"spec": {"nodeSelector": {"disk": "ssd"}, "containers": []}}},
        "status": {
            "desiredNumberScheduled": 3,
            "currentNumberScheduled": 3,
            "numberReady": 2,
            "updatedNumberScheduled": 3,
            "numberAvailable": 2,
        },
    }
    ds_cells = _cells("daemonsets", ds)
    assert [
        ds_cells[k] for k in ("Desired", "Current", "Ready", "Up-to-date", "Available", "Node Selector")
    ] == [3, 3, 2, 3, 2, "disk=ssd"]
    ds["spec"]["template"]["spec"]["nodeSelector"] = {}
    assert _cells("daemonsets", ds)["Node Selector"] == "<none>"


def test_service_cells() -> None:
    svc = {
        "metadata": _meta("s"),
        "spec": {
            "type": "NodePort",
            "clusterIP": "10.96.0.10",
            "ports": [{"port": 80, "nodePort": 30080}, {"port": 53, "protocol": "UDP"}],
        },
    }
    cells = _cells("services", svc)
    assert (cells["Type"], cells["Cluster-IP"], cells["External-IP"], cells["Port(s)"]) == (
        "NodePort",
        "10.96.0.10",
        "<none>",
        "80:30080/TCP,53/UDP",
    )
    lb = {"metadata": _meta("lb"), "spec": {"type": "LoadBalancer", "clusterIP": "10.0.0.1"}}
    assert _cells("services", lb)["External-IP"] == "<pending>"
    assert _cells("services", lb)["Port(s)"] == "<none>"
    headless = {"metadata": _meta("h"), "spec": {"clusterIP": "None", "ports": [{"port": 80}]}}
    assert _cells("services", headless)["Cluster-IP"] == "None"
    assert _cells("services", headless)["Type"] == "ClusterIP"


def test_config_and_storage_cells() -> None:
    cm = {"metadata": _meta("c"), "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}}
    assert _cells("configmaps", cm)["Data"] == 3
    secret = {"metadata": _meta("s"), "type": "Opaque", "data": {"a": "MQ=="}}
    assert (_cells("secrets", secret)["Type"], _cells("secrets", secret)["Data"]) == ("Opaque", 1)
    pvc = {
        "metadata": _meta("data-0"),
        "spec": {"volumeName": "pv-1", "storageClassName": "fast"},
        "status": {
            "phase": "Bound",
            "capacity": {"storage": "10Gi"},
            "accessModes": ["ReadWriteMany", "ReadWriteOnce"],
        },
    }
    cells = _cells("persistentvolumeclaims", pvc)
    assert [cells[k] for k in ("Status", "Volume", "Capacity", "Access Modes", "StorageClass")] == [
        "Bound",
        "pv-1",
        "10Gi",
        "RWO,RWX",
        "fast",
    ]
    pending = {"metadata": _meta("p"), "spec": {}, "status": {"phase": "Pending"}}
    cells = _cells("persistentvolumeclaims", pending)
    assert [cells[k] for k in ("Status", "Volume", "Capacity", "Access Modes", "StorageClass")] == [
        "Pending",
        "",
        "",
        "",
        "",
    ]


def test_node_and_namespace_cells() -> None:
    node = {
        "metadata": _meta(
            "n1",
            timedelta(days=10),
            labels={"node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/worker": ""},
        ),
        "spec": {"unschedulable": True},
        "status": {
            "conditions": [{"type": "Ready", "status": "True"}],
            "nodeInfo": {"kubeletVersion": "v1.30.0"},
            "addresses": [{"type": "InternalIP", "address": "172.18.0.2"}],
        },
    }
    cells = _cells("nodes", node)
    assert [cells[k] for k in ("Status", "Roles", "Age", "Version", "Internal-IP", "External-IP")] == [
        "Ready,SchedulingDisabled",
        "control-plane,worker",
        "10d",
        "v1.30.0",
        "172.18.0.2",
        "<none>",
    ]
    bare = {"metadata": _meta("n2"), "status": {}}
    assert (_cells("nodes", bare)["Status"], _cells("nodes", bare)["Roles"]) == ("Unknown", "<none>")
    ns = {"metadata": _meta("ns1"), "status": {"phase": "Terminating"}}
    assert _cells("namespaces", ns)["Status"] == "Terminating"


def test_default_columns_and_unknown_age() -> None:
    obj = {"metadata": {"name": "w"}}
    table = to_table([obj], None, "widgets", {"continue": "abc"}, now=NOW)
    assert table["rows"][0]["cells"] == ["w", "<unknown>"]
    assert table["metadata"] == {"continue": "abc"}
    role = {"metadata": _meta("r", timedelta(hours=1))}
    assert _cells("roles", role)["Created At"] == "2024-06-01T11:00:00Z"
