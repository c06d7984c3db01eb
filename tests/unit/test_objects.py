"""Object helpers against an in-memory fake client that applies server defaults and enforces
resourceVersion, with pytest-mock spies counting every write."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from rook_py.framework import objects
from rook_py.framework.client import errors
from rook_py.framework.kube import times
from rook_py.framework.objects import (
    LAST_APPLIED_ANNOTATION,
    AlreadyOwnedError,
    add_finalizer,
    controller_of,
    get_condition,
    remove_finalizer,
    retry_on_conflict,
    set_condition,
    set_controller_reference,
    update_status,
)

JSON = dict[str, Any]


class FakeClient:
    """Stores objects by (kind, namespace, name); applies a few defaults like the API server."""

    def __init__(self, omit_empty: bool = False) -> None:
        self.store: dict[tuple[str, str | None, str], JSON] = {}
        self.rv = 0
        self.omit_empty = omit_empty  # drop [] and {} like a real apiserver's Go omitempty

    @staticmethod
    def _drop_empty(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: FakeClient._drop_empty(v) for k, v in value.items() if v not in ({}, [])}
        if isinstance(value, list):
            return [FakeClient._drop_empty(v) for v in value]
        return value

    @staticmethod
    def key(obj: JSON) -> tuple[str, str | None, str]:
        return obj["kind"], obj["metadata"].get("namespace"), obj["metadata"]["name"]

    def _bump(self, obj: JSON) -> None:
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)

    def _default(self, obj: JSON) -> None:
        if self.omit_empty:
            obj.update(self._drop_empty(obj))
            for key in [k for k, v in obj.items() if v in ({}, [])]:
                del obj[key]
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return
        if obj["kind"] == "Deployment":
            spec.setdefault("revisionHistoryLimit", 10)
            for c in spec.get("template", {}).get("spec", {}).get("containers", []):
                c.setdefault("terminationMessagePath", "/dev/termination-log")
                c.setdefault("imagePullPolicy", "IfNotPresent")
                for p in c.get("ports", []):
                    p.setdefault("protocol", "TCP")
        if obj["kind"] == "Service":
            spec.setdefault("clusterIP", "10.0.0.7")
            for p in spec.get("ports", []):
                p.setdefault("protocol", "TCP")
                p.setdefault("targetPort", p["port"])

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None, *,
            subresource: str | None = None) -> JSON:
        try:
            return copy.deepcopy(self.store[(kind, namespace, name)])
        except KeyError:
            raise errors.not_found(kind.lower() + "s", "", name) from None

    def create(self, obj: JSON, *, namespace: str | None = None) -> JSON:
        obj = copy.deepcopy(obj)
        if self.key(obj) in self.store:
            raise errors.already_exists(obj["kind"].lower(), "", obj["metadata"]["name"])
        obj["metadata"].update(uid=f"uid-{obj['metadata']['name']}", creationTimestamp="2024-01-01T00:00:00Z")
        self._default(obj)
        self._bump(obj)
        self.store[self.key(obj)] = obj
        return copy.deepcopy(obj)

    def _check(self, obj: JSON) -> JSON:
        current = self.store.get(self.key(obj))
        if current is None:
            raise errors.not_found(obj["kind"].lower(), "", obj["metadata"]["name"])
        if obj["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]:
            raise errors.conflict(obj["kind"].lower(), "", obj["metadata"]["name"], errors.STALE_OBJECT)
        return current

    def update(self, obj: JSON) -> JSON:
        current = self._check(obj)
        new = copy.deepcopy(obj)
        if "status" in current:
            new["status"] = current["status"]
        else:
            new.pop("status", None)
        self._default(new)
        self._bump(new)
        self.store[self.key(obj)] = new
        return copy.deepcopy(new)

    def update_status(self, obj: JSON) -> JSON:
        current = copy.deepcopy(self._check(obj))
        current["status"] = copy.deepcopy(obj.get("status"))
        self._bump(current)
        self.store[self.key(obj)] = current
        return copy.deepcopy(current)

    def edit(self, kind: str, ns: str | None, name: str, fn: Any) -> None:
        """Someone else's write (a user with kubectl edit)."""
        fn(self.store[(kind, ns, name)])
        self._bump(self.store[(kind, ns, name)])


