"""Every reconcile decision of the ChubaoMonitor controller, against a fake cluster:
create, update, leave alone, refuse, remove."""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest

from rook_py.chubaofs.api import types as t
from rook_py.chubaofs.monitor import common
from rook_py.chubaofs.monitor.controller import secret_mapper
from rook_py.framework.client.errors import InternalError
from rook_py.framework.controller import Request, Result
from tests.unit.chubaofs.conftest import Harness

JSON = dict[str, Any]

INSTALLED = {
    "StatefulSet": {"mon-consul", "mon-prometheus", "mon-alertmanager"},
    "Deployment": {"mon-grafana"},
    "Service": {"mon-consul", "mon-consul-headless", "mon-prometheus", "mon-prometheus-headless",
                "mon-alertmanager", "mon-alertmanager-headless", "mon-grafana"},
    "ConfigMap": {"mon-prometheus-config", "mon-prometheus-rules", "mon-grafana-datasources",
                  "mon-grafana-dashboard-provider", "mon-grafana-dashboards"},
    "Secret": {"mon-alertmanager-config", "mon-grafana-admin"},
    "PodDisruptionBudget": {"mon-consul"},
}


def installed(h: Harness) -> dict[str, set[str]]:
    return {kind: h.cluster.names(kind) for kind in INSTALLED}


def test_reconcile_of_a_missing_monitor_does_nothing(harness: Harness) -> None:
    assert harness.reconcile("absent") is None
    assert harness.cluster.writes() == []


def test_install_creates_everything_in_one_pass(harness: Harness) -> None:
    harness.create_monitor()
    harness.cluster.reset_calls()
    assert harness.reconcile() is None
    assert installed(harness) == INSTALLED
    assert t.FINALIZER in harness.monitor()["metadata"]["finalizers"]
    status = harness.monitor()["status"]
    assert status["phase"] == "Progressing"
    assert set(status["components"]) == set(t.COMPONENTS)
    assert all(not c["ready"] for c in status["components"].values())
    assert status["endpoints"] == {"consul": "http://mon-consul.ns.svc:8500",
                                   "alertmanager": "http://mon-alertmanager.ns.svc:9093",
                                   "prometheus": "http://mon-prometheus.ns.svc:9090",
                                   "grafana": "http://mon-grafana.ns.svc:3000"}
    created = {m for _, r, m in harness.events("Created")}
    assert "Created StatefulSet mon-prometheus" in created and len(created) == sum(map(len, INSTALLED.values()))
    harness.reloader.reload.assert_not_called()


def test_readiness_is_reported_per_component_as_it_comes(harness: Harness) -> None:
    harness.create_monitor()
    harness.reconcile()
    consul = harness.cluster.obj("StatefulSet", "mon-consul")
    consul["status"] = {"observedGeneration": 1, "replicas": 3, "readyReplicas": 3, "updatedReplicas": 3}
    harness.reconcile()
    components = harness.monitor()["status"]["components"]
    assert components["consul"]["ready"] and components["consul"]["readyReplicas"] == 3
    assert not components["prometheus"]["ready"]
    harness.cluster.make_workloads_ready()
    harness.reconcile()
    status = harness.monitor()["status"]
    assert status["phase"] == "Ready" and harness.condition("Ready")["status"] == "True"
    assert status["components"]["prometheus"]["image"] == t.DEFAULT_IMAGES["prometheus"]


def test_steady_state_makes_zero_writes(harness: Harness) -> None:
    harness.create_monitor()
    harness.converge()
    harness.cluster.reset_calls()
    harness.recorder.reset_mock()
    assert harness.reconcile() is None
    assert harness.cluster.writes() == []
    assert harness.recorder.event.call_count == 0
    harness.reloader.reload.assert_not_called()


def test_manual_edit_of_an_owned_object_is_reverted(harness: Harness) -> None:
    harness.create_monitor()
    harness.converge()
    sts = copy.deepcopy(harness.cluster.obj("StatefulSet", "mon-prometheus"))
    sts["spec"]["template"]["spec"]["containers"][0]["image"] = "evil:latest"
    harness.cluster.update(sts)
    harness.reconcile()
    live = harness.cluster.obj("StatefulSet", "mon-prometheus")
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == t.DEFAULT_IMAGES["prometheus"]
    assert ("Normal", "Updated", "Updated StatefulSet mon-prometheus") in harness.events()


