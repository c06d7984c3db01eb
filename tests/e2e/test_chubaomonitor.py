"""ChubaoMonitor end to end on envtest: the provider's controller in a real Manager, against the
emulated API server with the simulated kubelet (workloads become ready, PVCs bound, GC by owner
references).

Hot reloads go to a recording fake (no Prometheus runs here); everything else is the production
path: ``ChubaoFSProvider.setup`` wiring, informers, the workqueue, ``objects.apply``, Events.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any, TypeVar

import pytest

from rook_py.chubaofs.api import types as t
from rook_py.chubaofs.api.crd import chubao_monitor_crd
from rook_py.chubaofs.monitor import common
from rook_py.chubaofs.provider import ChubaoFSProvider
from rook_py.chubaofs.settings import ChubaoFSSettings
from rook_py.framework.client.errors import NotFound
from rook_py.framework.manager import Manager, ManagerOptions
from rook_py.framework.provider import OperatorSettings
from tests.support.waiting import eventually

JSON = dict[str, Any]
T = TypeVar("T")
NS = "monitoring"
TIMEOUT = 20.0

pytestmark = pytest.mark.emulator_only(
    reason="a ChubaoMonitor is Ready only when kubelets run its pods (controller-manager and kubelet)")


class RecordingReloader:
    """Answers every reload as delivered and remembers the URLs."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self._lock = threading.Lock()

    def reload(self, base_urls: Sequence[str]) -> list[str]:
        with self._lock:
            self.calls.append(list(base_urls))
        return []


def wait_for(what: str, fn: Callable[[], T | None], timeout: float = TIMEOUT) -> T:
    """``eventually`` at this suite's pace; NotFound means "not created yet"."""
    return eventually(fn, timeout, interval=0.05, ignore=(NotFound,), what=what)


@contextmanager
def running_operator(env: Any, reloader: RecordingReloader | None = None) -> Iterator[Manager]:
    client = env.client(user_agent="rook-chubaofs-operator")
    manager = Manager(client, ManagerOptions(metrics_bind_address="0", health_probe_bind_address="0",
                                             graceful_shutdown_timeout=10.0))
    settings = OperatorSettings(provider="chubaofs", namespace="rook-system", metrics_bind_address="0",
                                provider_settings=ChubaoFSSettings(reload_settle=0.0))
    ChubaoFSProvider(reloader=reloader or RecordingReloader()).setup(manager, settings)
    stop = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            manager.start(stop)
        except BaseException as err:  # reported by the test below
            errors.append(err)

    thread = threading.Thread(target=run, name="manager", daemon=True)
    thread.start()
    try:
        yield manager
    finally:
        stop.set()
        thread.join(timeout=15)
        assert not thread.is_alive(), "the manager did not stop"
        assert errors == [], errors


@pytest.fixture
def env(envtest: Any) -> Any:
    envtest.install_crds([chubao_monitor_crd()])
    envtest.client().create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    return envtest


def monitor_body(name: str = "mon", spec: JSON | None = None) -> JSON:
    return {"apiVersion": t.API_VERSION, "kind": t.KIND, "metadata": {"name": name, "namespace": NS},
            "spec": spec or {"cluster": {"name": "cfs"}, "consul": {"replicas": 1}}}


def get(client: Any, api_version: str, kind: str, name: str) -> JSON:
    obj: JSON = client.get(api_version, kind, name, NS)
    return obj


def status_of(client: Any, name: str = "mon") -> JSON:
    status: JSON = get(client, t.API_VERSION, t.KIND, name).get("status") or {}
    return status


def is_ready(client: Any, name: str = "mon") -> bool:
    status = status_of(client, name)
    return status.get("phase") == "Ready" and status.get("observedGeneration") == get(
        client, t.API_VERSION, t.KIND, name)["metadata"]["generation"]


def owned(client: Any, kind: str, api_version: str, name: str = "mon") -> list[JSON]:
    selector = f"{common.LABEL_INSTANCE}={name}"
    items: list[JSON] = client.list(api_version, kind, NS, label_selector=selector)["items"]
    return items


