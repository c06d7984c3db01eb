"""The simulated cluster at scale: read-only list views, no whole-store copies, and a quiet TLS
server when clients hang up.

The B5 benchmark (hundreds of workloads under one emulator) showed the simulator's cost was the
JSON copy of every object of a kind on each event and each resync. These tests pin the fix: the
emulator's ``LocalAPI.list_view`` shares the store's dicts, the simulator reads through it and
never writes into what it got, and nothing on its paths falls back to copying lists.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
from collections.abc import Iterator
from typing import Any

import pytest

from rook_py.envtest.apiserver.server import APIServer, _Handler, _HTTPServer
from rook_py.envtest.cluster import SimulatedCluster
from rook_py.envtest.cluster.base import read_only_items, with_field_manager
from tests.envtest.cluster_support import NODES, eventually
from tests.envtest.fakeapi import FakeLocalAPI


@pytest.fixture
def server() -> Iterator[APIServer]:
    srv = APIServer(tls=False)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def _configmap(name: str, namespace: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace, "labels": labels}, "data": {"k": name}}


def _ensure_ns(api: Any, name: str) -> None:
    try:
        api.get("v1", "namespaces", name)
    except Exception:
        api.create("v1", "namespaces", {"metadata": {"name": name}})


# --- LocalAPI.list_view -----------------------------------------------------------------------

def test_list_view_matches_list_and_shares_the_stored_objects(server: APIServer) -> None:
    api = server.local
    for ns in ("a", "b"):
        _ensure_ns(api, ns)
        for i in range(3):
            api.create("v1", "configmaps", _configmap(f"cm-{i}", ns, {"tier": "x" if i else "y"}))
    for args in ((None, None, None), ("a", None, None), (None, "tier=x", None), ("b", None, "metadata.name=cm-2")):
        listed = api.list("v1", "configmaps", *args)["items"]
        viewed = api.list_view("v1", "configmaps", *args)
        assert viewed == listed, args
        assert viewed, args
    first = api.list_view("v1", "configmaps", "a")
    again = api.list_view("v1", "configmaps", "a")
    # The same dicts both times: no copy was made (list hands out fresh copies every call).
    assert all(x is y for x, y in zip(first, again, strict=True))
    assert all(x is not y for x, y in zip(api.list("v1", "configmaps", "a")["items"],
                                           api.list("v1", "configmaps", "a")["items"], strict=True))


def test_list_view_item_is_a_stable_snapshot_across_updates(server: APIServer) -> None:
    api = server.local
    _ensure_ns(api, "snap")
    api.create("v1", "configmaps", _configmap("cm", "snap", {}))
    before = api.list_view("v1", "configmaps", "snap")[0]
    frozen = json.dumps(before, sort_keys=True)
    obj = api.get("v1", "configmaps", "cm", "snap")
    obj["data"] = {"k": "changed"}
    api.update("v1", "configmaps", obj)
    # The engine stores a new dict per write, so an item already handed out never changes under
    # its reader -- the property that makes sharing safe without holding the store lock.
    assert json.dumps(before, sort_keys=True) == frozen
    assert api.list_view("v1", "configmaps", "snap")[0]["data"] == {"k": "changed"}


def test_read_only_items_falls_back_to_list_without_a_view() -> None:
    fake = FakeLocalAPI()
    try:
        fake.create("v1", "namespaces", {"metadata": {"name": "default"}})
        fake.create("v1", "configmaps", _configmap("cm", "default", {"a": "b"}))
        assert not hasattr(fake, "list_view")
        items = read_only_items(fake, "v1", "configmaps", "default", "a=b")
        assert [i["metadata"]["name"] for i in items] == ["cm"]
        assert read_only_items(fake, "v1", "configmaps", "default", "a=c") == []
        # Through the field-manager wrapper too (it exposes list_view whatever it wraps).
        assert [i["metadata"]["name"] for i in read_only_items(with_field_manager(fake, "m"), "v1",
                                                                  "configmaps")] == ["cm"]
    finally:
        fake.close()


def test_store_namespace_index_tracks_puts_removes_and_dropped_storage() -> None:
    import random

    from rook_py.envtest.apiserver.storage import Store

    store = Store(history_size=100)
    skey = ("", "configmaps")
    rng = random.Random(7)
    for _ in range(400):
        with store.lock:
            okey = (rng.choice(["a", "b", "c"]), f"cm-{rng.randrange(8)}")
            rv = store.next_rv()
            if rng.random() < 0.4 and store.get(skey, okey) is not None:
                store.remove(skey, okey, {"metadata": {"name": okey[1]}}, rv)
            else:
                store.put(skey, okey, {"metadata": {"name": okey[1], "namespace": okey[0]}, "rv": rv}, rv)
            for ns in ("a", "b", "c", "missing"):
                expected = {k: v for k, v in store.items(skey).items() if k[0] == ns}
                assert store.items_in(skey, ns) == expected
    with store.lock:
        store.drop_storage(skey)
        assert store.items_in(skey, "a") == {}


def test_namespaced_list_through_the_index_pages_and_filters(server: APIServer) -> None:
    api = server.local
    for ns in ("p", "q"):
        _ensure_ns(api, ns)
        for i in range(5):
            api.create("v1", "configmaps", _configmap(f"cm-{i}", ns, {"odd": str(i % 2)}))
    api.delete("v1", "configmaps", "cm-3", "q")
    names = [(o["metadata"]["namespace"], o["metadata"]["name"]) for o in api.list_view("v1", "configmaps", "q")]
    assert names == [("q", f"cm-{i}") for i in (0, 1, 2, 4)]
    assert [o["metadata"]["name"] for o in api.list_view("v1", "configmaps", "p", "odd=1")] == ["cm-1", "cm-3"]
    everywhere = api.list_view("v1", "configmaps")
    assert [o["metadata"]["namespace"] for o in everywhere if o["metadata"]["name"].startswith("cm-")].count("p") == 5


# --- the simulator only reads what it views, and never copies whole lists ----------------------

class _AuditingAPI:
    """Delegates to the emulator's LocalAPI; records every list() call and a fingerprint of every
    item list_view() handed out, so a test can prove those items were never written into."""

    def __init__(self, api: Any) -> None:
        self._api = api
        self.list_calls: list[tuple[str, str]] = []
        self.viewed: list[tuple[dict[str, Any], str]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._api, name)

    def list(self, api_version: str, resource: str, *args: Any, **kwargs: Any) -> Any:
        self.list_calls.append((api_version, resource))
        return self._api.list(api_version, resource, *args, **kwargs)

    def list_view(self, *args: Any, **kwargs: Any) -> Any:
        items = self._api.list_view(*args, **kwargs)
        self.viewed.extend((item, json.dumps(item, sort_keys=True)) for item in items)
        return items

    def create(self, *args: Any, **kwargs: Any) -> Any:
        return self._api.create(*args, **kwargs)


def _deployment(name: str, replicas: int) -> dict[str, Any]:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "c", "image": "busybox",
                                                           "ports": [{"containerPort": 80}]}]}}}}


def _statefulset(name: str, replicas: int) -> dict[str, Any]:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": replicas, "serviceName": name, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "c", "image": "busybox"}]}},
                     "volumeClaimTemplates": [{"metadata": {"name": "data"},
                                               "spec": {"accessModes": ["ReadWriteOnce"],
                                                        "resources": {"requests": {"storage": "1Gi"}}}}]}}


def _ready_replicas(api: Any, resource: str, name: str) -> int:
    return int((api.get("apps/v1", resource, name, "default").get("status") or {}).get("readyReplicas") or 0)


def test_simulator_never_writes_into_viewed_objects_nor_copies_whole_lists(server: APIServer) -> None:
    audit = _AuditingAPI(server.local)
    sim = SimulatedCluster(audit, nodes=NODES, pod_ready_delay=0.01, resync_period=0.2)
    sim.start()
    try:
        api = server.local
        api.create("apps/v1", "deployments", _deployment("web", 3))
        api.create("apps/v1", "statefulsets", _statefulset("db", 2))
        api.create("v1", "services", {"apiVersion": "v1", "kind": "Service",
                                      "metadata": {"name": "web", "namespace": "default"},
                                      "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}})
        eventually(lambda: _ready_replicas(api, "deployments", "web") == 3 or None)
        eventually(lambda: _ready_replicas(api, "statefulsets", "db") == 2 or None)
        eventually(lambda: len(((api.get("v1", "endpoints", "web", "default").get("subsets") or [{}])[0])
                               .get("addresses") or []) == 3 or None)
        # Scale down and delete: the paths that edit pods and ReplicaSets they found by listing.
        scaled = api.get("apps/v1", "deployments", "web", "default")
        scaled["spec"]["replicas"] = 1
        api.update("apps/v1", "deployments", scaled)
        eventually(lambda: len([p for p in api.list_view("v1", "pods", "default")
                                if p["metadata"]["name"].startswith("web-")
                                and not p["metadata"].get("deletionTimestamp")]) == 1 or None)
        api.delete("apps/v1", "statefulsets", "db", "default", propagation_policy="Foreground")
        eventually(lambda: not [p for p in api.list_view("v1", "pods", "default")
                                if p["metadata"]["name"].startswith("db-")] or None)
        assert sim.wait_idle(timeout=10)
    finally:
        sim.stop()
    assert audit.viewed, "the simulator should read through list_view"
    mutated = [item["metadata"].get("name") for item, before in audit.viewed
               if json.dumps(item, sort_keys=True) != before]
    assert mutated == []
    assert audit.list_calls == []  # every whole-kind read went through the view, none copied


# --- the TLS server and clients that hang up ---------------------------------------------------

def test_client_disconnect_errors_are_quiet_other_errors_still_reported(capfd: pytest.CaptureFixture[str]) -> None:
    httpd = _HTTPServer(("127.0.0.1", 0), _Handler)
    try:
        quiet: list[BaseException] = [ssl.SSLError(1, "[SSL: TLSV1_ALERT_DECODE_ERROR] tlsv1 alert decode error"),
                                      ConnectionResetError(104, "reset"), BrokenPipeError(32, "pipe"),
                                      TimeoutError("timed out"), ConnectionAbortedError(103, "aborted")]
        for exc in quiet:
            try:
                raise exc
            except Exception:
                httpd.handle_error(None, ("127.0.0.1", 1))
        assert "Exception occurred during processing" not in capfd.readouterr().err
        try:
            raise ValueError("a real server bug")
        except ValueError:
            httpd.handle_error(None, ("127.0.0.1", 2))
        err = capfd.readouterr().err
        assert "Exception occurred during processing" in err
        assert "a real server bug" in err
    finally:
        httpd.server_close()


def test_tls_client_sending_garbage_then_leaving_prints_no_traceback(capfd: pytest.CaptureFixture[str]) -> None:
    srv = APIServer(tls=True)
    if srv.https_url is None:
        pytest.skip("openssl is not available: the emulator serves HTTP only")
    srv.start()
    try:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        raw = socket.create_connection((srv.host, srv.port), timeout=5)
        with ctx.wrap_socket(raw) as tls:
            # A record the server cannot decrypt, written under the TLS layer: the server's read
            # fails with an SSLError, as it does when a client tears a keep-alive connection down.
            os.write(tls.fileno(), b"\x17\x03\x03\x00\x10" + b"\x00" * 16)
            try:
                while tls.recv(4096):
                    pass
            except (OSError, ssl.SSLError):
                pass  # the server closed the connection (after it ran handle_error)
    finally:
        srv.stop()
    err = capfd.readouterr().err
    assert "Exception occurred during processing" not in err
    assert "Traceback" not in err
