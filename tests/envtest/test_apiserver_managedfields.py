"""metadata.managedFields: recorded per manager on create, update, patch and subresources."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from rook_py.envtest.apiserver import fieldmanager as fm
from rook_py.envtest.apiserver import managedfields as mf
from rook_py.envtest.apiserver.fieldmanager import Types
from rook_py.envtest.apiserver.local import LocalAPI
from rook_py.envtest.apiserver.openapi import Documents
from rook_py.envtest.apiserver.registry import Registry
from rook_py.envtest.apiserver.server import APIServer
from rook_py.framework.client import errors

from .apiserver_support import Raw, configmap, deployment

JSON = dict[str, Any]
CMS = "/api/v1/namespaces/default/configmaps"
DEPLOYS = "/apis/apps/v1/namespaces/default/deployments"


@pytest.fixture
def server() -> Iterator[APIServer]:
    srv = APIServer(tls=False).start()
    yield srv
    srv.stop()


@pytest.fixture
def api(server: APIServer) -> LocalAPI:
    return server.local


def _entries(obj: JSON) -> dict[tuple[str, str], JSON]:
    return {(e["manager"], e.get("subresource", "")): e for e in obj["metadata"].get("managedFields", [])}


def test_create_records_the_user_agent_as_manager(server: APIServer) -> None:
    raw = Raw(server, user_agent="kubectl/v1.32.0 (linux/amd64) kubernetes/abcdef")
    code, created = raw.post(CMS, configmap("a", labels={"app": "web"}))
    assert code == 201
    [entry] = created["metadata"]["managedFields"]
    assert entry["manager"] == "kubectl" and entry["operation"] == "Update" and entry["apiVersion"] == "v1"
    assert entry["fieldsType"] == "FieldsV1" and entry["time"].endswith("Z") and "subresource" not in entry
    assert entry["fieldsV1"] == {"f:data": {".": {}, "f:k": {}},
                                 "f:metadata": {"f:labels": {".": {}, "f:app": {}}}}
    # what GET answers is what was stored
    assert raw.get(f"{CMS}/a")[1]["metadata"]["managedFields"] == created["metadata"]["managedFields"]


def test_field_manager_parameter_and_its_validation(server: APIServer) -> None:
    raw = Raw(server)
    code, created = raw.post(f"{CMS}?fieldManager=my-operator", configmap("a"))
    assert code == 201 and created["metadata"]["managedFields"][0]["manager"] == "my-operator"
    code, status = raw.post(f"{CMS}?fieldManager={'x' * 129}", configmap("b"))
    assert code == 422 and status["details"]["causes"][0]["field"] == "fieldManager"


def test_an_update_moves_changed_fields_and_keeps_stripped_entries(server: APIServer, api: LocalAPI) -> None:
    Raw(server, user_agent="kubectl/v1.32").post(CMS, configmap("a", data={"k": "v", "other": "o"}))
    fresh = api.get("v1", "configmaps", "a", "default")
    # a client that strips managedFields (informers do) must not erase them
    del fresh["metadata"]["managedFields"]
    fresh["data"]["k"] = "changed"
    fresh["data"]["new"] = "n"
    code, updated = Raw(server, user_agent="rook-py/0.1 (python)").put(f"{CMS}/a", fresh)
    assert code == 200
    entries = _entries(updated)
    assert entries[("kubectl", "")]["fieldsV1"] == {"f:data": {".": {}, "f:other": {}}}
    assert entries[("rook-py", "")]["fieldsV1"] == {"f:data": {"f:k": {}, "f:new": {}}}
    # removing a field takes it out of every set; a manager left with nothing loses its entry
    fresh = api.get("v1", "configmaps", "a", "default")
    fresh["data"] = {"k": "changed", "new": "n"}
    entries = _entries(api.update("v1", "configmaps", fresh, field_manager="cleaner"))
    assert set(entries) == {("kubectl", ""), ("rook-py", "")}
    assert entries[("kubectl", "")]["fieldsV1"] == {"f:data": {}}  # still owns the map itself


def test_noop_update_changes_nothing(api: LocalAPI) -> None:
    created = api.create("v1", "configmaps", configmap("a"), field_manager="first")
    same = api.update("v1", "configmaps", created, field_manager="second")
    assert same["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    assert same["metadata"]["managedFields"] == created["metadata"]["managedFields"]


def test_status_and_scale_entries_name_their_subresource(api: LocalAPI) -> None:
    created = api.create("apps/v1", "deployments", deployment("web"), field_manager="kubectl")
    main = _entries(created)[("kubectl", "")]["fieldsV1"]
    assert main["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"main"}']["f:image"] == {}
    assert "f:status" not in main
    status = dict(created, status={"replicas": 1, "conditions": [{"type": "Available", "status": "True"}]})
    updated = api.update("apps/v1", "deployments", status, subresource="status",
                         field_manager="kube-controller-manager")
    entry = _entries(updated)[("kube-controller-manager", "status")]
    assert entry["apiVersion"] == "apps/v1" and entry["subresource"] == "status"
    assert entry["fieldsV1"]["f:status"]["f:conditions"]['k:{"type":"Available"}']["f:status"] == {}
    scaled = api.patch("apps/v1", "deployments", "web", {"spec": {"replicas": 3}}, namespace="default",
                       subresource="scale", field_manager="autoscaler")
    assert scaled["kind"] == "Scale"
    entries = _entries(api.get("apps/v1", "deployments", "web", "default"))
    assert entries[("autoscaler", "scale")]["fieldsV1"] == {"f:spec": {"f:replicas": {}}}
    assert "f:replicas" not in entries[("kubectl", "")]["fieldsV1"]["f:spec"]


def test_managed_fields_sent_by_the_client(api: LocalAPI) -> None:
    created = api.create("v1", "configmaps", configmap("a"), field_manager="first")
    # [{}] clears them (the documented reset); this write itself changed nothing, so none remain
    cleared = api.update("v1", "configmaps", dict(created, metadata={**created["metadata"], "managedFields": [{}]}))
    assert "managedFields" not in cleared["metadata"]
    # a valid list replaces what is stored
    mine = [{"manager": "migrated", "operation": "Update", "apiVersion": "v1", "time": "2024-01-01T00:00:00Z",
             "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:k": {}}}}]
    replaced = api.update("v1", "configmaps", dict(cleared, metadata={**cleared["metadata"], "managedFields": mine}))
    assert replaced["metadata"]["managedFields"] == mine
    # an invalid one is ignored: the stored entries stay
    bogus = dict(replaced, metadata={**replaced["metadata"], "managedFields": [{"manager": 1}]},
                 data={"k": "v", "x": "y"})
    kept = api.update("v1", "configmaps", bogus, field_manager="second")
    assert set(_entries(kept)) == {("migrated", ""), ("second", "")}


def test_patch_records_the_patcher(server: APIServer) -> None:
    raw = Raw(server, user_agent="creator")
    raw.post(DEPLOYS, deployment("web"))
    code, patched = Raw(server, user_agent="kubectl-edit/v1").patch(
        f"{DEPLOYS}/web", {"metadata": {"annotations": {"note": "x"}}}, kind="strategic")
    assert code == 200
    assert _entries(patched)[("kubectl-edit", "")]["fieldsV1"] == {
        "f:metadata": {"f:annotations": {".": {}, "f:note": {}}}}


def test_managed_fields_can_be_turned_off() -> None:
    server = APIServer(tls=False, managed_fields=False)
    created = server.local.create("v1", "configmaps", configmap("a"))
    assert "managedFields" not in created["metadata"]
    sent = dict(created, metadata={**created["metadata"], "managedFields": [{"manager": "x"}]})
    assert "managedFields" not in server.local.update("v1", "configmaps", sent)["metadata"]


def test_json_patch_can_remove_managed_fields_entries(api: LocalAPI) -> None:
    api.create("v1", "configmaps", configmap("a"), field_manager="first")
    with pytest.raises(errors.Invalid):  # index out of range: 422, the patch does not apply
        api.patch("v1", "configmaps", "a", [{"op": "remove", "path": "/metadata/managedFields/3"}], "json", "default")
    patched = api.patch("v1", "configmaps", "a", [{"op": "replace", "path": "/metadata/managedFields", "value": [{}]}],
                        "json", "default")
    assert "managedFields" not in patched["metadata"]


# --- the pure functions ---------------------------------------------------------------------------

def test_manager_from_user_agent() -> None:
    assert mf.manager_from_user_agent("OpenAPI-Generator/37.0.0/python") == "OpenAPI-Generator"
    assert mf.manager_from_user_agent("kube-controller-manager/v1.32.0 (linux/amd64)") == "kube-controller-manager"
    assert mf.manager_from_user_agent("bad\x00agent") == "badagent"
    assert len(mf.manager_from_user_agent("x" * 500)) == 128
    assert mf.manager_from_user_agent("") == ""


def _pod_types() -> tuple[Types, JSON]:
    registry = Registry(now=lambda: "2024-01-01T00:00:00Z")
    sr = registry.lookup("", "v1", "pods")
    assert sr is not None
    docs = Documents(registry)
    return Types(docs.definitions()), {"$ref": f"#/definitions/{docs.definition_of(sr)}"}


def test_field_sets() -> None:
    types, schema = _pod_types()
    obj = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "p", "uid": "u", "resourceVersion": "3", "labels": {"a": "b"}, "finalizers": ["f"]},
           "spec": {"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 80}]}],
                    "volumes": [{"name": "v"}, {"name": "v"}], "nodeSelector": {"x": "y"}},
           "status": {}}
    assert mf.to_fields_v1(mf.strip_server_fields(fm.to_set(types, obj, schema))) == {
        "f:metadata": {"f:labels": {"f:a": {}}, "f:finalizers": {'v:"f"': {}}},
        "f:spec": {"f:containers": {'k:{"name":"c"}': {
            ".": {}, "f:name": {}, "f:image": {},
            # keyed by (containerPort, protocol); the missing protocol is its schema default
            "f:ports": {'k:{"containerPort":80,"protocol":"TCP"}': {".": {}, "f:containerPort": {}}}}},
            "f:volumes": {'k:{"name":"v"}': {}},   # a duplicate key is owned as a whole item
            "f:nodeSelector": {}},                 # an atomic map is one leaf
        "f:status": {},
    }
    new = {**obj, "spec": {**obj["spec"], "containers": [{"name": "c", "image": "j", "ports": [{"containerPort": 80}]},
                                                         {"name": "d", "image": "k"}]}}
    diff = fm.compare(types, obj, new, schema)
    assert mf.to_fields_v1(diff.modified) == {"f:spec": {"f:containers": {'k:{"name":"c"}': {"f:image": {}}}}}
    assert mf.to_fields_v1(diff.added) == {"f:spec": {"f:containers": {'k:{"name":"d"}': {
        ".": {}, "f:name": {}, "f:image": {}}}}}
    assert diff.removed == {}
    a = mf.from_fields_v1({"f:data": {".": {}, "f:k": {}, "f:x": {}}})
    b = mf.from_fields_v1({"f:data": {"f:k": {}}})
    assert mf.to_fields_v1(fm.difference(a, b)) == {"f:data": {".": {}, "f:x": {}}}
    assert mf.to_fields_v1(fm.intersection(a, b)) == {"f:data": {"f:k": {}}}
    assert mf.to_fields_v1(fm.union(b, mf.from_fields_v1({"f:data": {"f:z": {}}}))) == {"f:data": {"f:k": {},
                                                                                                  "f:z": {}}}
    with pytest.raises(ValueError):
        mf.from_fields_v1({"f:data": []})


def test_entries_sort_like_upstream() -> None:
    obj: JSON = {"metadata": {"managedFields": [
        {"manager": "b", "operation": "Update", "apiVersion": "v1", "time": "2024-01-02T00:00:00Z",
         "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:b": {}}}},
        {"manager": "a", "operation": "Update", "apiVersion": "v1", "time": "2024-01-03T00:00:00Z",
         "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:a": {}}}},
        {"manager": "z", "operation": "Apply", "apiVersion": "v1", "time": "2024-01-09T00:00:00Z",
         "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:z": {}}}}]}, "data": {"a": "1", "b": "2", "z": "3"}}
    new = {"metadata": {}, "data": {"a": "1", "b": "2", "z": "3", "c": "4"}}
    mf.record_write(new, obj, manager="c", api_version="v1", subresource=None, now=lambda: "2024-02-01T00:00:00Z",
                    types=Types({}), schema={"type": "object", "additionalProperties": {"type": "string"}})
    assert [e["manager"] for e in new["metadata"]["managedFields"]] == ["z", "b", "a", "c"]
