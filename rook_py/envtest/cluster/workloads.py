"""Workload controllers: ReplicaSets, Deployments, StatefulSets and DaemonSets (no containers run).

Each mirrors the matching kube-controller-manager controller closely enough that an operator sees
the objects and statuses it would see on a cluster; the upstream sources are named per class.
Pods are created with a controller ownerReference (blockOwnerDeletion) so garbage collection and
foreground deletion work on them; the pod lifecycle controller (nodes.py) makes them Running/Ready.

Every controller claims what it controls through one ``ControllerRefManager``: orphans matching
its selector are adopted, its own objects that stopped matching are released, so a workload
recreated over objects orphaned by a ``propagationPolicy: Orphan`` delete takes them back without
restarting them.

Known simplifications, all documented where they apply: no ControllerRevision objects (a
StatefulSet pod recreated during a partitioned rollout gets the update revision).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from rook_py.envtest.cluster.base import (
    JSON,
    Controller,
    Key,
    LocalAPILike,
    controller_ref,
    deepcopy,
    drop_nulls,
    int_or_percent,
    is_controlled_by,
    is_deleting,
    meta,
    now_rfc3339,
    ns_arg,
    owner_reference,
    pod_active,
    pod_ready,
    read_only_items,
    set_condition,
    spec_hash,
)
from rook_py.envtest.cluster.nodes import node_fits
from rook_py.framework import labels as _labels
from rook_py.framework.client import errors

APPS = "apps/v1"
V1 = "v1"
HASH_LABEL = "pod-template-hash"
REVISION_LABEL = "controller-revision-hash"
REVISION_ANNOTATION = "deployment.kubernetes.io/revision"

_OWNER_RESOURCE = {"ReplicaSet": "replicasets", "StatefulSet": "statefulsets", "DaemonSet": "daemonsets",
                   "Deployment": "deployments"}


def _pod_owner_key(obj: JSON, kind: str) -> list[Key]:
    ref = controller_ref(obj)
    if ref is None or ref.get("kind") != kind or ref.get("apiVersion") != APPS:
        return []
    return [(APPS, _OWNER_RESOURCE[kind], meta(obj).get("namespace") or "", ref.get("name", ""))]


class CannotAdopt(Exception):
    """The owner may not adopt: the uncached re-read found it gone, replaced or being deleted."""


def owner_selector(owner: Mapping[str, Any]) -> _labels.Selector | None:
    """The owner's ``spec.selector`` as a Selector (metav1.LabelSelectorAsSelector), or None when
    it is missing or empty. apps/v1 validation rejects both; should one slip through an API that
    skips validation, it must claim nothing rather than everything in the namespace (upstream's
    getPodReplicaSets and the Deployment sync treat an empty selector the same way). An
    unparsable selector raises ValueError, failing the reconcile as upstream's sync does."""
    raw = (owner.get("spec") or {}).get("selector")
    selector = None if raw is None else _labels.selector_from_label_selector(raw)
    return None if selector is None or selector.empty() else selector


