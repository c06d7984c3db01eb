"""What a list or watch selects: storage.SelectionPredicate of kube-apiserver.

``make_filter`` parses the request's namespace, label and field selectors once
(staging/src/k8s.io/apiserver/pkg/storage/selection_predicate.go); the Engine and the watch
streams then match every object against the resulting ``Filter``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rook_py.framework.client import errors
from rook_py.framework.kube.selectors import (
    FieldSelector,
    Selector,
    go_quote,
    parse_field_selector,
    parse_selector,
    selector_from_label_selector,
)

from .registry import ServedResource

JSON = dict[str, Any]


def label_selector_string(selector: Any) -> str:
    """metav1.LabelSelector -> its string form, as Scale.status.selector carries it
    (``LabelSelectorAsSelector(...).String()`` upstream)."""
    if not isinstance(selector, dict):
        return ""
    try:
        return str(selector_from_label_selector(selector))
    except ValueError:
        return ""


@dataclass(frozen=True)
class Filter:
    """What a list or watch selects: namespace, label and field selectors."""

    namespace: str | None = None
    labels: Selector | None = None
    fields: FieldSelector | None = None

    def matches(self, sr: ServedResource, obj: JSON) -> bool:
        meta = obj.get("metadata") or {}
        if self.namespace and meta.get("namespace") != self.namespace:
            return False
        if self.labels is not None and not self.labels.empty() and not self.labels.matches(meta.get("labels") or {}):
            return False
        if self.fields is not None and not self.fields.empty():
            values = {r.field: sr.strategy.field_value(obj, r.field) or "" for r in self.fields.requirements}
            return self.fields.matches(values)
        return True

    @property
    def trivial(self) -> bool:
        return (self.labels is None or self.labels.empty()) and (self.fields is None or self.fields.empty())


def make_filter(sr: ServedResource, namespace: str | None, label_selector: str | None,
                field_selector: str | None) -> Filter:
    """Parse selectors; 400 BadRequest for bad syntax or a field the resource cannot select on."""
    labels = fields = None
    try:
        if label_selector:
            labels = parse_selector(label_selector)
        if field_selector:
            fields = parse_field_selector(field_selector)
    except ValueError as exc:
        # the parsers' messages are kube-apiserver's, word for word
        raise errors.BadRequest(str(exc)) from None
    if fields is not None:
        for req in fields.requirements:
            try:
                sr.strategy.field_value({}, req.field)
            except KeyError:
                raise errors.BadRequest(_unknown_field_message(sr, req.field)) from None
    return Filter(namespace or None, labels, fields)


def _unknown_field_message(sr: ServedResource, field: str) -> str:
    """A resource with its own selectable fields registers a field-label conversion that says
    "field label not supported"; every other one falls back to
    DefaultMetaV1FieldSelectorConversion (apimachinery pkg/runtime/conversion.go)."""
    if sr.strategy.selectable_fields:
        return f"field label not supported: {field}"
    return f'{go_quote(field)} is not a known field selector: only "metadata.name", "metadata.namespace"'
