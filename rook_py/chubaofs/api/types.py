"""Constants of the ``ChubaoMonitor`` API (group ``chubaofs.rook.io``, version ``v1alpha1``).

Everything that names the API, its finalizer, its status vocabulary or the images it deploys
lives here so the schema, the builders, the controller and the tests agree by construction.
"""

from __future__ import annotations

from typing import Any, Final

JSON = dict[str, Any]

GROUP: Final = "chubaofs.rook.io"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
KIND: Final = "ChubaoMonitor"
LIST_KIND: Final = "ChubaoMonitorList"
PLURAL: Final = "chubaomonitors"
SINGULAR: Final = "chubaomonitor"
SHORT_NAMES: Final = ("cfsmon",)
CATEGORIES: Final = ("chubaofs", "rook")
CRD_NAME: Final = f"{PLURAL}.{GROUP}"

# The finalizer that lets the operator remove owned objects (and, when confirmed, data) before
# the custom resource disappears. It is always removed in the end so deletion never hangs.
FINALIZER: Final = "chubaofs.rook.io/monitor-cleanup"
# Rook's convention: deleting data needs this exact sentence, not a boolean alone.
DESTROY_DATA_CONFIRMATION: Final = "yes-really-destroy-data"

# Components, in install order: service discovery first (Prometheus needs it), then the
# alerting path (Prometheus points at Alertmanager), then Prometheus, then Grafana.
CONSUL: Final = "consul"
ALERTMANAGER: Final = "alertmanager"
PROMETHEUS: Final = "prometheus"
GRAFANA: Final = "grafana"
COMPONENTS: Final = (CONSUL, ALERTMANAGER, PROMETHEUS, GRAFANA)

# status.phase values.
PHASE_PROGRESSING: Final = "Progressing"
PHASE_READY: Final = "Ready"
PHASE_DEGRADED: Final = "Degraded"
PHASE_FAILED: Final = "Failed"
PHASE_DELETING: Final = "Deleting"
PHASES: Final = (PHASE_PROGRESSING, PHASE_READY, PHASE_DEGRADED, PHASE_FAILED, PHASE_DELETING)

# status.conditions[].type values.
COND_READY: Final = "Ready"
COND_PROGRESSING: Final = "Progressing"
COND_DEGRADED: Final = "Degraded"
COND_RECONCILE_ERROR: Final = "ReconcileError"
COND_INVALID_SPEC: Final = "InvalidSpec"
CONDITION_TYPES: Final = (COND_READY, COND_PROGRESSING, COND_DEGRADED, COND_RECONCILE_ERROR,
                          COND_INVALID_SPEC)

# Default images: upstream images whose users/UIDs the pod security contexts are written for.
DEFAULT_IMAGES: Final = {
    CONSUL: "hashicorp/consul:1.18.2",
    PROMETHEUS: "quay.io/prometheus/prometheus:v2.53.1",
    ALERTMANAGER: "quay.io/prometheus/alertmanager:v0.27.0",
    GRAFANA: "grafana/grafana:10.4.5",
}

# Well-known keys.
ALERTMANAGER_CONFIG_KEY: Final = "alertmanager.yml"
GRAFANA_ADMIN_USER_KEY: Final = "admin-user"
GRAFANA_ADMIN_PASSWORD_KEY: Final = "admin-password"
DEFAULT_GRAFANA_ADMIN_USER: Final = "admin"

# Ports.
CONSUL_HTTP_PORT: Final = 8500
PROMETHEUS_PORT: Final = 9090
ALERTMANAGER_PORT: Final = 9093
ALERTMANAGER_MESH_PORT: Final = 9094
GRAFANA_PORT: Final = 3000
OPERATOR_METRICS_PORT: Final = 8080
