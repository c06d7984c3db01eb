"""`promtool test rules` for every built-in alert: it fires when it should, stays silent otherwise.

Each case is written as a promtool unit-test file (Python -> YAML in a temp dir) against the
rendered rule file. promtool compares annotations exactly, so the expected annotations are the
rule's templates rendered here with the alert's labels and value (see `_render_template`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from rook_py.chubaofs.monitor.config.rules import BUILTIN_ALERTS, render_alert_rules
from tests.tools.promtools import PROMTOOL, assert_tool_ok, requires_promtool, run_tool

CLUSTER = "prod"
M1 = 'instance="10.0.0.1:17010", job="chubaofs", role="master", cluster="prod"'
M2 = 'instance="10.0.0.2:17010", job="chubaofs", role="master", cluster="prod"'
OTHER = 'instance="10.9.0.1:17010", job="chubaofs", role="master", cluster="other"'
D1 = 'instance="10.0.1.1:17320", job="chubaofs", role="dataNode", cluster="prod"'


@dataclass
class Expect:
    """One expected alert: its labels (without alertname) and the value its templates see."""

    labels: dict[str, str]
    value: float = 0.0


@dataclass
class Case:
    id: str
    alert: str
    series: list[tuple[str, str]]
    eval_time: str
    expect: list[Expect] = field(default_factory=list)
    interval: str = "1m"
    thresholds: dict[str, float] | None = None


def _go_value(value: float) -> str:
    """Go's %v for float64 on the small values used here."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _render_template(template: str, labels: dict[str, str], value: float) -> str:
    """Render the subset of Prometheus alert templating the built-in rules use."""

    def substitute(match: re.Match[str]) -> str:
        expr = match.group(1).strip()
        if expr.startswith("$labels."):
            return labels.get(expr[len("$labels."):], "")
        if expr == "$value":
            return _go_value(value)
        if expr == '$value | printf "%.1f"':
            return f"{value:.1f}"
        if expr == "$value | humanizePercentage":
            return f"{value * 100:.4g}%"
        raise AssertionError(f"template expression not supported by the test renderer: {expr}")

    return re.sub(r"{{(.*?)}}", substitute, template)


