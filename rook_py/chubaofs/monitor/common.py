"""Shared pieces of the monitor-stack object builders: names, labels, owner references, pod
security, placement, storage and services.

Builders are pure functions of a :class:`MonitorContext` (the custom resource plus its defaulted
spec). They return complete desired objects; the controller decides what to write. Shapes follow
Rook's builders (rook/rook pkg/operator/ceph/cluster/mon/spec.go, pkg/operator/k8sutil/pod.go):
one function per object, labels and owner references applied in one place.

Invariants:
- every object carries a controller ownerReference to its ChubaoMonitor and the five
  ``app.kubernetes.io`` labels; its name starts with the ChubaoMonitor's name;
- selectors use only labels that never change for the life of the workload (name, instance,
  component) because Deployment and StatefulSet selectors are immutable;
- output is deterministic: the same input gives equal dicts, so an unchanged spec yields no write.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass
from typing import Any, Final

from rook_py.chubaofs.api import types as t
from rook_py.framework.kube.owners import controller_reference, is_controlled_by
from rook_py.framework.kube.selectors import fit_label_value

JSON = dict[str, Any]

LABEL_NAME: Final = "app.kubernetes.io/name"
LABEL_INSTANCE: Final = "app.kubernetes.io/instance"
LABEL_COMPONENT: Final = "app.kubernetes.io/component"
LABEL_PART_OF: Final = "app.kubernetes.io/part-of"
LABEL_MANAGED_BY: Final = "app.kubernetes.io/managed-by"
PART_OF: Final = "chubaofs"
MANAGED_BY: Final = "rook-chubaofs-operator"

# On a pod template: changing it rolls the workload on purpose (config that is only read at start,
# or the fallback when a hot reload could not be delivered).
ANNOTATION_CONFIG_HASH: Final = "chubaofs.rook.io/config-hash"
# On a workload's own metadata (never its pod template, so it rolls nothing): the hash of the
# configuration the running pods are known to have loaded.
ANNOTATION_LOADED_CONFIG_HASH: Final = "chubaofs.rook.io/loaded-config-hash"

# The application each component runs (app.kubernetes.io/name).
APP_NAMES: Final = {t.CONSUL: "consul", t.PROMETHEUS: "prometheus",
                    t.ALERTMANAGER: "alertmanager", t.GRAFANA: "grafana"}


@dataclass(frozen=True)
class ImageUser:
    """The unprivileged user an upstream image is built to run as."""

    uid: int
    gid: int
    fs_group: int


# prom/prometheus and prom/alertmanager run as nobody (65534); grafana/grafana as 472;
# hashicorp/consul creates user consul with UID 100 and group consul with GID 1000.
IMAGE_USERS: Final = {
    t.PROMETHEUS: ImageUser(65534, 65534, 65534),
    t.ALERTMANAGER: ImageUser(65534, 65534, 65534),
    t.GRAFANA: ImageUser(472, 472, 472),
    t.CONSUL: ImageUser(100, 1000, 1000),
}


@dataclass(frozen=True)
class MonitorContext:
    """A ChubaoMonitor and its defaulted spec: everything a builder may read."""

    monitor: JSON
    spec: JSON

    @property
    def name(self) -> str:
        return str(self.monitor["metadata"]["name"])

    @property
    def namespace(self) -> str:
        return str(self.monitor["metadata"]["namespace"])

    @property
    def cluster_name(self) -> str:
        return str(self.spec["cluster"]["name"])

    def component(self, component: str) -> JSON:
        section: JSON = self.spec.get(component) or {}
        return section

    def enabled(self, component: str) -> bool:
        """Whether the operator deploys ``component`` (an external Consul is not deployed)."""
        if component == t.CONSUL and self.component(t.CONSUL).get("externalAddress"):
            return False
        return bool(self.component(component).get("enabled", True))

    def object_name(self, component: str, suffix: str = "") -> str:
        return f"{self.name}-{component}" + (f"-{suffix}" if suffix else "")

    def service_host(self, service: str) -> str:
        """In-cluster DNS name of a Service. ``.svc`` (not ``.svc.cluster.local``) so a custom
        cluster domain still resolves through the pod's DNS search path."""
        return f"{service}.{self.namespace}.svc"

    def pod_host(self, workload: str, ordinal: int, headless: str) -> str:
        """Stable DNS name of a StatefulSet pod through its governing headless Service."""
        return f"{workload}-{ordinal}.{headless}.{self.namespace}.svc"


# --- metadata ------------------------------------------------------------------------------------

