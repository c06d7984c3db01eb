"""What a /status write may change in metadata, per resource, as upstream's status strategies decide."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from rook_py.envtest.apiserver.local import LocalAPI
from rook_py.envtest.apiserver.server import APIServer
from rook_py.framework.client import errors

from .apiserver_support import deployment, widget, widget_crd

JSON = dict[str, Any]
OWNER = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": "0000-1111"}
OTHER_OWNER = {"apiVersion": "v1", "kind": "ConfigMap", "name": "other", "uid": "2222-3333"}


@pytest.fixture
def api() -> Iterator[LocalAPI]:
    server = APIServer(tls=False)
    yield server.local
    server.local.close()


def _pod_spec() -> JSON:
    return {"containers": [{"name": "c", "image": "busybox:1.36"}]}


def _template(name: str) -> JSON:
    return {"metadata": {"labels": {"app": name}}, "spec": _pod_spec()}


# (api_version, resource, object) for every built-in with a status subresource whose upstream
# status strategy resets only spec: label, annotation, finalizer and owner changes persist.
SPEC_ONLY = {
    "statefulsets": ("apps/v1", {"kind": "StatefulSet", "spec": {
        "selector": {"matchLabels": {"app": "x"}}, "serviceName": "x", "template": _template("x")}}),
    "daemonsets": ("apps/v1", {"kind": "DaemonSet", "spec": {
        "selector": {"matchLabels": {"app": "x"}}, "template": _template("x")}}),
    "replicasets": ("apps/v1", {"kind": "ReplicaSet", "spec": {
        "selector": {"matchLabels": {"app": "x"}}, "template": _template("x")}}),
    "services": ("v1", {"kind": "Service", "spec": {"ports": [{"port": 80}]}}),
    "persistentvolumeclaims": ("v1", {"kind": "PersistentVolumeClaim", "spec": {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}),
    "nodes": ("v1", {"kind": "Node", "spec": {}}),
    "persistentvolumes": ("v1", {"kind": "PersistentVolume", "spec": {
        "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "hostPath": {"path": "/x"}}}),
    "ingresses": ("networking.k8s.io/v1", {"kind": "Ingress", "spec": {}}),
    "poddisruptionbudgets": ("policy/v1", {"kind": "PodDisruptionBudget", "spec": {"minAvailable": 1}}),
}
CLUSTER_SCOPED = ("nodes", "persistentvolumes")


def _write_status(api: LocalAPI, api_version: str, resource: str, obj: JSON, **meta: Any) -> JSON:
    sent = dict(obj)
    sent["metadata"] = {**obj["metadata"], **meta}
    sent["status"] = {**(obj.get("status") or {}), "observedGeneration": 1}
    return api.update(api_version, resource, sent, subresource="status")


@pytest.mark.parametrize("resource", sorted(SPEC_ONLY))
def test_spec_only_status_strategies_keep_metadata_changes(api: LocalAPI, resource: str) -> None:
    api_version, body = SPEC_ONLY[resource]
    namespaced = resource not in CLUSTER_SCOPED
    obj = {"apiVersion": api_version, **body, "metadata": {"name": "x", **({"namespace": "default"} if namespaced
                                                                           else {})}}
    created = api.create(api_version, resource, obj)
    changed_spec = dict(created, spec={**created["spec"], "changedThroughStatus": True})
    updated = _write_status(api, api_version, resource, changed_spec, labels={"l": "1"},
                            annotations={"a": "1"}, finalizers=["example.com/f"], ownerReferences=[OWNER])
    meta = updated["metadata"]
    assert meta["labels"].get("l") == "1" and meta["annotations"] == {"a": "1"}
    assert meta["finalizers"] == ["example.com/f"] and meta["ownerReferences"] == [OWNER]
    assert "changedThroughStatus" not in updated["spec"]  # spec is always the stored one
    assert updated["status"]["observedGeneration"] == 1
    assert meta.get("generation") == created["metadata"].get("generation")


def test_deployment_status_keeps_annotations_but_not_labels(api: LocalAPI) -> None:
    created = api.create("apps/v1", "deployments", deployment("web"))
    revision = {"deployment.kubernetes.io/revision": "1"}
    updated = _write_status(api, "apps/v1", "deployments", created, annotations=revision, labels={"l": "1"})
    assert updated["metadata"]["annotations"] == revision
    assert "labels" not in updated["metadata"]
    # an annotation change through /status does not bump generation, unlike the main endpoint
    assert updated["metadata"]["generation"] == 1
    again = dict(updated, metadata={**updated["metadata"], "annotations": {**revision, "b": "2"}})
    assert api.update("apps/v1", "deployments", again)["metadata"]["generation"] == 2


def test_pod_status_keeps_labels_and_annotations_but_not_owner_references(api: LocalAPI) -> None:
    created = api.create("v1", "pods", {"metadata": {"name": "p", "namespace": "default", "ownerReferences": [OWNER]},
                                        "spec": _pod_spec()})
    updated = _write_status(api, "v1", "pods", created, labels={"ready": "yes"}, annotations={"a": "1"},
                            ownerReferences=[OTHER_OWNER])
    assert updated["metadata"]["labels"] == {"ready": "yes"} and updated["metadata"]["annotations"] == {"a": "1"}
    assert updated["metadata"]["ownerReferences"] == [OWNER]


def test_namespace_status_keeps_annotations_and_the_name_label(api: LocalAPI) -> None:
    created = api.create("v1", "namespaces", {"metadata": {"name": "team"}})
    updated = _write_status(api, "v1", "namespaces", created, annotations={"a": "1"}, labels={"x": "y"})
    assert updated["metadata"]["annotations"] == {"a": "1"}
    assert updated["metadata"]["labels"] == {"x": "y", "kubernetes.io/metadata.name": "team"}


def test_crd_status_resets_labels_annotations_owners_but_keeps_finalizers(api: LocalAPI) -> None:
    crd = widget_crd()
    crd["metadata"]["labels"] = {"keep": "me"}
    created = api.create("apiextensions.k8s.io/v1", "customresourcedefinitions", crd)
    finalizers = [*created["metadata"]["finalizers"], "example.com/f"]
    updated = _write_status(api, "apiextensions.k8s.io/v1", "customresourcedefinitions", created,
                            labels={"other": "x"}, annotations={"a": "1"}, ownerReferences=[OWNER],
                            finalizers=finalizers)
    meta = updated["metadata"]
    assert meta["labels"] == {"keep": "me"} and "annotations" not in meta and "ownerReferences" not in meta
    assert meta["finalizers"] == finalizers


def test_custom_resource_status_changes_no_metadata(api: LocalAPI) -> None:
    api.create("apiextensions.k8s.io/v1", "customresourcedefinitions", widget_crd())
    created = api.create("example.com/v1", "widgets", widget("w"))
    updated = _write_status(api, "example.com/v1", "widgets", created, labels={"l": "1"}, annotations={"a": "1"},
                            finalizers=["example.com/f"], ownerReferences=[OWNER])
    for key in ("labels", "annotations", "finalizers", "ownerReferences"):
        assert key not in updated["metadata"]
    assert updated["status"]["observedGeneration"] == 1


def test_status_cannot_change_system_metadata(api: LocalAPI) -> None:
    created = api.create("apps/v1", "deployments", deployment("web"))
    sent = dict(created, metadata={**created["metadata"], "generation": 7,
                                   "creationTimestamp": "2000-01-01T00:00:00Z", "deletionTimestamp": "2000-01-01T00:00:00Z"},
                status={"replicas": 1})
    updated = api.update("apps/v1", "deployments", sent, subresource="status")
    for key in ("generation", "creationTimestamp", "uid"):
        assert updated["metadata"][key] == created["metadata"][key]
    assert "deletionTimestamp" not in updated["metadata"]
    with pytest.raises(errors.Conflict):  # a different uid is a failed precondition
        api.update("apps/v1", "deployments", dict(updated, metadata={**updated["metadata"], "uid": "other"}),
                   subresource="status")


def test_status_metadata_is_validated(api: LocalAPI) -> None:
    created = api.create("v1", "pods", {"metadata": {"name": "p", "namespace": "default",
                                                     "finalizers": ["example.com/f"]}, "spec": _pod_spec()})
    with pytest.raises(errors.Invalid) as bad:
        _write_status(api, "v1", "pods", created, labels={"bad key!": "x"})
    assert bad.value.causes[0]["field"] == "metadata.labels"
    api.delete("v1", "pods", "p", "default")
    terminating = api.get("v1", "pods", "p", "default")
    with pytest.raises(errors.Invalid) as added:
        _write_status(api, "v1", "pods", terminating, finalizers=["example.com/f", "example.com/new"])
    assert added.value.causes[0]["field"] == "metadata.finalizers"
    # removing the last finalizer through /status completes the deletion, as on a real cluster
    _write_status(api, "v1", "pods", terminating, finalizers=[])
    with pytest.raises(errors.NotFound):
        api.get("v1", "pods", "p", "default")
