"""three_way_merge: example cases for lists, and properties over random nested maps."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from rook_py.framework.objects import three_way_merge

JSON = dict[str, Any]

leaves = st.one_of(st.integers(0, 3), st.sampled_from(["x", "y"]))
maps: st.SearchStrategy[JSON] = st.recursive(
    st.dictionaries(st.sampled_from("abcd"), leaves, max_size=3),
    lambda children: st.dictionaries(st.sampled_from("abcd"), st.one_of(leaves, children), max_size=3),
    max_leaves=12,
)


def leaf_paths(obj: Any, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    if isinstance(obj, dict) and obj:
        out: dict[tuple[str, ...], Any] = {}
        for k, v in obj.items():
            out.update(leaf_paths(v, (*prefix, k)))
        return out
    return {prefix: obj}


def all_paths(obj: Any, prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    out = {prefix}
    if isinstance(obj, dict):
        for k, v in obj.items():
            out |= all_paths(v, (*prefix, k))
    return out


def touches(path: tuple[str, ...], paths: set[tuple[str, ...]]) -> bool:
    """``path`` is on, above or below a path in ``paths``."""
    return any(path[:len(p)] == p or p[:len(path)] == path for p in paths if p)


@settings(max_examples=150, deadline=None)
@given(live=maps, desired=maps, last=st.one_of(st.none(), maps))
def test_merge_properties(live: JSON, desired: JSON, last: JSON | None) -> None:
    snapshot = copy.deepcopy((live, desired, last))
    merged = three_way_merge(live, desired, last)
    assert (live, desired, last) == snapshot  # inputs untouched
    merged_leaves = leaf_paths(merged)
    merged_paths = all_paths(merged)
    # Every desired value is in the result ({} owns nothing by itself: it merges).
    for path, value in leaf_paths(desired).items():
        if path and value != {}:
            assert merged_leaves.get(path) == value
    # A value we set last time and no longer set is gone, whatever the live object holds there.
    desired_paths = all_paths(desired)
    for path, value in leaf_paths(last or {}).items():
        if path and value != {} and path not in desired_paths:
            assert path not in merged_paths
    # Fields nobody owns (no desired or last-applied leaf above or below them) survive.
    owned = {p for p in leaf_paths(desired) | leaf_paths(last or {}) if p}
    for path, value in leaf_paths(live).items():
        if path and not touches(path, owned):
            assert merged_leaves.get(path) == value
    # A second apply of the same desired state is a no-op.
    assert three_way_merge(merged, desired, desired) == merged


def test_removed_owned_leaf_is_gone() -> None:
    merged = three_way_merge({"a": {"b": 1, "c": 2}}, {"a": {"c": 2}}, {"a": {"b": 1, "c": 2}})
    assert merged == {"a": {"c": 2}}


def test_keyed_list_keeps_foreign_elements_and_drops_ours() -> None:
    live = {"spec": {"containers": [{"name": "app", "image": "a", "imagePullPolicy": "Always"},
                                    {"name": "side", "image": "s"},
                                    {"name": "old", "image": "o"}]}}
    last = {"spec": {"containers": [{"name": "app", "image": "a"}, {"name": "old", "image": "o"}]}}
    desired = {"spec": {"containers": [{"name": "new", "image": "n"}, {"name": "app", "image": "b"}]}}
    merged = three_way_merge(live, desired, last)
    assert merged["spec"]["containers"] == [{"name": "app", "image": "b", "imagePullPolicy": "Always"},
                                            {"name": "side", "image": "s"},
                                            {"name": "new", "image": "n"}]


def test_ports_key_choice_and_duplicate_keys_fall_back() -> None:
    ports = [{"containerPort": 53, "protocol": "UDP"}, {"containerPort": 53, "protocol": "TCP"}]
    live = {"kind": "Pod", "spec": {"containers": [{"name": "dns", "ports": ports}]}}
    desired = {"kind": "Pod", "spec": {"containers": [{"name": "dns", "ports": copy.deepcopy(ports)}]}}
    assert three_way_merge(live, desired, None) == live  # duplicate merge keys: positional merge, no change
    svc_live = {"kind": "Service", "spec": {"ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}]}}
    assert three_way_merge(svc_live, {"kind": "Service", "spec": {"ports": [{"port": 80}]}}, None) == svc_live


def test_container_ports_merge_by_container_port_service_ports_by_port() -> None:
    """One table (kube.lists) for every list: a container's ports by containerPort, a Service's by
    port, and a ports list anywhere else (an Ingress backend's, say) replaced whole."""
    live = {"kind": "Pod", "spec": {"containers": [{"name": "c", "ports": [
        {"containerPort": 80, "name": "http"}, {"containerPort": 9090, "name": "metrics"}]}]}}
    desired = {"kind": "Pod", "spec": {"containers": [{"name": "c", "ports": [{"containerPort": 9090}]}]}}
    merged = three_way_merge(live, desired, None)
    assert merged["spec"]["containers"][0]["ports"] == [{"containerPort": 80, "name": "http"},
                                                        {"containerPort": 9090, "name": "metrics"}]
    svc = {"kind": "Service", "spec": {"ports": [{"port": 80, "name": "a"}, {"port": 81, "name": "b"}]}}
    merged = three_way_merge(svc, {"kind": "Service", "spec": {"ports": [{"port": 81, "name": "c"}]}}, None)
    assert merged["spec"]["ports"] == [{"port": 80, "name": "a"}, {"port": 81, "name": "c"}]
    other = {"kind": "EndpointSlice", "ports": [{"port": 80, "name": "a"}, {"port": 81, "name": "b"}]}
    merged = three_way_merge(other, {"kind": "EndpointSlice", "ports": [{"port": 81, "name": "c"}]}, None)
    assert merged["ports"] == [{"port": 81, "name": "c"}]


def test_unkeyed_lists_positional_or_atomic() -> None:
    live = {"tolerations": [{"key": "k", "operator": "Exists", "effect": "NoSchedule"}], "args": ["a", "b"]}
    # Same length: element-wise merge keeps the server/foreign field.
    assert three_way_merge(live, {"tolerations": [{"key": "k", "operator": "Exists"}]}, None) == live
    # Scalar lists are atomic.
    assert three_way_merge(live, {"args": ["c"]}, None)["args"] == ["c"]
    # Different length: replaced.
    merged = three_way_merge(live, {"tolerations": [{"key": "a"}, {"key": "b"}]}, None)
    assert merged["tolerations"] == [{"key": "a"}, {"key": "b"}]


def test_explicit_null_and_type_change() -> None:
    assert three_way_merge({"a": 1, "b": 2}, {"a": None}, None) == {"b": 2}
    assert three_way_merge({"a": {"x": 1}}, {"a": "flat"}, None) == {"a": "flat"}
    assert three_way_merge({"a": "flat"}, {"a": {"x": 1}}, None) == {"a": {"x": 1}}
