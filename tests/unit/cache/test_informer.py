"""SharedIndexInformer, the factory and the CacheReader against a scripted lister-watcher."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from pytest_mock import MockerFixture

from rook_py.framework.cache import (
    CacheNotStartedError,
    CacheReader,
    CacheSyncTimeoutError,
    DeletedFinalStateUnknown,
    NamespaceOutOfScopeError,
    ResourceEventHandlerFuncs,
    SharedIndexInformer,
    SharedInformerFactory,
)
from rook_py.framework.cache.reflector import Backoff
from rook_py.framework.client import errors
from tests.unit.cache.fakes import FakeListerWatcher, cm
from tests.unit.workqueue.helpers import eventually

FAST = {"backoff": Backoff(initial=0.001, cap=0.005, jitter=0.0)}


class Recorder:
    """A handler recording (event, name, detail) tuples."""

    def __init__(self, delay: float = 0.0, gate: threading.Event | None = None) -> None:
        self.events: list[tuple[str, str, Any]] = []
        self.lock = threading.Lock()
        self.delay = delay
        self.gate = gate

    def _rec(self, e: tuple[str, str, Any]) -> None:
        if self.gate is not None:
            self.gate.wait(5)
        if self.delay:
            time.sleep(self.delay)
        with self.lock:
            self.events.append(e)

    def on_add(self, obj: Any, is_initial_list: bool) -> None:
        self._rec(("add", obj["metadata"]["name"], is_initial_list))

    def on_update(self, old: Any, new: Any) -> None:
        self._rec(("update", new["metadata"]["name"],
                   (old["metadata"]["resourceVersion"], new["metadata"]["resourceVersion"])))

    def on_delete(self, obj: Any) -> None:
        if isinstance(obj, DeletedFinalStateUnknown):
            self._rec(("delete-unknown", obj.key, obj.obj["metadata"]["resourceVersion"]))
        else:
            self._rec(("delete", obj["metadata"]["name"], obj["metadata"]["resourceVersion"]))

    def snapshot(self) -> list[tuple[str, str, Any]]:
        with self.lock:
            return list(self.events)


class Running:
    def __init__(self, informer: SharedIndexInformer) -> None:
        self.informer = informer
        self.stop = threading.Event()
        self.thread = threading.Thread(target=informer.run, args=(self.stop,), daemon=True)

    def __enter__(self) -> Running:
        self.thread.start()
        assert eventually(self.informer.has_synced)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5)
        assert not self.thread.is_alive()


def informer(lw: FakeListerWatcher, **kw: Any) -> SharedIndexInformer:
    kw.setdefault("reflector_options", dict(FAST))
    return SharedIndexInformer(lw, **kw)


def test_sync_then_events_in_order_to_every_handler() -> None:
    lw = FakeListerWatcher([cm("a", 1), cm("b", 1)], rv=10)
    inf = informer(lw)
    h1, h2 = Recorder(), Recorder()
    reg = inf.add_event_handler(h1)
    inf.add_event_handler(h2)
    with Running(inf):
        assert eventually(reg.has_synced)
        assert sorted(h1.snapshot()) == [("add", "a", True), ("add", "b", True)]
        lw.wait_watches(1)
        lw.modify(cm("a", 0))
        lw.create(cm("c", 0))
        lw.remove("default/b")
        assert eventually(lambda: len(h2.snapshot()) == 5)
    expected = [("update", "a", ("1", "11")), ("add", "c", False), ("delete", "b", "13")]
    assert h1.snapshot()[2:] == expected
    assert h2.snapshot()[2:] == expected
    assert sorted(inf.indexer.list_keys()) == ["default/a", "default/c"]
    assert inf.last_sync_resource_version() == "13"


def test_slow_handler_does_not_block_others_or_the_cache() -> None:
    lw = FakeListerWatcher(rv=10)
    inf = informer(lw)
    gate = threading.Event()
    slow, fast = Recorder(gate=gate), Recorder()
    inf.add_event_handler(slow)
    inf.add_event_handler(fast)
    with Running(inf):
        lw.wait_watches(1)
        for i in range(50):
            lw.create(cm(f"o{i}", 0))
        assert eventually(lambda: len(fast.snapshot()) == 50)
        assert len(inf.indexer) == 50
        assert slow.snapshot() == []  # still stuck on its first event, buffering the rest
        gate.set()
        assert eventually(lambda: len(slow.snapshot()) == 50)
    assert [e[1] for e in slow.snapshot()] == [f"o{i}" for i in range(50)]


def test_late_handler_gets_cache_as_initial_adds_then_live_events() -> None:
    lw = FakeListerWatcher([cm("a", 1), cm("b", 1)], rv=10)
    inf = informer(lw)
    with Running(inf):
        lw.wait_watches(1)
        lw.create(cm("c", 0))
        assert eventually(lambda: len(inf.indexer) == 3)
        late = Recorder()
        reg = inf.add_event_handler(late)
        assert eventually(reg.has_synced)
        lw.create(cm("d", 0))
        assert eventually(lambda: len(late.snapshot()) == 4)
    events = late.snapshot()
    assert sorted(events[:3]) == [("add", "a", True), ("add", "b", True), ("add", "c", True)]
    assert events[3] == ("add", "d", False)


def test_removed_handler_gets_nothing_more_and_others_go_on() -> None:
    lw = FakeListerWatcher([cm("a", 1)], rv=10)
    inf = informer(lw)
    leaving, staying = Recorder(), Recorder()
    reg = inf.add_event_handler(leaving)
    inf.add_event_handler(staying)
    with Running(inf):
        assert eventually(reg.has_synced)
        lw.wait_watches(1)
        lw.create(cm("b", 0))
        assert eventually(lambda: len(leaving.snapshot()) == 2 and len(staying.snapshot()) == 2)
        inf.remove_event_handler(reg)
        lw.create(cm("c", 0))
        lw.modify(cm("a", 0))
        assert eventually(lambda: len(staying.snapshot()) == 4)
        assert eventually(lambda: len(inf.indexer) == 3)
    assert leaving.snapshot() == [("add", "a", True), ("add", "b", False)]
    assert staying.snapshot()[2:] == [("add", "c", False), ("update", "a", ("1", "13"))]


def test_relist_after_gone_delivers_final_state_unknown_and_resync_for_unchanged() -> None:
    lw = FakeListerWatcher([cm("a", 1), cm("b", 1), cm("c", 1)], rv=10)
    inf = informer(lw)
    h = Recorder()
    inf.add_event_handler(h)
    with Running(inf):
        lw.wait_watches(1)
        lw.remove("default/b", emit=False)  # missed while the watch was down
        lw.modify(cm("c", 0), emit=False)  # missed too
        lw.streams[-1].send(errors.expired("10", "12"))
        lw.wait_watches(2)
        assert eventually(lambda: len(h.snapshot()) == 5)
    after = h.snapshot()[3:]
    # "a" came back unchanged: a resync, not delivered to a handler without a resync period.
    assert sorted(after) == [("delete-unknown", "default/b", "1"), ("update", "c", ("1", "12"))]
    assert sorted(inf.indexer.list_keys()) == ["default/a", "default/c"]


def test_resync_delivers_updates_only_to_handlers_with_a_period() -> None:
    lw = FakeListerWatcher([cm("a", 1)], rv=10)
    inf = informer(lw, min_resync_period=0.01)
    resyncing, quiet = Recorder(), Recorder()
    inf.add_event_handler(resyncing, resync_period=0.02)
    inf.add_event_handler(quiet, resync_period=0)
    with Running(inf):
        assert eventually(lambda: len(resyncing.snapshot()) >= 3)
    assert resyncing.snapshot()[1] == ("update", "a", ("1", "1"))
    assert quiet.snapshot() == [("add", "a", True)]


def test_transform_drops_managed_fields_by_default() -> None:
    lw = FakeListerWatcher([cm("a", 1, metadata={"managedFields": [{"manager": "kubectl"}]})], rv=10)
    inf = informer(lw)
    with Running(inf):
        lw.wait_watches(1)
        lw.create(cm("b", 0, metadata={"managedFields": [{"manager": "x"}]}))
        assert eventually(lambda: len(inf.indexer) == 2)
    assert all("managedFields" not in o["metadata"] for o in inf.indexer.list())


def test_custom_transform() -> None:
    lw = FakeListerWatcher([cm("a", 1, data={"big": "x" * 100})], rv=10)
    inf = informer(lw, transform=lambda o: {**o, "data": None})
    with Running(inf):
        pass
    assert inf.indexer.get_by_key("default/a")["data"] is None  # type: ignore[index]


def test_handler_exception_does_not_stop_delivery() -> None:
    lw = FakeListerWatcher([cm("a", 1), cm("b", 1)], rv=10)
    inf = informer(lw)
    seen: list[str] = []

    def on_add(obj: Any, initial: bool) -> None:
        seen.append(obj["metadata"]["name"])
        raise RuntimeError("handler bug")

    inf.add_event_handler(ResourceEventHandlerFuncs(add_func=on_add))
    with Running(inf):
        assert eventually(lambda: len(seen) == 2)


def test_mutation_detector_in_informer_reports(mocker: MockerFixture) -> None:
    lw = FakeListerWatcher([cm("a", 1, data={"k": "v"})], rv=10)
    inf = informer(lw, detect_mutations=True, mutation_check_period=0.01)
    detector = inf.indexer.mutation_detector
    assert detector is not None
    report = mocker.patch.object(detector, "_report")
    with Running(inf):
        inf.indexer.get_by_key("default/a")["data"]["k"] = "mutated"  # type: ignore[index]
        assert eventually(lambda: report.call_count >= 1)
    assert report.call_args.args[0].keys == ["default/a"]


def test_run_twice_and_add_handler_after_stop_are_errors() -> None:
    lw = FakeListerWatcher(rv=10)
    inf = informer(lw)
    with Running(inf):
        with pytest.raises(RuntimeError):
            inf.run(threading.Event())
    with pytest.raises(RuntimeError):
        inf.add_event_handler(Recorder())


# -- factory and reader -------------------------------------------------------------------------


class FakeClient:
    """Routes list/watch per (kind, namespace, selector) to FakeListerWatchers."""

    def __init__(self) -> None:
        self.lws: dict[tuple[str, str | None, str | None], FakeListerWatcher] = {}
        self.calls: list[tuple[str, str, str | None, str | None]] = []

    def lw(self, kind: str, namespace: str | None = None, selector: str | None = None) -> FakeListerWatcher:
        return self.lws.setdefault((kind, namespace, selector), FakeListerWatcher(rv=10))

    def resource_for(self, api_version: str, kind: str) -> Any:
        return type("RI", (), {"namespaced": kind != "Node"})()

    def list(self, api_version: str, kind: str, namespace: str | None = None, *,
             label_selector: str | None = None, field_selector: str | None = None,
             limit: int | None = None, continue_: str | None = None,
             resource_version: str | None = None) -> dict[str, Any]:
        self.calls.append(("list", kind, namespace, label_selector))
        return self.lw(kind, namespace, label_selector).list(limit=limit, continue_=continue_,
                                                            resource_version=resource_version)

    def watch(self, api_version: str, kind: str, namespace: str | None = None, **kw: Any) -> Any:
        assert kw["allow_watch_bookmarks"] is True
        return self.lw(kind, namespace, kw["label_selector"]).watch(
            resource_version=kw["resource_version"], timeout_seconds=kw["timeout_seconds"],
            read_timeout=kw["read_timeout"])


def factory(client: FakeClient, **kw: Any) -> SharedInformerFactory:
    return SharedInformerFactory(client, informer_options={"reflector_options": dict(FAST)}, **kw)


def test_factory_shares_informers_by_key_and_syncs() -> None:
    client = FakeClient()
    client.lw("ConfigMap").objects["default/a"] = cm("a", 1)
    f = factory(client)
    a = f.informer("v1", "ConfigMap")
    assert f.informer("v1", "ConfigMap") is a
    assert f.informer("v1", "ConfigMap", namespace="ns1") is not a
    assert f.informer("v1", "ConfigMap", label_selector="app=x") is not a
    assert f.informer("v1", "Secret") is not a
    assert len(f.informers()) == 4
    stop = threading.Event()
    try:
        f.start(stop)
        assert f.wait_for_cache_sync(5)
        assert a.indexer.list_keys() == ["default/a"]
        assert ("list", "ConfigMap", "ns1", None) in client.calls
        assert ("list", "ConfigMap", None, "app=x") in client.calls
    finally:
        stop.set()
        f.join(5)
    assert all(i.is_stopped() for i in f.informers().values())


def test_factory_namespace_applies_to_namespaced_kinds_only() -> None:
    f = factory(FakeClient(), namespace="team")
    assert f.informer("v1", "ConfigMap").lister_watcher.namespace == "team"  # type: ignore[attr-defined]
    assert f.informer("v1", "Node").lister_watcher.namespace is None  # type: ignore[attr-defined]


def test_wait_for_cache_sync_times_out_when_listing_fails() -> None:
    client = FakeClient()
    client.lw("ConfigMap").list_errors = [errors.Forbidden("no")] * 1000
    f = factory(client)
    f.informer("v1", "ConfigMap")
    stop = threading.Event()
    try:
        f.start(stop)
        assert f.wait_for_cache_sync(0.05) is False
    finally:
        stop.set()
        f.join(5)


def test_cache_reader_get_and_list() -> None:
    client = FakeClient()
    lw = client.lw("ConfigMap")
    for o in (cm("a", 1, metadata={"labels": {"app": "x", "tier": "db"}}),
              cm("b", 1, metadata={"labels": {"app": "y"}}),
              cm("c", 1, namespace="other", metadata={"labels": {"app": "x"}})):
        lw.objects[lw.key(o)] = o
    f = factory(client)
    reader = CacheReader(f, sync_timeout=5)
    with pytest.raises(CacheNotStartedError):
        reader.get("v1", "ConfigMap", "a", "default")
    stop = threading.Event()
    try:
        f.start(stop)  # nothing created yet: the reader creates and starts the informer on demand
        got = reader.get("v1", "ConfigMap", "a", "default")
        assert got is not None and got["metadata"]["name"] == "a"
        assert reader.get("v1", "ConfigMap", "zzz", "default") is None
        names = lambda objs: sorted(o["metadata"]["name"] for o in objs)  # noqa: E731
        assert names(reader.list("v1", "ConfigMap")) == ["a", "b", "c"]
        assert names(reader.list("v1", "ConfigMap", "default")) == ["a", "b"]
        assert names(reader.list("v1", "ConfigMap", label_selector="app=x")) == ["a", "c"]
        assert names(reader.list("v1", "ConfigMap", "default", label_selector="app in (x, y),!tier")) == ["b"]
        assert len(f.informers()) == 1
    finally:
        stop.set()
        f.join(5)


def test_cache_reader_refuses_namespaces_outside_its_scope() -> None:
    client = FakeClient()
    lw = client.lw("ConfigMap", "default")
    lw.objects[lw.key(cm("a", 1))] = cm("a", 1)
    node_lw = client.lw("Node")
    node_lw.objects["n1"] = cm("n1", 1, namespace=None)
    f = factory(client, namespace="default")
    reader = CacheReader(f, sync_timeout=5)
    stop = threading.Event()
    try:
        f.start(stop)
        assert reader.get("v1", "ConfigMap", "a", "default") is not None
        assert [o["metadata"]["name"] for o in reader.list("v1", "ConfigMap")] == ["a"]
        # Not "not found": the cache cannot know, so it says so.
        with pytest.raises(NamespaceOutOfScopeError, match="watches only namespace 'default'"):
            reader.get("v1", "ConfigMap", "a", "other")
        with pytest.raises(NamespaceOutOfScopeError):
            reader.list("v1", "ConfigMap", "other")
        # Cluster-scoped kinds are outside any namespace scope.
        assert reader.get("v1", "Node", "n1") is not None
    finally:
        stop.set()
        f.join(5)


def test_cache_reader_sync_timeout() -> None:
    client = FakeClient()
    client.lw("ConfigMap").list_errors = [errors.InternalError("no")] * 1000
    f = factory(client)
    stop = threading.Event()
    try:
        f.start(stop)
        with pytest.raises(CacheSyncTimeoutError):
            CacheReader(f, sync_timeout=0.05).list("v1", "ConfigMap")
    finally:
        stop.set()
        f.join(5)


def test_wait_for_sync_wakes_without_polling() -> None:
    lw = FakeListerWatcher([cm("a", 1)], rv=10)
    gate = threading.Event()
    real_list = lw.list

    def slow_list(**kw: Any) -> dict[str, Any]:
        gate.wait(5)
        return real_list(**kw)

    lw.list = slow_list  # type: ignore[method-assign]
    inf = informer(lw)
    stop = threading.Event()
    t = threading.Thread(target=inf.run, args=(stop,), daemon=True)
    t.start()
    try:
        assert inf.wait_for_sync(0.02) is False
        gate.set()
        assert inf.wait_for_sync(5) is True
        assert inf.has_synced()
    finally:
        stop.set()
        t.join(5)


def test_late_handler_cannot_get_a_resync_the_informer_does_not_run() -> None:
    lw = FakeListerWatcher([cm("a", 1)], rv=10)
    inf = informer(lw, min_resync_period=0.01)
    with Running(inf):
        late = Recorder()
        reg = inf.add_event_handler(late, resync_period=0.02)
        assert eventually(reg.has_synced)
        time.sleep(0.1)  # several would-be resync periods
    assert late.snapshot() == [("add", "a", True)]
    assert inf.resync_check_period == 0


def test_shorter_period_after_start_is_rounded_up_to_the_running_one() -> None:
    lw = FakeListerWatcher([cm("a", 1)], rv=10)
    inf = informer(lw, min_resync_period=0.01)
    early = Recorder()
    inf.add_event_handler(early, resync_period=0.05)
    with Running(inf):
        late = Recorder()
        reg = inf.add_event_handler(late, resync_period=0.01)
        assert reg._listener.resync_period == 0.05
        assert eventually(lambda: len(late.snapshot()) >= 2)


def test_registration_wait_for_sync_blocks_until_this_handler_got_the_initial_list() -> None:
    lw = FakeListerWatcher([cm("a", 1), cm("b", 1)], rv=10)
    inf = informer(lw)
    gate = threading.Event()
    slow = Recorder(gate=gate)
    reg = inf.add_event_handler(slow)
    with Running(inf):
        # The informer synced, but this handler is stuck on its first initial add.
        assert not reg.wait_for_sync(0.05)
        assert not reg.has_synced()
        woke: list[bool] = []
        waiter = threading.Thread(target=lambda: woke.append(reg.wait_for_sync(5)))
        waiter.start()
        gate.set()
        waiter.join(5)
        assert woke == [True]
        assert reg.has_synced()
        assert sorted(slow.snapshot()) == [("add", "a", True), ("add", "b", True)]


def test_registration_wait_for_sync_of_a_late_handler_on_an_empty_cache() -> None:
    inf = informer(FakeListerWatcher(rv=10))
    with Running(inf):
        reg = inf.add_event_handler(Recorder())
        assert reg.wait_for_sync(5)


def test_registration_wait_for_sync_returns_when_stopped() -> None:
    lw = FakeListerWatcher([cm("a", 1)], rv=10)
    inf = informer(lw)
    gate = threading.Event()
    reg = inf.add_event_handler(Recorder(gate=gate))
    running = Running(inf).__enter__()
    outcome: list[bool] = []
    waiter = threading.Thread(target=lambda: outcome.append(reg.wait_for_sync(30)))
    waiter.start()
    running.stop.set()
    gate.set()
    waiter.join(10)
    running.thread.join(5)
    assert not waiter.is_alive() and len(outcome) == 1