def test_image_upgrade_rolls_only_that_component(harness: Harness) -> None:
    harness.create_monitor()
    harness.converge()
    harness.cluster.reset_calls()
    harness.edit_spec(lambda s: s.setdefault("grafana", {}).update(image="grafana/grafana:11.0.0"))
    harness.cluster.reset_calls()
    harness.reconcile()
    updates = [(kind, name) for verb, kind, name in harness.cluster.writes() if verb == "update"]
    assert updates == [("Deployment", "mon-grafana")]
    assert harness.monitor()["status"]["phase"] == "Progressing"


def test_config_only_change_hot_reloads_without_restarting(harness: Harness) -> None:
    harness.create_monitor()
    harness.converge()
    before = copy.deepcopy(harness.cluster.obj("StatefulSet", "mon-prometheus"))
    harness.edit_spec(lambda s: s.setdefault("prometheus", {}).update(scrapeInterval="15s"))
    harness.cluster.reset_calls()
    harness.reconcile()
    harness.reloader.reload.assert_called_once_with(
        ["http://mon-prometheus-0.mon-prometheus-headless.ns.svc:9090"])
    after = harness.cluster.obj("StatefulSet", "mon-prometheus")
    assert after["spec"]["template"] == before["spec"]["template"], "the pods must not roll"
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    loaded = after["metadata"]["annotations"][common.ANNOTATION_LOADED_CONFIG_HASH]
    assert loaded != before["metadata"]["annotations"][common.ANNOTATION_LOADED_CONFIG_HASH]
    assert "scrape_interval: 15s" in harness.cluster.obj("ConfigMap", "mon-prometheus-config")["data"][
        "prometheus.yml"]
    assert [e for e in harness.events("ConfigReloaded")]
    # Delivered: the next pass neither reloads nor writes.
    harness.reloader.reload.reset_mock()
    harness.cluster.reset_calls()
    harness.reconcile()
    harness.reloader.reload.assert_not_called()
    assert harness.cluster.writes() == []


def test_reload_settles_before_recording_the_hash(mocker: Any) -> None:
    h = Harness(mocker, settle=30.0)
    h.create_monitor()
    h.converge()
    h.edit_spec(lambda s: s.setdefault("rules", {}).update(thresholds={"volumeUsagePercent": 85}))
    result = h.reconcile()
    assert isinstance(result, Result) and result.requeue_after is not None and 0 < result.requeue_after <= 30
    h.reloader.reload.assert_called_once()
    rules = h.cluster.obj("ConfigMap", "mon-prometheus-rules")["data"]["chubaofs.yml"]
    assert "85" in rules


def test_unreachable_reload_falls_back_to_a_config_hash_rollout(mocker: Any) -> None:
    h = Harness(mocker, reload_failures=["http://p: connection refused"])
    h.create_monitor()
    h.converge()
    h.edit_spec(lambda s: s.setdefault("prometheus", {}).update(scrapeInterval="10s"))
    h.reconcile()
    template = h.cluster.obj("StatefulSet", "mon-prometheus")["spec"]["template"]
    assert common.ANNOTATION_CONFIG_HASH in template["metadata"]["annotations"]
    (event,) = h.events("ReloadFailed")
    assert event[0] == "Warning" and "connection refused" in event[2]
    # The fallback annotation is kept on later passes (removing it would roll again).
    h.cluster.make_workloads_ready()
    h.reconcile()
    assert h.monitor()["status"]["phase"] == "Ready"
    h.cluster.reset_calls()
    h.reconcile()
    assert h.cluster.writes() == []
    assert len(h.events("ReloadFailed")) == 1


