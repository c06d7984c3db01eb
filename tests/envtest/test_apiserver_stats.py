"""Request statistics: the authorizer's attributes (group, object name) per call, and the filters
and snapshot every existing consumer relies on."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from urllib.parse import quote

import pytest

from rook_py.envtest.apiserver.server import APIServer
from rook_py.envtest.apiserver.stats import RequestStats, selector_name

from .apiserver_support import Raw, configmap, deployment

CMS = "/api/v1/namespaces/default/configmaps"
DEPLOYS = "/apis/apps/v1/namespaces/default/deployments"


@pytest.fixture
def server() -> Iterator[APIServer]:
    srv = APIServer().start()
    yield srv
    srv.stop()


def calls(server: APIServer, user_agent: str) -> set[tuple[str, str, str, str, str, int]]:
    """(verb, group, resource, subresource, name, code) of every call ``user_agent`` made."""
    return {(r["verb"], r["group"], r["resource"], r["subresource"], r["name"], r["code"])
            for r in server.stats.snapshot(by_name=True) if r["userAgent"] == user_agent}


# -- RequestStats alone -----------------------------------------------------------------------------

def filled() -> RequestStats:
    stats = RequestStats()
    stats.record("op/1.0", "get", "events", "", 200, group="", name="e1")
    stats.record("op/1.0", "get", "events", "", 200, group="events.k8s.io", name="e1")
    stats.record("op/1.0", "get", "events", "", 404, group="events.k8s.io", name="e2")
    stats.record("op/1.0", "list", "events", "", 200, group="events.k8s.io")
    stats.record("kubectl/v1.32", "update", "deployments", "status", 200, group="apps", name="d")
    stats.record("legacy", "create", "configmaps", "", 201)  # positional form, as before: core, no name
    return stats


def test_existing_filters_sum_over_groups_and_names() -> None:
    stats = filled()
    assert stats.count() == 6
    assert stats.count(user_agent="op") == 4  # a prefix
    assert stats.count(verb="get", resource="events") == 3
    assert stats.count(verb="get", code=200) == 2
    assert stats.count(resource="deployments", subresource="status") == 1
    assert stats.count(resource="configmaps", code=201) == 1


def test_group_and_name_filters_are_exact() -> None:
    stats = filled()
    assert stats.count(group="") == 2  # core: the /api/v1 event and the legacy configmap
    assert stats.count(resource="events", group="events.k8s.io") == 3
    assert stats.count(name="e1") == 2
    assert stats.count(name="") == 2  # requests on a collection
    assert stats.count(group="events.k8s.io", name="e1", code=200) == 1
    assert stats.count(group="events") == 0 and stats.count(name="e") == 0  # never prefixes


def test_snapshot_sums_names_away_unless_asked() -> None:
    stats = filled()
    stats.record("op/1.0", "get", "events", "", 200, group="events.k8s.io", name="e3", namespace="ns")
    rows = stats.snapshot()
    assert all("name" not in row and "namespace" not in row for row in rows)
    assert {"userAgent": "op/1.0", "verb": "get", "group": "events.k8s.io", "resource": "events",
            "subresource": "", "code": 200, "count": 2} in rows
    assert {"userAgent": "op/1.0", "verb": "get", "group": "", "resource": "events",
            "subresource": "", "code": 200, "count": 1} in rows
    assert sum(row["count"] for row in rows) == stats.count() == 7
    detailed = stats.snapshot(by_name=True)
    assert len(detailed) == 7 and all(row["count"] == 1 for row in detailed)
    assert {"userAgent": "op/1.0", "verb": "get", "group": "events.k8s.io", "resource": "events",
            "subresource": "", "name": "e3", "namespace": "ns", "code": 200, "count": 1} in detailed
    assert stats.count(namespace="ns") == 1
    assert detailed == sorted(detailed, key=lambda r: tuple(r.values()))
    stats.reset()
    assert stats.snapshot() == [] and stats.snapshot(by_name=True) == [] and stats.count() == 0


def test_concurrent_records_are_all_counted() -> None:
    stats = RequestStats()

    def work(i: int) -> None:
        for j in range(500):
            stats.record(f"ua-{i}", "get", "pods", "", 200, name=f"p{j % 7}")
            if j % 100 == 0:
                stats.count(name="p0")  # readers interleave with writers

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert stats.count() == 2000
    assert stats.count(user_agent="ua-3", name="p0") == len(range(0, 500, 7))


@pytest.mark.parametrize(("query", "name"), [
    ("", ""),
    ("watch=1&resourceVersion=5", ""),
    ("fieldSelector=metadata.name%3Dcm-1", "cm-1"),
    ("fieldSelector=metadata.name%3D%3Dcm-1&watch=true", "cm-1"),
    ("fieldSelector=" + quote("metadata.namespace=ns,metadata.name=x"), "x"),  # AND-ed terms still pin it
    ("fieldSelector=" + quote("metadata.name!=x"), ""),
    ("fieldSelector=" + quote("status.phase=Running"), ""),
    ("fieldSelector=" + quote("metadata.name=.."), ""),  # not a valid path segment name
    ("fieldSelector=" + quote("metadata.name=a/b"), ""),
    ("fieldSelector=" + quote("metadata.name"), ""),  # unparsable: names nothing
    ("fieldSelector=", ""),
])
def test_selector_name_follows_requestinfo(query: str, name: str) -> None:
    assert selector_name(query) == name


# -- what the server records ----------------------------------------------------------------------

def test_server_records_group_and_name_per_call(server: APIServer) -> None:
    raw = Raw(server, user_agent="stats-test")
    assert raw.post(CMS, configmap("cm-1"))[0] == 201
    assert raw.get(f"{CMS}/cm-1")[0] == 200
    assert raw.get(f"{CMS}/missing")[0] == 404
    assert raw.get(CMS)[0] == 200
    assert raw.get(f"{CMS}?fieldSelector={quote('metadata.name=cm-1')}")[0] == 200
    assert raw.delete(f"{CMS}/cm-1")[0] == 200
    assert raw.delete(f"{CMS}?labelSelector=a%3Db")[0] == 200
    assert raw.post(DEPLOYS, deployment("d"))[0] == 201
    assert raw.patch(f"{DEPLOYS}/d/status", {"status": {"observedGeneration": 1}})[0] == 200
    assert raw.get("/api/v1/namespaces/default/events")[0] == 200
    assert raw.get("/apis/events.k8s.io/v1/namespaces/default/events")[0] == 200
    watch = f"{CMS}?watch=1&timeoutSeconds=1&fieldSelector={quote('metadata.name=cm-2')}"
    assert list(raw.watch(watch, count=0)) == []
    assert calls(server, "stats-test") == {
        ("create", "", "configmaps", "", "", 201),
        ("get", "", "configmaps", "", "cm-1", 200),
        ("get", "", "configmaps", "", "missing", 404),
        ("list", "", "configmaps", "", "", 200),
        ("list", "", "configmaps", "", "cm-1", 200),  # pinned by its field selector, as RBAC sees it
        ("delete", "", "configmaps", "", "cm-1", 200),
        ("deletecollection", "", "configmaps", "", "", 200),
        ("create", "apps", "deployments", "", "", 201),
        ("patch", "apps", "deployments", "status", "d", 200),
        ("list", "", "events", "", "", 200),
        ("list", "events.k8s.io", "events", "", "", 200),
        ("watch", "", "configmaps", "", "cm-2", 200),
    }
    # The filters every older consumer uses still sum across groups and names.
    assert server.stats.count(user_agent="stats-test", verb="list", resource="events") == 2
    assert server.stats.count(user_agent="stats-test", verb="list", resource="configmaps", code=200) == 2
    assert server.stats.count(user_agent="stats-test", resource="events", group="events.k8s.io") == 1


def test_server_records_the_namespace_as_requestinfo_has_it(server: APIServer) -> None:
    raw = Raw(server, user_agent="ns-test")
    assert raw.get(f"{CMS}/none")[0] == 404
    assert raw.get("/api/v1/configmaps")[0] == 200                 # across all namespaces
    assert raw.get("/api/v1/nodes")[0] == 200                      # cluster-scoped
    assert raw.get("/api/v1/namespaces/default")[0] == 200         # a Namespace: its own name
    rows = {(r["verb"], r["resource"], r["namespace"])
            for r in server.stats.snapshot(by_name=True) if r["userAgent"] == "ns-test"}
    assert rows == {("get", "configmaps", "default"), ("list", "configmaps", ""), ("list", "nodes", ""),
                    ("get", "namespaces", "default")}


def test_control_endpoint_rows_carry_the_group(server: APIServer) -> None:
    raw = Raw(server, user_agent="stats-test")
    raw.post(DEPLOYS, deployment("d"))
    raw.get(f"{DEPLOYS}/d")
    code, body = raw.get("/envtest/v1/stats")
    assert code == 200
    mine = [row for row in body["items"] if row["userAgent"] == "stats-test"]
    assert mine == [
        {"userAgent": "stats-test", "verb": "create", "group": "apps", "resource": "deployments", "subresource": "",
         "code": 201, "count": 1},
        {"userAgent": "stats-test", "verb": "get", "group": "apps", "resource": "deployments", "subresource": "",
         "code": 200, "count": 1},
    ]
