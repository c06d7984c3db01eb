"""Typed admission handlers: JSONPatch, field-error wording, create/update/delete dispatch."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from rook_py.framework.client import errors
from rook_py.framework.webhook import FieldErrors, forbidden, invalid, json_patch_diff, required
from rook_py.framework.webhook.admission import (
    AdmissionRequest,
    Denied,
    defaulting_handle,
    validating_handle,
)
from rook_py.framework.webhook.conversion import ConversionHandler, Hub

JSON = dict[str, Any]


def apply_patch(doc: Any, ops: list[JSON]) -> Any:
    """A minimal RFC 6902 applier for add/remove/replace (what the diff emits)."""
    doc = copy.deepcopy(doc)
    for op in ops:
        tokens = [t.replace("~1", "/").replace("~0", "~") for t in op["path"].split("/")[1:]]
        if not tokens:
            doc = op["value"]
            continue
        parent = doc
        for t in tokens[:-1]:
            parent = parent[int(t)] if isinstance(parent, list) else parent[t]
        last: Any = int(tokens[-1]) if isinstance(parent, list) else tokens[-1]
        if op["op"] == "remove":
            del parent[last]
        else:
            parent[last] = op["value"]
    return doc


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.sampled_from(["a", "b/c", "d~e", "f"]), children, max_size=3),
    max_leaves=12)


def as_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


@given(json_values, json_values)
@example(before=[{"a": {"d~e": False}}, False], after=[{"a": {"d~e": 0}}, False])
def test_patch_turns_before_into_after(before: Any, after: Any) -> None:
    ops = json_patch_diff({"x": before}, {"x": after})
    # Compared as JSON text: Python's == holds for False and 0 (or True and 1) at any depth,
    # which are different JSON values the patch must change.
    assert as_json(apply_patch({"x": before}, ops)) == as_json({"x": after})
    if as_json(before) == as_json(after):
        assert ops == []


def test_patch_escapes_pointer_tokens() -> None:
    ops = json_patch_diff({"metadata": {}}, {"metadata": {"labels": {"app.kubernetes.io/name": "x"}}})
    assert ops == [{"op": "add", "path": "/metadata/labels", "value": {"app.kubernetes.io/name": "x"}}]
    ops = json_patch_diff({"l": {"a/b": 1}}, {"l": {"a/b": 2}})
    assert ops == [{"op": "replace", "path": "/l/a~1b", "value": 2}]


def test_field_errors_read_like_apimachinery() -> None:
    assert str(invalid("spec.consul.replicas", 2, "must be odd")) == \
        "spec.consul.replicas: Invalid value: 2: must be odd"
    assert str(invalid("spec.x", "abc", "bad")) == 'spec.x: Invalid value: "abc": bad'
    assert str(required("spec.cluster.name")) == "spec.cluster.name: Required value"
    assert str(forbidden("spec.a", "may not change")) == "spec.a: Forbidden: may not change"
    status = FieldErrors([invalid("spec.consul.replicas", 2, "must be odd")]).to_status(
        "ChubaoMonitor", "rook.io", "m")
    assert status["code"] == 422 and status["reason"] == "Invalid"
    assert status["message"] == ('ChubaoMonitor.rook.io "m" is invalid: '
                                 "spec.consul.replicas: Invalid value: 2: must be odd")
    assert status["details"]["causes"] == [{"reason": "FieldValueInvalid", "field": "spec.consul.replicas",
                                            "message": "Invalid value: 2: must be odd"}]
    two = FieldErrors([required("spec.a"), required("spec.b")]).to_status("K", "g", "n")
    assert two["message"] == 'K.g "n" is invalid: [spec.a: Required value, spec.b: Required value]'


def review(operation: str, obj: JSON | None, old: JSON | None = None, dry_run: bool = False) -> JSON:
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "u-1", "operation": operation, "dryRun": dry_run,
                        "kind": {"group": "example.com", "version": "v1", "kind": "Widget"},
                        "resource": {"group": "example.com", "version": "v1", "resource": "widgets"},
                        "name": "w", "namespace": "ns", "object": obj, "oldObject": old}}


class Defaulter:
    def default(self, request: AdmissionRequest, obj: JSON) -> None:
        obj.setdefault("spec", {}).setdefault("size", 3)
        if obj["spec"].get("size") == 0:
            raise FieldErrors([invalid("spec.size", 0, "must be positive")])


class Validator:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def validate_create(self, request: AdmissionRequest, obj: JSON) -> list[str]:
        self.calls.append(("create", obj))
        if obj["spec"]["size"] % 2 == 0:
            raise FieldErrors([invalid("spec.size", obj["spec"]["size"], "must be odd")],
                              warnings=["size 4 was asked"])
        return ["looks fine"]

    def validate_update(self, request: AdmissionRequest, old: JSON, new: JSON) -> list[str]:
        self.calls.append(("update", (old, new)))
        if new["spec"]["size"] < old["spec"]["size"]:
            raise Denied("shrinking is not supported")
        return []

    def validate_delete(self, request: AdmissionRequest, obj: JSON) -> list[str]:
        self.calls.append(("delete", obj))
        raise errors.Forbidden("protected")


def test_defaulter_answers_a_patch_and_leaves_the_request_untouched() -> None:
    handle = defaulting_handle(Defaulter())
    obj = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    body = review("CREATE", obj)
    answer = handle(AdmissionRequest.from_review(body))["response"]
    assert answer["uid"] == "u-1" and answer["allowed"] is True and answer["patchType"] == "JSONPatch"
    assert json.loads(base64.b64decode(answer["patch"])) == [
        {"op": "add", "path": "/spec", "value": {"size": 3}}]
    assert "spec" not in body["request"]["object"]
    unchanged = handle(AdmissionRequest.from_review(review("CREATE", {**obj, "spec": {"size": 5}})))
    assert "patch" not in unchanged["response"]
    refused = handle(AdmissionRequest.from_review(review("CREATE", {**obj, "spec": {"size": 0}})))
    assert refused["response"]["allowed"] is False and refused["response"]["status"]["code"] == 422
    assert handle(AdmissionRequest.from_review(review("DELETE", None, obj)))["response"] == {
        "uid": "u-1", "allowed": True}


def test_validator_dispatches_by_operation() -> None:
    validator = Validator()
    handle = validating_handle(validator)
    obj = {"metadata": {"name": "w"}, "spec": {"size": 3}}
    ok = handle(AdmissionRequest.from_review(review("CREATE", obj)))["response"]
    assert ok == {"uid": "u-1", "allowed": True, "warnings": ["looks fine"]}
    bad = handle(AdmissionRequest.from_review(review("CREATE", {**obj, "spec": {"size": 4}})))["response"]
    assert bad["allowed"] is False and bad["warnings"] == ["size 4 was asked"]
    assert bad["status"]["message"] == 'Widget.example.com "w" is invalid: spec.size: Invalid value: 4: must be odd'
    shrink = handle(AdmissionRequest.from_review(
        review("UPDATE", {**obj, "spec": {"size": 1}}, obj)))["response"]
    assert shrink["status"]["code"] == 403 and shrink["status"]["message"] == "shrinking is not supported"
    gone = handle(AdmissionRequest.from_review(review("DELETE", None, obj)))["response"]
    assert gone["status"]["code"] == 403 and gone["status"]["reason"] == "Forbidden"
    assert [c[0] for c in validator.calls] == ["create", "create", "update", "delete"]


def test_a_review_without_uid_is_refused() -> None:
    with pytest.raises(ValueError):
        AdmissionRequest.from_review({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                                      "request": {}})


def v1_to_hub(obj: JSON) -> JSON:  # v1alpha1 {spec.count} <-> hub v1 {spec.replicas}
    obj["spec"] = {"replicas": obj["spec"].pop("count"), **obj["spec"]}
    return obj


def hub_to_v1(obj: JSON) -> JSON:
    obj["spec"] = {"count": obj["spec"].pop("replicas"), **obj["spec"]}
    return obj


def test_conversion_round_trips_through_the_hub() -> None:
    handler = ConversionHandler()
    handler.register(Hub("example.com", "Widget", "v1").spoke("v1alpha1", v1_to_hub, hub_to_v1))
    old = {"apiVersion": "example.com/v1alpha1", "kind": "Widget", "metadata": {"name": "w"},
           "spec": {"count": 3, "colour": "red"}}
    answer = handler.convert_review({"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
                                     "request": {"uid": "c1", "desiredAPIVersion": "example.com/v1",
                                                 "objects": [old]}})["response"]
    assert answer["uid"] == "c1" and answer["result"] == {"status": "Success"}
    new = answer["convertedObjects"][0]
    assert new["apiVersion"] == "example.com/v1" and new["spec"] == {"replicas": 3, "colour": "red"}
    back = handler.convert_review({"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
                                   "request": {"uid": "c2", "desiredAPIVersion": "example.com/v1alpha1",
                                               "objects": [new]}})["response"]["convertedObjects"][0]
    assert back == old
    failed = handler.convert_review({"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
                                     "request": {"uid": "c3", "desiredAPIVersion": "example.com/v2",
                                                 "objects": [old]}})["response"]
    assert failed["result"]["status"] == "Failure" and "v2" in failed["result"]["message"]