class ControllerRefManager:
    """Claims a workload's children: pkg/controller/controller_ref_manager.go (ClaimObject).

    For each candidate, one of:

    - controlled by another owner (a controller ref with another uid): ignored;
    - controlled by us and ``match``-ing: claimed, with no write -- even while we are being
      deleted, since that changes nothing;
    - controlled by us and no longer matching: released (our ownerReference removed), unless we
      are being deleted; a candidate that vanished meanwhile is simply not claimed;
    - an orphan that matches, not itself being deleted, while we are not being deleted:
      adopted -- an ownerReference with controller and blockOwnerDeletion set is added.

    ``match`` is the owner's selector plus optional ``member`` filter (ClaimPods' filters; the
    StatefulSet's isMemberOf). An owner without a usable selector (see ``owner_selector``)
    adopts nothing and releases nothing: it keeps exactly what it created. Candidates must come
    from the owner's namespace (the callers pass that namespace's view), which is the
    cross-namespace guard upstream applies per object.

    Before the *first* adoption of a pass the owner is re-read from the API
    (RecheckDeletionTimestamp): the object we reconcile from may be stale, and adopting for an
    owner that is already going would hand the child to the garbage collector. One manager
    serves one reconcile pass, so the re-read happens at most once per pass and not at all
    when there is nothing to adopt.

    Writes are merge patches carrying the candidate's resourceVersion, so a concurrent change
    (another controller adopting first) is a 409 rather than a lost update; every failure other
    than NotFound is collected and the first re-raised after the pass, so the reconcile fails and
    is retried, as the upstream controllers return ClaimPods' aggregate error from their sync.
    """

    def __init__(self, api: LocalAPILike, owner: JSON, child: tuple[str, str], *,
                 member: Callable[[Mapping[str, Any]], bool] | None = None) -> None:
        self._api = api
        self._owner = owner
        self._uid = meta(owner).get("uid")
        self._child = child
        self._selector = owner_selector(owner)
        self._member = member
        self._rechecked = False
        self._refusal: CannotAdopt | None = None  # the recheck's verdict, once made

    def matches(self, obj: Mapping[str, Any]) -> bool:
        """The selector first, so the member filter only runs on plausible candidates."""
        if self._selector is not None and not self._selector.matches(meta(obj).get("labels") or {}):
            return False
        return self._member is None or self._member(obj)

    def claim(self, candidates: Iterable[JSON]) -> list[JSON]:
        """The candidates we now control, as private copies (adopted ones as written).

        ``candidates`` may be the store's shared read-only view: objects owned by someone else,
        the common case at scale, cost one ownerReference scan and are never copied.
        """
        claimed: list[JSON] = []
        failures: list[Exception] = []
        deleting = is_deleting(self._owner)
        for obj in candidates:
            ref = controller_ref(obj)
            try:
                if ref is not None:
                    if ref.get("uid") != self._uid:
                        continue  # someone else's
                    if self.matches(obj):
                        claimed.append(deepcopy(obj))
                    elif not deleting and self._selector is not None:
                        self._release(obj)
                    continue
                if deleting or self._selector is None or is_deleting(obj) or not self.matches(obj):
                    continue
                claimed.append(self._adopt(obj))
            except errors.NotFound:
                continue  # gone since we listed: nothing to claim
            except (errors.ApiError, CannotAdopt) as exc:
                failures.append(exc)
        if failures:
            raise failures[0]
        return claimed

    def _check_can_adopt(self) -> None:
        if not self._rechecked:
            self._refusal = self._recheck()
            self._rechecked = True
        if self._refusal is not None:
            raise self._refusal

    def _recheck(self) -> CannotAdopt | None:
        m = meta(self._owner)
        resource = _OWNER_RESOURCE[str(self._owner.get("kind"))]
        where = f"{m.get('namespace')}/{m.get('name')}"
        try:
            fresh = self._api.get(APPS, resource, m["name"], m.get("namespace"))
        except errors.NotFound as exc:
            return CannotAdopt(f"can't recheck DeletionTimestamp of {where}: {exc}")
        if meta(fresh).get("uid") != self._uid:
            # replica_set.go's canAdopt: a same-named successor must do its own adopting.
            return CannotAdopt(f"original {where} is gone: got uid {meta(fresh).get('uid')}, wanted {self._uid}")
        if is_deleting(fresh):
            return CannotAdopt(f"{where} has just been deleted at {meta(fresh)['deletionTimestamp']}")
        return None

    def _adopt(self, obj: JSON) -> JSON:
        self._check_can_adopt()
        refs = [*(meta(obj).get("ownerReferences") or []), owner_reference(self._owner)]
        adopted: JSON = self._api.patch(
            self._child[0], self._child[1], meta(obj)["name"],
            {"metadata": {"ownerReferences": refs, "resourceVersion": meta(obj).get("resourceVersion")}},
            namespace=meta(obj).get("namespace"))
        return adopted

    def _release(self, obj: JSON) -> None:
        refs = [r for r in meta(obj).get("ownerReferences") or [] if r.get("uid") != self._uid]
        # ReleasePod ignores 422 too: the object was replaced or already released.
        with contextlib.suppress(errors.Invalid):
            self._api.patch(
                self._child[0], self._child[1], meta(obj)["name"],
                # null drops the field, as Go's omitempty leaves no empty list behind
                {"metadata": {"ownerReferences": refs or None,
                              "resourceVersion": meta(obj).get("resourceVersion")}},
                namespace=meta(obj).get("namespace"))


