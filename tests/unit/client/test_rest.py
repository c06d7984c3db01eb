"""Client verbs, headers, typed errors, Retry-After, metrics, over a real HTTP socket."""

from __future__ import annotations

import socket
import time
from typing import Any

import pytest

from rook_py.framework import metrics
from rook_py.framework.client import Client, RestConfig, TokenBucket, errors
from tests.unit.client.fake_apiserver import Canned, FakeAPIServer


def cm(name: str, ns: str = "default", **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns},
            "data": dict(data)}


def last(server: FakeAPIServer) -> Any:
    return server.requests[-1]


def test_create_get_roundtrip_plain_dicts_and_headers(client: Client, server: FakeAPIServer) -> None:
    created = client.create(cm("a", x="1"))
    assert type(created) is dict
    assert created["metadata"]["resourceVersion"]
    got = client.get("v1", "ConfigMap", "a", "default")
    assert got["data"] == {"x": "1"}
    req = last(server)
    assert (req.method, req.path) == ("GET", "/api/v1/namespaces/default/configmaps/a")
    assert req.headers["Authorization"] == "Bearer s3cret"
    assert req.headers["User-Agent"] == "ut/1"
    assert req.headers["Accept"] == "application/json"


def test_create_uses_namespace_argument_and_requires_one(client: Client, server: FakeAPIServer) -> None:
    obj = cm("b")
    del obj["metadata"]["namespace"]
    client.create(obj, namespace="team")
    assert last(server).path == "/api/v1/namespaces/team/configmaps"
    with pytest.raises(ValueError, match="namespace is required"):
        client.create(obj)
    with pytest.raises(ValueError, match="namespace is required"):
        client.get("v1", "ConfigMap", "b")


def test_cluster_scoped_ignores_namespace_and_group_paths(client: Client, server: FakeAPIServer) -> None:
    client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns1"}})
    client.get("v1", "Namespace", "ns1", namespace="ignored")
    assert last(server).path == "/api/v1/namespaces/ns1"
    client.list("apps/v1", "Deployment", "prod")
    assert last(server).path == "/apis/apps/v1/namespaces/prod/deployments"
    client.list("apps/v1", "Deployment")
    assert last(server).path == "/apis/apps/v1/deployments"


def test_list_query_parameters(client: Client, server: FakeAPIServer) -> None:
    client.create(cm("a"))
    result = client.list("v1", "ConfigMap", "default", label_selector="app=x,tier!=db",
                         field_selector="metadata.name=a", limit=50, continue_="tok",
                         resource_version="0")
    assert [i["metadata"]["name"] for i in result["items"]] == ["a"]
    assert last(server).query == {"labelSelector": "app=x,tier!=db", "fieldSelector": "metadata.name=a",
                                  "limit": "50", "continue": "tok", "resourceVersion": "0"}
    client.list("v1", "ConfigMap")
    assert last(server).query == {}


def test_update_is_optimistic_and_update_status_targets_subresource(client: Client,
                                                                   server: FakeAPIServer) -> None:
    pod = client.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "d"},
                         "spec": {}})
    pod["spec"] = {"nodeName": "n1"}
    updated = client.update(pod)
    assert updated["metadata"]["resourceVersion"] != pod["metadata"]["resourceVersion"]
    with pytest.raises(errors.Conflict):
        client.update(pod)  # stale resourceVersion
    updated["status"] = {"phase": "Running"}
    client.update_status(updated)
    assert (last(server).method, last(server).path) == ("PUT", "/api/v1/namespaces/d/pods/p/status")
    assert client.get("v1", "Pod", "p", "d")["status"] == {"phase": "Running"}


@pytest.mark.parametrize(("patch_type", "content_type"), [
    ("merge", "application/merge-patch+json"),
    ("json", "application/json-patch+json"),
    ("strategic", "application/strategic-merge-patch+json"),
])
def test_patch_content_types(client: Client, server: FakeAPIServer, patch_type: str,
                             content_type: str) -> None:
    body: Any = [{"op": "add", "path": "/data/k", "value": "v"}] if patch_type == "json" else {"data": {"k": "v"}}
    server.script.append(Canned(200, cm("a", k="v")))
    out = client.patch("v1", "ConfigMap", "a", body, namespace="default", patch_type=patch_type)  # type: ignore[arg-type]
    assert out["data"] == {"k": "v"}
    req = last(server)
    assert req.method == "PATCH"
    assert req.headers["Content-Type"] == content_type
    assert req.body == body


