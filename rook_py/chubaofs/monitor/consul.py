"""Consul servers: where ChubaoFS daemons and node agents register, and what Prometheus'
consul_sd reads.

Unlike the community charts (``agent -dev``: in memory, one node) this runs real servers with a
persistent raft store. Objects: a headless Service that gives each server a stable DNS name for
``-retry-join`` (published before readiness, since readiness needs a leader and a leader needs
the peers), a client Service on 8500, the StatefulSet, and a PodDisruptionBudget from three
servers on (with one or two servers any eviction loses quorum anyway).
"""

from __future__ import annotations

from typing import Any

from rook_py.chubaofs.api import types as t
from rook_py.chubaofs.monitor import common as c
from rook_py.chubaofs.monitor.common import MonitorContext
from rook_py.chubaofs.monitor.component import Plan, Rendered
from rook_py.framework.objects import ObjectReader

JSON = dict[str, Any]
C = t.CONSUL
DATA_VOLUME = "data"

# A server is ready only when /v1/status/leader names a leader. An httpGet probe would not do:
# the endpoint answers 200 with the JSON string "" while there is no leader. Hence an exec probe
# that greps for a non-empty quoted value, as hashicorp/consul-k8s does in
# charts/consul/templates/server-statefulset.yaml. The image ships curl.
LEADER_CHECK = ("curl -sf http://127.0.0.1:8500/v1/status/leader 2>/dev/null "
                "| grep -E '\".+\"'")


def headless_service_name(ctx: MonitorContext) -> str:
    return ctx.object_name(C, "headless")


def client_address(ctx: MonitorContext) -> str:
    """host:port Prometheus' consul_sd talks to (the external one when configured)."""
    external = ctx.component(C).get("externalAddress")
    if external:
        return str(external)
    return f"{ctx.service_host(ctx.object_name(C))}:{t.CONSUL_HTTP_PORT}"


def managed(ctx: MonitorContext) -> bool:
    """Whether this operator runs the Consul (rather than using ``externalAddress``)."""
    return not ctx.component(C).get("externalAddress")


def _args(ctx: MonitorContext, replicas: int) -> list[str]:
    headless = headless_service_name(ctx)
    args = ["agent", "-server", f"-bootstrap-expect={replicas}", "-client=0.0.0.0", "-ui",
            "-advertise=$(POD_IP)", "-node=$(POD_NAME)", "-disable-host-node-id",
            # Without a retention time Consul answers /v1/agent/metrics?format=prometheus with 415,
            # and the generated `consul` scrape job would report Consul down.
            '-hcl=telemetry { prometheus_retention_time = "60s" }']
    args += [f"-retry-join={ctx.pod_host(ctx.object_name(C), i, headless)}"
             for i in range(replicas)]
    return args


def _ports() -> list[JSON]:
    return [{"name": "http", "containerPort": 8500, "protocol": "TCP"},
            {"name": "server", "containerPort": 8300, "protocol": "TCP"},
            {"name": "serflan-tcp", "containerPort": 8301, "protocol": "TCP"},
            {"name": "serflan-udp", "containerPort": 8301, "protocol": "UDP"},
            {"name": "serfwan-tcp", "containerPort": 8302, "protocol": "TCP"},
            {"name": "serfwan-udp", "containerPort": 8302, "protocol": "UDP"},
            {"name": "dns-tcp", "containerPort": 8600, "protocol": "TCP"},
            {"name": "dns-udp", "containerPort": 8600, "protocol": "UDP"}]


def statefulset(ctx: MonitorContext) -> JSON:
    spec = ctx.component(C)
    replicas = int(spec.get("replicas", 3))
    container: JSON = {
        "name": "consul",
        "image": spec["image"],
        "args": _args(ctx, replicas),
        "env": [c.env_from_field("POD_IP", "status.podIP"),
                c.env_from_field("POD_NAME", "metadata.name"),
                # The image's entrypoint would chown the data directory, which a non-root
                # container cannot do; fsGroup already makes the volume writable.
                {"name": "CONSUL_DISABLE_PERM_MGMT", "value": "true"}],
        "ports": _ports(),
        "readinessProbe": {"exec": {"command": ["/bin/sh", "-ec", LEADER_CHECK]},
                           "initialDelaySeconds": 5, "periodSeconds": 5,
                           "failureThreshold": 2, "timeoutSeconds": 5},
        # Liveness must not depend on the cluster (a lost quorum would restart every server).
        "livenessProbe": {"tcpSocket": {"port": 8500}, "initialDelaySeconds": 30,
                          "periodSeconds": 10, "failureThreshold": 6, "timeoutSeconds": 5},
        "lifecycle": {"preStop": {"exec": {"command": ["/bin/sh", "-c", "consul leave"]}}},
        "resources": c.resources(ctx, C),
        "securityContext": c.container_security_context(),
        "volumeMounts": [{"name": DATA_VOLUME, "mountPath": "/consul/data"},
                         {"name": "config", "mountPath": "/consul/config"},
                         {"name": "tmp", "mountPath": "/tmp"}],
    }
    pod = c.pod_spec(ctx, C, [container], [c.empty_dir("config"), c.empty_dir("tmp")])
    claims = [c.volume_claim_template(ctx, C, DATA_VOLUME, spec["storage"])]
    # Parallel: all servers must start together to reach -bootstrap-expect.
    return c.statefulset(ctx, C, replicas=replicas, service_name=headless_service_name(ctx),
                         pod=pod, claims=claims, parallel=True)


def services(ctx: MonitorContext) -> list[JSON]:
    headless_ports = [c.service_port("http", 8500), c.service_port("server", 8300),
                      c.service_port("serflan-tcp", 8301),
                      c.service_port("serflan-udp", 8301, "UDP"),
                      c.service_port("serfwan-tcp", 8302),
                      c.service_port("serfwan-udp", 8302, "UDP"),
                      c.service_port("dns-tcp", 8600), c.service_port("dns-udp", 8600, "UDP")]
    return [
        c.service(ctx, C, headless_service_name(ctx), headless_ports, headless=True,
                  publish_not_ready=True),
        c.service(ctx, C, ctx.object_name(C), [c.service_port("http", t.CONSUL_HTTP_PORT)]),
    ]


def pod_disruption_budget(ctx: MonitorContext) -> JSON | None:
    """Keep a raft quorum through voluntary disruptions: at most (n-1)/2 servers away."""
    replicas = int(ctx.component(C).get("replicas", 3))
    if replicas < 3:
        return None
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": c.metadata(ctx, C, ctx.object_name(C)),
            "spec": {"maxUnavailable": (replicas - 1) // 2,
                     "selector": {"matchLabels": c.selector_labels(ctx, C)}}}


def plan(ctx: MonitorContext, rendered: Rendered, reader: ObjectReader) -> Plan:
    """Services first (the StatefulSet's pods need their DNS names), then the disruption budget."""
    objects = services(ctx)
    pdb = pod_disruption_budget(ctx)
    if pdb is not None:
        objects.append(pdb)
    return Plan(objects, statefulset(ctx), endpoint=f"http://{client_address(ctx)}",
                image=str(ctx.component(C)["image"]))