def test_alertmanager_user_secret_edit_is_reloaded(harness: Harness) -> None:
    harness.cluster.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "am", "namespace": "ns"},
                            "data": {"alertmanager.yml": base64.b64encode(b"route: {receiver: a}\n").decode()}})
    harness.create_monitor({"cluster": {"name": "cfs"}, "alertmanager": {"configSecret": "am"}})
    harness.converge()
    assert not harness.cluster.has("Secret", "mon-alertmanager-config")
    secret = copy.deepcopy(harness.cluster.obj("Secret", "am"))
    secret["data"]["alertmanager.yml"] = base64.b64encode(b"route: {receiver: b}\n").decode()
    harness.cluster.update(secret)
    harness.reconcile()
    harness.reloader.reload.assert_called_once_with(
        ["http://mon-alertmanager-0.mon-alertmanager-headless.ns.svc:9093"])
    assert secret_mapper(harness.cluster.reader)(secret) == [Request("ns", "mon")]
    assert secret_mapper(harness.cluster.reader)({"metadata": {"name": "other", "namespace": "ns"}}) == []


def test_shrinking_storage_is_refused_and_not_applied(harness: Harness) -> None:
    harness.create_monitor()
    harness.converge()
    before = copy.deepcopy(harness.cluster.obj("StatefulSet", "mon-prometheus"))
    harness.edit_spec(lambda s: s.setdefault("prometheus", {}).update(storage={"size": "10Gi"}))
    harness.cluster.reset_calls()
    harness.reconcile()
    after = harness.cluster.obj("StatefulSet", "mon-prometheus")
    assert after["spec"] == before["spec"]
    assert not [w for w in harness.cluster.writes() if w[1] == "PersistentVolumeClaim"]
    cond = harness.condition("InvalidSpec")
    assert cond["status"] == "True" and cond["reason"] == "DataLossRefused"
    assert "shrinking 20Gi to 10Gi" in cond["message"]
    assert harness.monitor()["status"]["phase"] == "Degraded"
    (event,) = harness.events("ChangeRefused")
    assert event[0] == "Warning"
    # No duplicate Warning on the next pass, and no write.
    harness.cluster.reset_calls()
    harness.reconcile()
    assert len(harness.events("ChangeRefused")) == 1 and harness.cluster.writes() == []


def test_another_storage_class_is_refused(harness: Harness) -> None:
    harness.create_monitor()
    harness.converge()
    harness.edit_spec(lambda s: s.setdefault("consul", {}).update(
        storage={"size": "1Gi", "storageClassName": "fast"}))
    harness.reconcile()
    assert "storageClassName" in harness.condition("InvalidSpec")["message"]
    vct = harness.cluster.obj("StatefulSet", "mon-consul")["spec"]["volumeClaimTemplates"][0]
    assert "storageClassName" not in vct["spec"]


def test_growing_storage_expands_the_claims(harness: Harness) -> None:
    harness.create_monitor()
    harness.converge()
    harness.edit_spec(lambda s: s.setdefault("prometheus", {}).update(storage={"size": "50Gi"}))
    harness.reconcile()
    pvc = harness.cluster.obj("PersistentVolumeClaim", "data-mon-prometheus-0")
    assert pvc["spec"]["resources"]["requests"]["storage"] == "50Gi"
    # Templates are immutable: the StatefulSet was deleted (pods orphaned) and comes back with
    # the grown template (tests/unit/chubaofs/test_monitor_transitions.py has the details).
    assert not harness.cluster.has("StatefulSet", "mon-prometheus")
    harness.reconcile()
    vct = harness.cluster.obj("StatefulSet", "mon-prometheus")["spec"]["volumeClaimTemplates"][0]
    assert vct["spec"]["resources"]["requests"]["storage"] == "50Gi"
    assert harness.events("StorageExpanding")
    assert harness.condition("InvalidSpec")["status"] == "False"
    harness.cluster.reset_calls()
    harness.reconcile()
    assert [w for w in harness.cluster.writes() if w[0] == "patch"] == []


