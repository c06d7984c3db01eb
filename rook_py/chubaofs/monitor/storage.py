"""What a change of ``storage`` means for an existing StatefulSet.

A StatefulSet's volumeClaimTemplates are immutable, and its PVCs outlive it. So:

- same size and class: nothing to do;
- a bigger size: expand each existing PVC in place (works when the StorageClass allows volume
  expansion; the PVC reports the resize); the template itself keeps its old size;
- a smaller size, another ``storageClassName``, or storage removed: refused, because it would
  need new volumes, i.e. data loss; the live templates are kept and nothing is applied for it;
- storage added where there was none (emptyDir): the StatefulSet must be recreated with the
  template; nothing persistent is lost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rook_py.chubaofs.api.validation import parse_quantity

JSON = dict[str, Any]


@dataclass
class StoragePlan:
    refused: list[str] = field(default_factory=list)
    grow: dict[str, str] = field(default_factory=dict)  # template name -> new size
    recreate: bool = False


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
