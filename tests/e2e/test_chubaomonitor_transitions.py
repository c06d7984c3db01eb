"""ChubaoMonitor transitions end to end on envtest (the simulated cluster's garbage collector does
foreground and orphan deletion; its StatefulSet controller creates claims from the templates):

- disabling a component (Alertmanager; Prometheus cannot be disabled) reports progress, not readiness, until its workload is really gone;
- growing storage expands the claims and recreates the StatefulSet around its running pods, so
  a scale-up afterwards gets a claim of the grown size.
"""

from __future__ import annotations

from typing import Any

import pytest

from rook_py.chubaofs.api import types as t
from rook_py.chubaofs.monitor import common
from tests.e2e.test_chubaomonitor import (  # noqa: F401 -- env is a fixture used by name
    NS,
    _reconciles,
    env,
    get,
    is_ready,
    monitor_body,
    owned,
    running_operator,
    status_of,
    wait_for,
)

JSON = dict[str, Any]
HOLD = "e2e.rook.io/hold"

pytestmark = pytest.mark.emulator_only(
    reason="workload rollouts, pods and garbage collection (controller-manager and kubelet)")


def alertmanager_objects(client: Any) -> list[JSON]:
    return [o for kind, api_version in (("StatefulSet", "apps/v1"), ("Service", "v1"))
            for o in owned(client, kind, api_version)
            if o["metadata"]["labels"].get(common.LABEL_COMPONENT) == t.ALERTMANAGER]


def test_disabling_alertmanager_is_progress_until_its_statefulset_is_gone(env: Any) -> None:  # noqa: F811
    client = env.client()
    spec = {"cluster": {"name": "cfs"}, "consul": {"replicas": 1}, "alertmanager": {"storage": {"size": "1Gi"}}}
    with running_operator(env):
        client.create(monitor_body(spec=spec))
        wait_for("Ready", lambda: is_ready(client))
        claim = wait_for("Alertmanager's PVC", lambda: get(client, "v1", "PersistentVolumeClaim",
                                                            "data-mon-alertmanager-0"))
        # A pod that takes its time to terminate: the StatefulSet's foreground deletion waits for it.
        client.patch("v1", "Pod", "mon-alertmanager-0", {"metadata": {"finalizers": [HOLD]}}, namespace=NS)
        generation = client.patch(t.API_VERSION, t.KIND, "mon", {"spec": {"alertmanager": {"enabled": False}}},
                                  namespace=NS)["metadata"]["generation"]

        def disabling() -> JSON | None:
            status = status_of(client)
            message = str(((status.get("components") or {}).get(t.ALERTMANAGER) or {}).get("message"))
            return status if (status.get("observedGeneration") == generation
                              and message.startswith("Disabling:")) else None

        status = wait_for("Disabling to be reported", disabling)
        assert status["phase"] == "Progressing", status
        assert status["components"][t.ALERTMANAGER]["ready"] is False
        assert "StatefulSet mon-alertmanager" in status["components"][t.ALERTMANAGER]["message"]
        sts = get(client, "apps/v1", "StatefulSet", "mon-alertmanager")
        assert sts["metadata"].get("deletionTimestamp"), "deleted in the foreground, waiting for its pod"

        # Later passes (requeued, not event-driven any more) keep saying so while the pod is held.
        before = _reconciles()
        wait_for("two more reconciles", lambda: _reconciles() >= before + 2)
        status = status_of(client)
        assert not is_ready(client) and status["phase"] == "Progressing"
        assert status["components"][t.ALERTMANAGER]["message"] == (
            "Disabling: waiting for StatefulSet mon-alertmanager to be deleted")

        client.patch("v1", "Pod", "mon-alertmanager-0", {"metadata": {"finalizers": None}}, namespace=NS)
        wait_for("Ready without Alertmanager", lambda: is_ready(client))
        status = status_of(client)
        assert status["components"][t.ALERTMANAGER]["message"] == "disabled"
        assert status["components"][t.ALERTMANAGER]["ready"] is True
        assert alertmanager_objects(client) == []
        kept = get(client, "v1", "PersistentVolumeClaim", "data-mon-alertmanager-0")
        assert kept["metadata"]["uid"] == claim["metadata"]["uid"], "enabled: false keeps the data"


def size(obj: JSON) -> str:
    return str(obj["spec"]["resources"]["requests"]["storage"])


def test_grown_storage_reaches_the_claim_template_without_restarting_pods(env: Any) -> None:  # noqa: F811
    client = env.client()
    with running_operator(env):
        client.create(monitor_body())
        wait_for("Ready", lambda: is_ready(client))
        wait_for("a bound claim", lambda: get(client, "v1", "PersistentVolumeClaim", "data-mon-prometheus-0")
                 .get("status", {}).get("phase") == "Bound")
        old_sts = get(client, "apps/v1", "StatefulSet", "mon-prometheus")
        old_size = size(old_sts["spec"]["volumeClaimTemplates"][0])
        assert old_size == "20Gi"
        pod = get(client, "v1", "Pod", "mon-prometheus-0")

        client.patch(t.API_VERSION, t.KIND, "mon", {"spec": {"prometheus": {"storage": {"size": "30Gi"}}}},
                     namespace=NS)

        def recreated() -> JSON | None:
            sts = get(client, "apps/v1", "StatefulSet", "mon-prometheus")
            return sts if sts["metadata"]["uid"] != old_sts["metadata"]["uid"] else None

        new_sts = wait_for("the StatefulSet to be recreated", recreated)
        assert size(new_sts["spec"]["volumeClaimTemplates"][0]) == "30Gi"
        assert new_sts["spec"]["template"] == old_sts["spec"]["template"]
        wait_for("Ready after the recreation", lambda: is_ready(client))
        claim = get(client, "v1", "PersistentVolumeClaim", "data-mon-prometheus-0")
        assert size(claim) == "30Gi"
        wait_for("the volume to be expanded", lambda: get(client, "v1", "PersistentVolumeClaim",
                                                          "data-mon-prometheus-0")
                 ["status"]["capacity"]["storage"] == "30Gi")
        same = get(client, "v1", "Pod", "mon-prometheus-0")
        assert same["metadata"]["uid"] == pod["metadata"]["uid"], "the orphaned pod kept running"
        assert not same["metadata"].get("deletionTimestamp")
        wait_for("StorageExpanding and Recreating events", lambda: {"StorageExpanding", "Recreating"} <= {
            e["reason"] for e in client.list("v1", "Event", NS)["items"] if e["involvedObject"].get("kind") == t.KIND})
        conditions = {c["type"]: c["status"] for c in status_of(client)["conditions"]}
        assert conditions["ReconcileError"] == "False" and conditions["InvalidSpec"] == "False"

        client.patch(t.API_VERSION, t.KIND, "mon", {"spec": {"prometheus": {"replicas": 2}}}, namespace=NS)
        new_claim = wait_for("the scaled-up pod's claim", lambda: get(
            client, "v1", "PersistentVolumeClaim", "data-mon-prometheus-1"))
        assert size(new_claim) == "30Gi", "a new claim gets the grown size"
        wait_for("Ready with two replicas", lambda: is_ready(client))
        assert get(client, "apps/v1", "StatefulSet", "mon-prometheus")["metadata"]["uid"] == \
            new_sts["metadata"]["uid"], "scaling needs no further recreation"