@pytest.mark.parametrize(("spec", "message"), [
    ({"consul": {"replicas": 2}}, "consul.replicas: 2 is not 1, 3 or 5"),
    ({"prometheus": {"retention": "forever"}}, "prometheus.retention"),
    ({"grafana": {"adminSecret": "missing"}}, "grafana.adminSecret: Secret 'missing' not found"),
    ({"prometheus": {"extraScrapeConfigs": [{"job_name": "chubaofs"}]}}, "chubaofs"),
])
def test_invalid_spec_changes_nothing(harness: Harness, spec: JSON, message: str) -> None:
    harness.create_monitor({"cluster": {"name": "cfs"}, **spec})
    harness.cluster.reset_calls()
    assert harness.reconcile() is None
    writes = harness.cluster.writes()
    assert {(v, k) for v, k, _ in writes} <= {("update", t.KIND), ("update_status", t.KIND)}
    cond = harness.condition("InvalidSpec")
    assert cond["status"] == "True" and message in cond["message"]
    assert harness.monitor()["status"]["phase"] == "Failed"
    (event,) = harness.events("InvalidSpec")
    assert event[0] == "Warning" and message in event[2]
    harness.cluster.reset_calls()
    harness.reconcile()
    assert harness.cluster.writes() == [] and len(harness.events("InvalidSpec")) == 1


def test_invalid_edit_of_a_running_stack_touches_nothing(harness: Harness) -> None:
    harness.create_monitor()
    harness.converge()
    snapshot = {k: copy.deepcopy(v) for k, v in harness.cluster.store.items() if k[0] != t.KIND}
    harness.edit_spec(lambda s: s.setdefault("consul", {}).update(replicas=4))
    harness.reconcile()
    assert {k: v for k, v in harness.cluster.store.items() if k[0] != t.KIND} == snapshot
    # The generation was processed (and refused): observedGeneration says so, InvalidSpec says why.
    status = harness.monitor()["status"]
    assert status["observedGeneration"] == 2 == harness.monitor()["metadata"]["generation"]
    cond = harness.condition("InvalidSpec")
    assert cond is not None and cond["status"] == "True" and cond["observedGeneration"] == 2
    assert "consul.replicas" in cond["message"]
    # The previous stack still serves: Degraded, never Ready, with its components' live health.
    assert status["phase"] == "Degraded"
    assert harness.condition("Ready")["status"] == "False"
    assert harness.condition("Degraded")["status"] == "True"
    assert all(c["ready"] for c in status["components"].values())
    assert status["endpoints"]["grafana"].startswith("http://mon-grafana.")
    harness.cluster.reset_calls()
    harness.reconcile()
    assert harness.cluster.writes() == [], "steady state under an invalid spec writes nothing"


def test_invalid_spec_reports_the_running_stacks_live_health(harness: Harness) -> None:
    harness.create_monitor()
    harness.converge()
    harness.edit_spec(lambda s: s.setdefault("consul", {}).update(replicas=2))
    harness.cluster.obj("StatefulSet", "mon-prometheus")["status"]["readyReplicas"] = 0
    harness.reconcile()
    components = harness.monitor()["status"]["components"]
    assert not components["prometheus"]["ready"]
    assert components["prometheus"]["message"] == "0/1 replicas ready"
    assert components["consul"]["ready"] and components["grafana"]["ready"]
    assert harness.monitor()["status"]["phase"] == "Degraded"


def test_invalid_spec_keeps_a_disabled_components_report(harness: Harness) -> None:
    harness.create_monitor({"cluster": {"name": "cfs"}, "alertmanager": {"enabled": False}})
    harness.converge()
    harness.edit_spec(lambda s: s.setdefault("prometheus", {}).update(retention="forever"))
    harness.reconcile()
    status = harness.monitor()["status"]
    assert status["components"]["alertmanager"]["message"] == "disabled"
    assert status["observedGeneration"] == 2 and status["phase"] == "Degraded"


def test_missing_secret_then_created_clears_invalid_spec(harness: Harness) -> None:
    harness.create_monitor({"cluster": {"name": "cfs"}, "grafana": {"adminSecret": "admin"}})
    harness.reconcile()
    assert harness.condition("InvalidSpec")["status"] == "True"
    harness.cluster.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "admin", "namespace": "ns"},
                            "data": {"admin-user": "YQ==", "admin-password": "Yg=="}})
    harness.reconcile()
    assert harness.condition("InvalidSpec")["status"] == "False"
    assert not harness.cluster.has("Secret", "mon-grafana-admin"), "no generated Secret with a user one"


