"""End to end on loopback: exporter -> Consul -> Prometheus (generated config) -> alert rules ->
Alertmanager (generated config) -> webhook.

A fake ChubaoFS master registers in the Consul double the way ChubaoFS does; a second one belongs
to another cluster and must be filtered out by the generated relabeling. Prometheus runs the
rendered prometheus.yml with addresses pointing at loopback, 1s scrape/evaluation intervals and
the rendered rules with their `for` durations shortened to 1s. When the exporter reports an
inactive data node, ChubaoFSDataNodesInactive must reach the webhook through the real
Alertmanager. Every wait is bounded; every process and server is stopped at the end.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from rook_py.chubaofs.monitor.config import (
    render_alert_rules,
    render_default_alertmanager_config,
    render_prometheus_config,
)
from tests.pipeline.consul_sd_bridge import ConsulSDBridge
from tests.pipeline.harness import (
    FakeChubaoFSExporter,
    FakeNodeAgent,
    ManagedProcess,
    WebhookReceiver,
    free_port,
    get_json,
    wait_until,
)
from tests.support.consul_double import ConsulDouble
from tests.tools.promtools import ALERTMANAGER, PROMETHEUS, consul_sd_as_http_sd, prometheus_has_consul_sd

pytestmark = [
    pytest.mark.skipif(PROMETHEUS is None, reason="prometheus binary not found; install Debian's prometheus (make tools)"),
    pytest.mark.skipif(ALERTMANAGER is None,
                       reason="alertmanager binary not found; install Debian's prometheus-alertmanager (make tools)"),
]

CLUSTER = "prod"
START_TIMEOUT = 30.0
ALERT_TIMEOUT = 30.0


def _prometheus_config(consul: ConsulDouble, alertmanager: str, rules_dir: Path, bridge: ConsulSDBridge | None) -> str:
    text = render_prometheus_config(
        cluster_name=CLUSTER,
        consul_server=consul.address,
        scrape_interval="1s",
        evaluation_interval="1s",
        alertmanagers=[alertmanager],
        rule_files=[str(rules_dir / "*.yml")],
    )
    config: dict[str, Any] = yaml.safe_load(text)
    for job in config["scrape_configs"]:
        for block in job.get("consul_sd_configs", []):
            block["refresh_interval"] = "1s"  # consul_sd re-watches only after this interval
    if bridge is not None:
        config = consul_sd_as_http_sd(config, lambda _server, service: bridge.url_for(service))
    return yaml.safe_dump(config, sort_keys=False)


def _fast_rules() -> str:
    document = yaml.safe_load(render_alert_rules(cluster_name=CLUSTER))
    for group in document["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = "1s"
    return yaml.safe_dump(document, sort_keys=False)


def _fast_alertmanager_config(webhook: str) -> str:
    document = yaml.safe_load(render_default_alertmanager_config(cluster_name=CLUSTER, webhook_urls=[webhook]))
    document["route"].update(group_wait="1s", group_interval="1s", repeat_interval="1h")
    return yaml.safe_dump(document, sort_keys=False)


@contextlib.contextmanager
def _pipeline(tmp_path: Path) -> Iterator[dict[str, Any]]:
    assert PROMETHEUS is not None and ALERTMANAGER is not None
    with contextlib.ExitStack() as stack:
        consul = ConsulDouble().start()
        stack.callback(consul.stop)
        exporter = FakeChubaoFSExporter(cluster=CLUSTER)
        exporter.start()
        stack.callback(exporter.stop)
        foreign = FakeChubaoFSExporter(cluster="other")
        foreign.set("cfs_master_dataNodes_inactive", 5)
        foreign.start()
        stack.callback(foreign.stop)
        agent = FakeNodeAgent(node="worker-1", cluster=CLUSTER)
        agent.start()
        stack.callback(agent.stop)
        sick_agent = FakeNodeAgent(node="worker-2", cluster=CLUSTER, healthy=False)
        sick_agent.start()
        stack.callback(sick_agent.stop)
        webhook = WebhookReceiver()
        webhook.start()
        stack.callback(webhook.stop)
        bridge: ConsulSDBridge | None = None
        if not prometheus_has_consul_sd():
            bridge = ConsulSDBridge(consul.url).start()
            stack.callback(bridge.stop)
        exporter.register(consul.url)
        foreign.register(consul.url)
        agent.register(consul.url)
        sick_agent.register(consul.url)
        # Consul starts every new check critical; wait for the first probes before Prometheus looks.
        assert consul.wait_for(lambda c: c.checks()["service:rook-chubaofs-agent-worker-1"]["Status"] == "passing", 10)

        am_port, prom_port = free_port(), free_port()
        am_dir = tmp_path / "alertmanager"
        am_dir.mkdir()
        (am_dir / "alertmanager.yml").write_text(_fast_alertmanager_config(webhook.url))
        alertmanager = ManagedProcess(
            [ALERTMANAGER, f"--config.file={am_dir / 'alertmanager.yml'}", f"--storage.path={am_dir / 'data'}",
             f"--web.listen-address=127.0.0.1:{am_port}", "--cluster.listen-address="],
            tmp_path / "alertmanager.log",
        )
        stack.callback(alertmanager.stop)

        rules_dir = tmp_path / "rules"
        rules_dir.mkdir()
        (rules_dir / "chubaofs.yml").write_text(_fast_rules())
        (tmp_path / "prometheus.yml").write_text(_prometheus_config(consul, f"127.0.0.1:{am_port}", rules_dir, bridge))
        prometheus = ManagedProcess(
            [PROMETHEUS, f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{prom_port}"],
            tmp_path / "prometheus.log",
        )
        stack.callback(prometheus.stop)
        alertmanager.wait_ready(f"http://127.0.0.1:{am_port}/-/ready", START_TIMEOUT)
        prometheus.wait_ready(f"http://127.0.0.1:{prom_port}/-/ready", START_TIMEOUT)
        yield {
            "consul": consul, "exporter": exporter, "foreign": foreign, "webhook": webhook, "agent": agent,
            "prometheus_url": f"http://127.0.0.1:{prom_port}", "alertmanager_url": f"http://127.0.0.1:{am_port}",
            "prometheus": prometheus,
        }


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One pipeline for the module; each test drives a different alert through it."""
    with _pipeline(tmp_path_factory.mktemp("pipeline")) as p:
        yield p


