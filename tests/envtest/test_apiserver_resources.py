"""Resource-specific behaviour over HTTP: defaults, field selectors, events in two API groups,
Table watches, and less common request forms."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from rook_py.envtest.apiserver.server import APIServer

from .apiserver_support import Raw, configmap

CMS = "/api/v1/namespaces/default/configmaps"
PODS = "/api/v1/namespaces/default/pods"


@pytest.fixture
def server() -> Iterator[APIServer]:
    srv = APIServer(tls=False).start()
    yield srv
    srv.stop()


@pytest.fixture
def raw(server: APIServer) -> Raw:
    return Raw(server)


def _pod(name: str, node: str | None = None) -> dict[str, object]:
    spec: dict[str, object] = {"containers": [{"name": "c", "image": "busybox:1.36"}]}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def test_pod_defaults_and_field_selectors(raw: Raw) -> None:
    code, pod = raw.post(PODS, _pod("a", node="node-1"))
    assert code == 201
    assert pod["status"] == {"phase": "Pending", "qosClass": "BestEffort"}
    container = pod["spec"]["containers"][0]
    assert container["imagePullPolicy"] == "IfNotPresent" and container["terminationMessagePath"]
    assert pod["spec"]["restartPolicy"] == "Always" and pod["spec"]["serviceAccountName"] == "default"
    raw.post(PODS, _pod("b"))
    _, on_node = raw.get(f"{PODS}?fieldSelector=spec.nodeName%3Dnode-1")
    assert [p["metadata"]["name"] for p in on_node["items"]] == ["a"]
    _, unscheduled = raw.get("/api/v1/pods?fieldSelector=spec.nodeName%3D")
    assert [p["metadata"]["name"] for p in unscheduled["items"]] == ["b"]
    _, pending = raw.get(f"{PODS}?fieldSelector=status.phase%3DPending,metadata.name%21%3Da")
    assert [p["metadata"]["name"] for p in pending["items"]] == ["b"]
    code, err = raw.get(f"{CMS}?fieldSelector=spec.nodeName%3Dx")
    # ConfigMaps register no field-label conversion: kube-apiserver's default wording
    assert code == 400 and err["message"] == ('"spec.nodeName" is not a known field selector: '
                                              'only "metadata.name", "metadata.namespace"')
    code, err = raw.get(f"{PODS}?fieldSelector=spec.bogus%3Dx")
    assert code == 400 and err["message"] == "field label not supported: spec.bogus"
    code, err = raw.post(PODS, {"metadata": {"name": "empty"}, "spec": {"containers": []}})
    assert code == 422 and err["details"]["causes"][0]["field"] == "spec.containers"


def test_pod_spec_is_mostly_immutable(raw: Raw) -> None:
    raw.post(PODS, _pod("a"))
    assert raw.patch(f"{PODS}/a", {"spec": {"nodeName": "node-1"}})[0] == 200   # binding an unbound pod
    code, err = raw.patch(f"{PODS}/a", {"spec": {"restartPolicy": "Never"}})
    assert code == 422 and "pod updates may not change fields" in err["message"]


def test_events_are_one_resource_in_two_groups(raw: Raw) -> None:
    event = {"metadata": {"name": "e1"}, "involvedObject": {"kind": "Pod", "name": "a", "namespace": "default"},
             "reason": "Started", "message": "hello", "type": "Normal", "count": 2}
    assert raw.post("/api/v1/namespaces/default/events", event)[0] == 201
    code, new = raw.get("/apis/events.k8s.io/v1/namespaces/default/events/e1")
    assert code == 200 and new["apiVersion"] == "events.k8s.io/v1"
    assert new["regarding"]["name"] == "a" and new["note"] == "hello" and new["deprecatedCount"] == 2
    new_style = {"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e2"},
                 "regarding": {"kind": "Pod", "name": "b"}, "note": "n", "reason": "R", "type": "Warning",
                 "reportingController": "me", "reportingInstance": "me-1", "action": "Act",
                 "eventTime": "2026-01-01T00:00:00.000000Z"}
    assert raw.post("/apis/events.k8s.io/v1/namespaces/default/events", new_style)[0] == 201
    _, core = raw.get("/api/v1/namespaces/default/events?fieldSelector=involvedObject.name%3Db")
    assert [(e["metadata"]["name"], e["message"]) for e in core["items"]] == [("e2", "n")]
    _, by_regarding = raw.get("/apis/events.k8s.io/v1/namespaces/default/events?fieldSelector=regarding.name%3Da")
    assert [e["metadata"]["name"] for e in by_regarding["items"]] == ["e1"]


def test_malformed_bodies_are_400(raw: Raw) -> None:
    code, body, _ = raw.request("POST", CMS, None)
    assert code == 400 and body["reason"] == "BadRequest"
    import http.client

    conn = http.client.HTTPConnection(raw.host, raw.port, timeout=5)
    conn.request("POST", CMS, body=b"{not json", headers={"Authorization": f"Bearer {raw.token}",
                                                          "Content-Type": "application/json"})
    resp = conn.getresponse()
    assert resp.status == 400 and json.loads(resp.read())["kind"] == "Status"
    conn.close()
    code, err = raw.post(CMS, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}})
    assert code == 400 and "kind" in err["message"]


def test_services_allocate_addresses_and_release_them(raw: Raw) -> None:
    svcs = "/api/v1/namespaces/default/services"
    _, a = raw.post(svcs, {"metadata": {"name": "a"}, "spec": {"ports": [{"port": 80}]}})
    _, b = raw.post(svcs, {"metadata": {"name": "b"}, "spec": {"type": "NodePort", "ports": [{"port": 80}]}})
    assert a["spec"]["clusterIP"] != b["spec"]["clusterIP"]
    assert a["spec"]["clusterIPs"] == [a["spec"]["clusterIP"]] and a["spec"]["sessionAffinity"] == "None"
    assert 30000 <= b["spec"]["ports"][0]["nodePort"] <= 32767
    _, headless = raw.post(svcs, {"metadata": {"name": "h"}, "spec": {"clusterIP": "None", "selector": {"a": "b"}}})
    assert headless["spec"]["clusterIP"] == "None"
    code, err = raw.post(svcs, {"metadata": {"name": "1bad"}, "spec": {"ports": [{"port": 80}]}})
    assert code == 422 and err["details"]["causes"][0]["field"] == "metadata.name"  # DNS-1035 labels
    # an update that leaves out the allocated address keeps it
    allocated = a["spec"].pop("clusterIP")
    a["spec"].pop("clusterIPs")
    code, kept = raw.put(f"{svcs}/a", a)
    assert code == 200 and kept["spec"]["clusterIP"] == allocated
    assert raw.get(f"{svcs}/kubernetes")[1]["spec"]["clusterIP"] == "10.96.0.1"
    code, err = raw.post(svcs, {"metadata": {"name": "dup"}, "spec": {"clusterIP": "10.96.0.1",
                                                                     "ports": [{"port": 80}]}})
    assert code == 422 and "already allocated" in err["message"]
    raw.delete(f"{svcs}/a")  # deleting a Service frees its address for someone else
    code, reuse = raw.post(svcs, {"metadata": {"name": "c"}, "spec": {"clusterIP": allocated,
                                                                     "ports": [{"port": 80}]}})
    assert code == 201 and reuse["spec"]["clusterIP"] == allocated


def test_secret_string_data_and_type(raw: Raw) -> None:
    secrets = "/api/v1/namespaces/default/secrets"
    code, secret = raw.post(secrets, {"metadata": {"name": "s"}, "stringData": {"password": "hunter2"}})
    assert code == 201 and secret["type"] == "Opaque" and secret["data"] == {"password": "aHVudGVyMg=="}
    assert "stringData" not in secret
    code, err = raw.post(secrets, {"metadata": {"name": "bad"}, "data": {"x": "not base64!"}})
    assert code == 422 and err["details"]["causes"][0]["field"] == "data[x]"
    secret["type"] = "kubernetes.io/tls"
    assert raw.put(f"{secrets}/s", secret)[0] == 422


def test_table_watch_like_kubectl_get_w(server: APIServer, raw: Raw) -> None:
    _, listed = raw.get(CMS)
    raw.post(CMS, configmap("t"))
    accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    path = f"{CMS}?watch=1&resourceVersion={listed['metadata']['resourceVersion']}&timeoutSeconds=5"
    import http.client
    import json

    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("GET", path, headers={"Authorization": f"Bearer {server.token}", "Accept": accept})
    resp = conn.getresponse()
    event = json.loads(resp.readline())
    conn.close()
    assert event["type"] == "ADDED" and event["object"]["kind"] == "Table"
    assert event["object"]["rows"][0]["cells"][0] == "t"


def test_legacy_watch_path_and_exact_list(raw: Raw) -> None:
    _, first = raw.post(CMS, configmap("a"))
    raw.post(CMS, configmap("b"))
    events = list(raw.watch("/api/v1/watch/namespaces/default/configmaps/a?timeoutSeconds=5", count=1))
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "a")]
    rv = first["metadata"]["resourceVersion"]
    _, exact = raw.get(f"{CMS}?resourceVersion={rv}&resourceVersionMatch=Exact")
    assert [o["metadata"]["name"] for o in exact["items"]] == ["a"]
    assert exact["metadata"]["resourceVersion"] == rv


def test_dry_run_does_not_persist(raw: Raw) -> None:
    code, created, _ = raw.request("POST", f"{CMS}?dryRun=All", configmap("dry"))
    assert code == 201 and created["metadata"]["name"] == "dry"
    assert raw.get(f"{CMS}/dry")[0] == 404


def test_request_body_limit(raw: Raw) -> None:
    big = configmap("big", data={"k": "x" * (3 * 1024 * 1024 + 10)})
    code, err = raw.post(CMS, big)
    assert code == 413 and err["reason"] == "RequestEntityTooLarge"


def test_rbac_leases_ingress_pdb(raw: Raw) -> None:
    rbac = "/apis/rbac.authorization.k8s.io/v1"
    assert raw.post(f"{rbac}/clusterroles", {"metadata": {"name": "system:reader"},
                                            "rules": [{"apiGroups": [""], "resources": ["pods"],
                                                       "verbs": ["get"]}]})[0] == 201
    binding = {"metadata": {"name": "rb"}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io",
                                                         "kind": "ClusterRole", "name": "system:reader"},
               "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "default"}]}
    _, rb = raw.post(f"{rbac}/namespaces/default/rolebindings", binding)
    rb["roleRef"]["name"] = "other"
    assert raw.put(f"{rbac}/namespaces/default/rolebindings/rb", rb)[0] == 422
    lease = {"metadata": {"name": "leader"}, "spec": {"holderIdentity": "me", "leaseDurationSeconds": 15}}
    assert raw.post("/apis/coordination.k8s.io/v1/namespaces/default/leases", lease)[0] == 201
    _, pdb = raw.post("/apis/policy/v1/namespaces/default/poddisruptionbudgets",
                      {"metadata": {"name": "p"}, "spec": {"minAvailable": 1, "selector": {"matchLabels": {"a": "b"}}}})
    assert pdb["metadata"]["generation"] == 1 and pdb["status"]["disruptionsAllowed"] == 0
    _, ing = raw.post("/apis/networking.k8s.io/v1/namespaces/default/ingresses",
                      {"metadata": {"name": "i"}, "spec": {"defaultBackend": {"service": {"name": "s",
                                                                                          "port": {"number": 80}}}}})
    assert ing["metadata"]["generation"] == 1


def test_partial_object_metadata(raw: Raw) -> None:
    raw.post(CMS, configmap("m", labels={"a": "b"}))
    accept = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
    code, listed, _ = raw.request("GET", CMS, accept=accept)
    assert code == 200 and listed["kind"] == "PartialObjectMetadataList"
    assert listed["items"] == [{"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                                "metadata": listed["items"][0]["metadata"]}]
    assert listed["items"][0]["metadata"]["labels"] == {"a": "b"}
    code, one, _ = raw.request("GET", f"{CMS}/m", accept=accept.replace("MetadataList", "Metadata"))
    assert one["kind"] == "PartialObjectMetadata" and "data" not in one
