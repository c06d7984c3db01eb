"""Two transitions of a ChubaoMonitor component the operator drives itself:

- disabling: the component reports disabled only once its workload and Services are gone
  (kept PVCs never count), and is Progressing meanwhile;
- growing storage: the claims are expanded, then the StatefulSet is deleted with its pods
  orphaned and recreated with the grown template, so a later scale-up gets claims of the new size.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from rook_py.chubaofs.api import types as t
from rook_py.chubaofs.monitor import common, prometheus
from rook_py.chubaofs.monitor.controller import MonitorReconciler
from rook_py.chubaofs.monitor.status import (
    Outcome,
    compute_status,
    disabled_status,
    disabling_status,
    recreating,
    workload_status,
)
from rook_py.chubaofs.monitor.storage import (
    StoragePlan,
    StorageStep,
    StorageTransitions,
    claims_to_expand,
    plan_storage,
)
from rook_py.chubaofs.monitor.writer import Writer
from rook_py.framework.client.errors import Conflict, Forbidden, InternalError, Invalid
from rook_py.framework.controller import Result
from tests.unit.chubaofs.conftest import Harness, make_ctx
from tests.unit.chubaofs.fakes import FakeCluster

JSON = dict[str, Any]


# --- pure decisions ----------------------------------------------------------------------------

def claim(name: str, size: str) -> JSON:
    return {"metadata": {"name": name}, "spec": {"resources": {"requests": {"storage": size}}}}


def test_claims_to_expand_picks_the_sets_smaller_claims_of_grown_templates() -> None:
    plan = StoragePlan(grow={"data": "50Gi"})
    claims = [claim("data-mon-prometheus-0", "20Gi"), claim("data-mon-prometheus-1", "50Gi"),
              claim("data-mon-prometheus-2", "100Gi"),  # grown by hand: never shrunk
              claim("data-mon-prometheus-extra-0", "1Gi"),  # another set's claim
              claim("logs-mon-prometheus-0", "1Gi"),  # another template
              claim("data-mon-prometheus-3", "51200Mi")]  # equal in other units
    assert claims_to_expand(plan, "mon-prometheus", claims) == {"data-mon-prometheus-0": ("20Gi", "50Gi")}
    assert claims_to_expand(StoragePlan(), "mon-prometheus", claims) == {}


def sts(size: str | None) -> JSON:
    templates = [] if size is None else [
        {"metadata": {"name": "data"}, "spec": {"resources": {"requests": {"storage": size}}}}]
    return {"spec": {"volumeClaimTemplates": templates}}


def test_recreation_follows_only_an_accepted_growth() -> None:
    assert plan_storage("p", sts("20Gi"), sts("50Gi")).recreate_after_expansion
    assert not plan_storage("p", sts("20Gi"), sts("20Gi")).recreate_after_expansion
    assert not plan_storage("p", sts("20Gi"), sts("10Gi")).recreate_after_expansion, "shrinking is refused"
    added = plan_storage("p", sts(None), sts("1Gi"))
    assert added.recreate and not added.recreate_after_expansion
    assert not StoragePlan(grow={"data": "2Gi"}, recreate=True).recreate_after_expansion


def ready(replicas: int = 1) -> JSON:
    return {"ready": True, "readyReplicas": replicas, "replicas": replicas, "image": "i", "message": "ok"}


def test_transition_statuses_are_not_ready() -> None:
    going = disabling_status(["StatefulSet mon-prometheus", "Service mon-prometheus"])
    assert going["ready"] is False and going["replicas"] == 0
    assert going["message"] == ("Disabling: waiting for StatefulSet mon-prometheus, Service mon-prometheus "
                                "to be deleted")
    held = recreating(ready(), "StatefulSet mon-prometheus")
    assert held["ready"] is False and held["readyReplicas"] == 1
    assert held["message"].startswith("recreating StatefulSet mon-prometheus with the grown volume")
    assert ready()["ready"], "the input is not mutated"


def test_a_transition_in_a_ready_generation_is_progress_not_degradation() -> None:
    components = {c: ready() for c in t.COMPONENTS}
    first = compute_status({"metadata": {"generation": 3}}, Outcome(components=components))
    assert first["phase"] == "Ready"
    previous = {"metadata": {"generation": 3}, "status": first}
    components[t.PROMETHEUS] = disabling_status(["StatefulSet mon-prometheus"])
    moving = compute_status(previous, Outcome(components=components, transitions={t.PROMETHEUS}))
    assert moving["phase"] == "Progressing"
    conds = {c["type"]: c for c in moving["conditions"]}
    assert conds["Progressing"]["status"] == "True" and conds["Degraded"]["status"] == "False"
    assert "prometheus: Disabling: waiting for StatefulSet mon-prometheus" in conds["Ready"]["message"]
    # A component that is not ready for any other reason still degrades the Ready generation.
    components[t.GRAFANA] = {**ready(), "ready": False, "readyReplicas": 0}
    assert compute_status(previous, Outcome(components=components,
                                            transitions={t.PROMETHEUS}))["phase"] == "Degraded"
    components[t.PROMETHEUS] = disabled_status("disabled")
    components[t.GRAFANA] = ready()
    assert compute_status(previous, Outcome(components=components))["phase"] == "Ready"


# --- disabling ---------------------------------------------------------------------------------

def deletes(h: Harness, spy: Any) -> dict[tuple[str, str], str | None]:
    return {(c.args[1], c.args[2]): c.kwargs.get("propagation_policy") for c in spy.call_args_list}


def disable(h: Harness, component: str) -> None:
    h.edit_spec(lambda s: s.setdefault(component, {}).update(enabled=False))


def test_disabling_reports_progress_until_the_workload_and_services_are_gone(
        harness: Harness, mocker: Any) -> None:
    harness.create_monitor({"cluster": {"name": "cfs"}, "alertmanager": {"storage": {"size": "1Gi"}}})
    harness.converge()
    assert harness.monitor()["status"]["phase"] == "Ready"
    # Foreground deletion (pods still going) keeps the StatefulSet with a deletionTimestamp;
    # a LoadBalancer cleanup finalizer keeps a Service the same way.
    harness.cluster.obj("StatefulSet", "mon-alertmanager")["metadata"]["finalizers"] = ["foregroundDeletion"]
    harness.cluster.obj("Service", "mon-alertmanager")["metadata"]["finalizers"] = ["test/lb-cleanup"]
    spy = mocker.spy(harness.cluster, "delete")
    disable(harness, t.ALERTMANAGER)
    result = harness.reconcile()

    assert isinstance(result, Result) and result.requeue_after
    policies = deletes(harness, spy)
    assert policies[("StatefulSet", "mon-alertmanager")] == "Foreground", "pods go before the workload"
    assert policies[("Service", "mon-alertmanager")] == "Background"
    assert policies[("Secret", "mon-alertmanager-config")] == "Background"
    status = harness.monitor()["status"]
    alertmanager = status["components"]["alertmanager"]
    assert alertmanager["ready"] is False
    assert alertmanager["message"] == ("Disabling: waiting for StatefulSet mon-alertmanager, Service "
                                       "mon-alertmanager, Service mon-alertmanager-headless to be deleted")
    assert status["phase"] == "Progressing" and status["observedGeneration"] == 2
    assert harness.condition("Ready")["status"] == "False"
    assert harness.condition("Progressing")["status"] == "True"
    assert harness.condition("Degraded")["status"] == "False"
    assert "alertmanager" not in status["endpoints"]

    # Still held: the report names what is left, nothing is deleted twice, and nothing is written.
    harness.cluster.reset_calls()
    assert isinstance(harness.reconcile(), Result)
    assert harness.monitor()["status"]["components"]["alertmanager"]["message"] == (
        "Disabling: waiting for StatefulSet mon-alertmanager, Service mon-alertmanager to be deleted")
    harness.cluster.reset_calls()
    assert isinstance(harness.reconcile(), Result)
    assert harness.cluster.writes() == []

    for kind in ("StatefulSet", "Service"):
        obj = copy.deepcopy(harness.cluster.obj(kind, "mon-alertmanager"))
        obj["metadata"]["finalizers"] = []
        harness.cluster.update(obj)
    assert harness.reconcile() is None
    status = harness.monitor()["status"]
    assert status["components"]["alertmanager"] == disabled_status("disabled")
    assert status["phase"] == "Ready"
    assert harness.cluster.has("PersistentVolumeClaim", "data-mon-alertmanager-0"), "kept PVCs do not block"
    harness.cluster.reset_calls()
    assert harness.reconcile() is None
    assert harness.cluster.writes() == []


def test_a_component_disabled_from_the_start_is_disabled_at_once(harness: Harness) -> None:
    harness.create_monitor({"cluster": {"name": "cfs"}, "alertmanager": {"enabled": False}})
    harness.reconcile()
    assert harness.monitor()["status"]["components"]["alertmanager"] == disabled_status("disabled")


def test_switching_to_an_external_consul_waits_for_the_deployed_one(harness: Harness) -> None:
    harness.create_monitor()
    harness.converge()
    harness.edit_spec(lambda s: s.setdefault("consul", {}).update(externalAddress="consul.infra.svc:8500"))
    harness.reconcile()
    status = harness.monitor()["status"]
    assert status["components"]["consul"]["message"].startswith("Disabling: waiting for StatefulSet mon-consul")
    assert status["endpoints"]["consul"] == "http://consul.infra.svc:8500"
    harness.reconcile()
    assert harness.monitor()["status"]["components"]["consul"]["message"] == (
        "using the external Consul at consul.infra.svc:8500")


# --- growing storage ---------------------------------------------------------------------------

def grow(h: Harness, size: str = "50Gi") -> None:
    h.edit_spec(lambda s: s.setdefault("prometheus", {}).update(storage={"size": size}))


def size_of(obj: JSON) -> str:
    return str(obj["spec"]["resources"]["requests"]["storage"])


def test_grown_storage_recreates_the_statefulset_orphaning_its_pods(harness: Harness, mocker: Any) -> None:
    harness.create_monitor()
    harness.converge()
    old = copy.deepcopy(harness.cluster.obj("StatefulSet", "mon-prometheus"))
    spy = mocker.spy(harness.cluster, "delete")
    grow(harness)
    result = harness.reconcile()

    assert size_of(harness.cluster.obj("PersistentVolumeClaim", "data-mon-prometheus-0")) == "50Gi"
    (call,) = [c for c in spy.call_args_list if c.args[1] == "StatefulSet"]
    assert call.args[2] == "mon-prometheus"
    assert call.kwargs["propagation_policy"] == "Orphan"
    assert call.kwargs["preconditions"] == {"uid": old["metadata"]["uid"]}
    assert [e for e in harness.events("Recreating") if "mon-prometheus" in e[2]]
    assert isinstance(result, Result) and result.requeue_after
    status = harness.monitor()["status"]
    assert status["components"]["prometheus"]["ready"] is False
    assert status["components"]["prometheus"]["message"].startswith("recreating StatefulSet mon-prometheus")
    assert status["phase"] == "Progressing"
    assert harness.condition("ReconcileError")["status"] == "False"
    assert harness.condition("InvalidSpec")["status"] == "False"

    # The next pass creates it with the grown template and, as nothing else changed, the very
    # same pod template: the adopted pods are not rolled.
    harness.reconcile()
    new = harness.cluster.obj("StatefulSet", "mon-prometheus")
    assert new["metadata"]["uid"] != old["metadata"]["uid"]
    assert size_of(new["spec"]["volumeClaimTemplates"][0]) == "50Gi"
    assert new["spec"]["template"] == old["spec"]["template"]
    harness.cluster.make_workloads_ready()
    harness.reconcile()
    assert harness.monitor()["status"]["phase"] == "Ready"
    harness.cluster.reset_calls()
    assert harness.reconcile() is None
    assert harness.cluster.writes() == [], "converged: no expansion, no recreation"

    # A scale-up gets a claim of the grown size.
    harness.edit_spec(lambda s: s["prometheus"].update(replicas=2, externalLabels={"cluster": "a"}))
    harness.reconcile()
    harness.cluster.make_workloads_ready()
    assert size_of(harness.cluster.obj("PersistentVolumeClaim", "data-mon-prometheus-1")) == "50Gi"


def test_a_recreation_keeps_the_config_hash_the_running_pods_have(mocker: Any) -> None:
    h = Harness(mocker, reload_failures=["http://p: connection refused"])
    h.create_monitor()
    h.converge()
    h.edit_spec(lambda s: s.setdefault("prometheus", {}).update(scrapeInterval="10s"))
    h.reconcile()  # the reload fails: the pod template carries the config hash (a rollout)
    h.cluster.make_workloads_ready()
    h.reconcile()
    old = copy.deepcopy(h.cluster.obj("StatefulSet", "mon-prometheus"))
    assert common.ANNOTATION_CONFIG_HASH in old["spec"]["template"]["metadata"]["annotations"]
    grow(h)
    h.reconcile()
    assert not h.cluster.has("StatefulSet", "mon-prometheus")
    h.reconcile()
    new = h.cluster.obj("StatefulSet", "mon-prometheus")
    assert new["spec"]["template"] == old["spec"]["template"], "the orphaned pods must not roll"
    assert (new["metadata"]["annotations"][common.ANNOTATION_LOADED_CONFIG_HASH]
            == old["metadata"]["annotations"][common.ANNOTATION_LOADED_CONFIG_HASH])


def test_a_statefulset_held_by_the_orphan_finalizer_is_waited_for(harness: Harness, mocker: Any) -> None:
    harness.create_monitor()
    harness.converge()
    # The garbage collector removes the "orphan" finalizer once the pods' references are gone.
    harness.cluster.obj("StatefulSet", "mon-prometheus")["metadata"]["finalizers"] = ["orphan"]
    grow(harness)
    harness.reconcile()
    assert harness.cluster.obj("StatefulSet", "mon-prometheus")["metadata"].get("deletionTimestamp")
    spy = mocker.spy(harness.cluster, "delete")
    harness.cluster.make_workloads_ready()  # the orphaned pods still run and report ready
    result = harness.reconcile()
    assert spy.call_count == 0, "a StatefulSet being deleted is not deleted again"
    assert isinstance(result, Result) and result.requeue_after
    prometheus = harness.monitor()["status"]["components"]["prometheus"]
    assert not prometheus["ready"] and prometheus["message"].startswith("recreating StatefulSet")
    sts = copy.deepcopy(harness.cluster.obj("StatefulSet", "mon-prometheus"))
    sts["metadata"]["finalizers"] = []
    harness.cluster.update(sts)
    harness.reconcile()
    assert size_of(harness.cluster.obj("StatefulSet", "mon-prometheus")["spec"]["volumeClaimTemplates"][0]) == "50Gi"


@pytest.mark.parametrize("error", [Invalid("spec: Forbidden: only dynamically provisioned pvc can be resized"),
                                   Forbidden("storageclass does not allow volume expansion")])
def test_a_rejected_expansion_is_refused_and_the_statefulset_stays(harness: Harness, error: Exception) -> None:
    harness.create_monitor()
    harness.converge()
    uid = harness.cluster.obj("StatefulSet", "mon-prometheus")["metadata"]["uid"]
    grow(harness)
    harness.cluster.fail["patch"] = error
    assert harness.reconcile() is None
    sts = harness.cluster.obj("StatefulSet", "mon-prometheus")
    assert sts["metadata"]["uid"] == uid and size_of(sts["spec"]["volumeClaimTemplates"][0]) == "20Gi"
    cond = harness.condition("InvalidSpec")
    assert cond["status"] == "True" and "expanding PVC data-mon-prometheus-0 to 50Gi was rejected" in cond["message"]
    assert harness.monitor()["status"]["phase"] == "Degraded"
    # Once the StorageClass allows it, the next pass expands and recreates.
    harness.reconcile()
    assert not harness.cluster.has("StatefulSet", "mon-prometheus")
    harness.reconcile()
    assert size_of(harness.cluster.obj("StatefulSet", "mon-prometheus")["spec"]["volumeClaimTemplates"][0]) == "50Gi"


def test_a_transient_expansion_error_is_retried_not_refused(harness: Harness) -> None:
    harness.create_monitor()
    harness.converge()
    grow(harness)
    harness.cluster.fail["patch"] = InternalError("etcd is sad")
    with pytest.raises(InternalError):
        harness.reconcile()
    assert harness.cluster.has("StatefulSet", "mon-prometheus")
    assert harness.condition("InvalidSpec")["status"] == "False"


def test_a_stale_cache_never_deletes_a_recreated_statefulset(harness: Harness) -> None:
    harness.create_monitor()
    harness.converge()
    grow(harness)
    harness.cluster.fail["delete"] = Conflict("Precondition failed: UID in precondition: a, UID in object meta: b")
    result = harness.reconcile()
    assert isinstance(result, Result) and result.requeue_after
    assert harness.cluster.has("StatefulSet", "mon-prometheus")
    assert harness.events("Recreating") == []
    assert harness.condition("ReconcileError")["status"] == "False"


def test_an_operator_restarted_between_delete_and_create_still_recreates(harness: Harness, mocker: Any) -> None:
    harness.create_monitor()
    harness.converge()
    grow(harness)
    harness.reconcile()
    assert not harness.cluster.has("StatefulSet", "mon-prometheus")
    fresh = MonitorReconciler(harness.cluster, harness.cluster.reader, mocker.Mock(),
                              reloader=harness.reloader, settle_seconds=0.0)
    harness.reconciler = fresh
    harness.reconcile()
    sts = harness.cluster.obj("StatefulSet", "mon-prometheus")
    assert size_of(sts["spec"]["volumeClaimTemplates"][0]) == "50Gi"
    assert workload_status(sts, "")["ready"] is False  # a new set, not rolled out yet: progress
    assert harness.monitor()["status"]["phase"] == "Progressing"


def test_a_cache_still_showing_the_deleted_set_never_deletes_it_twice(harness: Harness, mocker: Any) -> None:
    harness.create_monitor()
    harness.converge()
    harness.cluster.obj("StatefulSet", "mon-prometheus")["metadata"]["finalizers"] = ["orphan"]
    grow(harness)
    harness.reconcile()
    # The delete event has not reached the cache yet: it shows the set as it was.
    del harness.cluster.obj("StatefulSet", "mon-prometheus")["metadata"]["deletionTimestamp"]
    spy = mocker.spy(harness.cluster, "delete")
    result = harness.reconcile()
    assert spy.call_count == 0 and len(harness.events("Recreating")) == 1
    assert isinstance(result, Result) and result.requeue_after
    assert harness.monitor()["status"]["components"]["prometheus"]["message"].startswith("recreating")


# --- the storage transitions on their own ------------------------------------------------------

def test_storage_transitions_remember_the_orphaned_set_until_its_successor_exists(mocker: Any) -> None:
    cluster = FakeCluster()
    recorder = mocker.Mock()
    transitions = StorageTransitions(Writer(cluster, cluster.reader, recorder))
    ctx = make_ctx()
    key = "ns/mon/prometheus"
    live = cluster.create(prometheus.statefulset(ctx))
    grown = make_ctx({"cluster": {"name": "cfs"}, "prometheus": {"storage": {"size": "50Gi"}}})

    def prepare(live: JSON | None, refused: list[str] | None = None) -> StorageStep:
        return transitions.prepare(grown, t.PROMETHEUS, key, live, prometheus.statefulset(grown),
                                   refuse=(refused if refused is not None else []).extend)

    assert prepare(live) == StorageStep(recreating=True)
    assert not cluster.has("StatefulSet", "mon-prometheus")
    assert [c.args[2] for c in recorder.event.call_args_list] == ["Recreating"]
    # A stale cache still lists the deleted set: held, and never deleted twice.
    cluster.reset_calls()
    assert prepare(live).held and cluster.writes() == []
    # Absent: the workload may be created; the deleted set stands for the running pods.
    step = prepare(None)
    assert not step.held and step.orphaned is not None
    assert step.orphaned["metadata"]["uid"] == live["metadata"]["uid"]
    # The recreated set (another uid) ends the transition, even before ``recreated`` is called.
    successor = cluster.create(prometheus.statefulset(grown))
    assert prepare(successor) == StorageStep()
    assert prepare(None).orphaned is None
    # ``forget`` drops the state of a deleted ChubaoMonitor.
    assert prepare({**live, "metadata": {**live["metadata"], "uid": "uid-3"}}).recreating
    assert prepare(None).orphaned is not None
    transitions.forget("ns/mon/")
    assert prepare(None).orphaned is None


def test_storage_transitions_refuse_a_shrink_and_keep_the_live_templates(mocker: Any) -> None:
    cluster = FakeCluster()
    transitions = StorageTransitions(Writer(cluster, cluster.reader, mocker.Mock()))
    live = cluster.create(prometheus.statefulset(make_ctx()))
    small = make_ctx({"cluster": {"name": "cfs"}, "prometheus": {"storage": {"size": "1Gi"}}})
    desired = prometheus.statefulset(small)
    refused: list[str] = []
    cluster.reset_calls()
    step = transitions.prepare(small, t.PROMETHEUS, "ns/mon/prometheus", live, desired,
                               refuse=refused.extend)
    assert step == StorageStep() and cluster.writes() == []
    assert refused == ["prometheus.storage.size: shrinking 20Gi to 1Gi is not possible without "
                       "data loss; refused"]
    assert desired["spec"]["volumeClaimTemplates"] == live["spec"]["volumeClaimTemplates"]
