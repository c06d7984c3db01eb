"""Storage change decisions and status computation."""

from __future__ import annotations

from typing import Any

from rook_py.chubaofs.api import types as t
from rook_py.chubaofs.monitor.status import (
    Outcome,
    awaiting_removal,
    compute_status,
    disabled_status,
    workload_status,
)
from rook_py.chubaofs.monitor.storage import plan_storage

JSON = dict[str, Any]


def sts(templates: dict[str, tuple[str, str | None]]) -> JSON:
    vcts = []
    for name, (size, klass) in templates.items():
        spec: JSON = {"resources": {"requests": {"storage": size}}}
        if klass:
            spec["storageClassName"] = klass
        vcts.append({"metadata": {"name": name}, "spec": spec})
    return {"spec": {"volumeClaimTemplates": vcts}}


def test_storage_plans() -> None:
    same = plan_storage("p", sts({"data": ("10Gi", None)}), sts({"data": ("10Gi", None)}))
    assert (same.refused, same.grow, same.recreate) == ([], {}, False)
    grow = plan_storage("p", sts({"data": ("10Gi", None)}), sts({"data": ("20Gi", None)}))
    assert grow.grow == {"data": "20Gi"} and not grow.refused
    equal_other_unit = plan_storage("p", sts({"data": ("1Gi", None)}), sts({"data": ("1024Mi", None)}))
    assert not equal_other_unit.grow and not equal_other_unit.refused
    shrink = plan_storage("p", sts({"data": ("10Gi", None)}), sts({"data": ("5Gi", None)}))
    assert shrink.refused and "shrinking 10Gi to 5Gi" in shrink.refused[0] and not shrink.grow
    klass = plan_storage("p", sts({"data": ("10Gi", "fast")}), sts({"data": ("20Gi", "slow")}))
    assert klass.refused and "storageClassName" in klass.refused[0] and not klass.grow
    removed = plan_storage("a", sts({"data": ("1Gi", None)}), sts({}))
    assert removed.refused and "removing" in removed.refused[0]
    added = plan_storage("a", sts({}), sts({"data": ("1Gi", None)}))
    assert added.recreate and not added.refused


def workload(replicas: int, ready: int, updated: int | None = None, generation: int = 2,
             observed: int | None = 2) -> JSON:
    status: JSON = {"readyReplicas": ready}
    if updated is not None:
        status["updatedReplicas"] = updated
    if observed is not None:
        status["observedGeneration"] = observed
    return {"kind": "StatefulSet", "metadata": {"generation": generation},
            "spec": {"replicas": replicas}, "status": status}


def test_workload_status() -> None:
    assert workload_status(None, "img")["message"] == "waiting for the workload to be created"
    ready = workload_status(workload(3, 3, 3), "img")
    assert ready == {"ready": True, "readyReplicas": 3, "replicas": 3, "image": "img",
                     "message": "3/3 replicas ready"}
    assert not workload_status(workload(3, 3, 3, observed=1), "i")["ready"]
    rolling = workload_status(workload(3, 3, 1), "i")
    assert not rolling["ready"] and rolling["message"] == "rolling out: 1/3 replicas updated"
    assert workload_status(workload(3, 1, 3), "i")["message"] == "1/3 replicas ready"
    surplus = workload(2, 2, 2)
    surplus["status"]["replicas"] = 3
    assert workload_status(surplus, "i")["message"] == "rolling out: 1 old replicas pending termination"
    revisions = workload(1, 1, 1)
    revisions["status"].update(currentRevision="a", updateRevision="b")
    assert not workload_status(revisions, "i")["ready"]
    running = workload(1, 1, 1)
    running["spec"]["template"] = {"spec": {"containers": [{"name": "c", "image": "live:1"}]}}
    assert workload_status(running, "desired:2")["image"] == "live:1"


def monitor(status: JSON | None = None, generation: int = 2) -> JSON:
    return {"metadata": {"generation": generation}, "status": status or {}}


def conditions(status: JSON) -> dict[str, str]:
    return {c["type"]: c["status"] for c in status["conditions"]}


def ready_components() -> dict[str, JSON]:
    return {c: {"ready": True, "readyReplicas": 1, "replicas": 1, "image": "i", "message": "ok"}
            for c in t.COMPONENTS}


def test_phase_progressing_then_ready_then_degraded() -> None:
    components = ready_components()
    components["grafana"] = {**components["grafana"], "ready": False, "readyReplicas": 0}
    installing = compute_status(monitor(), Outcome(components=components))
    assert installing["phase"] == "Progressing" and installing["observedGeneration"] == 2
    assert conditions(installing) == {"InvalidSpec": "False", "ReconcileError": "False", "Ready": "False",
                                      "Progressing": "True", "Degraded": "False"}
    ready = compute_status(monitor(installing), Outcome(components=ready_components()))
    assert ready["phase"] == "Ready" and conditions(ready)["Ready"] == "True"
    assert conditions(ready)["Progressing"] == "False"
    degraded = compute_status(monitor(ready), Outcome(components=components))
    assert degraded["phase"] == "Degraded" and conditions(degraded)["Degraded"] == "True"
    # A new generation that is not ready yet is progress, not degradation.
    assert compute_status(monitor(ready, generation=3), Outcome(components=components))["phase"] == "Progressing"


