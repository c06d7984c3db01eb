"""Fault injection and request statistics, in process and through the HTTP control endpoints."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator

import pytest

from rook_py.envtest.apiserver.server import APIServer
from tests.support.waiting import eventually

from .apiserver_support import Raw, configmap

CMS = "/api/v1/namespaces/default/configmaps"


@pytest.fixture
def server() -> Iterator[APIServer]:
    srv = APIServer(bookmark_interval=0.1, fault_seed=7).start()
    yield srv
    srv.stop()


@pytest.fixture
def raw(server: APIServer) -> Raw:
    return Raw(server)


def _wait_for_watchers(server: APIServer, n: int) -> None:
    eventually(lambda: server.store.watcher_count() >= n, 5, interval=0.01, what=f"{n} watchers")


def test_fail_next_is_scoped_and_counted(server: APIServer, raw: Raw) -> None:
    server.faults.fail_next(2, 503, verb="create", resource="configmaps")
    assert raw.get(CMS)[0] == 200                      # other verbs are untouched
    assert raw.post("/api/v1/namespaces/default/secrets", {"metadata": {"name": "s"}})[0] == 201
    code, body = raw.post(CMS, configmap("a"))
    assert code == 503 and body["reason"] == "ServiceUnavailable"
    assert raw.post(CMS, configmap("a"))[0] == 503
    assert raw.post(CMS, configmap("a"))[0] == 201     # the rule is used up
    assert server.stats.count(verb="create", resource="configmaps", code=503) == 2


def test_429_carries_retry_after(server: APIServer, raw: Raw) -> None:
    server.faults.fail_next(1, 429, verb="get", retry_after=3)
    code, body, headers = raw.request("GET", f"{CMS}/x")
    assert code == 429 and body["reason"] == "TooManyRequests"
    assert headers["retry-after"] == "3" and body["details"]["retryAfterSeconds"] == 3


def test_error_rates_are_random_but_seeded(server: APIServer, raw: Raw) -> None:
    server.faults.set_error_rates({500: 0.5}, verb="list")
    codes = [raw.get(CMS)[0] for _ in range(40)]
    assert set(codes) == {200, 500}
    assert 5 <= codes.count(500) <= 35
    server.faults.reset()
    assert all(raw.get(CMS)[0] == 200 for _ in range(5))
    with pytest.raises(ValueError):
        server.faults.set_error_rates({500: 0.7, 503: 0.7})


def test_latency(server: APIServer, raw: Raw) -> None:
    server.faults.set_latency(0.2, verb="get", resource="configmaps")
    raw.post(CMS, configmap("a"))
    start = time.perf_counter()
    raw.get(f"{CMS}/a")
    assert time.perf_counter() - start >= 0.2


def test_close_watches_ends_streams_cleanly(server: APIServer, raw: Raw) -> None:
    ended = threading.Event()

    def consume() -> None:
        list(raw.watch(f"{CMS}?watch=1&timeoutSeconds=30"))
        ended.set()

    threading.Thread(target=consume, daemon=True).start()
    _wait_for_watchers(server, 1)
    assert server.faults.close_watches() == 1
    assert ended.wait(5)


def test_stall_watches_sends_nothing_until_reset(server: APIServer, raw: Raw) -> None:
    received: list[str] = []

    def consume() -> None:
        for event in raw.watch(f"{CMS}?watch=1&timeoutSeconds=30", count=1):
            received.append(event["object"]["metadata"]["name"])

    server.faults.stall_watches()
    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    _wait_for_watchers(server, 1)
    raw.post(CMS, configmap("during-stall"))
    thread.join(0.5)
    assert received == [] and thread.is_alive()         # connection open, no bytes
    server.faults.reset()
    thread.join(5)
    assert received == ["during-stall"]


def test_stall_for_a_duration_delays_bookmarks_too(server: APIServer, raw: Raw) -> None:
    server.faults.stall_watches(0.4)
    start = time.perf_counter()
    events = list(raw.watch(f"{CMS}?watch=1&allowWatchBookmarks=true&resourceVersion=1&timeoutSeconds=5",
                            count=1))
    assert events[0]["type"] == "BOOKMARK"
    assert time.perf_counter() - start >= 0.3


def _control(server: APIServer, path: str, body: object = None, method: str = "POST") -> tuple[int, object]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        conn.request(method, f"/envtest/v1/{path}", body=json.dumps(body or {}).encode(),
                     headers={"Authorization": f"Bearer {server.token}", "Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def test_http_control_endpoints(server: APIServer, raw: Raw) -> None:
    assert _control(server, "faults/fail-next", {"count": 1, "code": 500, "verb": "list"})[0] == 200
    assert raw.get(CMS)[0] == 500
    assert raw.get(CMS)[0] == 200
    assert _control(server, "faults/latency", {"seconds": 0.01})[0] == 200
    assert _control(server, "faults/error-rates", {"rates": {"503": 1.0}, "resource": "secrets"})[0] == 200
    assert raw.get("/api/v1/namespaces/default/secrets")[0] == 503
    assert _control(server, "faults/reset")[0] == 200
    assert raw.get("/api/v1/namespaces/default/secrets")[0] == 200
    _, first = raw.post(CMS, configmap("a"))
    code, compacted = _control(server, "faults/compact")
    assert code == 200 and compacted == {"resourceVersion": first["metadata"]["resourceVersion"]}
    events = list(raw.watch(f"{CMS}?watch=1&resourceVersion={int(first['metadata']['resourceVersion']) - 1}"
                            "&timeoutSeconds=5", count=1))
    assert events[0]["type"] == "ERROR" and events[0]["object"]["code"] == 410
    assert _control(server, "faults/close-watches") == (200, {"closed": 0})
    assert _control(server, "faults/stall-watches", {"seconds": 0.01})[0] == 200
    assert _control(server, "faults/nonsense")[0] == 404
    code, stats = _control(server, "stats", method="GET")
    assert code == 200
    assert {"userAgent": "raw-test", "verb": "create", "group": "", "resource": "configmaps", "subresource": "",
            "code": 201, "count": 1} in stats["items"]  # type: ignore[index]
    assert _control(server, "stats/reset")[0] == 200
    assert _control(server, "stats", method="GET")[1] == {"items": []}
    assert Raw(server, token=None).request("POST", "/envtest/v1/faults/reset")[0] == 401


def test_stats_by_user_agent(server: APIServer) -> None:
    operator, other = Raw(server, user_agent="my-operator/1.0"), Raw(server, user_agent="kubectl/v1.32")
    operator.post(CMS, configmap("a"))
    operator.put(f"{CMS}/a", configmap("a", data={"k": "2"}))
    other.post(CMS, configmap("b"))
    assert server.stats.count(user_agent="my-operator", verb="update") == 1
    assert server.stats.count(user_agent="my-operator") == 2
    assert server.stats.count(verb="create", code=201) == 2
    server.stats.reset()
    assert server.stats.count() == 0


def test_faults_do_not_touch_local_api(server: APIServer) -> None:
    server.faults.fail_next(5, 500)
    created = server.local.create("v1", "configmaps", configmap("local"))
    assert created["metadata"]["name"] == "local"


def test_abandoned_watch_is_released(server: APIServer, monkeypatch: pytest.MonkeyPatch) -> None:
    from rook_py.envtest.apiserver import server as server_module

    monkeypatch.setattr(server_module, "IDLE_CHECK_INTERVAL", 0.05)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("GET", f"{CMS}?watch=1&timeoutSeconds=60", headers={"Authorization": f"Bearer {server.token}"})
    assert conn.getresponse().status == 200
    _wait_for_watchers(server, 1)
    conn.close()  # the client hangs up without the server sending anything
    eventually(lambda: server.store.watcher_count() == 0, 5, what="the watch to be dropped")