def test_grafana_admin_secret_is_generated_once(harness: Harness) -> None:
    harness.create_monitor()
    harness.reconcile()
    password = harness.cluster.obj("Secret", "mon-grafana-admin")["data"]["admin-password"]
    harness.reconcile()
    harness.reconcile()
    assert harness.cluster.obj("Secret", "mon-grafana-admin")["data"]["admin-password"] == password
    harness.create_monitor(name="other")
    harness.reconcile("other")
    assert harness.cluster.obj("Secret", "other-grafana-admin")["data"]["admin-password"] != password


def test_disabling_a_component_removes_its_objects_but_keeps_pvcs(harness: Harness) -> None:
    harness.create_monitor({"cluster": {"name": "cfs"}, "grafana": {"storage": {"size": "1Gi"}}})
    harness.converge()
    assert harness.cluster.has("StatefulSet", "mon-grafana")
    assert harness.cluster.has("PersistentVolumeClaim", "data-mon-grafana-0")
    harness.edit_spec(lambda s: s["grafana"].update(enabled=False))
    harness.reconcile()
    assert harness.monitor()["status"]["components"]["grafana"]["message"].startswith("Disabling: ")
    harness.reconcile()  # the next pass no longer sees them
    grafana_left = [k for k in harness.cluster.store
                    if k[2].startswith("mon-grafana") and k[0] != "PersistentVolumeClaim"]
    assert grafana_left == []
    assert harness.cluster.has("PersistentVolumeClaim", "data-mon-grafana-0")
    assert harness.monitor()["status"]["components"]["grafana"]["message"] == "disabled"
    assert "grafana" not in harness.monitor()["status"]["endpoints"]
    assert ("Normal", "Deleted", "Deleted StatefulSet mon-grafana: no longer wanted") in harness.events()


def test_pruning_follows_the_spec(harness: Harness) -> None:
    harness.create_monitor()
    harness.converge()
    harness.edit_spec(lambda s: (s.setdefault("consul", {}).update(replicas=1),
                                 s.setdefault("rules", {}).update(enabled=False)))
    harness.reconcile()
    assert not harness.cluster.has("PodDisruptionBudget", "mon-consul")
    assert not harness.cluster.has("ConfigMap", "mon-prometheus-rules")
    assert harness.cluster.has("StatefulSet", "mon-consul")


def test_external_consul_replaces_the_deployed_one(harness: Harness) -> None:
    harness.create_monitor({"cluster": {"name": "cfs"}, "consul": {"externalAddress": "consul.infra.svc:8500"}})
    harness.reconcile()
    assert not harness.cluster.has("StatefulSet", "mon-consul")
    prom = harness.cluster.obj("ConfigMap", "mon-prometheus-config")["data"]["prometheus.yml"]
    assert "consul.infra.svc:8500" in prom
    assert harness.monitor()["status"]["endpoints"]["consul"] == "http://consul.infra.svc:8500"


def test_grafana_switches_to_a_statefulset_when_storage_is_added(harness: Harness) -> None:
    harness.create_monitor()
    harness.converge()
    harness.edit_spec(lambda s: s.setdefault("grafana", {}).update(storage={"size": "1Gi"}))
    harness.reconcile()
    assert harness.cluster.has("StatefulSet", "mon-grafana")
    assert not harness.cluster.has("Deployment", "mon-grafana")


