from __future__ import annotations

from typing import Any

import pytest
from pytest_mock import MockerFixture

from rook_py.framework.controller import (
    Channel,
    ControllerBuilder,
    EnqueueRequestForObject,
    GenerationChangedPredicate,
    LabelSelectorPredicate,
    Request,
)
from tests.unit.controller.fakes import FakeCache, FakeObjectClient

CLUSTER = ("chubaofs.rook.io/v1alpha1", "ChubaoCluster")


class FakeManager:
    def __init__(self) -> None:
        self.client = FakeObjectClient()
        self.cache = FakeCache()
        self.added: list[Any] = []

    def add(self, runnable: Any) -> None:
        self.added.append(runnable)


class Noop:
    def reconcile(self, request: Request) -> None:
        return None


def cluster(name: str, gen: int = 1, rv: str = "1", labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": CLUSTER[0], "kind": CLUSTER[1],
            "metadata": {"name": name, "namespace": "ns", "generation": gen, "resourceVersion": rv,
                         "labels": labels or {}}}


def child(name: str, owner: str) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": name, "namespace": "ns", "ownerReferences": [
                {"apiVersion": CLUSTER[0], "kind": CLUSTER[1], "name": owner, "uid": "u", "controller": True}]}}


def queued(ctrl: Any) -> list[Request]:
    items = []
    while ctrl.queue.len():
        item, _ = ctrl.queue.get()
        ctrl.queue.done(item)
        items.append(item)
    return items


def test_builder_wires_for_owns_watches_with_predicates() -> None:
    mgr = FakeManager()
    ctrl = (ControllerBuilder(mgr)
            .for_(*CLUSTER, predicates=[GenerationChangedPredicate()])
            .owns("apps/v1", "StatefulSet")
            .watches("v1", "ConfigMap", lambda o: [Request("ns", o["metadata"]["labels"]["cluster"])])
            .with_event_filter(LabelSelectorPredicate({"matchExpressions": [
                {"key": "ignore", "operator": "DoesNotExist"}]}))
            .with_options(max_concurrent_reconciles=3)
            .complete(Noop()))
    assert mgr.added == [ctrl]
    assert ctrl.name == "chubaocluster" and ctrl.max_concurrent_reconciles == 3
    assert ctrl.need_leader_election()
    assert set(mgr.cache.informers) == {(*CLUSTER, None), ("apps/v1", "StatefulSet", None),
                                        ("v1", "ConfigMap", None)}
    # Sources start with the controller; start them by hand to drive events without workers.
    for src in ctrl._sources:
        src.start(ctrl.queue)
    inf = mgr.cache.informers
    inf[(*CLUSTER, None)].emit_update(cluster("c1", 1, "1"), cluster("c1", 1, "2"))  # status write
    inf[(*CLUSTER, None)].emit_add(cluster("c2"))
    inf[(*CLUSTER, None)].emit_add(cluster("c3", labels={"ignore": "yes"}))  # global filter
    inf[("apps/v1", "StatefulSet", None)].emit_add(child("sts", "c4"))
    inf[("v1", "ConfigMap", None)].emit_add({"metadata": {"name": "cm", "namespace": "ns",
                                                          "labels": {"cluster": "c5"}}})
    assert queued(ctrl) == [Request("ns", n) for n in ("c2", "c4", "c5")]


def test_watches_source_adds_a_hand_built_source_without_global_predicates() -> None:
    mgr = FakeManager()
    channel = Channel(EnqueueRequestForObject())
    ctrl = (ControllerBuilder(mgr)
            .for_(*CLUSTER)
            .watches_source(channel)
            .with_event_filter(LabelSelectorPredicate({"matchLabels": {"pick": "yes"}}))
            .complete(Noop()))
    assert channel in ctrl._sources
    channel.trigger(cluster("triggered-early"))  # held until the source starts
    for src in ctrl._sources:
        src.start(ctrl.queue)
    channel.trigger(cluster("triggered"))  # no "pick" label: the global filter does not apply
    mgr.cache.informers[(*CLUSTER, None)].emit_add(cluster("filtered"))  # the for_ watch is filtered
    assert queued(ctrl) == [Request("ns", "triggered-early"), Request("ns", "triggered")]


def test_owns_uses_owner_scope_from_discovery() -> None:
    mgr = FakeManager()
    mgr.client.namespaced = False
    ctrl = ControllerBuilder(mgr).named("nodes").for_("v1", "Node").owns("v1", "Pod").complete(Noop())
    for src in ctrl._sources:
        src.start(ctrl.queue)
    mgr.cache.informers[("v1", "Pod", None)].emit_add(
        {"metadata": {"name": "p", "namespace": "ns", "ownerReferences": [
            {"apiVersion": "v1", "kind": "Node", "name": "n1", "controller": True}]}})
    assert queued(ctrl) == [Request(None, "n1")]


def test_builder_errors(mocker: MockerFixture) -> None:
    mgr = FakeManager()
    with pytest.raises(ValueError):
        ControllerBuilder(mgr).owns("v1", "Pod").complete(Noop())
    with pytest.raises(ValueError):
        ControllerBuilder(mgr).for_("v1", "Pod").for_("v1", "Node")
    with pytest.raises(TypeError):
        ControllerBuilder(mgr).for_("v1", "Pod").complete(object())  # type: ignore[arg-type]
    assert mgr.added == []


def test_builder_passes_namespace_and_selector_to_the_factory(mocker: MockerFixture) -> None:
    mgr = FakeManager()
    spy = mocker.spy(mgr.cache, "informer")
    ControllerBuilder(mgr).for_("v1", "ConfigMap", namespace="team-a", label_selector="app=x").complete(Noop())
    spy.assert_called_once_with("v1", "ConfigMap", namespace="team-a", label_selector="app=x")


def test_options_reach_the_controller() -> None:
    mgr = FakeManager()
    mgr.options = type("Opts", (), {"cache_sync_timeout": 7.0})()  # type: ignore[attr-defined]
    ctrl = (ControllerBuilder(mgr).for_("v1", "Node")
            .with_options(need_leader_election=False).complete(Noop()))
    assert not ctrl.need_leader_election() and ctrl.cache_sync_timeout == 7.0
