"""Claiming a workload's children: pkg/controller/controller_ref_manager.go.

Orphans matching the owner's selector are adopted, its own objects that stopped matching are
released, so a workload recreated over objects orphaned by a ``propagationPolicy: Orphan`` delete
takes them back without restarting them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from rook_py.envtest.cluster.base import (
    JSON,
    LocalAPILike,
    controller_ref,
    deepcopy,
    is_deleting,
    meta,
    owner_reference,
)
from rook_py.framework.client import errors
from rook_py.framework.kube import selectors as _labels

APPS = "apps/v1"
V1 = "v1"
#: the workload kinds whose children are claimed, by resource
OWNER_RESOURCE = {"ReplicaSet": "replicasets", "StatefulSet": "statefulsets", "DaemonSet": "daemonsets",
                   "Deployment": "deployments"}


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
        resource = OWNER_RESOURCE[str(self._owner.get("kind"))]
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