@pytest.fixture
def fake(mocker: Any) -> FakeClient:
    client = FakeClient()
    for verb in ("get", "create", "update", "update_status"):
        mocker.spy(client, verb)
    return client


def writes(client: Any) -> int:
    return int(client.create.call_count + client.update.call_count + client.update_status.call_count)


def deployment(image: str = "nginx:1", env: list[JSON] | None = None, **labels: str) -> JSON:
    container: JSON = {"name": "app", "image": image, "ports": [{"containerPort": 80}]}
    if env is not None:
        container["env"] = env
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "ns", "labels": dict(labels or {"app": "web"})},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [container]}}}}


# -- owner references ----------------------------------------------------------------------------

OWNER: JSON = {"apiVersion": "chubao.rook.io/v1alpha1", "kind": "ChubaoCluster",
               "metadata": {"name": "c1", "namespace": "ns", "uid": "u-1"}}


def test_set_controller_reference_and_controller_of() -> None:
    obj: JSON = {"metadata": {"name": "x", "namespace": "ns",
                              "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "other",
                                                   "uid": "u-9"}]}}
    assert controller_of(obj) is None
    set_controller_reference(OWNER, obj)
    ref = {"apiVersion": "chubao.rook.io/v1alpha1", "kind": "ChubaoCluster", "name": "c1", "uid": "u-1",
           "controller": True, "blockOwnerDeletion": True}
    assert controller_of(obj) == ref
    assert len(obj["metadata"]["ownerReferences"]) == 2
    # Same owner under another version: updated in place, not duplicated.
    newer = copy.deepcopy(OWNER)
    newer["apiVersion"] = "chubao.rook.io/v1"
    set_controller_reference(newer, obj)
    assert len(obj["metadata"]["ownerReferences"]) == 2
    assert controller_of(obj)["apiVersion"] == "chubao.rook.io/v1"  # type: ignore[index]


def test_second_controller_is_refused() -> None:
    obj: JSON = {"kind": "Service", "metadata": {"name": "x", "namespace": "ns"}}
    set_controller_reference(OWNER, obj)
    rival = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "ns", "uid": "u-2"}}
    with pytest.raises(AlreadyOwnedError) as info:
        set_controller_reference(rival, obj)
    assert info.value.owner["name"] == "c1"


@pytest.mark.parametrize(("owner_ns", "obj_ns", "message"), [
    ("ns", None, "cluster-scoped resource must not have a namespace-scoped owner"),
    ("ns", "other", "cross-namespace owner references are disallowed"),
])
def test_scope_rules(owner_ns: str, obj_ns: str | None, message: str) -> None:
    owner = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "o", "namespace": owner_ns, "uid": "u"}}
    obj: JSON = {"metadata": {"name": "x", **({"namespace": obj_ns} if obj_ns else {})}}
    with pytest.raises(ValueError, match=message):
        set_controller_reference(owner, obj)


