"""The one table of list semantics (kube.lists) and the two mergers that read it."""

from __future__ import annotations

import pytest

from rook_py.framework.kube.lists import ATOMIC, ListSemantics, from_openapi, list_semantics, patch_merge_key


@pytest.mark.parametrize(("kind", "path", "list_type", "map_keys", "merge_key"), [
    # k8s.io/api v0.28 types.go: +listType/+listMapKey and patchMergeKey
    ("Pod", ("spec", "containers"), "map", ("name",), "name"),
    ("Deployment", ("spec", "template", "spec", "initContainers"), "map", ("name",), "name"),
    ("Pod", ("spec", "containers", "ports"), "map", ("containerPort", "protocol"), "containerPort"),
    ("Service", ("spec", "ports"), "map", ("port", "protocol"), "port"),
    ("Pod", ("spec", "containers", "env"), "map", ("name",), "name"),
    ("Pod", ("spec", "topologySpreadConstraints"), "map", ("topologyKey", "whenUnsatisfiable"), "topologyKey"),
    ("Pod", ("status", "conditions"), "map", ("type",), "type"),
    ("Deployment", ("status", "conditions"), "map", ("type",), "type"),
    ("Node", ("status", "addresses"), "map", ("type",), "type"),
    ("ConfigMap", ("metadata", "ownerReferences"), "map", ("uid",), "uid"),
    ("StatefulSet", ("spec", "template", "spec", "volumes"), "map", ("name",), "name"),
])
def test_keyed_lists(kind: str, path: tuple[str, ...], list_type: str, map_keys: tuple[str, ...],
                     merge_key: str) -> None:
    semantics = list_semantics(kind, path)
    assert (semantics.list_type, semantics.map_keys, semantics.patch_merge_key) == (list_type, map_keys, merge_key)
    assert semantics.patch_merges
    assert patch_merge_key(kind, path) == merge_key


def test_patch_and_apply_semantics_may_differ() -> None:
    # a Job's conditions merge by type in a strategic patch, but are atomic for server-side apply
    job = list_semantics("Job", ("status", "conditions"))
    assert job.list_type == "atomic" and job.patch_merge_key == "type" and job.patch_merges
    # a CRD's conditions are a map for server-side apply, replaced by a strategic patch
    crd = list_semantics("CustomResourceDefinition", ("status", "conditions"))
    assert crd.list_type == "map" and not crd.patch_merges
    assert patch_merge_key("CustomResourceDefinition", ("status", "conditions")) is None
    # a Pod's hostIPs: atomic, merged by ip in a patch
    assert list_semantics("Pod", ("status", "hostIPs")) == ListSemantics("atomic", (), "merge", "ip")


def test_sets_and_atomic_lists() -> None:
    finalizers = list_semantics("Pod", ("metadata", "finalizers"))
    assert finalizers.list_type == "set" and finalizers.patch_merges and finalizers.patch_merge_key == ""
    assert patch_merge_key("Pod", ("metadata", "finalizers")) is None  # primitives: no key
    assert list_semantics("Pod", ("spec", "volumes")).retains_keys
    for kind, path in [("Pod", ("spec", "tolerations")), ("Pod", ("spec", "containers", "args")),
                       ("EndpointSlice", ("ports",)), ("Endpoints", ("subsets", "addresses")),
                       ("Ingress", ("spec", "rules")), ("Namespace", ("spec", "finalizers")), ("Pod", ())]:
        assert list_semantics(kind, path) == ATOMIC, (kind, path)


def test_from_openapi_follows_schemaconv() -> None:
    assert from_openapi({"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["a", "b"]}) == \
        ListSemantics("map", ("a", "b"))
    assert from_openapi({"x-kubernetes-list-type": "set"}).list_type == "set"
    assert from_openapi({"x-kubernetes-patch-strategy": "merge", "x-kubernetes-patch-merge-key": "name"}) == \
        ListSemantics("map", ("name",), "merge", "name")
    assert from_openapi({"x-kubernetes-patch-strategy": "merge"}).list_type == "set"
    assert from_openapi({"type": "array"}) == ATOMIC
