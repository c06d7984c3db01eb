"""DeltaFIFO semantics from client-go's delta_fifo_test.go."""

from __future__ import annotations

import threading

import pytest

from rook_py.framework.cache import (
    DeletedFinalStateUnknown,
    DeltaFIFO,
    Deltas,
    DeltaType,
    FIFOClosedError,
    Indexer,
)
from tests.unit.cache.fakes import cm


def pop_all(fifo: DeltaFIFO) -> list[tuple[Deltas, bool]]:
    out: list[tuple[Deltas, bool]] = []
    while len(fifo):
        fifo.pop(lambda d, initial: out.append((d, initial)), timeout=0)
    return out


def types(deltas: Deltas) -> list[str]:
    return [d.type.value for d in deltas]


def test_deltas_accumulate_per_key_in_order() -> None:
    fifo = DeltaFIFO()
    fifo.add(cm("a", 1))
    fifo.add(cm("b", 1))
    fifo.update(cm("a", 2))
    fifo.delete(cm("a", 3))
    out = pop_all(fifo)
    assert [types(d) for d, _ in out] == [["Added", "Updated", "Deleted"], ["Added"]]
    assert [d.object["metadata"]["resourceVersion"] for d in out[0][0]] == ["1", "2", "3"]


def test_delete_of_unknown_object_is_ignored() -> None:
    known = Indexer()
    fifo = DeltaFIFO(known_objects=known)
    fifo.delete(cm("ghost", 1))
    assert len(fifo) == 0
    known.add(cm("real", 1))
    fifo.delete(cm("real", 2))
    assert [types(d) for d, _ in pop_all(fifo)] == [["Deleted"]]


def test_consecutive_deletes_collapse_keeping_real_final_state() -> None:
    fifo = DeltaFIFO()
    fifo.add(cm("a", 1))
    fifo.delete(cm("a", 2))
    fifo.delete(DeletedFinalStateUnknown("default/a", cm("a", 1)))
    (deltas, _), = pop_all(fifo)
    assert types(deltas) == ["Added", "Deleted"]
    assert deltas[-1].object["metadata"]["resourceVersion"] == "2"


def test_replace_emits_replaced_and_final_state_unknown_deletions() -> None:
    known = Indexer()
    known.add(cm("stays", 1))
    known.add(cm("vanished", 1, data={"last": "known"}))
    fifo = DeltaFIFO(known_objects=known)
    fifo.add(cm("queued-gone", 7))  # queued but absent from the relist
    fifo.replace([cm("stays", 2), cm("new", 2)], "10")
    got = {d[0][-1].object.key if isinstance(d[0][-1].object, DeletedFinalStateUnknown)
           else d[0][-1].object["metadata"]["name"]: types(d[0]) for d in pop_all(fifo)}
    assert got == {"stays": ["Replaced"], "new": ["Replaced"],
                   "default/queued-gone": ["Added", "Deleted"], "default/vanished": ["Deleted"]}


def test_replace_deleted_object_carries_last_known_state() -> None:
    known = Indexer()
    last = cm("vanished", 4, data={"last": "known"})
    known.add(last)
    fifo = DeltaFIFO(known_objects=known)
    fifo.replace([], "10")
    (deltas, _), = pop_all(fifo)
    tomb = deltas[0].object
    assert isinstance(tomb, DeletedFinalStateUnknown)
    assert tomb.key == "default/vanished"
    assert tomb.obj is last


def test_emit_sync_instead_of_replaced_when_asked() -> None:
    fifo = DeltaFIFO(emit_delta_type_replaced=False)
    fifo.replace([cm("a", 1)], "1")
    assert [types(d) for d, _ in pop_all(fifo)] == [["Sync"]]


def test_resync_skips_keys_with_pending_deltas() -> None:
    known = Indexer()
    known.add(cm("a", 1))
    known.add(cm("b", 1))
    fifo = DeltaFIFO(known_objects=known)
    fifo.update(cm("a", 2))
    fifo.resync()
    out = {d[0][0].object["metadata"]["name"]: types(d[0]) for d in pop_all(fifo)}
    assert out == {"a": ["Updated"], "b": ["Sync"]}


