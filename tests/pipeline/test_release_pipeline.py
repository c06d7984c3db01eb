"""The generated monitoring config against each ChubaoFS/CubeFS release, live.

Per release in TESTED_VERSIONS a fake daemon set (leader and follower master, two data nodes,
two meta nodes; tests/support/chubaofs_fixture.py) exports exactly that release's metrics and
registers in the Consul double as upstream does. One real Prometheus per release (its own
cluster name, all running at once) scrapes them through the generated prometheus.yml and rules
(1 s intervals, `for` shortened to 1 s); one real Alertmanager routes every release's alerts to a
webhook. Healthy: no alert. Faults (inactive data and meta node, bad and lost disk, volume over
its threshold, a data node target down, then no master leader): each alert with a signal on that
release fires and reaches the webhook; every dashboard panel returns data exactly where the
release has it.
"""

from __future__ import annotations

import contextlib
import json
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from rook_py.chubaofs.monitor.config import render_alert_rules, render_default_alertmanager_config
from rook_py.chubaofs.monitor.config.grafana import dashboards, panel_availability
from rook_py.chubaofs.versions import TESTED_VERSIONS, parse_release
from tests.pipeline.consul_sd_bridge import ConsulSDBridge
from tests.pipeline.harness import (
    ManagedProcess,
    WebhookReceiver,
    _MetricsServer,
    free_port,
    get_json,
    wait_until,
)
from tests.pipeline.test_monitoring_pipeline import _prometheus_config
from tests.support.chubaofs_fixture import FixtureCluster
from tests.support.consul_double import ConsulDouble
from tests.tools.dashboard_queries import panels, substitute
from tests.tools.promtools import ALERTMANAGER, PROMETHEUS, prometheus_has_consul_sd

pytestmark = [
    pytest.mark.skipif(PROMETHEUS is None, reason="prometheus binary not found (make tools)"),
    pytest.mark.skipif(ALERTMANAGER is None, reason="alertmanager binary not found (make tools)"),
]

TIMEOUT = 30.0


def cluster_name(version: str) -> str:
    return "v" + version.replace(".", "")


class FixtureDaemon(_MetricsServer):
    """One daemon of a FixtureCluster on a loopback port; /metrics answers 500 while the model
    marks it unhealthy (a target Prometheus cannot scrape)."""

    def __init__(self, cluster: FixtureCluster, name: str) -> None:
        self.cluster, self.name, self.started = cluster, name, time.monotonic()
        super().__init__()

    @property  # type: ignore[override]
    def healthy(self) -> bool:
        return self.cluster.daemons[self.name].healthy

    def exposition(self) -> str:
        return self.cluster.exposition(self.name, now=time.monotonic() - self.started)


