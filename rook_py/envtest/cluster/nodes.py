"""Simulated Nodes, the scheduler's predicates, and a kubelet that never runs a container.

Nodes are registered once, Ready, with the labels a kubelet sets (kubernetes.io/hostname, os,
arch) plus configured labels and taints. The pod lifecycle controller plays kube-scheduler (binds
pending pods to a feasible node) and the kubelet (after ``pod_ready_delay`` reports the pod
Running and Ready with container statuses and an IP). Test hooks override the kubelet's report
per pod: not ready, crash-looping (restartCount grows, waiting CrashLoopBackOff), ready again.
"""

from __future__ import annotations

import contextlib
import ipaddress
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rook_py.envtest.cluster.base import (
    JSON,
    Controller,
    Key,
    LocalAPILike,
    deepcopy,
    is_deleting,
    meta,
    read_only_items,
    set_condition,
    with_field_manager,
)
from rook_py.framework.client import errors
from rook_py.framework.kube.times import now as now_rfc3339

V1 = "v1"


@dataclass(frozen=True)
class NodeSpec:
    """A node to register: its name, extra labels and taints (``{"key","value","effect"}`` dicts)."""

    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: Sequence[Mapping[str, str]] = ()
    unschedulable: bool = False


def default_nodes(count: int) -> list[NodeSpec]:
    """``count`` plain worker nodes named like kind's: envtest-worker, envtest-worker2, ..."""
    return [NodeSpec(name="envtest-worker" if i == 0 else f"envtest-worker{i + 1}") for i in range(count)]


def node_object(spec: NodeSpec, index: int) -> JSON:
    labels = {
        "kubernetes.io/hostname": spec.name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": "amd64",
        "type": "kwok",
    }
    labels.update(spec.labels)
    node_spec: JSON = {"podCIDR": str(pod_cidr(index))}
    node_spec["podCIDRs"] = [node_spec["podCIDR"]]
    if spec.taints:
        node_spec["taints"] = [dict(t) for t in spec.taints]
    if spec.unschedulable:
        node_spec["unschedulable"] = True
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": spec.name, "labels": labels,
                     "annotations": {"node.alpha.kubernetes.io/ttl": "0", "kwok.x-k8s.io/node": "fake"}},
        "spec": node_spec,
    }