def _active_targets(prometheus_url: str, job: str) -> list[dict[str, Any]]:
    targets = get_json(f"{prometheus_url}/api/v1/targets?state=active")["data"]["activeTargets"]
    return [t for t in targets if t["labels"].get("job") == job]


def _scraped_targets(prometheus_url: str, job: str) -> list[dict[str, Any]] | None:
    """The job's active targets once there are some and every one is up (scraped); else None."""
    targets = _active_targets(prometheus_url, job)
    return targets if targets and all(t["health"] == "up" for t in targets) else None


def test_inactive_datanode_alert_reaches_the_webhook(pipeline: dict[str, Any]) -> None:
    p = pipeline
    exporter: FakeChubaoFSExporter = p["exporter"]
    webhook: WebhookReceiver = p["webhook"]
    prometheus_url: str = p["prometheus_url"]

    # Discovery: only the monitored cluster's daemon is scraped, with labels from its tags.
    targets = wait_until(lambda: _scraped_targets(prometheus_url, "chubaofs"), START_TIMEOUT,
                         what="the chubaofs target to be scraped")
    assert [t["labels"]["instance"] for t in targets] == [f"127.0.0.1:{exporter.port}"]
    labels = targets[0]["labels"]
    assert (labels["app"], labels["role"], labels["cluster"]) == ("cfs", "master", CLUSTER)
    assert labels["consul_service_id"] == exporter.service_id
    dropped = get_json(f"{prometheus_url}/api/v1/targets?state=dropped")["data"]["droppedTargets"]
    assert any(t["discoveredLabels"].get("__meta_consul_service_id") == p["foreign"].service_id for t in dropped)

    # Consul's own telemetry is scraped by the consul job.
    wait_until(lambda: [t for t in _active_targets(prometheus_url, "consul") if t["health"] == "up"],
               START_TIMEOUT, what="the consul target to be up")

    # Healthy cluster: the inactive-datanode rule is loaded and inactive.
    def rule_state() -> str | None:
        groups = get_json(f"{prometheus_url}/api/v1/rules?type=alert")["data"]["groups"]
        states = [r["state"] for g in groups for r in g["rules"] if r["name"] == "ChubaoFSDataNodesInactive"]
        return states[0] if states else None

    assert wait_until(rule_state, START_TIMEOUT, what="rules to load") == "inactive"
    assert webhook.alerts("ChubaoFSDataNodesInactive") == []

    # A data node goes inactive on the leader: the alert fires and is delivered.
    exporter.set("cfs_master_dataNodes_inactive", 1)
    alerts = wait_until(lambda: webhook.alerts("ChubaoFSDataNodesInactive"), ALERT_TIMEOUT,
                        what="ChubaoFSDataNodesInactive at the webhook")
    alert = alerts[0]
    assert alert["labels"]["cluster"] == CLUSTER
    assert alert["labels"]["severity"] == "critical"
    assert alert["annotations"]["summary"] == f"1 inactive data node(s) in ChubaoFS cluster {CLUSTER}"
    # The foreign cluster's inactive nodes never produced an alert.
    assert all(a["labels"]["cluster"] == CLUSTER for a in webhook.alerts("ChubaoFSDataNodesInactive"))

    # Recovery is delivered too (send_resolved).
    exporter.set("cfs_master_dataNodes_inactive", 0)
    wait_until(lambda: webhook.alerts("ChubaoFSDataNodesInactive", status="resolved"), ALERT_TIMEOUT,
               what="the resolved notification")


def test_node_agent_discovery_and_disk_offline_alert(pipeline: dict[str, Any]) -> None:
    p = pipeline
    agent: FakeNodeAgent = p["agent"]
    webhook: WebhookReceiver = p["webhook"]
    prometheus_url: str = p["prometheus_url"]

    # Only the agent whose Consul check passes is scraped; `node` comes from its tag.
    targets = wait_until(lambda: _scraped_targets(prometheus_url, "rook-chubaofs-agent"), START_TIMEOUT,
                         what="the node agent target")
    assert [(t["labels"]["node"], t["labels"]["cluster"]) for t in targets] == [("worker-1", CLUSTER)]

    # The agent's own `node` label survives as `node` (honor_labels), not `exported_node`.
    def series() -> list[dict[str, Any]] | None:
        query = "rook_chubaofs_node_disk_online"
        result = get_json(f"{prometheus_url}/api/v1/query?query={query}")["data"]["result"]
        return result or None

    metrics = [r["metric"] for r in wait_until(series, START_TIMEOUT, what="agent series")]
    assert {(m["node"], m["device"], m["cluster"]) for m in metrics} == {("worker-1", "sdb", CLUSTER), ("worker-1", "sdc", CLUSTER)}
    assert all("exported_node" not in m for m in metrics)

    agent.set_online("sdc", 0)
    alerts = wait_until(lambda: webhook.alerts("ChubaoFSNodeDiskOffline"), ALERT_TIMEOUT,
                        what="ChubaoFSNodeDiskOffline at the webhook")
    assert {(a["labels"]["node"], a["labels"]["device"]) for a in alerts} == {("worker-1", "sdc")}
    assert alerts[0]["labels"]["severity"] == "critical"
