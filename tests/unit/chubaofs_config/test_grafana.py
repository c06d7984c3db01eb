"""Grafana provisioning renderers and the shipped dashboards."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

from rook_py.chubaofs.monitor.config import normalise
from rook_py.chubaofs.monitor.config.grafana import (
    DATASOURCE_UID,
    dashboards,
    render_dashboard_provider,
    render_datasources,
)
from tests.tools.dashboard_queries import SAMPLE_VARIABLES, all_queries, panel_queries, panels, variables_used

# Series the dashboards may use: the normalised chubaofs:* series of the recording rules (never a
# release's own cfs_* names, which differ between ChubaoFS 2.x and CubeFS 3.x), the node-agent
# contract (rook_chubaofs_node_*), Prometheus itself (up, ALERTS) and the Go client's process
# collector (process_*), which every release exports unchanged.
KNOWN_METRICS = set(normalise.BY_RECORD) | {
    "rook_chubaofs_node_disk_present", "rook_chubaofs_node_disk_online", "rook_chubaofs_node_disk_size_bytes",
    "rook_chubaofs_node_disk_io_errors_total", "rook_chubaofs_node_path_capacity_bytes",
    "rook_chubaofs_node_path_used_bytes", "rook_chubaofs_node_path_available_bytes",
    "up", "ALERTS", "process_start_time_seconds", "process_resident_memory_bytes", "process_cpu_seconds_total",
}
_METRIC = re.compile(r"(?<![A-Za-z0-9_:])([A-Za-z_:][A-Za-z0-9_:]*)\s*\{")

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
            if re.search(r"\bcfs_|chubaofs:|rook_chubaofs_|\bup\{", expr):
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


def _panel(dashboards_: dict[str, str], file: str, title: str) -> dict[str, Any]:
    (panel,) = [p for p in panels(json.loads(dashboards_[file])) if p["title"] == title and p["type"] != "row"]
    return panel


def test_a_panel_without_data_on_the_configured_release_says_so() -> None:
    old = dashboards(version="2.4.0")
    lost = _panel(old, "chubaofs-nodes-disks.json", "Lost disks")
    sentence = "Not available on ChubaoFS 2.4.0: needs CubeFS 3.5.2 or later."
    assert lost["fieldConfig"]["defaults"]["noValue"] == sentence and lost["description"].endswith(sentence)
    assert "noValue" not in _panel(dashboards(version="3.5.2"), "chubaofs-nodes-disks.json", "Lost disks")["fieldConfig"]["defaults"]
    # Partly available: the target that has no data is named.
    over_time = _panel(old, "chubaofs-nodes-disks.json", "Disk errors over time")
    assert "noValue" not in over_time["fieldConfig"]["defaults"]
    assert "lost: not available on ChubaoFS 2.4.0 (needs 3.5.2 or later)." in over_time["description"]
    # A caveat that holds only before 3.3.0.
    assert "node daemons scraped" in _panel(old, "chubaofs-cluster-overview.json", "Master leader")["description"]
    assert "node daemons scraped" not in _panel(dashboards(version="3.3.0"), "chubaofs-cluster-overview.json",
                                                "Master leader")["description"]


def test_during_an_upgrade_panels_name_the_data_only_new_daemons_have() -> None:
    mixed = dashboards(version="3.3.0", upgrading_from="2.4.0")
    inactive = _panel(mixed, "chubaofs-nodes-disks.json", "Inactive nodes")
    assert "During the upgrade from ChubaoFS 2.4.0: data only from daemons already on 3.3.0." in inactive["description"]
    assert "During the upgrade" not in _panel(mixed, "chubaofs-volumes.json", "Used and total")["description"]


def test_unsupported_releases_are_refused() -> None:
    with pytest.raises(ValueError, match="not supported"):
        dashboards(version="1.5.0")


def test_every_panel_has_a_description_and_byte_panels_use_byte_units() -> None:
    for name, text in dashboards().items():
        for panel in panels(json.loads(text)):
            if panel["type"] == "row":
                continue
            assert str(panel.get("description", "")).strip(), f"{name}: {panel['title']}"
            exprs = " ".join(t["expr"] for t in panel.get("targets", []))
            unit = panel["fieldConfig"]["defaults"].get("unit")
            if panel["title"].startswith("Days until"):
                assert unit == "d"
            elif ":bytes_per_second" in exprs:
                assert unit == "Bps", f"{name}: {panel['title']}"
            elif ":bytes" in exprs:
                assert unit == "bytes", f"{name}: {panel['title']}"
            elif ":ratio" in exprs:
                assert unit == "percentunit", f"{name}: {panel['title']}"
