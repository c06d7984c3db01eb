"""Unit tests of the emulator's store: one resourceVersion counter, history window, snapshots."""

from __future__ import annotations

import pytest

from rook_py.envtest.apiserver.storage import ADDED, DELETED, MODIFIED, Store

CM = ("", "configmaps")
SECRET = ("", "secrets")


def _obj(name: str, rv: int, ns: str = "default", **extra: object) -> dict[str, object]:
    return {"metadata": {"name": name, "namespace": ns, "resourceVersion": str(rv)}, **extra}


def _put(store: Store, skey: tuple[str, str], name: str, **extra: object) -> int:
    with store.locked():
        rv = store.next_rv()
        store.put(skey, ("default", name), _obj(name, rv, **extra), rv)
        return rv


def test_resource_versions_are_global_and_strictly_increasing() -> None:
    store = Store(history_size=10)
    rvs = [_put(store, CM, "a"), _put(store, SECRET, "s"), _put(store, CM, "a", data=1)]
    assert rvs == sorted(rvs) and len(set(rvs)) == 3
    assert [e.type for e in store.history] == [ADDED, ADDED, MODIFIED]
    assert store.history[2].prev is not None and store.history[2].prev["metadata"]["resourceVersion"] == str(rvs[0])


def test_history_window_compacts_and_expires_old_resumes() -> None:
    store = Store(history_size=3)
    rvs = [_put(store, CM, f"o{i}") for i in range(5)]
    # the ring kept the last 3 events; resuming needs every event after the requested rv
    assert [e.rv for e in store.history] == rvs[2:]
    assert store.events_since(rvs[0], CM) is None
    replay = store.events_since(rvs[1], CM)
    assert replay is not None and [e.rv for e in replay] == rvs[2:]
    assert store.events_since(rvs[4], CM) == []


def test_events_since_filters_by_storage_key() -> None:
    store = Store()
    start = store.rv
    _put(store, CM, "a")
    _put(store, SECRET, "b")
    events = store.events_since(start, SECRET)
    assert events is not None and [e.skey for e in events] == [SECRET]


def test_snapshot_rebuilds_past_state() -> None:
    store = Store()
    rv_a = _put(store, CM, "a", data="one")
    _put(store, CM, "b")
    _put(store, CM, "a", data="two")
    with store.locked():
        rv = store.next_rv()
        store.remove(CM, ("default", "b"), _obj("b", rv), rv)
    past = store.snapshot(CM, rv_a)
    assert past is not None
    assert set(past) == {("default", "a")}
    assert past[("default", "a")]["data"] == "one"
    assert set(store.items(CM)) == {("default", "a")}


def test_compact_expires_everything_before_now() -> None:
    store = Store()
    rv = _put(store, CM, "a")
    current = store.compact()
    assert current == rv
    assert store.events_since(rv - 1, CM) is None
    assert store.events_since(rv, CM) == []


def test_watchers_receive_matching_events_in_commit_order_and_close() -> None:
    store = Store()
    with store.locked():
        watcher = store.add_watcher(CM, "default")
        other_ns = store.add_watcher(CM, "other")
    _put(store, CM, "a")
    _put(store, SECRET, "s")
    with store.locked():
        rv = store.next_rv()
        store.remove(CM, ("default", "a"), _obj("a", rv), rv)
    first, second = watcher.queue.get_nowait(), watcher.queue.get_nowait()
    assert first is not None and second is not None
    assert (first.type, second.type) == (ADDED, DELETED)
    assert watcher.queue.empty() and other_ns.queue.empty()
    assert store.close_watchers() == 2
    assert watcher.queue.get_nowait() is None
    assert store.watcher_count() == 0


def test_event_line_is_serialised_once() -> None:
    store = Store()
    _put(store, CM, "a")
    event = store.history[-1]
    line = event.line()
    assert line.endswith(b"\n") and b'"type":"ADDED"' in line
    assert event.line() is line


def test_history_size_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Store(history_size=0)
