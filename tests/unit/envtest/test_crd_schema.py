"""CRD definition checks and the structural schema algorithms: validate, default, prune."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rook_py.envtest.apiserver.crd import CRDVersionSchema, format_value, validate_crd_definition

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "required": ["size"],
            "properties": {
                "replicas": {"type": "integer", "minimum": 0, "maximum": 1, "default": 1, "format": "int32"},
                "size": {"type": "string", "pattern": "^[0-9]+Gi$"},
                "mode": {"type": "string", "enum": ["fast", "safe"], "default": "safe"},
                "ratio": {
                    "type": "number",
                    "exclusiveMinimum": True,
                    "minimum": 0,
                    "exclusiveMaximum": True,
                    "maximum": 1,
                },
                "name": {"type": "string", "minLength": 2, "maxLength": 5},
                "port": {"x-kubernetes-int-or-string": True},
                "tags": {"type": "array", "minItems": 1, "maxItems": 2, "items": {"type": "string"}},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}, "maxProperties": 2},
                "nodes": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "name": {"type": "string"},
                            "weight": {"type": "integer", "default": 10},
                        },
                    },
                },
                "storage": {
                    "type": "object",
                    "default": {},
                    "properties": {
                        "class": {"type": "string", "default": "standard"},
                        "size": {"type": "string", "nullable": True},
                    },
                },
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "created": {"type": "string", "format": "date-time"},
                "enabled": {"type": "boolean"},
            },
        },
        "status": {"type": "object", "properties": {"phase": {"type": "string"}}},
    },
}


def _cr(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "x.io/v1",
        "kind": "Thing",
        "metadata": {"name": "t"},
        "spec": {"size": "1Gi", **spec},
    }


def _one(causes: list[dict[str, str]]) -> dict[str, str]:
    assert len(causes) == 1, causes
    return causes[0]


# --- validation wording ----------------------------------------------------------------------------


def test_valid_object_has_no_causes() -> None:
    obj = _cr(
        replicas=1,
        mode="fast",
        ratio=0.5,
        name="abc",
        port="http",
        tags=["a"],
        labels={"a": "b"},
        nodes=[{"name": "n", "weight": 1}],
        created="2024-01-02T03:04:05Z",
        free={"anything": [1, {"x": None}]},
        enabled=False,
    )
    assert CRDVersionSchema(SCHEMA).validate(obj) == []


@pytest.mark.parametrize(
    ("spec", "reason", "field", "message"),
    [
        (
            {"replicas": 2},
            "FieldValueInvalid",
            "spec.replicas",
            "Invalid value: 2: spec.replicas in body should be less than or equal to 1",
        ),
        (
            {"replicas": -1},
            "FieldValueInvalid",
            "spec.replicas",
            "Invalid value: -1: spec.replicas in body should be greater than or equal to 0",
        ),
        (
            {"replicas": "string"},
            "FieldValueTypeInvalid",
            "spec.replicas",
            'Invalid value: "string": spec.replicas in body must be of type integer: "string"',
        ),
        (
            {"replicas": 0.5},
            "FieldValueTypeInvalid",
            "spec.replicas",
            'Invalid value: "number": spec.replicas in body must be of type integer: "number"',
        ),
        (
            {"mode": "x"},
            "FieldValueNotSupported",
            "spec.mode",
            'Unsupported value: "x": supported values: "fast", "safe"',
        ),
        (
            {"ratio": 1},
            "FieldValueInvalid",
            "spec.ratio",
            "Invalid value: 1: spec.ratio in body should be less than 1",
        ),
        (
            {"ratio": 0},
            "FieldValueInvalid",
            "spec.ratio",
            "Invalid value: 0: spec.ratio in body should be greater than 0",
        ),
        (
            {"name": "a"},
            "FieldValueInvalid",
            "spec.name",
            'Invalid value: "a": spec.name in body should be at least 2 chars long',
        ),
        ({"name": "abcdef"}, "FieldValueTooLong", "spec.name", "Too long: may not be longer than 5"),
        (
            {"port": True},
            "FieldValueTypeInvalid",
            "spec.port",
            'Invalid value: "boolean": spec.port in body must be of type integer,string: "boolean"',
        ),
        (
            {"tags": []},
            "FieldValueInvalid",
            "spec.tags",
            "Invalid value: []: spec.tags in body should have at least 1 items",
        ),
        (
            {"tags": ["a", "b", "c"]},
            "FieldValueTooMany",
            "spec.tags",
            "Too many: 3: must have at most 2 items",
        ),
        (
            {"tags": ["a", 1]},
            "FieldValueTypeInvalid",
            "spec.tags[1]",
            'Invalid value: "integer": spec.tags[1] in body must be of type string: "integer"',
        ),
        (
            {"labels": {"a": "1", "b": "2", "c": "3"}},
            "FieldValueTooMany",
            "spec.labels",
            "Too many: 3: must have at most 2 items",
        ),
        (
            {"labels": {"a": 1}},
            "FieldValueTypeInvalid",
            "spec.labels.a",
            'Invalid value: "integer": spec.labels.a in body must be of type string: "integer"',
        ),
        (
            {"nodes": [{"name": 5}]},
            "FieldValueTypeInvalid",
            "spec.nodes[0].name",
            'Invalid value: "integer": spec.nodes[0].name in body must be of type string: "integer"',
        ),
        (
            {"created": "yesterday"},
            "FieldValueInvalid",
            "spec.created",
            'Invalid value: "yesterday": spec.created in body must be of type date-time: "yesterday"',
        ),
        (
            {"enabled": None},
            "FieldValueTypeInvalid",
            "spec.enabled",
            'Invalid value: "null": spec.enabled in body must be of type boolean: "null"',
        ),
        (
            {"replicas": 2**40},
            "FieldValueInvalid",
            "spec.replicas",
            None,
        ),
    ],
)
def test_validation_wording(spec: dict[str, Any], reason: str, field: str, message: str | None) -> None:
    causes = CRDVersionSchema(SCHEMA).validate(_cr(**spec))
    match = [c for c in causes if c["field"] == field and c["reason"] == reason]
    assert match, causes
    if message is not None:
        assert match[0]["message"] == message


def test_pattern_and_required() -> None:
    obj = _cr(size="ten")
    c = _one(CRDVersionSchema(SCHEMA).validate(obj))
    assert c == {
        "reason": "FieldValueInvalid",
        "message": "Invalid value: \"ten\": spec.size in body should match '^[0-9]+Gi$'",
        "field": "spec.size",
    }
    del obj["spec"]["size"]
    assert _one(CRDVersionSchema(SCHEMA).validate(obj)) == {
        "reason": "FieldValueRequired",
        "message": "Required value",
        "field": "spec.size",
    }


def test_nullable_and_integral_floats() -> None:
    schema = CRDVersionSchema(SCHEMA)
    assert schema.validate(_cr(storage={"size": None})) == []
    assert schema.validate(_cr(replicas=1.0)) == []  # JSON 1.0 is an integer to kube-openapi.


def test_root_metadata_is_not_schema_validated() -> None:
    schema = CRDVersionSchema(
        {
            "type": "object",
            "additionalProperties": False,
            "maxProperties": 1,
            "properties": {"spec": {"type": "object"}},
        }
    )
    assert schema.validate({"apiVersion": "v1", "kind": "K", "metadata": {"x": 1}, "spec": {}}) == []
    causes = schema.validate({"spec": {}, "other": 1})
    assert {(c["field"], c["reason"]) for c in causes} == {
        ("", "FieldValueTooMany"),
        ("other", "FieldValueInvalid"),
    }
    assert _fields(causes)["other"]["message"] == "Invalid value: 1: other in body is a forbidden property"


def test_unique_items_list_type_and_combinators() -> None:
    schema = CRDVersionSchema(
        {
            "type": "object",
            "properties": {
                "u": {"type": "array", "uniqueItems": True, "items": {"type": "integer"}},
                "s": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
                "m": {
                    "type": "array",
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["name"],
                    "items": {"type": "object", "properties": {"name": {"type": "string"}}},
                },
                "any": {"type": "string", "anyOf": [{"pattern": "^a"}, {"pattern": "^b"}]},
                "one": {"type": "integer", "oneOf": [{"minimum": 0}, {"maximum": 10}]},
                "neg": {"type": "string", "not": {"enum": ["forbidden"]}},
            },
        }
    )
    causes = schema.validate(
        {
            "u": [1, 1],
            "s": ["a", "a"],
            "m": [{"name": "x"}, {"name": "x"}],
            "any": "c",
            "one": 5,
            "neg": "forbidden",
        },
        root=False,
    )
    by_field = {c["field"]: c for c in causes}
    assert by_field["u"]["message"] == "Invalid value: [1,1]: u in body shouldn't contain duplicates"
    assert by_field["s[1]"] == {
        "reason": "FieldValueDuplicate",
        "message": 'Duplicate value: "a"',
        "field": "s[1]",
    }
    assert by_field["m[1]"]["reason"] == "FieldValueDuplicate"
    assert "must validate at least one schema (anyOf)" in by_field["any"]["message"]
    assert "one and only one schema (oneOf)" in by_field["one"]["message"]
    assert "must not validate the schema (not)" in by_field["neg"]["message"]
    assert schema.validate({"any": "bee", "one": -1, "neg": "ok", "u": [1, 2]}, root=False) == []


def test_format_value_like_field_errors() -> None:
    assert format_value("x") == '"x"'
    assert format_value(2) == "2"
    assert format_value(2.0) == "2"
    assert format_value(2.5) == "2.5"
    assert format_value(True) == "true"
    assert format_value(None) == "null"
    assert format_value({"b": 1, "a": [1]}) == '{"a":[1],"b":1}'


# --- defaulting --------------------------------------------------------------------------------------


def test_defaults_apply_where_parent_exists_and_recurse() -> None:
    obj = _cr(nodes=[{"name": "a"}, {"name": "b", "weight": 3}])
    CRDVersionSchema(SCHEMA).default(obj)
    spec = obj["spec"]
    assert spec["replicas"] == 1
    assert spec["mode"] == "safe"
    # storage was defaulted to {} and then its own properties were defaulted inside it.
    assert spec["storage"] == {"class": "standard"}
    assert [n["weight"] for n in spec["nodes"]] == [10, 3]
    # status is absent and has no default, so nothing under it is created.
    assert "status" not in obj


def test_defaults_do_not_overwrite_and_replace_non_nullable_null() -> None:
    obj = _cr(replicas=0, mode=None, storage={"class": "fast", "size": None})
    CRDVersionSchema(SCHEMA).default(obj)
    assert obj["spec"]["replicas"] == 0
    assert obj["spec"]["mode"] == "safe"  # null on a non-nullable field gets the default
    assert obj["spec"]["storage"] == {"class": "fast", "size": None}  # nullable keeps its null


def test_default_values_are_copies() -> None:
    schema = {"type": "object", "properties": {"spec": {"type": "object", "default": {"a": [1]}}}}
    one, two = {}, {}
    checker = CRDVersionSchema(schema)
    checker.default(one)
    checker.default(two)
    one["spec"]["a"].append(2)
    assert two["spec"]["a"] == [1]
    assert schema["properties"]["spec"]["default"] == {"a": [1]}


def test_defaults_inside_additional_properties_and_items() -> None:
    schema = {
        "type": "object",
        "properties": {
            "m": {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "properties": {"x": {"type": "integer", "default": 7}},
                },
            },
            "l": {"type": "array", "items": {"type": "string", "default": "d"}},
        },
    }
    obj: dict[str, Any] = {"m": {"k1": {}, "k2": {"x": 1}}, "l": ["a", None]}
    CRDVersionSchema(schema).default(obj)
    assert obj == {"m": {"k1": {"x": 7}, "k2": {"x": 1}}, "l": ["a", "d"]}


# --- pruning -----------------------------------------------------------------------------------------


def test_prune_drops_unknown_fields_keeps_root_meta_and_preserved() -> None:
    obj = _cr(unknown=1, free={"kept": {"deep": True}}, nodes=[{"name": "a", "junk": 1}])
    obj["topLevelJunk"] = True
    obj["metadata"]["anything"] = "left alone"
    obj["status"] = {"phase": "Ready", "junk": 2}
    CRDVersionSchema(SCHEMA).prune(obj)
    assert obj == {
        "apiVersion": "x.io/v1",
        "kind": "Thing",
        "metadata": {"name": "t", "anything": "left alone"},
        "spec": {"size": "1Gi", "free": {"kept": {"deep": True}}, "nodes": [{"name": "a"}]},
        "status": {"phase": "Ready"},
    }


def test_prune_inside_preserve_unknown_fields_still_prunes_known_properties() -> None:
    schema = {
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": True,
        "properties": {"spec": {"type": "object", "properties": {"a": {"type": "string"}}}},
    }
    obj = {"spec": {"a": "x", "b": "y"}, "extra": {"z": 1}}
    CRDVersionSchema(schema).prune(obj)
    assert obj == {"spec": {"a": "x"}, "extra": {"z": 1}}


def test_prune_embedded_resource_keeps_its_meta() -> None:
    schema = {
        "type": "object",
        "properties": {
            "template": {
                "type": "object",
                "x-kubernetes-embedded-resource": True,
                "properties": {"spec": {"type": "object", "properties": {"x": {"type": "string"}}}},
            }
        },
    }
    obj = {
        "template": {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "a"},
            "spec": {"x": "1", "y": 2},
            "z": 3,
        }
    }
    CRDVersionSchema(schema).prune(obj)
    assert obj == {
        "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"}, "spec": {"x": "1"}}
    }


def test_pruned_paths_reports_without_changing() -> None:
    obj = _cr(unknown=1, nodes=[{"junk": 1}])
    before = copy.deepcopy(obj)
    assert sorted(CRDVersionSchema(SCHEMA).pruned_paths(obj)) == ["spec.nodes[0].junk", "spec.unknown"]
    assert obj == before


# --- properties --------------------------------------------------------------------------------------

_scalar = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.text("ab", max_size=3))
_values = st.recursive(
    _scalar,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(
            st.sampled_from(["replicas", "mode", "nodes", "name", "weight", "x", "storage", "class"]),
            inner,
            max_size=4,
        ),
    ),
    max_leaves=12,
)


@settings(max_examples=150)
@given(st.dictionaries(st.sampled_from(["spec", "status", "junk"]), _values, max_size=3))
def test_prune_is_idempotent_and_default_is_stable(obj: dict[str, Any]) -> None:
    schema = CRDVersionSchema(SCHEMA)
    once = schema.prune(copy.deepcopy(obj))
    assert schema.prune(copy.deepcopy(once)) == once
    defaulted = schema.default(copy.deepcopy(once))
    assert schema.default(copy.deepcopy(defaulted)) == defaulted
    # Defaulting then pruning never yields a different validation verdict on a second round.
    assert schema.validate(schema.prune(schema.default(copy.deepcopy(defaulted)))) == schema.validate(
        defaulted
    )


@given(
    st.fixed_dictionaries(
        {},
        optional={
            "replicas": st.integers(0, 1),
            "mode": st.sampled_from(["fast", "safe"]),
            "nodes": st.lists(st.fixed_dictionaries({"name": st.text("ab", max_size=2)}), max_size=2),
        },
    )
)
def test_defaulting_a_valid_object_keeps_it_valid(spec: dict[str, Any]) -> None:
    schema = CRDVersionSchema(SCHEMA)
    obj = _cr(**spec)
    assert schema.validate(obj) == []
    assert schema.validate(schema.default(obj)) == []


# --- the CRD definition ---------------------------------------------------------------------------


def _crd(**overrides: Any) -> dict[str, Any]:
    crd: dict[str, Any] = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "things.x.io"},
        "spec": {
            "group": "x.io",
            "scope": "Namespaced",
            "names": {
                "plural": "things",
                "singular": "thing",
                "kind": "Thing",
                "listKind": "ThingList",
                "shortNames": ["th"],
            },
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": copy.deepcopy(SCHEMA)},
                    "subresources": {
                        "status": {},
                        "scale": {
                            "specReplicasPath": ".spec.replicas",
                            "statusReplicasPath": ".status.replicas",
                        },
                    },
                    "additionalPrinterColumns": [
                        {"name": "Mode", "type": "string", "jsonPath": ".spec.mode"}
                    ],
                }
            ],
        },
    }
    crd["spec"].update(overrides)
    return crd


def _fields(causes: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    return {c["field"]: c for c in causes}


def test_valid_crd() -> None:
    assert validate_crd_definition(_crd()) == []


def test_crd_names_group_scope() -> None:
    crd = _crd(group="nodots", scope="Global")
    crd["spec"]["names"].update(plural="Things", kind="", listKind="")
    got = _fields(validate_crd_definition(crd))
    assert (
        got["metadata.name"]["message"]
        == 'Invalid value: "things.x.io": must be spec.names.plural+"."+spec.group'
    )
    assert got["spec.group"]["message"] == 'Invalid value: "nodots": should be a domain with at least one dot'
    assert got["spec.scope"] == {
        "reason": "FieldValueNotSupported",
        "message": 'Unsupported value: "Global": supported values: "Cluster", "Namespaced"',
        "field": "spec.scope",
    }
    assert got["spec.names.plural"]["reason"] == "FieldValueInvalid"
    assert got["spec.names.kind"]["reason"] == "FieldValueRequired"
    assert got["spec.names.listKind"]["reason"] == "FieldValueRequired"


def test_crd_storage_versions() -> None:
    crd = _crd()
    second = copy.deepcopy(crd["spec"]["versions"][0])
    second["name"] = "v2"
    crd["spec"]["versions"].append(second)
    got = _fields(validate_crd_definition(crd))
    assert got["spec.versions"]["message"].endswith("must have exactly one version marked as storage version")
    crd["spec"]["versions"][1]["storage"] = False
    assert validate_crd_definition(crd) == []
    crd["spec"]["versions"][1]["name"] = "v1"
    assert _fields(validate_crd_definition(crd))["spec.versions[1].name"]["reason"] == "FieldValueDuplicate"
    assert (
        _fields(validate_crd_definition(_crd(versions=[])))["spec.versions"]["reason"] == "FieldValueRequired"
    )


def test_crd_structural_schema_rules() -> None:
    crd = _crd()
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    spec = schema["properties"]["spec"]["properties"]
    del spec["replicas"]["type"]
    spec["tags"]["items"] = {"minLength": 1}
    spec["labels"]["properties"] = {"a": {"type": "string"}}
    spec["uniq"] = {"type": "array", "uniqueItems": True, "items": {"type": "string"}}
    spec["mode"]["default"] = "turbo"
    spec["storage"]["default"] = {"class": 5}
    spec["port"]["default"] = "http"  # valid: int-or-string without a type
    got = _fields(validate_crd_definition(crd))
    base = "spec.versions[0].schema.openAPIV3Schema.properties[spec]"
    assert got[f"{base}.properties[replicas].type"]["message"] == (
        "Required value: must not be empty for specified object fields"
    )
    assert (
        got[f"{base}.properties[tags].items.type"]["message"]
        == "Required value: must not be empty for specified array items"
    )
    assert got[f"{base}.properties[labels].additionalProperties"]["reason"] == "FieldValueForbidden"
    assert got[f"{base}.properties[uniq].uniqueItems"]["reason"] == "FieldValueForbidden"
    assert got[f"{base}.properties[mode].default"]["reason"] == "FieldValueNotSupported"
    assert got[f"{base}.properties[storage].default.class"]["reason"] == "FieldValueTypeInvalid"
    assert not any("port" in f for f in got)


def test_crd_root_schema_and_missing_schema() -> None:
    crd = _crd()
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"] = {"type": "string"}
    assert _fields(validate_crd_definition(crd))["spec.versions[0].schema.openAPIV3Schema.type"][
        "message"
    ] == ('Invalid value: "string": must be object at the root')
    del crd["spec"]["versions"][0]["schema"]
    assert _fields(validate_crd_definition(crd))["spec.versions[0].schema.openAPIV3Schema"]["message"] == (
        "Required value: schemas are required"
    )


def test_crd_root_metadata_schema_is_restricted() -> None:
    crd = _crd()
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    schema["properties"]["metadata"] = {
        "type": "object",
        "properties": {"name": {"type": "string", "maxLength": 10}},
    }
    assert validate_crd_definition(crd) == []
    checker = CRDVersionSchema(schema)
    assert checker.validate(_cr()) == []
    long_name = _cr()
    long_name["metadata"]["name"] = "a-much-too-long-name"
    assert _fields(checker.validate(long_name))["metadata.name"]["reason"] == "FieldValueTooLong"
    schema["properties"]["metadata"]["properties"]["labels"] = {"type": "object"}
    schema["properties"]["metadata"]["required"] = ["name"]
    got = _fields(validate_crd_definition(crd))
    base = "spec.versions[0].schema.openAPIV3Schema.properties[metadata]"
    assert got[base]["reason"] == "FieldValueForbidden"
    assert got[f"{base}.properties[labels]"]["reason"] == "FieldValueForbidden"


def test_embedded_resource_needs_api_version_and_kind() -> None:
    schema = CRDVersionSchema(
        {
            "type": "object",
            "properties": {
                "template": {
                    "type": "object",
                    "x-kubernetes-embedded-resource": True,
                    "x-kubernetes-preserve-unknown-fields": True,
                }
            },
        }
    )
    assert schema.validate({"template": {"apiVersion": "v1", "kind": "Pod"}}, root=False) == []
    got = _fields(schema.validate({"template": {"kind": "Pod"}}, root=False))
    assert got["template.apiVersion"]["message"] == "Required value: must not be empty"


def test_crd_default_with_unknown_fields_is_rejected() -> None:
    crd = _crd()
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    spec["storage"]["default"] = {"class": "x", "bogus": 1}
    got = _fields(validate_crd_definition(crd))
    key = "spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[storage].default"
    assert "must not have unknown fields: bogus" in got[key]["message"]


def test_crd_printer_columns_and_scale() -> None:
    crd = _crd()
    version = crd["spec"]["versions"][0]
    version["additionalPrinterColumns"] = [
        {"name": "Bad", "type": "float", "jsonPath": ".spec.x"},
        {"name": "", "type": "string", "jsonPath": "spec["},
    ]
    version["subresources"]["scale"] = {"specReplicasPath": ".status.replicas", "statusReplicasPath": ""}
    got = _fields(validate_crd_definition(crd))
    cols = "spec.versions[0].additionalPrinterColumns"
    assert got[f"{cols}[0].type"]["reason"] == "FieldValueNotSupported"
    assert got[f"{cols}[1].name"]["reason"] == "FieldValueRequired"
    assert got[f"{cols}[1].jsonPath"]["reason"] == "FieldValueInvalid"
    scale = "spec.versions[0].subresources.scale"
    assert got[f"{scale}.specReplicasPath"]["reason"] == "FieldValueInvalid"
    assert got[f"{scale}.statusReplicasPath"]["reason"] == "FieldValueRequired"
