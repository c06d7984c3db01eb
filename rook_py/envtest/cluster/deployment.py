"""The Deployment controller: pkg/controller/deployment (no containers run).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from typing import Any

from rook_py.envtest.cluster.base import (
    JSON,
    Key,
    deepcopy,
    drop_nulls,
    int_or_percent,
    is_controlled_by,
    is_deleting,
    meta,
    owner_reference,
    set_condition,
    spec_hash,
)
from rook_py.envtest.cluster.controller_ref_manager import APPS
from rook_py.envtest.cluster.controller_utils import (
    HASH_LABEL,
    REVISION_ANNOTATION,
    WorkloadController,
    parse_time,
)
from rook_py.framework.client import errors
from rook_py.framework.kube.times import now as now_rfc3339


class DeploymentController(WorkloadController):
    """pkg/controller/deployment (sync.go, rolling.go, recreate.go, util/deployment_util.go).

    The new ReplicaSet is ``<deployment>-<pod-template-hash>``; RollingUpdate scales it up within
    maxSurge and old ones down while keeping at least ``replicas - maxUnavailable`` available;
    Recreate scales old ones to zero and waits for their pods to go before scaling the new one up.
    """

    name = "deployments"
    kind = "Deployment"
    resource = "deployments"

    child = (APPS, "replicasets")

    def reconcile(self, key: Key) -> float | None:
        d = self._get(key)
        if d is None or is_deleting(d):
            return None
        spec = d.get("spec") or {}
        desired = int(spec.get("replicas", 1))
        owned = [rs for rs in self._claim(d) if not is_deleting(rs)]
        template = spec.get("template") or {}
        pod_hash = spec_hash(template, int((d.get("status") or {}).get("collisionCount") or 0))
        owned.sort(key=lambda rs: meta(rs).get("creationTimestamp", ""))
        # FindNewReplicaSet: the oldest ReplicaSet whose template equals ours ignoring the hash label,
        # so a rollback (`kubectl rollout undo`) reuses the earlier ReplicaSet instead of a new one.
        new_rs = next((rs for rs in owned if _equal_ignore_hash((rs.get("spec") or {}).get("template"), template)),
                      None)
        old = [rs for rs in owned if rs is not new_rs]
        if new_rs is not None:
            new_rs = self._bump_revision(new_rs, old)
        strategy = spec.get("strategy") or {}
        surge, unavailable = _rolling_params(strategy, desired)
        created = False
        if not spec.get("paused"):
            if new_rs is None:
                new_rs = self._create_new_rs(d, template, pod_hash, old, strategy, desired, surge)
                created = True
            if strategy.get("type") == "Recreate":
                self._recreate(key, new_rs, old, desired)
            else:
                new_rs = self._rolling(new_rs, old, desired, surge, unavailable)
            self._cleanup(old, spec.get("revisionHistoryLimit", 10))
        revision = (meta(new_rs).get("annotations") or {}).get(REVISION_ANNOTATION) if new_rs else None
        everything = [*old, *([new_rs] if new_rs else [])]
        return self._sync_status(d, new_rs, everything, desired, unavailable, created, revision)

    def _create_new_rs(self, d: JSON, template: JSON, pod_hash: str, old: list[JSON], strategy: JSON,
                       desired: int, surge: int) -> JSON:
        spec = d.get("spec") or {}
        t = deepcopy(template)
        t.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = pod_hash
        selector = deepcopy(spec.get("selector") or {})
        selector.setdefault("matchLabels", {})[HASH_LABEL] = pod_hash
        if strategy.get("type") == "Recreate":
            replicas = 0 if any(int((rs.get("spec") or {}).get("replicas", 0)) for rs in old) else desired
        else:
            current = sum(int((rs.get("spec") or {}).get("replicas", 0)) for rs in old)
            replicas = max(0, min(desired, desired + surge - current))
        revisions = [_revision(rs) for rs in old]
        labels = dict(t["metadata"]["labels"])
        name = f"{meta(d)['name']}-{pod_hash}"
        rs: JSON = {
            "apiVersion": APPS, "kind": "ReplicaSet",
            "metadata": {
                "name": name, "namespace": meta(d).get("namespace"),
                "labels": labels, "ownerReferences": [owner_reference(d)],
                "annotations": {REVISION_ANNOTATION: str(max(revisions, default=0) + 1),
                                "deployment.kubernetes.io/desired-replicas": str(desired),
                                "deployment.kubernetes.io/max-replicas": str(desired + surge)},
            },
            "spec": {"replicas": replicas, "minReadySeconds": int(spec.get("minReadySeconds") or 0),
                     "selector": selector, "template": t},
        }
        try:
            return self.api.create(APPS, "replicasets", rs, namespace=meta(d).get("namespace"))
        except errors.AlreadyExists:
            existing = self.api.get(APPS, "replicasets", name, meta(d).get("namespace"))
            if is_controlled_by(existing, d) and not is_deleting(existing):
                return existing
            # A hash collision with a ReplicaSet we do not own: upstream bumps status.collisionCount,
            # which changes the hash (and the name) on the next pass.
            status = dict(d.get("status") or {})
            status["collisionCount"] = int(status.get("collisionCount") or 0) + 1
            self._write_status(d, status)
            raise

    def _bump_revision(self, rs: JSON, old: list[JSON]) -> JSON:
        """A reused ReplicaSet (rollback) becomes the newest revision: max(old revisions) + 1."""
        current = _revision(rs)
        newest_old = max((_revision(o) for o in old), default=0)
        if current > newest_old:
            return rs
        return self.api.patch(APPS, "replicasets", meta(rs)["name"],
                              {"metadata": {"annotations": {REVISION_ANNOTATION: str(newest_old + 1)},
                                            "resourceVersion": meta(rs).get("resourceVersion")}},
                              namespace=meta(rs).get("namespace"))

    def _scale(self, rs: JSON, replicas: int) -> JSON:
        if int((rs.get("spec") or {}).get("replicas", 0)) == replicas:
            return rs
        return self.api.patch(APPS, "replicasets", meta(rs)["name"],
                              {"metadata": {"resourceVersion": meta(rs).get("resourceVersion")},
                               "spec": {"replicas": replicas}}, namespace=meta(rs).get("namespace"))

    def _rolling(self, new_rs: JSON, old: list[JSON], desired: int, surge: int, unavailable: int) -> JSON:
        def spec_replicas(rs: JSON) -> int:
            return int((rs.get("spec") or {}).get("replicas", 0))

        def available(rs: JSON) -> int:
            return int((rs.get("status") or {}).get("availableReplicas") or 0)

        # reconcileNewReplicaSet
        total = spec_replicas(new_rs) + sum(spec_replicas(rs) for rs in old)
        if spec_replicas(new_rs) > desired:
            new_rs = self._scale(new_rs, desired)
        elif spec_replicas(new_rs) < desired:
            room = max(0, desired + surge - total)
            new_rs = self._scale(new_rs, spec_replicas(new_rs) + min(desired - spec_replicas(new_rs), room))
        # reconcileOldReplicaSets
        min_available = desired - unavailable
        all_pods = spec_replicas(new_rs) + sum(spec_replicas(rs) for rs in old)
        new_unavailable = spec_replicas(new_rs) - available(new_rs)
        budget = all_pods - min_available - new_unavailable
        if budget <= 0:
            return new_rs
        scaled: list[JSON] = []
        for rs in old:  # cleanupUnhealthyReplicas: unavailable old pods cost nothing to remove
            unhealthy = spec_replicas(rs) - available(rs)
            step = min(max(unhealthy, 0), budget)
            if step:
                rs = self._scale(rs, spec_replicas(rs) - step)
                budget -= step
            scaled.append(rs)
        total_available = available(new_rs) + sum(available(rs) for rs in scaled)
        room_down = total_available - min_available
        for rs in scaled:  # scaleDownOldReplicaSetsForRollingUpdate, oldest first
            if room_down <= 0:
                break
            step = min(spec_replicas(rs), room_down)
            if step:
                self._scale(rs, spec_replicas(rs) - step)
                room_down -= step
        return new_rs

    def _recreate(self, key: Key, new_rs: JSON, old: list[JSON], desired: int) -> None:
        if any(int((rs.get("spec") or {}).get("replicas", 0)) for rs in old):
            for rs in old:
                self._scale(rs, 0)
            return
        if any(int((rs.get("status") or {}).get("replicas") or 0) for rs in old):
            return  # old pods still running; their ReplicaSet status updates requeue us
        self._scale(new_rs, desired)

    def _cleanup(self, old: list[JSON], limit: Any) -> None:
        idle = [rs for rs in old if not int((rs.get("spec") or {}).get("replicas", 0))
                and not int((rs.get("status") or {}).get("replicas") or 0)]
        for rs in idle[: max(0, len(idle) - int(limit))]:
            with contextlib.suppress(errors.NotFound, errors.Conflict):
                self.api.delete(APPS, "replicasets", meta(rs)["name"], meta(rs).get("namespace"),
                                preconditions={"uid": meta(rs).get("uid")})

    def _sync_status(self, d: JSON, new_rs: JSON | None, everything: list[JSON], desired: int,
                     unavailable: int, created: bool, revision: str | None) -> float | None:
        """Write status (and the revision annotation); return when to look again for the
        progress deadline (progress.go syncRolloutStatus), or None."""
        def st(rs: JSON, field: str) -> int:
            return int((rs.get("status") or {}).get(field) or 0)

        replicas = sum(st(rs, "replicas") for rs in everything)
        available = sum(st(rs, "availableReplicas") for rs in everything)
        updated = st(new_rs, "replicas") if new_rs else 0
        status = deepcopy(d.get("status") or {})
        before = dict(status)
        status.update({
            "observedGeneration": meta(d).get("generation", 1),
            "replicas": replicas,
            "updatedReplicas": updated,
            "readyReplicas": sum(st(rs, "readyReplicas") for rs in everything),
            "availableReplicas": available,
            "unavailableReplicas": max(0, replicas - available),
        })
        for zero in ("readyReplicas", "availableReplicas", "unavailableReplicas", "updatedReplicas"):
            if not status[zero]:
                status.pop(zero)  # omitempty, as the Go types serialise them
        conditions = status.setdefault("conditions", [])
        if available >= desired - unavailable:
            set_condition(conditions, "Available", "True", "MinimumReplicasAvailable",
                          "Deployment has minimum availability.", with_update_time=True)
        else:
            set_condition(conditions, "Available", "False", "MinimumReplicasUnavailable",
                          "Deployment does not have minimum availability.", with_update_time=True)
        rs_name = meta(new_rs)["name"] if new_rs else ""
        kind = f'ReplicaSet "{rs_name}"'
        complete = (new_rs is not None and updated == desired and replicas == desired
                    and available == desired)
        deadline = (d.get("spec") or {}).get("progressDeadlineSeconds", 600)
        progressing = next((c for c in conditions if c.get("type") == "Progressing"), None)
        recheck: float | None = None
        if (d.get("spec") or {}).get("paused"):
            set_condition(conditions, "Progressing", "Unknown", "DeploymentPaused", "Deployment is paused",
                          with_update_time=True)
        elif complete:
            set_condition(conditions, "Progressing", "True", "NewReplicaSetAvailable",
                          f"{kind} has successfully progressed.", with_update_time=True)
        elif created:
            set_condition(conditions, "Progressing", "True", "NewReplicaSetCreated",
                          f'Created new replica set "{rs_name}"', with_update_time=True)
        elif _made_progress(before, status):
            set_condition(conditions, "Progressing", "True", "ReplicaSetUpdated",
                          f"{kind} is progressing.", with_update_time=True)
            for cond in conditions:  # progress refreshes lastUpdateTime even with the same reason
                if cond.get("type") == "Progressing":
                    cond["lastUpdateTime"] = now_rfc3339()
        elif progressing is None or progressing.get("reason") != "ProgressDeadlineExceeded":
            since = parse_time((progressing or {}).get("lastUpdateTime"))
            left = None if since is None or deadline is None else since + int(deadline) - time.time()
            if left is not None and left <= 0:
                set_condition(conditions, "Progressing", "False", "ProgressDeadlineExceeded",
                              f"{kind} has timed out progressing.", with_update_time=True)
            else:
                if progressing is None:
                    set_condition(conditions, "Progressing", "True", "ReplicaSetUpdated",
                                  f"{kind} is progressing.", with_update_time=True)
                recheck = max(0.05, left) if left is not None else None
        annotations = dict(meta(d).get("annotations") or {})
        if revision:
            annotations[REVISION_ANNOTATION] = revision
        if status == d.get("status") and annotations == (meta(d).get("annotations") or {}):
            return recheck
        # The revision annotation travels with the status update, as upstream does it (sync.go
        # getNewReplicaSet -> UpdateStatus): the Deployment status strategy keeps annotation changes,
        # whereas a main-endpoint write would bump metadata.generation (annotations count there).
        fresh = dict(d)
        fresh["metadata"] = dict(meta(d), annotations=annotations)
        fresh["status"] = status
        self.api.update(APPS, self.resource, fresh, subresource="status")
        return recheck


def _revision(rs: JSON) -> int:
    try:
        return int((meta(rs).get("annotations") or {}).get(REVISION_ANNOTATION) or 0)
    except ValueError:
        return 0


def _equal_ignore_hash(rs_template: JSON | None, template: JSON) -> bool:
    """controller.EqualIgnoreHash: pod templates equal once the pod-template-hash label is dropped."""
    if rs_template is None:
        return False
    a, b = drop_nulls(rs_template), drop_nulls(template)
    for t in (a, b):
        labels = (t.get("metadata") or {}).get("labels")
        if labels is not None:
            labels.pop(HASH_LABEL, None)
            if not labels:
                t["metadata"].pop("labels")
        if t.get("metadata") == {}:
            t.pop("metadata")
    return bool(a == b)


def _made_progress(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """util.DeploymentProgressing: more updated/ready/available replicas, or fewer old ones."""
    def n(status: Mapping[str, Any], field: str) -> int:
        return int(status.get(field) or 0)

    old_pods = n(old, "replicas") - n(old, "updatedReplicas")
    new_pods = n(new, "replicas") - n(new, "updatedReplicas")
    return (any(n(new, f) > n(old, f) for f in ("updatedReplicas", "readyReplicas", "availableReplicas"))
            or new_pods < old_pods)


def _rolling_params(strategy: JSON, desired: int) -> tuple[int, int]:
    """ResolveFenceposts: maxSurge rounds up, maxUnavailable down; both zero means one unavailable."""
    if strategy.get("type") == "Recreate":
        return 0, desired
    rolling = strategy.get("rollingUpdate") or {}
    surge = int_or_percent(rolling.get("maxSurge", "25%"), desired, round_up=True)
    unavailable = int_or_percent(rolling.get("maxUnavailable", "25%"), desired, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, min(unavailable, desired)
