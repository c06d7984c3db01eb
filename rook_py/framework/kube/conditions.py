"""Status conditions (metav1.Condition), with the semantics of apimachinery's
``meta.SetStatusCondition`` (k8s.io/apimachinery/pkg/api/meta/conditions.go).

Conditions live in ``status["conditions"]``, a list keyed by ``type`` (see lists.py). A
condition's ``lastTransitionTime`` moves only when its ``status`` changes, so it says since when
the condition has held, not when it was last written.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from rook_py.framework.kube import times

__all__ = ["CONDITION_STATUSES", "get_condition", "is_condition_true", "set_condition"]

JSON = dict[str, Any]
CONDITION_STATUSES: Final = ("True", "False", "Unknown")


def get_condition(status: Mapping[str, Any] | None, type_: str) -> JSON | None:
    """The condition of ``type_`` in ``status["conditions"]``, or None (``meta.FindStatusCondition``)."""
    for cond in (status or {}).get("conditions") or ():
        if isinstance(cond, dict) and cond.get("type") == type_:
            return cond
    return None


def is_condition_true(status: Mapping[str, Any] | None, type_: str) -> bool:
    """``meta.IsStatusConditionTrue``."""
    cond = get_condition(status, type_)
    return cond is not None and cond.get("status") == "True"


def set_condition(status: JSON, type_: str, status_value: str, reason: str, message: str,
                  observed_generation: int | None = None, *,
                  now: Callable[[], str] | None = None) -> bool:
    """Set a condition in ``status["conditions"]`` (mutates ``status``, the caller's copy).

    ``lastTransitionTime`` changes only when ``status`` changes; reason, message and
    observedGeneration are updated in place (``observed_generation=None`` leaves a recorded
    generation as it is). Returns whether anything changed, so a caller can skip a status write
    when nothing did. ``now`` gives the transition time (default: ``times.now``).
    """
    clock = now or times.now
    if status_value not in CONDITION_STATUSES:
        raise ValueError(f'condition status must be "True", "False" or "Unknown", got {status_value!r}')
    conditions: list[JSON] = status.setdefault("conditions", [])
    existing = get_condition(status, type_)
    if existing is None:
        new: JSON = {"type": type_, "status": status_value, "lastTransitionTime": clock(),
                     "reason": reason, "message": message}
        if observed_generation is not None:
            new["observedGeneration"] = observed_generation
        conditions.append(new)
        return True
    changed = False
    if existing.get("status") != status_value:
        existing["status"] = status_value
        existing["lastTransitionTime"] = clock()
        changed = True
    for key, value in (("reason", reason), ("message", message),
                       ("observedGeneration", observed_generation)):
        if value is not None and existing.get(key) != value:
            existing[key] = value
            changed = True
    return changed