def test_has_synced_after_initial_population_is_popped() -> None:
    fifo = DeltaFIFO(known_objects=Indexer())
    assert not fifo.has_synced()
    fifo.replace([cm("a", 1), cm("b", 1)], "1")
    assert not fifo.has_synced()
    flags: list[bool] = []
    fifo.pop(lambda d, initial: flags.append(initial))
    assert not fifo.has_synced()
    fifo.add(cm("c", 2))  # after the list: not part of the initial population
    fifo.pop(lambda d, initial: flags.append(initial))
    assert fifo.has_synced()
    fifo.pop(lambda d, initial: flags.append(initial))
    assert flags == [True, True, False]


def test_empty_initial_list_is_synced_at_once() -> None:
    fifo = DeltaFIFO()
    fifo.replace([], "1")
    assert fifo.has_synced()


def test_transform_runs_once_on_server_objects_only() -> None:
    seen: list[str] = []

    def transform(obj: dict) -> dict:
        seen.append(obj["metadata"]["name"])
        obj["metadata"].pop("managedFields", None)
        return obj

    known = Indexer()
    known.add(cm("cached", 1))
    fifo = DeltaFIFO(known_objects=known, transform=transform)
    fifo.add(cm("a", 1, metadata={"managedFields": [{"manager": "x"}]}))
    fifo.resync()  # Sync of "cached": already transformed when it was cached
    fifo.replace([cm("a", 2)], "2")  # "cached" vanishes: DeletedFinalStateUnknown, not transformed
    out = pop_all(fifo)
    assert seen == ["a", "a"]
    assert "managedFields" not in out[0][0][0].object["metadata"]


def test_pop_blocks_until_item_and_close_ends_it() -> None:
    fifo = DeltaFIFO()
    assert fifo.pop(lambda d, i: None, timeout=0.01) is False
    got: list[str] = []
    t = threading.Thread(target=lambda: fifo.pop(lambda d, i: got.append(d[0].object["metadata"]["name"])))
    t.start()
    fifo.add(cm("a", 1))
    t.join(5)
    assert got == ["a"]

    errors: list[BaseException] = []

    def blocked() -> None:
        try:
            fifo.pop(lambda d, i: None)
        except FIFOClosedError as exc:
            errors.append(exc)

    t = threading.Thread(target=blocked)
    t.start()
    fifo.close()
    t.join(5)
    assert len(errors) == 1 and fifo.is_closed()
    with pytest.raises(FIFOClosedError):
        fifo.pop(lambda d, i: None, timeout=0.01)


def test_get_by_key_returns_a_copy_of_pending_deltas() -> None:
    fifo = DeltaFIFO()
    fifo.add(cm("a", 1))
    deltas = fifo.get_by_key("default/a")
    assert deltas is not None and types(deltas) == ["Added"]
    deltas.clear()
    assert fifo.list_keys() == ["default/a"]
    assert DeltaType.ADDED == "Added"



def test_replace_initial_fast_path_only_for_a_first_list_into_an_empty_cache() -> None:
    known = Indexer()
    fifo = DeltaFIFO(known_objects=known)
    applied: list[list[dict]] = []

    def apply(objs: list[dict]) -> None:
        applied.append(objs)
        known.replace(objs)

    objs = [cm("a", 1), cm("b", 1)]
    assert fifo.replace_initial(objs, apply) is True
    assert applied == [objs] and len(fifo) == 0
    assert fifo.has_synced() and fifo.wait_synced(0)
    # A second list (a relist) must go through replace, to compute deletions.
    assert fifo.replace_initial([cm("a", 2)], apply) is False
    fifo.replace([cm("a", 2)], "2")
    assert sorted(types(d) for d, _ in pop_all(fifo)) == [["Deleted"], ["Replaced"]]

    # A cache that already knows objects, or a FIFO with queued work, never takes the fast path.
    known2 = Indexer()
    known2.add(cm("x", 1))
    assert DeltaFIFO(known_objects=known2).replace_initial([], apply) is False
    queued = DeltaFIFO()
    queued.add(cm("y", 1))
    assert queued.replace_initial([], apply) is False
    assert len(applied) == 1
