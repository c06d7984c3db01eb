"""The client against envtest: verbs, discovery of run-time CRDs, errors, watch semantics."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from rook_py.framework.client import Client, errors, load_config
from tests.support.waiting import eventually

JSON = dict[str, Any]


def cm(name: str, ns: str = "default", labels: dict[str, str] | None = None, **data: str) -> JSON:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": ns, "labels": labels or {}}, "data": dict(data)}


@pytest.fixture
def client(envtest: Any) -> Client:
    c: Client = Client(load_config(envtest.kubeconfig), timeout=10.0, user_agent="it-client/1")
    return c


def test_crud_roundtrip_and_optimistic_concurrency(client: Client) -> None:
    created = client.create(cm("a", labels={"app": "x"}, k="1"))
    assert type(created) is dict and created["metadata"]["uid"]
    got = client.get("v1", "ConfigMap", "a", "default")
    assert got["data"] == {"k": "1"}
    got["data"]["k"] = "2"
    updated = client.update(got)
    assert updated["data"] == {"k": "2"}
    assert int(updated["metadata"]["resourceVersion"]) > int(got["metadata"]["resourceVersion"])
    with pytest.raises(errors.Conflict):
        client.update(got)  # stale resourceVersion
    with pytest.raises(errors.AlreadyExists):
        client.create(cm("a"))
    assert client.delete("v1", "ConfigMap", "a", "default") is None
    with pytest.raises(errors.NotFound):
        client.get("v1", "ConfigMap", "a", "default")


def test_patch_types(client: Client) -> None:
    client.create(cm("p", k="1"))
    out = client.patch("v1", "ConfigMap", "p", {"data": {"m": "merge"}}, namespace="default")
    assert out["data"] == {"k": "1", "m": "merge"}
    out = client.patch("v1", "ConfigMap", "p", [{"op": "replace", "path": "/data/k", "value": "json"}],
                       namespace="default", patch_type="json")
    assert out["data"]["k"] == "json"
    out = client.patch("v1", "ConfigMap", "p", {"data": {"s": "strategic"}}, namespace="default",
                       patch_type="strategic")
    assert out["data"] == {"k": "json", "m": "merge", "s": "strategic"}


def test_list_selectors_and_pagination(client: Client) -> None:
    for i in range(5):
        client.create(cm(f"c{i}", labels={"app": "pager" if i % 2 == 0 else "other"}))
    picked = client.list("v1", "ConfigMap", "default", label_selector="app=pager")
    assert sorted(i["metadata"]["name"] for i in picked["items"]) == ["c0", "c2", "c4"]
    by_field = client.list("v1", "ConfigMap", "default", field_selector="metadata.name=c3")
    assert [i["metadata"]["name"] for i in by_field["items"]] == ["c3"]
    names: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        page = client.list("v1", "ConfigMap", "default", label_selector="app in (pager,other)", limit=2,
                           continue_=token)
        pages += 1
        names += [i["metadata"]["name"] for i in page["items"]]
        token = page["metadata"].get("continue")
        if not token:
            break
        assert pages < 10
    assert sorted(names) == [f"c{i}" for i in range(5)]
    assert pages == 3


def test_invalid_name_carries_causes(client: Client) -> None:
    with pytest.raises(errors.Invalid) as info:
        client.create(cm("Not_A_Valid_Name"))
    assert info.value.causes
    assert any("metadata.name" in (c.get("field") or "") for c in info.value.causes)


def test_delete_preconditions_and_collection(client: Client) -> None:
    obj = client.create(cm("pre", labels={"grp": "g"}))
    with pytest.raises(errors.Conflict):
        client.delete("v1", "ConfigMap", "pre", "default", preconditions={"uid": "not-the-uid"})
    client.delete("v1", "ConfigMap", "pre", "default", preconditions={"uid": obj["metadata"]["uid"]},
                  propagation_policy="Background")
    client.create(cm("g1", labels={"grp": "g"}))
    client.create(cm("g2", labels={"grp": "g"}))
    client.create(cm("keep"))
    client.delete_collection("v1", "ConfigMap", "default", label_selector="grp=g")
    left = [i["metadata"]["name"] for i in client.list("v1", "ConfigMap", "default")["items"]]
    assert "keep" in left and "g1" not in left and "g2" not in left


def widget_crd() -> JSON:
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
                 "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
                 "versions": [{"name": "v1", "served": True, "storage": True,
                               "subresources": {"status": {}},
                               "schema": {"openAPIV3Schema": {"type": "object",
                                                              "x-kubernetes-preserve-unknown-fields": True}}}]},
    }


def test_discovery_finds_crd_installed_at_run_time_and_status_subresource(client: Client) -> None:
    with pytest.raises(errors.NotFound, match="Widget"):
        client.resource_for("example.com/v1", "Widget")
    client.create(widget_crd())
    # Discovery and the new endpoint lag the CRD's creation: NotFound means "not served yet".
    info = eventually(lambda: client.resource_for("example.com/v1", "Widget"), 10.0, ignore=(errors.NotFound,))
    assert (info.resource, info.namespaced, info.group) == ("widgets", True, "example.com")
    assert "status" in info.subresources
    w = eventually(lambda: client.create({"apiVersion": "example.com/v1", "kind": "Widget",
                                          "metadata": {"name": "w", "namespace": "default"},
                                          "spec": {"size": 1}}), 10.0, ignore=(errors.NotFound,))
    w["status"] = {"phase": "Ready"}
    w["spec"] = {"size": 99}
    after = client.update_status(w)
    assert after["status"] == {"phase": "Ready"}
    assert after["spec"] == {"size": 1}  # the status subresource ignores spec changes


def test_cluster_scoped_resources(client: Client) -> None:
    ns = client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}})
    assert "namespace" not in ns["metadata"]
    assert client.get("v1", "Namespace", "team-a")["metadata"]["name"] == "team-a"
    client.create(cm("in-team", ns="team-a"))
    assert [i["metadata"]["name"] for i in client.list("v1", "ConfigMap", "team-a")["items"]] == ["in-team"]


def test_watch_streams_events_from_resource_version(client: Client) -> None:
    rv = client.list("v1", "ConfigMap", "default")["metadata"]["resourceVersion"]
    client.create(cm("w1"))
    obj = client.create(cm("w2"))
    obj["data"] = {"x": "y"}
    client.update(obj)
    client.delete("v1", "ConfigMap", "w1", "default")
    seen: list[tuple[str, str]] = []
    with client.watch("v1", "ConfigMap", "default", resource_version=rv, timeout_seconds=5,
                      read_timeout=5.0) as stream:
        for event in stream:
            if event["type"] == "BOOKMARK":
                continue
            seen.append((event["type"], event["object"]["metadata"]["name"]))
            if len(seen) == 4:
                break
    assert seen == [("ADDED", "w1"), ("ADDED", "w2"), ("MODIFIED", "w2"), ("DELETED", "w1")]


def test_watch_close_from_another_thread(client: Client) -> None:
    stream = client.watch("v1", "ConfigMap", "default", timeout_seconds=30, read_timeout=30.0)
    done = threading.Event()

    def consume() -> None:
        for _ in stream:
            pass
        done.set()

    t = threading.Thread(target=consume, daemon=True)
    t.start()
    time.sleep(0.1)
    stream.close()
    assert done.wait(5)


def test_watch_server_timeout_ends_stream_cleanly(client: Client) -> None:
    with client.watch("v1", "ConfigMap", "default", timeout_seconds=1, read_timeout=5.0,
                      allow_watch_bookmarks=False) as stream:
        assert [e for e in stream if e["type"] != "BOOKMARK"] == []


# -- fault injection (emulator only) ------------------------------------------------------------

@pytest.mark.emulator_only(reason="fault injection: 429 with Retry-After")
def test_429_is_retried_honouring_retry_after(envtest: Any) -> None:
    slept: list[float] = []
    c = Client(load_config(envtest.kubeconfig), timeout=10.0, max_retry_after=0.01, sleep=slept.append)
    c.create(cm("busy"))
    envtest.faults.fail_next(2, 429, verb="get", resource="configmaps", retry_after=1)
    assert c.get("v1", "ConfigMap", "busy", "default")["metadata"]["name"] == "busy"
    assert slept == [0.01, 0.01]  # Retry-After (1 s) honoured, capped by max_retry_after


@pytest.mark.emulator_only(reason="fault injection: 500 and 504 answers")
def test_injected_server_errors_are_typed(envtest: Any, client: Client) -> None:
    envtest.faults.fail_next(1, 500, verb="list", resource="configmaps")
    with pytest.raises(errors.InternalError):
        client.list("v1", "ConfigMap", "default")
    envtest.faults.fail_next(1, 504, verb="create", resource="configmaps")
    with pytest.raises(errors.ServerTimeout):
        client.create(cm("late"))


@pytest.mark.emulator_only(reason="fault injection: a watch stream that stalls")
def test_stalled_watch_raises_transport_error_after_read_timeout(envtest: Any, client: Client) -> None:
    envtest.faults.stall_watches(10)
    try:
        with client.watch("v1", "ConfigMap", "default", timeout_seconds=60, read_timeout=0.5) as stream:
            client.create(cm("unseen"))
            with pytest.raises(errors.TransportError):
                for _ in stream:
                    pass
    finally:
        envtest.faults.reset()


@pytest.mark.emulator_only(reason="fault injection: compacting the watch history on demand")
def test_watch_from_compacted_resource_version_is_gone(envtest: Any, client: Client) -> None:
    old_rv = client.create(cm("h1"))["metadata"]["resourceVersion"]
    client.create(cm("h2"))
    client.create(cm("h3"))
    envtest.faults.compact()
    with pytest.raises(errors.Gone):
        with client.watch("v1", "ConfigMap", "default", resource_version=old_rv, timeout_seconds=5,
                          read_timeout=5.0) as stream:
            for _ in stream:
                pass


@pytest.mark.emulator_only(reason="fault injection: the server closing every watch at once")
def test_server_closing_watches_ends_the_stream_cleanly(envtest: Any, client: Client) -> None:
    stream = client.watch("v1", "ConfigMap", "default", timeout_seconds=60, read_timeout=10.0)
    events: list[Any] = []
    finished = threading.Event()
    failure: list[BaseException] = []

    def consume() -> None:
        try:
            events.extend(stream)
        except BaseException as exc:  # reported below
            failure.append(exc)
        finished.set()

    t = threading.Thread(target=consume, daemon=True)
    t.start()
    client.create(cm("before-close"))
    eventually(lambda: any(e["type"] == "ADDED" for e in events), 5, interval=0.01, what="the ADDED event")
    envtest.faults.close_watches()
    assert finished.wait(5)
    assert failure == []
    assert [e["object"]["metadata"]["name"] for e in events if e["type"] == "ADDED"] == ["before-close"]


@pytest.mark.emulator_only(reason="fault injection: 429 on a watch request")
def test_watch_open_retries_429(envtest: Any) -> None:
    slept: list[float] = []
    c = Client(load_config(envtest.kubeconfig), max_retry_after=0.01, sleep=slept.append)
    envtest.faults.fail_next(1, 429, verb="watch", resource="configmaps", retry_after=1)
    with c.watch("v1", "ConfigMap", "default", timeout_seconds=1, read_timeout=5.0) as stream:
        c.create(cm("after-429"))
        names = [e["object"]["metadata"]["name"] for e in stream if e["type"] == "ADDED"]
    assert names == ["after-429"]
    assert slept == [0.01]