def _rules(cluster: str) -> str:
    document = yaml.safe_load(render_alert_rules(cluster_name=cluster, scrape_interval="1s"))
    for group in document["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = "1s"
    return yaml.safe_dump(document, sort_keys=False)


@contextlib.contextmanager
def _stack(tmp_path: Path) -> Iterator[dict[str, Any]]:
    assert PROMETHEUS is not None and ALERTMANAGER is not None
    with contextlib.ExitStack() as stack:
        consul = ConsulDouble().start()
        stack.callback(consul.stop)
        webhook = WebhookReceiver()
        webhook.start()
        stack.callback(webhook.stop)
        bridge = None
        if not prometheus_has_consul_sd():
            bridge = ConsulSDBridge(consul.url).start()
            stack.callback(bridge.stop)
        clusters = {v: FixtureCluster(v, cluster=cluster_name(v)) for v in TESTED_VERSIONS}
        for cluster in clusters.values():
            for name in cluster.daemons:
                daemon = FixtureDaemon(cluster, name)
                daemon.start()
                stack.callback(daemon.stop)
                body = cluster.registration(name, "127.0.0.1", daemon.port)
                consul.register_service(body)

        am_port = free_port()
        am_dir = tmp_path / "alertmanager"
        am_dir.mkdir()
        am_config = yaml.safe_load(render_default_alertmanager_config(cluster_name="any", webhook_urls=[webhook.url]))
        am_config["route"].update(group_wait="1s", group_interval="1s", repeat_interval="1h")
        (am_dir / "alertmanager.yml").write_text(yaml.safe_dump(am_config, sort_keys=False))
        alertmanager = ManagedProcess(
            [ALERTMANAGER, f"--config.file={am_dir / 'alertmanager.yml'}", f"--storage.path={am_dir / 'data'}",
             f"--web.listen-address=127.0.0.1:{am_port}", "--cluster.listen-address="],
            tmp_path / "alertmanager.log")
        stack.callback(alertmanager.stop)

        prometheus_urls: dict[str, str] = {}
        processes = []
        for version, cluster in clusters.items():
            home = tmp_path / cluster.cluster
            (home / "rules").mkdir(parents=True)
            (home / "rules" / "chubaofs.yml").write_text(_rules(cluster.cluster))
            config = yaml.safe_load(_prometheus_config(consul, f"127.0.0.1:{am_port}", home / "rules", bridge))
            config["global"]["external_labels"]["cluster"] = cluster.cluster
            for job in config["scrape_configs"]:
                for rule in job.get("relabel_configs", []):
                    if rule.get("action") == "keep" and rule.get("source_labels") == ["cluster"]:
                        rule["regex"] = cluster.cluster
            (home / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False))
            port = free_port()
            process = ManagedProcess(
                [PROMETHEUS, f"--config.file={home / 'prometheus.yml'}", f"--storage.tsdb.path={home / 'tsdb'}",
                 f"--web.listen-address=127.0.0.1:{port}"], home / "prometheus.log")
            stack.callback(process.stop)
            processes.append((process, f"http://127.0.0.1:{port}"))
            prometheus_urls[version] = f"http://127.0.0.1:{port}"
        alertmanager.wait_ready(f"http://127.0.0.1:{am_port}/-/ready", TIMEOUT)
        for process, url in processes:
            process.wait_ready(f"{url}/-/ready", TIMEOUT)
        yield {"clusters": clusters, "prometheus": prometheus_urls, "webhook": webhook}


def query(url: str, expr: str) -> list[dict[str, Any]]:
    answer = get_json(f"{url}/api/v1/query?query={urllib.parse.quote(expr)}")
    result: list[dict[str, Any]] = answer["data"]["result"]
    return result


def firing(url: str) -> dict[str, list[dict[str, str]]]:
    alerts = get_json(f"{url}/api/v1/alerts")["data"]["alerts"]
    result: dict[str, list[dict[str, str]]] = {}
    for alert in alerts:
        if alert["state"] == "firing" and alert["labels"]["alertname"].startswith("ChubaoFS"):
            result.setdefault(alert["labels"]["alertname"], []).append(alert["labels"])
    return result


_VARIABLES = {"role": ".*", "instance": ".*", "vol": ".*", "node": ".*", "__rate_interval": "10s",
              "__interval": "1s", "__range": "1m"}


def _panel_checks(version: str) -> list[tuple[str, str, bool]]:
    """(panel, query, whether the release has data for it) for every ChubaoFS panel query."""
    release = parse_release(version)
    checks = []
    for name, text in dashboards(version=version).items():
        for panel in panels(json.loads(text)):
            exprs = [t["expr"] for t in panel.get("targets", []) if t.get("expr")]
            if not exprs or any(m in e for e in exprs for m in ("rook_chubaofs_node_", "rook-chubaofs-agent", "ALERTS")):
                continue  # node-agent panels: tests/pipeline/test_monitoring_pipeline.py
            if "empty when" in panel.get("description", ""):
                continue  # documented to be empty on a flat fixture (no growth)
            available, _ = panel_availability(panel, release)
            values = {**_VARIABLES, "cluster": cluster_name(version)}
            expr = " or ".join(f"({substitute(e, values)})" for e in exprs)
            checks.append((f"{name}: {panel['title']}", expr, available))
    return checks