def test_status_is_stable_when_nothing_changes() -> None:
    outcome = Outcome(components=ready_components(), endpoints={"prometheus": "http://p:9090"})
    first = compute_status(monitor(), outcome)
    assert compute_status(monitor(first), outcome) == first


def test_invalid_spec_on_a_running_stack_is_processed_and_degraded() -> None:
    good = compute_status(monitor(generation=1), Outcome(components=ready_components(),
                                                         endpoints={"grafana": "http://g:3000"}))
    bad = compute_status(monitor(good, generation=2), Outcome(invalid=["consul.replicas: 2 is bad"]))
    # observedGeneration names the processed generation, refused or not.
    assert bad["phase"] == "Degraded" and bad["observedGeneration"] == 2
    assert bad["components"] == good["components"] and bad["endpoints"] == good["endpoints"]
    conds = {c["type"]: c for c in bad["conditions"]}
    cond = conds["InvalidSpec"]
    assert cond["status"] == "True" and cond["message"] == "consul.replicas: 2 is bad"
    assert cond["observedGeneration"] == 2
    assert conds["Ready"]["status"] == "False" and conds["Degraded"]["status"] == "True"
    assert conds["Progressing"]["status"] == "False"
    assert compute_status(monitor(bad, generation=2), Outcome(invalid=["consul.replicas: 2 is bad"])) == bad


def test_invalid_spec_never_installed_is_failed() -> None:
    bad = compute_status(monitor(generation=1), Outcome(invalid=["consul.replicas: 2 is bad"]))
    assert bad["phase"] == "Failed" and bad["observedGeneration"] == 1
    conds = {c["type"]: c["status"] for c in bad["conditions"]}
    assert conds["InvalidSpec"] == "True" and conds["Ready"] == "False" and conds["Degraded"] == "False"
    # A stack whose components are observed but none serving is Failed as well.
    down = {c: {**v, "ready": False} for c, v in ready_components().items()}
    assert compute_status(monitor(), Outcome(invalid=["x"], components=down))["phase"] == "Failed"
    # Live components observed by the controller replace the last report.
    live = compute_status(monitor(bad), Outcome(invalid=["x"], components=ready_components()))
    assert live["components"] == ready_components() and live["phase"] == "Degraded"


def test_refused_change_records_the_processed_generation() -> None:
    refused = compute_status(monitor(generation=5), Outcome(components=ready_components(), refused=["shrink"]))
    assert refused["observedGeneration"] == 5 and refused["phase"] == "Degraded"


def test_awaiting_removal_holds_readiness() -> None:
    ready = workload_status(workload(1, 1, 1), "i")
    assert awaiting_removal(ready, []) == ready
    held = awaiting_removal(ready, ["Deployment g"])
    assert held["ready"] is False and held["message"] == "waiting for the replaced Deployment g to be deleted"
    assert ready["ready"] is True, "the input is not mutated"
    components = ready_components()
    components["grafana"] = held
    status = compute_status(monitor(), Outcome(components=components))
    assert status["phase"] == "Progressing" and "grafana: waiting for the replaced" in {
        c["type"]: c for c in status["conditions"]}["Ready"]["message"]


def test_errors_and_refusals() -> None:
    nothing_ready = {c: {**v, "ready": False} for c, v in ready_components().items()}
    failed = compute_status(monitor(), Outcome(components=nothing_ready, error="Forbidden: no"))
    assert failed["phase"] == "Failed" and conditions(failed)["ReconcileError"] == "True"
    serving = compute_status(monitor(), Outcome(components=ready_components(), error="Timeout"))
    assert serving["phase"] == "Degraded"
    refused = compute_status(monitor(), Outcome(components=ready_components(), refused=["shrink"]))
    assert refused["phase"] == "Degraded" and conditions(refused)["InvalidSpec"] == "True"
    reason = {c["type"]: c for c in refused["conditions"]}["InvalidSpec"]["reason"]
    assert reason == "DataLossRefused"
    deleting = compute_status(monitor(), Outcome(deleting=True))
    assert deleting["phase"] == "Deleting"


def test_disabled_components_count_as_ready() -> None:
    components = ready_components()
    components["grafana"] = disabled_status("disabled")
    assert compute_status(monitor(), Outcome(components=components))["phase"] == "Ready"
