"""The StatefulSet controller: pkg/controller/statefulset (no containers run).

Known simplification: no ControllerRevision objects (a StatefulSet pod recreated during a
partitioned rollout gets the update revision).
"""

from __future__ import annotations

import contextlib

from rook_py.envtest.cluster.base import (
    JSON,
    Key,
    deepcopy,
    is_controlled_by,
    is_deleting,
    meta,
    owner_reference,
    pod_active,
    pod_ready,
    spec_hash,
)
from rook_py.envtest.cluster.controller_ref_manager import V1
from rook_py.envtest.cluster.controller_utils import (
    REVISION_LABEL,
    WorkloadController,
    new_pod,
    pod_available,
)
from rook_py.framework.client import errors


class StatefulSetController(WorkloadController):
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
