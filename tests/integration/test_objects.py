"""Object helpers against envtest: apply's write discipline, finalizers, status, owner refs.

Writes are counted by spying on the client (works on the emulator and on a real control plane).
"""

from __future__ import annotations

import copy
import json
import time
from typing import Any

import pytest

from rook_py.framework.client import Client, errors, load_config
from rook_py.framework.objects import (
    LAST_APPLIED_ANNOTATION,
    add_finalizer,
    apply,
    controller_of,
    get_condition,
    remove_finalizer,
    set_condition,
    set_controller_reference,
    update_status,
)

JSON = dict[str, Any]
WRITE_VERBS = ("create", "update", "update_status", "patch", "delete", "apply")


@pytest.fixture
def client(envtest: Any, mocker: Any) -> Client:
    c = Client(load_config(envtest.kubeconfig), timeout=10.0, user_agent="it-objects/1")
    for verb in WRITE_VERBS:
        mocker.spy(c, verb)
    return c


def writes(client: Any) -> int:
    return sum(getattr(client, verb).call_count for verb in WRITE_VERBS)


def deployment(image: str = "nginx:1.25", replicas: int = 2, env: list[JSON] | None = None,
               labels: dict[str, str] | None = None) -> JSON:
    container: JSON = {"name": "app", "image": image,
                       "ports": [{"containerPort": 8080, "name": "http"}],
                       "env": env if env is not None else [{"name": "MODE", "value": "a"}]}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default",
                         "labels": labels if labels is not None else {"app": "web"}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [container]}}}}


def service() -> JSON:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
            "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}


def test_apply_twice_makes_zero_writes_the_second_time(client: Client) -> None:
    first = apply(client, deployment())
    assert first.action == "created"
    assert "annotations" not in first.object["metadata"]  # no copy of the object in an annotation
    [entry] = first.object["metadata"]["managedFields"]
    assert (entry["manager"], entry["operation"]) == ("rook-py", "Apply")
    svc = apply(client, service())
    assert svc.action == "created"
    before = writes(client)
    assert apply(client, deployment()).action == "unchanged"
    assert apply(client, service()).action == "unchanged"
    assert writes(client) == before
    live_svc = client.get("v1", "Service", "web", "default")
    assert live_svc["spec"].get("clusterIP")  # server-assigned, left alone


def test_apply_reverts_manual_edit_of_owned_field(client: Client) -> None:
    apply(client, deployment())
    client.patch("apps/v1", "Deployment", "web", {"spec": {"replicas": 7},
                                                  "metadata": {"labels": {"owner": "human"}}},
                 namespace="default")
    result = apply(client, deployment())
    assert result.action == "updated"
    live = client.get("apps/v1", "Deployment", "web", "default")
    assert live["spec"]["replicas"] == 2
    assert live["metadata"]["labels"] == {"app": "web", "owner": "human"}  # not ours: kept
    before = writes(client)
    assert apply(client, deployment()).action == "unchanged"
    assert writes(client) == before


def test_removed_field_is_removed_from_live_object(client: Client) -> None:
    apply(client, deployment(env=[{"name": "MODE", "value": "a"}, {"name": "DEBUG", "value": "1"}],
                             labels={"app": "web", "tier": "frontend"}))
    result = apply(client, deployment(env=[{"name": "MODE", "value": "a"}], labels={"app": "web"}))
    assert result.action == "updated"
    live = client.get("apps/v1", "Deployment", "web", "default")
    assert live["metadata"]["labels"] == {"app": "web"}
    assert live["spec"]["template"]["spec"]["containers"][0]["env"] == [{"name": "MODE", "value": "a"}]


def test_apply_from_a_stale_reader_still_applies_once(client: Client, mocker: Any) -> None:
    apply(client, deployment())
    stale = client.get("apps/v1", "Deployment", "web", "default")
    client.patch("apps/v1", "Deployment", "web", {"metadata": {"annotations": {"touched": "yes"}}},
                 namespace="default")
    reader = mocker.Mock()
    reader.get.return_value = copy.deepcopy(stale)  # a cache that has not caught up
    result = apply(client, deployment(image="nginx:1.26"), reader=reader)
    assert result.action == "updated"
    assert client.apply.call_count == 2  # type: ignore[attr-defined]  # create + this one, no retry needed
    live = client.get("apps/v1", "Deployment", "web", "default")
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.26"
    assert live["metadata"]["annotations"]["touched"] == "yes"


def test_fields_of_other_managers_are_left_alone(client: Client) -> None:
    """An autoscaler's replicas and a user's annotation are not ours: never reverted."""
    desired = deployment()
    del desired["spec"]["replicas"]
    apply(client, desired)
    client.patch("apps/v1", "Deployment", "web", {"spec": {"replicas": 5},
                                                  "metadata": {"annotations": {"note": "mine"}}},
                 namespace="default")
    before = writes(client)
    assert apply(client, desired).action == "unchanged"
    assert writes(client) == before
    live = client.get("apps/v1", "Deployment", "web", "default")
    assert live["spec"]["replicas"] == 5 and live["metadata"]["annotations"]["note"] == "mine"