def test_patch_rejects_unknown_type(client: Client) -> None:
    with pytest.raises(ValueError, match="unknown patch type"):
        client.patch("v1", "ConfigMap", "a", {}, namespace="default", patch_type="apply")  # type: ignore[arg-type]


def test_delete_returns_none_when_gone_and_object_when_finalizers_pending(client: Client,
                                                                          server: FakeAPIServer) -> None:
    client.create(cm("gone"))
    assert client.delete("v1", "ConfigMap", "gone", "default") is None
    assert last(server).body is None  # no options -> no body
    held = cm("held")
    held["metadata"]["finalizers"] = ["x/y"]
    created = client.create(held)
    out = client.delete("v1", "ConfigMap", "held", "default", propagation_policy="Foreground",
                        preconditions={"uid": created["metadata"]["uid"]}, grace_period_seconds=0)
    assert out is not None and out["metadata"]["deletionTimestamp"]
    assert last(server).body == {"kind": "DeleteOptions", "apiVersion": "v1",
                                 "propagationPolicy": "Foreground",
                                 "preconditions": {"uid": created["metadata"]["uid"]},
                                 "gracePeriodSeconds": 0}


def test_delete_collection(client: Client, server: FakeAPIServer) -> None:
    client.create(cm("a"))
    client.create(cm("b"))
    client.delete_collection("v1", "ConfigMap", "default", label_selector="app=x",
                             propagation_policy="Background")
    req = last(server)
    assert (req.method, req.path, req.query) == ("DELETE", "/api/v1/namespaces/default/configmaps",
                                                 {"labelSelector": "app=x"})
    assert req.body["propagationPolicy"] == "Background"
    assert client.list("v1", "ConfigMap", "default")["items"] == []


def status(code: int, reason: str, message: str = "m", **details: Any) -> dict[str, Any]:
    st: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code,
                          "reason": reason, "message": message}
    if details:
        st["details"] = details
    return st


@pytest.mark.parametrize(("code", "reason", "exc"), [
    (404, "NotFound", errors.NotFound),
    (409, "AlreadyExists", errors.AlreadyExists),
    (409, "Conflict", errors.Conflict),
    (410, "Expired", errors.Expired),
    (410, "Gone", errors.Gone),
    (403, "Forbidden", errors.Forbidden),
    (401, "Unauthorized", errors.Unauthorized),
    (504, "Timeout", errors.ServerTimeout),
    (500, "InternalError", errors.InternalError),
])
def test_typed_errors_from_status(client: Client, server: FakeAPIServer, code: int, reason: str,
                                  exc: type[errors.ApiError]) -> None:
    server.script.append(Canned(code, status(code, reason, "boom")))
    with pytest.raises(exc) as info:
        client.get("v1", "ConfigMap", "a", "default")
    assert type(info.value) is exc
    assert info.value.status_code == code
    assert info.value.message == "boom"


def test_invalid_carries_causes(client: Client, server: FakeAPIServer) -> None:
    causes = [{"reason": "FieldValueInvalid", "message": "bad", "field": "metadata.name"}]
    server.script.append(Canned(422, status(422, "Invalid", "invalid", causes=causes)))
    with pytest.raises(errors.Invalid) as info:
        client.create(cm("BAD"))
    assert info.value.causes == causes


def test_non_status_error_body_keeps_code_and_text(client: Client, server: FakeAPIServer) -> None:
    server.script.append(Canned(502, raw=b"bad gateway from proxy"))
    with pytest.raises(errors.ApiError) as info:
        client.get("v1", "ConfigMap", "a", "default")
    assert info.value.status_code == 502
    assert "bad gateway from proxy" in info.value.message