def _parse_time(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return _dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=_dt.UTC).timestamp()
    except ValueError:
        return None


def pod_available(pod: JSON, min_ready_seconds: int) -> tuple[bool, float | None]:
    """podutil.IsPodAvailable: Ready for at least minReadySeconds. Returns (available, recheck_in)."""
    if not pod_ready(pod):
        return False, None
    if min_ready_seconds <= 0:
        return True, None
    since = None
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            since = _parse_time(cond.get("lastTransitionTime"))
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


class _WorkloadBase(Controller):
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


class ReplicaSetController(_WorkloadBase):
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
                            _invert(meta(p).get("creationTimestamp") or ""))
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


def _invert(text: str) -> str:
    """Sort key that orders strings descending inside an ascending sort."""
    return "".join(chr(0x10FFFF - ord(c)) for c in text)


class DeploymentController(_WorkloadBase):
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
            since = _parse_time((progressing or {}).get("lastUpdateTime"))
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


class StatefulSetController(_WorkloadBase):
    """pkg/controller/statefulset/stateful_set_control.go.

    Pods are ``<name>-<ordinal>``; each gets PVCs ``<claim>-<name>-<ordinal>`` from
    volumeClaimTemplates, created first and never deleted by the StatefulSet (unless
    persistentVolumeClaimRetentionPolicy.whenDeleted is Delete, which makes the StatefulSet their
    owner so the garbage collector removes them with it; whenScaled: Delete hands a condemned
    ordinal's claims to its pod likewise). OrderedReady creates one pod at a time
    in ordinal order and scales down from the highest ordinal; Parallel does all at once. A
    RollingUpdate replaces one pod at a time from the highest ordinal down to the partition, each
    only after every other pod is Running and Ready.
    """

    name = "statefulsets"
    kind = "StatefulSet"
    resource = "statefulsets"

    def reconcile(self, key: Key) -> float | None:
        ss = self._get(key)
        if ss is None:
            return None
        spec = ss.get("spec") or {}
        name = meta(ss)["name"]
        desired = int(spec.get("replicas", 1))
        start = int((spec.get("ordinals") or {}).get("start") or 0)
        parallel = spec.get("podManagementPolicy") == "Parallel"
        strategy = spec.get("updateStrategy") or {}
        update_revision = f"{name}-{spec_hash(spec.get('template') or {})}"
        status = deepcopy(ss.get("status") or {})
        current_revision = status.get("currentRevision") or update_revision
        pods: dict[int, JSON] = {}
        for p in self.claim_pods(ss):
            ordinal = _ordinal(name, meta(p)["name"])
            if ordinal is not None:
                pods[ordinal] = p
        wanted = range(start, start + desired)
        if not is_deleting(ss):
            self._sync_pods(ss, pods, wanted, parallel, update_revision)
            if strategy.get("type", "RollingUpdate") == "RollingUpdate":
                partition = int((strategy.get("rollingUpdate") or {}).get("partition") or 0)
                self._rolling_update(pods, wanted, update_revision, partition)
        active = [p for o, p in pods.items() if pod_active(p)]
        min_ready = int(spec.get("minReadySeconds") or 0)
        recheck = None
        available = 0
        for p in active:
            ok, wait = pod_available(p, min_ready)
            available += ok
            if wait is not None:
                recheck = wait if recheck is None else min(recheck, wait)

        def revision(p: JSON) -> str:
            return str((meta(p).get("labels") or {}).get(REVISION_LABEL, ""))

        ready = sum(1 for p in active if pod_ready(p))
        updated = sum(1 for p in active if revision(p) == update_revision)
        current = sum(1 for p in active if revision(p) == current_revision)
        if (strategy.get("type", "RollingUpdate") == "RollingUpdate" and updated == len(active) == desired
                and ready == desired):
            current_revision, current = update_revision, updated  # completeRollingUpdate
        status.update({
            "observedGeneration": meta(ss).get("generation", 1),
            "replicas": len(active),
            "readyReplicas": ready,
            "currentReplicas": current,
            "updatedReplicas": updated,
            "availableReplicas": available,
            "currentRevision": current_revision,
            "updateRevision": update_revision,
            "collisionCount": int(status.get("collisionCount") or 0),
        })
        self._write_status(ss, status)
        return recheck

    def claim_pods(self, ss: JSON) -> list[JSON]:
        """getPodsForStatefulSet: claim with the selector plus isMemberOf (stateful_set_utils.go),
        so only pods named ``<set>-<ordinal>`` are the set's -- an adopted pod keeps its identity,
        and one of ours whose name says otherwise is released."""
        name = meta(ss)["name"]
        return self._claim(ss, member=lambda p: _ordinal(name, meta(p)["name"]) is not None)

    def _sync_pods(self, ss: JSON, pods: dict[int, JSON], wanted: range, parallel: bool,
                   update_revision: str) -> None:
        # Failed or Succeeded pods are deleted and recreated with the same identity.
        for p in list(pods.values()):
            if (p.get("status") or {}).get("phase") in ("Failed", "Succeeded") and not is_deleting(p):
                self._delete_pod(p)
                return
        for ordinal in wanted:
            pod = pods.get(ordinal)
            if pod is None:
                pods[ordinal] = self._create_pod(ss, ordinal, update_revision)
                if not parallel:
                    return  # OrderedReady: wait for this one to be Running and Ready
                continue
            if not parallel and (is_deleting(pod) or not pod_ready(pod)):
                return
        condemned = sorted((o for o in pods if o not in wanted), reverse=True)
        if not condemned:
            return
        if not parallel:
            if any(is_deleting(pods[o]) for o in pods):
                return  # one at a time; the DELETED event requeues us
            if not all(pod_ready(pods[o]) for o in wanted if o in pods):
                return
            condemned = condemned[:1]
        retention = spec_retention(ss)
        for o in condemned:
            if not is_deleting(pods[o]):
                if retention.get("whenScaled") == "Delete":
                    self._hand_claims_to_pod(ss, pods[o], o)
                self._delete_pod(pods[o])

    def _hand_claims_to_pod(self, ss: JSON, pod: JSON, ordinal: int) -> None:
        """whenScaled: Delete -- the condemned pod becomes an owner of its claims, so the garbage
        collector removes them once the pod is gone (stateful_pod_control.go updateClaimOwnerRefForSetAndPod)."""
        for claim in (ss.get("spec") or {}).get("volumeClaimTemplates") or []:
            name = f"{(claim.get('metadata') or {}).get('name')}-{meta(ss)['name']}-{ordinal}"
            try:
                pvc = self.api.get(V1, "persistentvolumeclaims", name, meta(ss).get("namespace"))
            except errors.NotFound:
                continue
            # The pod replaces the set as owner: with both, the surviving set would keep the claim.
            refs = [r for r in meta(pvc).get("ownerReferences") or [] if r.get("uid") != meta(ss).get("uid")]
            if any(r.get("uid") == meta(pod).get("uid") for r in refs):
                continue
            refs.append(owner_reference(pod, controller=False))
            self.api.patch(V1, "persistentvolumeclaims", name,
                           {"metadata": {"ownerReferences": refs,
                                         "resourceVersion": meta(pvc).get("resourceVersion")}},
                           namespace=meta(ss).get("namespace"))

    def _rolling_update(self, pods: dict[int, JSON], wanted: range, update_revision: str, partition: int) -> None:
        if any(is_deleting(p) for p in pods.values()):
            return
        if not all(o in pods and pod_ready(pods[o]) for o in wanted):
            return
        for ordinal in sorted(wanted, reverse=True):
            if ordinal < partition:
                break
            if (meta(pods[ordinal]).get("labels") or {}).get(REVISION_LABEL) != update_revision:
                self._delete_pod(pods[ordinal])  # recreated from the new template next pass
                return

    def _create_pod(self, ss: JSON, ordinal: int, update_revision: str) -> JSON:
        spec = ss.get("spec") or {}
        name = meta(ss)["name"]
        namespace = meta(ss).get("namespace")
        pod_name = f"{name}-{ordinal}"
        claims = spec.get("volumeClaimTemplates") or []
        for claim in claims:
            self._ensure_claim(ss, claim, ordinal)
        pod = new_pod(spec.get("template") or {}, ss, name=pod_name, extra_labels={
            REVISION_LABEL: update_revision,
            "statefulset.kubernetes.io/pod-name": pod_name,
            "apps.kubernetes.io/pod-index": str(ordinal),
        })
        pod_spec = pod["spec"]
        pod_spec["hostname"] = pod_name
        if spec.get("serviceName"):
            pod_spec["subdomain"] = spec["serviceName"]
        claim_names = {(c.get("metadata") or {}).get("name") for c in claims}
        volumes = [v for v in pod_spec.get("volumes") or [] if v.get("name") not in claim_names]
        for claim in claims:
            cname = (claim.get("metadata") or {}).get("name")
            volumes.append({"name": cname, "persistentVolumeClaim": {"claimName": f"{cname}-{pod_name}"}})
        if volumes:
            pod_spec["volumes"] = volumes
        try:
            return self.api.create(V1, "pods", pod, namespace=namespace)
        except errors.AlreadyExists:
            # Ours only if we raced our own earlier create. An orphan was adopted by _claim before
            # we got here (or is being deleted, or does not match); a pod controlled by someone
            # else is not a member either: fail and retry, as upstream's sync does.
            existing = self.api.get(V1, "pods", pod_name, namespace)
            if is_controlled_by(existing, ss):
                return existing
            raise

    def _ensure_claim(self, ss: JSON, claim: JSON, ordinal: int) -> None:
        spec = ss.get("spec") or {}
        cmeta = claim.get("metadata") or {}
        claim_name = f"{cmeta.get('name')}-{meta(ss)['name']}-{ordinal}"
        labels = dict(cmeta.get("labels") or {})
        labels.update(((spec.get("selector") or {}).get("matchLabels")) or {})
        obj: JSON = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                     "metadata": {"name": claim_name, "namespace": meta(ss).get("namespace"), "labels": labels},
                     "spec": deepcopy(claim.get("spec") or {})}
        if cmeta.get("annotations"):
            obj["metadata"]["annotations"] = dict(cmeta["annotations"])
        if spec_retention(ss).get("whenDeleted") == "Delete":
            obj["metadata"]["ownerReferences"] = [owner_reference(ss, controller=False)]
        # Claims outlive pods: a recreated pod reuses its ordinal's claim.
        with contextlib.suppress(errors.AlreadyExists):
            self.api.create(V1, "persistentvolumeclaims", obj, namespace=meta(ss).get("namespace"))


def spec_retention(ss: JSON) -> JSON:
    """persistentVolumeClaimRetentionPolicy; both fields default to Retain."""
    policy: JSON = (ss.get("spec") or {}).get("persistentVolumeClaimRetentionPolicy") or {}
    return policy


def _ordinal(set_name: str, pod_name: str) -> int | None:
    prefix = f"{set_name}-"
    if not pod_name.startswith(prefix):
        return None
    tail = pod_name[len(prefix):]
    return int(tail) if tail.isdigit() else None


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


class DaemonSetController(_WorkloadBase):
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