def _legacy_write(client: Client, obj: JSON) -> JSON:
    """An object as the earlier client-side apply left it: our PUTs (manager rook-py) and a
    copy of the applied object in the rook.io/last-applied annotation."""
    legacy = Client(client.config, timeout=10.0, user_agent="rook-py/0.9 (python)")
    body = copy.deepcopy(obj)
    body["metadata"].setdefault("annotations", {})[LAST_APPLIED_ANNOTATION] = json.dumps(obj, sort_keys=True)
    return legacy.create(body)


def test_objects_of_the_client_side_apply_are_migrated_once(client: Client) -> None:
    old = deployment(labels={"app": "web", "legacy": "yes"})
    _legacy_write(client, old)
    result = apply(client, deployment())  # drops the "legacy" label
    assert result.action == "updated"
    live = client.get("apps/v1", "Deployment", "web", "default")
    assert LAST_APPLIED_ANNOTATION not in (live["metadata"].get("annotations") or {})
    assert live["metadata"]["labels"] == {"app": "web"}  # ownership moved, so the dropped label went
    managers = {(e["manager"], e["operation"]) for e in live["metadata"]["managedFields"]}
    assert ("rook-py", "Apply") in managers and ("rook-py", "Update") not in managers
    before = writes(client)
    assert apply(client, deployment()).action == "unchanged"
    assert writes(client) == before


def test_an_apply_under_rook_py_moves_to_the_providers_field_manager(client: Client) -> None:
    """Node DaemonSets and CRDs were applied as ``rook-py`` before they took the provider's
    manager: the old Apply entry must not keep a field the new manager stops applying."""
    apply(client, deployment(labels={"app": "web", "legacy": "yes"}))  # as rook-py
    assert apply(client, deployment(), field_manager="rook-example").action == "updated"
    live = client.get("apps/v1", "Deployment", "web", "default")
    assert live["metadata"]["labels"] == {"app": "web"}
    managers = {(e["manager"], e["operation"]) for e in live["metadata"]["managedFields"]}
    assert ("rook-example", "Apply") in managers and ("rook-py", "Apply") not in managers
    before = writes(client)
    assert apply(client, deployment(), field_manager="rook-example").action == "unchanged"
    assert writes(client) == before


def _statefulset(port: int = 9090) -> JSON:
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db", "namespace": "default"},
            "spec": {"serviceName": "db", "replicas": 1, "selector": {"matchLabels": {"app": "db"}},
                     "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [
                         {"name": "db", "image": "db:1", "ports": [{"name": "web", "containerPort": port}],
                          "resources": {"limits": {"memory": "1024Mi"}}}]}},
                     "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                         "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}}


def test_claim_templates_and_canonical_quantities_cause_no_writes(client: Client) -> None:
    """Defect 1 of issue 13: kube-apiserver returns creationTimestamp: null inside templates
    (and canonical quantities); none of that is a difference."""
    assert apply(client, _statefulset()).action == "created"
    live = client.get("apps/v1", "StatefulSet", "db", "default")
    assert live["spec"]["volumeClaimTemplates"][0]["metadata"]["creationTimestamp"] is None
    before = writes(client)
    for _ in range(3):
        assert apply(client, _statefulset()).action == "unchanged"
    assert writes(client) == before


def test_a_keyed_list_entry_replaced_by_a_merge_patch_is_reverted(client: Client) -> None:
    """Defect 2 of issue 13: a merge patch replaces a Service's ports with a new port number
    under our port's name; the next apply restores ours, without two ports named alike."""
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "prom", "namespace": "default"},
           "spec": {"selector": {"app": "prom"}, "ports": [{"name": "web", "port": 9090, "targetPort": 9090}]}}
    apply(client, svc)
    client.patch("v1", "Service", "prom", {"spec": {"ports": [{"name": "web", "port": 9999, "targetPort": 9090}]}},
                 namespace="default")
    assert apply(client, svc).action == "updated"
    ports = client.get("v1", "Service", "prom", "default")["spec"]["ports"]
    assert [(p["name"], p["port"]) for p in ports] == [("web", 9090)]
    assert apply(client, svc).action == "unchanged"
    # the same edit of a container port in a StatefulSet
    apply(client, _statefulset())
    client.patch("apps/v1", "StatefulSet", "db", [{"op": "replace", "value": 9999, "path":
                 "/spec/template/spec/containers/0/ports/0/containerPort"}], namespace="default", patch_type="json")
    assert apply(client, _statefulset()).action == "updated"
    container = client.get("apps/v1", "StatefulSet", "db", "default")["spec"]["template"]["spec"]["containers"][0]
    assert [(p["name"], p["containerPort"]) for p in container["ports"]] == [("web", 9090)]