def test_cluster_scoped_owner_may_own_namespaced_and_uid_required() -> None:
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1", "uid": "u-n"}}
    obj: JSON = {"metadata": {"name": "x", "namespace": "ns"}}
    set_controller_reference(node, obj)
    assert controller_of(obj)["kind"] == "Node"  # type: ignore[index]
    with pytest.raises(ValueError, match="uid"):
        set_controller_reference({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"}}, {"metadata": {}})


# -- finalizers ----------------------------------------------------------------------------------

def test_add_finalizer_writes_once_and_not_when_present(fake: FakeClient) -> None:
    obj = fake.create(deployment())
    out = add_finalizer(fake, obj, "rook.io/cleanup")
    assert out["metadata"]["finalizers"] == ["rook.io/cleanup"]
    assert "finalizers" not in obj["metadata"]  # input not mutated
    before = writes(fake)
    again = add_finalizer(fake, out, "rook.io/cleanup")
    assert again is out
    assert writes(fake) == before


def test_add_finalizer_retries_conflict_with_fresh_read(fake: FakeClient) -> None:
    stale = fake.create(deployment())
    fake.edit("Deployment", "ns", "web", lambda o: o["metadata"].setdefault("labels", {}).update(x="y"))
    out = add_finalizer(fake, stale, "rook.io/cleanup")
    assert out["metadata"]["finalizers"] == ["rook.io/cleanup"]
    assert out["metadata"]["labels"]["x"] == "y"  # the other writer's change survived
    assert fake.update.call_count == 2  # type: ignore[attr-defined]


def test_add_finalizer_after_fresh_read_finds_it_already_there(fake: FakeClient) -> None:
    stale = fake.create(deployment())
    fake.edit("Deployment", "ns", "web", lambda o: o["metadata"].update(finalizers=["rook.io/cleanup"]))
    out = add_finalizer(fake, stale, "rook.io/cleanup")
    assert out["metadata"]["finalizers"] == ["rook.io/cleanup"]
    assert fake.update.call_count == 1  # type: ignore[attr-defined]  # the conflicting one only


def test_remove_finalizer(fake: FakeClient) -> None:
    d = deployment()
    d["metadata"]["finalizers"] = ["a/b", "rook.io/cleanup"]
    obj = fake.create(d)
    out = remove_finalizer(fake, obj, "rook.io/cleanup")
    assert out["metadata"]["finalizers"] == ["a/b"]
    out = remove_finalizer(fake, out, "a/b")
    assert "finalizers" not in out["metadata"]
    before = writes(fake)
    remove_finalizer(fake, out, "a/b")
    assert writes(fake) == before


def test_remove_finalizer_on_vanished_object(fake: FakeClient) -> None:
    d = deployment()
    d["metadata"]["finalizers"] = ["rook.io/cleanup"]
    obj = fake.create(d)
    del fake.store[("Deployment", "ns", "web")]
    assert remove_finalizer(fake, obj, "rook.io/cleanup") is obj


# -- conditions ----------------------------------------------------------------------------------

def test_set_condition_transition_semantics(mocker: Any) -> None:
    now = mocker.patch.object(times, "now", return_value="2024-01-01T00:00:00Z")
    status: JSON = {}
    assert set_condition(status, "Ready", "False", "Starting", "waiting", 1)
    cond = get_condition(status, "Ready")
    assert cond == {"type": "Ready", "status": "False", "lastTransitionTime": "2024-01-01T00:00:00Z",
                    "reason": "Starting", "message": "waiting", "observedGeneration": 1}
    now.return_value = "2024-01-02T00:00:00Z"
    assert not set_condition(status, "Ready", "False", "Starting", "waiting", 1)
    assert set_condition(status, "Ready", "False", "Starting", "still waiting", 2)
    assert cond["lastTransitionTime"] == "2024-01-01T00:00:00Z"  # status unchanged -> time kept
    assert cond["observedGeneration"] == 2
    now.return_value = "2024-01-03T00:00:00Z"
    assert set_condition(status, "Ready", "True", "Running", "ok", 2)
    assert cond["lastTransitionTime"] == "2024-01-03T00:00:00Z"
    assert set_condition(status, "Degraded", "False", "AsExpected", "", None)
    assert [c["type"] for c in status["conditions"]] == ["Ready", "Degraded"]
    assert "observedGeneration" not in status["conditions"][1]
    assert get_condition(status, "Nope") is None and get_condition(None, "Ready") is None
    with pytest.raises(ValueError):
        set_condition(status, "Ready", "yes", "r", "m")


# -- status --------------------------------------------------------------------------------------

def test_update_status_only_when_different(fake: FakeClient) -> None:
    obj = fake.create(deployment())
    out = update_status(fake, obj, {"phase": "Ready"})
    assert out["status"] == {"phase": "Ready"}
    assert fake.update_status.call_count == 1  # type: ignore[attr-defined]
    assert update_status(fake, out, {"phase": "Ready"}) is out
    assert fake.update_status.call_count == 1  # type: ignore[attr-defined]
    assert "status" not in obj


def test_update_status_conflict_rereads(fake: FakeClient) -> None:
    stale = fake.create(deployment())
    fake.edit("Deployment", "ns", "web", lambda o: o.update(status={"phase": "Old"}))
    out = update_status(fake, stale, {"phase": "New"})
    assert out["status"] == {"phase": "New"}
    assert fake.update_status.call_count == 2  # type: ignore[attr-defined]
    # Fresh read already has the wanted status: no second write.
    stale2 = fake.get("apps/v1", "Deployment", "web", "ns")
    fake.edit("Deployment", "ns", "web", lambda o: o.update(status={"phase": "Done"}))
    update_status(fake, stale2, {"phase": "Done"})
    assert fake.update_status.call_count == 3  # type: ignore[attr-defined]


def test_retry_on_conflict_bounds_and_passthrough() -> None:
    calls: list[int] = []
    slept: list[float] = []

    def always_conflict() -> None:
        calls.append(1)
        raise errors.conflict("x", "", "n", errors.STALE_OBJECT)

    with pytest.raises(errors.Conflict):
        retry_on_conflict(always_conflict, attempts=3, sleep=slept.append)
    assert len(calls) == 3 and len(slept) == 2

    def not_found() -> None:
        calls.append(1)
        raise errors.not_found("x", "", "n")

    with pytest.raises(errors.NotFound):
        retry_on_conflict(not_found, sleep=slept.append)
    assert len(calls) == 4
    assert retry_on_conflict(lambda: 42) == 42


# -- apply (the server-side apply itself is tested against envtest: tests/integration) -------------

def test_differs_ignores_server_defaults_normalised_values_and_foreign_fields() -> None:
    desired = deployment()
    live_obj = copy.deepcopy(desired)
    live_obj["metadata"].update(uid="u", resourceVersion="3", labels={"app": "web", "added": "by-someone"})
    container = live_obj["spec"]["template"]["spec"]["containers"][0]
    container.update(imagePullPolicy="IfNotPresent", terminationMessagePath="/dev/termination-log")
    live_obj["spec"]["template"].setdefault("metadata", {})["creationTimestamp"] = None
    live_obj["spec"]["progressDeadlineSeconds"] = 600
    assert not objects._differs(desired, live_obj, "Deployment", ())
    desired["spec"]["template"]["spec"]["containers"][0]["resources"] = {"limits": {"memory": "1024Mi"}}
    container["resources"] = {"limits": {"memory": "1Gi"}}
    assert not objects._differs(desired, live_obj, "Deployment", ())  # canonical quantity
    container["resources"] = {"limits": {"memory": "2Gi"}}
    assert objects._differs(desired, live_obj, "Deployment", ())
    container["resources"] = {"limits": {"memory": "1Gi"}}
    live_obj["spec"]["replicas"] = 7
    assert objects._differs(desired, live_obj, "Deployment", ())


def test_differs_matches_keyed_list_items_by_their_keys_and_spots_shadowing_items() -> None:
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
           "spec": {"ports": [{"name": "web", "port": 9090, "targetPort": 9090}]}}
    live_obj = copy.deepcopy(svc)
    live_obj["spec"]["ports"] = [{"name": "metrics", "port": 8080, "protocol": "TCP"},
                                 {"name": "web", "port": 9090, "protocol": "TCP", "targetPort": 9090}]
    assert not objects._differs(svc, live_obj, "Service", ())  # order and foreign items do not matter
    # a merge patch replaced our port with another number under the same name
    live_obj["spec"]["ports"] = [{"name": "web", "port": 9999, "protocol": "TCP", "targetPort": 9090}]
    assert objects._differs(svc, live_obj, "Service", ())
    ours = svc["spec"]["ports"][0]
    assert objects._shadowed_paths(svc, live_obj, "Service", (), "") == [("/spec/ports/0", ours)]
    live_obj["metadata"]["resourceVersion"] = "7"
    live_obj["spec"]["ports"].append({"name": "web", "port": 9998, "protocol": "TCP"})
    shadowed = objects._shadowed_paths(svc, live_obj, "Service", (), "")
    assert objects._repair_ops(shadowed, live_obj) == [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "7"},
        {"op": "replace", "path": "/spec/ports/0", "value": ours},
        {"op": "remove", "path": "/spec/ports/1"}]
    # our port is there already: the shadowing ones just go
    live_obj["spec"]["ports"].append({"name": "web", "port": 9090, "protocol": "TCP", "targetPort": 9090})
    shadowed = objects._shadowed_paths(svc, live_obj, "Service", (), "")
    assert objects._repair_ops(shadowed, live_obj)[1:] == [{"op": "remove", "path": "/spec/ports/1"},
                                                           {"op": "remove", "path": "/spec/ports/0"}]


