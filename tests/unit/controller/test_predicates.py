from __future__ import annotations

from typing import Any

import pytest

from rook_py.framework.controller import (
    AnnotationChangedPredicate,
    FuncPredicate,
    GenerationChangedPredicate,
    LabelChangedPredicate,
    LabelSelectorPredicate,
    Predicate,
    Request,
    ResourceVersionChangedPredicate,
    Result,
    and_,
    new_predicate_funcs,
    not_,
    or_,
)


def obj(name: str = "a", *, gen: int | None = 1, rv: str = "1", labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "ns", "resourceVersion": rv}
    if gen is not None:
        meta["generation"] = gen
    if labels is not None:
        meta["labels"] = labels
    if annotations is not None:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta}


def test_request_is_hashable_and_prints_like_a_key() -> None:
    assert str(Request("ns", "a")) == "ns/a"
    assert str(Request(None, "node-1")) == "node-1"
    assert len({Request("ns", "a"), Request("ns", "a"), Request(None, "a")}) == 2


def test_result_rejects_negative_delay_and_reports_zero() -> None:
    with pytest.raises(ValueError):
        Result(requeue_after=-1)
    assert Result().is_zero()
    assert not Result(requeue=True).is_zero()
    assert not Result(requeue_after=0.5).is_zero()


def test_base_predicate_lets_everything_through() -> None:
    p = Predicate()
    o = obj()
    assert p.create(o) and p.update(o, o) and p.delete(o) and p.generic(o)


def test_generation_changed_only_filters_updates() -> None:
    p = GenerationChangedPredicate()
    assert not p.update(obj(gen=1, rv="1"), obj(gen=1, rv="2"))  # a status write
    assert p.update(obj(gen=1), obj(gen=2))
    assert p.create(obj()) and p.delete(obj()) and p.generic(obj())


def test_resource_version_changed_drops_resyncs() -> None:
    p = ResourceVersionChangedPredicate()
    assert not p.update(obj(rv="5"), obj(rv="5"))
    assert p.update(obj(rv="5"), obj(rv="6"))


def test_annotation_and_label_changed() -> None:
    a, lc = AnnotationChangedPredicate(), LabelChangedPredicate()
    assert not a.update(obj(), obj(annotations={}))  # absent == empty
    assert a.update(obj(annotations={"x": "1"}), obj(annotations={"x": "2"}))
    assert not lc.update(obj(labels={"a": "b"}), obj(labels={"a": "b"}, rv="9"))
    assert lc.update(obj(labels={"a": "b"}), obj(labels={"a": "c"}))


def test_label_selector_predicate_from_dict_and_string() -> None:
    by_dict = LabelSelectorPredicate({"matchLabels": {"app": "fs"},
                                      "matchExpressions": [{"key": "tier", "operator": "In",
                                                            "values": ["meta", "data"]}]})
    assert by_dict.create(obj(labels={"app": "fs", "tier": "meta"}))
    assert not by_dict.create(obj(labels={"app": "fs", "tier": "client"}))
    assert not by_dict.delete(obj())
    # Updates are judged on the new object.
    assert by_dict.update(obj(labels={}), obj(labels={"app": "fs", "tier": "data"}))
    assert not by_dict.update(obj(labels={"app": "fs", "tier": "data"}), obj(labels={}))
    by_string = LabelSelectorPredicate("app=fs,!legacy")
    assert by_string.generic(obj(labels={"app": "fs"}))
    assert not by_string.generic(obj(labels={"app": "fs", "legacy": "y"}))


def test_combinators() -> None:
    gen, rv = GenerationChangedPredicate(), ResourceVersionChangedPredicate()
    old, status_write, spec_change = obj(gen=1, rv="1"), obj(gen=1, rv="2"), obj(gen=2, rv="3")
    assert not and_(gen, rv).update(old, status_write)
    assert and_(gen, rv).update(old, spec_change)
    assert or_(gen, rv).update(old, status_write)
    assert not or_(gen, rv).update(old, old)
    assert not_(gen).update(old, status_write)
    assert and_().create(old) and not or_().create(old)


def test_func_predicate_and_new_predicate_funcs() -> None:
    p = FuncPredicate(create=lambda o: o["metadata"]["name"] == "keep")
    assert p.create(obj("keep")) and not p.create(obj("drop"))
    assert p.delete(obj("drop"))  # not given: passes
    q = new_predicate_funcs(lambda o: o["metadata"]["name"].startswith("k"))
    assert q.update(obj("drop"), obj("keep")) and not q.update(obj("keep"), obj("drop"))
    assert not q.delete(obj("drop")) and q.generic(obj("keep"))
