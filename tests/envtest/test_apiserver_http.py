"""The emulator over real HTTP: auth, discovery, content negotiation, pagination, watch."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from rook_py.envtest.apiserver.server import APIServer
from tests.support.waiting import eventually

from .apiserver_support import Raw, configmap, deployment, widget, widget_crd

CMS = "/api/v1/namespaces/default/configmaps"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"


@pytest.fixture
def server() -> Iterator[APIServer]:
    srv = APIServer(history_size=50, bookmark_interval=0.2).start()
    yield srv
    srv.stop()


@pytest.fixture
def raw(server: APIServer) -> Raw:
    return Raw(server)


def test_bearer_token_is_required(server: APIServer) -> None:
    code, body = Raw(server, token=None).get(CMS)
    assert code == 401 and body["reason"] == "Unauthorized" and body["kind"] == "Status"
    assert Raw(server, token="wrong").get(CMS)[0] == 401
    assert Raw(server, token=None).get("/healthz") == (200, "ok")
    code, version = Raw(server, token=None).get("/version")
    assert code == 200 and version["major"] == "1"


def test_discovery_documents(raw: Raw) -> None:
    code, api = raw.get("/api")
    assert code == 200 and api["versions"] == ["v1"]
    code, core = raw.get("/api/v1")
    by_name = {r["name"]: r for r in core["resources"]}
    assert by_name["pods"]["namespaced"] and by_name["pods"]["kind"] == "Pod"
    assert by_name["pods"]["shortNames"] == ["po"] and "all" in by_name["pods"]["categories"]
    assert by_name["pods/status"]["verbs"] == ["get", "patch", "update"]
    assert by_name["namespaces/finalize"]["verbs"] == ["update"]
    assert not by_name["nodes"]["namespaced"]
    code, groups = raw.get("/apis")
    names = [g["name"] for g in groups["groups"]]
    for group in ("apps", "events.k8s.io", "coordination.k8s.io", "rbac.authorization.k8s.io",
                  "networking.k8s.io", "policy", "apiextensions.k8s.io"):
        assert group in names
    code, apps = raw.get("/apis/apps/v1")
    scale = {r["name"]: r for r in apps["resources"]}["deployments/scale"]
    assert (scale["group"], scale["version"], scale["kind"]) == ("autoscaling", "v1", "Scale")
    assert raw.get("/openapi/v2")[0] == 200 and "api/v1" in raw.get("/openapi/v3")[1]["paths"]
    # kubectl asks for aggregated discovery first: plain JSON is the accepted fallback
    code, body, headers = raw.request("GET", "/apis", accept="application/json;g=apidiscovery.k8s.io;v=v2;"
                                      "as=APIGroupDiscoveryList,application/json")
    assert code == 200 and body["kind"] == "APIGroupList" and headers["content-type"] == "application/json"


def test_crd_updates_discovery(raw: Raw) -> None:
    assert raw.get("/apis/example.com/v1")[0] == 404
    assert raw.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", widget_crd())[0] == 201
    code, doc = raw.get("/apis/example.com/v1")
    assert code == 200
    entries = {r["name"]: r for r in doc["resources"]}
    assert entries["widgets"]["shortNames"] == ["wd"] and "widgets/status" in entries and "widgets/scale" in entries
    assert raw.delete("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com")[0] == 200
    assert raw.get("/apis/example.com/v1")[0] == 404


def test_crud_status_codes_and_errors(raw: Raw) -> None:
    code, created = raw.post(CMS, configmap("a"))
    assert code == 201 and created["kind"] == "ConfigMap"
    code, err = raw.post(CMS, configmap("a"))
    assert code == 409 and err["reason"] == "AlreadyExists" and err["details"]["name"] == "a"
    code, err = raw.post(CMS, configmap("UPPER"))
    assert code == 422 and err["reason"] == "Invalid" and err["details"]["causes"][0]["field"] == "metadata.name"
    stale = dict(created, data={"k": "x"})
    assert raw.put(f"{CMS}/a", stale)[0] == 200
    code, err = raw.put(f"{CMS}/a", stale)
    assert code == 409 and err["reason"] == "Conflict"
    assert raw.get(f"{CMS}/missing")[0] == 404
    assert raw.get("/api/v1/namespaces/default/nothings")[0] == 404
    code, err = raw.patch(f"{CMS}/a", {"data": {"k": "y"}}, kind="apply")  # no fieldManager
    assert code == 422 and err["reason"] == "Invalid" and err["details"]["kind"] == "PatchOptions"
    code, patched = raw.patch(f"{CMS}/a", [{"op": "replace", "path": "/data/k", "value": "z"}], kind="json")
    assert code == 200 and patched["data"]["k"] == "z"
    code, err = raw.patch(f"{CMS}/a", [{"op": "test", "path": "/data/k", "value": "nope"}], kind="json")
    assert code == 422
    code, status = raw.delete(f"{CMS}/a")
    assert code == 200 and status["status"] == "Success"


def test_strategic_merge_patch_on_builtin(raw: Raw) -> None:
    assert raw.post("/apis/apps/v1/namespaces/default/deployments", deployment("web"))[0] == 201
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "sidecar", "image": "busybox"}]}}}}
    code, dep = raw.patch("/apis/apps/v1/namespaces/default/deployments/web", patch, kind="strategic")
    assert code == 200
    assert sorted(c["name"] for c in dep["spec"]["template"]["spec"]["containers"]) == ["main", "sidecar"]
    assert dep["metadata"]["generation"] == 2


def test_pagination_is_a_consistent_snapshot(raw: Raw) -> None:
    for i in range(5):
        raw.post(CMS, configmap(f"cm-{i}"))
    assert raw.get(f"{CMS}?limit=2")[0] == 200
    _, page = raw.get(f"{CMS}?limit=2")
    assert [o["metadata"]["name"] for o in page["items"]] == ["cm-0", "cm-1"]
    assert page["metadata"]["remainingItemCount"] == 3
    token = page["metadata"]["continue"]
    raw.delete(f"{CMS}/cm-3")        # changes after the first page are not visible to the continuation
    raw.post(CMS, configmap("cm-25"))
    _, page2 = raw.get(f"{CMS}?limit=10&continue={token}")
    assert [o["metadata"]["name"] for o in page2["items"]] == ["cm-2", "cm-3", "cm-4"]
    assert page2["metadata"]["resourceVersion"] == page["metadata"]["resourceVersion"]
    assert "continue" not in page2["metadata"]


def test_expired_continue_is_410(server: APIServer, raw: Raw) -> None:
    for i in range(3):
        raw.post(CMS, configmap(f"cm-{i}"))
    _, page = raw.get(f"{CMS}?limit=1")
    raw.post(CMS, configmap("later"))
    server.faults.compact()
    code, err = raw.get(f"{CMS}?limit=1&continue={page['metadata']['continue']}")
    assert code == 410 and err["reason"] == "Expired"


def test_table_output_for_builtin_and_custom_resources(raw: Raw) -> None:
    raw.post(CMS, configmap("a"))
    code, table, _ = raw.request("GET", CMS, accept=TABLE)
    assert code == 200 and table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    assert table["rows"][0]["cells"][0] == "a"
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    raw.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", widget_crd())
    raw.post("/apis/example.com/v1/namespaces/default/widgets", widget("w", size=7))
    code, table, _ = raw.request("GET", "/apis/example.com/v1/namespaces/default/widgets/w", accept=TABLE)
    assert [c["name"] for c in table["columnDefinitions"]][:3] == ["Name", "Size", "Mode"]
    assert table["rows"][0]["cells"][:3] == ["w", 7, "safe"]


def test_watch_initial_state_then_live_events(server: APIServer, raw: Raw) -> None:
    raw.post(CMS, configmap("before"))
    events: list[tuple[str, str]] = []

    def consume() -> None:
        for ev in raw.watch(f"{CMS}?watch=true&timeoutSeconds=5", count=3):
            events.append((ev["type"], ev["object"]["metadata"]["name"]))

    t = threading.Thread(target=consume)
    t.start()
    eventually(lambda: server.store.watcher_count() > 0, 5, interval=0.01, what="the watch")
    raw.post(CMS, configmap("after"))
    raw.delete(f"{CMS}/before")
    t.join(5)
    assert events == [("ADDED", "before"), ("ADDED", "after"), ("DELETED", "before")]


def test_watch_resume_and_expired(server: APIServer, raw: Raw) -> None:
    _, first = raw.post(CMS, configmap("a"))
    raw.post(CMS, configmap("b"))
    raw.patch(f"{CMS}/a", {"data": {"k": "2"}})
    rv = first["metadata"]["resourceVersion"]
    replay = [(e["type"], e["object"]["metadata"]["name"])
              for e in raw.watch(f"{CMS}?watch=1&resourceVersion={rv}&timeoutSeconds=5", count=2)]
    assert replay == [("ADDED", "b"), ("MODIFIED", "a")]
    server.faults.compact()
    events = list(raw.watch(f"{CMS}?watch=1&resourceVersion={rv}&timeoutSeconds=1"))
    assert len(events) == 1 and events[0]["type"] == "ERROR"
    status = events[0]["object"]
    assert status["code"] == 410 and status["reason"] == "Expired" and status["kind"] == "Status"


def test_watch_history_window_size(raw: Raw) -> None:
    _, first = raw.post(CMS, configmap("first"))
    for i in range(60):  # history_size=50 in the fixture
        raw.patch(f"{CMS}/first", {"data": {"k": str(i)}})
    events = list(raw.watch(f"{CMS}?watch=1&resourceVersion={first['metadata']['resourceVersion']}"
                            "&timeoutSeconds=1"))
    assert events[0]["type"] == "ERROR" and events[0]["object"]["code"] == 410


def test_watch_label_selector_transitions(raw: Raw) -> None:
    _, start = raw.get(CMS)
    rv = start["metadata"]["resourceVersion"]
    raw.post(CMS, configmap("x", labels={"sel": "yes"}))
    raw.patch(f"{CMS}/x", {"metadata": {"labels": {"sel": "no"}}})
    raw.patch(f"{CMS}/x", {"metadata": {"labels": {"sel": "yes"}}})
    seen = [e["type"] for e in raw.watch(f"{CMS}?watch=1&labelSelector=sel%3Dyes&resourceVersion={rv}"
                                          "&timeoutSeconds=5", count=3)]
    assert seen == ["ADDED", "DELETED", "ADDED"]


def test_watch_bookmarks(raw: Raw) -> None:
    _, listed = raw.get(CMS)
    events = list(raw.watch(f"{CMS}?watch=1&allowWatchBookmarks=true&resourceVersion="
                            f"{listed['metadata']['resourceVersion']}&timeoutSeconds=5", count=2))
    bookmarks = [e for e in events if e["type"] == "BOOKMARK"]
    assert bookmarks, events
    assert int(bookmarks[-1]["object"]["metadata"]["resourceVersion"]) >= int(listed["metadata"]["resourceVersion"])
    assert bookmarks[0]["object"]["kind"] == "ConfigMap"


def test_watch_send_initial_events_ends_with_marked_bookmark(raw: Raw) -> None:
    raw.post(CMS, configmap("a"))
    events = list(raw.watch(f"{CMS}?watch=1&sendInitialEvents=true&allowWatchBookmarks=true"
                            "&resourceVersionMatch=NotOlderThan&timeoutSeconds=5", count=2))
    assert events[0]["type"] == "ADDED"
    marker = events[1]
    assert marker["type"] == "BOOKMARK"
    assert marker["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


def test_deletecollection(raw: Raw) -> None:
    for i, tier in enumerate(["a", "a", "b"]):
        raw.post(CMS, configmap(f"c{i}", labels={"tier": tier}))
    code, _, _ = raw.request("DELETE", f"{CMS}?labelSelector=tier%3Da")
    assert code == 200
    _, left = raw.get(CMS)
    assert [o["metadata"]["name"] for o in left["items"]] == ["c2"]


def test_status_and_scale_endpoints(raw: Raw) -> None:
    base = "/apis/apps/v1/namespaces/default/deployments"
    raw.post(base, deployment("web", replicas=2))
    code, scale = raw.get(f"{base}/web/scale")
    assert code == 200 and scale["spec"]["replicas"] == 2 and scale["status"]["selector"] == "app=web"
    scale["spec"]["replicas"] = 5
    code, scale = raw.put(f"{base}/web/scale", scale)
    assert code == 200 and scale["spec"]["replicas"] == 5
    code, dep = raw.patch(f"{base}/web/status", {"status": {"readyReplicas": 5}})
    assert code == 200 and dep["status"]["readyReplicas"] == 5 and dep["spec"]["replicas"] == 5
    assert raw.get("/api/v1/namespaces/default/configmaps/x/status")[0] == 404


def test_kubeconfig_works_with_the_official_client(server: APIServer, tmp_path: object) -> None:
    from kubernetes import client, config, watch

    path = server.write_kubeconfig(str(tmp_path) + "/kubeconfig")  # type: ignore[operator]
    api_client = config.new_client_from_config(config_file=path)
    core = client.CoreV1Api(api_client)
    core.create_namespaced_config_map("default", client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="typed", labels={"a": "b"}), data={"k": "v"}))
    assert [c.metadata.name for c in core.list_namespaced_config_map("default", label_selector="a=b").items] == ["typed"]
    apps = client.AppsV1Api(api_client)
    apps.create_namespaced_deployment("default", deployment("typed"))
    assert apps.read_namespaced_deployment("typed", "default").spec.replicas == 1
    w = watch.Watch()
    for event in w.stream(core.list_namespaced_config_map, "default", timeout_seconds=5):
        assert (event["type"], event["object"].metadata.name) == ("ADDED", "typed")
        w.stop()
    with pytest.raises(client.ApiException) as exc:
        core.read_namespaced_config_map("missing", "default")
    assert exc.value.status == 404
    assert server.stats.count(verb="create", resource="configmaps", code=201) == 1
    assert server.stats.count(user_agent="OpenAPI-Generator", verb="list", resource="configmaps") == 1


def test_single_object_table_carries_the_object_resource_version(raw: Raw) -> None:
    _, created = raw.post(CMS, configmap("one"))
    raw.post(CMS, configmap("later"))  # the store moves on; the Table must not show its rv
    code, table, _ = raw.request("GET", f"{CMS}/one", accept=TABLE)
    assert code == 200 and table["kind"] == "Table"
    assert table["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


def test_malformed_patches_are_400_and_inapplicable_ones_422(raw: Raw) -> None:
    raw.post(CMS, configmap("p"))
    code, err = raw.patch(f"{CMS}/p", {"op": "replace", "path": "/data/k", "value": "x"}, kind="json")
    assert code == 400 and err["reason"] == "BadRequest" and "JSON Patch" in err["message"]
    code, err = raw.patch(f"{CMS}/p", {"data": {"$patch": "bogus"}}, kind="strategic")
    assert code == 400 and err["reason"] == "BadRequest"
    code, err = raw.patch(f"{CMS}/p", [{"op": "remove", "path": "/data/missing"}], kind="json")
    assert code == 422 and err["reason"] == "Invalid" and err["details"]["causes"][0]["field"] == "patch"