WORKLOADS = [("StatefulSet", "mon-consul"), ("StatefulSet", "mon-prometheus"),
             ("StatefulSet", "mon-alertmanager"), ("Deployment", "mon-grafana")]


def test_install_reaches_ready_and_reverts_manual_edits(env: Any) -> None:
    client = env.client()
    with running_operator(env):
        client.create(monitor_body())
        wait_for("the monitor to be Ready", lambda: is_ready(client))
        for kind, name in WORKLOADS:
            assert get(client, "apps/v1", kind, name)["metadata"]["ownerReferences"][0]["kind"] == t.KIND
        for name in ("mon-prometheus-config", "mon-prometheus-rules", "mon-grafana-dashboards"):
            assert get(client, "v1", "ConfigMap", name)
        assert get(client, "v1", "Secret", "mon-grafana-admin")["data"]["admin-password"]
        status = status_of(client)
        assert all(status["components"][c]["ready"] for c in t.COMPONENTS)
        assert status["endpoints"]["grafana"] == f"http://mon-grafana.{NS}.svc:3000"
        conditions = {c["type"]: c["status"] for c in status["conditions"]}
        assert conditions["Ready"] == "True" and conditions["InvalidSpec"] == "False"
        claims = wait_for("bound PVCs", lambda: [
            p for p in owned(client, "PersistentVolumeClaim", "v1") if p.get("status", {}).get("phase") == "Bound"])
        assert {p["metadata"]["name"] for p in claims} >= {"data-mon-prometheus-0", "data-mon-consul-0"}

        # A manual edit of an owned field is reverted.
        client.patch("apps/v1", "StatefulSet", "mon-prometheus",
                     {"spec": {"template": {"spec": {"containers": [
                         {"name": "prometheus", "image": "evil/prometheus:latest"}]}}}},
                     namespace=NS, patch_type="strategic")
        wait_for("the edit to be reverted", lambda: get(client, "apps/v1", "StatefulSet", "mon-prometheus")[
            "spec"]["template"]["spec"]["containers"][0]["image"] == t.DEFAULT_IMAGES["prometheus"])
        # The recorder sends Events from its own thread, so the Event may land just after the write.
        def reasons() -> set[str]:
            events = client.list("v1", "Event", NS)["items"]
            return {e["reason"] for e in events if e["involvedObject"].get("kind") == t.KIND}
        wait_for("Created and Updated events", lambda: {"Created", "Updated"} <= reasons())


def test_image_upgrade_changes_only_that_component(env: Any) -> None:
    client = env.client()
    with running_operator(env):
        client.create(monitor_body())
        wait_for("Ready", lambda: is_ready(client))
        generations = {name: get(client, "apps/v1", kind, name)["metadata"]["generation"]
                       for kind, name in WORKLOADS}
        client.patch(t.API_VERSION, t.KIND, "mon", {"spec": {"alertmanager": {
            "image": "quay.io/prometheus/alertmanager:v0.28.0"}}}, namespace=NS)
        wait_for("the new image", lambda: get(client, "apps/v1", "StatefulSet", "mon-alertmanager")[
            "spec"]["template"]["spec"]["containers"][0]["image"].endswith("v0.28.0"))
        wait_for("Ready again", lambda: is_ready(client))
        after = {name: get(client, "apps/v1", kind, name)["metadata"]["generation"]
                 for kind, name in WORKLOADS}
        changed = {name for name in after if after[name] != generations[name]}
        assert changed == {"mon-alertmanager"}
        assert status_of(client)["components"]["alertmanager"]["image"].endswith("v0.28.0")