def test_owned_but_not_desired() -> None:
    owned = {"f:data": {"f:a": {}, "f:b": {}}, "f:spec": {"f:ports": {'k:{"port":80,"protocol":"TCP"}': {
        ".": {}, "f:port": {}}}}}
    desired = {"data": {"a": "1", "b": "2"}, "spec": {"ports": [{"port": 80}]}}
    assert not objects._owned_but_not_desired(owned, desired)
    assert objects._owned_but_not_desired(owned, {"data": {"a": "1"}, "spec": {"ports": [{"port": 80}]}})
    assert objects._owned_but_not_desired(owned, {"data": {"a": "1", "b": "2"}, "spec": {"ports": [{"port": 81}]}})


def test_migration_moves_legacy_ownership_and_the_annotation_to_the_apply_manager() -> None:
    live_obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
        "name": "c", "annotations": {LAST_APPLIED_ANNOTATION: "{}"}, "managedFields": [
            {"manager": "rook-py", "operation": "Update", "apiVersion": "v1", "time": "t",
             "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:a": {}}}},
            {"manager": "human", "operation": "Update", "apiVersion": "v1", "time": "t",
             "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:z": {}}}}]}}
    assert objects._needs_migration(live_obj, "rook-test")
    migrated = objects._migrated(live_obj, "rook-test", "now")
    entries = {(e["manager"], e["operation"]): e["fieldsV1"] for e in migrated["metadata"]["managedFields"]}
    assert entries == {("human", "Update"): {"f:data": {"f:z": {}}},
                       ("rook-test", "Apply"): {"f:data": {"f:a": {}}, "f:metadata": {"f:annotations": {
                           f"f:{LAST_APPLIED_ANNOTATION}": {}}}}}
    done = copy.deepcopy(migrated)
    del done["metadata"]["annotations"]
    assert not objects._needs_migration(done, "rook-test")


