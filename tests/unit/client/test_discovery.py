"""Discovery: GVK -> GVR mapping, caching per group-version, refresh on a miss."""

from __future__ import annotations

import re

import pytest

from rook_py.framework.client import Client, errors
from rook_py.framework.client.discovery import ResourceInfo, group_version_path, split_api_version
from tests.unit.client.fake_apiserver import FakeAPIServer


def discovery_calls(server: FakeAPIServer, path: str) -> int:
    return sum(1 for r in server.requests if r.path == path)


def test_split_and_paths() -> None:
    assert split_api_version("v1") == ("", "v1")
    assert split_api_version("apps/v1") == ("apps", "v1")
    assert group_version_path("v1") == "/api/v1"
    assert group_version_path("chubao.rook.io/v1alpha1") == "/apis/chubao.rook.io/v1alpha1"
    for bad in ("", "/v1", "apps/"):
        with pytest.raises(ValueError):
            split_api_version(bad)


def test_resource_info_and_subresources(client: Client) -> None:
    pod = client.resource_for("v1", "Pod")
    assert pod == ResourceInfo(group="", version="v1", resource="pods", kind="Pod", namespaced=True,
                               verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
                               subresources=("status", "log"), api_version="v1")
    assert pod.path("ns", "p", "status") == "/api/v1/namespaces/ns/pods/p/status"
    assert pod.path(None) == "/api/v1/pods"
    dep = client.resource_for("apps/v1", "Deployment")
    assert (dep.group, dep.resource) == ("apps", "deployments")
    assert dep.path("a b", "x:y") == "/apis/apps/v1/namespaces/a%20b/deployments/x:y"
    assert not client.resource_for("v1", "Namespace").namespaced


def test_cached_per_group_version(client: Client, server: FakeAPIServer) -> None:
    client.resource_for("v1", "Pod")
    client.resource_for("v1", "ConfigMap")
    client.resource_for("v1", "Pod")
    assert discovery_calls(server, "/api/v1") == 1


def test_miss_refreshes_so_new_crds_are_found(client: Client, server: FakeAPIServer) -> None:
    with pytest.raises(errors.NotFound, match=re.escape('kind "Widget" in version "example.com/v1"')):
        client.resource_for("example.com/v1", "Widget")
    server.discovery["example.com/v1"] = [
        {"name": "widgets", "namespaced": True, "kind": "Widget", "verbs": ["get", "list"]},
        {"name": "widgets/status", "namespaced": True, "kind": "Widget", "verbs": ["get"]}]
    info = client.resource_for("example.com/v1", "Widget")
    assert (info.resource, info.subresources) == ("widgets", ("status",))
    # A kind added to an already-cached group-version is found too.
    client.resource_for("v1", "Pod")
    server.discovery["v1"].append({"name": "secrets", "namespaced": True, "kind": "Secret", "verbs": []})
    assert client.resource_for("v1", "Secret").resource == "secrets"
    assert discovery_calls(server, "/api/v1") == 2


def test_unknown_kind_in_served_group(client: Client) -> None:
    with pytest.raises(errors.NotFound, match="is the CRD installed"):
        client.resource_for("apps/v1", "Nope")


def test_invalidate(client: Client, server: FakeAPIServer) -> None:
    client.resource_for("v1", "Pod")
    client.discovery.invalidate("v1")
    client.resource_for("v1", "Pod")
    client.discovery.invalidate()
    assert len(client.discovery.resources("v1")) == 3
    assert discovery_calls(server, "/api/v1") == 3


def test_concurrent_misses_share_one_fetch() -> None:
    import threading

    from rook_py.framework.client.discovery import Discovery

    calls: list[str] = []
    gate = threading.Event()

    def fetch(path: str) -> dict[str, object]:
        calls.append(path)
        gate.wait(2)
        return {"resources": [{"name": "widgets", "kind": "Widget", "namespaced": True, "verbs": []}]}

    discovery = Discovery(fetch)
    results: list[ResourceInfo] = []
    threads = [threading.Thread(target=lambda: results.append(discovery.resource_for("x.io/v1", "Widget")))
               for _ in range(8)]
    for t in threads:
        t.start()
    gate.set()
    for t in threads:
        t.join(5)
    assert len(results) == 8 and {r.resource for r in results} == {"widgets"}
    assert calls == ["/apis/x.io/v1"]


def test_empty_name_rejected(client: Client) -> None:
    with pytest.raises(ValueError, match="empty name"):
        client.resource_for("v1", "Pod").path("ns", "")