def test_config_change_is_hot_reloaded_without_a_rollout(env: Any) -> None:
    client = env.client()
    reloader = RecordingReloader()
    with running_operator(env, reloader):
        client.create(monitor_body())
        wait_for("Ready", lambda: is_ready(client))
        generation = get(client, "apps/v1", "StatefulSet", "mon-prometheus")["metadata"]["generation"]
        client.patch(t.API_VERSION, t.KIND, "mon", {"spec": {"prometheus": {"scrapeInterval": "15s"}}},
                     namespace=NS)
        wait_for("the new config", lambda: "scrape_interval: 15s" in get(
            client, "v1", "ConfigMap", "mon-prometheus-config")["data"]["prometheus.yml"])
        wait_for("a reload", lambda: reloader.calls)
        assert reloader.calls[0] == [f"http://mon-prometheus-0.mon-prometheus-headless.{NS}.svc:9090"]
        wait_for("Ready again", lambda: is_ready(client))
        sts = get(client, "apps/v1", "StatefulSet", "mon-prometheus")
        assert sts["metadata"]["generation"] == generation, "Prometheus must not be restarted"


def test_delete_keeps_pvcs_and_recreating_reuses_them(env: Any) -> None:
    client = env.client()
    with running_operator(env):
        client.create(monitor_body())
        wait_for("Ready", lambda: is_ready(client))
        claims = wait_for("PVCs", lambda: {p["metadata"]["name"]: p["metadata"]["uid"]
                                           for p in owned(client, "PersistentVolumeClaim", "v1")})
        client.delete(t.API_VERSION, t.KIND, "mon", NS)

        def gone() -> bool:
            try:
                get(client, t.API_VERSION, t.KIND, "mon")
                return False
            except NotFound:
                return True

        wait_for("the monitor to go", gone)
        for kind, api_version in (("StatefulSet", "apps/v1"), ("Deployment", "apps/v1"), ("Service", "v1"),
                                  ("ConfigMap", "v1"), ("Secret", "v1")):
            wait_for(f"{kind}s to go", lambda k=kind, a=api_version: owned(client, k, a) == [])
        kept = {p["metadata"]["name"]: p["metadata"]["uid"] for p in owned(client, "PersistentVolumeClaim", "v1")}
        assert kept == claims

        client.create(monitor_body())
        wait_for("Ready after re-creation", lambda: is_ready(client))
        again = {p["metadata"]["name"]: p["metadata"]["uid"] for p in owned(client, "PersistentVolumeClaim", "v1")}
        assert again == claims, "the kept PVCs are reused"


def test_invalid_spec_is_reported_and_nothing_is_created(env: Any) -> None:
    client = env.client()
    with running_operator(env):
        # A zero volume passes the CRD's rules (quantities are not comparable in CEL before 1.29)
        # and, with no webhook installed here, reaches the controller.
        client.create(monitor_body(spec={"cluster": {"name": "cfs"},
                                         "consul": {"replicas": 1, "storage": {"size": "0"}}}))

        def invalid() -> JSON | None:
            for cond in status_of(client).get("conditions") or []:
                if cond["type"] == "InvalidSpec" and cond["status"] == "True":
                    return dict(cond)
            return None

        cond = wait_for("InvalidSpec", invalid)
        assert "consul.storage.size" in cond["message"]
        status = status_of(client)
        assert status["phase"] == "Failed"  # never installed: nothing serves
        # The refused generation was processed: observedGeneration records it.
        assert status["observedGeneration"] == cond["observedGeneration"] == get(
            client, t.API_VERSION, t.KIND, "mon")["metadata"]["generation"]
        assert owned(client, "StatefulSet", "apps/v1") == []
        warnings = wait_for("a Warning event", lambda: [
            e for e in client.list("v1", "Event", NS)["items"] if e["reason"] == "InvalidSpec"])
        assert warnings[0]["type"] == "Warning"

        # Fixing the spec installs the stack.
        client.patch(t.API_VERSION, t.KIND, "mon", {"spec": {"consul": {"storage": {"size": "1Gi"}}}},
                     namespace=NS)
        wait_for("Ready after the fix", lambda: is_ready(client))


