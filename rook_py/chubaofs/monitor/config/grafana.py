"""Grafana provisioning: the Prometheus datasource, the dashboard provider, and the dashboards.

Dashboards ship as JSON package data (rook_py/chubaofs/monitor/dashboards/*.json). Every panel
and template variable references the provisioned datasource by its fixed uid DATASOURCE_UID, so
dashboards work without a datasource picker and survive datasource renames.

Panels query the normalised ``chubaofs:*`` series (config/normalise.py). :func:`dashboards` knows
from which release each series has data, so for the release the monitored cluster runs it marks
a panel that cannot have data: its description says so and Grafana shows that sentence instead
of "No data" (``fieldConfig.defaults.noValue``). During a rolling upgrade (``upgrading_from``)
panels whose data only the new release provides say that too.
"""

from __future__ import annotations

import copy
import functools
import json
from importlib import resources
from typing import Any

from rook_py.chubaofs.monitor.config import normalise
from rook_py.chubaofs.monitor.config._render import JSON, dump_yaml
from rook_py.chubaofs.versions import DEFAULT_VERSION, Release, check_supported

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


@functools.cache
def _shipped() -> dict[str, str]:
    folder = resources.files("rook_py.chubaofs.monitor").joinpath("dashboards")
    found = {
        entry.name: entry.read_text(encoding="utf-8")
        for entry in folder.iterdir()
        if entry.is_file() and entry.name.endswith(".json")
    }
    return dict(sorted(found.items()))


def _panels(items: list[JSON]) -> list[JSON]:
    result: list[JSON] = []
    for panel in items:
        result.append(panel)
        result.extend(panel.get("panels", []))
    return result


def target_since(expr: str) -> Release | None:
    """The first release with data for a panel query (None: it reads no normalised series)."""
    return max((r.since for r in normalise.records_in(expr)), default=None)


def panel_availability(panel: JSON, release: Release) -> tuple[bool, list[str]]:
    """(whether the panel can show data on ``release``, notes to add to its description)."""
    notes: list[str] = []
    targets = [t for t in panel.get("targets", []) if t.get("expr")]
    sinces = [target_since(t["expr"]) for t in targets]
    missing = [(t, s) for t, s in zip(targets, sinces, strict=True) if s is not None and s > release]
    available = not targets or len(missing) < len(targets)
    if available:
        for target, since in missing:
            what = target.get("legendFormat") or target["refId"]
            notes.append(f"{what}: not available on {release.display} (needs {since} or later).")
    for name in sorted({s.record for t in targets for s in normalise.records_in(t["expr"])}):
        caveat = normalise.caveat(normalise.BY_RECORD[name], release)
        if caveat:
            notes.append(f"On {release.display}: {caveat}.")
    return available, notes


def _annotate(dashboard: JSON, release: Release, previous: Release | None) -> JSON:
    result = copy.deepcopy(dashboard)
    for panel in _panels(result.get("panels", [])):
        if not panel.get("targets"):
            continue
        available, notes = panel_availability(panel, release)
        if not available:
            since = min(s for t in panel["targets"] if (s := target_since(t.get("expr", ""))) is not None)
            sentence = f"Not available on {release.display}: needs {since.display} or later."
            panel.setdefault("fieldConfig", {}).setdefault("defaults", {})["noValue"] = sentence
            notes = [sentence]
        elif previous is not None and not panel_availability(panel, previous)[0]:
            notes.append(f"During the upgrade from {previous.display}: data only from daemons already on "
                         f"{release}.")
        if notes:
            description = str(panel.get("description") or "").strip()
            panel["description"] = " ".join([description, *notes] if description else notes)
    return result


def dashboards(*, version: str | None = None, upgrading_from: str | None = None) -> dict[str, str]:
    """Shipped dashboards for a cluster on release `version` (default DEFAULT_VERSION), while
    `upgrading_from` names the release a rolling upgrade comes from: file name -> JSON text,
    sorted by file name. ``ValueError`` for an unsupported release."""
    return _dashboards(version or DEFAULT_VERSION, upgrading_from)


@functools.lru_cache(maxsize=16)
def _dashboards(version: str, upgrading_from: str | None) -> dict[str, str]:
    release = check_supported(version)
    previous = check_supported(upgrading_from) if upgrading_from else None
    result: dict[str, str] = {}
    for name, text in _shipped().items():
        document: Any = json.loads(text)
        result[name] = json.dumps(_annotate(document, release, previous), indent=2) + "\n"
    return result
