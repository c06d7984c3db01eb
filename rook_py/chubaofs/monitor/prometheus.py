"""Prometheus: the TSDB StatefulSet, its configuration and alert-rule ConfigMaps, and Services.

Configuration reaches a running Prometheus without a restart: both ConfigMaps are mounted as
directories (a subPath mount is never refreshed by the kubelet) and the operator POSTs
``/-/reload`` (``--web.enable-lifecycle``) once they change. The pod template therefore carries
no hash of the configuration; see :mod:`rook_py.chubaofs.monitor.reload` for the fallback.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rook_py.chubaofs.api import types as t
from rook_py.chubaofs.monitor import alertmanager, consul
from rook_py.chubaofs.monitor import common as c
from rook_py.chubaofs.monitor.common import MonitorContext
from rook_py.chubaofs.monitor.component import ConfigReload, Plan, Rendered
from rook_py.chubaofs.monitor.config.prometheus import render_prometheus_config
from rook_py.chubaofs.monitor.config.rules import render_alert_rules
from rook_py.framework.objects import ObjectReader

JSON = dict[str, Any]
P = t.PROMETHEUS
CONFIG_DIR = "/etc/prometheus/config"
CONFIG_FILE = "prometheus.yml"
RULES_DIR = "/etc/prometheus/rules"
RULES_FILE = "chubaofs.yml"
DATA_DIR = "/prometheus"
DATA_VOLUME = "data"


@dataclass(frozen=True)
class PrometheusConfig:
    """The rendered configuration and the digest the operator tracks for hot reloads."""

    prometheus_yml: str
    rules_yml: str | None  # None when the built-in rules are disabled

    @property
    def hash(self) -> str:
        return c.config_hash(self.prometheus_yml, self.rules_yml or "")


def config_map_name(ctx: MonitorContext) -> str:
    return ctx.object_name(P, "config")


def rules_config_map_name(ctx: MonitorContext) -> str:
    return ctx.object_name(P, "rules")


def headless_service_name(ctx: MonitorContext) -> str:
    return ctx.object_name(P, "headless")


def url(ctx: MonitorContext) -> str:
    return f"http://{ctx.service_host(ctx.object_name(P))}:{t.PROMETHEUS_PORT}"


def pod_urls(ctx: MonitorContext) -> list[str]:
    """Base URL of every replica (reloads go to each pod, not to a load-balanced Service)."""
    replicas = int(ctx.component(P).get("replicas", 1))
    return [f"http://{ctx.pod_host(ctx.object_name(P), i, headless_service_name(ctx))}:"
            f"{t.PROMETHEUS_PORT}" for i in range(replicas)]


def render_config(ctx: MonitorContext, operator_targets: Sequence[str] = ()) -> PrometheusConfig:
    """Render prometheus.yml and the rule file; ``ValueError`` for a spec the renderers refuse."""
    spec = ctx.component(P)
    rules = ctx.spec.get("rules") or {}
    alert_targets = alertmanager.targets(ctx) if ctx.enabled(t.ALERTMANAGER) else []
    prometheus_yml = render_prometheus_config(
        cluster_name=ctx.cluster_name,
        consul_server=consul.client_address(ctx),
        consul_metrics=consul.managed(ctx),
        scrape_interval=spec.get("scrapeInterval", "30s"),
        evaluation_interval=spec.get("evaluationInterval"),
        external_labels=spec.get("externalLabels") or None,
        alertmanagers=alert_targets,
        rule_files=(f"{RULES_DIR}/*.yml",),
        operator_targets=tuple(operator_targets),
        extra_scrape_configs=tuple(spec.get("extraScrapeConfigs") or ()),
        remote_write=tuple(spec.get("remoteWrite") or ()),
        replica_label=int(spec.get("replicas", 1)) > 1,
    )
    rules_yml = None
    if rules.get("enabled", True):
        rules_yml = render_alert_rules(cluster_name=ctx.cluster_name,
                                       scrape_interval=spec.get("scrapeInterval", "30s"),
                                       thresholds=rules.get("thresholds") or None,
                                       extra_rules=tuple(rules.get("extraRules") or ()))
    return PrometheusConfig(prometheus_yml, rules_yml)


def config_maps(ctx: MonitorContext, config: PrometheusConfig) -> list[JSON]:
    maps = [c.config_map(ctx, P, config_map_name(ctx), {CONFIG_FILE: config.prometheus_yml})]
    if config.rules_yml is not None:
        maps.append(c.config_map(ctx, P, rules_config_map_name(ctx), {RULES_FILE: config.rules_yml}))
    return maps


def _args(ctx: MonitorContext) -> list[str]:
    spec = ctx.component(P)
    args = [f"--config.file={CONFIG_DIR}/{CONFIG_FILE}",
            f"--storage.tsdb.path={DATA_DIR}",
            f"--storage.tsdb.retention.time={spec.get('retention', '15d')}",
            "--web.enable-lifecycle",
            f"--web.listen-address=:{t.PROMETHEUS_PORT}",
            "--web.route-prefix=/"]
    if spec.get("retentionSize"):
        args.append(f"--storage.tsdb.retention.size={spec['retentionSize']}")
    if int(spec.get("replicas", 1)) > 1:
        # The config's external label `replica: ${POD_NAME}` needs env expansion.
        args.append("--enable-feature=expand-external-labels")
    return args


def statefulset(ctx: MonitorContext) -> JSON:
    spec = ctx.component(P)
    port = t.PROMETHEUS_PORT
    container: JSON = {
        "name": "prometheus",
        "image": spec["image"],
        "args": _args(ctx),
        "env": [c.env_from_field("POD_NAME", "metadata.name")],
        "ports": [{"name": "web", "containerPort": port, "protocol": "TCP"}],
        "readinessProbe": c.http_probe("/-/ready", port, period=5, failures=3),
        "livenessProbe": c.http_probe("/-/healthy", port, period=15, failures=4),
        # WAL replay of a large TSDB can take minutes; don't let liveness kill it meanwhile.
        "startupProbe": c.http_probe("/-/ready", port, period=10, failures=60),
        "resources": c.resources(ctx, P),
        "securityContext": c.container_security_context(),
        "volumeMounts": [{"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
                         {"name": "rules", "mountPath": RULES_DIR, "readOnly": True},
                         {"name": DATA_VOLUME, "mountPath": DATA_DIR}],
    }
    volumes = [c.config_map_volume("config", config_map_name(ctx)),
               # Optional: with rules disabled the ConfigMap is deleted and the glob matches nothing.
               c.config_map_volume("rules", rules_config_map_name(ctx), optional=True)]
    pod = c.pod_spec(ctx, P, [container], volumes, termination_grace_period=600)
    claims = [c.volume_claim_template(ctx, P, DATA_VOLUME, spec["storage"])]
    return c.statefulset(ctx, P, replicas=int(spec.get("replicas", 1)),
                         service_name=headless_service_name(ctx), pod=pod, claims=claims,
                         parallel=True)


def services(ctx: MonitorContext) -> list[JSON]:
    ports = [c.service_port("web", t.PROMETHEUS_PORT)]
    return [c.service(ctx, P, headless_service_name(ctx), ports, headless=True),
            c.service(ctx, P, ctx.object_name(P), ports)]


def plan(ctx: MonitorContext, rendered: Rendered, reader: ObjectReader) -> Plan:
    """Config first so a new pod never starts without it, then Services; changed configuration
    is hot-reloaded on every replica."""
    config = rendered.prometheus
    return Plan([*config_maps(ctx, config), *services(ctx)], statefulset(ctx), endpoint=url(ctx),
                image=str(ctx.component(P)["image"]),
                reload=ConfigReload(config.hash, pod_urls(ctx)))
