"""Status of a ChubaoMonitor: per-component readiness, phase, conditions and endpoints.

Pure functions of the live workloads and the reconcile outcome, so the same cluster state always
gives the same status, and a steady-state reconcile writes nothing (conditions keep their
lastTransitionTime unless their status flips, through ``set_condition``).

``status.observedGeneration`` is the generation the controller *processed*, whatever the outcome
(applied, refused as invalid, data-loss change refused), as the Kubernetes API conventions and
controller-runtime operators such as Cluster API do: a client waiting for "the operator has seen
generation N" waits on observedGeneration, then reads the conditions to learn what came of it
(InvalidSpec True says the generation was refused and why). Only Deleting leaves it alone.

Phase rules, in order:

* Deleting: deletionTimestamp set.
* Invalid spec (nothing was applied, the running stack is untouched): Failed when nothing of the
  stack is serving (e.g. a monitor that never installed), otherwise Degraded -- the components
  keep reporting the running (previous) stack's health, but the desired state is not what runs,
  so never Ready.
* Failed: a reconcile error while nothing is ready.
* Degraded: a reconcile error with components still serving, or a refused data-loss change.
* Ready: every enabled component ready.
* Degraded: not everything ready, though this generation was Ready before -- unless every
  component that is not ready is in a transition the operator itself started (disabling it,
  replacing or recreating its workload; ``Outcome.transitions``): that is progress.
* Progressing otherwise (installing, rolling out, disabling, or replacing a workload).

A component is not ready while a workload it replaces (another kind, or the same one being
recreated) still exists (:func:`awaiting_removal`), while its StatefulSet is being recreated
around running pods (:func:`recreating`), and, once disabled, while its workload or Services
still exist (:func:`disabling_status`); it reports disabled only when they are gone.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rook_py.chubaofs.api import types as t
from rook_py.framework.objects import set_condition

JSON = dict[str, Any]


def workload_status(workload: JSON | None, image: str) -> JSON:
    """``{ready, readyReplicas, replicas, image, message}`` of a Deployment or StatefulSet.

    Ready means what ``kubectl rollout status`` waits for (kubernetes/kubectl
    pkg/polymorphichelpers/rollout_status.go): the controller has seen the latest spec
    (status.observedGeneration), every replica runs the latest template (updatedReplicas, and
    for a StatefulSet currentRevision == updateRevision), no old replica is left, and all are
    ready. ``image`` is what the workload runs (its template), ``image`` the fallback before it
    exists.
    """
    if workload is None:
        return {"ready": False, "readyReplicas": 0, "replicas": 0, "image": image,
                "message": "waiting for the workload to be created"}
    spec, status = workload.get("spec") or {}, workload.get("status") or {}
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
    if containers and containers[0].get("image"):
        image = str(containers[0]["image"])
    replicas = int(spec.get("replicas", 1))
    ready_replicas = int(status.get("readyReplicas") or 0)
    updated = status.get("updatedReplicas")
    current_total = status.get("replicas")
    generation = workload.get("metadata", {}).get("generation")
    observed = status.get("observedGeneration")
    kind = workload.get("kind", "workload")
    revisions = (status.get("currentRevision"), status.get("updateRevision"))
    ready = False
    if generation is not None and (observed is None or observed < generation):
        message = f"waiting for the {kind} controller to observe generation {generation}"
    elif updated is not None and int(updated) < replicas:
        message = f"rolling out: {updated}/{replicas} replicas updated"
    elif None not in revisions and revisions[0] != revisions[1]:
        message = "rolling out: the update revision is not current on every replica yet"
    elif current_total is not None and int(current_total) > replicas:
        message = f"rolling out: {int(current_total) - replicas} old replicas pending termination"
    else:
        message = f"{ready_replicas}/{replicas} replicas ready"
        ready = ready_replicas >= replicas
    return {"ready": ready, "readyReplicas": ready_replicas, "replicas": replicas, "image": image,
            "message": message}


def awaiting_removal(component: JSON, leftovers: Sequence[str]) -> JSON:
    """``component`` (a :func:`workload_status`) held not ready while ``leftovers`` exist.

    Swapping a workload's kind (Grafana's Deployment for a StatefulSet when storage is added) or
    recreating a StatefulSet (volume templates are immutable) deletes the old object; until it
    is gone its pods may still serve, and hold the data volume, next to the new ones, so the
    component has not converged even if the new workload reports ready.
    """
    if not leftovers:
        return component
    return {**component, "ready": False,
            "message": f"waiting for the replaced {', '.join(leftovers)} to be deleted"}


def recreating(component: JSON, workload: str) -> JSON:
    """``component`` held not ready while ``workload`` is deleted with its pods orphaned and
    created again (grown volume templates): the pods keep serving, but the component has not
    converged until the new set owns them."""
    return {**component, "ready": False,
            "message": f"recreating {workload} with the grown volume claim templates; its pods "
                       "keep running"}


def disabled_status(message: str) -> JSON:
    """A component the operator does not run counts as ready (nothing to wait for)."""
    return {"ready": True, "readyReplicas": 0, "replicas": 0, "image": "", "message": message}


def disabling_status(lingering: Sequence[str]) -> JSON:
    """A disabled component whose workload or Services (``lingering``, e.g. "StatefulSet x")
    still exist: not ready. A workload deleted in the foreground stays, with a
    deletionTimestamp, until its pods are gone, so "disabled" is only reported once nothing of
    the component runs or routes traffic. Kept PVCs never count: they stay on purpose."""
    return {"ready": False, "readyReplicas": 0, "replicas": 0, "image": "",
            "message": f"Disabling: waiting for {', '.join(lingering)} to be deleted"}


@dataclass
class Outcome:
    """What one reconcile pass found and did; the input of :func:`compute_status`.

    With ``invalid`` set, ``components`` is what the controller observed of the untouched
    running stack (empty: the last report stands).
    """

    components: dict[str, JSON] = field(default_factory=dict)
    endpoints: dict[str, str] = field(default_factory=dict)
    invalid: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    error: str | None = None
    deleting: bool = False
    # Components in a transition the operator started (disabling, replacing or recreating a
    # workload): not ready on purpose, which is progress even in a generation that was Ready.
    transitions: set[str] = field(default_factory=set)


def _phase(outcome: Outcome, components: Mapping[str, JSON], previous: Mapping[str, Any],
           generation: int) -> str:
    if outcome.deleting:
        return t.PHASE_DELETING
    all_ready = bool(components) and all(c["ready"] for c in components.values())
    # Something actually runs and serves (a disabled component, 0 replicas, does not count).
    any_ready = any(c["ready"] and c["replicas"] for c in components.values())
    if outcome.invalid:
        return t.PHASE_DEGRADED if any_ready else t.PHASE_FAILED
    if outcome.error and not any_ready:
        return t.PHASE_FAILED
    if outcome.error or outcome.refused:
        return t.PHASE_DEGRADED
    if all_ready:
        return t.PHASE_READY
    was_ready = (previous.get("phase") in (t.PHASE_READY, t.PHASE_DEGRADED)
                 and previous.get("observedGeneration") == generation)
    not_ready = {name for name, c in components.items() if not c["ready"]}
    if was_ready and not not_ready <= outcome.transitions:
        return t.PHASE_DEGRADED
    return t.PHASE_PROGRESSING


def _not_ready(components: Mapping[str, JSON]) -> str:
    return "; ".join(f"{name}: {c['message']}" for name, c in components.items() if not c["ready"])


def compute_status(monitor: JSON, outcome: Outcome) -> JSON:
    """The new ``status`` of ``monitor`` (a copy; the previous status is the starting point)."""
    previous: JSON = monitor.get("status") or {}
    generation = int(monitor.get("metadata", {}).get("generation") or 0)
    status: JSON = copy.deepcopy(previous)
    components: Mapping[str, JSON] = outcome.components
    if outcome.invalid and not components:
        # Nothing observed this pass: the last report stands for the untouched running stack.
        components = previous.get("components") or {}
    phase = _phase(outcome, components, previous, generation)
    status["phase"] = phase
    if not outcome.deleting:
        status["observedGeneration"] = generation
        status["components"] = copy.deepcopy(dict(components))
        if not outcome.invalid:
            # An invalid spec changed nothing: the endpoints of the running stack stay.
            status["endpoints"] = dict(outcome.endpoints)
    status.setdefault("conditions", [])

    def cond(type_: str, value: bool, reason: str, message: str) -> None:
        set_condition(status, type_, "True" if value else "False", reason, message, generation)

    if outcome.deleting:
        cond(t.COND_READY, False, "Deleting", "the ChubaoMonitor is being deleted")
        cond(t.COND_PROGRESSING, True, "Deleting", "removing owned objects")
        return status
    if outcome.invalid:
        message = "; ".join(outcome.invalid)
        cond(t.COND_INVALID_SPEC, True, "InvalidSpec", message)
        cond(t.COND_READY, False, "InvalidSpec", "the spec is invalid; nothing was changed")
        cond(t.COND_PROGRESSING, False, "InvalidSpec", "waiting for a valid spec")
        cond(t.COND_DEGRADED, phase == t.PHASE_DEGRADED, "InvalidSpec",
             "the spec is invalid; the previous stack keeps running unchanged"
             if phase == t.PHASE_DEGRADED else "nothing is running")
        return status
    if outcome.refused:
        cond(t.COND_INVALID_SPEC, True, "DataLossRefused", "; ".join(outcome.refused))
    else:
        cond(t.COND_INVALID_SPEC, False, "Valid", "the spec is valid")
    if outcome.error:
        cond(t.COND_RECONCILE_ERROR, True, "ReconcileFailed", outcome.error)
    else:
        cond(t.COND_RECONCILE_ERROR, False, "ReconcileSucceeded", "the last reconcile succeeded")
    not_ready = _not_ready(components)
    if phase == t.PHASE_READY:
        cond(t.COND_READY, True, "AllComponentsReady", "every enabled component is ready")
    else:
        cond(t.COND_READY, False, "ComponentsNotReady", not_ready or f"phase {phase}")
    cond(t.COND_PROGRESSING, phase == t.PHASE_PROGRESSING,
         "RollingOut" if phase == t.PHASE_PROGRESSING else "Settled",
         not_ready if phase == t.PHASE_PROGRESSING else "no rollout in progress")
    degraded_reason = ("DataLossRefused" if outcome.refused else
                       "ReconcileFailed" if outcome.error else "ComponentsNotReady")
    cond(t.COND_DEGRADED, phase == t.PHASE_DEGRADED,
         degraded_reason if phase == t.PHASE_DEGRADED else "AsExpected",
         "; ".join(filter(None, [*outcome.refused, outcome.error or "", not_ready]))
         if phase == t.PHASE_DEGRADED else "all components as expected")
    return status

