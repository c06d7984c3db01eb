"""Garbage collection by ownerReferences and namespace finalization in the simulated cluster."""

from __future__ import annotations

from typing import Any

import pytest

from rook_py.envtest.cluster import SimulatedCluster
from rook_py.framework.client.errors import NotFound
from tests.envtest import cluster_support
from tests.envtest.cluster_support import eventually, items

# Fixtures shared by the simulated-cluster tests (re-exported so pytest finds them here).
api = cluster_support.api
cluster = cluster_support.cluster


def _cm(name: str, *owners: dict[str, Any], finalizers: list[str] | None = None,
        namespace: str = "default") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if owners:
        meta["ownerReferences"] = [
            {"apiVersion": o["apiVersion"], "kind": o["kind"], "name": o["metadata"]["name"],
             "uid": o["metadata"]["uid"], "blockOwnerDeletion": o.get("_block", True)} for o in owners]
    if finalizers:
        meta["finalizers"] = finalizers
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {}}


def _create(api: Any, obj: dict[str, Any]) -> dict[str, Any]:
    created: dict[str, Any] = api.create("v1", "configmaps", obj, namespace=obj["metadata"]["namespace"])
    return created


def _gone(api: Any, name: str, namespace: str = "default") -> bool:
    try:
        api.get("v1", "configmaps", name, namespace)
    except NotFound:
        return True
    return False


def test_background_deletes_dependents_whose_owners_are_all_gone(api: Any, cluster: SimulatedCluster) -> None:
    owner = _create(api, _cm("owner"))
    other = _create(api, _cm("other"))
    _create(api, _cm("child", owner))
    _create(api, _cm("grandchild", api.get("v1", "configmaps", "child", "default")))
    _create(api, _cm("shared", owner, other))

    api.delete("v1", "configmaps", "owner", "default", propagation_policy="Background")

    eventually(lambda: _gone(api, "child") and _gone(api, "grandchild"), what="cascade")
    # A dependent with a surviving owner stays; only the dangling reference is removed.
    shared = eventually(lambda: (lambda o: o if len(o["metadata"]["ownerReferences"]) == 1 else None)(
        api.get("v1", "configmaps", "shared", "default")), what="dangling ref removed")
    assert shared["metadata"]["ownerReferences"][0]["uid"] == other["metadata"]["uid"]


def test_dependent_created_with_an_absent_owner_is_collected(api: Any, cluster: SimulatedCluster) -> None:
    ghost = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ghost", "uid": "0000-not-there"}}
    _create(api, _cm("orphaned", ghost))
    eventually(lambda: _gone(api, "orphaned"), what="collected")


def test_owner_with_same_name_but_new_uid_does_not_keep_dependent(api: Any, cluster: SimulatedCluster) -> None:
    old = _create(api, _cm("reborn"))
    api.delete("v1", "configmaps", "reborn", "default", propagation_policy="Orphan")
    eventually(lambda: _gone(api, "reborn"), what="old owner gone")
    _create(api, _cm("reborn"))
    _create(api, _cm("child-of-old", old))
    eventually(lambda: _gone(api, "child-of-old"), what="uid mismatch means absent")


def test_foreground_waits_for_blocking_dependents(api: Any, cluster: SimulatedCluster) -> None:
    owner = _create(api, _cm("fg-owner"))
    _create(api, _cm("fg-blocker", owner, finalizers=["example.com/hold"]))
    nonblocking_owner = dict(owner, _block=False)
    _create(api, _cm("fg-free", nonblocking_owner))

    api.delete("v1", "configmaps", "fg-owner", "default", propagation_policy="Foreground")

    blocker = eventually(lambda: (lambda o: o if o["metadata"].get("deletionTimestamp") else None)(
        api.get("v1", "configmaps", "fg-blocker", "default")), what="blocker being deleted")
    eventually(lambda: _gone(api, "fg-free"), what="non-blocking dependent deleted")
    held = api.get("v1", "configmaps", "fg-owner", "default")
    assert "foregroundDeletion" in held["metadata"]["finalizers"]
    assert held["metadata"].get("deletionTimestamp")

    blocker["metadata"]["finalizers"] = []
    api.update("v1", "configmaps", blocker)
    eventually(lambda: _gone(api, "fg-blocker") and _gone(api, "fg-owner"), what="owner released")


