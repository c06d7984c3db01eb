from __future__ import annotations

from typing import Any

from rook_py.framework.controller import (
    Channel,
    EnqueueRequestForObject,
    EnqueueRequestForOwner,
    EnqueueRequestsFromMapFunc,
    EventHandler,
    FuncPredicate,
    GenerationChangedPredicate,
    Kind,
    Request,
)
from tests.unit.controller.fakes import FakeInformer


class ListQueue:
    def __init__(self) -> None:
        self.items: list[Any] = []

    def add(self, item: Any) -> None:
        self.items.append(item)


def owned(name: str, *owners: tuple[str, str, str, bool], namespace: str | None = "ns") -> dict[str, Any]:
    refs = [{"apiVersion": av, "kind": k, "name": n, "uid": f"uid-{n}", "controller": c}
            for av, k, n, c in owners]
    meta: dict[str, Any] = {"name": name, "ownerReferences": refs, "generation": 1}
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta}


def test_enqueue_for_object() -> None:
    q = ListQueue()
    h = EnqueueRequestForObject()
    h.create(owned("a"), q)
    h.update(owned("a"), owned("a"), q)
    h.delete(owned("b", namespace=None), q)
    h.generic({"metadata": {}}, q)  # nameless: ignored
    assert q.items == [Request("ns", "a"), Request("ns", "a"), Request(None, "b")]


def test_enqueue_for_owner_matches_group_and_kind_and_controller_only() -> None:
    q = ListQueue()
    h = EnqueueRequestForOwner("chubaofs.rook.io/v1alpha1", "ChubaoCluster")
    child = owned("svc",
                  ("chubaofs.rook.io/v1beta1", "ChubaoCluster", "c1", True),   # other version: same group
                  ("chubaofs.rook.io/v1alpha1", "ChubaoCluster", "c2", False),  # not the controller
                  ("other.io/v1alpha1", "ChubaoCluster", "c3", True),          # other group
                  ("chubaofs.rook.io/v1alpha1", "ChubaoObjectStore", "c4", True))
    h.create(child, q)
    assert q.items == [Request("ns", "c1")]
    all_owners = EnqueueRequestForOwner("chubaofs.rook.io/v1alpha1", "ChubaoCluster", only_controller=False)
    assert all_owners.owners(child) == [Request("ns", "c1"), Request("ns", "c2")]


def test_enqueue_for_owner_update_wakes_old_and_new_owner() -> None:
    q = ListQueue()
    h = EnqueueRequestForOwner("apps/v1", "Deployment")
    old = owned("rs", ("apps/v1", "Deployment", "old-owner", True))
    new = owned("rs", ("apps/v1", "Deployment", "new-owner", True))
    h.update(old, new, q)
    assert q.items == [Request("ns", "old-owner"), Request("ns", "new-owner")]
    q.items.clear()
    h.update(new, new, q)  # same owner: enqueued once
    assert q.items == [Request("ns", "new-owner")]


def test_enqueue_for_cluster_scoped_owner_has_no_namespace() -> None:
    q = ListQueue()
    EnqueueRequestForOwner("v1", "Node", owner_namespaced=False).create(
        owned("pod", ("v1", "Node", "node-1", True)), q)
    assert q.items == [Request(None, "node-1")]


def test_enqueue_mapped_uses_old_and_new() -> None:
    q = ListQueue()
    h = EnqueueRequestsFromMapFunc(lambda o: [Request("ns", o["metadata"]["labels"]["target"])])
    old = {"metadata": {"name": "x", "labels": {"target": "t1"}}}
    new = {"metadata": {"name": "x", "labels": {"target": "t2"}}}
    h.update(old, new, q)
    h.delete(new, q)
    assert q.items == [Request("ns", "t1"), Request("ns", "t2"), Request("ns", "t2")]


def test_kind_source_applies_predicates_and_unwraps_tombstones() -> None:
    informer, q = FakeInformer(), ListQueue()
    src = Kind(informer, EnqueueRequestForObject(), [GenerationChangedPredicate()])
    src.start(q)
    a1 = owned("a")
    a1_status = {**a1, "metadata": {**a1["metadata"], "resourceVersion": "2"}}
    a2 = {**a1, "metadata": {**a1["metadata"], "generation": 2}}
    informer.emit_add(a1)
    informer.emit_update(a1, a1_status)  # filtered: generation unchanged
    informer.emit_update(a1, a2)

    class Tombstone:
        def __init__(self, key: str, obj: dict[str, Any]) -> None:
            self.key, self.obj = key, obj

    informer.emit_delete(Tombstone("ns/b", owned("b")))
    assert q.items == [Request("ns", "a"), Request("ns", "a"), Request("ns", "b")]
    assert src.has_synced()


def test_kind_source_survives_a_failing_handler() -> None:
    class Boom(EventHandler):
        def create(self, obj: dict[str, Any], queue: Any) -> None:
            raise RuntimeError("mapper bug")

    informer, q = FakeInformer(), ListQueue()
    Kind(informer, Boom()).start(q)
    Kind(informer, EnqueueRequestForObject()).start(q)
    informer.emit_add(owned("a"))  # first handler raises; the second still sees the event
    assert q.items == [Request("ns", "a")]


def test_channel_source_buffers_until_started_and_filters() -> None:
    ch = Channel(EnqueueRequestForObject(), [FuncPredicate(generic=lambda o: o["metadata"]["name"] != "skip")])
    ch.trigger(owned("early"))
    q = ListQueue()
    ch.start(q)
    ch.trigger(owned("late"))
    ch.trigger(owned("skip"))
    assert q.items == [Request("ns", "early"), Request("ns", "late")]