def test_invalid_edit_of_a_running_stack_is_processed_and_degraded(env: Any) -> None:
    client = env.client()
    with running_operator(env):
        client.create(monitor_body())
        wait_for("Ready", lambda: is_ready(client))
        workloads = {name: get(client, "apps/v1", kind, name)["metadata"]["resourceVersion"]
                     for kind, name in WORKLOADS}
        generation = client.patch(t.API_VERSION, t.KIND, "mon", {"spec": {"prometheus": {"scrapeInterval": "0s"}}},
                                  namespace=NS)["metadata"]["generation"]
        status = wait_for("the refused generation to be observed", lambda: (
            s if (s := status_of(client)).get("observedGeneration") == generation else None))
        conditions = {c["type"]: c for c in status["conditions"]}
        assert conditions["InvalidSpec"]["status"] == "True"
        assert conditions["InvalidSpec"]["observedGeneration"] == generation
        assert "prometheus.scrapeInterval" in conditions["InvalidSpec"]["message"]
        assert status["phase"] == "Degraded" and conditions["Ready"]["status"] == "False"
        assert all(status["components"][c]["ready"] for c in t.COMPONENTS), "the old stack still serves"
        assert {name: get(client, "apps/v1", kind, name)["metadata"]["resourceVersion"]
                for kind, name in WORKLOADS} == workloads, "nothing was changed"


def test_replaced_grafana_deployment_holds_readiness_until_gone(env: Any) -> None:
    client = env.client()
    hold = "e2e.rook.io/hold"
    with running_operator(env):
        client.create(monitor_body())
        wait_for("Ready", lambda: is_ready(client))
        # Keep the old Deployment around once deleted, as foreground deletion or a slow
        # finalizer would.
        client.patch("apps/v1", "Deployment", "mon-grafana", {"metadata": {"finalizers": [hold]}},
                     namespace=NS)
        generation = client.patch(t.API_VERSION, t.KIND, "mon",
                                  {"spec": {"grafana": {"storage": {"size": "1Gi"}}}},
                                  namespace=NS)["metadata"]["generation"]

        def new_sts_ready() -> bool:
            sts = get(client, "apps/v1", "StatefulSet", "mon-grafana")
            st = sts.get("status") or {}
            return (st.get("observedGeneration") == sts["metadata"]["generation"]
                    and st.get("readyReplicas") == sts["spec"]["replicas"])

        wait_for("the new Grafana StatefulSet to be ready", new_sts_ready)
        assert get(client, "apps/v1", "Deployment", "mon-grafana")["metadata"].get("deletionTimestamp")

        def settled() -> JSON | None:
            """The status once the operator has judged the new StatefulSet: either Ready (the
            bug: the old Deployment still exists) or waiting on the replaced Deployment."""
            status = status_of(client)
            grafana = (status.get("components") or {}).get("grafana") or {}
            if status.get("observedGeneration") == generation and (
                    status.get("phase") == "Ready"
                    or "replaced Deployment mon-grafana" in str(grafana.get("message"))):
                return status
            return None

        status = wait_for("the status of the new generation", settled)
        assert status["phase"] == "Progressing", status
        assert status["components"]["grafana"]["ready"] is False
        assert not is_ready(client)

        deployment = get(client, "apps/v1", "Deployment", "mon-grafana")
        deployment["metadata"]["finalizers"] = []
        client.update(deployment)
        wait_for("Ready once the Deployment is gone", lambda: is_ready(client))
        with pytest.raises(NotFound):
            get(client, "apps/v1", "Deployment", "mon-grafana")
        assert status_of(client)["components"]["grafana"]["ready"]


def test_operator_restarted_mid_install_converges_without_duplicates(env: Any) -> None:
    client = env.client()
    with running_operator(env):
        client.create(monitor_body())
        wait_for("the first objects", lambda: owned(client, "Service", "v1"))
    password = None
    with suppress(NotFound):
        password = get(client, "v1", "Secret", "mon-grafana-admin")["data"]["admin-password"]
    with running_operator(env):
        wait_for("Ready after the restart", lambda: is_ready(client))
    names = [(o.get("kind", kind), o["metadata"]["name"])
             for kind, api_version in (("StatefulSet", "apps/v1"), ("Deployment", "apps/v1"),
                                       ("Service", "v1"), ("ConfigMap", "v1"), ("Secret", "v1"))
             for o in owned(client, kind, api_version)]
    assert len(names) == len(set(names))
    admin = [n for n in names if n[1].endswith("-grafana-admin")]
    assert len(admin) == 1
    if password is not None:
        assert get(client, "v1", "Secret", "mon-grafana-admin")["data"]["admin-password"] == password