def _rules_by_alert(rule_text: str) -> dict[str, list[dict[str, Any]]]:
    rules: dict[str, list[dict[str, Any]]] = {}
    for group in yaml.safe_load(rule_text)["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                rules.setdefault(rule["alert"], []).append(rule)
    return rules


def _expected_alert(rule_text: str, alert: str, expect: Expect) -> dict[str, Any]:
    severity = expect.labels["severity"]
    (rule,) = [r for r in _rules_by_alert(rule_text)[alert] if r["labels"]["severity"] == severity]
    return {
        "exp_labels": expect.labels,
        "exp_annotations": {k: _render_template(v, expect.labels, expect.value) for k, v in rule["annotations"].items()},
    }


def _lbl(**labels: str) -> dict[str, str]:
    return dict(labels)


CASES: list[Case] = [
    # --- master leader -------------------------------------------------------------------
    Case("v3-follower-reports-no-leader", "ChubaoFSMasterNoLeader",
         [(f"cfs_master_master_no_leader{{{M1}}}", "0x5 1x20"), (f"cfs_master_master_no_leader{{{M2}}}", "0x25"),
          (f"cfs_master_dataNodes_total_GB{{{M1}}}", "100x25")],
         "15m", [Expect(_lbl(cluster=CLUSTER, severity="critical"), 1)]),
    Case("v3-leader-known", "ChubaoFSMasterNoLeader",
         [(f"cfs_master_master_no_leader{{{M1}}}", "0x25"), (f"cfs_master_master_no_leader{{{M2}}}", "0x25"),
          (f"cfs_master_dataNodes_total_GB{{{M1}}}", "100x25"), (f"cfs_master_dataNodes_total_GB{{{M2}}}", "0x25")],
         "15m"),
    Case("v3-leader-known-empty-cluster", "ChubaoFSMasterNoLeader",
         [(f"cfs_master_master_no_leader{{{M1}}}", "0x25"), (f"cfs_master_dataNodes_total_GB{{{M1}}}", "0x25")],
         "15m"),
    Case("v2-no-master-publishes-leader-gauges", "ChubaoFSMasterNoLeader",
         [(f"cfs_master_dataNodes_count{{{M1}}}", "0x25"), (f"cfs_master_dataNodes_count{{{M2}}}", "0x25"),
          (f"cfs_master_metaNodes_count{{{M1}}}", "0x25"), (f"cfs_master_metaNodes_count{{{M2}}}", "0x25"),
          (f"up{{{D1}}}", "1x25")],
         "15m", [Expect(_lbl(cluster=CLUSTER, severity="critical"), 1)]),
    Case("v2-leader-publishes", "ChubaoFSMasterNoLeader",
         [(f"cfs_master_dataNodes_count{{{M1}}}", "3x25"), (f"cfs_master_dataNodes_count{{{M2}}}", "0x25"),
          (f"cfs_master_metaNodes_count{{{M1}}}", "3x25"), (f"cfs_master_metaNodes_count{{{M2}}}", "0x25"),
          (f"cfs_master_dataNodes_total_GB{{{M1}}}", "0x25"), (f"up{{{D1}}}", "1x25")],
         "15m"),
    Case("v2-no-node-registered-yet", "ChubaoFSMasterNoLeader",
         [(f"cfs_master_dataNodes_count{{{M1}}}", "0x25"), (f"cfs_master_metaNodes_count{{{M1}}}", "0x25")],
         "15m"),
    Case("v2-masters-before-first-refresh", "ChubaoFSMasterNoLeader", [(f"up{{{D1}}}", "1x25")], "15m"),
    Case("other-cluster-without-leader", "ChubaoFSMasterNoLeader",
         [(f"cfs_master_master_no_leader{{{OTHER}}}", "1x25")], "15m"),
    # --- inactive nodes ------------------------------------------------------------------
    Case("metanodes-inactive", "ChubaoFSMetaNodesInactive",
         [(f"cfs_master_metaNodes_inactive{{{M1}}}", "0x5 2x20"), (f"cfs_master_metaNodes_inactive{{{M2}}}", "0x25")],
         "10m", [Expect(_lbl(cluster=CLUSTER, severity="critical"), 2)]),
    Case("metanodes-inactive-still-pending", "ChubaoFSMetaNodesInactive",
         [(f"cfs_master_metaNodes_inactive{{{M1}}}", "0x5 2x20")], "7m"),
    Case("metanodes-all-active", "ChubaoFSMetaNodesInactive",
         [(f"cfs_master_metaNodes_inactive{{{M1}}}", "0x25"), (f"cfs_master_metaNodes_inactive{{{OTHER}}}", "3x25")], "10m"),
    Case("datanodes-inactive", "ChubaoFSDataNodesInactive",
         [(f"cfs_master_dataNodes_inactive{{{M1}}}", "0x5 1x20"), (f"cfs_master_dataNodes_inactive{{{M2}}}", "0x25")],
         "10m", [Expect(_lbl(cluster=CLUSTER, severity="critical"), 1)]),
    Case("datanodes-all-active", "ChubaoFSDataNodesInactive",
         [(f"cfs_master_dataNodes_inactive{{{M1}}}", "0x25"), (f"cfs_master_dataNodes_inactive{{{M2}}}", "0x25")], "10m"),
    # --- disks ---------------------------------------------------------------------------
    Case("disk-error", "ChubaoFSDiskError",
         [(f'cfs_master_disk_error{{{M1}, addr="10.0.1.5:17310", path="10.0.1.5:17310_/data1"}}', "1x10")],
         "5m", [Expect(_lbl(cluster=CLUSTER, addr="10.0.1.5:17310", disk="/data1", severity="warning"), 1)]),
    Case("disk-error-v2-path", "ChubaoFSDiskError",
         [(f'cfs_master_disk_error{{{M1}, addr="10.0.1.5:17310", path="/data1"}}', "1x10"),
          (f"cfs_master_disk_error{{{M2}}}", "0x10")],
         "5m", [Expect(_lbl(cluster=CLUSTER, addr="10.0.1.5:17310", disk="/data1", severity="warning"), 1)]),
    Case("no-disk-error", "ChubaoFSDiskError",
         [(f"cfs_master_dataNodes_total_GB{{{M1}}}", "100x10")], "5m"),
    Case("disk-lost", "ChubaoFSDiskLost",
         [(f'cfs_master_disk_lost{{{M1}, addr="10.0.1.6:17310", path="10.0.1.6:17310_/data2"}}', "1x10")],
         "5m", [Expect(_lbl(cluster=CLUSTER, addr="10.0.1.6:17310", disk="/data2", severity="critical"), 1)]),
    Case("no-disk-lost", "ChubaoFSDiskLost",
         [(f'cfs_master_disk_lost{{{OTHER}, addr="10.9.1.6:17310", path="x"}}', "1x10")], "5m"),
    Case("datanodes-not-writable", "ChubaoFSDataNodesNotWritable",
         [(f"cfs_master_dataNodes_not_writable{{{M1}}}", "2x20"), (f"cfs_master_dataNodes_not_writable{{{M2}}}", "0x20")],
         "10m", [Expect(_lbl(cluster=CLUSTER, severity="warning"), 2)]),
    Case("datanodes-writable", "ChubaoFSDataNodesNotWritable",
         [(f"cfs_master_dataNodes_not_writable{{{M1}}}", "0x20")], "10m"),
    # --- capacity ------------------------------------------------------------------------
    Case("capacity-warning-only", "ChubaoFSClusterCapacityHigh",
         [(f"cfs_master_dataNodes_used_GB{{{M1}}}", "850x30"), (f"cfs_master_dataNodes_total_GB{{{M1}}}", "1000x30"),
          (f"cfs_master_dataNodes_used_GB{{{M2}}}", "0x30"), (f"cfs_master_dataNodes_total_GB{{{M2}}}", "0x30")],
         "20m", [Expect(_lbl(cluster=CLUSTER, severity="warning"), 85)]),
    Case("capacity-critical-only", "ChubaoFSClusterCapacityHigh",
         [(f"cfs_master_dataNodes_used_GB{{{M1}}}", "955x30"), (f"cfs_master_dataNodes_total_GB{{{M1}}}", "1000x30")],
         "20m", [Expect(_lbl(cluster=CLUSTER, severity="critical"), 95.5)]),
    Case("capacity-fine", "ChubaoFSClusterCapacityHigh",
         [(f"cfs_master_dataNodes_used_GB{{{M1}}}", "500x30"), (f"cfs_master_dataNodes_total_GB{{{M1}}}", "1000x30")], "20m"),
    Case("capacity-custom-thresholds", "ChubaoFSClusterCapacityHigh",
         [(f"cfs_master_dataNodes_used_GB{{{M1}}}", "750x30"), (f"cfs_master_dataNodes_total_GB{{{M1}}}", "1000x30")],
         "20m", [Expect(_lbl(cluster=CLUSTER, severity="critical"), 75)],
         thresholds={"capacityWarningPercent": 60, "capacityCriticalPercent": 70}),
    Case("capacity-predicted-full", "ChubaoFSCapacityPredictedFull",
         [(f"cfs_master_dataNodes_used_GB{{{M1}}}", "600+1x100"), (f"cfs_master_dataNodes_total_GB{{{M1}}}", "1000x100"),
          (f"cfs_master_dataNodes_used_GB{{{M2}}}", "0x100")],
         "7h", [Expect(_lbl(cluster=CLUSTER, severity="warning"))], interval="5m"),
    Case("capacity-flat", "ChubaoFSCapacityPredictedFull",
         [(f"cfs_master_dataNodes_used_GB{{{M1}}}", "600x100"), (f"cfs_master_dataNodes_total_GB{{{M1}}}", "1000x100")],
         "7h", interval="5m"),
    Case("capacity-growth-fits-horizon", "ChubaoFSCapacityPredictedFull",
         [(f"cfs_master_dataNodes_used_GB{{{M1}}}", "600+1x100"), (f"cfs_master_dataNodes_total_GB{{{M1}}}", "1000x100")],
         "7h", interval="5m", thresholds={"predictFullDays": 1}),
    Case("volume-usage-high", "ChubaoFSVolumeUsageHigh",
         [(f'cfs_master_vol_usage_ratio{{{M1}, volName="logs"}}', "0.95x30"),
          (f'cfs_master_vol_usage_ratio{{{M1}, volName="data"}}', "0.5x30")],
         "20m", [Expect(_lbl(cluster=CLUSTER, volName="logs", severity="warning"), 0.95)]),
    Case("volume-usage-fine", "ChubaoFSVolumeUsageHigh",
         [(f'cfs_master_vol_usage_ratio{{{M1}, volName="logs"}}', "0.89x30")], "20m"),
    # --- targets -------------------------------------------------------------------------
    Case("datanode-target-down", "ChubaoFSTargetDown",
         [('up{job="chubaofs", cluster="prod", role="dataNode", app="cfs", instance="10.0.1.5:17320", '
           'consul_service_id="cfs_dataNode_10.0.1.5_17320"}', "1x2 0x20")],
         "10m", [Expect(_lbl(job="chubaofs", cluster=CLUSTER, role="dataNode", app="cfs", instance="10.0.1.5:17320",
                             consul_service_id="cfs_dataNode_10.0.1.5_17320", severity="warning"), 0)]),
    Case("datanode-target-down-briefly", "ChubaoFSTargetDown",
         [('up{job="chubaofs", cluster="prod", role="dataNode", instance="10.0.1.5:17320"}', "1x2 0x3 1x10")], "10m"),
    Case("consul-down", "ChubaoFSConsulDown",
         [('up{job="consul", cluster="prod", instance="mon-consul:8500"}', "0x10")],
         "10m", [Expect(_lbl(job="consul", cluster=CLUSTER, instance="mon-consul:8500", severity="critical"), 0)]),
    Case("consul-up", "ChubaoFSConsulDown",
         [('up{job="consul", cluster="prod", instance="mon-consul:8500"}', "1x10")], "10m"),
    Case("agent-vanished-from-discovery", "ChubaoFSAgentDown",
         [('up{job="rook-chubaofs-agent", cluster="prod", node="n1", instance="10.0.0.11:9500"}', "1x10 _x30"),
          ('up{job="rook-chubaofs-agent", cluster="prod", node="n2", instance="10.0.0.12:9500"}', "1x40")],
         "30m", [Expect(_lbl(cluster=CLUSTER, node="n1", severity="warning"), 1)]),
    Case("agent-scrape-failing", "ChubaoFSAgentDown",
         [('up{job="rook-chubaofs-agent", cluster="prod", node="n1", instance="10.0.0.11:9500"}', "1x5 0x30")],
         "20m", [Expect(_lbl(cluster=CLUSTER, node="n1", severity="warning"), 1)]),
    Case("agents-up", "ChubaoFSAgentDown",
         [('up{job="rook-chubaofs-agent", cluster="prod", node="n1", instance="10.0.0.11:9500"}', "1x40")], "30m"),
    # --- node agent disks ----------------------------------------------------------------
    Case("disk-offline", "ChubaoFSNodeDiskOffline",
         [('rook_chubaofs_node_disk_online{job="rook-chubaofs-agent", cluster="prod", node="n1", device="sdb"}', "1x3 0x10"),
          ('rook_chubaofs_node_disk_online{job="rook-chubaofs-agent", cluster="prod", node="n1", device="sdc"}', "1x13")],
         "10m", [Expect(_lbl(job="rook-chubaofs-agent", cluster=CLUSTER, node="n1", device="sdb", severity="critical"), 0)]),
    Case("disks-online", "ChubaoFSNodeDiskOffline",
         [('rook_chubaofs_node_disk_online{job="rook-chubaofs-agent", cluster="prod", node="n1", device="sdb"}', "1x13")], "10m"),
    Case("disk-io-errors", "ChubaoFSNodeDiskIOErrors",
         [('rook_chubaofs_node_disk_io_errors_total{job="rook-chubaofs-agent", cluster="prod", node="n1", device="sdb"}', "0x5 1+1x10")],
         "10m", [Expect(_lbl(job="rook-chubaofs-agent", cluster=CLUSTER, node="n1", device="sdb", severity="warning"), 5.5)]),
    Case("disk-io-errors-old", "ChubaoFSNodeDiskIOErrors",
         [('rook_chubaofs_node_disk_io_errors_total{job="rook-chubaofs-agent", cluster="prod", node="n1", device="sdb"}', "0x5 7x30")],
         "30m"),
]


# Capacity is read from the master that counts data nodes (the leader); M1 is the leader here.
for _case in CASES:
    if _case.alert in ("ChubaoFSClusterCapacityHigh", "ChubaoFSCapacityPredictedFull"):
        _case.series.append((f"cfs_master_dataNodes_count{{{M1}}}", "3x100"))

CASES.append(Case(
    "capacity-read-from-followers-only-is-no-growth", "ChubaoFSCapacityPredictedFull",
    # The leader is not scraped for the first two samples (restarting): only the follower's reset
    # 0 is there. Read as "0 bytes used" it would make predict_linear see 600 GiB of growth.
    [(f"cfs_master_dataNodes_used_GB{{{M1}}}", "_x1 600x100"), (f"cfs_master_dataNodes_total_GB{{{M1}}}", "_x1 1000x100"),
     (f"cfs_master_dataNodes_count{{{M1}}}", "_x1 3x100"),
     (f"cfs_master_dataNodes_used_GB{{{M2}}}", "0x100"), (f"cfs_master_dataNodes_total_GB{{{M2}}}", "0x100"),
     (f"cfs_master_dataNodes_count{{{M2}}}", "0x100")],
    "2h", interval="5m"))


def test_every_builtin_alert_has_firing_and_silent_cases() -> None:
    firing = {c.alert for c in CASES if c.expect}
    silent = {c.alert for c in CASES if not c.expect}
    assert firing == set(BUILTIN_ALERTS)
    assert silent == set(BUILTIN_ALERTS)


@requires_promtool
@pytest.mark.parametrize("case", CASES, ids=[f"{c.alert}:{c.id}" for c in CASES])
def test_alert_rule(tmp_path: Path, case: Case) -> None:
    assert PROMTOOL is not None
    rule_text = render_alert_rules(cluster_name=CLUSTER, thresholds=case.thresholds)
    (tmp_path / "rules.yml").write_text(rule_text)
    test_file = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": case.interval,
                "input_series": [{"series": s, "values": v} for s, v in case.series],
                "alert_rule_test": [
                    {
                        "eval_time": case.eval_time,
                        "alertname": case.alert,
                        "exp_alerts": [_expected_alert(rule_text, case.alert, e) for e in case.expect],
                    }
                ],
            }
        ],
    }
    (tmp_path / "test.yml").write_text(yaml.safe_dump(test_file, sort_keys=False))
    result = run_tool([PROMTOOL, "test", "rules", "test.yml"], cwd=tmp_path)
    assert_tool_ok(result)