def node_status(index: int) -> JSON:
    now = now_rfc3339()
    conditions = [
        {"type": t, "status": "False", "reason": r, "message": m, "lastHeartbeatTime": now,
         "lastTransitionTime": now}
        for t, r, m in (
            ("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
            ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        )
    ]
    conditions.append({"type": "Ready", "status": "True", "reason": "KubeletReady",
                       "message": "kubelet is posting ready status", "lastHeartbeatTime": now,
                       "lastTransitionTime": now})
    capacity = {"cpu": "32", "memory": "256Gi", "pods": "110", "ephemeral-storage": "1Ti"}
    return {
        "phase": "Running",
        "conditions": conditions,
        "addresses": [{"type": "InternalIP", "address": node_ip(index)},
                      {"type": "Hostname", "address": f"node-{index}"}],
        "capacity": capacity,
        "allocatable": dict(capacity),
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        "nodeInfo": {"architecture": "amd64", "operatingSystem": "linux", "kubeletVersion": "fake",
                     "kubeProxyVersion": "fake", "containerRuntimeVersion": "kwok://fake",
                     "osImage": "envtest simulated node", "kernelVersion": "",
                     "machineID": "", "systemUUID": "", "bootID": ""},
    }


def pod_cidr(index: int) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(f"10.244.{index}.0/24")


def node_ip(index: int) -> str:
    return f"172.18.0.{index + 2}"


# --- scheduling predicates (k8s.io/component-helpers/scheduling/corev1) ---------------------------

def tolerates(tolerations: Iterable[Mapping[str, Any]], taint: Mapping[str, Any]) -> bool:
    """Toleration.ToleratesTaint: empty effect matches all effects; empty key with Exists matches all keys."""
    for tol in tolerations:
        effect = tol.get("effect") or ""
        if effect and effect != taint.get("effect"):
            continue
        key = tol.get("key") or ""
        operator = tol.get("operator") or "Equal"
        if key and key != taint.get("key"):
            continue
        if operator == "Exists":
            return True
        if operator == "Equal" and key and (tol.get("value") or "") == (taint.get("value") or ""):
            return True
    return False


def taints_tolerated(node: Mapping[str, Any], tolerations: Iterable[Mapping[str, Any]],
                     effects: tuple[str, ...] = ("NoSchedule", "NoExecute")) -> bool:
    """Only NoSchedule and NoExecute taints keep a pod off a node; PreferNoSchedule is a preference.
    ``effects=("NoExecute",)`` asks whether a pod already there may keep running."""
    tols = list(tolerations)
    for taint in (node.get("spec") or {}).get("taints") or []:
        if taint.get("effect") in effects and not tolerates(tols, taint):
            return False
    return True


def _requirement_matches(req: Mapping[str, Any], values: Mapping[str, str]) -> bool:
    key, operator = req.get("key", ""), req.get("operator", "")
    wanted = [str(v) for v in req.get("values") or []]
    present = key in values
    if operator == "In":
        return present and values[key] in wanted
    if operator == "NotIn":
        return not present or values[key] not in wanted
    if operator == "Exists":
        return present
    if operator == "DoesNotExist":
        return not present
    if operator in ("Gt", "Lt"):
        try:
            actual, bound = int(values[key]), int(wanted[0])
        except (KeyError, IndexError, ValueError):
            return False
        return actual > bound if operator == "Gt" else actual < bound
    return False


def node_affinity_matches(node: Mapping[str, Any], affinity: Mapping[str, Any] | None) -> bool:
    """requiredDuringSchedulingIgnoredDuringExecution: terms are ORed, a term's requirements ANDed;
    matchFields supports metadata.name (the only field Kubernetes allows there)."""
    required = (((affinity or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    terms = required.get("nodeSelectorTerms")
    if not terms:
        return True
    labels = meta(node).get("labels") or {}
    fields = {"metadata.name": meta(node).get("name") or ""}
    for term in terms:
        exprs = term.get("matchExpressions") or []
        field_exprs = term.get("matchFields") or []
        if not exprs and not field_exprs:
            continue  # an empty term matches nothing (NodeSelectorTerm semantics)
        if all(_requirement_matches(r, labels) for r in exprs) and all(
                _requirement_matches(r, fields) for r in field_exprs):
            return True
    return False


def node_fits(node: Mapping[str, Any], pod_spec: Mapping[str, Any], *, ignore_unschedulable: bool = False,
              taint_effects: tuple[str, ...] = ("NoSchedule", "NoExecute")) -> bool:
    """Would kube-scheduler's filters (NodeUnschedulable, NodeAffinity, TaintToleration) pass?"""
    spec = node.get("spec") or {}
    tolerations = pod_spec.get("tolerations") or []
    if spec.get("unschedulable") and not ignore_unschedulable and not tolerates(
            tolerations, {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}):
        return False
    labels = meta(node).get("labels") or {}
    for k, v in (pod_spec.get("nodeSelector") or {}).items():
        if labels.get(k) != v:
            return False
    return node_affinity_matches(node, pod_spec.get("affinity")) and taints_tolerated(node, tolerations,
                                                                                      taint_effects)


# --- controllers ----------------------------------------------------------------------------------

UNREACHABLE = "node.kubernetes.io/unreachable"


class NodeHealth:
    """Which simulated kubelets have "stopped posting status" (a test hook); thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._down: set[str] = set()

    def set_ready(self, name: str, ready: bool) -> None:
        with self._lock:
            (self._down.discard if ready else self._down.add)(name)

    def is_down(self, name: str) -> bool:
        with self._lock:
            return name in self._down


class NodeController(Controller):
    """Registers the configured nodes and keeps them present with the status their kubelet posts.

    A node whose kubelet is down (``NodeHealth``) gets what the node lifecycle controller does
    (pkg/controller/nodelifecycle): Ready condition Unknown and the ``node.kubernetes.io/unreachable``
    NoSchedule and NoExecute taints; both are undone when the kubelet comes back.
    """

    name = "nodes"
    field_manager = "kubelet"

    def __init__(self, api: LocalAPILike, nodes: Sequence[NodeSpec], health: NodeHealth | None = None) -> None:
        super().__init__(api)
        self.specs = {spec.name: (i, spec) for i, spec in enumerate(nodes)}
        self.health = health or NodeHealth()

    def on_event(self, event_type: str, api_version: str, resource: str, obj: JSON) -> Iterable[Key]:
        name = meta(obj).get("name") or ""
        if api_version == V1 and resource == "nodes" and event_type == "DELETED" and name in self.specs:
            return [(V1, "nodes", "", name)]
        return ()

    def resync(self) -> Iterable[Key]:
        return [(V1, "nodes", "", name) for name in self.specs]

    def reconcile(self, key: Key) -> float | None:
        index, spec = self.specs[key[3]]
        try:
            node = self.api.get(V1, "nodes", spec.name)
        except errors.NotFound:
            node = self.api.create(V1, "nodes", node_object(spec, index))
        down = self.health.is_down(spec.name)
        taints = [t for t in (node.get("spec") or {}).get("taints") or [] if t.get("key") != UNREACHABLE]
        if down:
            now = now_rfc3339()
            taints += [{"key": UNREACHABLE, "effect": "NoSchedule", "timeAdded": now},
                       {"key": UNREACHABLE, "effect": "NoExecute", "timeAdded": now}]
        current = (node.get("spec") or {}).get("taints") or []
        if [(t.get("key"), t.get("effect")) for t in taints] != [(t.get("key"), t.get("effect")) for t in current]:
            node = self.api.patch(V1, "nodes", spec.name, {"spec": {"taints": taints or None},
                                                          "metadata": {"resourceVersion": meta(node).get("resourceVersion")}})
        status = dict(node.get("status") or {}) if (node.get("status") or {}).get("phase") == "Running" \
            else node_status(index)
        conditions = [dict(c) for c in status.get("conditions") or []]
        if down:
            set_condition(conditions, "Ready", "Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status.")
        else:
            set_condition(conditions, "Ready", "True", "KubeletReady", "kubelet is posting ready status")
        status["conditions"] = conditions
        if status != node.get("status"):
            fresh = dict(node)
            fresh["status"] = status
            self.api.update(V1, "nodes", fresh, subresource="status")
        return None


@dataclass
class _PodOverride:
    mode: str  # "notready" | "crashloop"
    since: float = field(default_factory=time.monotonic)
    restarts: int = 0


class PodLifecycleController(Controller):
    """kube-scheduler's binding plus the kubelet's status reporting, for every pod.

    A pod without spec.nodeName is bound to the feasible node with the fewest pods (ties by name)
    or marked Unschedulable; a bound pod on a simulated node is reported Running and Ready once
    ``ready_delay`` has passed since it was first seen bound. Pods being deleted are removed
    (their containers "stop" at once), as the kubelet does when it confirms termination.
    """

    name = "pods"
    field_manager = "kubelet"

    def __init__(self, api: LocalAPILike, nodes: Sequence[NodeSpec], *, ready_delay: float = 0.05,
                 crash_interval: float = 0.2, health: NodeHealth | None = None) -> None:
        super().__init__(api)
        self.scheduler_api = with_field_manager(api, "kube-scheduler")  # binds; the kubelet reports
        self.health = health or NodeHealth()
        self.node_index = {spec.name: i for i, spec in enumerate(nodes)}
        self.ready_delay = ready_delay
        self.crash_interval = crash_interval
        self._lock = threading.Lock()
        self._bound_at: dict[str, float] = {}  # pod uid -> when the kubelet first saw it
        self._overrides: dict[tuple[str, str], _PodOverride] = {}
        self._ip_next: dict[str, int] = {}

    # hooks ---------------------------------------------------------------------------------------
    def set_override(self, namespace: str, name: str, mode: str | None) -> None:
        """``mode`` None clears the override (the pod becomes Ready again)."""
        if mode not in (None, "notready", "crashloop"):
            raise ValueError(f"unknown pod mode {mode!r}")
        with self._lock:
            if mode is None:
                self._overrides.pop((namespace, name), None)
            else:
                self._overrides[(namespace, name)] = _PodOverride(mode)

    def on_event(self, event_type: str, api_version: str, resource: str, obj: JSON) -> Iterable[Key]:
        if api_version != V1:
            return ()
        if resource == "pods":
            if event_type == "DELETED":
                with self._lock:
                    self._bound_at.pop(meta(obj).get("uid") or "", None)
                    # A hook describes one pod's containers; a same-named successor (a StatefulSet
                    # pod recreated) starts healthy.
                    self._overrides.pop((meta(obj).get("namespace") or "", meta(obj).get("name") or ""), None)
                return ()
            return [(V1, "pods", meta(obj).get("namespace") or "", meta(obj).get("name") or "")]
        if resource == "nodes" and event_type != "DELETED":
            # A new or changed node can make pending pods schedulable.
            return self._pending_pod_keys()
        return ()

    def _pending_pod_keys(self) -> list[Key]:
        items = read_only_items(self.api, V1, "pods")
        return [(V1, "pods", meta(p).get("namespace") or "", meta(p).get("name") or "")
                for p in items if not (p.get("spec") or {}).get("nodeName")]

    def resync(self) -> Iterable[Key]:
        items = read_only_items(self.api, V1, "pods")
        return [(V1, "pods", meta(p).get("namespace") or "", meta(p).get("name") or "") for p in items]

    def reconcile(self, key: Key) -> float | None:
        try:
            pod = self.api.get(V1, "pods", key[3], key[2])
        except errors.NotFound:
            return None
        spec = pod.get("spec") or {}
        if is_deleting(pod):
            if not meta(pod).get("finalizers"):
                # The kubelet confirms termination with a zero-grace delete; the uid precondition
                # keeps it from deleting a same-named successor.
                with contextlib.suppress(errors.NotFound, errors.Conflict):
                    self.api.delete(V1, "pods", key[3], key[2],
                                    preconditions={"uid": meta(pod).get("uid")})
            return None
        node_name = spec.get("nodeName")
        if not node_name:
            return self._schedule(pod)
        if node_name not in self.node_index:
            return None  # a node this simulator does not run: nobody reports for it
        phase = (pod.get("status") or {}).get("phase")
        if phase in ("Succeeded", "Failed"):
            return None
        if self.health.is_down(node_name):
            # Nobody reports for the pod; the node lifecycle controller marks it not Ready
            # (nodelifecycle MarkPodsNotReady) and leaves the rest of the last reported status.
            status = deepcopy(pod.get("status") or {})
            conditions = status.get("conditions") or []
            set_condition(conditions, "Ready", "False", "NodeNotReady", "the node's kubelet is not posting status")
            status["conditions"] = conditions
            self._write_status(pod, status)
            return None
        uid = meta(pod).get("uid") or ""
        now = time.monotonic()
        with self._lock:
            first = self._bound_at.setdefault(uid, now)
            override = self._overrides.get((key[2], key[3]))
        if now - first < self.ready_delay:
            if phase != "Pending" or not (pod.get("status") or {}).get("containerStatuses"):
                self._write_status(pod, self._pending_status(pod, node_name))
            return self.ready_delay - (now - first)
        if override is not None and override.mode == "crashloop":
            return self._crashloop(pod, node_name, override)
        ready = override is None
        desired = self._running_status(pod, node_name, ready=ready)
        self._write_status(pod, desired)
        return None

    # scheduling ----------------------------------------------------------------------------------
    def _schedule(self, pod: JSON) -> float | None:
        spec = pod.get("spec") or {}
        nodes = read_only_items(self.api, V1, "nodes")
        feasible = [n for n in nodes if not is_deleting(n) and _node_ready(n) and node_fits(n, spec)]
        if not feasible:
            status = deepcopy(pod.get("status") or {})
            status.setdefault("phase", "Pending")
            conditions = status.get("conditions") or []
            set_condition(conditions, "PodScheduled", "False", "Unschedulable",
                          f"0/{len(nodes)} nodes are available: no node matches the pod's node "
                          "selector, affinity and tolerations.")
            status["conditions"] = conditions
            self._write_status(pod, status)
            return None  # a node event requeues pending pods
        counts: dict[str, int] = {}
        for p in read_only_items(self.api, V1, "pods"):
            n = (p.get("spec") or {}).get("nodeName")
            if n:
                counts[n] = counts.get(n, 0) + 1
        target = min(feasible, key=lambda n: (counts.get(meta(n)["name"], 0), meta(n)["name"]))
        # kube-scheduler binds through pods/binding; the emulator lets spec.nodeName be set once
        # on an unbound pod (the same transition), with the resourceVersion as a precondition.
        self.scheduler_api.patch(V1, "pods", meta(pod)["name"],
                                 {"metadata": {"resourceVersion": meta(pod).get("resourceVersion")},
                                  "spec": {"nodeName": meta(target)["name"]}},
                                 namespace=meta(pod).get("namespace"))
        return None

    # kubelet -------------------------------------------------------------------------------------
    def _pod_ip(self, pod: JSON, node_name: str) -> str:
        existing = (pod.get("status") or {}).get("podIP")
        if existing:
            return str(existing)
        if (pod.get("spec") or {}).get("hostNetwork"):
            return node_ip(self.node_index[node_name])
        with self._lock:
            n = self._ip_next.get(node_name, 2)
            self._ip_next[node_name] = n + 1 if n < 254 else 2
        return str(pod_cidr(self.node_index[node_name])[n])

    def _base_status(self, pod: JSON, node_name: str) -> JSON:
        # A deep copy: conditions are edited in place below, and the unchanged-status check in
        # _write_status compares against the pod as read.
        status = deepcopy(pod.get("status") or {})
        status["hostIP"] = node_ip(self.node_index[node_name])
        status["hostIPs"] = [{"ip": status["hostIP"]}]
        status.setdefault("startTime", now_rfc3339())
        status.setdefault("qosClass", _qos_class(pod))
        return status

    def _pending_status(self, pod: JSON, node_name: str) -> JSON:
        status = self._base_status(pod, node_name)
        status["phase"] = "Pending"
        conditions = list(status.get("conditions") or [])
        set_condition(conditions, "PodScheduled", "True", "", "")
        set_condition(conditions, "Initialized", "True", "", "")
        set_condition(conditions, "ContainersReady", "False", "ContainersNotReady",
                      "containers with unready status")
        set_condition(conditions, "Ready", "False", "ContainersNotReady", "containers with unready status")
        status["conditions"] = conditions
        status["containerStatuses"] = [
            {"name": c.get("name"), "image": c.get("image", ""), "imageID": "", "ready": False,
             "started": False, "restartCount": 0,
             "state": {"waiting": {"reason": "ContainerCreating"}}}
            for c in (pod.get("spec") or {}).get("containers") or []
        ]
        return status

    def _running_status(self, pod: JSON, node_name: str, *, ready: bool,
                        restarts: Mapping[str, int] | None = None) -> JSON:
        status = self._base_status(pod, node_name)
        status["phase"] = "Running"
        ip = self._pod_ip(pod, node_name)
        status["podIP"], status["podIPs"] = ip, [{"ip": ip}]
        previous = {c.get("name"): c for c in status.get("containerStatuses") or []}
        statuses = []
        for c in (pod.get("spec") or {}).get("containers") or []:
            name = c.get("name")
            prev = previous.get(name) or {}
            running = (prev.get("state") or {}).get("running") or {"startedAt": now_rfc3339()}
            entry: JSON = {
                "name": name, "image": c.get("image", ""),
                "imageID": f"docker-pullable://{c.get('image', '')}",
                "containerID": prev.get("containerID") or f"containerd://{meta(pod).get('uid', '')}-{name}",
                "ready": ready, "started": True,
                "restartCount": int((restarts or {}).get(name, prev.get("restartCount", 0))),
                "state": {"running": running},
            }
            if prev.get("lastState"):
                entry["lastState"] = prev["lastState"]
            statuses.append(entry)
        status["containerStatuses"] = statuses
        init = (pod.get("spec") or {}).get("initContainers") or []
        if init:
            # Init containers ran to completion before the app containers started.
            finished = status.get("startTime") or now_rfc3339()
            status["initContainerStatuses"] = [
                {"name": c.get("name"), "image": c.get("image", ""),
                 "imageID": f"docker-pullable://{c.get('image', '')}",
                 "containerID": f"containerd://{meta(pod).get('uid', '')}-{c.get('name')}",
                 "ready": True, "started": False, "restartCount": 0,
                 "state": {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": finished,
                                          "finishedAt": finished}}}
                for c in init
            ]
        conditions = list(status.get("conditions") or [])
        set_condition(conditions, "PodScheduled", "True", "", "")
        set_condition(conditions, "Initialized", "True", "", "")
        if ready:
            set_condition(conditions, "ContainersReady", "True", "", "")
            set_condition(conditions, "Ready", "True", "", "")
        else:
            set_condition(conditions, "ContainersReady", "False", "ContainersNotReady",
                          "containers with unready status")
            set_condition(conditions, "Ready", "False", "ContainersNotReady", "containers with unready status")
        status["conditions"] = conditions
        return status

    def _crashloop(self, pod: JSON, node_name: str, override: _PodOverride) -> float:
        """Each ``crash_interval`` the container "exits 1" again: restartCount grows and the
        container waits in CrashLoopBackOff, as the kubelet reports a crashing container."""
        now = time.monotonic()
        with self._lock:
            due = override.restarts == 0 or now - override.since >= self.crash_interval
            if due:
                override.restarts += 1
                override.since = now
            restarts = override.restarts
        if due:
            status = self._running_status(pod, node_name, ready=False)
            finished = now_rfc3339()
            for cs in status["containerStatuses"]:
                base = int((self._previous_restarts(pod)).get(cs["name"], 0))
                cs["restartCount"] = base + 1
                cs["started"] = False
                cs["lastState"] = {"terminated": {"exitCode": 1, "reason": "Error",
                                                  "startedAt": finished, "finishedAt": finished}}
                cs["state"] = {"waiting": {"reason": "CrashLoopBackOff",
                                           "message": f"back-off restarting failed container {cs['name']}"
                                                      f" (restart {restarts})"}}
            self._write_status(pod, status)
        return self.crash_interval

    @staticmethod
    def _previous_restarts(pod: JSON) -> dict[str, int]:
        return {c.get("name"): int(c.get("restartCount") or 0)
                for c in (pod.get("status") or {}).get("containerStatuses") or []}

    def _write_status(self, pod: JSON, status: JSON) -> None:
        if status == pod.get("status"):
            return
        fresh = dict(pod)
        fresh["status"] = status
        with contextlib.suppress(errors.NotFound):
            self.api.update(V1, "pods", fresh, subresource="status")


def _node_ready(node: Mapping[str, Any]) -> bool:
    for cond in (node.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return bool(cond.get("status") == "True")
    return False


def _qos_class(pod: Mapping[str, Any]) -> str:
    containers = (pod.get("spec") or {}).get("containers") or []
    if not any((c.get("resources") or {}).get("requests") or (c.get("resources") or {}).get("limits")
               for c in containers):
        return "BestEffort"
    guaranteed = all(
        (c.get("resources") or {}).get("limits")
        and all(((c.get("resources") or {}).get("limits") or {}).get(r) == v
                for r, v in ((c.get("resources") or {}).get("requests") or {}).items())
        and {"cpu", "memory"} <= set((c.get("resources") or {}).get("limits") or {})
        for c in containers
    )
    return "Guaranteed" if guaranteed else "Burstable"
