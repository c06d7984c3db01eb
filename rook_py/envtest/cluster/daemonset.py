"""The DaemonSet controller: pkg/controller/daemon (no containers run).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from rook_py.envtest.cluster.base import (
    JSON,
    Key,
    deepcopy,
    int_or_percent,
    is_deleting,
    meta,
    pod_active,
    pod_ready,
    read_only_items,
    spec_hash,
)
from rook_py.envtest.cluster.controller_ref_manager import V1
from rook_py.envtest.cluster.controller_utils import (
    REVISION_LABEL,
    WorkloadController,
    new_pod,
    pod_available,
)
from rook_py.envtest.cluster.nodes import node_fits

# DaemonSet pods tolerate node conditions that would otherwise keep them off (or evict them from)
# a node: pkg/controller/daemon/util/daemonset_util.go AddOrUpdateDaemonPodTolerations.
_DAEMON_TOLERATIONS = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
]


def daemon_pod_spec(template_spec: Mapping[str, Any]) -> JSON:
    spec = deepcopy(dict(template_spec))
    tolerations = list(spec.get("tolerations") or [])
    for tol in _DAEMON_TOLERATIONS:
        if not any(t.get("key") == tol["key"] and t.get("effect") == tol["effect"] for t in tolerations):
            tolerations.append(dict(tol))
    spec["tolerations"] = tolerations
    return spec


def _rev(pod: JSON) -> str:
    return str((meta(pod).get("labels") or {}).get(REVISION_LABEL, ""))


def _daemon_rolling_params(spec: JSON, nodes: int) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) of a DaemonSet RollingUpdate: surge rounds up, unavailable too
    (daemonset util.UnavailableCount / SurgeCount); with no surge at least one may be unavailable."""
    rolling = (spec.get("updateStrategy") or {}).get("rollingUpdate") or {}
    surge = int_or_percent(rolling.get("maxSurge", 0), nodes, round_up=True)
    unavailable = int_or_percent(rolling.get("maxUnavailable", 0 if surge else 1), nodes, round_up=True)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def _pod_node(pod: JSON) -> str | None:
    """The node a daemon pod is for: spec.nodeName, else its metadata.name matchFields affinity."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return str(spec["nodeName"])
    required = ((((spec.get("affinity") or {}).get("nodeAffinity") or {})
                 .get("requiredDuringSchedulingIgnoredDuringExecution")) or {})
    for term in required.get("nodeSelectorTerms") or []:
        for field in term.get("matchFields") or []:
            if field.get("key") == "metadata.name" and field.get("operator") == "In" and field.get("values"):
                return str(field["values"][0])
    return None


class DaemonSetController(WorkloadController):
    """pkg/controller/daemon/daemon_controller.go and update.go.

    One pod per node the template fits (nodeSelector, required node affinity, taints vs the
    template's tolerations plus the ones DaemonSets always add), pinned with a required
    ``metadata.name`` matchFields affinity as upstream does since 1.12. RollingUpdate replaces
    pods whose controller-revision-hash is stale while at most maxUnavailable nodes are without a
    ready pod -- or, with maxSurge, starts the new pod beside the old one first; OnDelete leaves
    them alone.
    """

    name = "daemonsets"
    kind = "DaemonSet"
    resource = "daemonsets"

    def on_event(self, event_type: str, api_version: str, resource: str, obj: JSON) -> Iterable[Key]:
        if api_version == V1 and resource == "nodes":
            return list(self.resync())  # every DaemonSet may now want (or not want) this node
        return super().on_event(event_type, api_version, resource, obj)

    def reconcile(self, key: Key) -> float | None:
        ds = self._get(key)
        if ds is None:
            return None
        spec = ds.get("spec") or {}
        template = spec.get("template") or {}
        pod_spec = daemon_pod_spec(template.get("spec") or {})
        revision = spec_hash(template)
        nodes = [n for n in read_only_items(self.api, V1, "nodes") if not is_deleting(n)]
        # NodeShouldRunDaemonPod: shouldRun (new pods) checks NoSchedule and NoExecute taints;
        # shouldContinueRunning (existing pods) only NoExecute ones -- a pod on a node that turned
        # unreachable stays, counted as misscheduled, instead of being deleted.
        eligible = {meta(n)["name"] for n in nodes if node_fits(n, pod_spec, ignore_unschedulable=True)}
        keep = {meta(n)["name"] for n in nodes
                if node_fits(n, pod_spec, ignore_unschedulable=True, taint_effects=("NoExecute",))}
        by_node: dict[str, list[JSON]] = {}
        misscheduled = 0
        for p in self._claim(ds):
            if not pod_active(p):
                continue
            node = _pod_node(p)
            if node is not None and node in eligible:
                by_node.setdefault(node, []).append(p)
            else:
                misscheduled += 1
                if not is_deleting(ds) and node not in keep:
                    self._delete_pod(p)
        if not is_deleting(ds):
            rolling_update = (spec.get("updateStrategy") or {}).get("type", "RollingUpdate") == "RollingUpdate"
            surge, max_unavailable = _daemon_rolling_params(spec, len(eligible)) if rolling_update else (0, 0)
            for node in sorted(eligible):
                pods = sorted(by_node.get(node) or [], key=lambda p: meta(p).get("creationTimestamp", ""))
                if not pods:
                    pods = [self._create_pod(ds, node, pod_spec, revision)]
                # One pod per node -- or, while surging, one old and one new: keep the oldest of each.
                if surge:
                    updated_pod = [p for p in pods if _rev(p) == revision][:1]
                    outdated_pod = [p for p in pods if _rev(p) != revision][:1]
                    keep_pods = sorted(updated_pod + outdated_pod,
                                       key=lambda p: meta(p).get("creationTimestamp", ""))
                else:
                    keep_pods = pods[:1]
                for extra in pods:
                    if extra not in keep_pods:
                        self._delete_pod(extra)
                by_node[node] = keep_pods
            if rolling_update:
                if surge:
                    self._surge_update(ds, pod_spec, by_node, eligible, revision, surge)
                else:
                    self._rolling_update(by_node, eligible, revision, max_unavailable)
        min_ready = int(spec.get("minReadySeconds") or 0)
        recheck = None
        current = ready = available = updated = 0
        for node in eligible:
            pods = by_node.get(node) or []
            if not pods:
                continue
            p = pods[0]  # readiness from the oldest pod on the node, as upstream's status does
            current += 1
            ready += pod_ready(p)
            ok, wait = pod_available(p, min_ready)
            available += ok
            if wait is not None:
                recheck = wait if recheck is None else min(recheck, wait)
            updated += any(_rev(q) == revision for q in pods)
        status = dict(ds.get("status") or {})
        status.update({
            "observedGeneration": meta(ds).get("generation", 1),
            "desiredNumberScheduled": len(eligible),
            "currentNumberScheduled": current,
            "numberMisscheduled": misscheduled,
            "numberReady": ready,
            "numberAvailable": available,
            "numberUnavailable": len(eligible) - available,
            "updatedNumberScheduled": updated,
        })
        for zero in ("numberAvailable", "numberUnavailable", "updatedNumberScheduled"):
            if not status[zero]:
                status.pop(zero)
        self._write_status(ds, status)
        return recheck

    def _create_pod(self, ds: JSON, node: str, pod_spec: JSON, revision: str) -> JSON:
        template = dict((ds.get("spec") or {}).get("template") or {})
        spec = deepcopy(pod_spec)
        affinity: JSON = spec.setdefault("affinity", {})
        # Replace any required node affinity terms with the node pin (ReplaceDaemonSetPodNodeNameNodeAffinity).
        affinity.setdefault("nodeAffinity", {})["requiredDuringSchedulingIgnoredDuringExecution"] = {
            "nodeSelectorTerms": [{"matchFields": [
                {"key": "metadata.name", "operator": "In", "values": [node]}]}]}
        template["spec"] = spec
        pod = new_pod(template, ds, extra_labels={
            REVISION_LABEL: revision,
            "pod-template-generation": str(meta(ds).get("generation", 1)),
        })
        return self.api.create(V1, "pods", pod, namespace=meta(ds).get("namespace"))

    def _surge_update(self, ds: JSON, pod_spec: JSON, by_node: dict[str, list[JSON]], eligible: set[str],
                      revision: str, surge: int) -> None:
        """maxSurge > 0 (update.go): start the new pod next to the old one, at most ``surge`` nodes
        at a time, and delete the old pod once the new one is available; an old pod that is not
        ready is replaced at once (it serves nothing)."""
        surging = sum(1 for n in eligible if len({_rev(p) == revision for p in by_node.get(n) or []}) == 2)
        budget = surge - surging
        min_ready = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
        for node in sorted(eligible):
            pods = by_node.get(node) or []
            new = [p for p in pods if _rev(p) == revision]
            old = [p for p in pods if _rev(p) != revision]
            if not old or any(is_deleting(p) for p in old):
                continue
            if new:
                if pod_available(new[0], min_ready)[0]:
                    self._delete_pod(old[0])
                    by_node[node] = new
            elif not pod_ready(old[0]):
                self._delete_pod(old[0])
                by_node[node] = [self._create_pod(ds, node, pod_spec, revision)]
            elif budget > 0:
                budget -= 1
                by_node[node] = [*old, self._create_pod(ds, node, pod_spec, revision)]

    def _rolling_update(self, by_node: dict[str, list[JSON]], eligible: set[str], revision: str,
                        max_unavailable: int) -> None:
        unavailable = sum(1 for n in eligible if not by_node.get(n) or not pod_ready(by_node[n][0]))
        old = [(n, by_node[n][0]) for n in sorted(eligible)
               if by_node.get(n) and (meta(by_node[n][0]).get("labels") or {}).get(REVISION_LABEL) != revision]
        for node, p in old:
            if is_deleting(p):
                continue
            if not pod_ready(p):
                self._delete_pod(p)  # an old pod that is not ready costs no availability
                by_node[node] = []
            elif unavailable < max_unavailable:
                self._delete_pod(p)
                by_node[node] = []
                unavailable += 1
