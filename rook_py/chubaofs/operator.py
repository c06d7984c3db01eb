"""ChubaoFS's ``pre_start``: the per-node DaemonSets ``rook-discover`` and ``rook-chubaofs-agent``.

Configured by the provider's declared settings (``rook_py.chubaofs.settings``), under the names
Rook uses for its discover DaemonSet (rook/rook ``pkg/operator/discover/discover.go``), so an
admin edits one Deployment or the settings ConfigMap:

* ``ROOK_ENABLE_DISCOVERY_DAEMON`` / ``ROOK_ENABLE_AGENT`` (default true): off removes the DaemonSet;
* ``ROOK_DISCOVER_DEVICES_INTERVAL`` (default ``1h``), passed on to the discover pods;
* placement: ``DISCOVER_*`` and ``AGENT_*`` (TOLERATIONS, NODE_AFFINITY, PRIORITY_CLASS_NAME,
  POD_LABELS; see ``rook_py.framework.daemons.daemonset``);
* the agent: ``AGENT_MONITOR`` (``namespace/name`` of the ChubaoMonitor whose Consul it registers
  in), ``AGENT_CONSUL_ADDR`` (an explicit Consul instead), ``AGENT_DATA_PATHS`` (comma-separated
  ChubaoFS data directories to report capacity for), ``AGENT_DEREGISTER_STALE_AFTER``.

Both daemons run as non-root with every capability dropped and a read-only root filesystem:
they only read world-readable sysfs/udev files through read-only hostPath mounts.
"""

from __future__ import annotations

from typing import Any

from rook_py.chubaofs.api.webhooks import MUTATING_CONFIGURATION, VALIDATING_CONFIGURATION, WEBHOOK_SECRET
from rook_py.chubaofs.monitor.writer import FIELD_MANAGER
from rook_py.chubaofs.settings import ChubaoFSSettings
from rook_py.framework.client import errors
from rook_py.framework.cmdline import Fatal, format_duration
from rook_py.framework.daemons.daemonset import NodeDaemon, Scheduling, ensure_daemonset, remove_daemonset
from rook_py.framework.operator_config import configmap_name
from rook_py.framework.provider import OperatorSettings

JSON = dict[str, Any]
DISCOVER_NAME = "rook-discover"
AGENT_NAME = "rook-chubaofs-agent"
DISCOVER_SERVICE_ACCOUNT = "rook-discover"
AGENT_SERVICE_ACCOUNT = "rook-chubaofs-agent"
AGENT_METRICS_PORT = 9500

RESTRICTED_CONTAINER: JSON = {
    "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
}
RESTRICTED_POD: JSON = {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001,
                        "seccompProfile": {"type": "RuntimeDefault"}}


def _field_env(name: str, path: str) -> JSON:
    return {"name": name, "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": path}}}


def _host_path(name: str, path: str, type_: str = "Directory") -> JSON:
    return {"name": name, "hostPath": {"path": path, "type": type_}}


