"""Grafana: dashboards over Prometheus.

A Deployment, or a StatefulSet with a PVC when ``grafana.storage`` is set (a Deployment cannot
give each replica its own volume). Provisioning (datasource, dashboard provider) and the
dashboards are ConfigMaps mounted as directories. Grafana reads provisioning only at start, so
its digest is a pod-template annotation (a change rolls Grafana); dashboards are re-read by the
file provider on its interval and are deliberately left out of that digest.

Admin credentials come from a Secret through ``secretKeyRef``: the user's ``adminSecret``, or
one the operator generates once with a random password and never rotates.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from typing import Any

from rook_py.chubaofs.api import types as t
from rook_py.chubaofs.monitor import common as c
from rook_py.chubaofs.monitor import prometheus
from rook_py.chubaofs.monitor.common import MonitorContext
from rook_py.chubaofs.monitor.component import Plan, Rendered
from rook_py.chubaofs.monitor.config.grafana import (
    dashboards,
    render_dashboard_provider,
    render_datasources,
)
from rook_py.framework.objects import ObjectReader

JSON = dict[str, Any]
G = t.GRAFANA
PROVISIONING_DIR = "/etc/grafana/provisioning"
DASHBOARDS_DIR = "/etc/grafana/dashboards/chubaofs"
DATA_DIR = "/var/lib/grafana"
DATA_VOLUME = "data"


@dataclass(frozen=True)
class GrafanaConfig:
    datasources: str
    dashboard_provider: str
    dashboards: dict[str, str]

    @property
    def startup_hash(self) -> str:
        """Digest of what Grafana only reads at start."""
        return c.config_hash(self.datasources, self.dashboard_provider)


def render_config(ctx: MonitorContext) -> GrafanaConfig:
    return GrafanaConfig(render_datasources(prometheus_url=prometheus.url(ctx)),
                         render_dashboard_provider(path=DASHBOARDS_DIR),
                         dashboards(version=(ctx.spec.get("chubaofs") or {}).get("version"),
                                    upgrading_from=(ctx.spec.get("chubaofs") or {}).get("upgradingFrom")))


def admin_secret_name(ctx: MonitorContext) -> str:
    return str(ctx.component(G).get("adminSecret") or generated_admin_secret_name(ctx))


def generated_admin_secret_name(ctx: MonitorContext) -> str:
    return ctx.object_name(G, "admin")


def uses_statefulset(ctx: MonitorContext) -> bool:
    return bool(ctx.component(G).get("storage"))


def url(ctx: MonitorContext) -> str:
    return f"http://{ctx.service_host(ctx.object_name(G))}:{t.GRAFANA_PORT}"


def generated_admin_secret(ctx: MonitorContext, password: str | None = None) -> JSON:
    """A new admin Secret. The password is random (``secrets.token_urlsafe``) unless given; the
    controller creates this object only when it does not exist, so it is never rotated."""
    password = password or secrets.token_urlsafe(24)
    data = {t.GRAFANA_ADMIN_USER_KEY: t.DEFAULT_GRAFANA_ADMIN_USER,
            t.GRAFANA_ADMIN_PASSWORD_KEY: password}
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": c.metadata(ctx, G, generated_admin_secret_name(ctx)),
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}


def config_maps(ctx: MonitorContext, config: GrafanaConfig) -> list[JSON]:
    return [
        c.config_map(ctx, G, ctx.object_name(G, "datasources"), {"chubaofs.yaml": config.datasources}),
        c.config_map(ctx, G, ctx.object_name(G, "dashboard-provider"),
                     {"chubaofs.yaml": config.dashboard_provider}),
        c.config_map(ctx, G, ctx.object_name(G, "dashboards"), config.dashboards),
    ]


def _secret_env(name: str, secret: str, key: str) -> JSON:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def _pod(ctx: MonitorContext) -> JSON:
    spec = ctx.component(G)
    admin = admin_secret_name(ctx)
    env = [
        _secret_env("GF_SECURITY_ADMIN_USER", admin, t.GRAFANA_ADMIN_USER_KEY),
        _secret_env("GF_SECURITY_ADMIN_PASSWORD", admin, t.GRAFANA_ADMIN_PASSWORD_KEY),
        {"name": "GF_PATHS_PROVISIONING", "value": PROVISIONING_DIR},
        {"name": "GF_PATHS_DATA", "value": DATA_DIR},
        {"name": "GF_PATHS_LOGS", "value": "/var/log/grafana"},
        {"name": "GF_LOG_MODE", "value": "console"},
        {"name": "GF_USERS_ALLOW_SIGN_UP", "value": "false"},
        {"name": "GF_AUTH_ANONYMOUS_ENABLED", "value": "false"},
        {"name": "GF_ANALYTICS_REPORTING_ENABLED", "value": "false"},
        {"name": "GF_ANALYTICS_CHECK_FOR_UPDATES", "value": "false"},
    ]
    host = (spec.get("ingress") or {}).get("host")
    if host:
        scheme = "https" if spec["ingress"].get("tlsSecret") else "http"
        env.append({"name": "GF_SERVER_ROOT_URL", "value": f"{scheme}://{host}/"})
    container: JSON = {
        "name": "grafana",
        "image": spec["image"],
        "env": env,
        "ports": [{"name": "http", "containerPort": t.GRAFANA_PORT, "protocol": "TCP"}],
        "readinessProbe": c.http_probe("/api/health", t.GRAFANA_PORT, period=10),
        "livenessProbe": c.http_probe("/api/health", t.GRAFANA_PORT, period=15, failures=6,
                                      initial_delay=30),
        "resources": c.resources(ctx, G),
        "securityContext": c.container_security_context(),
        "volumeMounts": [
            {"name": "datasources", "mountPath": f"{PROVISIONING_DIR}/datasources", "readOnly": True},
            {"name": "dashboard-provider", "mountPath": f"{PROVISIONING_DIR}/dashboards",
             "readOnly": True},
            {"name": "dashboards", "mountPath": DASHBOARDS_DIR, "readOnly": True},
            {"name": DATA_VOLUME, "mountPath": DATA_DIR},
            {"name": "logs", "mountPath": "/var/log/grafana"},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    volumes = [c.config_map_volume("datasources", ctx.object_name(G, "datasources")),
               c.config_map_volume("dashboard-provider", ctx.object_name(G, "dashboard-provider")),
               c.config_map_volume("dashboards", ctx.object_name(G, "dashboards")),
               c.empty_dir("logs"), c.empty_dir("tmp")]
    if not uses_statefulset(ctx):
        volumes.append(c.empty_dir(DATA_VOLUME))
    return c.pod_spec(ctx, G, [container], volumes)


def workload(ctx: MonitorContext, config: GrafanaConfig) -> JSON:
    spec = ctx.component(G)
    annotations = {c.ANNOTATION_CONFIG_HASH: config.startup_hash}
    replicas = int(spec.get("replicas", 1))
    if uses_statefulset(ctx):
        claims = [c.volume_claim_template(ctx, G, DATA_VOLUME, spec["storage"])]
        return c.statefulset(ctx, G, replicas=replicas, service_name=ctx.object_name(G),
                             pod=_pod(ctx), claims=claims, pod_annotations=annotations)
    return c.deployment(ctx, G, replicas=replicas, pod=_pod(ctx), pod_annotations=annotations)


def service(ctx: MonitorContext) -> JSON:
    return c.service(ctx, G, ctx.object_name(G), [c.service_port("http", t.GRAFANA_PORT)])


def ingress(ctx: MonitorContext) -> JSON | None:
    spec = ctx.component(G).get("ingress") or {}
    if not spec.get("host"):
        return None
    body: JSON = {"rules": [{"host": spec["host"], "http": {"paths": [{
        "path": "/", "pathType": "Prefix",
        "backend": {"service": {"name": ctx.object_name(G), "port": {"number": t.GRAFANA_PORT}}},
    }]}}]}
    if spec.get("className"):
        body["ingressClassName"] = spec["className"]
    if spec.get("tlsSecret"):
        body["tls"] = [{"hosts": [spec["host"]], "secretName": spec["tlsSecret"]}]
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": c.metadata(ctx, G, ctx.object_name(G)), "spec": body}


def plan(ctx: MonitorContext, rendered: Rendered, reader: ObjectReader) -> Plan:
    """Provisioning and dashboards, the Service and Ingress, the workload; the generated admin
    Secret (when the user names none) is created once and never rotated."""
    config = rendered.grafana
    objects = [*config_maps(ctx, config), service(ctx)]
    ing = ingress(ctx)
    if ing is not None:
        objects.append(ing)
    create_only = [] if ctx.component(G).get("adminSecret") else [generated_admin_secret(ctx)]
    return Plan(objects, workload(ctx, config), endpoint=url(ctx),
                image=str(ctx.component(G)["image"]), create_only=create_only)
