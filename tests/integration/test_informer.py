"""Informers on envtest: sync, live events, watch resume after a dropped stream, relist after 410."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from rook_py.envtest import Environment, emulator_only
from rook_py.framework.cache import (
    Backoff,
    CacheReader,
    DeletedFinalStateUnknown,
    SharedIndexInformer,
    SharedInformerFactory,
)
from tests.support.waiting import eventually

NS = "default"


def cm(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": NS, "labels": {"suite": "informer"}},
            "data": data}


class Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: list[tuple[str, Any]] = []

    def on_add(self, obj: Any, is_initial_list: bool) -> None:
        with self.lock:
            self.events.append(("add", (obj["metadata"]["name"], is_initial_list)))

    def on_update(self, old: Any, new: Any) -> None:
        with self.lock:
            self.events.append(("update", (new["metadata"]["name"], old.get("data"), new.get("data"))))

    def on_delete(self, obj: Any) -> None:
        with self.lock:
            self.events.append(("delete", obj))

    def of(self, kind: str) -> list[Any]:
        with self.lock:
            return [e[1] for e in self.events if e[0] == kind]


@pytest.fixture
def running(envtest: Environment) -> Iterator[tuple[Any, SharedInformerFactory, threading.Event]]:
    client = envtest.client()
    factory = SharedInformerFactory(client, namespace=NS, informer_options={
        "reflector_options": {"backoff": Backoff(initial=0.05, cap=0.2, jitter=0.5)}})
    stop = threading.Event()
    yield client, factory, stop
    stop.set()
    factory.join(10)


def start(factory: SharedInformerFactory, stop: threading.Event,
          recorder: Recorder) -> SharedIndexInformer:
    informer = factory.informer("v1", "ConfigMap")
    registration = informer.add_event_handler(recorder)
    factory.start(stop)
    assert factory.wait_for_cache_sync(30)
    # The cache is synced; the handler receives the initial list on its own thread, a moment later.
    assert eventually(registration.has_synced)
    assert eventually(lambda: informer.reflector.watches >= 1)
    return informer


def names(objs: list[Any]) -> list[str]:
    return sorted(o["metadata"]["name"] for o in objs)


def test_informer_syncs_then_follows_changes(running: Any) -> None:
    client, factory, stop = running
    for n in ("a", "b", "c"):
        client.create(cm(n, v="1"))
    rec = Recorder()
    informer = start(factory, stop, rec)
    assert sorted(rec.of("add")) == [("a", True), ("b", True), ("c", True)]
    assert {"default/a", "default/b", "default/c"} <= set(informer.indexer.list_keys())

    a = client.get("v1", "ConfigMap", "a", NS)
    a["data"] = {"v": "2"}
    client.update(a)
    client.create(cm("d"))
    client.delete("v1", "ConfigMap", "b", NS)
    assert eventually(lambda: len(rec.of("delete")) == 1)
    assert ("a", {"v": "1"}, {"v": "2"}) in rec.of("update")
    assert ("d", False) in rec.of("add")
    gone = rec.of("delete")[0]
    assert gone["metadata"]["name"] == "b"
    assert informer.indexer.get_by_key("default/b") is None
    # Objects are cached without managedFields (the default transform).
    cached = informer.indexer.get_by_key("default/a")
    assert cached is not None and "managedFields" not in cached["metadata"]
    assert cached["data"] == {"v": "2"}


@emulator_only(reason="fault injection: dropping watch streams")
def test_watch_resumes_after_dropped_stream_without_relist(running: Any, envtest: Environment) -> None:
    client, factory, stop = running
    client.create(cm("a"))
    rec = Recorder()
    informer = start(factory, stop, rec)
    rv_before = informer.last_sync_resource_version()
    assert envtest.faults.close_watches() >= 1
    client.create(cm("after-drop"))
    assert eventually(lambda: ("after-drop", False) in rec.of("add"))
    assert informer.reflector.watches >= 2
    assert informer.reflector.lists == 1  # resumed from its resourceVersion, no relist
    assert int(informer.last_sync_resource_version() or 0) > int(rv_before or 0)


@emulator_only(reason="fault injection: watch latency and history compaction")
def test_relist_after_410_reports_missed_deletions(running: Any, envtest: Environment) -> None:
    client, factory, stop = running
    for n in ("keep", "gone", "changed"):
        client.create(cm(n, v="1"))
    rec = Recorder()
    informer = start(factory, stop, rec)

    # Hold the informer's next watch request in the server long enough for changes to happen
    # and the history to be compacted: it resumes from a resourceVersion the server forgot.
    envtest.faults.set_latency(1.0, verb="watch")
    assert envtest.faults.close_watches() >= 1
    client.delete("v1", "ConfigMap", "gone", NS)
    changed = client.get("v1", "ConfigMap", "changed", NS)
    changed["data"] = {"v": "2"}
    client.update(changed)
    envtest.faults.compact()

    assert eventually(lambda: informer.reflector.lists >= 2 and len(rec.of("delete")) == 1)
    envtest.faults.reset()
    tomb = rec.of("delete")[0]
    assert isinstance(tomb, DeletedFinalStateUnknown)
    assert tomb.key == "default/gone"
    assert tomb.obj is not None and tomb.obj["metadata"]["name"] == "gone"
    assert eventually(lambda: ("changed", {"v": "1"}, {"v": "2"}) in rec.of("update"))
    # "keep" came back unchanged from the relist: a resync, not an update for this handler.
    assert not [u for u in rec.of("update") if u[0] == "keep"]
    assert informer.indexer.get_by_key("default/gone") is None

    # And the informer keeps following changes after the relist.
    client.create(cm("later"))
    assert eventually(lambda: ("later", False) in rec.of("add"))


def test_late_handler_and_cache_reader(running: Any) -> None:
    client, factory, stop = running
    client.create(cm("x1"))
    other = cm("x2")
    other["metadata"]["labels"] = {"suite": "other"}
    client.create(other)
    factory.start(stop)
    reader = CacheReader(factory, sync_timeout=30)
    assert reader.get("v1", "ConfigMap", "x1", NS) is not None
    assert reader.get("v1", "ConfigMap", "nope", NS) is None
    assert names(reader.list("v1", "ConfigMap", NS, label_selector="suite=informer")) == ["x1"]
    assert "x2" in names(reader.list("v1", "ConfigMap", NS))

    informer = factory.informer("v1", "ConfigMap")
    late = Recorder()
    reg = informer.add_event_handler(late)
    assert eventually(reg.has_synced)
    assert {("x1", True), ("x2", True)} <= set(late.of("add"))
    client.create(cm("x3"))
    assert eventually(lambda: ("x3", False) in late.of("add"))
    assert eventually(lambda: reader.get("v1", "ConfigMap", "x3", NS) is not None)


@emulator_only(reason="fault injection: history compaction between two pages")
def test_expired_continue_token_restarts_the_list(envtest: Environment) -> None:
    client = envtest.client()
    for i in range(5):
        client.create(cm(f"p{i}"))
    continues: list[str | None] = []

    class CompactAfterFirstPage:
        """The real client, but the server's history is compacted right after the first page."""

        def __getattr__(self, name: str) -> Any:
            return getattr(client, name)

        def list(self, *args: Any, **kwargs: Any) -> Any:
            continues.append(kwargs.get("continue_"))
            if kwargs.get("resource_version") == "0":
                # v1.28's watch cache answers "0" whole; ask for the consistent, paged read a
                # server whose cache pages (or a compacted "0") would give.
                kwargs["resource_version"] = None
            page = client.list(*args, **kwargs)
            if len(continues) == 1:
                client.create(cm("late"))  # moves the resourceVersion past the list's snapshot
                envtest.faults.compact()
            return page

    factory = SharedInformerFactory(CompactAfterFirstPage(), namespace=NS, informer_options={
        "reflector_options": {"page_size": 2, "backoff": Backoff(initial=0.05, cap=0.2)}})
    stop = threading.Event()
    try:
        informer = factory.informer("v1", "ConfigMap")
        factory.start(stop)
        assert factory.wait_for_cache_sync(30)
        assert continues[0] is None and continues[1] is not None  # page 2 answered 410...
        assert continues[2] is None  # ...so the list started over
        assert informer.reflector.lists == 1
        keys = set(informer.indexer.list_keys())
        assert {f"default/p{i}" for i in range(5)} | {"default/late"} <= keys
    finally:
        stop.set()
        factory.join(10)
