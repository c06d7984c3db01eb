"""Renderers for the ChubaoFS monitor stack's configuration files.

Pure functions returning text; equal input gives byte-identical output, so the controller can
compare against what a ConfigMap/Secret holds and write (and hot-reload) only on real changes.
"""

from rook_py.chubaofs.monitor.config.alertmanager import render_default_alertmanager_config
from rook_py.chubaofs.monitor.config.grafana import dashboards, render_dashboard_provider, render_datasources
from rook_py.chubaofs.monitor.config.prometheus import render_prometheus_config
from rook_py.chubaofs.monitor.config.rules import DEFAULT_THRESHOLDS, render_alert_rules

__all__ = [
    "DEFAULT_THRESHOLDS",
    "dashboards",
    "render_alert_rules",
    "render_dashboard_provider",
    "render_datasources",
    "render_default_alertmanager_config",
    "render_prometheus_config",
]
