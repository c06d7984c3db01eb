"""The Consul double behaves like the Consul HTTP API where its clients depend on it."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.pipeline.harness import WebhookReceiver
from tests.support.consul_double import ConsulDouble, aggregated_status, parse_go_duration, running_consul


@pytest.fixture
def consul() -> Iterator[ConsulDouble]:
    with running_consul(min_check_interval=0.05) as double:
        yield double


def call(consul: ConsulDouble, path: str, method: str = "GET", body: Any = None, timeout: float = 5) -> tuple[int, Any, dict[str, str]]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(consul.url + path, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
            headers = dict(response.headers)
            status = response.status
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(), dict(err.headers)
    content_type = headers.get("Content-Type", "")
    return status, (json.loads(raw) if raw and content_type == "application/json" else raw.decode()), headers


def register_cfs(consul: ConsulDouble, role: str = "dataNode", port: int = 17320, cluster: str = "prod") -> str:
    service_id = f"cfs_{role}_10.0.0.5_{port}"
    status, _, _ = call(consul, "/v1/agent/service/register", "PUT", {
        "Name": "cfs", "ID": service_id, "Address": "10.0.0.5", "Port": port,
        "Tags": ["app=cfs", f"role={role}", f"cluster={cluster}"]})
    assert status == 200
    return service_id


def test_register_and_deregister_like_chubaofs(consul: ConsulDouble) -> None:
    service_id = register_cfs(consul)
    status, services, _ = call(consul, "/v1/agent/services")
    assert status == 200 and services[service_id]["Service"] == "cfs"
    assert services[service_id]["Tags"] == ["app=cfs", "role=dataNode", "cluster=prod"]
    # Re-registering (ChubaoFS does it every minute) updates in place.
    register_cfs(consul)
    assert list(call(consul, "/v1/agent/services")[1]) == [service_id]
    assert call(consul, f"/v1/agent/service/deregister/{service_id}", "PUT")[0] == 200
    assert call(consul, "/v1/agent/services")[1] == {}
    assert call(consul, f"/v1/agent/service/deregister/{service_id}", "PUT")[0] == 404


def test_register_requires_a_name(consul: ConsulDouble) -> None:
    assert call(consul, "/v1/agent/service/register", "PUT", {"ID": "x"})[0] == 400


def test_health_service_entries_match_what_consul_sd_reads(consul: ConsulDouble) -> None:
    service_id = register_cfs(consul)
    status, entries, headers = call(consul, "/v1/health/service/cfs")
    assert status == 200 and int(headers["X-Consul-Index"]) >= 1
    assert headers["X-Consul-KnownLeader"] == "true" and headers["X-Consul-LastContact"] == "0"
    (entry,) = entries
    assert entry["Service"]["ID"] == service_id and entry["Service"]["Port"] == 17320
    assert entry["Node"]["Node"] == consul.node_name and entry["Node"]["Address"] == "127.0.0.1"
    # No check of its own: only the node's serfHealth, so the instance is passing.
    assert [c["CheckID"] for c in entry["Checks"]] == ["serfHealth"]
    assert aggregated_status(entry["Checks"]) == "passing"
    assert call(consul, "/v1/health/service/cfs?tag=role=metanode")[1] == []
    assert call(consul, "/v1/catalog/services")[1] == {"consul": [], "cfs": ["app=cfs", "role=dataNode", "cluster=prod"]}
    (catalog,) = call(consul, "/v1/catalog/service/cfs")[1]
    assert catalog["ServiceID"] == service_id and catalog["ServiceAddress"] == "10.0.0.5"


def test_http_check_follows_the_target(consul: ConsulDouble) -> None:
    target = WebhookReceiver()  # any local HTTP server: GET answers 501, so the check is critical
    target.start()
    try:
        call(consul, "/v1/agent/service/register", "PUT", {
            "Name": "rook-chubaofs-agent", "ID": "agent-n1", "Port": target.port, "Address": "127.0.0.1",
            "Tags": ["node=n1", "cluster=prod"],
            "Check": {"HTTP": f"http://127.0.0.1:{target.port}/metrics", "Interval": "50ms"}})
        assert consul.checks()["service:agent-n1"]["Status"] == "critical"  # Consul's initial status
        assert consul.wait_for(lambda c: "501" in c.checks()["service:agent-n1"]["Output"], timeout=5)
        assert call(consul, "/v1/health/service/rook-chubaofs-agent?passing")[1] == []
    finally:
        target.stop()


def test_http_check_passes_against_a_healthy_endpoint(consul: ConsulDouble) -> None:
    healthy = ConsulDouble().start()  # its /v1/status/leader answers 200
    try:
        call(consul, "/v1/agent/service/register", "PUT", {
            "Name": "rook-chubaofs-agent", "ID": "agent-n2", "Port": 9500,
            "Check": {"HTTP": f"{healthy.url}/v1/status/leader", "Interval": "50ms", "Timeout": "1s"}})
        assert consul.wait_for(lambda c: c.checks()["service:agent-n2"]["Status"] == "passing", timeout=5)
        (entry,) = call(consul, "/v1/health/service/rook-chubaofs-agent?passing")[1]
        assert entry["Service"]["ID"] == "agent-n2"
        assert call(consul, "/v1/health/checks/rook-chubaofs-agent")[1][0]["Status"] == "passing"
        assert "service:agent-n2" in call(consul, "/v1/agent/checks")[1]
    finally:
        healthy.stop()


def test_ttl_checks_and_manual_updates(consul: ConsulDouble) -> None:
    call(consul, "/v1/agent/service/register", "PUT", {
        "Name": "svc", "ID": "svc-1", "Checks": [{"CheckID": "ttl", "TTL": "200ms", "Status": "passing"},
                                                  {"Name": "static", "Status": "warning"}]})
    checks = consul.checks()
    assert checks["ttl"]["Status"] == "passing" and checks["service:svc-1:2"]["Status"] == "warning"
    assert call(consul, "/v1/health/state/warning")[1][0]["CheckID"] == "service:svc-1:2"
    assert consul.wait_for(lambda c: c.checks()["ttl"]["Status"] == "critical", timeout=5)
    assert call(consul, "/v1/agent/check/pass/ttl?note=ok", "PUT")[0] == 200
    assert consul.checks()["ttl"] == {**consul.checks()["ttl"], "Status": "passing", "Output": "ok"}
    assert call(consul, "/v1/agent/check/update/service:svc-1:2", "PUT", {"Status": "passing", "Output": "fine"})[0] == 200
    assert call(consul, "/v1/agent/check/update/service:svc-1:2", "PUT", {"Status": "bogus"})[0] == 400
    assert call(consul, "/v1/agent/check/fail/unknown", "PUT")[0] == 404
    consul.set_check_status("service:svc-1:2", "critical", "set by test")
    assert aggregated_status(list(consul.checks().values())) == "critical"


def test_blocking_query_wakes_on_change(consul: ConsulDouble) -> None:
    _, _, headers = call(consul, "/v1/health/service/cfs")
    index = int(headers["X-Consul-Index"])
    result: dict[str, Any] = {}

    def blocked() -> None:
        started = time.monotonic()
        result["answer"] = call(consul, f"/v1/health/service/cfs?index={index}&wait=5s", timeout=10)
        result["elapsed"] = time.monotonic() - started

    thread = threading.Thread(target=blocked)
    thread.start()
    time.sleep(0.2)
    assert "answer" not in result  # still blocked
    register_cfs(consul)
    thread.join(timeout=10)
    status, entries, answer_headers = result["answer"]
    assert status == 200 and len(entries) == 1
    assert int(answer_headers["X-Consul-Index"]) > index
    assert result["elapsed"] < 5


def test_blocking_query_times_out_with_the_same_index(consul: ConsulDouble) -> None:
    index = int(call(consul, "/v1/catalog/services")[2]["X-Consul-Index"])
    status, _, headers = call(consul, f"/v1/catalog/services?index={index}&wait=100ms")
    assert status == 200 and int(headers["X-Consul-Index"]) == index
    assert call(consul, "/v1/catalog/services?index=abc")[0] == 400


def test_stop_releases_blocked_queries() -> None:
    double = ConsulDouble().start()
    index = double.index
    errors: list[BaseException] = []

    def blocked() -> None:
        try:
            call(double, f"/v1/health/service/cfs?index={index}&wait=60s", timeout=10)
        except OSError as err:  # the connection may be cut by the shutdown; both are fine
            errors.append(err)

    thread = threading.Thread(target=blocked)
    thread.start()
    time.sleep(0.2)
    started = time.monotonic()
    double.stop()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert time.monotonic() - started < 10


def test_status_agent_self_and_metrics(consul: ConsulDouble) -> None:
    assert call(consul, "/v1/status/leader")[1] == "127.0.0.1:8300"
    assert call(consul, "/v1/status/peers")[1] == ["127.0.0.1:8300"]
    consul.leader = ""
    assert call(consul, "/v1/status/leader")[1] == ""
    assert call(consul, "/v1/catalog/nodes")[2]["X-Consul-KnownLeader"] == "false"
    assert call(consul, "/v1/agent/self")[1]["Config"]["Datacenter"] == "dc1"
    assert call(consul, "/v1/agent/members")[1][0]["Name"] == consul.node_name
    _, text, headers = call(consul, "/v1/agent/metrics?format=prometheus")
    assert headers["Content-Type"].startswith("text/plain") and "consul_raft_state_leader 0" in text
    assert call(consul, "/v1/agent/metrics")[1]["Gauges"][0]["Name"] == "consul.raft.state.leader"
    assert call(consul, "/v1/nope")[0] == 404
    assert call(consul, "/v1/agent/service/missing")[0] == 404
    assert consul.requests[0].path == "/v1/status/leader"


@pytest.mark.parametrize(("text", "seconds"), [("10s", 10), ("1m30s", 90), ("250ms", 0.25), ("2h", 7200), ("5", 5)])
def test_parse_go_duration(text: str, seconds: float) -> None:
    assert parse_go_duration(text) == pytest.approx(seconds)


def test_parse_go_duration_rejects_garbage() -> None:
    with pytest.raises(ValueError):
        parse_go_duration("10x")