def test_grafana_is_not_ready_while_the_replaced_deployment_still_exists(harness: Harness) -> None:
    harness.create_monitor()
    harness.converge()
    assert harness.monitor()["status"]["phase"] == "Ready"
    # A finalizer (e.g. foreground deletion waiting for pods) keeps the old Deployment around.
    harness.cluster.obj("Deployment", "mon-grafana")["metadata"]["finalizers"] = ["test/hold"]
    harness.edit_spec(lambda s: s.setdefault("grafana", {}).update(storage={"size": "1Gi"}))
    harness.reconcile()
    assert harness.cluster.obj("Deployment", "mon-grafana")["metadata"].get("deletionTimestamp")
    harness.cluster.make_workloads_ready()  # the new StatefulSet (and the old pods) report ready
    result = harness.reconcile()
    status = harness.monitor()["status"]
    grafana = status["components"]["grafana"]
    assert not grafana["ready"]
    assert grafana["message"] == "waiting for the replaced Deployment mon-grafana to be deleted"
    assert status["phase"] == "Progressing" and harness.condition("Ready")["status"] == "False"
    assert status["observedGeneration"] == 2
    assert isinstance(result, Result) and result.requeue_after
    # The terminating Deployment is not deleted again.
    assert [w for w in harness.cluster.writes() if w[0] == "delete"].count(
        ("delete", "Deployment", "mon-grafana")) == 1
    # Its finalizer goes: the next pass reports Ready, and then writes nothing.
    deployment = copy.deepcopy(harness.cluster.obj("Deployment", "mon-grafana"))
    deployment["metadata"]["finalizers"] = []
    harness.cluster.update(deployment)
    assert not harness.cluster.has("Deployment", "mon-grafana")
    assert harness.reconcile() is None
    assert harness.monitor()["status"]["phase"] == "Ready"
    assert harness.monitor()["status"]["components"]["grafana"]["ready"]
    harness.cluster.reset_calls()
    harness.reconcile()
    assert harness.cluster.writes() == []


def test_a_statefulset_being_recreated_is_not_ready_until_replaced(harness: Harness) -> None:
    harness.create_monitor()
    harness.converge()
    harness.cluster.obj("StatefulSet", "mon-alertmanager")["metadata"]["finalizers"] = ["test/hold"]
    harness.edit_spec(lambda s: s.setdefault("alertmanager", {}).update(storage={"size": "1Gi"}))
    harness.reconcile()
    harness.cluster.make_workloads_ready()  # the terminating StatefulSet still reports ready pods
    harness.reconcile()
    alertmanager = harness.monitor()["status"]["components"]["alertmanager"]
    assert not alertmanager["ready"]
    assert alertmanager["message"] == "waiting for the replaced StatefulSet mon-alertmanager to be deleted"
    assert harness.monitor()["status"]["phase"] == "Progressing"
    sts = copy.deepcopy(harness.cluster.obj("StatefulSet", "mon-alertmanager"))
    sts["metadata"]["finalizers"] = []
    harness.cluster.update(sts)
    harness.reconcile()
    assert not harness.monitor()["status"]["components"]["alertmanager"]["ready"], "new, not rolled out yet"
    harness.cluster.make_workloads_ready()
    harness.reconcile()
    assert harness.monitor()["status"]["phase"] == "Ready"
    vct = harness.cluster.obj("StatefulSet", "mon-alertmanager")["spec"]["volumeClaimTemplates"]
    assert vct[0]["spec"]["resources"]["requests"]["storage"] == "1Gi"


def test_adding_alertmanager_storage_recreates_its_statefulset(harness: Harness) -> None:
    harness.create_monitor()
    harness.converge()
    harness.edit_spec(lambda s: s.setdefault("alertmanager", {}).update(storage={"size": "1Gi"}))
    result = harness.reconcile()
    assert isinstance(result, Result) and result.requeue_after
    assert not harness.cluster.has("StatefulSet", "mon-alertmanager")
    harness.reconcile()
    sts = harness.cluster.obj("StatefulSet", "mon-alertmanager")
    assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "1Gi"


def test_api_errors_are_reported_and_retried(harness: Harness) -> None:
    harness.create_monitor()
    harness.reconcile()
    harness.edit_spec(lambda s: s.setdefault("grafana", {}).update(image="grafana/grafana:11.0.0"))
    harness.cluster.fail["update"] = InternalError("etcd is sad")
    with pytest.raises(InternalError):
        harness.reconcile()
    cond = harness.condition("ReconcileError")
    assert cond["status"] == "True" and "etcd is sad" in cond["message"]
    assert harness.events("ReconcileError")[0][0] == "Warning"
    harness.reconcile()
    assert harness.condition("ReconcileError")["status"] == "False"


