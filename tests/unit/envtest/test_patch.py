"""JSON Merge Patch (RFC 7386) and JSON Patch (RFC 6902).

The vectors below restate the cases of RFC 7386 Appendix A and RFC 6902 Appendix A (the RFC's
A.13, a document with a duplicated member, cannot be represented once JSON is parsed into a dict
and is left out).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rook_py.envtest.apiserver.patch import (
    PatchError,
    apply_json_patch,
    apply_merge_patch,
    json_equal,
)

# --- RFC 7386 ----------------------------------------------------------------------------------

RFC7386_VECTORS: list[tuple[Any, Any, Any]] = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("original", "patch", "expected"), RFC7386_VECTORS)
def test_rfc7386_appendix_a(original: Any, patch: Any, expected: Any) -> None:
    before = copy.deepcopy(original)
    patch_before = copy.deepcopy(patch)
    assert apply_merge_patch(original, patch) == expected
    assert original == before, "the document must not be mutated"
    assert patch == patch_before, "the patch must not be mutated"


def test_merge_patch_result_shares_nothing_with_patch() -> None:
    patch = {"spec": {"list": [1, 2]}}
    result = apply_merge_patch({}, patch)
    result["spec"]["list"].append(3)
    assert patch == {"spec": {"list": [1, 2]}}


_json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text("abc", max_size=2))
_json = st.recursive(
    _json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from("abcd"), inner, max_size=3)
    ),
    max_leaves=10,
)


def _has_null(v: Any) -> bool:
    if v is None:
        return True
    if isinstance(v, dict):
        return any(_has_null(x) for x in v.values())
    if isinstance(v, list):
        return any(_has_null(x) for x in v)
    return False


@given(_json, _json)
def test_merge_patch_is_idempotent(doc: Any, patch: Any) -> None:
    once = apply_merge_patch(doc, patch)
    assert apply_merge_patch(once, patch) == once


@given(st.dictionaries(st.sampled_from("abcd"), _json, max_size=3))
def test_merge_patch_with_itself_null_free_is_identity(doc: dict[str, Any]) -> None:
    if _has_null(doc):
        return
    assert apply_merge_patch(doc, doc) == doc
    assert apply_merge_patch(doc, {}) == doc


# --- RFC 6902 ----------------------------------------------------------------------------------

RFC6902_SUCCESS: list[tuple[str, Any, list[dict[str, Any]], Any]] = [
    (
        "A.1 add object member",
        {"foo": "bar"},
        [{"op": "add", "path": "/baz", "value": "qux"}],
        {"baz": "qux", "foo": "bar"},
    ),
    (
        "A.2 add array element",
        {"foo": ["bar", "baz"]},
        [{"op": "add", "path": "/foo/1", "value": "qux"}],
        {"foo": ["bar", "qux", "baz"]},
    ),
    (
        "A.3 remove object member",
        {"baz": "qux", "foo": "bar"},
        [{"op": "remove", "path": "/baz"}],
        {"foo": "bar"},
    ),
    (
        "A.4 remove array element",
        {"foo": ["bar", "qux", "baz"]},
        [{"op": "remove", "path": "/foo/1"}],
        {"foo": ["bar", "baz"]},
    ),
    (
        "A.5 replace a value",
        {"baz": "qux", "foo": "bar"},
        [{"op": "replace", "path": "/baz", "value": "boo"}],
        {"baz": "boo", "foo": "bar"},
    ),
    (
        "A.6 move a value",
        {"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}},
        [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}],
        {"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}},
    ),
    (
        "A.7 move an array element",
        {"foo": ["all", "grass", "cows", "eat"]},
        [{"op": "move", "from": "/foo/1", "path": "/foo/3"}],
        {"foo": ["all", "cows", "eat", "grass"]},
    ),
    (
        "A.8 test a value: success",
        {"baz": "qux", "foo": ["a", 2, "c"]},
        [{"op": "test", "path": "/baz", "value": "qux"}, {"op": "test", "path": "/foo/1", "value": 2}],
        {"baz": "qux", "foo": ["a", 2, "c"]},
    ),
    (
        "A.10 add a nested member object",
        {"foo": "bar"},
        [{"op": "add", "path": "/child", "value": {"grandchild": {}}}],
        {"foo": "bar", "child": {"grandchild": {}}},
    ),
    (
        "A.11 ignore unrecognized elements",
        {"foo": "bar"},
        [{"op": "add", "path": "/baz", "value": "qux", "xyz": 123}],
        {"foo": "bar", "baz": "qux"},
    ),
    (
        "A.14 ~ escape ordering",
        {"/": 9, "~1": 10},
        [{"op": "test", "path": "/~01", "value": 10}],
        {"/": 9, "~1": 10},
    ),
    (
        "A.16 add an array value",
        {"foo": ["bar"]},
        [{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}],
        {"foo": ["bar", ["abc", "def"]]},
    ),
]


@pytest.mark.parametrize(
    ("case", "doc", "ops", "expected"), RFC6902_SUCCESS, ids=[c[0] for c in RFC6902_SUCCESS]
)
def test_rfc6902_appendix_a_success(case: str, doc: Any, ops: list[dict[str, Any]], expected: Any) -> None:
    before = copy.deepcopy(doc)
    assert apply_json_patch(doc, ops) == expected
    assert doc == before


RFC6902_ERRORS: list[tuple[str, Any, list[dict[str, Any]]]] = [
    ("A.9 test a value: error", {"baz": "qux"}, [{"op": "test", "path": "/baz", "value": "bar"}]),
    ("A.12 add to a nonexistent target", {"foo": "bar"}, [{"op": "add", "path": "/baz/bat", "value": "qux"}]),
    (
        "A.15 comparing strings and numbers",
        {"/": 9, "~1": 10},
        [{"op": "test", "path": "/~01", "value": "10"}],
    ),
]


@pytest.mark.parametrize(("case", "doc", "ops"), RFC6902_ERRORS, ids=[c[0] for c in RFC6902_ERRORS])
def test_rfc6902_appendix_a_errors(case: str, doc: Any, ops: list[dict[str, Any]]) -> None:
    with pytest.raises(PatchError) as exc:
        apply_json_patch(doc, ops)
    assert exc.value.code == 422


def test_json_patch_is_atomic() -> None:
    doc = {"a": 1}
    with pytest.raises(PatchError):
        apply_json_patch(
            doc, [{"op": "add", "path": "/b", "value": 2}, {"op": "test", "path": "/a", "value": 5}]
        )
    assert doc == {"a": 1}


def test_json_patch_root_and_index_rules() -> None:
    assert apply_json_patch({"a": 1}, [{"op": "replace", "path": "", "value": [1]}]) == [1]
    assert apply_json_patch({"a": 1}, [{"op": "add", "path": "", "value": {"b": 2}}]) == {"b": 2}
    assert apply_json_patch([1, 2], [{"op": "add", "path": "/2", "value": 3}]) == [1, 2, 3]
    assert apply_json_patch({"a": [1]}, [{"op": "copy", "from": "/a", "path": "/b"}]) == {"a": [1], "b": [1]}
    assert apply_json_patch({"a": 1}, [{"op": "move", "from": "/a", "path": "/a"}]) == {"a": 1}
    for bad_path in ("/a/3", "/a/01", "/a/-1", "/a/x"):
        with pytest.raises(PatchError) as exc:
            apply_json_patch({"a": [1, 2]}, [{"op": "add", "path": bad_path, "value": 0}])
        assert exc.value.code == 422, bad_path
    with pytest.raises(PatchError):
        apply_json_patch({"a": [1]}, [{"op": "remove", "path": "/a/-"}])
    with pytest.raises(PatchError):
        apply_json_patch({"a": 1}, [{"op": "remove", "path": "/b"}])
    with pytest.raises(PatchError):
        apply_json_patch({"a": 1}, [{"op": "replace", "path": "/b", "value": 1}])
    with pytest.raises(PatchError, match="own child"):
        apply_json_patch({"a": {"b": {}}}, [{"op": "move", "from": "/a", "path": "/a/b/c"}])


def test_json_patch_copy_is_deep() -> None:
    result = apply_json_patch(
        {"a": {"x": 1}},
        [{"op": "copy", "from": "/a", "path": "/b"}, {"op": "replace", "path": "/b/x", "value": 2}],
    )
    assert result == {"a": {"x": 1}, "b": {"x": 2}}


@pytest.mark.parametrize("ops", [{"op": "add"}, ["not an object"], "[]"])
def test_undecodable_json_patch_is_bad_request(ops: Any) -> None:
    with pytest.raises(PatchError) as exc:
        apply_json_patch({"a": 1}, ops)
    assert exc.value.code == 400


@pytest.mark.parametrize(
    "ops",
    [
        [{"op": "frobnicate", "path": "/a"}],
        [{"op": "add", "value": 1}],
        [{"op": "add", "path": "/a"}],
        [{"op": "move", "path": "/a"}],
        [{"op": "add", "path": "a", "value": 1}],
    ],
)
def test_inapplicable_json_patch_is_unprocessable(ops: Any) -> None:
    # The apiserver decodes first (400 on failure) and reports every Apply error as 422.
    with pytest.raises(PatchError) as exc:
        apply_json_patch({"a": 1}, ops)
    assert exc.value.code == 422


def test_test_op_uses_json_equality() -> None:
    assert apply_json_patch({"a": 1}, [{"op": "test", "path": "/a", "value": 1.0}]) == {"a": 1}
    with pytest.raises(PatchError):
        apply_json_patch({"a": True}, [{"op": "test", "path": "/a", "value": 1}])
    assert json_equal({"a": [1, {"b": None}]}, {"a": [1.0, {"b": None}]})
    assert not json_equal({"a": 1}, {"a": 1, "b": 2})
    assert not json_equal([0], [False])


@given(st.dictionaries(st.sampled_from("abcd"), _json, max_size=3), st.sampled_from("abcdefg"), _json)
def test_add_then_remove_is_identity(doc: dict[str, Any], key: str, value: Any) -> None:
    if key in doc:
        return
    added = apply_json_patch(doc, [{"op": "add", "path": f"/{key}", "value": value}])
    assert added[key] == value
    assert apply_json_patch(added, [{"op": "remove", "path": f"/{key}"}]) == doc


@given(st.lists(_json_scalars, min_size=1, max_size=5), st.data())
def test_move_within_array_keeps_elements(items: list[Any], data: st.DataObject) -> None:
    src = data.draw(st.integers(0, len(items) - 1))
    dst = data.draw(st.integers(0, len(items) - 1))
    moved = apply_json_patch({"l": items}, [{"op": "move", "from": f"/l/{src}", "path": f"/l/{dst}"}])["l"]
    assert sorted(map(repr, moved)) == sorted(map(repr, items))
    assert json_equal(moved[dst], items[src])