def test_update_status_after_conflict_keeps_fresh_transition_times(mocker: Any) -> None:
    """A status computed from a stale copy must not move a condition's transition back in time."""
    from rook_py.framework.client import errors

    def cond(status: str, when: str) -> dict[str, Any]:
        return {"type": "Ready", "status": status, "lastTransitionTime": when, "reason": "R", "message": "m"}

    stale = {"apiVersion": "v1", "kind": "X", "metadata": {"name": "a", "resourceVersion": "1"}, "status": {}}
    fresh = {"apiVersion": "v1", "kind": "X", "metadata": {"name": "a", "resourceVersion": "2"},
             "status": {"conditions": [cond("True", "T1")], "phase": "Ready"}}
    client = mocker.Mock()
    client.update_status.side_effect = errors.Conflict("stale")
    client.get.return_value = fresh
    # Same condition status as the fresh object, later transition time: after the re-read there
    # is nothing left to write.
    result = objects.update_status(client, stale, {"conditions": [cond("True", "T2")], "phase": "Ready"})
    assert result is fresh
    assert client.update_status.call_count == 1

    # A real transition keeps its own time.
    client.update_status.side_effect = [errors.Conflict("stale"), {"ok": True}]
    client.update_status.call_count = 0
    objects.update_status(client, stale, {"conditions": [cond("False", "T3")], "phase": "Ready"})
    written = client.update_status.call_args_list[-1].args[0]["status"]["conditions"][0]
    assert written["lastTransitionTime"] == "T3"
