"""API semantics through LocalAPI (the same engine the HTTP side uses), no sockets involved."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from rook_py.envtest.apiserver.local import LocalAPI
from rook_py.envtest.apiserver.server import APIServer
from rook_py.framework.client import errors

from .apiserver_support import configmap, deployment, widget, widget_crd


@pytest.fixture
def api() -> Iterator[LocalAPI]:
    server = APIServer(tls=False)
    yield server.local
    server.local.close()


def test_create_fills_metadata_and_get_returns_a_private_copy(api: LocalAPI) -> None:
    created = api.create("v1", "configmaps", configmap("a"))
    meta = created["metadata"]
    assert meta["uid"] and meta["creationTimestamp"].endswith("Z") and int(meta["resourceVersion"]) > 0
    assert "generation" not in meta  # ConfigMaps have no generation, as upstream
    got = api.get("v1", "configmaps", "a", "default")
    got["data"]["k"] = "mutated"
    assert api.get("v1", "configmaps", "a", "default")["data"]["k"] == "v"


def test_create_conflicts_and_validation(api: LocalAPI) -> None:
    api.create("v1", "configmaps", configmap("a"))
    with pytest.raises(errors.AlreadyExists) as exc:
        api.create("v1", "configmaps", configmap("a"))
    assert exc.value.status_code == 409
    with pytest.raises(errors.Invalid) as invalid:
        api.create("v1", "configmaps", configmap("Bad_Name"))
    assert invalid.value.causes[0]["field"] == "metadata.name"
    with pytest.raises(errors.Invalid):  # namespaces are DNS-1123 labels: no dots
        api.create("v1", "namespaces", {"metadata": {"name": "a.b"}})
    with pytest.raises(errors.BadRequest):
        api.create("v1", "configmaps", {**configmap("rv"), "metadata": {"name": "rv", "resourceVersion": "5"}},
                   namespace="default")


def test_generate_name(api: LocalAPI) -> None:
    obj = configmap("x")
    obj["metadata"] = {"generateName": "gen-", "namespace": "default"}
    created = api.create("v1", "configmaps", obj)
    name = created["metadata"]["name"]
    assert name.startswith("gen-") and len(name) == len("gen-") + 5


def test_namespace_must_exist_and_not_be_terminating(api: LocalAPI) -> None:
    with pytest.raises(errors.NotFound) as missing:
        api.create("v1", "configmaps", configmap("a", namespace="nope"))
    assert 'namespaces "nope" not found' in missing.value.message
    api.create("v1", "namespaces", {"metadata": {"name": "doomed"}})
    deleted = api.delete("v1", "namespaces", "doomed")
    assert deleted["status"]["phase"] == "Terminating"
    assert deleted["metadata"]["deletionTimestamp"]
    with pytest.raises(errors.Forbidden) as forbidden:
        api.create("v1", "configmaps", configmap("a", namespace="doomed"))
    assert forbidden.value.status_code == 403
    assert "because it is being terminated" in forbidden.value.message


def test_namespace_defaults_and_finalize(api: LocalAPI) -> None:
    ns = api.create("v1", "namespaces", {"metadata": {"name": "team"}})
    assert ns["spec"]["finalizers"] == ["kubernetes"]
    assert ns["status"]["phase"] == "Active"
    assert ns["metadata"]["labels"]["kubernetes.io/metadata.name"] == "team"
    api.delete("v1", "namespaces", "team")
    current = api.get("v1", "namespaces", "team")
    current["spec"]["finalizers"] = []
    api.update("v1", "namespaces", current, subresource="finalize")
    with pytest.raises(errors.NotFound):
        api.get("v1", "namespaces", "team")
    with pytest.raises(errors.Forbidden):
        api.delete("v1", "namespaces", "default")


def test_update_optimistic_concurrency(api: LocalAPI) -> None:
    created = api.create("v1", "configmaps", configmap("a"))
    first = dict(created, data={"k": "1"})
    updated = api.update("v1", "configmaps", first)
    assert int(updated["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    stale = dict(created, data={"k": "2"})
    with pytest.raises(errors.Conflict) as exc:
        api.update("v1", "configmaps", stale)
    assert errors.STALE_OBJECT in exc.value.message
    unconditional = dict(created, data={"k": "3"})
    unconditional["metadata"] = {k: v for k, v in created["metadata"].items() if k != "resourceVersion"}
    assert api.update("v1", "configmaps", unconditional)["data"] == {"k": "3"}


def test_noop_update_keeps_resource_version(api: LocalAPI) -> None:
    created = api.create("v1", "configmaps", configmap("a"))
    again = api.update("v1", "configmaps", created)
    assert again["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


def test_generation_and_status_subresource(api: LocalAPI) -> None:
    dep = api.create("apps/v1", "deployments", deployment("web"))
    assert dep["metadata"]["generation"] == 1
    assert dep["spec"]["replicas"] == 1 and dep["spec"]["revisionHistoryLimit"] == 10
    assert dep["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": "25%", "maxSurge": "25%"}
    assert "status" not in dep
    # the main endpoint ignores status
    dep["status"] = {"replicas": 5}
    dep = api.update("apps/v1", "deployments", dep)
    assert "status" not in dep and dep["metadata"]["generation"] == 1
    # status updates change only status, never generation or labels
    dep["status"] = {"replicas": 1, "observedGeneration": 1}
    dep["metadata"]["labels"] = {"sneaky": "yes"}
    dep = api.update("apps/v1", "deployments", dep, subresource="status")
    assert dep["status"]["replicas"] == 1 and "labels" not in dep["metadata"]
    assert dep["metadata"]["generation"] == 1
    dep = api.patch("apps/v1", "deployments", "web", {"spec": {"replicas": 3}}, namespace="default")
    assert dep["metadata"]["generation"] == 2
    assert dep["status"]["replicas"] == 1


def test_immutable_fields(api: LocalAPI) -> None:
    api.create("apps/v1", "deployments", deployment("web"))
    with pytest.raises(errors.Invalid) as exc:
        api.patch("apps/v1", "deployments", "web",
                  {"spec": {"selector": {"matchLabels": {"app": "other"}},
                            "template": {"metadata": {"labels": {"app": "other"}}}}}, namespace="default")
    assert any(c["field"] == "spec.selector" for c in exc.value.causes)
    svc = api.create("v1", "services", {"metadata": {"name": "svc", "namespace": "default"},
                                         "spec": {"ports": [{"port": 80}]}})
    assert svc["spec"]["clusterIP"].startswith("10.") and svc["spec"]["ports"][0]["targetPort"] == 80
    with pytest.raises(errors.Invalid):
        api.patch("v1", "services", "svc", {"spec": {"clusterIP": "10.96.99.99"}}, namespace="default")
    cm = configmap("frozen")
    cm["immutable"] = True
    api.create("v1", "configmaps", cm)
    with pytest.raises(errors.Invalid):
        api.patch("v1", "configmaps", "frozen", {"data": {"k": "changed"}}, namespace="default")


def test_statefulset_and_pvc_update_rules(api: LocalAPI) -> None:
    sts = deployment("db")
    sts.update(kind="StatefulSet")
    sts["spec"]["serviceName"] = "db"
    api.create("apps/v1", "statefulsets", sts)
    api.patch("apps/v1", "statefulsets", "db", {"spec": {"replicas": 3}}, namespace="default")
    with pytest.raises(errors.Invalid) as exc:
        api.patch("apps/v1", "statefulsets", "db", {"spec": {"serviceName": "other"}}, namespace="default")
    assert "updates to statefulset spec" in exc.value.message
    pvc = {"metadata": {"name": "data", "namespace": "default"},
           "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}
    created = api.create("v1", "persistentvolumeclaims", pvc)
    assert created["status"]["phase"] == "Pending"
    api.patch("v1", "persistentvolumeclaims", "data", {"spec": {"resources": {"requests": {"storage": "2Gi"}}}},
              namespace="default")
    with pytest.raises(errors.Invalid):
        api.patch("v1", "persistentvolumeclaims", "data",
                  {"spec": {"resources": {"requests": {"storage": "1Gi"}}}}, namespace="default")
    with pytest.raises(errors.Invalid):
        api.patch("v1", "persistentvolumeclaims", "data", {"spec": {"accessModes": ["ReadWriteMany"]}},
                  namespace="default")


def test_finalizers_hold_deletion(api: LocalAPI) -> None:
    cm = configmap("held")
    cm["metadata"]["finalizers"] = ["example.com/hold"]
    api.create("v1", "configmaps", cm)
    pending = api.delete("v1", "configmaps", "held", "default")
    assert pending["metadata"]["deletionTimestamp"] and pending["metadata"]["deletionGracePeriodSeconds"] == 0
    current = api.get("v1", "configmaps", "held", "default")
    current["metadata"]["finalizers"].append("example.com/new")
    with pytest.raises(errors.Invalid) as exc:
        api.update("v1", "configmaps", current)
    assert "no new finalizers" in exc.value.message
    api.patch("v1", "configmaps", "held", {"metadata": {"finalizers": None}}, namespace="default")
    with pytest.raises(errors.NotFound):
        api.get("v1", "configmaps", "held", "default")


def test_propagation_policies_and_preconditions(api: LocalAPI) -> None:
    dep = api.create("apps/v1", "deployments", deployment("fg"))
    deleting = api.delete("apps/v1", "deployments", "fg", "default", propagation_policy="Foreground")
    assert deleting["metadata"]["finalizers"] == ["foregroundDeletion"]
    assert deleting["metadata"]["generation"] == dep["metadata"]["generation"] + 1
    api.create("apps/v1", "deployments", deployment("orphan"))
    assert api.delete("apps/v1", "deployments", "orphan", "default",
                      propagation_policy="Orphan")["metadata"]["finalizers"] == ["orphan"]
    cm = api.create("v1", "configmaps", configmap("pre"))
    with pytest.raises(errors.Conflict):
        api.delete("v1", "configmaps", "pre", "default", preconditions={"uid": "other"})
    with pytest.raises(errors.Conflict):
        api.delete("v1", "configmaps", "pre", "default", preconditions={"resourceVersion": "1"})
    status = api.delete("v1", "configmaps", "pre", "default",
                        preconditions={"uid": cm["metadata"]["uid"]})
    assert status["status"] == "Success" and status["details"]["name"] == "pre"


def test_list_selectors(api: LocalAPI) -> None:
    api.create("v1", "configmaps", configmap("a", labels={"tier": "web", "env": "prod"}))
    api.create("v1", "configmaps", configmap("b", labels={"tier": "db"}))
    api.create("v1", "configmaps", configmap("c"))

    def names(**kw: Any) -> list[str]:
        return [o["metadata"]["name"] for o in api.list("v1", "configmaps", "default", **kw)["items"]]
    assert names(label_selector="tier=web") == ["a"]
    assert names(label_selector="tier in (web,db)") == ["a", "b"]
    assert names(label_selector="tier notin (web)") == ["b", "c"]
    assert names(label_selector="!tier") == ["c"]
    assert names(label_selector="tier,env") == ["a"]
    assert names(label_selector="tier,env!=prod") == ["b"]  # != also matches a missing label
    assert names(field_selector="metadata.name=b") == ["b"]
    assert names(field_selector="metadata.name!=b") == ["a", "c"]
    with pytest.raises(errors.BadRequest):
        names(field_selector="spec.nodeName=x")
    with pytest.raises(errors.BadRequest):
        names(label_selector="tier in (")


def test_scale_subresource_on_custom_resource(api: LocalAPI) -> None:
    api.create("apiextensions.k8s.io/v1", "customresourcedefinitions", widget_crd())
    w = api.create("example.com/v1", "widgets", widget("w"))
    assert w["spec"] == {"size": 2, "replicas": 1, "mode": "safe"}  # schema defaults
    api.patch("example.com/v1", "widgets", "w", {"status": {"replicas": 1, "selector": "app=w"}},
              namespace="default", subresource="status")
    scale = api.get("example.com/v1", "widgets", "w", "default", subresource="scale")
    assert scale["spec"]["replicas"] == 1 and scale["status"] == {"replicas": 1, "selector": "app=w"}
    api.patch("example.com/v1", "widgets", "w", {"spec": {"replicas": 4}}, namespace="default",
              subresource="scale")
    assert api.get("example.com/v1", "widgets", "w", "default")["spec"]["replicas"] == 4


def test_subscribe_delivers_in_commit_order_outside_the_lock(api: LocalAPI) -> None:
    seen: list[tuple[str, str, str]] = []
    done = threading.Event()

    def on_event(event_type: str, api_version: str, resource: str, obj: dict[str, Any]) -> None:
        seen.append((event_type, resource, obj["metadata"]["name"]))
        # callbacks may use the API: this would deadlock if run under the store lock
        if resource == "configmaps" and event_type == "ADDED" and obj["metadata"]["name"] == "a":
            api.create("v1", "secrets", {"metadata": {"name": "from-callback", "namespace": "default"}})
        if resource == "secrets":
            done.set()

    unsubscribe = api.subscribe(on_event)
    api.create("v1", "configmaps", configmap("a"))
    api.patch("v1", "configmaps", "a", {"data": {"k": "2"}}, namespace="default")
    api.delete("v1", "configmaps", "a", "default")
    assert done.wait(5)
    unsubscribe()
    assert seen[:3] == [("ADDED", "configmaps", "a"), ("MODIFIED", "configmaps", "a"),
                        ("DELETED", "configmaps", "a")] or ("ADDED", "secrets", "from-callback") in seen
    assert [s for s in seen if s[1] == "configmaps"] == [("ADDED", "configmaps", "a"),
                                                          ("MODIFIED", "configmaps", "a"),
                                                          ("DELETED", "configmaps", "a")]
    assert ("ADDED", "secrets", "from-callback") in seen


def test_crd_deletion_removes_its_objects_and_stops_serving(api: LocalAPI) -> None:
    crd = api.create("apiextensions.k8s.io/v1", "customresourcedefinitions", widget_crd())
    conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert conditions == {"NamesAccepted": "True", "Established": "True"}
    api.create("example.com/v1", "widgets", widget("a"))
    api.create("example.com/v1", "widgets", widget("b"))
    api.delete("apiextensions.k8s.io/v1", "customresourcedefinitions", "widgets.example.com")
    with pytest.raises(errors.NotFound):
        api.get("apiextensions.k8s.io/v1", "customresourcedefinitions", "widgets.example.com")
    with pytest.raises(errors.NotFound):
        api.list("example.com/v1", "widgets")
    # re-creating the CRD does not resurrect old objects
    api.create("apiextensions.k8s.io/v1", "customresourcedefinitions", widget_crd())
    assert api.list("example.com/v1", "widgets")["items"] == []


def test_custom_resource_rules(api: LocalAPI) -> None:
    api.create("apiextensions.k8s.io/v1", "customresourcedefinitions", widget_crd())
    with pytest.raises(errors.Invalid) as exc:
        api.create("example.com/v1", "widgets", widget("bad", size=0))
    assert exc.value.causes and exc.value.causes[0]["field"] == "spec.size"
    w = api.create("example.com/v1", "widgets", widget("w"))
    assert w["metadata"]["generation"] == 1
    w["metadata"].pop("resourceVersion")
    with pytest.raises(errors.Invalid):  # custom resources need a resourceVersion on PUT
        api.update("example.com/v1", "widgets", w)
    with pytest.raises(errors.UnsupportedMediaType):
        api.patch("example.com/v1", "widgets", "w", {"spec": {"size": 3}}, patch_type="strategic",
                  namespace="default")
    unknown = widget("u")
    unknown["spec"]["extra"] = "pruned"
    assert "extra" not in api.create("example.com/v1", "widgets", unknown)["spec"]
