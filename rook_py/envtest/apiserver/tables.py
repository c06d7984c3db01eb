"""Server-side printing: ``meta.k8s.io/v1`` Tables, as kube-apiserver returns for ``as=Table``.

kubectl asks every ``get`` for ``application/json;as=Table;v=v1;g=meta.k8s.io`` and prints the
cells it receives, so these columns are what users see. Custom resources get the CRD's
``additionalPrinterColumns`` behind a leading Name column (an Age column when the CRD declares
none), evaluated like apiextensions-apiserver's tableconvertor (pkg/registry/customresource/
tableconvertor/tableconvertor.go); built-ins get the columns of kube-apiserver's printers
(pkg/printers/internalversion/printers.go); anything else gets Name and Age.

Ages render like ``duration.HumanDuration`` (k8s.io/apimachinery/pkg/util/duration): ``45s``,
``5m``, ``7m3s``, ``3h20m``, ``2d3h``, ``1y20d``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from rook_py.envtest.apiserver.jsonpath import compile_path
from rook_py.framework.kube.selectors import format_selector
from rook_py.framework.kube.times import parse_time_or_none

__all__ = ["builtin_columns", "human_duration", "to_table"]

JSON = dict[str, Any]

NAME_DESCRIPTION: Final = (
    "Name must be unique within a namespace. Is required when creating resources, although some "
    "resources may allow a client to request the generation of an appropriate name automatically. "
    "Name is primarily intended for creation idempotence and configuration definition. Cannot be "
    "updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"
)
AGE_DESCRIPTION: Final = (
    "CreationTimestamp is a timestamp representing the server time when this object was created. It "
    "is not guaranteed to be set in happens-before order across separate operations. Clients may not "
    "set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. "
    "Read-only. Null for lists. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"
)

_INCLUDE: Final = ("None", "Metadata", "Object")


# ---------------------------------------------------------------------------------------------
# Durations and timestamps
# ---------------------------------------------------------------------------------------------


def human_duration(seconds: float) -> str:
    """``duration.HumanDuration``: coarse, two-unit at most, like kubectl's AGE column."""
    secs = int(seconds)
    if secs < -1:
        return "<invalid>"
    if secs < 0:
        return "0s"
    if secs < 120:
        return f"{secs}s"
    minutes = secs // 60
    if minutes < 10:
        s = secs % 60
        return f"{minutes}m" if s == 0 else f"{minutes}m{s}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = secs // 3600
    if hours < 8:
        m = minutes % 60
        return f"{hours}h" if m == 0 else f"{hours}h{m}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d" if h == 0 else f"{hours // 24}d{h}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if dy == 0 else f"{hours // 24 // 365}y{dy}d"
    return f"{hours // 24 // 365}y"


def _parse_time(value: Any) -> datetime | None:
    return parse_time_or_none(value) if isinstance(value, str) else None


def _age(obj: Mapping[str, Any], now: datetime) -> str:
    """translateTimestampSince: ``<unknown>`` without a creationTimestamp."""
    ts = _parse_time((obj.get("metadata") or {}).get("creationTimestamp"))
    if ts is None:
        return "<unknown>"
    return human_duration((now - ts).total_seconds())


def _created_at(obj: Mapping[str, Any]) -> str:
    ts = _parse_time((obj.get("metadata") or {}).get("creationTimestamp"))
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if ts else "<unknown>"


# ---------------------------------------------------------------------------------------------
# Built-in printers
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Column:
    name: str
    type: str
    description: str
    cell: Callable[[Mapping[str, Any], datetime], Any]
    priority: int = 0
    format: str = ""

    def definition(self) -> JSON:
        return {
            "name": self.name,
            "type": self.type,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        }


def _get(obj: Mapping[str, Any], *path: str) -> Any:
    cur: Any = obj
    for p in path:
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(p)
    return cur


def _none(value: Any) -> str:
    return str(value) if value not in (None, "") else "<none>"


def _name_col() -> _Column:
    return _Column(
        "Name", "string", NAME_DESCRIPTION, lambda o, _n: _get(o, "metadata", "name") or "", format="name"
    )


def _age_col() -> _Column:
    return _Column("Age", "string", AGE_DESCRIPTION, _age)


def _created_at_col() -> _Column:
    return _Column("Created At", "date", AGE_DESCRIPTION, lambda o, _n: _created_at(o))


def _pod_template_containers(obj: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list(_get(obj, "spec", "template", "spec", "containers") or [])


def _containers_col() -> _Column:
    return _Column(
        "Containers",
        "string",
        "Names of each container in the template.",
        lambda o, _n: ",".join(c.get("name", "") for c in _pod_template_containers(o)),
        priority=1,
    )


def _images_col() -> _Column:
    return _Column(
        "Images",
        "string",
        "Images referenced by each container in the template.",
        lambda o, _n: ",".join(c.get("image", "") for c in _pod_template_containers(o)),
        priority=1,
    )


def _selector_text(selector: Any) -> str:
    """metav1.FormatLabelSelector: ``<none>`` when empty, else ``k=v,k2 in (a,b)``."""
    if not isinstance(selector, Mapping):
        return "<none>"
    parts = [format_selector(selector.get("matchLabels") or {})] if selector.get("matchLabels") else []
    for expr in selector.get("matchExpressions") or []:
        op = expr.get("operator")
        key = expr.get("key", "")
        values = ",".join(expr.get("values") or [])
        if op == "In":
            parts.append(f"{key} in ({values})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({values})")
        elif op == "Exists":
            parts.append(key)
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    text = ",".join(p for p in parts if p)
    return text or "<none>"


def _selector_col() -> _Column:
    return _Column(
        "Selector",
        "string",
        "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.",
        lambda o, _n: _selector_text(_get(o, "spec", "selector")),
        priority=1,
    )


def _pod_status(pod: Mapping[str, Any]) -> tuple[str, int, int, int]:
    """(reason, ready containers, total containers, restarts) as printPod computes them."""
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    total = len(spec.get("containers") or [])
    reason = status.get("reason") or status.get("phase") or ""
    ready = restarts = 0
    initializing = False
    for i, cs in enumerate(status.get("initContainerStatuses") or []):
        restarts += int(cs.get("restartCount") or 0)
        state = cs.get("state") or {}
        term = state.get("terminated")
        if term is not None and term.get("exitCode", 0) == 0:
            continue
        initializing = True
        if term is not None:
            reason = "Init:" + (term.get("reason") or f"ExitCode:{term.get('exitCode', 0)}")
        elif (state.get("waiting") or {}).get("reason") not in (None, "", "PodInitializing"):
            reason = "Init:" + state["waiting"]["reason"]
        else:
            reason = f"Init:{i}/{len(spec.get('initContainers') or [])}"
        break
    if not initializing:
        has_running = False
        for cs in reversed(status.get("containerStatuses") or []):
            restarts += int(cs.get("restartCount") or 0)
            state = cs.get("state") or {}
            # Presence, not truthiness: `running: {}` is a running container.
            waiting, term = state.get("waiting"), state.get("terminated")
            if waiting is not None and waiting.get("reason"):
                reason = waiting["reason"]
            elif term is not None and term.get("reason"):
                reason = term["reason"]
            elif term is not None:
                reason = (
                    f"Signal:{term['signal']}"
                    if term.get("signal")
                    else f"ExitCode:{term.get('exitCode', 0)}"
                )
            elif state.get("running") is not None and cs.get("ready"):
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            pod_ready = any(
                c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or []
            )
            reason = "Running" if pod_ready else "NotReady"
    if _get(pod, "metadata", "deletionTimestamp"):
        reason = "Unknown" if status.get("reason") == "NodeLost" else "Terminating"
    return reason, ready, total, restarts


def _pod_columns() -> list[_Column]:
    return [
        _name_col(),
        _Column(
            "Ready",
            "string",
            "The aggregate readiness state of this pod for accepting traffic.",
            lambda o, _n: f"{_pod_status(o)[1]}/{_pod_status(o)[2]}",
        ),
        _Column(
            "Status",
            "string",
            "The aggregate status of the containers in this pod.",
            lambda o, _n: _pod_status(o)[0],
        ),
        _Column(
            "Restarts",
            "string",
            "The number of times the containers in this pod have been restarted and when the last "
            "container in this pod has restarted.",
            lambda o, _n: str(_pod_status(o)[3]),
        ),
        _age_col(),
        _Column(
            "IP",
            "string",
            "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.",
            lambda o, _n: _none(_get(o, "status", "podIP")),
            priority=1,
        ),
        _Column(
            "Node",
            "string",
            "NodeName indicates in which node this pod is scheduled.",
            lambda o, _n: _none(_get(o, "spec", "nodeName")),
            priority=1,
        ),
        _Column(
            "Nominated Node",
            "string",
            "nominatedNodeName is set only when this pod preempts other pods on the node.",
            lambda o, _n: _none(_get(o, "status", "nominatedNodeName")),
            priority=1,
        ),
        _Column(
            "Readiness Gates",
            "string",
            "If specified, all readiness gates will be evaluated for pod readiness.",
            lambda o, _n: _readiness_gates(o),
            priority=1,
        ),
    ]


def _readiness_gates(pod: Mapping[str, Any]) -> str:
    gates = _get(pod, "spec", "readinessGates") or []
    if not gates:
        return "<none>"
    conditions = {c.get("type"): c.get("status") for c in _get(pod, "status", "conditions") or []}
    ok = sum(1 for g in gates if conditions.get(g.get("conditionType")) == "True")
    return f"{ok}/{len(gates)}"


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def _replicas(obj: Mapping[str, Any]) -> int:
    value = _get(obj, "spec", "replicas")
    return 1 if value is None else _int(value)


def _deployment_columns() -> list[_Column]:
    return [
        _name_col(),
        _Column(
            "Ready",
            "string",
            "Number of the pod with ready state",
            lambda o, _n: f"{_int(_get(o, 'status', 'readyReplicas'))}/{_replicas(o)}",
        ),
        # Typed "string" by kube-apiserver v1.28, though the cells are numbers (as for the Data
        # counts of ConfigMaps and Secrets and a ServiceAccount's Secrets).
        _Column(
            "Up-to-date",
            "string",
            "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
            lambda o, _n: _int(_get(o, "status", "updatedReplicas")),
        ),
        _Column(
            "Available",
            "string",
            "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
            lambda o, _n: _int(_get(o, "status", "availableReplicas")),
        ),
        _age_col(),
        _containers_col(),
        _images_col(),
        _selector_col(),
    ]


def _statefulset_columns() -> list[_Column]:
    return [
        _name_col(),
        _Column(
            "Ready",
            "string",
            "Number of the pod with ready state",
            lambda o, _n: f"{_int(_get(o, 'status', 'readyReplicas'))}/{_replicas(o)}",
        ),
        _age_col(),
        _containers_col(),
        _images_col(),
    ]


def _replicaset_columns() -> list[_Column]:
    return [
        _name_col(),
        _Column(
            "Desired", "integer", "Replicas is the number of desired replicas.", lambda o, _n: _replicas(o)
        ),
        _Column(
            "Current",
            "integer",
            "Replicas is the most recently observed number of replicas.",
            lambda o, _n: _int(_get(o, "status", "replicas")),
        ),
        _Column(
            "Ready",
            "integer",
            "The number of ready replicas for this replica set.",
            lambda o, _n: _int(_get(o, "status", "readyReplicas")),
        ),
        _age_col(),
        _containers_col(),
        _images_col(),
        _selector_col(),
    ]


def _daemonset_columns() -> list[_Column]:
    def status_int(field: str) -> Callable[[Mapping[str, Any], datetime], Any]:
        return lambda o, _n: _int(_get(o, "status", field))

    def node_selector(o: Mapping[str, Any], _n: datetime) -> str:
        sel = _get(o, "spec", "template", "spec", "nodeSelector") or {}
        return format_selector(sel) if sel else "<none>"

    return [
        _name_col(),
        _Column(
            "Desired",
            "integer",
            "The total number of nodes that should be running the daemon pod (including nodes correctly "
            "running the daemon pod).",
            status_int("desiredNumberScheduled"),
        ),
        _Column(
            "Current",
            "integer",
            "The number of nodes that are running at least one daemon pod and are supposed to run the daemon pod.",
            status_int("currentNumberScheduled"),
        ),
        _Column(
            "Ready",
            "integer",
            "The number of nodes that should be running the daemon pod and have one or more of the daemon "
            "pod running and ready.",
            status_int("numberReady"),
        ),
        _Column(
            "Up-to-date",
            "integer",
            "The total number of nodes that are running updated daemon pod",
            status_int("updatedNumberScheduled"),
        ),
        _Column(
            "Available",
            "integer",
            "The number of nodes that should be running the daemon pod and have one or more of the daemon "
            "pod running and available (ready for at least spec.minReadySeconds)",
            status_int("numberAvailable"),
        ),
        _Column(
            "Node Selector",
            "string",
            "NodeSelector is a selector which must be true for the pod to fit on a node. Selector which "
            "must match a node's labels for the pod to be scheduled on that node.",
            node_selector,
        ),
        _age_col(),
        _containers_col(),
        _images_col(),
        _selector_col(),
    ]


def _service_external_ip(svc: Mapping[str, Any]) -> str:
    spec = svc.get("spec") or {}
    typ = spec.get("type") or "ClusterIP"
    external = list(spec.get("externalIPs") or [])
    if typ == "ClusterIP":
        return ",".join(external) if external else "<none>"
    if typ == "NodePort":
        return ",".join(external) if external else "<none>"
    if typ == "LoadBalancer":
        ingress = [
            i.get("ip") or i.get("hostname") or ""
            for i in _get(svc, "status", "loadBalancer", "ingress") or []
        ]
        addrs = [a for a in ingress + external if a]
        return ",".join(addrs) if addrs else "<pending>"
    if typ == "ExternalName":
        return str(spec.get("externalName") or "<none>")
    return "<unknown>"


def _service_ports(svc: Mapping[str, Any]) -> str:
    ports = _get(svc, "spec", "ports") or []
    if not ports:
        return "<none>"
    out = []
    for p in ports:
        proto = p.get("protocol") or "TCP"
        if p.get("nodePort"):
            out.append(f"{p.get('port')}:{p['nodePort']}/{proto}")
        else:
            out.append(f"{p.get('port')}/{proto}")
    return ",".join(out)


def _service_columns() -> list[_Column]:
    return [
        _name_col(),
        _Column(
            "Type",
            "string",
            "type determines how the Service is exposed.",
            lambda o, _n: _get(o, "spec", "type") or "ClusterIP",
        ),
        _Column(
            "Cluster-IP",
            "string",
            "clusterIP is the IP address of the service and is usually assigned randomly.",
            lambda o, _n: _none(_get(o, "spec", "clusterIP")),
        ),
        _Column(
            "External-IP",
            "string",
            "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.",
            lambda o, _n: _service_external_ip(o),
        ),
        _Column(
            "Port(s)",
            "string",
            "The list of ports that are exposed by this service.",
            lambda o, _n: _service_ports(o),
        ),
        _age_col(),
        _Column(
            "Selector",
            "string",
            "Route service traffic to pods with label keys and values matching this selector.",
            lambda o, _n: format_selector(_get(o, "spec", "selector") or {}) or "<none>",
            priority=1,
        ),
    ]


def _configmap_columns() -> list[_Column]:
    return [
        _name_col(),
        _Column(
            "Data",
            "string",
            "Data contains the configuration data.",
            lambda o, _n: len(o.get("data") or {}) + len(o.get("binaryData") or {}),
        ),
        _age_col(),
    ]


def _secret_columns() -> list[_Column]:
    return [
        _name_col(),
        _Column(
            "Type",
            "string",
            "Used to facilitate programmatic handling of secret data.",
            lambda o, _n: o.get("type") or "",
        ),
        _Column("Data", "string", "Data contains the secret data.", lambda o, _n: len(o.get("data") or {})),
        _age_col(),
    ]


_ACCESS_MODES: Final = {
    "ReadWriteOnce": "RWO",
    "ReadOnlyMany": "ROX",
    "ReadWriteMany": "RWX",
    "ReadWriteOncePod": "RWOP",
}


def _access_modes(modes: Sequence[str]) -> str:
    seen: list[str] = []
    for mode in ("ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod"):
        if mode in modes:
            seen.append(_ACCESS_MODES[mode])
    return ",".join(seen)


def _pvc_columns() -> list[_Column]:
    def status(o: Mapping[str, Any], _n: datetime) -> str:
        if _get(o, "metadata", "deletionTimestamp"):
            return "Terminating"
        return str(_get(o, "status", "phase") or "")

    def bound(o: Mapping[str, Any]) -> bool:
        return bool(_get(o, "spec", "volumeName"))

    return [
        _name_col(),
        _Column("Status", "string", "Phase represents the current phase of PersistentVolumeClaim.", status),
        _Column(
            "Volume",
            "string",
            "VolumeName is the binding reference to the PersistentVolume backing this claim.",
            lambda o, _n: _get(o, "spec", "volumeName") or "",
        ),
        _Column(
            "Capacity",
            "string",
            "Capacity represents the actual resources of the underlying volume.",
            lambda o, _n: str(_get(o, "status", "capacity", "storage") or "") if bound(o) else "",
        ),
        _Column(
            "Access Modes",
            "string",
            "AccessModes contains the actual access modes the volume backing the PVC has.",
            lambda o, _n: _access_modes(_get(o, "status", "accessModes") or []) if bound(o) else "",
        ),
        _Column(
            "StorageClass",
            "string",
            "StorageClassName is the name of the StorageClass required by the claim.",
            lambda o, _n: _get(o, "spec", "storageClassName") or "",
        ),
        _age_col(),
        _Column(
            "VolumeMode",
            "string",
            "volumeMode defines what type of volume is required by the claim.",
            lambda o, _n: _get(o, "spec", "volumeMode") or "Filesystem",
            priority=1,
        ),
    ]


def _node_status(node: Mapping[str, Any]) -> str:
    ready = "Unknown"
    for c in _get(node, "status", "conditions") or []:
        if c.get("type") == "Ready":
            ready = "Ready" if c.get("status") == "True" else "NotReady"
    if _get(node, "spec", "unschedulable"):
        ready += ",SchedulingDisabled"
    return ready


def _node_roles(node: Mapping[str, Any]) -> str:
    roles: set[str] = set()
    for key, value in (_get(node, "metadata", "labels") or {}).items():
        if key.startswith("node-role.kubernetes.io/"):
            role = key[len("node-role.kubernetes.io/") :]
            if role:
                roles.add(role)
        elif key == "kubernetes.io/role" and value:
            roles.add(value)
    return ",".join(sorted(roles)) if roles else "<none>"


def _node_address(node: Mapping[str, Any], kind: str) -> str:
    for a in _get(node, "status", "addresses") or []:
        if a.get("type") == kind:
            return str(a.get("address") or "<none>")
    return "<none>"


def _node_columns() -> list[_Column]:
    def info(field: str) -> Callable[[Mapping[str, Any], datetime], Any]:
        return lambda o, _n: _get(o, "status", "nodeInfo", field) or "<unknown>"

    return [
        _name_col(),
        _Column("Status", "string", "The status of the node", lambda o, _n: _node_status(o)),
        _Column("Roles", "string", "The roles of the node", lambda o, _n: _node_roles(o)),
        _age_col(),
        _Column(
            "Version",
            "string",
            "Kubelet Version reported by the node.",
            lambda o, _n: _get(o, "status", "nodeInfo", "kubeletVersion") or "",
        ),
        _Column(
            "Internal-IP",
            "string",
            "List of addresses reachable to the node.",
            lambda o, _n: _node_address(o, "InternalIP"),
            priority=1,
        ),
        _Column(
            "External-IP",
            "string",
            "List of addresses reachable to the node.",
            lambda o, _n: _node_address(o, "ExternalIP"),
            priority=1,
        ),
        _Column(
            "OS-Image",
            "string",
            "OS Image reported by the node from /etc/os-release.",
            info("osImage"),
            priority=1,
        ),
        _Column(
            "Kernel-Version",
            "string",
            "Kernel Version reported by the node.",
            info("kernelVersion"),
            priority=1,
        ),
        _Column(
            "Container-Runtime",
            "string",
            "ContainerRuntime Version reported by the node.",
            info("containerRuntimeVersion"),
            priority=1,
        ),
    ]


def _namespace_columns() -> list[_Column]:
    return [
        _name_col(),
        _Column(
            "Status",
            "string",
            "The status of the namespace",
            lambda o, _n: _get(o, "status", "phase") or "Active",
        ),
        _age_col(),
    ]


def _lease_columns() -> list[_Column]:
    return [
        _name_col(),
        _Column(
            "Holder",
            "string",
            "holderIdentity contains the identity of the holder of a current lease.",
            lambda o, _n: _get(o, "spec", "holderIdentity") or "",
        ),
        _age_col(),
    ]


def _serviceaccount_columns() -> list[_Column]:
    return [
        _name_col(),
        _Column(
            "Secrets",
            "string",
            "Secrets is a list of the secrets in the same namespace.",
            lambda o, _n: len(o.get("secrets") or []),
        ),
        _age_col(),
    ]


def _endpoints_text(ep: Mapping[str, Any]) -> str:
    pairs: list[str] = []
    for subset in ep.get("subsets") or []:
        ports = subset.get("ports") or [{}]
        for addr in subset.get("addresses") or []:
            for port in ports:
                ip = addr.get("ip", "")
                pairs.append(f"{ip}:{port['port']}" if "port" in port else ip)
    if not pairs:
        return "<none>"
    if len(pairs) > 3:
        return ",".join(pairs[:3]) + f" + {len(pairs) - 3} more..."
    return ",".join(pairs)


def _endpoints_columns() -> list[_Column]:
    return [
        _name_col(),
        _Column("Endpoints", "string", "Endpoints of the service", lambda o, _n: _endpoints_text(o)),
        _age_col(),
    ]


def _subjects(binding: Mapping[str, Any], kind: str) -> str:
    """Comma-joined names of a binding's subjects of one kind (ServiceAccounts as ``ns/name``)."""
    names = []
    for subject in binding.get("subjects") or []:
        if subject.get("kind") != kind:
            continue
        name = str(subject.get("name") or "")
        names.append(f"{subject.get('namespace') or ''}/{name}" if kind == "ServiceAccount" else name)
    return ", ".join(names)


def _rolebinding_columns() -> list[_Column]:
    return [
        _name_col(),
        _Column(
            "Role",
            "string",
            "RoleRef references the Role or ClusterRole.",
            lambda o, _n: f"{_get(o, 'roleRef', 'kind') or ''}/{_get(o, 'roleRef', 'name') or ''}",
        ),
        _age_col(),
        _Column("Users", "string", "Users in the roleBinding", lambda o, _n: _subjects(o, "User"), priority=1),
        _Column("Groups", "string", "Groups in the roleBinding", lambda o, _n: _subjects(o, "Group"), priority=1),
        _Column("ServiceAccounts", "string", "ServiceAccounts in the roleBinding",
                lambda o, _n: _subjects(o, "ServiceAccount"), priority=1),
    ]


def _event_time(event: Mapping[str, Any], field: str, now: datetime) -> str:
    """An Event's ``lastTimestamp``/``firstTimestamp`` as an age, falling back to ``eventTime``
    (events.k8s.io clients set only that); ``<unknown>`` when neither is set."""
    ts = _parse_time(event.get(field)) or _parse_time(event.get("eventTime"))
    return "<unknown>" if ts is None else human_duration((now - ts).total_seconds())


def _event_source(event: Mapping[str, Any]) -> str:
    source = event.get("source") or {}
    component = source.get("component") or event.get("reportingComponent") or ""
    host = source.get("host") or event.get("reportingInstance") or ""
    return f"{component}, {host}" if component and host else str(component or host)


def _event_columns() -> list[_Column]:
    def involved(o: Mapping[str, Any], _n: datetime) -> str:
        ref = o.get("involvedObject") or {}
        return f"{str(ref.get('kind') or '').lower()}/{ref.get('name') or ''}"

    return [
        _Column("Last Seen", "string", "The time at which the most recent occurrence of this event was recorded.",
                lambda o, n: _event_time(o, "lastTimestamp", n)),
        _Column("Type", "string", "Type of this event (Normal, Warning).", lambda o, _n: o.get("type") or ""),
        _Column("Reason", "string", "Why the object's state changed: a short, machine understandable string.",
                lambda o, _n: o.get("reason") or ""),
        _Column("Object", "string", "The object that this event is about.", involved),
        _Column("Subobject", "string", "The part of the object the event is about (a field path).",
                lambda o, _n: _get(o, "involvedObject", "fieldPath") or "", priority=1),
        _Column("Source", "string", "The component reporting this event.", lambda o, _n: _event_source(o),
                priority=1),
        _Column("Message", "string", "A human-readable description of the status of this operation.",
                lambda o, _n: o.get("message") or ""),
        _Column("First Seen", "string", "The time at which the event was first recorded.",
                lambda o, n: _event_time(o, "firstTimestamp", n), priority=1),
        # An Event written without a count has happened once.
        _Column("Count", "string", "The number of times this event has occurred.",
                lambda o, _n: _int(o.get("count")) or 1, priority=1),
        _Column("Name", "string", NAME_DESCRIPTION, lambda o, _n: _get(o, "metadata", "name") or "", priority=1,
                format="name"),
    ]


def _ingress_columns() -> list[_Column]:
    def hosts(o: Mapping[str, Any], _n: datetime) -> str:
        names = [str(r["host"]) for r in _get(o, "spec", "rules") or [] if r.get("host")]
        if not names:
            return "*"
        return ",".join(names[:4]) + (f" + {len(names) - 4} more..." if len(names) > 4 else "")

    def address(o: Mapping[str, Any], _n: datetime) -> str:
        points = _get(o, "status", "loadBalancer", "ingress") or []
        return ",".join(str(p.get("ip") or p.get("hostname") or "") for p in points)

    return [
        _name_col(),
        _Column("Class", "string", "The name of the IngressClass resource that should be used.",
                lambda o, _n: _none(_get(o, "spec", "ingressClassName"))),
        _Column("Hosts", "string", "Hosts that incoming requests are matched against.", hosts),
        _Column("Address", "string", "Address is a list containing ingress points for the load-balancer.", address),
        _Column("Ports", "string", "Ports of TLS configurations that open.",
                lambda o, _n: "80, 443" if _get(o, "spec", "tls") else "80"),
        _age_col(),
    ]


def _pdb_columns() -> list[_Column]:
    def bound(field: str) -> Callable[[Mapping[str, Any], datetime], str]:
        return lambda o, _n: str(_get(o, "spec", field)) if _get(o, "spec", field) is not None else "N/A"

    return [
        _name_col(),
        _Column("Min Available", "string", "The minimum number of pods that must be available.",
                bound("minAvailable")),
        _Column("Max Unavailable", "string", "The maximum number of pods that may be unavailable.",
                bound("maxUnavailable")),
        _Column("Allowed Disruptions", "integer", "Calculated number of pods that may be disrupted at this time.",
                lambda o, _n: _int(_get(o, "status", "disruptionsAllowed"))),
        _age_col(),
    ]


_BUILTIN: Final[Mapping[str, Callable[[], list[_Column]]]] = {
    "pods": _pod_columns,
    "deployments": _deployment_columns,
    "statefulsets": _statefulset_columns,
    "daemonsets": _daemonset_columns,
    "replicasets": _replicaset_columns,
    "services": _service_columns,
    "configmaps": _configmap_columns,
    "secrets": _secret_columns,
    "persistentvolumeclaims": _pvc_columns,
    "nodes": _node_columns,
    "namespaces": _namespace_columns,
    "leases": _lease_columns,
    "serviceaccounts": _serviceaccount_columns,
    "endpoints": _endpoints_columns,
    "rolebindings": _rolebinding_columns,
    "clusterrolebindings": _rolebinding_columns,
    "events": _event_columns,
    "ingresses": _ingress_columns,
    "poddisruptionbudgets": _pdb_columns,
    # kube-apiserver prints these with a creation timestamp rather than an age.
    "roles": lambda: [_name_col(), _created_at_col()],
    "clusterroles": lambda: [_name_col(), _created_at_col()],
    "customresourcedefinitions": lambda: [_name_col(), _created_at_col()],
}


def builtin_columns(resource: str) -> list[JSON]:
    """The column definitions kube-apiserver uses for a built-in ``resource`` (plural)."""
    return [c.definition() for c in _BUILTIN.get(resource, lambda: [_name_col(), _age_col()])()]


# ---------------------------------------------------------------------------------------------
# CRD printer columns
# ---------------------------------------------------------------------------------------------

_DEFAULT_CRD_COLUMNS: Final = (
    {
        "name": "Age",
        "type": "date",
        "jsonPath": ".metadata.creationTimestamp",
        "description": AGE_DESCRIPTION,
    },
)


def _cell_for_json(col_type: str, value: Any, now: datetime) -> Any:
    """cellForJSONValue: a typed cell, or None when the value does not fit the column type."""
    if value is None:
        return None
    if col_type == "integer":
        if isinstance(value, bool):
            return None
        if isinstance(value, int):
            return value
        if isinstance(value, float):
            return int(value)
        return None
    if col_type == "number":
        if isinstance(value, bool):
            return None
        return float(value) if isinstance(value, int | float) else None
    if col_type == "boolean":
        return value if isinstance(value, bool) else None
    if col_type == "string":
        if isinstance(value, str):
            return value
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return str(value)
        return json.dumps(value, separators=(",", ":"))
    if col_type == "date":
        if not isinstance(value, str):
            return None
        ts = _parse_time(value)
        if ts is None:
            return "<invalid>"
        return human_duration((now - ts).total_seconds())
    return None


def _crd_columns(columns: Sequence[Mapping[str, Any]]) -> list[_Column]:
    cols = [_name_col()]
    for spec in columns or _DEFAULT_CRD_COLUMNS:
        path = compile_path(str(spec.get("jsonPath", "")))
        col_type = str(spec.get("type", "string"))

        def cell(obj: Mapping[str, Any], now: datetime, path: Any = path, col_type: str = col_type) -> Any:
            found = path.evaluate(obj)
            return _cell_for_json(col_type, found[0], now) if found else None

        cols.append(
            _Column(
                name=str(spec.get("name", "")),
                type=col_type,
                description=str(spec.get("description") or ""),
                cell=cell,
                priority=int(spec.get("priority") or 0),
                format=str(spec.get("format") or ""),
            )
        )
    return cols


# ---------------------------------------------------------------------------------------------
# The Table
# ---------------------------------------------------------------------------------------------


def _row_object(obj: Mapping[str, Any], include_object: str) -> Any:
    if include_object == "None":
        return None
    if include_object == "Object":
        return obj
    api_version = "meta.k8s.io/v1"
    return {"kind": "PartialObjectMetadata", "apiVersion": api_version, "metadata": obj.get("metadata") or {}}


def to_table(
    objs: list[JSON],
    columns: list[JSON] | None,
    resource: str,
    list_meta: JSON,
    include_object: str = "Metadata",
    *,
    now: datetime | None = None,
) -> JSON:
    """A ``meta.k8s.io/v1`` Table for ``objs``.

    ``columns`` are a CRD version's ``additionalPrinterColumns`` (``[]`` means the CRD declared
    none: an Age column is used, as the apiserver does); ``None`` selects the built-in printer
    for ``resource``. ``include_object`` is the ``includeObject`` parameter: ``Metadata``
    (default: a PartialObjectMetadata per row), ``Object`` (the object itself) or ``None``.
    ``now`` fixes the clock for ages (tests); it defaults to the current UTC time.
    """
    if include_object not in _INCLUDE:
        raise ValueError(
            f'unsupported includeObject "{include_object}": supported values: "None", "Metadata", "Object"'
        )
    clock = now or datetime.now(UTC)
    cols = (
        _crd_columns(columns)
        if columns is not None
        else _BUILTIN.get(resource, lambda: [_name_col(), _age_col()])()
    )
    rows = [
        {"cells": [c.cell(obj, clock) for c in cols], "object": _row_object(obj, include_object)}
        for obj in objs
    ]
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": dict(list_meta),
        "columnDefinitions": [c.definition() for c in cols],
        "rows": rows,
    }
