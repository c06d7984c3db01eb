"""Alertmanager: a StatefulSet (a gossip mesh on 9094 when there is more than one replica), a
headless Service for peer discovery and Prometheus' per-pod targets, a client Service, and the
configuration: the user's Secret, or a generated default in an owned Secret (receivers hold
credentials, so configuration is never put into a ConfigMap).
"""

from __future__ import annotations

import base64
from typing import Any

from rook_py.chubaofs.api import types as t
from rook_py.chubaofs.api.validation import secret_value
from rook_py.chubaofs.monitor import common as c
from rook_py.chubaofs.monitor.common import MonitorContext
from rook_py.chubaofs.monitor.component import ConfigReload, Plan, Rendered
from rook_py.chubaofs.monitor.config.alertmanager import render_default_alertmanager_config
from rook_py.framework.objects import ObjectReader

JSON = dict[str, Any]
A = t.ALERTMANAGER
CONFIG_DIR = "/etc/alertmanager/config"
DATA_DIR = "/alertmanager"
DATA_VOLUME = "data"


def headless_service_name(ctx: MonitorContext) -> str:
    return ctx.object_name(A, "headless")


def generated_config_secret_name(ctx: MonitorContext) -> str:
    return ctx.object_name(A, "config")


def config_secret_name(ctx: MonitorContext) -> str:
    """The Secret the pods mount: the user's when given, the generated one otherwise."""
    return str(ctx.component(A).get("configSecret") or generated_config_secret_name(ctx))


def replicas(ctx: MonitorContext) -> int:
    return int(ctx.component(A).get("replicas", 1))


def url(ctx: MonitorContext) -> str:
    return f"http://{ctx.service_host(ctx.object_name(A))}:{t.ALERTMANAGER_PORT}"


def _pod_host(ctx: MonitorContext, ordinal: int) -> str:
    return ctx.pod_host(ctx.object_name(A), ordinal, headless_service_name(ctx))


def targets(ctx: MonitorContext) -> list[str]:
    """host:port of every replica: Prometheus must send each alert to all of them (the mesh
    deduplicates notifications, it does not forward alerts)."""
    return [f"{_pod_host(ctx, i)}:{t.ALERTMANAGER_PORT}" for i in range(replicas(ctx))]


def pod_urls(ctx: MonitorContext) -> list[str]:
    return [f"http://{_pod_host(ctx, i)}:{t.ALERTMANAGER_PORT}" for i in range(replicas(ctx))]


def default_config(ctx: MonitorContext) -> str:
    return render_default_alertmanager_config(cluster_name=ctx.cluster_name)


def generated_config_secret(ctx: MonitorContext, config_text: str) -> JSON:
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": c.metadata(ctx, A, generated_config_secret_name(ctx)),
            "data": {t.ALERTMANAGER_CONFIG_KEY: base64.b64encode(config_text.encode()).decode()}}


def _args(ctx: MonitorContext) -> list[str]:
    args = [f"--config.file={CONFIG_DIR}/{t.ALERTMANAGER_CONFIG_KEY}",
            f"--storage.path={DATA_DIR}",
            f"--web.listen-address=:{t.ALERTMANAGER_PORT}",
            "--web.route-prefix=/"]
    if replicas(ctx) > 1:
        args += [f"--cluster.listen-address=0.0.0.0:{t.ALERTMANAGER_MESH_PORT}",
                 # Pod IPs are not always in a private range, which Alertmanager would refuse
                 # to advertise on its own.
                 f"--cluster.advertise-address=$(POD_IP):{t.ALERTMANAGER_MESH_PORT}"]
        args += [f"--cluster.peer={_pod_host(ctx, i)}:{t.ALERTMANAGER_MESH_PORT}"
                 for i in range(replicas(ctx))]
    else:
        # An empty listen address disables clustering (no lonely mesh waiting for peers).
        args.append("--cluster.listen-address=")
    return args


def statefulset(ctx: MonitorContext) -> JSON:
    spec = ctx.component(A)
    port = t.ALERTMANAGER_PORT
    ports = [{"name": "web", "containerPort": port, "protocol": "TCP"}]
    if replicas(ctx) > 1:
        ports += [{"name": "mesh-tcp", "containerPort": t.ALERTMANAGER_MESH_PORT, "protocol": "TCP"},
                  {"name": "mesh-udp", "containerPort": t.ALERTMANAGER_MESH_PORT, "protocol": "UDP"}]
    container: JSON = {
        "name": "alertmanager",
        "image": spec["image"],
        "args": _args(ctx),
        "env": [c.env_from_field("POD_IP", "status.podIP")],
        "ports": ports,
        "readinessProbe": c.http_probe("/-/ready", port, period=5),
        "livenessProbe": c.http_probe("/-/healthy", port, period=15, failures=4),
        "resources": c.resources(ctx, A),
        "securityContext": c.container_security_context(),
        "volumeMounts": [{"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
                         {"name": DATA_VOLUME, "mountPath": DATA_DIR}],
    }
    volumes = [c.secret_volume("config", config_secret_name(ctx))]
    claims: list[JSON] = []
    if spec.get("storage"):
        claims.append(c.volume_claim_template(ctx, A, DATA_VOLUME, spec["storage"]))
    else:
        volumes.append(c.empty_dir(DATA_VOLUME))
    pod = c.pod_spec(ctx, A, [container], volumes)
    return c.statefulset(ctx, A, replicas=replicas(ctx), service_name=headless_service_name(ctx),
                         pod=pod, claims=claims, parallel=True)


def services(ctx: MonitorContext) -> list[JSON]:
    web = c.service_port("web", t.ALERTMANAGER_PORT)
    headless_ports = [web]
    if replicas(ctx) > 1:
        headless_ports += [c.service_port("mesh-tcp", t.ALERTMANAGER_MESH_PORT),
                           c.service_port("mesh-udp", t.ALERTMANAGER_MESH_PORT, "UDP")]
    return [c.service(ctx, A, headless_service_name(ctx), headless_ports, headless=True,
                      publish_not_ready=True),
            c.service(ctx, A, ctx.object_name(A), [web])]


def plan(ctx: MonitorContext, rendered: Rendered, reader: ObjectReader) -> Plan:
    """The generated configuration Secret (when the user names none), Services, the StatefulSet.

    Configuration changes are hot-reloaded, whichever Secret holds them: the user's is read from
    the cache (a missing Secret or key was refused by validation before this pass got here).
    """
    objects = services(ctx)
    if rendered.alertmanager is not None:
        objects.insert(0, generated_config_secret(ctx, rendered.alertmanager))
        config_text = rendered.alertmanager
    else:
        user_secret = reader.get("v1", "Secret", config_secret_name(ctx), ctx.namespace)
        config_text = secret_value(user_secret or {}, t.ALERTMANAGER_CONFIG_KEY) or ""
    return Plan(objects, statefulset(ctx), endpoint=url(ctx), image=str(ctx.component(A)["image"]),
                reload=ConfigReload(c.config_hash(config_text), pod_urls(ctx)))
