"""The official ``kubernetes`` Python client's typed APIs against an envtest Environment.

CoreV1Api, AppsV1Api, ApiextensionsV1Api, CustomObjectsApi and ``watch.Watch``, through the
environment's kubeconfig, exactly as an operator written against the official client would run.
One environment per module (on the session's back end); tests use their own names.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from rook_py.envtest import Environment, emulator_only
from tests.envtest.cluster_support import eventually

CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "gadgets.example.com"},
    "spec": {
        "group": "example.com", "scope": "Namespaced",
        "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget", "listKind": "GadgetList"},
        "versions": [{
            "name": "v1", "served": True, "storage": True, "subresources": {"status": {}},
            "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                "spec": {"type": "object", "required": ["size"], "properties": {
                    "size": {"type": "integer", "minimum": 1, "maximum": 10},
                    "mode": {"type": "string", "default": "fast"}}},
                "status": {"type": "object", "properties": {"phase": {"type": "string"}}}}}},
        }],
    },
}


@pytest.fixture(scope="module")
def env(request: pytest.FixtureRequest) -> Iterator[Environment]:
    from rook_py.envtest.pytest_plugin import selected_backend

    with Environment(backend=selected_backend(request.config), nodes=2, pod_ready_delay=0.01) as e:
        e.install_crds([CRD])
        yield e


@pytest.fixture(scope="module")
def api_client(env: Environment) -> Iterator[client.ApiClient]:
    with client.ApiClient(env.k8s_configuration()) as c:
        yield c


@pytest.fixture
def core(api_client: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


@pytest.fixture
def namespace(core: client.CoreV1Api, request: pytest.FixtureRequest) -> str:
    name = "t-" + request.node.name.replace("_", "-").lower()[:50].strip("-")
    core.create_namespace({"metadata": {"name": name}})
    return name


def test_core_crud_errors_and_optimistic_concurrency(core: client.CoreV1Api, namespace: str) -> None:
    cm = core.create_namespaced_config_map(namespace, {"metadata": {"name": "cfg", "labels": {"app": "x"}},
                                                       "data": {"a": "1"}})
    assert cm.metadata.uid and cm.metadata.resource_version
    with pytest.raises(ApiException) as exists:
        core.create_namespaced_config_map(namespace, {"metadata": {"name": "cfg"}})
    assert exists.value.status == 409 and '"reason":"AlreadyExists"' in exists.value.body.replace(" ", "")

    cm.data["a"] = "2"
    updated = core.replace_namespaced_config_map("cfg", namespace, cm)
    assert updated.data == {"a": "2"}
    assert int(updated.metadata.resource_version) > int(cm.metadata.resource_version)
    cm.data["a"] = "stale"
    with pytest.raises(ApiException) as stale:
        core.replace_namespaced_config_map("cfg", namespace, cm)  # cm still carries the old resourceVersion
    assert stale.value.status == 409 and "Conflict" in stale.value.body

    patched = core.patch_namespaced_config_map("cfg", namespace, {"data": {"b": "3"}})
    assert patched.data == {"a": "2", "b": "3"}
    listed = core.list_namespaced_config_map(namespace, label_selector="app=x")
    assert [i.metadata.name for i in listed.items] == ["cfg"]
    assert core.list_namespaced_config_map(namespace, label_selector="app!=x").items == []
    core.delete_namespaced_config_map("cfg", namespace)
    with pytest.raises(ApiException) as missing:
        core.read_namespaced_config_map("cfg", namespace)
    assert missing.value.status == 404


def test_list_pagination(core: client.CoreV1Api, namespace: str) -> None:
    for i in range(5):
        core.create_namespaced_secret(namespace, {"metadata": {"name": f"s{i}"}, "stringData": {"k": "v"}})
    seen: list[str] = []
    token = None
    while True:
        page = core.list_namespaced_secret(namespace, limit=2, _continue=token)
        seen.extend(i.metadata.name for i in page.items)
        token = page.metadata._continue
        if not token:
            break
    assert seen == [f"s{i}" for i in range(5)]


def test_apps_deployment_create_scale_and_status(api_client: client.ApiClient, namespace: str,
                                                 env: Environment) -> None:
    apps = client.AppsV1Api(api_client)
    body = {"metadata": {"name": "api"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "api"}},
                     "template": {"metadata": {"labels": {"app": "api"}},
                                  "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}
    dep = apps.create_namespaced_deployment(namespace, body)
    assert dep.spec.strategy.type == "RollingUpdate"  # server-side defaulting
    assert dep.metadata.generation == 1
    scale = apps.patch_namespaced_deployment_scale("api", namespace, {"spec": {"replicas": 3}})
    assert scale.spec.replicas == 3
    assert apps.read_namespaced_deployment("api", namespace).metadata.generation == 2
    with pytest.raises(ApiException) as immutable:
        apps.patch_namespaced_deployment("api", namespace, {"spec": {"selector": {"matchLabels": {"app": "other"}}}})
    assert immutable.value.status == 422


@emulator_only(reason="a Deployment becomes Available only with the controller-manager and kubelets")
def test_apps_deployment_becomes_available(api_client: client.ApiClient, namespace: str) -> None:
    apps = client.AppsV1Api(api_client)
    apps.create_namespaced_deployment(namespace, {
        "metadata": {"name": "ready"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "ready"}},
                 "template": {"metadata": {"labels": {"app": "ready"}},
                              "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}})

    def available() -> Any:
        st = apps.read_namespaced_deployment_status("ready", namespace).status
        return st if st.available_replicas == 2 and st.ready_replicas == 2 else None

    status = eventually(available, what="deployment available")
    assert {c.type: c.status for c in status.conditions} == {"Available": "True", "Progressing": "True"}
    pods = client.CoreV1Api(api_client).list_namespaced_pod(namespace, label_selector="app=ready").items
    assert len(pods) == 2 and all(p.status.phase == "Running" and p.status.pod_ip for p in pods)


def test_custom_objects_validation_defaulting_and_status(api_client: client.ApiClient, namespace: str) -> None:
    custom = client.CustomObjectsApi(api_client)
    args = ("example.com", "v1", namespace, "gadgets")
    obj = custom.create_namespaced_custom_object(*args, {"apiVersion": "example.com/v1", "kind": "Gadget",
                                                         "metadata": {"name": "g"}, "spec": {"size": 2}})
    assert obj["spec"] == {"size": 2, "mode": "fast"}  # schema default applied
    with pytest.raises(ApiException) as invalid:
        custom.create_namespaced_custom_object(*args, {"apiVersion": "example.com/v1", "kind": "Gadget",
                                                       "metadata": {"name": "bad"}, "spec": {"size": 99}})
    assert invalid.value.status == 422 and "spec.size" in invalid.value.body
    patched = custom.patch_namespaced_custom_object(*args, "g", {"spec": {"size": 3}})
    assert patched["spec"]["size"] == 3 and patched["metadata"]["generation"] == 2
    status = custom.patch_namespaced_custom_object_status(*args, "g", {"status": {"phase": "Ready"}})
    assert status["status"] == {"phase": "Ready"} and status["metadata"]["generation"] == 2
    listing = custom.list_namespaced_custom_object(*args)
    assert [i["metadata"]["name"] for i in listing["items"]] == ["g"]
    custom.delete_namespaced_custom_object(*args, "g")
    with pytest.raises(ApiException) as gone:
        custom.get_namespaced_custom_object(*args, "g")
    assert gone.value.status == 404


def test_watch_streams_added_modified_deleted_and_resumes(core: client.CoreV1Api, namespace: str) -> None:
    start_rv = core.list_namespaced_config_map(namespace).metadata.resource_version

    def writer() -> None:
        time.sleep(0.1)
        core.create_namespaced_config_map(namespace, {"metadata": {"name": "w"}, "data": {"n": "0"}})
        core.patch_namespaced_config_map("w", namespace, {"data": {"n": "1"}})
        core.delete_namespaced_config_map("w", namespace)

    thread = threading.Thread(target=writer)
    thread.start()
    events: list[tuple[str, str, str]] = []
    w = watch.Watch()
    for event in w.stream(core.list_namespaced_config_map, namespace, resource_version=start_rv,
                          timeout_seconds=10):
        obj = event["object"]
        events.append((event["type"], obj.metadata.name, (obj.data or {}).get("n", "")))
        if event["type"] == "DELETED":
            w.stop()
    thread.join(5)
    assert events == [("ADDED", "w", "0"), ("MODIFIED", "w", "1"), ("DELETED", "w", "1")]

    # Resuming from the start replays the same history (within the retained window).
    replay: list[str] = []
    w = watch.Watch()
    for event in w.stream(core.list_namespaced_config_map, namespace, resource_version=start_rv,
                          timeout_seconds=5):
        replay.append(event["type"])
        if event["type"] == "DELETED":
            w.stop()
    assert replay == ["ADDED", "MODIFIED", "DELETED"]


@emulator_only(reason="fault injection: compacting the watch history on demand")
def test_watch_from_compacted_history_is_410(core: client.CoreV1Api, namespace: str, env: Environment) -> None:
    old_rv = core.list_namespaced_config_map(namespace).metadata.resource_version
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "c"}})
    env.faults.compact()
    with pytest.raises(ApiException) as expired:
        for _ in watch.Watch().stream(core.list_namespaced_config_map, namespace, resource_version=old_rv,
                                      timeout_seconds=5):
            pass
    assert expired.value.status == 410


def test_unauthenticated_requests_are_rejected(env: Environment) -> None:
    configuration = env.k8s_configuration()
    configuration.api_key = {}
    with client.ApiClient(configuration) as anonymous, pytest.raises(ApiException) as denied:
        client.CoreV1Api(anonymous).list_namespace()
    assert denied.value.status == 401
