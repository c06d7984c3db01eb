"""Keys, the thread-safe indexer and the mutation detector."""

from __future__ import annotations

import copy
import threading

import pytest

from rook_py.framework.cache import (
    CONTROLLER_OWNER_INDEX,
    NAMESPACE_INDEX,
    CacheMutationError,
    DeletedFinalStateUnknown,
    Indexer,
    meta_namespace_key,
    mutation_detection_enabled,
    split_key,
)
from tests.unit.cache.fakes import cm


def owned(name: str, owner_uid: str, controller: bool = True, **kw: object) -> dict[str, object]:
    ref = {"apiVersion": "v1", "kind": "X", "name": "o", "uid": owner_uid, "controller": controller}
    return cm(name, 1, metadata={"ownerReferences": [ref]}, **kw)


def test_keys_round_trip() -> None:
    assert meta_namespace_key(cm("a", 1)) == "default/a"
    assert meta_namespace_key(cm("node-1", 1, namespace=None)) == "node-1"
    assert meta_namespace_key(DeletedFinalStateUnknown("ns/x", None)) == "ns/x"
    assert split_key("default/a") == ("default", "a")
    assert split_key("node-1") == (None, "node-1")
    with pytest.raises(ValueError):
        split_key("a/b/c")


def test_add_update_delete_and_namespace_index() -> None:
    idx = Indexer()
    a, b, c = cm("a", 1), cm("b", 1), cm("c", 1, namespace="other")
    for o in (a, b, c):
        idx.add(o)
    assert len(idx) == 3
    assert idx.get_by_key("default/a") is a  # shared, not copied
    assert sorted(o["metadata"]["name"] for o in idx.by_index(NAMESPACE_INDEX, "default")) == ["a", "b"]
    assert sorted(idx.index_values(NAMESPACE_INDEX)) == ["default", "other"]

    moved = cm("c", 2, namespace="other", data={"k": "v"})
    idx.update(moved)
    assert idx.get(moved) is moved
    idx.delete(a)
    assert idx.get_by_key("default/a") is None
    assert [o["metadata"]["name"] for o in idx.by_index(NAMESPACE_INDEX, "default")] == ["b"]
    idx.delete(DeletedFinalStateUnknown("default/b", None))
    assert idx.by_index(NAMESPACE_INDEX, "default") == []
    assert idx.index_values(NAMESPACE_INDEX) == ["other"]  # empty buckets are dropped
    idx.delete(cm("missing", 1))  # deleting an unknown object is a no-op


def test_controller_owner_index_ignores_non_controller_refs() -> None:
    idx = Indexer()
    idx.add(owned("a", "u1"))
    idx.add(owned("b", "u1"))
    idx.add(owned("c", "u2", controller=False))
    assert sorted(idx.index_keys(CONTROLLER_OWNER_INDEX, "u1")) == ["default/a", "default/b"]
    assert idx.index_keys(CONTROLLER_OWNER_INDEX, "u2") == []
    # Ownership change moves the object between index values.
    idx.update(owned("a", "u3"))
    assert idx.index_keys(CONTROLLER_OWNER_INDEX, "u1") == ["default/b"]
    assert idx.index_keys(CONTROLLER_OWNER_INDEX, "u3") == ["default/a"]


def test_custom_multi_valued_index() -> None:
    def by_label_values(obj: dict) -> list[str]:
        return sorted((obj["metadata"].get("labels") or {}).values())

    idx = Indexer({"label-values": by_label_values})
    idx.add(cm("a", 1, metadata={"labels": {"x": "red", "y": "blue"}}))
    idx.add(cm("b", 1, metadata={"labels": {"x": "red"}}))
    assert sorted(idx.index_keys("label-values", "red")) == ["default/a", "default/b"]
    assert idx.index_keys("label-values", "blue") == ["default/a"]
    idx.update(cm("a", 2, metadata={"labels": {"x": "green"}}))
    assert idx.index_keys("label-values", "red") == ["default/b"]
    assert idx.index_keys("label-values", "blue") == []
    with pytest.raises(KeyError):
        idx.by_index("nope", "x")


def test_add_indexers_indexes_existing_items_and_rejects_duplicates() -> None:
    idx = Indexer()
    idx.add(cm("a", 1, data={"k": "v"}))
    idx.add_indexers({"has-data": lambda o: ["yes"] if o.get("data") else []})
    assert idx.index_keys("has-data", "yes") == ["default/a"]
    with pytest.raises(ValueError):
        idx.add_indexers({NAMESPACE_INDEX: lambda o: []})


def test_replace_rebuilds_everything() -> None:
    idx = Indexer()
    idx.add(owned("old", "u1"))
    idx.replace([cm("n1", 5), cm("n2", 5, namespace="x")], "5")
    assert sorted(idx.list_keys()) == ["default/n1", "x/n2"]
    assert idx.index_keys(CONTROLLER_OWNER_INDEX, "u1") == []
    assert [o["metadata"]["name"] for o in idx.by_index(NAMESPACE_INDEX, "x")] == ["n2"]


def test_concurrent_writers_keep_indices_consistent() -> None:
    idx = Indexer()

    def writer(w: int) -> None:
        for i in range(200):
            ns = f"ns{i % 3}"
            idx.add(cm(f"o{i}", w, namespace=ns))
            if i % 4 == 0:
                idx.delete(cm(f"o{i}", w, namespace=ns))

    ts = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for ns in ("ns0", "ns1", "ns2"):
        expected = sorted(k for k in idx.list_keys() if k.startswith(ns + "/"))
        assert sorted(idx.index_keys(NAMESPACE_INDEX, ns)) == expected


def test_mutation_detector_catches_a_caller_mutating_the_cache() -> None:
    idx = Indexer(detect_mutations=True)
    idx.add(cm("a", 1, data={"k": "v"}))
    idx.check_mutations()  # clean

    cached = idx.get_by_key("default/a")
    assert cached is not None
    cached["data"]["k"] = "changed-by-a-careless-caller"
    with pytest.raises(CacheMutationError) as exc:
        idx.check_mutations()
    assert exc.value.keys == ["default/a"]


def test_mutation_detected_when_a_mutated_object_is_replaced() -> None:
    reports: list[CacheMutationError] = []
    from rook_py.framework.cache import MutationDetector

    idx = Indexer(detect_mutations=MutationDetector(report=reports.append))
    idx.add(cm("a", 1, data={"k": "v"}))
    idx.list()[0]["metadata"]["labels"] = {"oops": "1"}
    idx.update(cm("a", 2, data={"k": "v2"}))  # the informer's next write notices
    assert [e.keys for e in reports] == [["default/a"]]
    with pytest.raises(CacheMutationError):
        idx.check_mutations()
    idx.check_mutations()  # reported once, then reset


def test_copy_then_change_is_fine_in_debug_mode() -> None:
    idx = Indexer(detect_mutations=True)
    idx.add(cm("a", 1, data={"k": "v"}))
    mine = copy.deepcopy(idx.get_by_key("default/a"))
    assert mine is not None
    mine["data"]["k"] = "x"
    idx.check_mutations()


def test_env_var_enables_detection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROOK_CACHE_MUTATION_DETECTOR", "true")
    assert mutation_detection_enabled()
    idx = Indexer()
    assert idx.mutation_detector is not None
    monkeypatch.setenv("ROOK_CACHE_MUTATION_DETECTOR", "false")
    assert Indexer().mutation_detector is None
    with pytest.raises(RuntimeError):
        Indexer().check_mutations()