EXPECTED_FAULT_ALERTS = {
    "ChubaoFSDataNodesInactive": "2.0.0", "ChubaoFSMetaNodesInactive": "2.0.0", "ChubaoFSDiskError": "2.0.0",
    "ChubaoFSVolumeUsageHigh": "2.0.0", "ChubaoFSTargetDown": "2.0.0", "ChubaoFSDataNodesNotWritable": "3.2.1",
    "ChubaoFSDiskLost": "3.5.2",
}


def test_every_release_end_to_end(tmp_path: Path) -> None:
    with _stack(tmp_path) as s:
        clusters: dict[str, FixtureCluster] = s["clusters"]
        urls: dict[str, str] = s["prometheus"]
        webhook: WebhookReceiver = s["webhook"]

        # Healthy: every daemon scraped, the recording rules produce series, no alert fires.
        for version, url in urls.items():
            wait_until(lambda url=url: (len(query(url, "up{job=\"chubaofs\"} == 1")) == 6 and query(url, "chubaofs:datanodes:count")) or None,
                       TIMEOUT, what=f"{version}: 6 targets up and the recording rules")
        for version, url in urls.items():
            # Roles come from the Consul tags (3.x Meta claims role=fuseclient for every daemon).
            roles = sorted(r["metric"]["role"] for r in query(url, 'up{job="chubaofs"}'))
            assert roles == ["dataNode", "dataNode", "master", "master", "metanode", "metanode"], version
        time.sleep(3)  # several evaluation cycles with `for: 1s`
        for version, url in urls.items():
            assert firing(url) == {}, version
            assert query(url, "chubaofs:master_no_leader")[0]["value"][1] == "0", version

        # Faults.
        for cluster in clusters.values():
            cluster.inactive_datanode = "datanode-1"
            cluster.inactive_metanode = "metanode-1"
            cluster.bad_disk = ("datanode-1", "/cfs/disk2")
            cluster.lost_disk = ("datanode-1", "/cfs/disk3")
            cluster.volume_full = "logs"
            cluster.daemons["datanode-2"].healthy = False
        for version, url in urls.items():
            expected = {a for a, since in EXPECTED_FAULT_ALERTS.items() if parse_release(version) >= parse_release(since)}
            got = wait_until(lambda url=url, expected=expected: ((f := firing(url)) and expected <= set(f) and f) or None,
                             TIMEOUT, what=f"{version}: {sorted(expected)} firing")
            assert set(got) == expected, version
            (disk,) = got["ChubaoFSDiskError"]
            assert (disk["addr"], disk["disk"]) == ("10.0.1.1:17310", "/cfs/disk2"), version
            for where, expr, available in _panel_checks(version):
                result = query(url, expr)
                assert bool(result) == available, f"{version} {where}: {expr} -> {result}"
        def delivered(version: str) -> set[str]:
            with webhook.lock:
                return {a["labels"]["alertname"] for n in webhook.notifications for a in n.get("alerts", [])
                        if a["status"] == "firing" and a["labels"].get("cluster") == cluster_name(version)}

        for version in urls:
            expected = {a for a, since in EXPECTED_FAULT_ALERTS.items() if parse_release(version) >= parse_release(since)}
            wait_until(lambda version=version, expected=expected: expected <= delivered(version) or None, TIMEOUT,
                       what=f"{version}: {sorted(expected)} at the webhook")
            assert delivered(version) == expected, version

        # No master leader.
        for cluster in clusters.values():
            cluster.leader = None
        for version, url in urls.items():
            wait_until(lambda url=url: "ChubaoFSMasterNoLeader" in firing(url) or None, TIMEOUT,
                       what=f"{version}: ChubaoFSMasterNoLeader")
        wait_until(lambda: {a["labels"]["cluster"] for a in webhook.alerts("ChubaoFSMasterNoLeader")}
                   >= {cluster_name(v) for v in urls} or None, TIMEOUT, what="ChubaoFSMasterNoLeader at the webhook")
