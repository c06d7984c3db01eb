"""CustomResourceDefinitions: definition validation, versions, scope, and deletion lifecycle."""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest

from rook_py.envtest.apiserver.local import LocalAPI
from rook_py.envtest.apiserver.server import APIServer
from rook_py.framework.client import errors

from .apiserver_support import widget, widget_crd

CRDS = ("apiextensions.k8s.io/v1", "customresourcedefinitions")


@pytest.fixture
def api() -> Iterator[LocalAPI]:
    server = APIServer(tls=False)
    yield server.local
    server.local.close()


def test_invalid_definitions_are_422(api: LocalAPI) -> None:
    crd = widget_crd()
    crd["metadata"]["name"] = "wrong.example.com"
    with pytest.raises(errors.Invalid) as exc:
        api.create(*CRDS, crd)
    # reported once: the definition validation owns the plural.group rule
    assert [c["field"] for c in exc.value.causes].count("metadata.name") == 1
    no_storage = widget_crd()
    no_storage["spec"]["versions"][0]["storage"] = False
    with pytest.raises(errors.Invalid):
        api.create(*CRDS, no_storage)


def test_crd_defaults_and_finalizer(api: LocalAPI) -> None:
    crd = api.create(*CRDS, widget_crd())
    assert crd["spec"]["names"]["listKind"] == "WidgetList"
    assert crd["status"]["acceptedNames"]["kind"] == "Widget"
    assert crd["status"]["storedVersions"] == ["v1"]
    assert crd["metadata"]["finalizers"] == ["customresourcecleanup.apiextensions.k8s.io"]
    assert crd["metadata"]["generation"] == 1


def test_two_served_versions_share_storage(api: LocalAPI) -> None:
    crd = widget_crd()
    v2 = copy.deepcopy(crd["spec"]["versions"][0])
    v2.update(name="v2", storage=False)
    crd["spec"]["versions"].append(v2)
    api.create(*CRDS, crd)
    api.create("example.com/v1", "widgets", widget("w"))
    via_v2 = api.get("example.com/v2", "widgets", "w", "default")
    assert via_v2["apiVersion"] == "example.com/v2" and via_v2["spec"]["size"] == 2
    written = api.create("example.com/v2", "widgets", {**widget("x"), "apiVersion": "example.com/v2"})
    assert written["apiVersion"] == "example.com/v2"
    assert api.get("example.com/v1", "widgets", "x", "default")["apiVersion"] == "example.com/v1"
    assert [r.version for r in api.resources() if r.resource == "widgets"] == ["v1", "v2"]


def test_cluster_scoped_custom_resource(api: LocalAPI) -> None:
    crd = widget_crd()
    crd["spec"]["scope"] = "Cluster"
    api.create(*CRDS, crd)
    w = widget("global")
    del w["metadata"]["namespace"]
    created = api.create("example.com/v1", "widgets", w)
    assert "namespace" not in created["metadata"]
    assert api.get("example.com/v1", "widgets", "global")["metadata"]["name"] == "global"


def test_custom_resource_finalizers_hold_crd_deletion(api: LocalAPI) -> None:
    api.create(*CRDS, widget_crd())
    held = widget("held")
    held["metadata"]["finalizers"] = ["example.com/cleanup"]
    api.create("example.com/v1", "widgets", held)
    api.create("example.com/v1", "widgets", widget("free"))
    api.delete(*CRDS, "widgets.example.com")
    crd = api.get(*CRDS, "widgets.example.com")
    assert crd["metadata"]["deletionTimestamp"]
    assert any(c["type"] == "Terminating" and c["status"] == "True" for c in crd["status"]["conditions"])
    names = [o["metadata"]["name"] for o in api.list("example.com/v1", "widgets")["items"]]
    assert names == ["held"]
    with pytest.raises(errors.MethodNotAllowed):
        api.create("example.com/v1", "widgets", widget("late"))
    api.patch("example.com/v1", "widgets", "held", {"metadata": {"finalizers": []}}, namespace="default")
    with pytest.raises(errors.NotFound):
        api.get(*CRDS, "widgets.example.com")


def test_status_subresource_and_generation_for_custom_resources(api: LocalAPI) -> None:
    api.create(*CRDS, widget_crd())
    w = api.create("example.com/v1", "widgets", widget("w"))
    w["status"] = {"phase": "Ready"}
    w = api.update("example.com/v1", "widgets", w)
    assert "status" not in w and w["metadata"]["generation"] == 1
    w = api.patch("example.com/v1", "widgets", "w", {"status": {"phase": "Ready"}}, namespace="default",
                  subresource="status")
    assert w["status"] == {"phase": "Ready"} and w["metadata"]["generation"] == 1
    w = api.patch("example.com/v1", "widgets", "w", {"metadata": {"labels": {"a": "b"}}}, namespace="default")
    assert w["metadata"]["generation"] == 1  # metadata changes never bump generation
    w = api.patch("example.com/v1", "widgets", "w", {"spec": {"size": 9}}, namespace="default")
    assert w["metadata"]["generation"] == 2 and w["status"] == {"phase": "Ready"}


def test_without_status_subresource_every_change_bumps_generation(api: LocalAPI) -> None:
    crd = widget_crd(scale=False)
    crd["spec"]["versions"][0]["subresources"] = {}
    api.create(*CRDS, crd)
    api.create("example.com/v1", "widgets", widget("w"))
    w = api.patch("example.com/v1", "widgets", "w", {"status": {"phase": "x"}}, namespace="default")
    assert w["status"] == {"phase": "x"} and w["metadata"]["generation"] == 2
    with pytest.raises(errors.NotFound):
        api.patch("example.com/v1", "widgets", "w", {"status": {"phase": "y"}}, namespace="default",
                  subresource="status")