def discover_daemonset(settings: OperatorSettings) -> JSON:
    """The ``rook-discover`` DaemonSet."""
    cfs = settings.of(ChubaoFSSettings)
    # /run/udev is optional (no type check): minimal nodes without udev still run discovery,
    # lsblk then simply reports fewer details (model, serial).
    mounts = [("dev", "/dev", "Directory"), ("sys", "/sys", "Directory"), ("udev", "/run/udev", "")]
    return NodeDaemon(
        name=DISCOVER_NAME, namespace=settings.namespace, image=settings.image, args=["discover"],
        service_account=DISCOVER_SERVICE_ACCOUNT,
        scheduling=Scheduling(tolerations=cfs.discover_tolerations, node_affinity=cfs.discover_node_affinity,
                              priority_class_name=cfs.discover_priority_class_name or None,
                              pod_labels=cfs.discover_pod_labels),
        env=[_field_env("NODE_NAME", "spec.nodeName"), _field_env("POD_NAMESPACE", "metadata.namespace"),
             {"name": "ROOK_DISCOVER_DEVICES_INTERVAL", "value": format_duration(cfs.discover_devices_interval)},
             {"name": "ROOK_LOG_LEVEL", "value": settings.log_level}],
        # lsblk reads /sys/block and the udev database (model, serial, WWN); all world-readable,
        # so read-only hostPath mounts suffice and the pod needs no privilege.
        volumes=[_host_path(n, p, kind) for n, p, kind in mounts],
        volume_mounts=[{"name": n, "mountPath": p, "readOnly": True} for n, p, _ in mounts],
        security_context=RESTRICTED_CONTAINER, pod_security_context=RESTRICTED_POD,
        resources={"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "128Mi"}},
        labels={"app.kubernetes.io/part-of": "rook-chubaofs", "app.kubernetes.io/component": "discover"},
    ).build()


def agent_daemonset(settings: OperatorSettings) -> JSON:
    """The ``rook-chubaofs-agent`` DaemonSet."""
    cfs = settings.of(ChubaoFSSettings)
    env = [_field_env("NODE_NAME", "spec.nodeName"), _field_env("POD_NAMESPACE", "metadata.namespace"),
           _field_env("POD_IP", "status.podIP"), _field_env("HOST_IP", "status.hostIP"),
           {"name": "ROOK_LOG_LEVEL", "value": settings.log_level}]
    # The agent's own flags (rook chubaofs agent), through their ROOK_<FLAG> env.
    for name, value in (("ROOK_MONITOR", cfs.agent_monitor), ("ROOK_CONSUL_ADDR", cfs.agent_consul_addr),
                        ("ROOK_DEREGISTER_STALE_AFTER",
                         format_duration(cfs.agent_deregister_stale_after) if cfs.agent_deregister_stale_after else ""),
                        ("ROOK_DATA_PATHS", ",".join(cfs.agent_data_paths))):
        if value:
            env.append({"name": name, "value": value})
    volumes = [_host_path("sys", "/sys")]
    mounts = [{"name": "sys", "mountPath": "/sys", "readOnly": True}]
    for i, path in enumerate(cfs.agent_data_paths):
        # statvfs of the data path needs only a read-only view of that directory.
        volumes.append(_host_path(f"data-{i}", path))
        mounts.append({"name": f"data-{i}", "mountPath": path, "readOnly": True})
    return NodeDaemon(
        name=AGENT_NAME, namespace=settings.namespace, image=settings.image, args=["chubaofs", "agent"],
        service_account=AGENT_SERVICE_ACCOUNT,
        scheduling=Scheduling(tolerations=cfs.agent_tolerations, node_affinity=cfs.agent_node_affinity,
                              priority_class_name=cfs.agent_priority_class_name or None,
                              pod_labels=cfs.agent_pod_labels),
        env=env, volumes=volumes, volume_mounts=mounts,
        ports=[{"name": "metrics", "containerPort": AGENT_METRICS_PORT, "protocol": "TCP"}],
        security_context=RESTRICTED_CONTAINER, pod_security_context=RESTRICTED_POD,
        resources={"requests": {"cpu": "10m", "memory": "48Mi"}, "limits": {"memory": "192Mi"}},
        labels={"app.kubernetes.io/part-of": "rook-chubaofs", "app.kubernetes.io/component": "agent"},
    ).build()


def ensure_node_daemons(client: Any, settings: OperatorSettings) -> dict[str, str]:
    """Create/update or remove both DaemonSets; returns ``{name: action}`` (action "removed" or
    "absent" when the switch is off). Idempotent, so every replica may run it."""
    cfs = settings.of(ChubaoFSSettings)
    # Build every DaemonSet before the first write, so nothing is half updated if one fails.
    plan = [(DISCOVER_NAME, discover_daemonset(settings) if cfs.enable_discovery_daemon else None),
            (AGENT_NAME, agent_daemonset(settings) if cfs.enable_agent else None)]
    actions: dict[str, str] = {}
    try:
        for name, desired in plan:
            if desired is not None:
                actions[name] = ensure_daemonset(client, desired, field_manager=FIELD_MANAGER).action
            else:
                actions[name] = "removed" if remove_daemonset(client, name, settings.namespace) else "absent"
    except errors.NotFound as err:
        raise Fatal(f"cannot manage the node daemons in namespace {settings.namespace}: {err} "
                    f"(apply manifests/common.yaml first)") from None
    return actions


# -- RBAC ---------------------------------------------------------------------------------------
# Exactly the API calls the code makes (tests/e2e/test_manifests.py records them on envtest and
# fails on any call not granted here and on any grant never used). No wildcards.
OPERATOR_SERVICE_ACCOUNT = "rook-chubaofs-operator"
_READ = ["get", "list", "watch"]
# Owned objects are read from the cache and written by server-side apply, a PATCH that also
# creates (and moves objects of the earlier client-side apply to it, once, by a JSON patch)
_OWNED = ["list", "watch", "patch", "delete"]

#: Cluster-wide: ChubaoMonitors may live in any namespace, and so do the objects they own.
OPERATOR_CLUSTER_RULES: list[JSON] = [
    {"apiGroups": ["apiextensions.k8s.io"], "resources": ["customresourcedefinitions"],
     "resourceNames": ["chubaomonitors.chubaofs.rook.io"], "verbs": ["get"]},
    {"apiGroups": ["chubaofs.rook.io"], "resources": ["chubaomonitors"], "verbs": ["get", "list", "watch", "update"]},
    {"apiGroups": ["chubaofs.rook.io"], "resources": ["chubaomonitors/status"], "verbs": ["update"]},
    {"apiGroups": ["apps"], "resources": ["statefulsets", "deployments"], "verbs": _OWNED},
    {"apiGroups": ["policy"], "resources": ["poddisruptionbudgets"], "verbs": _OWNED},
    {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses"], "verbs": _OWNED},
    {"apiGroups": [""], "resources": ["services"], "verbs": _OWNED},
    # the operator's settings ConfigMap is read directly
    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", *_OWNED]},
    # a generated password is created once and never changed (Writer.create_if_absent)
    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create", *_OWNED]},
    {"apiGroups": [""], "resources": ["persistentvolumeclaims"], "verbs": ["list", "patch", "delete"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
    # The self-managed webhook certificate: its CA bundle goes into our two configurations only.
    # (Its Secret, in the operator's namespace, is read and renewed by name: see the namespace rules.)
    {"apiGroups": ["admissionregistration.k8s.io"], "resources": ["validatingwebhookconfigurations"],
     "resourceNames": [VALIDATING_CONFIGURATION], "verbs": ["get", "update"]},
    {"apiGroups": ["admissionregistration.k8s.io"], "resources": ["mutatingwebhookconfigurations"],
     "resourceNames": [MUTATING_CONFIGURATION], "verbs": ["get", "update"]},
]
#: In the operator's namespace only: its own Pod, its Lease, its settings ConfigMap, the
#: node-daemon DaemonSets.
OPERATOR_NAMESPACE_RULES: list[JSON] = [
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]},
    # Read at start, then watched through a metadata.name field selector, which RBAC authorizes
    # by name (kube-apiserver requestinfo.go). The cluster-wide configmaps rule covers it
    # today; this one keeps it granted by name if that rule ever narrows.
    {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": [configmap_name("chubaofs")],
     "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update"]},
    # The webhook certificate's Secret (created under the cluster-wide secrets rule).
    {"apiGroups": [""], "resources": ["secrets"], "resourceNames": [WEBHOOK_SECRET], "verbs": ["get", "update"]},
    # Server-side apply creates them too, by name: only our two are ever touched.
    {"apiGroups": ["apps"], "resources": ["daemonsets"], "resourceNames": [DISCOVER_NAME, AGENT_NAME],
     "verbs": ["get", "patch", "delete"]},
]
#: rook discover: reads and writes its node's ConfigMap in the operator's namespace.
DISCOVER_NAMESPACE_RULES: list[JSON] = [
    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "create", "update"]},
]
#: rook chubaofs agent: reads discover ConfigMaps (namespace) and the monitor it registers with.
AGENT_NAMESPACE_RULES: list[JSON] = [
    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]},
]
AGENT_CLUSTER_RULES: list[JSON] = [
    {"apiGroups": ["chubaofs.rook.io"], "resources": ["chubaomonitors"], "verbs": ["get"]},
]