def delete_monitor(h: Harness, name: str = "mon") -> None:
    h.cluster.delete(t.API_VERSION, t.KIND, name, "ns")


def test_deletion_removes_owned_objects_keeps_pvcs_and_the_finalizer_goes(harness: Harness) -> None:
    harness.create_monitor()
    harness.converge()
    delete_monitor(harness)
    assert harness.reconcile() is None
    assert not harness.cluster.has(t.KIND, "mon"), "finalizer removed, object gone"
    leftovers = {k[0] for k in harness.cluster.store}
    assert leftovers == {"PersistentVolumeClaim"}
    assert harness.events("DataRetained")


def test_deletion_with_confirmed_cleanup_deletes_data(harness: Harness) -> None:
    harness.create_monitor({"cluster": {"name": "cfs"}, "cleanupPolicy": {
        "deleteData": True, "confirmation": "yes-really-destroy-data"}})
    harness.converge()
    delete_monitor(harness)
    harness.reconcile()
    assert harness.cluster.store == {}
    assert harness.events("DataDeleted")[0][0] == "Warning"


def test_delete_data_without_confirmation_keeps_data(harness: Harness) -> None:
    harness.create_monitor({"cluster": {"name": "cfs"}, "cleanupPolicy": {"deleteData": True}})
    harness.converge()
    delete_monitor(harness)
    harness.reconcile()
    assert {k[0] for k in harness.cluster.store} == {"PersistentVolumeClaim"}


def test_cleanup_failures_are_bounded_and_the_finalizer_is_removed(mocker: Any) -> None:
    h = Harness(mocker, cleanup_attempts=3)
    h.create_monitor()
    h.converge()
    delete_monitor(h)
    for attempt in (1, 2):
        h.cluster.fail["delete"] = InternalError("boom")
        result = h.reconcile()
        assert isinstance(result, Result) and result.requeue_after == 0.5 * attempt
        assert h.cluster.has(t.KIND, "mon")
        assert h.monitor()["status"]["phase"] == "Deleting"
    h.cluster.fail["delete"] = InternalError("boom")
    assert h.reconcile() is None
    assert not h.cluster.has(t.KIND, "mon")
    assert len(h.events("CleanupFailed")) == 2 and len(h.events("CleanupAbandoned")) == 1


def test_deleted_monitor_without_our_finalizer_is_ignored(harness: Harness) -> None:
    monitor = harness.create_monitor()
    monitor["metadata"]["finalizers"] = ["someone.else/x"]
    harness.cluster.update(monitor)
    delete_monitor(harness)
    harness.cluster.reset_calls()
    assert harness.reconcile() is None
    assert harness.cluster.writes() == []


def test_objects_of_another_owner_are_never_pruned(harness: Harness) -> None:
    harness.create_monitor()
    harness.converge()
    stranger = {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "mon-grafana-extra", "namespace": "ns",
                             "labels": {common.LABEL_INSTANCE: "mon", common.LABEL_MANAGED_BY: common.MANAGED_BY,
                                        common.LABEL_COMPONENT: "grafana"}}, "data": {}}
    harness.cluster.create(stranger)
    harness.reconcile()
    assert harness.cluster.has("ConfigMap", "mon-grafana-extra")


@pytest.mark.parametrize("name", ["m" * 40, "1mon", "mon.dotted"])
def test_names_that_cannot_prefix_owned_objects_are_invalid(harness: Harness, name: str) -> None:
    harness.create_monitor(name=name)
    harness.reconcile(name)
    assert "metadata.name" in harness.condition("InvalidSpec", name)["message"]
    assert harness.cluster.names("StatefulSet") == set()


def test_the_longest_valid_name_fits_every_owned_object(harness: Harness) -> None:
    name = "m" * 39
    harness.create_monitor(name=name)
    harness.reconcile(name)
    assert harness.condition("InvalidSpec", name)["status"] == "False"
    for kind, _, obj_name in harness.cluster.store:
        if kind == "Service":
            assert len(obj_name) <= 63
        if kind == "StatefulSet":
            assert len(obj_name) + 11 <= 63  # the pods' controller-revision-hash label
