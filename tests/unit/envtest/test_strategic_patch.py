"""Kubernetes strategic merge patch: merge keys, directives, ordering and error codes."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rook_py.envtest.apiserver.patch import (
    PatchError,
    apply_strategic_merge_patch,
    list_patch_strategy,
)


def _pod(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "labels": {"app": "web", "tier": "fe"}, "finalizers": ["a.io/x", "b.io/y"]},
        "spec": spec
        or {
            "containers": [
                {
                    "name": "app",
                    "image": "app:1",
                    "ports": [{"containerPort": 80, "name": "http"}],
                    "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                    "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                    "args": ["--one", "--two"],
                },
                {"name": "sidecar", "image": "side:1"},
            ],
            "volumes": [{"name": "data", "emptyDir": {}}],
            "tolerations": [{"key": "k", "operator": "Exists"}],
        },
    }


def _names(items: list[dict[str, Any]], key: str = "name") -> list[Any]:
    return [i[key] for i in items]


def test_merges_containers_by_name_and_leaves_inputs_alone() -> None:
    doc = _pod()
    patch = {"spec": {"containers": [{"name": "app", "image": "app:2"}]}}
    doc_before, patch_before = copy.deepcopy(doc), copy.deepcopy(patch)
    out = apply_strategic_merge_patch(doc, patch)
    app = out["spec"]["containers"][0]
    assert app["image"] == "app:2"
    assert app["env"] == doc["spec"]["containers"][0]["env"]  # Untouched fields survive.
    assert _names(out["spec"]["containers"]) == ["app", "sidecar"]
    assert doc == doc_before
    assert patch == patch_before


def test_new_elements_go_before_live_only_ones_without_set_element_order() -> None:
    # upstream mergeSortedSlice: an item absent from the live list is placed first.
    out = apply_strategic_merge_patch(_pod(), {"spec": {"containers": [{"name": "new", "image": "n:1"}]}})
    assert _names(out["spec"]["containers"]) == ["new", "app", "sidecar"]


def test_set_element_order_is_honoured() -> None:
    patch = {
        "spec": {
            "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "app"}, {"name": "new"}],
            "containers": [{"name": "new", "image": "n:1"}],
        }
    }
    out = apply_strategic_merge_patch(_pod(), patch)
    assert _names(out["spec"]["containers"]) == ["sidecar", "app", "new"]
    assert "$setElementOrder/containers" not in out["spec"]


def test_set_element_order_without_patch_list_reorders_live_list() -> None:
    patch = {"metadata": {"$setElementOrder/finalizers": ["b.io/y", "a.io/x"]}}
    out = apply_strategic_merge_patch(_pod(), patch)
    assert out["metadata"]["finalizers"] == ["b.io/y", "a.io/x"]


def test_set_element_order_mismatching_the_patch_is_bad_request() -> None:
    patch = {
        "spec": {
            "$setElementOrder/containers": [{"name": "app"}],
            "containers": [{"name": "other", "image": "x"}],
        }
    }
    with pytest.raises(PatchError) as exc:
        apply_strategic_merge_patch(_pod(), patch)
    assert exc.value.code == 400


def test_patch_delete_removes_element_by_merge_key() -> None:
    out = apply_strategic_merge_patch(
        _pod(), {"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}}
    )
    assert _names(out["spec"]["containers"]) == ["app"]


def test_patch_replace_in_list_replaces_whole_list() -> None:
    patch = {"spec": {"containers": [{"name": "only", "image": "o:1"}, {"$patch": "replace"}]}}
    out = apply_strategic_merge_patch(_pod(), patch)
    assert out["spec"]["containers"] == [{"name": "only", "image": "o:1"}]


def test_patch_replace_and_delete_in_maps() -> None:
    out = apply_strategic_merge_patch(_pod(), {"metadata": {"labels": {"$patch": "replace", "only": "this"}}})
    assert out["metadata"]["labels"] == {"only": "this"}
    out = apply_strategic_merge_patch(_pod(), {"metadata": {"labels": {"$patch": "delete"}}})
    assert out["metadata"]["labels"] == {}


def test_patch_merge_directive_in_map_is_rejected_like_unknown() -> None:
    with pytest.raises(PatchError) as exc:
        apply_strategic_merge_patch(_pod(), {"metadata": {"labels": {"$patch": "explode"}}})
    assert exc.value.code == 400
    with pytest.raises(PatchError):
        apply_strategic_merge_patch(_pod(), {"spec": {"containers": [{"name": "app", "$patch": "merge"}]}})


def test_null_deletes_keys() -> None:
    out = apply_strategic_merge_patch(_pod(), {"metadata": {"labels": {"tier": None, "new": "1"}}})
    assert out["metadata"]["labels"] == {"app": "web", "new": "1"}
    out = apply_strategic_merge_patch(_pod(), {"spec": {"tolerations": None}})
    assert "tolerations" not in out["spec"]


def test_finalizers_merge_as_ordered_set() -> None:
    out = apply_strategic_merge_patch(_pod(), {"metadata": {"finalizers": ["b.io/y", "c.io/z"]}})
    assert sorted(out["metadata"]["finalizers"]) == ["a.io/x", "b.io/y", "c.io/z"]
    assert len(out["metadata"]["finalizers"]) == 3


def test_delete_from_primitive_list() -> None:
    out = apply_strategic_merge_patch(
        _pod(), {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a.io/x"]}}
    )
    assert out["metadata"]["finalizers"] == ["b.io/y"]
    # Deleting from a list the object does not have is a no-op, not an addition.
    doc = _pod()
    del doc["metadata"]["finalizers"]
    out = apply_strategic_merge_patch(doc, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a.io/x"]}})
    assert "finalizers" not in out["metadata"]


def test_nested_merge_keys_env_ports_volume_mounts() -> None:
    patch = {
        "spec": {
            "containers": [
                {
                    "name": "app",
                    "env": [{"name": "B", "value": "20"}, {"name": "C", "value": "3"}],
                    "ports": [{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 9090}],
                    "volumeMounts": [{"mountPath": "/data", "readOnly": True}],
                }
            ],
            "volumes": [{"name": "cache", "emptyDir": {}}],
        }
    }
    out = apply_strategic_merge_patch(_pod(), patch)
    app = out["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in app["env"]}
    assert env == {"A": "1", "B": "20", "C": "3"}
    assert {p["containerPort"]: p for p in app["ports"]}[80] == {
        "containerPort": 80,
        "name": "http",
        "protocol": "TCP",
    }
    assert sorted(p["containerPort"] for p in app["ports"]) == [80, 9090]
    assert app["volumeMounts"] == [{"name": "data", "mountPath": "/data", "readOnly": True}]
    assert sorted(_names(out["spec"]["volumes"])) == ["cache", "data"]


def test_atomic_lists_are_replaced() -> None:
    patch = {
        "spec": {
            "containers": [{"name": "app", "args": ["--three"], "command": ["run"]}],
            "tolerations": [{"key": "other", "operator": "Exists"}],
        }
    }
    out = apply_strategic_merge_patch(_pod(), patch)
    assert out["spec"]["containers"][0]["args"] == ["--three"]
    assert out["spec"]["containers"][0]["command"] == ["run"]
    assert out["spec"]["tolerations"] == [{"key": "other", "operator": "Exists"}]


def test_env_from_is_atomic() -> None:
    doc = _pod(containers=[{"name": "c", "envFrom": [{"configMapRef": {"name": "a"}}]}])
    out = apply_strategic_merge_patch(
        doc, {"spec": {"containers": [{"name": "c", "envFrom": [{"secretRef": {"name": "s"}}]}]}}
    )
    assert out["spec"]["containers"][0]["envFrom"] == [{"secretRef": {"name": "s"}}]


def test_service_ports_merge_by_port_other_ports_are_atomic() -> None:
    svc = {
        "kind": "Service",
        "spec": {
            "ports": [{"port": 80, "name": "http"}, {"port": 443, "name": "https"}],
            "selector": {"a": "b"},
        },
    }
    out = apply_strategic_merge_patch(svc, {"spec": {"ports": [{"port": 80, "targetPort": 8080}]}})
    assert out["spec"]["ports"] == [
        {"port": 80, "name": "http", "targetPort": 8080},
        {"port": 443, "name": "https"},
    ]
    # Without the kind, spec.ports is not known to be a Service's and is replaced.
    policy = {"kind": "NetworkPolicy", "spec": {"ports": [{"port": 80}, {"port": 443}]}}
    out = apply_strategic_merge_patch(policy, {"spec": {"ports": [{"port": 53}]}})
    assert out["spec"]["ports"] == [{"port": 53}]
    # An explicit kind overrides the document's.
    out = apply_strategic_merge_patch(
        {"spec": svc["spec"]}, {"spec": {"ports": [{"port": 80, "x": 1}]}}, kind="Service"
    )
    assert len(out["spec"]["ports"]) == 2


def test_owner_references_conditions_and_other_keys() -> None:
    doc = {
        "kind": "Pod",
        "metadata": {"ownerReferences": [{"uid": "u1", "name": "a"}, {"uid": "u2", "name": "b"}]},
        "spec": {
            "imagePullSecrets": [{"name": "s1"}],
            "hostAliases": [{"ip": "1.1.1.1", "hostnames": ["a"]}],
            "topologySpreadConstraints": [{"topologyKey": "zone", "maxSkew": 1}],
        },
        "status": {
            "conditions": [{"type": "Ready", "status": "False"}, {"type": "Scheduled", "status": "True"}]
        },
    }
    patch = {
        "metadata": {"ownerReferences": [{"uid": "u2", "name": "b2"}]},
        "spec": {
            "imagePullSecrets": [{"name": "s2"}],
            "hostAliases": [{"ip": "1.1.1.1", "hostnames": ["b"]}],
            "topologySpreadConstraints": [{"topologyKey": "zone", "maxSkew": 2}],
        },
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }
    out = apply_strategic_merge_patch(doc, patch)
    assert out["metadata"]["ownerReferences"] == [{"uid": "u1", "name": "a"}, {"uid": "u2", "name": "b2"}]
    assert sorted(_names(out["spec"]["imagePullSecrets"])) == ["s1", "s2"]
    assert out["spec"]["hostAliases"] == [{"ip": "1.1.1.1", "hostnames": ["b"]}]
    assert out["spec"]["topologySpreadConstraints"] == [{"topologyKey": "zone", "maxSkew": 2}]
    assert out["status"]["conditions"] == [
        {"type": "Ready", "status": "True"},
        {"type": "Scheduled", "status": "True"},
    ]


def test_retain_keys_clears_unlisted_live_fields() -> None:
    doc = {
        "kind": "Deployment",
        "spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}},
    }
    out = apply_strategic_merge_patch(
        doc, {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}
    )
    assert out["spec"]["strategy"] == {"type": "Recreate"}


def test_retain_keys_must_cover_patched_fields() -> None:
    doc = {"spec": {"strategy": {"type": "RollingUpdate"}}}
    with pytest.raises(PatchError) as exc:
        apply_strategic_merge_patch(
            doc, {"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {}}}}
        )
    assert exc.value.code == 400
    with pytest.raises(PatchError):
        apply_strategic_merge_patch(doc, {"spec": {"strategy": {"$retainKeys": "type"}}})


def test_new_values_are_cleaned_of_directives_and_nulls() -> None:
    doc = {"kind": "Pod", "spec": {}}
    patch = {
        "spec": {
            "containers": [
                {"name": "a", "env": [{"name": "X", "value": None}]},
                {"name": "gone", "$patch": "delete"},
            ],
            "nodeSelector": {"$patch": "replace", "zone": "a", "drop": None},
        }
    }
    out = apply_strategic_merge_patch(doc, patch)
    assert out["spec"]["containers"] == [{"name": "a", "env": [{"name": "X"}]}]
    assert out["spec"]["nodeSelector"] == {"zone": "a"}


def test_type_change_replaces_value() -> None:
    out = apply_strategic_merge_patch({"a": {"b": 1}}, {"a": [1, 2]})
    assert out == {"a": [1, 2]}
    out = apply_strategic_merge_patch({"a": "x"}, {"a": {"b": None, "c": 1}})
    assert out == {"a": {"c": 1}}


@pytest.mark.parametrize(
    ("patch", "code"),
    [
        ({"spec": {"containers": [{"image": "no-name"}]}}, 422),
        ({"spec": {"containers": [{"$patch": "delete"}]}}, 422),
        ({"spec": {"containers": ["not-a-map"]}}, 422),
        ({"metadata": {"finalizers": [["nested"]]}}, 422),
        ({"metadata": {"$deleteFromPrimitiveList/finalizers": "x"}}, 400),
        ({"spec": {"$setElementOrder/containers": "x"}}, 400),
    ],
)
def test_errors_carry_apiserver_codes(patch: dict[str, Any], code: int) -> None:
    with pytest.raises(PatchError) as exc:
        apply_strategic_merge_patch(_pod(), patch)
    assert exc.value.code == code


def test_non_object_patch_is_bad_request() -> None:
    with pytest.raises(PatchError) as exc:
        apply_strategic_merge_patch(_pod(), [{"op": "add"}])
    assert exc.value.code == 400


def test_list_patch_strategy_table() -> None:
    assert list_patch_strategy("Pod", ("spec", "containers")) == ("merge", "name")
    assert list_patch_strategy("Pod", ("spec", "containers", "ports")) == ("merge", "containerPort")
    assert list_patch_strategy("Deployment", ("spec", "template", "spec", "initContainers", "ports")) == (
        "merge",
        "containerPort",
    )
    assert list_patch_strategy("Service", ("spec", "ports")) == ("merge", "port")
    assert list_patch_strategy("Pod", ("metadata", "finalizers")) == ("merge", "")
    assert list_patch_strategy("Pod", ("spec", "containers", "volumeMounts")) == ("merge", "mountPath")
    assert list_patch_strategy("Pod", ("spec", "containers", "envFrom")) == ("replace", "")
    assert list_patch_strategy("Pod", ("spec", "tolerations")) == ("replace", "")
    assert list_patch_strategy("Node", ("status", "addresses")) == ("merge", "type")
    assert list_patch_strategy("Endpoints", ("subsets", "addresses")) == ("replace", "")


_env_names = st.sampled_from(["A", "B", "C", "D"])
_env = st.lists(
    st.fixed_dictionaries({"name": _env_names, "value": st.sampled_from(["1", "2"])}), max_size=4
).map(lambda items: list({i["name"]: i for i in items}.values()))


@given(_env, _env, st.lists(st.sampled_from(["f1", "f2", "f3"]), max_size=3, unique=True))
def test_directive_free_patches_are_idempotent(
    live_env: list[dict[str, str]], patch_env: list[dict[str, str]], fins: list[str]
) -> None:
    doc = {
        "kind": "Pod",
        "metadata": {"finalizers": ["f0"]},
        "spec": {"containers": [{"name": "c", "env": live_env}]},
    }
    patch = {"metadata": {"finalizers": fins}, "spec": {"containers": [{"name": "c", "env": patch_env}]}}
    doc_before, patch_before = copy.deepcopy(doc), copy.deepcopy(patch)
    once = apply_strategic_merge_patch(doc, patch)
    assert (doc, patch) == (doc_before, patch_before)
    assert apply_strategic_merge_patch(once, patch) == once
    merged = {e["name"]: e["value"] for e in once["spec"]["containers"][0]["env"]}
    expected = {e["name"]: e["value"] for e in live_env} | {e["name"]: e["value"] for e in patch_env}
    assert merged == expected
    assert set(once["metadata"]["finalizers"]) == {"f0", *fins}


_leaf = st.one_of(st.booleans(), st.integers(-3, 3), st.text("xy", max_size=2))
_tree = st.recursive(
    _leaf,
    lambda inner: st.dictionaries(st.sampled_from(["a", "b", "c"]), inner, max_size=3),
    max_leaves=8,
)
_patch_tree = st.recursive(
    st.one_of(st.none(), _leaf),
    lambda inner: st.dictionaries(st.sampled_from(["a", "b", "c"]), inner, max_size=3),
    max_leaves=8,
)


@given(
    st.dictionaries(st.sampled_from(["a", "b", "c"]), _tree, max_size=3),
    st.dictionaries(st.sampled_from(["a", "b", "c"]), _patch_tree, max_size=3),
)
def test_without_lists_or_directives_it_is_a_json_merge_patch(
    doc: dict[str, Any], patch: dict[str, Any]
) -> None:
    # On maps and scalars alone, strategic merge and RFC 7386 agree (patch.go's mergeMap).
    from rook_py.envtest.apiserver.patch import apply_merge_patch

    assert apply_strategic_merge_patch(doc, patch) == apply_merge_patch(doc, patch)
