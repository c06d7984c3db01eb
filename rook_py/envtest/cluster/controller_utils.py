"""What the simulated workload controllers share: pkg/controller/controller_utils.go.

The base class wires a workload kind's events (its own objects and the children it controls) to
reconciles and claims children through one ``ControllerRefManager``; ``new_pod`` and
``pod_available`` are upstream's GetPodFromTemplate and podutil.IsPodAvailable. Pods are created
with a controller ownerReference (blockOwnerDeletion) so garbage collection and foreground deletion
work on them; the pod lifecycle controller (nodes.py) makes them Running/Ready.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from rook_py.envtest.cluster.base import (
    JSON,
    Controller,
    Key,
    controller_ref,
    deepcopy,
    is_deleting,
    meta,
    ns_arg,
    owner_reference,
    pod_ready,
    read_only_items,
)
from rook_py.envtest.cluster.controller_ref_manager import (
    APPS,
    OWNER_RESOURCE,
    V1,
    ControllerRefManager,
    owner_selector,
)
from rook_py.framework.client import errors
from rook_py.framework.kube.times import parse_time_or_none

HASH_LABEL = "pod-template-hash"
REVISION_LABEL = "controller-revision-hash"
REVISION_ANNOTATION = "deployment.kubernetes.io/revision"



def _pod_owner_key(obj: JSON, kind: str) -> list[Key]:
    ref = controller_ref(obj)
    if ref is None or ref.get("kind") != kind or ref.get("apiVersion") != APPS:
        return []
    return [(APPS, OWNER_RESOURCE[kind], meta(obj).get("namespace") or "", ref.get("name", ""))]


def parse_time(value: str | None) -> float | None:
    """A metav1.Time string as a Unix timestamp; None when missing or malformed."""
    parsed = parse_time_or_none(value)
    return None if parsed is None else parsed.timestamp()


def pod_available(pod: JSON, min_ready_seconds: int) -> tuple[bool, float | None]:
    """podutil.IsPodAvailable: Ready for at least minReadySeconds. Returns (available, recheck_in)."""
    if not pod_ready(pod):
        return False, None
    if min_ready_seconds <= 0:
        return True, None
    since = None
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            since = parse_time(cond.get("lastTransitionTime"))
    if since is None:
        return False, float(min_ready_seconds)
    left = since + min_ready_seconds - time.time()
    return (True, None) if left <= 0 else (False, left)


def new_pod(template: Mapping[str, Any], owner: JSON, *, name: str | None = None,
            extra_labels: Mapping[str, str] | None = None) -> JSON:
    """A pod from a workload's template (controller.GetPodFromTemplate): template labels, annotations
    and spec; the owner as controller; ``generateName`` ``<owner>-`` unless a fixed name is given."""
    t = deepcopy(dict(template))
    tmeta = t.get("metadata") or {}
    labels = dict(tmeta.get("labels") or {})
    labels.update(extra_labels or {})
    pod_meta: JSON = {"namespace": meta(owner).get("namespace"), "labels": labels,
                      "ownerReferences": [owner_reference(owner)]}
    if tmeta.get("annotations"):
        pod_meta["annotations"] = dict(tmeta["annotations"])
    if tmeta.get("finalizers"):
        pod_meta["finalizers"] = list(tmeta["finalizers"])
    if name:
        pod_meta["name"] = name
    else:
        pod_meta["generateName"] = f"{meta(owner)['name']}-"
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": t.get("spec") or {}}


class WorkloadController(Controller):
    kind = ""
    resource = ""
    child: tuple[str, str] = (V1, "pods")  # what this workload controls: its events wake the owner

    def on_event(self, event_type: str, api_version: str, resource: str, obj: JSON) -> Iterable[Key]:
        if api_version == APPS and resource == self.resource and event_type != "DELETED":
            return [(APPS, self.resource, meta(obj).get("namespace") or "", meta(obj)["name"])]
        if (api_version, resource) == self.child:
            if controller_ref(obj) is not None:
                return _pod_owner_key(obj, self.kind)
            if event_type == "DELETED" or is_deleting(obj):
                return ()  # not adoptable: nobody needs waking
            return self._adopters(obj)
        return ()

    def _adopters(self, orphan: JSON) -> list[Key]:
        """An orphan wakes every owner in its namespace whose selector matches it, so one of them
        adopts it (replica_set.go addPod / getPodReplicaSets and their siblings). This scans the
        namespace's owners, not its pods, and only for orphans -- a rare event."""
        namespace = meta(orphan).get("namespace") or ""
        labels = meta(orphan).get("labels") or {}
        keys: list[Key] = []
        for owner in read_only_items(self.api, APPS, self.resource, namespace or None):
            try:
                selector = owner_selector(owner)
            except ValueError:
                continue  # its own reconcile reports the bad selector
            if selector is not None and selector.matches(labels):
                keys.append((APPS, self.resource, namespace, meta(owner)["name"]))
        return keys

    def _claim(self, owner: JSON, member: Callable[[Mapping[str, Any]], bool] | None = None) -> list[JSON]:
        """The children the owner controls after adopting matching orphans and releasing
        non-matching ones (getPodsForReplicaSet, getReplicaSetsForDeployment, getPodsForStatefulSet,
        getDaemonPods), as private copies the caller may edit. Reads the shared per-namespace view:
        only the owner's own children are copied."""
        items = read_only_items(self.api, self.child[0], self.child[1], meta(owner).get("namespace"))
        return ControllerRefManager(self.api, owner, self.child, member=member).claim(items)

    def resync(self) -> Iterable[Key]:
        items = read_only_items(self.api, APPS, self.resource)
        return [(APPS, self.resource, meta(i).get("namespace") or "", meta(i)["name"]) for i in items]

    def _write_status(self, obj: JSON, status: JSON) -> JSON:
        if status == obj.get("status"):
            return obj
        fresh = dict(obj)
        fresh["status"] = status
        return self.api.update(APPS, self.resource, fresh, subresource="status")

    def _get(self, key: Key) -> JSON | None:
        try:
            return self.api.get(key[0], key[1], key[3], ns_arg(key))
        except errors.NotFound:
            return None

    def _delete_pod(self, pod: JSON) -> None:
        with contextlib.suppress(errors.NotFound, errors.Conflict):
            self.api.delete(V1, "pods", meta(pod)["name"], meta(pod).get("namespace"),
                            preconditions={"uid": meta(pod).get("uid")})


def invert_order(text: str) -> str:
    """Sort key that orders strings descending inside an ascending sort."""
    return "".join(chr(0x10FFFF - ord(c)) for c in text)
