"""Built-in ChubaoFS alert rules (a Prometheus rule file).

Metric facts the expressions rely on (cubefs/cubefs master/monitor_metrics.go):

* Cluster gauges (``cfs_master_dataNodes_*``, ``cfs_master_metaNodes_*``, ``cfs_master_vol_*``,
  ``cfs_master_disk_error``, ...) are computed on the raft leader only; followers set them to 0 or
  delete them every minute. Every expression therefore aggregates across masters with ``max``,
  which picks the leader's value and survives leader changes.
* ``cfs_master_master_no_leader`` is set by followers (1 when they know no leader) and reset to 0
  on the leader. It exists from v3 on; for v2 masters, a cluster whose masters all publish a zero
  data-node capacity is treated as leaderless too (no master is computing the leader gauges).
* ``cfs_master_vol_usage_ratio`` is a 0..1 ratio; ``cfs_master_dataNodes_{used,total}_GB`` are GB.
* ``cfs_master_disk_error`` / ``cfs_master_disk_lost`` carry ``addr`` (data node) and ``path``.

Node-agent metrics (``rook_chubaofs_node_*``) come from the operator's own agent, labelled
``node`` and ``device``. Target labels ``cluster``, ``role``, ``node`` come from Prometheus
relabeling (see prometheus.py); job names are the JOB_* constants there.

Every rule has a ``severity`` label and ``summary`` / ``description`` annotations. Alerts that
exist at two severities (cluster capacity) share one alert name so Alertmanager's default
inhibition (critical silences warning, equal alertname+cluster) suppresses the duplicate.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from rook_py.chubaofs.monitor.config._render import JSON, dump_yaml, promql_string, require_cluster_name
from rook_py.chubaofs.monitor.config.prometheus import JOB_AGENT, JOB_CHUBAOFS, JOB_CONSUL

DEFAULT_THRESHOLDS: dict[str, float] = {
    "capacityWarningPercent": 80,
    "capacityCriticalPercent": 90,
    "volumeUsagePercent": 90,
    "predictFullDays": 7,
    "targetDownMinutes": 5,
}

#: Inclusive bounds per threshold; the CRD schema enforces the same, this is the second line.
_BOUNDS: dict[str, tuple[float, float]] = {
    "capacityWarningPercent": (1, 100),
    "capacityCriticalPercent": (1, 100),
    "volumeUsagePercent": (1, 100),
    "predictFullDays": (1, 365),
    "targetDownMinutes": (1, 1440),
}

#: Names of the built-in alerts, in rule-file order. Tests iterate over this list.
BUILTIN_ALERTS = (
    "ChubaoFSMasterNoLeader",
    "ChubaoFSMetaNodesInactive",
    "ChubaoFSDataNodesInactive",
    "ChubaoFSDiskError",
    "ChubaoFSDiskLost",
    "ChubaoFSDataNodesNotWritable",
    "ChubaoFSClusterCapacityHigh",
    "ChubaoFSCapacityPredictedFull",
    "ChubaoFSVolumeUsageHigh",
    "ChubaoFSTargetDown",
    "ChubaoFSConsulDown",
    "ChubaoFSAgentDown",
    "ChubaoFSNodeDiskOffline",
    "ChubaoFSNodeDiskIOErrors",
)


def _number(value: float) -> str:
    """Render a number for PromQL / annotations without exponents: 80.0 -> '80', 0.95 -> '0.95'."""
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.6f}".rstrip("0").rstrip(".")


def resolve_thresholds(thresholds: Mapping[str, float] | None) -> dict[str, float]:
    """Merge `thresholds` over DEFAULT_THRESHOLDS, rejecting unknown keys and out-of-range values."""
    merged = dict(DEFAULT_THRESHOLDS)
    for key, value in (thresholds or {}).items():
        if key not in DEFAULT_THRESHOLDS:
            raise ValueError(f"unknown alert threshold {key!r}; known: {', '.join(DEFAULT_THRESHOLDS)}")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"alert threshold {key!r} must be a number, got {value!r}")
        low, high = _BOUNDS[key]
        if not low <= value <= high:
            raise ValueError(f"alert threshold {key!r}={value} is outside [{_number(low)}, {_number(high)}]")
        merged[key] = float(value)
    if merged["capacityWarningPercent"] >= merged["capacityCriticalPercent"]:
        raise ValueError("capacityWarningPercent must be lower than capacityCriticalPercent")
    return merged


def _alert(name: str, expr: str, for_: str, severity: str, summary: str, description: str) -> JSON:
    rule: JSON = {"alert": name, "expr": expr}
    if for_:
        rule["for"] = for_
    rule["labels"] = {"severity": severity}
    rule["annotations"] = {"summary": summary, "description": description}
    return rule


def _cluster_rules(sel: str) -> list[JSON]:
    return [
        _alert(
            "ChubaoFSMasterNoLeader",
            # v3 masters publish the answer; for v2 masters (no such gauge) a zero capacity on
            # every master means none of them is computing the leader-only gauges.
            f"max by (cluster) (cfs_master_master_no_leader{{{sel}}}) > 0\n"
            f"or\n"
            f"(\n  max by (cluster) (cfs_master_dataNodes_total_GB{{{sel}}}) == 0\n"
            f"  unless on (cluster)\n  max by (cluster) (cfs_master_master_no_leader{{{sel}}})\n)",
            "2m",
            "critical",
            "ChubaoFS cluster {{ $labels.cluster }} has no master leader",
            "Masters of cluster {{ $labels.cluster }} report no raft leader (or no master publishes the "
            "leader-only cluster gauges). Metadata changes, volume creation and failover are blocked.",
        ),
        _alert(
            "ChubaoFSMetaNodesInactive",
            f"max by (cluster) (cfs_master_metaNodes_inactive{{{sel}}}) > 0",
            "2m",
            "critical",
            "{{ $value }} inactive meta node(s) in ChubaoFS cluster {{ $labels.cluster }}",
            "The master leader reports {{ $value }} meta node(s) without heartbeat. Meta partitions "
            "on them lose replicas; check the meta node pods and their hosts.",
        ),
        _alert(
            "ChubaoFSDataNodesInactive",
            f"max by (cluster) (cfs_master_dataNodes_inactive{{{sel}}}) > 0",
            "2m",
            "critical",
            "{{ $value }} inactive data node(s) in ChubaoFS cluster {{ $labels.cluster }}",
            "The master leader reports {{ $value }} data node(s) without heartbeat. Data partitions "
            "on them lose replicas; check the data node pods and their hosts.",
        ),
        _alert(
            "ChubaoFSDiskError",
            f"max by (cluster, addr, path) (cfs_master_disk_error{{{sel}}}) > 0",
            "1m",
            "warning",
            "Disk error on data node {{ $labels.addr }}",
            "Data node {{ $labels.addr }} reports a bad disk ({{ $labels.path }}) in cluster "
            "{{ $labels.cluster }}. Decommission the disk and replace it.",
        ),
        _alert(
            "ChubaoFSDiskLost",
            f"max by (cluster, addr, path) (cfs_master_disk_lost{{{sel}}}) > 0",
            "1m",
            "critical",
            "Disk lost on data node {{ $labels.addr }}",
            "Data node {{ $labels.addr }} lost a disk ({{ $labels.path }}) in cluster "
            "{{ $labels.cluster }}; its partitions are served from the remaining replicas only.",
        ),
        _alert(
            "ChubaoFSDataNodesNotWritable",
            f"max by (cluster) (cfs_master_dataNodes_not_writable{{{sel}}}) > 0",
            "5m",
            "warning",
            "{{ $value }} data node(s) not writable in ChubaoFS cluster {{ $labels.cluster }}",
            "The master leader reports {{ $value }} data node(s) that accept no new writes (full, "
            "read-only or decommissioning). Add capacity or investigate the nodes.",
        ),
    ]


def _capacity_rules(sel: str, t: Mapping[str, float]) -> list[JSON]:
    used = f"max by (cluster) (cfs_master_dataNodes_used_GB{{{sel}}})"
    total = f"max by (cluster) (cfs_master_dataNodes_total_GB{{{sel}}})"
    ratio = f"100 * {used}\n  / {total}"
    warn, crit = _number(t["capacityWarningPercent"]), _number(t["capacityCriticalPercent"])
    days = t["predictFullDays"]
    seconds = _number(days * 86400)
    volume_ratio = _number(t["volumeUsagePercent"] / 100)
    return [
        _alert(
            "ChubaoFSClusterCapacityHigh",
            # The warning stops where critical starts so exactly one of the two fires.
            f"{ratio} > {warn}\nand\n{ratio} <= {crit}",
            "10m",
            "warning",
            "ChubaoFS cluster {{ $labels.cluster }} data capacity is {{ $value | printf \"%.1f\" }}% used",
            f"More than {warn}% of the data nodes' capacity is used. Add data nodes or disks before "
            "writes start failing.",
        ),
        _alert(
            "ChubaoFSClusterCapacityHigh",
            f"{ratio} > {crit}",
            "5m",
            "critical",
            "ChubaoFS cluster {{ $labels.cluster }} data capacity is {{ $value | printf \"%.1f\" }}% used",
            f"More than {crit}% of the data nodes' capacity is used. Data nodes stop accepting writes "
            "when full; add capacity now.",
        ),
        _alert(
            "ChubaoFSCapacityPredictedFull",
            # Aggregate across masters first (subquery), then extrapolate: a per-series
            # predict_linear would see a jump from 0 to the full value at every leader change.
            f"predict_linear(({used})[6h:5m], {seconds})\n  >= {total}\nand\n{total} > 0",
            "30m",
            "warning",
            "ChubaoFS cluster {{ $labels.cluster }} is predicted to fill up within "
            f"{_number(days)} days",
            f"At the growth rate of the last 6 hours, the data nodes of cluster {{{{ $labels.cluster }}}} "
            f"run out of space within {_number(days)} days.",
        ),
        _alert(
            "ChubaoFSVolumeUsageHigh",
            f"max by (cluster, volName) (cfs_master_vol_usage_ratio{{{sel}}}) > {volume_ratio}",
            "10m",
            "warning",
            "Volume {{ $labels.volName }} is {{ $value | humanizePercentage }} full",
            f"Volume {{{{ $labels.volName }}}} of cluster {{{{ $labels.cluster }}}} uses more than "
            f"{_number(t['volumeUsagePercent'])}% of its capacity. Expand the volume or free space.",
        ),
    ]


def _target_rules(cluster_sel: str, t: Mapping[str, float]) -> list[JSON]:
    down_for = f"{_number(t['targetDownMinutes'])}m"
    agent = f'job="{JOB_AGENT}", {cluster_sel}'
    return [
        _alert(
            "ChubaoFSTargetDown",
            f'up{{job="{JOB_CHUBAOFS}", {cluster_sel}}} == 0',
            down_for,
            "warning",
            "ChubaoFS {{ $labels.role }} {{ $labels.instance }} is down",
            "Prometheus cannot scrape {{ $labels.role }} {{ $labels.instance }} of cluster "
            "{{ $labels.cluster }}. ChubaoFS never deregisters from Consul: if the daemon is gone "
            "for good, deregister service {{ $labels.consul_service_id }}.",
        ),
        _alert(
            "ChubaoFSConsulDown",
            f'up{{job="{JOB_CONSUL}", {cluster_sel}}} == 0',
            down_for,
            "critical",
            "Consul {{ $labels.instance }} is down",
            "Prometheus cannot reach Consul {{ $labels.instance }}. Service discovery for ChubaoFS "
            "daemons and node agents is frozen at its last state.",
        ),
        _alert(
            "ChubaoFSAgentDown",
            # The agent job keeps only instances whose Consul check passes, so a dead agent
            # usually vanishes instead of reporting up == 0. Alert on agents seen in the last hour
            # that are not up now; either case is covered.
            f"group by (cluster, node) (max_over_time(up{{{agent}}}[1h]))\n"
            f"unless on (cluster, node)\n"
            f"group by (cluster, node) (up{{{agent}}} == 1)",
            down_for,
            "warning",
            "ChubaoFS node agent on {{ $labels.node }} is down",
            "The rook-chubaofs node agent on {{ $labels.node }} is not scraped (down or failing its "
            "Consul health check). Disk health of that node is no longer monitored.",
        ),
    ]


def _node_rules(sel: str) -> list[JSON]:
    return [
        _alert(
            "ChubaoFSNodeDiskOffline",
            # online is 0 both for a disk the kernel marks offline and for one that vanished
            # (present == 0); either way the ChubaoFS partitions on it are unavailable.
            f"rook_chubaofs_node_disk_online{{{sel}}} == 0",
            "2m",
            "critical",
            "Disk {{ $labels.device }} on {{ $labels.node }} is offline",
            "The node agent reports disk {{ $labels.device }} on node {{ $labels.node }} as not running "
            "(/sys/block/<dev>/device/state) or gone. ChubaoFS partitions on it are unavailable.",
        ),
        _alert(
            "ChubaoFSNodeDiskIOErrors",
            f"increase(rook_chubaofs_node_disk_io_errors_total{{{sel}}}[10m]) > 0",
            "",
            "warning",
            "I/O errors on disk {{ $labels.device }} of {{ $labels.node }}",
            "Disk {{ $labels.device }} on node {{ $labels.node }} logged I/O errors in the last 10 "
            "minutes; it may be failing.",
        ),
    ]


def _extra_groups(extra_rules: Sequence[Any], taken: set[str]) -> list[JSON]:
    groups: list[JSON] = []
    for index, group in enumerate(extra_rules):
        if not isinstance(group, Mapping) or not isinstance(group.get("name"), str):
            raise ValueError(f"extra_rules[{index}] must be a rule group with a name")
        if not isinstance(group.get("rules"), list):
            raise ValueError(f"extra_rules[{index}] ({group['name']}) must have a list of rules")
        if group["name"] in taken:
            raise ValueError(f"extra_rules[{index}]: group name {group['name']!r} is already used")
        taken.add(group["name"])
        groups.append(copy.deepcopy(dict(group)))
    return groups


def render_alert_rules(
    *,
    cluster_name: str,
    thresholds: Mapping[str, float] | None = None,
    extra_rules: Sequence[JSON] = (),
) -> str:
    """Render the rule file with every built-in alert for `cluster_name`, then `extra_rules`.

    `thresholds` overrides DEFAULT_THRESHOLDS key by key (unknown keys and out-of-range values
    raise ValueError). `extra_rules` are whole rule groups appended verbatim; a group name that
    clashes with a built-in or earlier group raises ValueError (Prometheus refuses duplicates).
    """
    require_cluster_name(cluster_name)
    t = resolve_thresholds(thresholds)
    cluster_sel = f"cluster={promql_string(cluster_name)}"
    groups: list[JSON] = [
        {"name": "chubaofs.cluster", "rules": _cluster_rules(cluster_sel)},
        {"name": "chubaofs.capacity", "rules": _capacity_rules(cluster_sel, t)},
        {"name": "chubaofs.targets", "rules": _target_rules(cluster_sel, t)},
        {"name": "chubaofs.nodes", "rules": _node_rules(cluster_sel)},
    ]
    groups.extend(_extra_groups(extra_rules, {g["name"] for g in groups}))
    return dump_yaml({"groups": groups})