def test_configmaps_up_to_the_object_limit_can_be_applied(client: Client) -> None:
    """Defect 3 of issue 13: nothing is copied into an annotation (256 KiB limit), so a
    ConfigMap of 900 KB applies, and re-applies as a no-op."""
    big = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big", "namespace": "default"},
           "data": {f"rule-{i}.yaml": "x" * 900 for i in range(1000)}}
    assert apply(client, big).action == "created"
    before = writes(client)
    assert apply(client, big).action == "unchanged"
    assert writes(client) == before
    big["data"]["rule-0.yaml"] = "changed"
    assert apply(client, big).action == "updated"


def test_finalizers_are_conflict_safe_and_idempotent(client: Client) -> None:
    obj = client.create({"apiVersion": "v1", "kind": "ConfigMap",
                         "metadata": {"name": "fin", "namespace": "default"}})
    client.patch("v1", "ConfigMap", "fin", {"data": {"k": "v"}}, namespace="default")  # obj is now stale
    with_fin = add_finalizer(client, obj, "rook.io/test")
    assert with_fin["metadata"]["finalizers"] == ["rook.io/test"]
    assert with_fin["data"] == {"k": "v"}
    before = writes(client)
    add_finalizer(client, with_fin, "rook.io/test")
    assert writes(client) == before
    client.delete("v1", "ConfigMap", "fin", "default")
    terminating = client.get("v1", "ConfigMap", "fin", "default")
    assert terminating["metadata"].get("deletionTimestamp")
    remove_finalizer(client, terminating, "rook.io/test")
    with pytest.raises(errors.NotFound):
        client.get("v1", "ConfigMap", "fin", "default")


def test_conditions_and_status_writes_only_when_changed(client: Client) -> None:
    client.create({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "gadgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
                 "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget", "listKind": "GadgetList"},
                 "versions": [{"name": "v1", "served": True, "storage": True, "subresources": {"status": {}},
                               "schema": {"openAPIV3Schema": {"type": "object",
                                                              "x-kubernetes-preserve-unknown-fields": True}}}]}})
    gadget: JSON = {"apiVersion": "example.com/v1", "kind": "Gadget",
                    "metadata": {"name": "g", "namespace": "default"}, "spec": {"n": 1}}
    obj = None
    for _ in range(100):
        try:
            obj = client.create(gadget)
            break
        except errors.NotFound:  # the CRD is being established
            time.sleep(0.05)
    assert obj is not None
    status: JSON = copy.deepcopy(obj.get("status") or {})
    assert set_condition(status, "Ready", "False", "Creating", "starting", obj["metadata"].get("generation"))
    obj = update_status(client, obj, status)
    assert get_condition(obj["status"], "Ready")["reason"] == "Creating"  # type: ignore[index]
    before = writes(client)
    again = copy.deepcopy(obj["status"])
    assert not set_condition(again, "Ready", "False", "Creating", "starting", obj["metadata"].get("generation"))
    update_status(client, obj, again)
    assert writes(client) == before


def test_controller_reference_is_accepted_by_the_server(client: Client) -> None:
    owner = client.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owner", "namespace": "default"}})
    child: JSON = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "child", "namespace": "default"}}
    set_controller_reference(owner, child)
    created = apply(client, child).object
    ref = controller_of(created)
    assert ref is not None and ref["uid"] == owner["metadata"]["uid"] and ref["blockOwnerDeletion"] is True


def test_server_sees_no_writes_from_a_noop_apply(envtest: Any) -> None:
    """Counted on the server: per client identity on the emulator; on a real kube-apiserver from
    apiserver_request_total, which has no client label, so another client's request in the same
    second (a test's operator still stopping, the server's own controllers) is noise. A real
    no-op failure repeats every round; noise does not, so the real back end gets three rounds."""
    c = Client(load_config(envtest.kubeconfig), user_agent="noop-apply/1")
    apply(c, deployment())
    apply(c, service())
    counts = envtest.request_counts
    rounds = 3 if envtest.backend == "real" else 1
    for attempt in range(1, rounds + 1):
        counts.reset()
        for _ in range(3):
            assert apply(c, deployment()).action == "unchanged"
            assert apply(c, service()).action == "unchanged"
        seen = {(verb, resource): counts.count(user_agent="noop-apply", verb=verb, resource=resource)
                for verb in ("create", "update", "patch", "delete", "get")
                for resource in ("deployments", "services")}
        expected = {key: 3 if key[0] == "get" else 0 for key in seen}
        if seen == expected:
            return
        if attempt == rounds:
            assert seen == expected, counts.snapshot()