def instance_label_value(ctx: MonitorContext) -> str:
    """The ``app.kubernetes.io/instance`` value: the ChubaoMonitor's name, hashed when it cannot
    be a label value (the CRD accepts 253-character names; labels stop at 63). A name that long
    is refused as InvalidSpec, so no owned object carries the hash, but its cleanup still lists
    by this label and must send a selector the API server accepts."""
    return fit_label_value(ctx.name)


def selector_labels(ctx: MonitorContext, component: str) -> dict[str, str]:
    return {LABEL_NAME: APP_NAMES[component], LABEL_INSTANCE: instance_label_value(ctx),
            LABEL_COMPONENT: component}


def labels(ctx: MonitorContext, component: str) -> dict[str, str]:
    return {**selector_labels(ctx, component), LABEL_PART_OF: PART_OF, LABEL_MANAGED_BY: MANAGED_BY}


def instance_selector(ctx: MonitorContext, component: str | None = None) -> str:
    """A label selector string for the objects of one ChubaoMonitor (optionally one component)."""
    parts = [f"{LABEL_INSTANCE}={instance_label_value(ctx)}", f"{LABEL_MANAGED_BY}={MANAGED_BY}"]
    if component is not None:
        parts.append(f"{LABEL_COMPONENT}={component}")
    return ",".join(parts)


def owner_reference(monitor: JSON) -> JSON:
    """The controller reference every owned object carries (GC deletes them with the monitor)."""
    return controller_reference({**monitor, "apiVersion": monitor.get("apiVersion", t.API_VERSION),
                                 "kind": monitor.get("kind", t.KIND)})


def metadata(ctx: MonitorContext, component: str, name: str,
             annotations: dict[str, str] | None = None) -> JSON:
    meta: JSON = {"name": name, "namespace": ctx.namespace, "labels": labels(ctx, component),
                  "ownerReferences": [owner_reference(ctx.monitor)]}
    if annotations:
        meta["annotations"] = dict(annotations)
    return meta


def is_owned_by(obj: JSON, monitor: JSON) -> bool:
    """Whether ``obj``'s controller reference points at this very ChubaoMonitor (UID match)."""
    return is_controlled_by(obj, monitor)


def describe(obj: JSON) -> str:
    """``Kind name``: how Events and status messages name an object."""
    return f"{obj['kind']} {obj['metadata']['name']}"