def _reconciles() -> float:
    from rook_py.framework.metrics import REGISTRY

    return sum(REGISTRY.get_sample_value("controller_runtime_reconcile_total",
                                         {"controller": "chubaomonitor", "result": result}) or 0.0
               for result in ("success", "requeue", "requeue_after", "error"))


def test_steady_state_reconcile_makes_zero_writes(env: Any) -> None:
    client = env.client()
    with running_operator(env):
        client.create(monitor_body())
        wait_for("Ready", lambda: is_ready(client))
        before = _reconciles()
        # The counter does see this operator's writes (the install made plenty).
        assert env.stats.count(user_agent="rook-chubaofs-operator", verb="create") > 10
        env.stats.reset()
        # Touch the monitor without changing its spec: the controller reconciles it again.
        client.patch(t.API_VERSION, t.KIND, "mon", {"metadata": {"annotations": {"touched": "yes"}}},
                     namespace=NS)
        wait_for("another reconcile", lambda: _reconciles() > before)
        writes = sum(env.stats.count(user_agent="rook-chubaofs-operator", verb=verb)
                     for verb in ("create", "update", "patch", "delete", "deletecollection"))
        assert writes == 0, [s for s in env.stats.snapshot() if s["verb"] not in ("get", "list", "watch")]


def test_disabling_a_component_removes_it_and_keeps_its_data(env: Any) -> None:
    client = env.client()
    spec = {"cluster": {"name": "cfs"}, "consul": {"replicas": 1}, "grafana": {"storage": {"size": "1Gi"}}}
    with running_operator(env):
        client.create(monitor_body(spec=spec))
        wait_for("Ready", lambda: is_ready(client))
        claim = wait_for("Grafana's PVC", lambda: get(client, "v1", "PersistentVolumeClaim", "data-mon-grafana-0"))
        client.patch(t.API_VERSION, t.KIND, "mon", {"spec": {"grafana": {"enabled": False}}}, namespace=NS)
        wait_for("Grafana's objects to go", lambda: [
            o for kind, api_version in (("StatefulSet", "apps/v1"), ("Service", "v1"), ("ConfigMap", "v1"),
                                        ("Secret", "v1"))
            for o in owned(client, kind, api_version)
            if o["metadata"]["labels"].get(common.LABEL_COMPONENT) == "grafana"] == [])
        wait_for("Ready without Grafana", lambda: is_ready(client))
        kept = get(client, "v1", "PersistentVolumeClaim", "data-mon-grafana-0")
        assert kept["metadata"]["uid"] == claim["metadata"]["uid"]
        assert "grafana" not in status_of(client)["endpoints"]


@pytest.mark.parametrize(("spec", "field"), [
    ({"cluster": {"name": "cfs"}, "consul": {"replicas": "three"}}, "spec.consul.replicas"),
    ({"cluster": {"name": "cfs"}, "prometheus": {"retention": "two weeks"}}, "spec.prometheus.retention"),
    ({"cluster": {"name": "cfs"}, "cleanupPolicy": {"confirmation": "sure"}}, "spec.cleanupPolicy.confirmation"),
    ({"cluster": {"name": "cfs"}, "consul": {"replicas": 9}}, "spec.consul.replicas"),
    ({"consul": {"replicas": 1}}, "spec.cluster"),
])
def test_schema_rejects_bad_input_at_admission(env: Any, spec: JSON, field: str) -> None:
    from rook_py.framework.client.errors import Invalid

    with pytest.raises(Invalid) as caught:
        env.client().create(monitor_body(spec=spec))
    assert field in str(caught.value)


def test_schema_defaults_are_applied_at_admission(env: Any) -> None:
    created = env.client().create(monitor_body(spec={"cluster": {"name": "cfs"}}))
    spec = created["spec"]
    assert spec["prometheus"]["retention"] == "15d" and spec["consul"]["replicas"] == 3
    assert spec["grafana"]["enabled"] is True and spec["cleanupPolicy"]["deleteData"] is False
