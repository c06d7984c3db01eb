"""The ReplicaSet controller: pkg/controller/replicaset (no containers run).
"""

from __future__ import annotations

from rook_py.envtest.cluster.base import (
    JSON,
    Key,
    is_deleting,
    meta,
    pod_active,
    pod_ready,
)
from rook_py.envtest.cluster.controller_ref_manager import V1
from rook_py.envtest.cluster.controller_utils import WorkloadController, invert_order, new_pod, pod_available


class ReplicaSetController(WorkloadController):
    """pkg/controller/replicaset/replica_set.go: keep spec.replicas active pods; report status."""

    name = "replicasets"
    kind = "ReplicaSet"
    resource = "replicasets"

    def reconcile(self, key: Key) -> float | None:
        rs = self._get(key)
        if rs is None:
            return None
        spec = rs.get("spec") or {}
        desired = int(spec.get("replicas", 1))
        pods = self._claim(rs)
        active = [p for p in pods if pod_active(p)]
        if not is_deleting(rs):
            if len(active) < desired:
                for _ in range(desired - len(active)):
                    active.append(self.api.create(V1, "pods", new_pod(spec.get("template") or {}, rs),
                                                  namespace=key[2]))
            elif len(active) > desired:
                # getPodsToDelete: unscheduled < scheduled, pending < running, not ready < ready,
                # then the most recently created first.
                def rank(p: JSON) -> tuple[int, int, int, str]:
                    st = p.get("status") or {}
                    return (1 if (p.get("spec") or {}).get("nodeName") else 0,
                            1 if st.get("phase") == "Running" else 0,
                            1 if pod_ready(p) else 0,
                            invert_order(meta(p).get("creationTimestamp") or ""))
                doomed = sorted(active, key=rank)[: len(active) - desired]
                for p in doomed:
                    self._delete_pod(p)
                doomed_uids = {meta(p).get("uid") for p in doomed}
                active = [p for p in active if meta(p).get("uid") not in doomed_uids]
        min_ready = int(spec.get("minReadySeconds") or 0)
        recheck: float | None = None
        available = 0
        for p in active:
            ok, wait = pod_available(p, min_ready)
            available += ok
            if wait is not None:
                recheck = wait if recheck is None else min(recheck, wait)
        labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        status = dict(rs.get("status") or {})
        status.update({
            "replicas": len(active),
            "fullyLabeledReplicas": sum(1 for p in active if all(
                (meta(p).get("labels") or {}).get(k) == v for k, v in labels.items())),
            "readyReplicas": sum(1 for p in active if pod_ready(p)),
            "availableReplicas": available,
            "observedGeneration": meta(rs).get("generation", 1),
        })
        self._write_status(rs, status)
        return recheck