def test_429_retried_after_retry_after(client: Client, server: FakeAPIServer, sleeps: list[float]) -> None:
    client.create(cm("a"))
    for _ in range(2):
        server.script.append(Canned(429, status(429, "TooManyRequests"), {"Retry-After": "1"}))
    assert client.get("v1", "ConfigMap", "a", "default")["metadata"]["name"] == "a"
    assert sleeps == [1.0, 1.0]
    assert sum(1 for r in server.requests if r.path.endswith("/configmaps/a")) == 3


def test_retry_after_is_capped_and_retries_bounded(server: FakeAPIServer) -> None:
    sleeps: list[float] = []
    c = Client(RestConfig.for_host(server.url), timeout=2.0, max_retries=2, max_retry_after=0.5,
               sleep=sleeps.append)
    for _ in range(3):
        server.script.append(Canned(429, status(429, "TooManyRequests"), {"Retry-After": "3600"}))
    with pytest.raises(errors.TooManyRequests) as info:
        c.get("v1", "ConfigMap", "a", "default")
    assert sleeps == [0.5, 0.5]
    assert info.value.retry_after == 3600.0


def test_429_without_retry_after_and_5xx_semantics(client: Client, server: FakeAPIServer,
                                                   sleeps: list[float]) -> None:
    server.script.append(Canned(429, status(429, "TooManyRequests")))
    with pytest.raises(errors.TooManyRequests):
        client.get("v1", "ConfigMap", "a", "default")
    assert sleeps == []
    client.create(cm("a"))
    server.script.append(Canned(503, status(503, "ServiceUnavailable"), {"Retry-After": "2"}))
    assert client.get("v1", "ConfigMap", "a", "default")["metadata"]["name"] == "a"
    assert sleeps == [2.0]


def test_transport_errors(server: FakeAPIServer) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dead = Client(RestConfig.for_host(f"http://127.0.0.1:{port}"), timeout=1.0)
    with pytest.raises(errors.TransportError):
        dead.request_json("GET", "/version")
    slow = Client(RestConfig.for_host(server.url), timeout=0.2)
    server.script.append(Canned(200, {}, delay=2.0))
    with pytest.raises(errors.TransportError):
        slow.get("v1", "ConfigMap", "a", "default")


def test_metrics_recorded_per_code_method_host(client: Client, server: FakeAPIServer) -> None:
    host = server.url.removeprefix("http://")

    def count(code: str, method: str) -> float:
        value = metrics.REGISTRY.get_sample_value(
            "rest_client_requests_total", {"code": code, "method": method, "host": host})
        return value or 0.0

    client.create(cm("a"))
    before_ok, before_nf = count("200", "GET"), count("404", "GET")
    client.get("v1", "ConfigMap", "a", "default")
    with pytest.raises(errors.NotFound):
        client.get("v1", "ConfigMap", "zzz", "default")
    assert count("200", "GET") == before_ok + 1
    assert count("404", "GET") == before_nf + 1
    assert (metrics.REGISTRY.get_sample_value("rest_client_request_duration_seconds_count",
                                              {"verb": "GET", "host": host}) or 0) >= 2


def test_token_refresh_hook_is_honoured_and_rate_limited(server: FakeAPIServer) -> None:
    config = RestConfig.for_host(server.url, token="t0")
    tokens = iter(["t1", "t2", "t3"])

    def refresh(cfg: Any) -> None:
        cfg.api_key["BearerToken"] = next(tokens)

    config.configuration.refresh_api_key_hook = refresh
    c = Client(config)
    c.request_json("GET", "/api/v1")
    c.request_json("GET", "/api/v1")  # within token_cache_seconds: the hook is not re-run
    c.token_cache_seconds = 0.0
    c.request_json("GET", "/api/v1")
    assert [r.headers["Authorization"] for r in server.requests] == ["Bearer t1", "Bearer t1", "Bearer t2"]


