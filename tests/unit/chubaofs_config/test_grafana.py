"""Grafana provisioning renderers and the shipped dashboards."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

from rook_py.chubaofs.monitor.config.grafana import (
    DATASOURCE_UID,
    dashboards,
    render_dashboard_provider,
    render_datasources,
)
from tests.tools.dashboard_queries import SAMPLE_VARIABLES, all_queries, panel_queries, panels, variables_used

# Metric names the dashboards may use, confirmed against upstream sources:
# cubefs/cubefs master/monitor_metrics.go (cfs_master_*), the community dashboard of
# cubefs/cubefs-helm (cfs_dataNode_dataPartitionIOBytes, cfs_metanode_mp{Inode,Dentry}Count), its newer
# name in datanode/metrics.go (dp_io_bytes under the cfs_dataNode namespace),
# the node-agent contract (rook_chubaofs_node_*), Prometheus itself (up, ALERTS) and the Go client's
# process collector (process_*).
KNOWN_METRICS = {
    "cfs_master_dataNodes_count", "cfs_master_metaNodes_count", "cfs_master_vol_count",
    "cfs_master_dataNodes_total_GB", "cfs_master_dataNodes_used_GB", "cfs_master_dataNodes_increased_GB",
    "cfs_master_metaNodes_total_GB", "cfs_master_metaNodes_used_GB", "cfs_master_metaNodes_increased_GB",
    "cfs_master_dataNodes_inactive", "cfs_master_metaNodes_inactive", "cfs_master_masters_inactive",
    "cfs_master_master_no_leader", "cfs_master_disk_error", "cfs_master_disk_lost",
    "cfs_master_dataNodes_not_writable", "cfs_master_metaNodes_not_writable",
    "cfs_master_inactive_dataNodes_info", "cfs_master_inactive_metaNodes_info",
    "cfs_master_vol_total_GB", "cfs_master_vol_used_GB", "cfs_master_vol_usage_ratio",
    "cfs_dataNode_dataPartitionIOBytes", "cfs_dataNode_dp_io_bytes", "cfs_metanode_mpInodeCount", "cfs_metanode_mpDentryCount",
    "rook_chubaofs_node_disk_present", "rook_chubaofs_node_disk_online", "rook_chubaofs_node_disk_size_bytes",
    "rook_chubaofs_node_disk_io_errors_total", "rook_chubaofs_node_path_capacity_bytes",
    "rook_chubaofs_node_path_used_bytes", "rook_chubaofs_node_path_available_bytes",
    "up", "ALERTS", "process_start_time_seconds", "process_resident_memory_bytes", "process_cpu_seconds_total",
}
_METRIC = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)\s*\{")

DASHBOARDS = {name: json.loads(text) for name, text in dashboards().items()}


def test_datasource_is_the_default_prometheus_with_a_fixed_uid() -> None:
    doc = yaml.safe_load(render_datasources(prometheus_url="http://mon-prometheus.ns:9090"))
    (ds,) = doc["datasources"]
    assert doc["apiVersion"] == 1
    assert ds["uid"] == DATASOURCE_UID and ds["type"] == "prometheus" and ds["access"] == "proxy"
    assert ds["url"] == "http://mon-prometheus.ns:9090" and ds["isDefault"] is True


def test_datasource_url_must_be_http() -> None:
    with pytest.raises(ValueError, match="http"):
        render_datasources(prometheus_url="mon-prometheus:9090")


def test_dashboard_provider_reads_the_mounted_directory() -> None:
    doc = yaml.safe_load(render_dashboard_provider(path="/dash"))
    (provider,) = doc["providers"]
    assert provider["type"] == "file" and provider["options"]["path"] == "/dash"
    assert yaml.safe_load(render_dashboard_provider())["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    with pytest.raises(ValueError, match="absolute"):
        render_dashboard_provider(path="relative")


def test_three_dashboards_with_unique_uids() -> None:
    assert set(DASHBOARDS) >= {"chubaofs-cluster-overview.json", "chubaofs-nodes-disks.json", "chubaofs-volumes.json"}
    uids = [d["uid"] for d in DASHBOARDS.values()]
    assert len(set(uids)) == len(uids)
    assert all(d["title"].startswith("ChubaoFS / ") for d in DASHBOARDS.values())


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_every_panel_and_variable_uses_the_provisioned_datasource(name: str) -> None:
    dashboard = DASHBOARDS[name]
    for panel in panels(dashboard):
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": DATASOURCE_UID}, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == DATASOURCE_UID
    for variable in dashboard["templating"]["list"]:
        assert variable["datasource"]["uid"] == DATASOURCE_UID


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_queries_use_only_known_metric_names(name: str) -> None:
    for where, expr in all_queries(DASHBOARDS[name]):
        for metric in _METRIC.findall(expr):
            if metric in {"by", "without", "on", "ignoring", "group_left", "group_right"}:
                continue
            assert metric in KNOWN_METRICS, f"{name} {where}: unknown metric {metric}"


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_every_variable_used_is_defined(name: str) -> None:
    dashboard = DASHBOARDS[name]
    defined = {v["name"] for v in dashboard["templating"]["list"]} | {k for k in SAMPLE_VARIABLES if k.startswith("__")}
    for where, expr in panel_queries(dashboard):
        assert variables_used(expr) <= defined, f"{name} {where}"


def test_template_variables_follow_the_community_dashboard() -> None:
    names: set[str] = set()
    for dashboard in DASHBOARDS.values():
        names |= {v["name"] for v in dashboard["templating"]["list"]}
        assert dashboard["templating"]["list"][0]["name"] == "cluster"
    assert {"cluster", "role", "vol", "instance"} <= names


def test_cluster_scoped_queries_filter_on_the_cluster_variable() -> None:
    for name, dashboard in DASHBOARDS.items():
        for where, expr in panel_queries(dashboard):
            if re.search(r"\bcfs_|rook_chubaofs_|\bup\{", expr):
                assert 'cluster="$cluster"' in expr, f"{name} {where}"


def test_panels_do_not_overlap() -> None:
    for name, dashboard in DASHBOARDS.items():
        cells: set[tuple[int, int]] = set()
        for panel in panels(dashboard):
            g: dict[str, Any] = panel["gridPos"]
            assert g["x"] + g["w"] <= 24, f"{name} {panel['title']}"
            for x in range(g["x"], g["x"] + g["w"]):
                for y in range(g["y"], g["y"] + g["h"]):
                    assert (x, y) not in cells, f"{name}: {panel['title']} overlaps"
                    cells.add((x, y))


def test_dashboards_are_returned_sorted_and_stable() -> None:
    assert list(dashboards()) == sorted(dashboards())
    assert dashboards() == dashboards()
