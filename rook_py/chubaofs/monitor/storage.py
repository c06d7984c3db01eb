"""What a change of ``storage`` means for an existing StatefulSet.

A StatefulSet's volumeClaimTemplates are immutable, and its PVCs outlive it. So:

- same size and class: nothing to do;
- a bigger size: expand each existing PVC in place (works when the StorageClass allows volume
  expansion; the PVC reports the resize), then recreate the StatefulSet with the new template,
  deleting the old one with ``propagationPolicy: Orphan`` so its pods keep running and the
  recreated set adopts them. None restarts: a pod's revision hashes only ``spec.template``
  (getPatch in kubernetes/kubernetes pkg/controller/statefulset/stateful_set_utils.go), which
  the volume templates are not part of. Without this a later scale-up would create new PVCs at
  the old size. ECK (elastic/cloud-on-k8s pkg/controller/elasticsearch/driver/pvc_expansion.go)
  and MOCO (cybozu-go/moco docs/designdoc/support_apply_pvc_template_changes.md) automate the
  same community runbook (``kubectl delete sts --cascade=orphan``, then apply again);
- a smaller size, another ``storageClassName``, or storage removed: refused, because it would
  need new volumes, i.e. data loss; the live templates are kept and nothing is applied for it;
- storage added where there was none (emptyDir): the StatefulSet must be recreated with the
  template; nothing persistent is lost.

:func:`plan_storage` decides (a pure function of the live and the desired set);
:class:`StorageTransitions` carries the decision out over several passes, before the controller
applies the workload, and remembers the set it deleted around running pods until the new one
exists.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from rook_py.chubaofs.monitor import common
from rook_py.chubaofs.monitor.common import MonitorContext, describe
from rook_py.chubaofs.monitor.writer import NORMAL, Writer
from rook_py.framework.client.errors import Conflict, Forbidden, Invalid, NotFound
from rook_py.framework.kube.quantity import parse_quantity

JSON = dict[str, Any]


@dataclass
class StoragePlan:
    """What to do about the volume templates of one StatefulSet.

    Invariant: with anything ``refused``, ``grow`` is empty and ``recreate`` False, so nothing
    of a partly refused storage change is acted on. When storage is both added and grown,
    ``recreate`` wins: the new set gets every desired template anyway.
    """

    refused: list[str] = field(default_factory=list)
    grow: dict[str, str] = field(default_factory=dict)  # template name -> new size
    recreate: bool = False

    @property
    def recreate_after_expansion(self) -> bool:
        """Once every existing claim of ``grow`` requests its new size, the StatefulSet is
        recreated (orphaning its pods) so that the template, and new claims, carry it too."""
        return bool(self.grow) and not self.recreate


def _templates(sts: JSON) -> dict[str, JSON]:
    return {tpl["metadata"]["name"]: tpl
            for tpl in (sts.get("spec") or {}).get("volumeClaimTemplates") or []}


def _size(tpl: JSON) -> str:
    return str(tpl["spec"]["resources"]["requests"]["storage"])


def plan_storage(component: str, live: JSON, desired: JSON) -> StoragePlan:
    """Compare the templates of the live and the desired StatefulSet of ``component``."""
    plan = StoragePlan()
    live_tpls, desired_tpls = _templates(live), _templates(desired)
    for name in sorted(set(live_tpls) - set(desired_tpls)):
        plan.refused.append(f"{component}.storage: removing the {name!r} volume would discard "
                            "its data; refused")
    for name in sorted(set(live_tpls) & set(desired_tpls)):
        old, new = live_tpls[name], desired_tpls[name]
        old_class = old["spec"].get("storageClassName") or None
        new_class = new["spec"].get("storageClassName") or None
        if old_class != new_class:
            plan.refused.append(f"{component}.storage.storageClassName: changing {old_class or 'default'}"
                                f" to {new_class or 'default'} needs new volumes (data loss); "
                                "refused")
            continue
        old_size, new_size = parse_quantity(_size(old)), parse_quantity(_size(new))
        if new_size < old_size:
            plan.refused.append(f"{component}.storage.size: shrinking {_size(old)} to {_size(new)} "
                                "is not possible without data loss; refused")
        elif new_size > old_size:
            plan.grow[name] = _size(new)
    if not plan.refused and set(desired_tpls) - set(live_tpls):
        plan.recreate = True
    if plan.refused:
        plan.grow.clear()
    return plan


def claim_prefix(template: str, sts_name: str) -> str:
    """PVCs of a StatefulSet are named ``<template>-<set>-<ordinal>`` (the StatefulSet controller's
    getPersistentVolumeClaimName, kubernetes/kubernetes pkg/controller/statefulset/stateful_set_utils.go)."""
    return f"{template}-{sts_name}-"


def claims_to_expand(plan: StoragePlan, sts_name: str, claims: Iterable[JSON]) -> dict[str, tuple[str, str]]:
    """PVC name -> (current request, new size) for each claim of a grown template that still
    requests less than its new size. Claims of other templates or sets are ignored, and so is
    a claim already requesting more (it was grown by hand; shrinking is never done)."""
    found: dict[str, tuple[str, str]] = {}
    for claim in claims:
        name = str(claim["metadata"]["name"])
        current = str(claim["spec"]["resources"]["requests"]["storage"])
        for template, size in plan.grow.items():
            ordinal = name[len(claim_prefix(template, sts_name)):]
            if (name.startswith(claim_prefix(template, sts_name)) and ordinal.isdigit()
                    and parse_quantity(current) < parse_quantity(size)):
                found[name] = (current, size)
    return found


# Records storage changes refused for data loss or by the API server (InvalidSpec, Degraded).
Refuse = Callable[[list[str]], None]


@dataclass(frozen=True)
class StorageStep:
    """What :meth:`StorageTransitions.prepare` decided for this pass's workload.

    ``held``: do not apply the workload now, poll again soon. ``waiting_on`` names a replaced
    workload that still exists; ``recreating`` says the StatefulSet was deleted with its pods
    orphaned and is about to be created again. ``orphaned`` is that deleted set while the new
    one is not there yet: it stands for the pods that still run (what they loaded, their
    template's config hash) until the workload is applied.
    """

    waiting_on: tuple[str, ...] = ()
    recreating: bool = False
    orphaned: JSON | None = None

    @property
    def held(self) -> bool:
        return bool(self.waiting_on) or self.recreating


class StorageTransitions:
    """Carries storage changes of a component's StatefulSet out across passes.

    Per pass and component, :meth:`prepare` runs before the workload is applied and either lets
    it be applied (with the live volume templates where the desired ones cannot be) or holds it
    while a replaced set goes away. State kept between passes, under one lock because workers
    reconcile different ChubaoMonitors at once: the set deleted with Orphan propagation, keyed
    by component, until the recreated one exists (:meth:`recreated`). While it is absent, its
    config-delivery annotations are the running (orphaned) pods' truth; without them the new
    pod template could differ from theirs and roll them. Lost on an operator restart (the known
    gap in docs/architecture.md); :meth:`forget` drops it with the ChubaoMonitor.
    """

    def __init__(self, writer: Writer) -> None:
        self._writer = writer
        self._orphaned: dict[str, JSON] = {}
        self._lock = threading.Lock()

    def prepare(self, ctx: MonitorContext, component: str, key: str, live: JSON | None,
                desired: JSON, refuse: Refuse) -> StorageStep:
        """``live`` is the workload in the cache (``None``: absent), ``desired`` the one about to
        be applied; its volume templates are set to the live ones unless the set is replaced."""
        orphaned = self._still_orphaned(key, live)
        if orphaned is not None and live is not None:
            # The set this operator deleted to recreate, still in the cache (terminating, or the
            # delete event not seen yet): wait for it to go, never delete it twice.
            return StorageStep(recreating=True)
        if live is not None and live["metadata"].get("deletionTimestamp"):
            # Being deleted (replaced to add storage, or by someone else): wait for it to go.
            return StorageStep(waiting_on=(describe(desired),))
        if live is None or desired["kind"] != "StatefulSet":
            return StorageStep(orphaned=orphaned)
        storage = plan_storage(component, live, desired)
        if storage.refused:
            refuse(storage.refused)
        if storage.recreate:
            self._writer.delete(ctx, live, why="to add persistent storage (volume templates are "
                                               "immutable)")
            return StorageStep(waiting_on=(describe(desired),))
        if storage.recreate_after_expansion and self._expand_claims(ctx, component, live, storage,
                                                                    refuse):
            self._orphan_for_recreation(ctx, key, live)
            return StorageStep(recreating=True)
        # Volume templates are immutable: otherwise keep the live ones (an expansion that was
        # rejected is refused above and waits for the user).
        live_templates = live["spec"].get("volumeClaimTemplates")
        if live_templates is not None:
            desired["spec"]["volumeClaimTemplates"] = copy.deepcopy(live_templates)
        else:
            desired["spec"].pop("volumeClaimTemplates", None)
        return StorageStep()

    def recreated(self, key: str) -> None:
        """The workload of ``key`` was applied: a recreated set owns the orphaned pods now."""
        with self._lock:
            self._orphaned.pop(key, None)

    def forget(self, key_prefix: str) -> None:
        """Drop the state of a ChubaoMonitor that is gone (keys start with ns/name/)."""
        with self._lock:
            for key in [k for k in self._orphaned if k.startswith(key_prefix)]:
                del self._orphaned[key]

    def _still_orphaned(self, key: str, live: JSON | None) -> JSON | None:
        """The set deleted for recreation, unless ``live`` is already its successor."""
        with self._lock:
            orphaned = self._orphaned.get(key)
            if orphaned is not None and live is not None and _uid(live) != _uid(orphaned):
                del self._orphaned[key]  # recreated: the new set owns the pods now
                return None
        return orphaned

    def _expand_claims(self, ctx: MonitorContext, component: str, sts: JSON, storage: StoragePlan,
                       refuse: Refuse) -> bool:
        """Ask for the grown size on each existing claim; True when every claim now requests it.

        The API server rejects an expansion the StorageClass does not allow (403/422): that is
        refused (InvalidSpec, Degraded) and the StatefulSet is left alone until the user acts.
        Any other error is transient and propagates, so the pass is retried with backoff.
        """
        client = self._writer.client
        claims = client.list("v1", "PersistentVolumeClaim", ctx.namespace,
                             label_selector=common.instance_selector(ctx, component))
        expanded = True
        for name, (current, size) in claims_to_expand(storage, sts["metadata"]["name"],
                                                      claims.get("items") or []).items():
            try:
                client.patch("v1", "PersistentVolumeClaim", name,
                             {"spec": {"resources": {"requests": {"storage": size}}}},
                             namespace=ctx.namespace)
            except (Invalid, Forbidden) as err:
                refuse([f"{component}.storage.size: expanding PVC {name} to {size} was rejected: "
                        f"{err.message}"])
                expanded = False
                continue
            self._writer.event(ctx.monitor, NORMAL, "StorageExpanding",
                               f"PersistentVolumeClaim {name}: {current} -> {size}")
        return expanded

    def _orphan_for_recreation(self, ctx: MonitorContext, key: str, live: JSON) -> None:
        """Delete the StatefulSet, orphaning its pods, so the next pass creates it with the new
        volume templates (Orphan: the garbage collector strips the pods' owner references
        instead of deleting them, and the new set adopts them by its selector). The uid
        precondition makes sure a set already recreated is never deleted (a stale cache).
        The deleted set is remembered only once it is really going, so a failed delete is
        simply tried again by the next pass."""
        try:
            self._writer.client.delete("apps/v1", "StatefulSet", live["metadata"]["name"],
                                       ctx.namespace, propagation_policy="Orphan",
                                       preconditions={"uid": _uid(live)})
        except Conflict:
            return  # the cache is behind a set that was already recreated: the next pass sees it
        except NotFound:
            pass  # already gone: create it next
        else:
            self._writer.event(ctx.monitor, NORMAL, "Recreating",
                               f"Deleted StatefulSet {live['metadata']['name']} orphaning its "
                               "pods, to recreate it with the grown volume claim templates "
                               "(volume templates are immutable)")
        with self._lock:
            self._orphaned[key] = copy.deepcopy(live)


def _uid(obj: JSON) -> str:
    return str(obj["metadata"].get("uid") or "")