def test_unauthorized_forces_one_credential_refresh(server: FakeAPIServer) -> None:
    config = RestConfig.for_host(server.url, token="t0")
    tokens = iter(["old", "new", "newer"])
    config.configuration.refresh_api_key_hook = lambda cfg: cfg.api_key.update(BearerToken=next(tokens))
    c = Client(config)
    server.script.append(Canned(401, status(401, "Unauthorized")))
    assert c.request_json("GET", "/api/v1/namespaces/d/configmaps") is not None
    assert [r.headers["Authorization"] for r in server.requests] == ["Bearer old", "Bearer new"]
    # A second 401 with a fresh credential is the server's final answer.
    server.script.extend([Canned(401, status(401, "Unauthorized")), Canned(401, status(401, "Unauthorized"))])
    with pytest.raises(errors.Unauthorized):
        c.request_json("GET", "/api/v1/namespaces/d/configmaps")
    assert len(server.requests) == 4


def test_pool_sized_for_workers_and_config_not_mutated(server: FakeAPIServer) -> None:
    config = RestConfig.for_host(server.url)
    config.configuration.connection_pool_maxsize = 2
    c = Client(config)
    assert c._pool.connection_pool_kw["maxsize"] >= 16
    assert config.configuration.connection_pool_maxsize == 2


def test_client_side_limiter_off_by_default_and_consulted_when_set(server: FakeAPIServer, mocker: Any) -> None:
    assert Client(RestConfig.for_host(server.url))._limiter is None
    limited = Client(RestConfig.for_host(server.url), qps=5, burst=2)
    assert isinstance(limited._limiter, TokenBucket)
    assert (limited._limiter.qps, limited._limiter.burst) == (5.0, 2)
    accept = mocker.patch.object(limited._limiter, "accept", return_value=0.0)
    limited.request_json("GET", "/api/v1")
    limited.request_json("GET", "/apis/apps/v1")
    assert accept.call_count == 2


def test_deadline_bounds_a_request_to_a_hung_server() -> None:
    """A listener that never answers (what a SIGSTOPped kube-apiserver looks like: the kernel
    completes the handshake) holds a request until the deadline, not the client timeout."""
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(16)
        c = Client(RestConfig.for_host(f"http://127.0.0.1:{hung.getsockname()[1]}"), timeout=30.0)
        started = time.monotonic()
        with pytest.raises(errors.TransportError), c.deadline(started + 0.3):
            c.request_json("GET", "/version")
        took = time.monotonic() - started
        assert 0.25 <= took < 5.0
        # Past the deadline nothing is sent at all; nesting keeps the earliest deadline.
        with c.deadline(time.monotonic() + 60), c.deadline(time.monotonic() - 1):
            with pytest.raises(errors.TransportError, match="deadline exceeded"):
                c.request_json("GET", "/version")
        assert getattr(c._deadlines, "at", None) is None


def test_deadline_skips_a_retry_after_that_would_end_past_it(server: FakeAPIServer) -> None:
    sleeps: list[float] = []
    c = Client(RestConfig.for_host(server.url), timeout=2.0, sleep=sleeps.append)
    server.script.append(Canned(429, status(429, "TooManyRequests"), {"Retry-After": "5"}))
    with pytest.raises(errors.TooManyRequests), c.deadline(time.monotonic() + 1.0):
        c.get("v1", "ConfigMap", "a", "default")
    assert sleeps == []


def test_without_retries_surfaces_a_retry_after_at_once(server: FakeAPIServer) -> None:
    sleeps: list[float] = []
    c = Client(RestConfig.for_host(server.url), timeout=2.0, sleep=sleeps.append)
    server.script.append(Canned(503, status(503, "ServiceUnavailable"), {"Retry-After": "5"}))
    with pytest.raises(errors.ServiceUnavailable) as info, c.without_retries():
        c.get("v1", "ConfigMap", "a", "default")
    assert sleeps == [] and info.value.retry_after == 5.0
    c.create(cm("a"))
    server.script.append(Canned(503, status(503, "ServiceUnavailable"), {"Retry-After": "5"}))
    assert c.get("v1", "ConfigMap", "a", "default")["metadata"]["name"] == "a"  # retried outside
    assert sleeps == [5.0]