def config_hash(*parts: str) -> str:
    """A short, stable digest of configuration text (order matters)."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:20]


# --- pods ----------------------------------------------------------------------------------------

def pod_security_context(component: str) -> JSON:
    user = IMAGE_USERS[component]
    return {"runAsNonRoot": True, "runAsUser": user.uid, "runAsGroup": user.gid,
            "fsGroup": user.fs_group,
            # Skip the recursive chown of large volumes (the TSDB) on every start.
            "fsGroupChangePolicy": "OnRootMismatch",
            "seccompProfile": {"type": "RuntimeDefault"}}


def container_security_context(read_only_root: bool = True) -> JSON:
    return {"allowPrivilegeEscalation": False, "privileged": False,
            "readOnlyRootFilesystem": read_only_root,
            "capabilities": {"drop": ["ALL"]}}


def resources(ctx: MonitorContext, component: str) -> JSON:
    res: JSON = copy.deepcopy(ctx.component(component).get("resources") or {})
    return {k: v for k, v in res.items() if v}


def _affinity(ctx: MonitorContext, component: str) -> JSON:
    placement = ctx.spec.get("placement") or {}
    if placement.get("affinity"):
        return copy.deepcopy(placement["affinity"])
    # Spread replicas over nodes when possible; soft so a small cluster still schedules them.
    return {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
        "weight": 100,
        "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname",
                            "labelSelector": {"matchLabels": selector_labels(ctx, component)}},
    }]}}


def pod_spec(ctx: MonitorContext, component: str, containers: list[JSON],
             volumes: list[JSON], *, termination_grace_period: int = 30) -> JSON:
    """A pod spec with the placement, pull secrets, priority and security every pod shares."""
    placement = ctx.spec.get("placement") or {}
    spec: JSON = {
        "containers": containers,
        "volumes": volumes,
        "securityContext": pod_security_context(component),
        "affinity": _affinity(ctx, component),
        # None of the monitor components talks to the Kubernetes API.
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": termination_grace_period,
    }
    if placement.get("nodeSelector"):
        spec["nodeSelector"] = dict(placement["nodeSelector"])
    if placement.get("tolerations"):
        spec["tolerations"] = copy.deepcopy(placement["tolerations"])
    if ctx.spec.get("imagePullSecrets"):
        spec["imagePullSecrets"] = [{"name": s["name"]} for s in ctx.spec["imagePullSecrets"]]
    if ctx.spec.get("priorityClassName"):
        spec["priorityClassName"] = ctx.spec["priorityClassName"]
    return spec


def http_probe(path: str, port: int | str, *, period: int = 10, failures: int = 3,
               initial_delay: int = 0, timeout: int = 3) -> JSON:
    probe: JSON = {"httpGet": {"path": path, "port": port, "scheme": "HTTP"},
                   "periodSeconds": period, "failureThreshold": failures,
                   "timeoutSeconds": timeout}
    if initial_delay:
        probe["initialDelaySeconds"] = initial_delay
    return probe


def env_from_field(name: str, field_path: str) -> JSON:
    return {"name": name, "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": field_path}}}


def empty_dir(name: str, medium: str | None = None) -> JSON:
    source: JSON = {"medium": medium} if medium else {}
    return {"name": name, "emptyDir": source}


def config_map_volume(name: str, config_map: str, *, optional: bool = False) -> JSON:
    source: JSON = {"name": config_map}
    if optional:
        source["optional"] = True
    return {"name": name, "configMap": source}


def secret_volume(name: str, secret: str) -> JSON:
    return {"name": name, "secret": {"secretName": secret}}


# --- storage -------------------------------------------------------------------------------------

def volume_claim_template(ctx: MonitorContext, component: str, name: str, storage: JSON) -> JSON:
    """A StatefulSet volumeClaimTemplate. Its labels let the operator find the PVCs later (they
    are not owned by the monitor, so they survive its deletion)."""
    spec: JSON = {"accessModes": ["ReadWriteOnce"],
                  "resources": {"requests": {"storage": str(storage["size"])}}}
    if storage.get("storageClassName"):
        spec["storageClassName"] = storage["storageClassName"]
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "labels": labels(ctx, component)}, "spec": spec}


def statefulset(ctx: MonitorContext, component: str, *, replicas: int, service_name: str,
                pod: JSON, claims: list[JSON], parallel: bool = False,
                pod_annotations: dict[str, str] | None = None) -> JSON:
    template_meta: JSON = {"labels": labels(ctx, component)}
    if pod_annotations:
        template_meta["annotations"] = dict(pod_annotations)
    spec: JSON = {
        "replicas": replicas,
        "serviceName": service_name,
        "selector": {"matchLabels": selector_labels(ctx, component)},
        "podManagementPolicy": "Parallel" if parallel else "OrderedReady",
        "updateStrategy": {"type": "RollingUpdate"},
        "revisionHistoryLimit": 10,
        # Data outlives both scale-down and deletion; only an explicit cleanup policy removes it.
        "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
        "template": {"metadata": template_meta, "spec": pod},
    }
    if claims:
        spec["volumeClaimTemplates"] = claims
    return {"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": metadata(ctx, component, ctx.object_name(component)), "spec": spec}


def deployment(ctx: MonitorContext, component: str, *, replicas: int, pod: JSON,
               pod_annotations: dict[str, str] | None = None) -> JSON:
    template_meta: JSON = {"labels": labels(ctx, component)}
    if pod_annotations:
        template_meta["annotations"] = dict(pod_annotations)
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": metadata(ctx, component, ctx.object_name(component)),
            "spec": {"replicas": replicas,
                     "selector": {"matchLabels": selector_labels(ctx, component)},
                     "strategy": {"type": "RollingUpdate",
                                  "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
                     "revisionHistoryLimit": 10,
                     "template": {"metadata": template_meta, "spec": pod}}}


# --- services and config -------------------------------------------------------------------------

def service_port(name: str, port: int, protocol: str = "TCP") -> JSON:
    return {"name": name, "port": port, "targetPort": port, "protocol": protocol}


def service(ctx: MonitorContext, component: str, name: str, ports: list[JSON], *,
            headless: bool = False, publish_not_ready: bool = False) -> JSON:
    spec: JSON = {"type": "ClusterIP", "selector": selector_labels(ctx, component), "ports": ports}
    if headless:
        spec["clusterIP"] = "None"
    if publish_not_ready:
        # Peers must find each other before they are ready (a Consul server is ready only once
        # a leader exists, which needs its peers); see the headless Service of consul-k8s.
        spec["publishNotReadyAddresses"] = True
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": metadata(ctx, component, name), "spec": spec}


def config_map(ctx: MonitorContext, component: str, name: str, data: dict[str, str]) -> JSON:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": metadata(ctx, component, name), "data": dict(data)}
