"""Server-side apply, checked the same way on the emulator and on a real kube-apiserver (issue 13).

Each test runs one apply sequence through raw HTTP on the back end the session selected
(``KUBEBUILDER_ASSETS`` set: the real control plane) and asserts the exact objects, managedFields
and errors kube-apiserver v1.28 answers; the emulator must answer the same.
"""

from __future__ import annotations

from typing import Any

import pytest

from rook_py.envtest import Environment
from rook_py.framework.client import errors

JSON = dict[str, Any]
APPLY = "application/apply-patch+yaml"
CM = "/api/v1/namespaces/default/configmaps"
DEPLOY = "/apis/apps/v1/namespaces/default/deployments"


def _apply(env: Environment, path: str, body: JSON, manager: str | None, *, force: bool = False,
           query: JSON | None = None) -> JSON:
    q: JSON = dict(query or {})
    if manager is not None:
        q["fieldManager"] = manager
    if force:
        q["force"] = "true"
    result: JSON = env.http.request("PATCH", path, body, query=q, content_type=APPLY)
    return result


def _fields(obj: JSON) -> dict[tuple[str, str], JSON]:
    return {(e["manager"], e["operation"]): e["fieldsV1"] for e in obj["metadata"].get("managedFields", [])}


def _cm(name: str, data: JSON, labels: JSON | None = None) -> JSON:
    meta: JSON = {"name": name}
    if labels is not None:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}


def test_apply_creates_and_records_the_appliers_fields(envtest: Environment) -> None:
    created = _apply(envtest, f"{CM}/one", _cm("one", {"a": "1", "b": "2"}, {"app": "x"}), "alice")
    assert created["data"] == {"a": "1", "b": "2"} and created["metadata"]["labels"] == {"app": "x"}
    [entry] = created["metadata"]["managedFields"]
    assert (entry["manager"], entry["operation"], entry["apiVersion"]) == ("alice", "Apply", "v1")
    assert entry["fieldsV1"] == {"f:data": {"f:a": {}, "f:b": {}}, "f:metadata": {"f:labels": {"f:app": {}}}}
    # the same apply again changes nothing: same resourceVersion
    again = _apply(envtest, f"{CM}/one", _cm("one", {"a": "1", "b": "2"}, {"app": "x"}), "alice")
    assert again["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


def test_field_manager_is_required_and_force_only_for_apply(envtest: Environment) -> None:
    with pytest.raises(errors.ApiError) as exc:
        _apply(envtest, f"{CM}/two", _cm("two", {"a": "1"}), None)
    assert exc.value.status_code == 422
    assert exc.value.message == ('PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: '
                                 "is required for apply patch")
    _apply(envtest, f"{CM}/two", _cm("two", {"a": "1"}), "alice")
    with pytest.raises(errors.ApiError) as exc:
        envtest.http.request("PATCH", f"{CM}/two", {"data": {"a": "2"}}, query={"force": "true"},
                             content_type="application/merge-patch+json")
    assert exc.value.status_code == 422 and "force: Forbidden: may not be specified for non-apply patch" in str(
        exc.value.message)


def test_conflicts_force_and_shared_ownership(envtest: Environment) -> None:
    _apply(envtest, f"{CM}/three", _cm("three", {"a": "1", "b": "2"}), "alice")
    with pytest.raises(errors.ApiError) as exc:
        _apply(envtest, f"{CM}/three", _cm("three", {"a": "9", "b": "8"}), "bob")
    assert exc.value.status_code == 409 and exc.value.reason == "Conflict"
    assert exc.value.message == ('Apply failed with 2 conflicts: conflicts with "alice":\n- .data.a\n- .data.b')
    assert exc.value.causes == [
        {"reason": "FieldManagerConflict", "message": 'conflict with "alice"', "field": ".data.a"},
        {"reason": "FieldManagerConflict", "message": 'conflict with "alice"', "field": ".data.b"}]
    # applying the value already there is no conflict: both own it
    shared = _apply(envtest, f"{CM}/three", _cm("three", {"b": "2", "c": "3"}), "bob")
    assert _fields(shared) == {("alice", "Apply"): {"f:data": {"f:a": {}, "f:b": {}}},
                               ("bob", "Apply"): {"f:data": {"f:b": {}, "f:c": {}}}}
    forced = _apply(envtest, f"{CM}/three", _cm("three", {"a": "9", "b": "2", "c": "3"}), "bob", force=True)
    assert forced["data"] == {"a": "9", "b": "2", "c": "3"}
    assert _fields(forced) == {("alice", "Apply"): {"f:data": {"f:b": {}}},
                               ("bob", "Apply"): {"f:data": {"f:a": {}, "f:b": {}, "f:c": {}}}}


def test_fields_no_longer_applied_are_removed_unless_someone_else_owns_them(envtest: Environment) -> None:
    _apply(envtest, f"{CM}/four", _cm("four", {"a": "1", "b": "2", "c": "3"}, {"x": "1", "y": "2"}), "alice")
    _apply(envtest, f"{CM}/four", _cm("four", {"b": "2"}), "bob")
    after = _apply(envtest, f"{CM}/four", _cm("four", {"a": "1"}), "alice")
    # b stays (bob owns it too), c and the labels go (nobody else owned them)
    assert after["data"] == {"a": "1", "b": "2"} and "labels" not in after["metadata"]
    assert _fields(after) == {("alice", "Apply"): {"f:data": {"f:a": {}}},
                              ("bob", "Apply"): {"f:data": {"f:b": {}}}}


def test_updates_take_ownership_and_conflict_with_appliers(envtest: Environment) -> None:
    _apply(envtest, f"{CM}/five", _cm("five", {"a": "1", "b": "2"}), "alice")
    patched = envtest.http.request("PATCH", f"{CM}/five", {"data": {"b": "3", "d": "4"}},
                                   query={"fieldManager": "carol"}, content_type="application/merge-patch+json")
    assert _fields(patched) == {("alice", "Apply"): {"f:data": {"f:a": {}}},
                                ("carol", "Update"): {"f:data": {"f:b": {}, "f:d": {}}}}
    with pytest.raises(errors.ApiError) as exc:
        _apply(envtest, f"{CM}/five", _cm("five", {"a": "1", "b": "2"}), "alice")
    assert exc.value.status_code == 409
    assert exc.value.message == 'Apply failed with 1 conflict: conflict with "carol" using v1: .data.b'
    # alice re-applying without b leaves carol's b alone
    kept = _apply(envtest, f"{CM}/five", _cm("five", {"a": "1"}), "alice")
    assert kept["data"] == {"a": "1", "b": "3", "d": "4"}


def _deployment(containers: list[JSON], replicas: int | None = None) -> JSON:
    spec: JSON = {"selector": {"matchLabels": {"app": "w"}},
                  "template": {"metadata": {"labels": {"app": "w"}}, "spec": {"containers": containers}}}
    if replicas is not None:
        spec["replicas"] = replicas
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": spec}


def test_keyed_lists_merge_by_their_keys(envtest: Environment) -> None:
    first = _apply(envtest, f"{DEPLOY}/web", _deployment(
        [{"name": "app", "image": "app:1", "ports": [{"containerPort": 80, "name": "http"}]}], replicas=2), "alice")
    assert _fields(first)[("alice", "Apply")] == {
        "f:spec": {"f:replicas": {}, "f:selector": {}, "f:template": {
            "f:metadata": {"f:labels": {"f:app": {}}},
            "f:spec": {"f:containers": {'k:{"name":"app"}': {
                ".": {}, "f:image": {}, "f:name": {},
                "f:ports": {'k:{"containerPort":80,"protocol":"TCP"}': {
                    ".": {}, "f:containerPort": {}, "f:name": {}}}}}}}}}
    # another manager adds a sidecar: merged by name, both containers stay
    both = _apply(envtest, f"{DEPLOY}/web", _deployment([{"name": "sidecar", "image": "envoy:1"}]), "bob")
    names = [c["name"] for c in both["spec"]["template"]["spec"]["containers"]]
    assert names == ["app", "sidecar"]
    assert both["spec"]["replicas"] == 2
    # the first manager drops its container: only bob's remains
    alone = _apply(envtest, f"{DEPLOY}/web", _deployment([{"name": "sidecar", "image": "envoy:1"}], replicas=2),
                   "alice")
    assert [c["name"] for c in alone["spec"]["template"]["spec"]["containers"]] == ["sidecar"]


def test_apply_to_the_status_subresource(envtest: Environment) -> None:
    from .apiserver_support import widget_crd

    envtest.install_crds([widget_crd(scale=False, columns=False)])
    path = "/apis/example.com/v1/namespaces/default/widgets/w"
    body = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 2}}
    _apply(envtest, path, body, "alice")
    status = _apply(envtest, path + "/status", {**body, "spec": {"size": 5}, "status": {"phase": "Ready"}},
                    "controller")
    assert status["status"] == {"phase": "Ready"} and status["spec"]["size"] == 2  # spec is not the status' to set
    entries = {(e["manager"], e.get("subresource", "")): e["fieldsV1"] for e in status["metadata"]["managedFields"]}
    assert entries[("controller", "status")] == {"f:status": {"f:phase": {}}}
    assert entries[("alice", "")] == {"f:spec": {"f:size": {}}}