def test_orphan_strips_references_and_keeps_dependents(api: Any, cluster: SimulatedCluster) -> None:
    owner = _create(api, _cm("or-owner"))
    other = _create(api, _cm("or-other"))
    _create(api, _cm("or-child", owner))
    _create(api, _cm("or-both", owner, other))

    api.delete("v1", "configmaps", "or-owner", "default", propagation_policy="Orphan")

    eventually(lambda: _gone(api, "or-owner"), what="owner finalized")
    child = api.get("v1", "configmaps", "or-child", "default")
    assert not child["metadata"].get("ownerReferences")
    both = api.get("v1", "configmaps", "or-both", "default")
    assert [r["uid"] for r in both["metadata"]["ownerReferences"]] == [other["metadata"]["uid"]]


def test_namespace_deletion_empties_then_finalizes(api: Any, cluster: SimulatedCluster) -> None:
    api.create("v1", "namespaces", {"metadata": {"name": "doomed"}})
    _create(api, _cm("plain", namespace="doomed"))
    held = _create(api, _cm("held", finalizers=["example.com/hold"], namespace="doomed"))
    api.create("v1", "secrets", {"metadata": {"name": "s"}, "type": "Opaque"}, namespace="doomed")

    api.delete("v1", "namespaces", "doomed")

    def reports_remaining() -> dict[str, Any] | None:
        ns: dict[str, Any] = api.get("v1", "namespaces", "doomed")
        conds = {c["type"]: c for c in ns.get("status", {}).get("conditions", [])}
        return ns if conds.get("NamespaceFinalizersRemaining", {}).get("status") == "True" else None

    ns = eventually(reports_remaining, what="remaining-content conditions")
    assert ns["status"]["phase"] == "Terminating"
    assert "example.com/hold" in next(c["message"] for c in ns["status"]["conditions"]
                                      if c["type"] == "NamespaceFinalizersRemaining")
    assert _gone(api, "plain", "doomed")
    assert items(api, "v1", "secrets", "doomed") == []
    with pytest.raises(Exception):  # a terminating namespace refuses new objects (403)  # noqa: B017
        _create(api, _cm("late", namespace="doomed"))

    held = api.get("v1", "configmaps", "held", "doomed")
    held["metadata"]["finalizers"] = []
    api.update("v1", "configmaps", held)

    def ns_gone() -> bool:
        try:
            api.get("v1", "namespaces", "doomed")
        except NotFound:
            return True
        return False

    eventually(ns_gone, what="namespace finalized and removed")


def test_namespace_deletion_reaches_custom_resources_and_owner_chains(api: Any, cluster: SimulatedCluster,
                                                                      request: pytest.FixtureRequest) -> None:
    if request.node.callspec.params["api"] == "fake":
        pytest.skip("the fake LocalAPI serves no CRDs")
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "things.example.com"},
           "spec": {"group": "example.com", "scope": "Namespaced",
                    "names": {"plural": "things", "singular": "thing", "kind": "Thing", "listKind": "ThingList"},
                    "versions": [{"name": "v1", "served": True, "storage": True,
                                  "schema": {"openAPIV3Schema": {"type": "object",
                                                                 "x-kubernetes-preserve-unknown-fields": True}}}]}}
    api.create("apiextensions.k8s.io/v1", "customresourcedefinitions", crd)
    eventually(lambda: any(r.resource == "things" for r in api.resources()), what="CRD served")
    api.create("v1", "namespaces", {"metadata": {"name": "crns"}})
    thing = api.create("example.com/v1", "things", {"apiVersion": "example.com/v1", "kind": "Thing",
                                                    "metadata": {"name": "t", "finalizers": ["example.com/x"]}},
                       namespace="crns")
    _create(api, _cm("owned-by-thing", thing, namespace="crns"))
    api.delete("v1", "namespaces", "crns")
    held = eventually(lambda: (lambda t: t if t["metadata"].get("deletionTimestamp") else None)(
        api.get("example.com/v1", "things", "t", "crns")), what="custom resource being deleted")
    held["metadata"]["finalizers"] = []
    api.update("example.com/v1", "things", held)

    def gone() -> bool:
        try:
            api.get("v1", "namespaces", "crns")
        except NotFound:
            return True
        return False

    eventually(gone, what="namespace with custom resources finalized")


def test_gc_graph_is_primed_from_existing_objects(api: Any) -> None:
    owner = _create(api, _cm("pre-owner"))
    _create(api, _cm("pre-child", owner))
    sim = SimulatedCluster(api, nodes=1, resync_period=0.5)
    sim.start()
    try:
        assert sim.gc.dependents_of(owner["metadata"]["uid"]) == [("v1", "configmaps", "default", "pre-child")]
        api.delete("v1", "configmaps", "pre-owner", "default")
        eventually(lambda: _gone(api, "pre-child"), what="child of a pre-existing owner collected")
    finally:
        sim.stop()
