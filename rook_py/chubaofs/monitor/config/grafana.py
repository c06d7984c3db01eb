"""Grafana provisioning: the Prometheus datasource, the dashboard provider, and the dashboards.

Dashboards ship as JSON package data (rook_py/chubaofs/monitor/dashboards/*.json). Every panel
and template variable references the provisioned datasource by its fixed uid DATASOURCE_UID, so
dashboards work without a datasource picker and survive datasource renames.
"""

from __future__ import annotations

from importlib import resources

from rook_py.chubaofs.monitor.config._render import JSON, dump_yaml

DATASOURCE_NAME = "Prometheus"
DATASOURCE_UID = "chubaofs-prometheus"
DASHBOARD_FOLDER = "ChubaoFS"


def render_datasources(*, prometheus_url: str) -> str:
    """provisioning/datasources/chubaofs.yaml: one default Prometheus datasource (proxy access)."""
    if not prometheus_url.startswith(("http://", "https://")):
        raise ValueError(f"prometheus_url must be an http(s) URL, got {prometheus_url!r}")
    datasource: JSON = {
        "name": DATASOURCE_NAME,
        "uid": DATASOURCE_UID,
        "type": "prometheus",
        "access": "proxy",
        "url": prometheus_url,
        "isDefault": True,
        # Provisioned means owned by the operator: UI edits would be lost on the next restart.
        "editable": False,
        "jsonData": {"httpMethod": "POST"},
    }
    return dump_yaml({"apiVersion": 1, "datasources": [datasource]})


def render_dashboard_provider(*, path: str = "/var/lib/grafana/dashboards") -> str:
    """provisioning/dashboards/chubaofs.yaml: a file provider reading the mounted dashboards dir.

    The directory is mounted from a ConfigMap (never by subPath), so kubelet refreshes it and the
    provider picks up new versions on its update interval without a Grafana restart.
    """
    if not path.startswith("/"):
        raise ValueError(f"dashboard path must be absolute, got {path!r}")
    provider: JSON = {
        "name": "chubaofs",
        "orgId": 1,
        "folder": DASHBOARD_FOLDER,
        "type": "file",
        "disableDeletion": True,
        "allowUiUpdates": False,
        "updateIntervalSeconds": 30,
        "options": {"path": path, "foldersFromFilesStructure": False},
    }
    return dump_yaml({"apiVersion": 1, "providers": [provider]})


def dashboards() -> dict[str, str]:
    """Shipped dashboards: file name -> JSON text, sorted by file name."""
    folder = resources.files("rook_py.chubaofs.monitor").joinpath("dashboards")
    found = {
        entry.name: entry.read_text(encoding="utf-8")
        for entry in folder.iterdir()
        if entry.is_file() and entry.name.endswith(".json")
    }
    return dict(sorted(found.items()))
