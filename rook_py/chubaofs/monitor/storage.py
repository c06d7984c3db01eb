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
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from rook_py.chubaofs.api.validation import parse_quantity

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