def test_objects_read_back_as_kube_apiserver_serialises_them(envtest: Environment) -> None:
    """Quantities canonical, embedded ObjectMeta with its null creationTimestamp, claim templates
    as whole PersistentVolumeClaims, volume defaultMode: what the framework's apply compares with."""
    sts = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
           "spec": {"serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                    "template": {"metadata": {"labels": {"app": "db"}},
                                 "spec": {"containers": [{"name": "c", "image": "i", "resources": {
                                     "limits": {"memory": "1024Mi", "cpu": "1000m"}, "requests": {"cpu": "0.5"}}}],
                                     "volumes": [{"name": "cfg", "configMap": {"name": "cfg"}}]}},
                    "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "2048Mi"}}}}]}}
    got = envtest.http.request("POST", "/apis/apps/v1/namespaces/default/statefulsets", sts)
    template = got["spec"]["template"]
    assert template["metadata"] == {"creationTimestamp": None, "labels": {"app": "db"}}
    assert template["spec"]["containers"][0]["resources"] == {"limits": {"cpu": "1", "memory": "1Gi"},
                                                              "requests": {"cpu": "500m"}}
    assert template["spec"]["volumes"][0]["configMap"] == {"name": "cfg", "defaultMode": 420}
    [claim] = got["spec"]["volumeClaimTemplates"]
    assert (claim["apiVersion"], claim["kind"]) == ("v1", "PersistentVolumeClaim")
    assert claim["metadata"] == {"name": "data", "creationTimestamp": None}
    assert claim["spec"]["resources"] == {"requests": {"storage": "2Gi"}}
    assert claim["status"] == {"phase": "Pending"}
