"""Built-in ChubaoFS rules (a Prometheus rule file): recording rules, then alerts.

The first group, ``chubaofs.normalise``, records the ``chubaofs:*`` series of
:mod:`rook_py.chubaofs.monitor.config.normalise`, which hide what differs between ChubaoFS 2.x
and CubeFS 3.x (metric names, label names, units). Every alert and dashboard is written against
those series (and ``up``), never against a release's own metric names, so one rule file serves
every supported release and a cluster in the middle of a rolling upgrade. Where a release has
no source for a series the series is absent and the alerts built on it stay silent;
:func:`alert_availability` says which alerts that is, per release.

Node-agent metrics (``rook_chubaofs_node_*``) come from the operator's own agent, labelled
``node`` and ``device``. Target labels ``cluster``, ``role``, ``node`` come from Prometheus
relabeling (see prometheus.py); job names are the JOB_* constants there.

Every alert has a ``severity`` label and ``summary`` / ``description`` annotations. Alerts that
exist at two severities (cluster capacity) share one alert name so Alertmanager's default
inhibition (critical silences warning, equal alertname+cluster) suppresses the duplicate.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from rook_py.chubaofs.monitor.config import normalise
from rook_py.chubaofs.monitor.config._render import (
    JSON,
    dump_yaml,
    promql_string,
    require_cluster_name,
    require_duration,
)
from rook_py.chubaofs.monitor.config.prometheus import JOB_AGENT, JOB_CHUBAOFS, JOB_CONSUL
from rook_py.chubaofs.versions import Release

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
            f"chubaofs:master_no_leader{{{sel}}} > 0",
            "2m",
            "critical",
            "ChubaoFS cluster {{ $labels.cluster }} has no master leader",
            "The masters of cluster {{ $labels.cluster }} have no raft leader (3.3.0+: a follower "
            "reports it; older releases: node daemons are up but no master publishes the leader's "
            "node counts). Metadata changes, volume creation and failover are blocked.",
        ),
        _alert(
            "ChubaoFSMetaNodesInactive",
            f"chubaofs:metanodes_inactive:count{{{sel}}} > 0",
            "2m",
            "critical",
            "{{ $value }} inactive meta node(s) in ChubaoFS cluster {{ $labels.cluster }}",
            "The master leader reports {{ $value }} meta node(s) without heartbeat. Meta partitions "
            "on them lose replicas; check the meta node pods and their hosts.",
        ),
        _alert(
            "ChubaoFSDataNodesInactive",
            f"chubaofs:datanodes_inactive:count{{{sel}}} > 0",
            "2m",
            "critical",
            "{{ $value }} inactive data node(s) in ChubaoFS cluster {{ $labels.cluster }}",
            "The master leader reports {{ $value }} data node(s) without heartbeat. Data partitions "
            "on them lose replicas; check the data node pods and their hosts.",
        ),
        _alert(
            "ChubaoFSDiskError",
            f"chubaofs:disk_error{{{sel}}} > 0",
            "1m",
            "warning",
            "Disk error on data node {{ $labels.addr }}",
            "Data node {{ $labels.addr }} reports disk {{ $labels.disk }} as bad in cluster "
            "{{ $labels.cluster }}. Decommission the disk and replace it.",
        ),
        _alert(
            "ChubaoFSDiskLost",
            f"chubaofs:disk_lost{{{sel}}} > 0",
            "1m",
            "critical",
            "Disk lost on data node {{ $labels.addr }}",
            "Data node {{ $labels.addr }} lost disk {{ $labels.disk }} in cluster "
            "{{ $labels.cluster }}; its partitions are served from the remaining replicas only.",
        ),
        _alert(
            "ChubaoFSDataNodesNotWritable",
            f"chubaofs:datanodes_not_writable:count{{{sel}}} > 0",
            "5m",
            "warning",
            "{{ $value }} data node(s) not writable in ChubaoFS cluster {{ $labels.cluster }}",
            "The master leader reports {{ $value }} data node(s) that accept no new writes (full, "
            "read-only or decommissioning). Add capacity or investigate the nodes.",
        ),
    ]


def _capacity_rules(sel: str, t: Mapping[str, float]) -> list[JSON]:
    used = f"chubaofs:datanodes_capacity_used:bytes{{{sel}}}"
    total = f"chubaofs:datanodes_capacity_total:bytes{{{sel}}}"
    ratio = f"100 * chubaofs:datanodes_capacity_used:ratio{{{sel}}}"
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
            # The recorded series is already the max across masters, so a leader change is no jump.
            f"predict_linear({used}[6h], {seconds})\n  >= {total}\nand\n{total} > 0",
            "30m",
            "warning",
            "ChubaoFS cluster {{ $labels.cluster }} is predicted to fill up within "
            f"{_number(days)} days",
            f"At the growth rate of the last 6 hours, the data nodes of cluster {{{{ $labels.cluster }}}} "
            f"run out of space within {_number(days)} days.",
        ),
        _alert(
            "ChubaoFSVolumeUsageHigh",
            f"chubaofs:volume_usage:ratio{{{sel}}} > {volume_ratio}",
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


#: Recording-rule group name; alerts come after it in the same file.
RECORDING_GROUP = "chubaofs.normalise"

_DURATION_PART = re.compile(r"(\d+)(ms|y|w|d|h|m|s)")
_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def rate_window(scrape_interval: str) -> str:
    """The range of the recorded rates: four scrape intervals (what Grafana's $__rate_interval
    gives), so a rate survives a missed scrape; never below 4 s."""
    seconds = sum(int(n) * _SECONDS[unit] for n, unit in _DURATION_PART.findall(require_duration(
        scrape_interval, "scrape_interval")))
    return f"{max(4, round(4 * seconds))}s"


def _recording_rules(sel: str, window: str) -> list[JSON]:
    return [{"record": s.record, "expr": normalise.render(s, sel, window)} for s in normalise.SIGNALS]


def alert_signals() -> dict[str, tuple[str, ...]]:
    """alert name -> the ``chubaofs:*`` series its expression reads (empty: only ``up`` or agent
    metrics, which every release has)."""
    return dict(_alert_signals())


@functools.cache
def _alert_signals() -> dict[str, tuple[str, ...]]:
    result: dict[str, tuple[str, ...]] = {}
    for group in yaml_groups(render_alert_rules(cluster_name="x")):
        for rule in group["rules"]:
            if "alert" in rule:
                found = {signal.record for signal in normalise.records_in(rule["expr"])}
                result[rule["alert"]] = tuple(sorted(set(result.get(rule["alert"], ())) | found))
    return result


def yaml_groups(text: str) -> list[JSON]:
    groups: list[JSON] = yaml.safe_load(text)["groups"]
    return groups


def alert_availability(release: Release) -> dict[str, str]:
    """alert name -> "" when it has a real signal on ``release``, else why it cannot fire there;
    a caveat of the series it reads is appended after "; " when it has one."""
    result: dict[str, str] = {}
    for alert, records in alert_signals().items():
        missing = [normalise.BY_RECORD[r] for r in records if normalise.BY_RECORD[r].since > release]
        if missing:
            since = min(s.since for s in missing)
            result[alert] = f"not available before {since.display}"
            continue
        caveats = [normalise.caveat(normalise.BY_RECORD[r], release) for r in records]
        result[alert] = "; ".join(c for c in caveats if c)
    return result


def render_alert_rules(
    *,
    cluster_name: str,
    thresholds: Mapping[str, float] | None = None,
    extra_rules: Sequence[JSON] = (),
    scrape_interval: str = "30s",
) -> str:
    """Render the rule file: the normalising recording rules, every built-in alert for
    `cluster_name`, then `extra_rules`.

    `thresholds` overrides DEFAULT_THRESHOLDS key by key (unknown keys and out-of-range values
    raise ValueError). `scrape_interval` sets the window of the recorded rates (rate_window).
    `extra_rules` are whole rule groups appended verbatim; a group name that clashes with a
    built-in or earlier group raises ValueError (Prometheus refuses duplicates).
    """
    require_cluster_name(cluster_name)
    t = resolve_thresholds(thresholds)
    cluster_sel = f"cluster={promql_string(cluster_name)}"
    groups: list[JSON] = [
        {"name": RECORDING_GROUP, "rules": _recording_rules(cluster_sel, rate_window(scrape_interval))},
        {"name": "chubaofs.cluster", "rules": _cluster_rules(cluster_sel)},
        {"name": "chubaofs.capacity", "rules": _capacity_rules(cluster_sel, t)},
        {"name": "chubaofs.targets", "rules": _target_rules(cluster_sel, t)},
        {"name": "chubaofs.nodes", "rules": _node_rules(cluster_sel)},
    ]
    groups.extend(_extra_groups(extra_rules, {g["name"] for g in groups}))
    return dump_yaml({"groups": groups})
