"""`promtool test rules` per ChubaoFS/CubeFS release: the recording rules normalise each release's
metrics into the same `chubaofs:*` series, every alert fires on its fault where the release has
the signal, and no alert fires on a healthy cluster of any release (small, without volumes,
masters before their first refresh, a follower master next to the leader).

The input series are what tests/support/chubaofs_fixture.py exports for that release, with the
target labels Prometheus adds through the generated relabeling (job, instance, app, role,
cluster, consul_service_id). The expected values are written out here per release.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from rook_py.chubaofs.monitor.config.rules import BUILTIN_ALERTS, RECORDING_GROUP, render_alert_rules
from rook_py.chubaofs.versions import TESTED_VERSIONS
from tests.support.chubaofs_fixture import GIB, FixtureCluster, MixedCluster
from tests.tools.promtools import PROMTOOL, assert_tool_ok, requires_promtool, run_tool
from tests.tools.test_promtool_alerts import Expect, _expected_alert

CLUSTER = "prod"
STEPS = 30  # one sample a minute
FAULT_FROM = 3

_PORTS = {"master-1": 17010, "master-2": 17010, "datanode-1": 17320, "datanode-2": 17320,
          "metanode-1": 17220, "metanode-2": 17220}
_IPS = {"master-1": "10.0.0.1", "master-2": "10.0.0.2", "datanode-1": "10.0.1.1", "datanode-2": "10.0.1.2",
        "metanode-1": "10.0.2.1", "metanode-2": "10.0.2.2"}


def _target_labels(cluster: FixtureCluster | MixedCluster, name: str) -> dict[str, str]:
    daemon = cluster.daemons[name]
    ip, port = _IPS[name], _PORTS[name]
    return {"job": "chubaofs", "instance": f"{ip}:{port}", "app": "cfs", "role": daemon.role,
            "cluster": CLUSTER, "consul_service_id": f"cfs_{daemon.role}_{ip}_{port}"}


def _series_text(name: str, labels: dict[str, str]) -> str:
    return name + "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def input_series(timeline: list[FixtureCluster] | list[MixedCluster]) -> list[dict[str, str]]:
    """promtool input_series from one FixtureCluster state per minute ("_" where absent)."""
    values: dict[str, list[str]] = {}
    for step, state in enumerate(timeline):
        for name, daemon in state.daemons.items():
            target = _target_labels(state, name)
            up = _series_text("up", target)
            values.setdefault(up, ["_"] * len(timeline))[step] = "1" if daemon.healthy else "0"
            if not daemon.healthy:
                continue
            for sample in state.samples(name, now=60.0 * step):
                key = _series_text(sample.name, {**dict(sample.labels), **target})
                values.setdefault(key, ["_"] * len(timeline))[step] = repr(float(sample.value))
    return [{"series": key, "values": " ".join(vals)} for key, vals in sorted(values.items())]


def timeline(version: str, fault: Callable[[FixtureCluster], None] | None = None,
             healthy: Callable[[FixtureCluster], None] | None = None) -> list[FixtureCluster]:
    states = []
    for step in range(STEPS):
        state = FixtureCluster(version, cluster=CLUSTER)
        if healthy is not None:
            healthy(state)
        if fault is not None and step >= FAULT_FROM:
            fault(state)
        states.append(state)
    return states


def _run(tmp_path: Path, tests: list[dict[str, Any]]) -> None:
    assert PROMTOOL is not None
    (tmp_path / "rules.yml").write_text(render_alert_rules(cluster_name=CLUSTER, scrape_interval="30s"))
    (tmp_path / "test.yml").write_text(yaml.safe_dump(
        {"rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": tests}, sort_keys=False))
    assert_tool_ok(run_tool([PROMTOOL, "test", "rules", "test.yml"], cwd=tmp_path))


# --- recording rules ---------------------------------------------------------------------------

V2, V3 = ("2.2.0", "2.4.0"), ("3.3.0", "3.5.2")


def _expected_records(version: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """record -> [(labels besides cluster, value)] on the healthy fixture of `version`."""
    c: dict[str, list[tuple[dict[str, str], float]]] = {
        "chubaofs:master_no_leader": [({}, 0)],
        "chubaofs:master_leader:info": [({"instance": "10.0.0.1:17010"}, 1)],
        "chubaofs:datanodes:count": [({}, 2)],
        "chubaofs:datanodes_inactive:count": [({}, 0)],
        "chubaofs:metanodes:count": [({}, 2)],
        "chubaofs:metanodes_inactive:count": [({}, 0)],
        "chubaofs:volumes:count": [({}, 2)],
        "chubaofs:datanodes_capacity_total:bytes": [({}, 3000 * GIB)],
        "chubaofs:datanodes_capacity_used:bytes": [({}, 300 * GIB)],
        "chubaofs:datanodes_capacity_increased:bytes": [({}, 2 * GIB)],
        "chubaofs:metanodes_memory_total:bytes": [({}, 64 * GIB)],
        "chubaofs:metanodes_memory_used:bytes": [({}, 3 * GIB)],
        "chubaofs:datanodes_capacity_used:ratio": [({}, 0.1)],
        "chubaofs:volume_capacity:bytes": [({"volName": "images"}, 200 * GIB), ({"volName": "logs"}, 100 * GIB)],
        "chubaofs:volume_used:bytes": [({"volName": "images"}, 70 * GIB), ({"volName": "logs"}, 10 * GIB)],
        "chubaofs:volume_usage:ratio": [({"volName": "images"}, 0.35), ({"volName": "logs"}, 0.1)],
        "chubaofs:disk_error": [],
        "chubaofs:disk_lost": [],
        "chubaofs:datanode_inactive:info": [],
        "chubaofs:metanode_inactive:info": [],
        # 2.2.0 data nodes export no I/O bytes; from 2.4.0 each node moves 4096 B/s per volume,
        # split 50/30/20 by type: 2 volumes per node, 2 nodes per volume.
        "chubaofs:datanode_io:bytes_per_second": [] if version == "2.2.0" else [
            ({"instance": f"{ip}:17320", "type": t}, v) for ip in ("10.0.1.1", "10.0.1.2")
            for t, v in (("randwrite", 1638.4), ("read", 4096.0), ("write", 2457.6))],
        "chubaofs:volume_io:bytes_per_second": [] if version == "2.2.0" else [
            ({"volName": vol, "type": t}, v) for vol in ("images", "logs")
            for t, v in (("randwrite", 1638.4), ("read", 4096.0), ("write", 2457.6))],
        # 2.2.0 has no inode metric at all; 2.4.0 counts meta partitions by id; 3.x asks the master.
        "chubaofs:inodes:count": [] if version == "2.2.0" else [({}, 1500)],
        "chubaofs:volume_inodes:count": [] if version in V2 else [({"volName": "images"}, 300),
                                                                  ({"volName": "logs"}, 1200)],
        "chubaofs:volume_dentries:count": [] if version in V2 else [({"volName": "images"}, 290),
                                                                    ({"volName": "logs"}, 1150)],
        "chubaofs:datanodes_not_writable:count": [] if version in V2 else [({}, 0)],
        "chubaofs:metanodes_not_writable:count": [] if version in V2 else [({}, 0)],
        "chubaofs:masters_inactive:count": [({}, 0)] if version == "3.5.2" else [],
        "chubaofs:datanode_disk_capacity:bytes": [] if version in V2 else [
            ({"instance": f"{ip}:17320", "type": t}, v * GIB) for ip in ("10.0.1.1", "10.0.1.2")
            for t, v in (("available", 1350), ("total", 1500), ("used", 150))],
    }
    return c


def test_every_recording_rule_has_expectations() -> None:
    records = [r["record"] for g in yaml.safe_load(render_alert_rules(cluster_name=CLUSTER))["groups"]
               if g["name"] == RECORDING_GROUP for r in g["rules"]]
    for version in TESTED_VERSIONS:
        assert sorted(_expected_records(version)) == sorted(records), version


def _record_test(version: str, records: dict[str, list[tuple[dict[str, str], float]]],
                 states: list[FixtureCluster] | list[MixedCluster], eval_time: str = "10m") -> dict[str, Any]:
    return {
        "interval": "1m",
        "input_series": input_series(states),
        "promql_expr_test": [
            {"expr": f'{record}{{cluster="{CLUSTER}"}}', "eval_time": eval_time,
             "exp_samples": [{"labels": _series_text(record, {"cluster": CLUSTER, **labels}), "value": value}
                             for labels, value in expected]}
            for record, expected in records.items()
        ],
    }


@requires_promtool
@pytest.mark.parametrize("version", TESTED_VERSIONS)
def test_recording_rules_normalise_the_release(tmp_path: Path, version: str) -> None:
    _run(tmp_path, [_record_test(version, _expected_records(version), timeline(version))])


@requires_promtool
@pytest.mark.parametrize("version", TESTED_VERSIONS)
def test_recording_rules_under_faults(tmp_path: Path, version: str) -> None:
    def faults(state: FixtureCluster) -> None:
        state.bad_disk = ("datanode-1", "/cfs/disk2")
        state.lost_disk = ("datanode-2", "/cfs/disk3")
        state.inactive_datanode = "datanode-2"
        state.inactive_metanode = "metanode-1"

    lost = [({"addr": "10.0.1.2:17310", "disk": "/cfs/disk3"}, 1)] if version == "3.5.2" else []
    inactive_info = [] if version in V2 else [({"addr": "10.0.1.2:17310"}, 1)]
    records = {
        "chubaofs:disk_error": [({"addr": "10.0.1.1:17310", "disk": "/cfs/disk2"}, 1)],
        "chubaofs:disk_lost": lost,
        "chubaofs:datanodes_inactive:count": [({}, 1)],
        "chubaofs:datanode_inactive:info": inactive_info,
        # inactive_mataNodes_info (sic) up to 3.5.1, inactive_metaNodes_info from 3.5.2
        "chubaofs:metanode_inactive:info": [] if version in V2 else [({"addr": "10.0.2.1:17210"}, 1)],
        "chubaofs:metanodes_inactive:count": [({}, 1)],
    }
    small = {"chubaofs:datanodes_capacity_total:bytes": [({}, 0)],
             "chubaofs:datanodes_capacity_used:ratio": [],
             "chubaofs:master_no_leader": [({}, 0)]}

    def make_small(state: FixtureCluster) -> None:
        state.small = True

    def no_leader(state: FixtureCluster) -> None:
        state.leader = None

    _run(tmp_path, [
        _record_test(version, records, timeline(version, faults)),
        _record_test(version, small, timeline(version, healthy=make_small)),
        _record_test(version, {"chubaofs:master_no_leader": [({}, 1)], "chubaofs:datanodes:count": [({}, 0)],
                               "chubaofs:volume_capacity:bytes": []}, timeline(version, no_leader)),
    ])


# --- alerts ------------------------------------------------------------------------------------


@dataclass
class Fault:
    id: str
    apply: Callable[[FixtureCluster], None]
    expect: Callable[[str], dict[str, list[Expect]]]  # version -> alertname -> expected alerts
    eval_time: str = "20m"
    extra: dict[str, Any] = field(default_factory=dict)


def _cluster_alert(value: float, severity: str = "critical", **labels: str) -> Expect:
    return Expect({"cluster": CLUSTER, "severity": severity, **labels}, value)


def _inactive_datanode(state: FixtureCluster) -> None:
    state.inactive_datanode = "datanode-2"


def _inactive_metanode(state: FixtureCluster) -> None:
    state.inactive_metanode = "metanode-1"


def _bad_disk(state: FixtureCluster) -> None:
    state.bad_disk = ("datanode-1", "/cfs/disk2")


def _lost_disk(state: FixtureCluster) -> None:
    state.lost_disk = ("datanode-1", "/cfs/disk2")


def _volume_full(state: FixtureCluster) -> None:
    state.volume_full = "logs"


def _no_leader(state: FixtureCluster) -> None:
    state.leader = None


def _target_down(state: FixtureCluster) -> None:
    state.daemons["datanode-2"].healthy = False


FAULTS = [
    Fault("inactive-datanode", _inactive_datanode, lambda v: {
        "ChubaoFSDataNodesInactive": [_cluster_alert(1)],
        "ChubaoFSDataNodesNotWritable": [] if v in V2 else [_cluster_alert(1, "warning")],
    }),
    Fault("inactive-metanode", _inactive_metanode, lambda v: {"ChubaoFSMetaNodesInactive": [_cluster_alert(1)]}),
    Fault("disk-error", _bad_disk, lambda v: {
        "ChubaoFSDiskError": [_cluster_alert(1, "warning", addr="10.0.1.1:17310", disk="/cfs/disk2")],
    }),
    Fault("disk-lost", _lost_disk, lambda v: {
        "ChubaoFSDiskLost": [_cluster_alert(1, addr="10.0.1.1:17310", disk="/cfs/disk2")] if v == "3.5.2" else [],
    }),
    Fault("volume-full", _volume_full, lambda v: {
        "ChubaoFSVolumeUsageHigh": [_cluster_alert(0.95, "warning", volName="logs")],
    }),
    Fault("no-leader", _no_leader, lambda v: {"ChubaoFSMasterNoLeader": [_cluster_alert(1)]}),
    Fault("target-down", _target_down, lambda v: {
        "ChubaoFSTargetDown": [Expect({"job": "chubaofs", "instance": "10.0.1.2:17320", "app": "cfs",
                                       "role": "dataNode", "cluster": CLUSTER,
                                       "consul_service_id": "cfs_dataNode_10.0.1.2_17320",
                                       "severity": "warning"}, 0)],
    }),
]

HEALTHY: dict[str, Callable[[FixtureCluster], None] | None] = {
    "normal": None,
    "small-cluster": lambda s: setattr(s, "small", True),
    "no-volumes": lambda s: setattr(s, "volumes_removed", True),
    "before-first-refresh": lambda s: setattr(s, "refreshed", False),
}


def _alert_test(states: list[FixtureCluster] | list[MixedCluster], eval_time: str, expected: dict[str, list[Expect]],
                rule_text: str) -> dict[str, Any]:
    return {
        "interval": "1m",
        "input_series": input_series(states),
        "alert_rule_test": [
            {"eval_time": eval_time, "alertname": name,
             "exp_alerts": [_expected_alert(rule_text, name, e) for e in expected.get(name, [])]}
            for name in BUILTIN_ALERTS if name in expected or not expected
        ],
    }


@requires_promtool
@pytest.mark.parametrize("version", TESTED_VERSIONS)
def test_no_alert_fires_on_a_healthy_cluster(tmp_path: Path, version: str) -> None:
    rule_text = render_alert_rules(cluster_name=CLUSTER, scrape_interval="30s")
    tests = [_alert_test(timeline(version, healthy=h), "25m", {}, rule_text) for h in HEALTHY.values()]
    _run(tmp_path, tests)


@requires_promtool
@pytest.mark.parametrize("version", TESTED_VERSIONS)
def test_every_alert_fires_on_its_fault(tmp_path: Path, version: str) -> None:
    rule_text = render_alert_rules(cluster_name=CLUSTER, scrape_interval="30s")
    tests = [_alert_test(timeline(version, fault.apply), fault.eval_time, fault.expect(version), rule_text)
             for fault in FAULTS]
    _run(tmp_path, tests)


def test_faults_cover_every_chubaofs_alert_with_a_signal_on_some_release() -> None:
    fired = {name for fault in FAULTS for v in TESTED_VERSIONS for name, e in fault.expect(v).items() if e}
    chubaofs_alerts = {a for a in BUILTIN_ALERTS if a not in (
        "ChubaoFSConsulDown", "ChubaoFSAgentDown", "ChubaoFSNodeDiskOffline", "ChubaoFSNodeDiskIOErrors",
        "ChubaoFSClusterCapacityHigh", "ChubaoFSCapacityPredictedFull")}
    # Those left out are covered release-independently by test_promtool_alerts.py (agent, Consul,
    # capacity and meta node gauges have the same name and unit on every release).
    assert chubaofs_alerts <= fired


# --- a rolling upgrade: daemons of two releases side by side ------------------------------------

UPGRADES = {
    # The leader (master-1) is still on 2.4.0; the follower and one node of each kind run 3.3.0.
    "leader-old": ("2.4.0", "3.3.0", {"master-2", "datanode-2", "metanode-2"}),
    # The leader already runs 3.3.0; the follower and the other nodes are still on 2.4.0.
    "leader-new": ("2.4.0", "3.3.0", {"master-1", "datanode-1", "metanode-1"}),
}


def _mixed_timeline(key: str, **faults: Any) -> list[MixedCluster]:
    old, new, upgraded = UPGRADES[key]
    states = []
    for step in range(STEPS):
        state = MixedCluster(old, new, upgraded, cluster=CLUSTER)
        if faults and step >= FAULT_FROM:
            state.set(**faults)
        states.append(state)
    return states


@requires_promtool
@pytest.mark.parametrize("key", sorted(UPGRADES))
def test_a_cluster_in_a_rolling_upgrade(tmp_path: Path, key: str) -> None:
    rule_text = render_alert_rules(cluster_name=CLUSTER, scrape_interval="30s")
    leader_new = key == "leader-new"
    healthy_records: dict[str, list[tuple[dict[str, str], float]]] = {
        "chubaofs:master_no_leader": [({}, 0)],
        "chubaofs:datanodes:count": [({}, 2)],
        "chubaofs:volume_capacity:bytes": [({"volName": "images"}, 200 * GIB), ({"volName": "logs"}, 100 * GIB)],
        # From the 3.3.0 leader's vol_meta_count, or else counted by partition over 2.4.0 and
        # 3.3.0 meta nodes (partid only / partid and vol), each partition once.
        "chubaofs:inodes:count": [({}, 1500)],
        "chubaofs:volume_inodes:count": [({"volName": "images"}, 300), ({"volName": "logs"}, 1200)] if leader_new else [],
        # A 3.3.0 follower publishes the leader-only gauges as 0, so a gauge the 2.4.0 leader lacks
        # reads 0 (not absent) until the leader is upgraded; it can never raise an alert.
        "chubaofs:datanodes_not_writable:count": [({}, 0)],
    }
    no_leader = _mixed_timeline(key, leader=None)
    _run(tmp_path, [
        _record_test(key, healthy_records, _mixed_timeline(key)),
        _record_test(key, {"chubaofs:disk_error": [({"addr": "10.0.1.1:17310", "disk": "/cfs/disk2"}, 1)]},
                     _mixed_timeline(key, bad_disk=("datanode-1", "/cfs/disk2"))),
        _alert_test(_mixed_timeline(key), "25m", {}, rule_text),
        _alert_test(no_leader, "20m", {"ChubaoFSMasterNoLeader": [_cluster_alert(1)]}, rule_text),
    ])
