"""One CRD version's ``openAPIV3Schema`` and the algorithms a served custom resource goes through.

``CRDVersionSchema.validate`` is kube-openapi's validator with its error wording, converted to
field errors as apiextensions-apiserver/pkg/apiserver/validation/validation.go does; ``default``
and ``prune`` delegate to defaulting.py and pruning.py.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from . import pruning
from .defaulting import apply_defaults
from .fielderrors import (
    DUPLICATE,
    INVALID,
    NOT_SUPPORTED,
    REQUIRED,
    TOO_LONG,
    TOO_MANY,
    TYPE_INVALID,
    Cause,
    cause,
    go_number,
    supported_values,
)
from .formats import STRING_FORMATS
from .pruning import ROOT_KEYS, child_path

# =============================================================================================
# Schema validation (k8s.io/kube-openapi/pkg/validation/validate wording)
# =============================================================================================


def _json_type(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "integer" if v.is_integer() else "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return type(v).__name__


def _type_matches(t: str, v: Any) -> bool:
    actual = _json_type(v)
    if t == "number":
        return actual in ("integer", "number")
    return actual == t


class CRDVersionSchema:
    """A version's ``openAPIV3Schema`` with the three algorithms the CR storage runs.

    The schema dict is read, never changed. ``validate``, ``default`` and ``prune`` treat
    ``obj`` as a whole custom resource (root ``apiVersion``/``kind``/``metadata`` exempt) unless
    ``root=False`` is passed for a sub-value.
    """

    def __init__(self, schema: Mapping[str, Any] | None) -> None:
        self.schema: Mapping[str, Any] = schema or {}
        self._patterns: dict[str, re.Pattern[str]] = {}

    # --- validation -----------------------------------------------------------------------------

    def validate(self, obj: Any, *, root: bool = True, path: str = "") -> list[Cause]:
        """Every way ``obj`` violates the schema, as causes (empty when valid)."""
        causes: list[Cause] = []
        self._validate(obj, self.schema, path, causes, root)
        return causes

    def _pattern(self, pattern: str) -> re.Pattern[str] | None:
        if pattern not in self._patterns:
            try:
                self._patterns[pattern] = re.compile(pattern)
            except re.error:
                return None
        return self._patterns[pattern]

    def _validate(
        self, v: Any, s: Mapping[str, Any], path: str, out: list[Cause], root: bool = False
    ) -> None:
        name = path or "."
        if v is None:
            # null is acceptable where the schema is nullable, or carries no type at all.
            if s.get("nullable") or not (s.get("type") or s.get("x-kubernetes-int-or-string")):
                return
            want = "integer,string" if s.get("x-kubernetes-int-or-string") else s["type"]
            out.append(
                cause(
                    TYPE_INVALID, path, value="null", detail=f'{name} in body must be of type {want}: "null"'
                )
            )
            return

        t = s.get("type")
        if s.get("x-kubernetes-int-or-string"):
            if _json_type(v) not in ("integer", "string"):
                out.append(
                    cause(
                        TYPE_INVALID,
                        path,
                        value=_json_type(v),
                        detail=f'{name} in body must be of type integer,string: "{_json_type(v)}"',
                    )
                )
                return
        elif t and not _type_matches(t, v):
            actual = _json_type(v)
            out.append(
                cause(
                    TYPE_INVALID, path, value=actual, detail=f'{name} in body must be of type {t}: "{actual}"'
                )
            )
            return

        if "enum" in s and isinstance(s["enum"], list) and not any(_enum_equal(v, e) for e in s["enum"]):
            out.append(cause(NOT_SUPPORTED, path, value=v, detail=supported_values(s["enum"])))

        if isinstance(v, bool):
            pass
        elif isinstance(v, int | float):
            self._validate_number(v, s, path, name, out)
        elif isinstance(v, str):
            self._validate_string(v, s, path, name, out)
        elif isinstance(v, list):
            self._validate_array(v, s, path, name, out)
        elif isinstance(v, dict):
            self._validate_object(v, s, path, name, out, root)

        self._validate_combinators(v, s, path, name, out)

    def _validate_number(
        self, v: float, s: Mapping[str, Any], path: str, name: str, out: list[Cause]
    ) -> None:
        mx = s.get("maximum")
        if isinstance(mx, int | float) and not isinstance(mx, bool):
            if s.get("exclusiveMaximum") and v >= mx:
                out.append(
                    cause(
                        INVALID, path, value=v, detail=f"{name} in body should be less than {go_number(mx)}"
                    )
                )
            elif v > mx:
                out.append(
                    cause(
                        INVALID,
                        path,
                        value=v,
                        detail=f"{name} in body should be less than or equal to {go_number(mx)}",
                    )
                )
        mn = s.get("minimum")
        if isinstance(mn, int | float) and not isinstance(mn, bool):
            if s.get("exclusiveMinimum") and v <= mn:
                out.append(
                    cause(
                        INVALID,
                        path,
                        value=v,
                        detail=f"{name} in body should be greater than {go_number(mn)}",
                    )
                )
            elif v < mn:
                out.append(
                    cause(
                        INVALID,
                        path,
                        value=v,
                        detail=f"{name} in body should be greater than or equal to {go_number(mn)}",
                    )
                )
        mult = s.get("multipleOf")
        if isinstance(mult, int | float) and not isinstance(mult, bool) and mult > 0:
            q = v / mult
            if not math.isclose(q, round(q), rel_tol=0, abs_tol=1e-9):
                out.append(
                    cause(
                        INVALID,
                        path,
                        value=v,
                        detail=f"{name} in body should be a multiple of {go_number(mult)}",
                    )
                )
        fmt = s.get("format")
        if fmt == "int32" and _json_type(v) == "integer" and not -(2**31) <= v < 2**31:
            out.append(
                cause(
                    INVALID, path, value=v, detail=f'{name} in body must be of type int32: "{go_number(v)}"'
                )
            )

    def _validate_string(self, v: str, s: Mapping[str, Any], path: str, name: str, out: list[Cause]) -> None:
        n = len(v)  # Upstream counts runes (utf8.RuneCountInString); Python str length is that.
        mx = s.get("maxLength")
        if isinstance(mx, int) and n > mx:
            out.append(cause(TOO_LONG, path, value=v, detail=f"may not be longer than {mx}"))
        mn = s.get("minLength")
        if isinstance(mn, int) and n < mn:
            out.append(
                cause(INVALID, path, value=v, detail=f"{name} in body should be at least {mn} chars long")
            )
        pattern = s.get("pattern")
        if isinstance(pattern, str):
            rx = self._pattern(pattern)
            if rx is not None and rx.search(v) is None:
                out.append(cause(INVALID, path, value=v, detail=f"{name} in body should match '{pattern}'"))
        fmt = s.get("format")
        if isinstance(fmt, str) and fmt in STRING_FORMATS and not STRING_FORMATS[fmt](v):
            out.append(cause(INVALID, path, value=v, detail=f'{name} in body must be of type {fmt}: "{v}"'))

    def _validate_array(
        self, v: list[Any], s: Mapping[str, Any], path: str, name: str, out: list[Cause]
    ) -> None:
        mx = s.get("maxItems")
        if isinstance(mx, int) and len(v) > mx:
            out.append(cause(TOO_MANY, path, value=len(v), detail=f"must have at most {mx} items"))
        mn = s.get("minItems")
        if isinstance(mn, int) and len(v) < mn:
            out.append(
                cause(INVALID, path, value=v, detail=f"{name} in body should have at least {mn} items")
            )
        if s.get("uniqueItems"):
            for i, item in enumerate(v):
                if any(_enum_equal(item, other) for other in v[:i]):
                    out.append(
                        cause(INVALID, path, value=v, detail=f"{name} in body shouldn't contain duplicates")
                    )
                    break
        items = s.get("items")
        if isinstance(items, dict):
            for i, item in enumerate(v):
                self._validate(item, items, f"{path}[{i}]", out)
        self._validate_list_type(v, s, path, out)

    @staticmethod
    def _validate_list_type(v: list[Any], s: Mapping[str, Any], path: str, out: list[Cause]) -> None:
        """x-kubernetes-list-type set/map uniqueness (apiextensions listtype validation)."""
        list_type = s.get("x-kubernetes-list-type")
        if list_type == "set":
            for i, item in enumerate(v):
                if any(_enum_equal(item, o) for o in v[:i]):
                    out.append(cause(DUPLICATE, f"{path}[{i}]", value=item))
        elif list_type == "map":
            keys = s.get("x-kubernetes-list-map-keys") or []
            seen: list[dict[str, Any]] = []
            for i, item in enumerate(v):
                if not isinstance(item, dict):
                    continue
                key = {k: item.get(k) for k in keys}
                if key in seen:
                    out.append(cause(DUPLICATE, f"{path}[{i}]", value=key))
                else:
                    seen.append(key)

    def _validate_object(
        self, v: dict[str, Any], s: Mapping[str, Any], path: str, name: str, out: list[Cause], root: bool
    ) -> None:
        keys = [k for k in v if not (root and k in ROOT_KEYS)]
        if s.get("x-kubernetes-embedded-resource"):
            # An embedded object must say what it is (apiextensions objectmeta validation).
            for field in ("apiVersion", "kind"):
                if not v.get(field):
                    out.append(cause(REQUIRED, child_path(path, field), detail="must not be empty"))
        mx = s.get("maxProperties")
        if isinstance(mx, int) and len(keys) > mx:
            out.append(cause(TOO_MANY, path, value=len(keys), detail=f"must have at most {mx} items"))
        mn = s.get("minProperties")
        if isinstance(mn, int) and len(keys) < mn:
            out.append(
                cause(INVALID, path, value=v, detail=f"{name} in body should have at least {mn} properties")
            )
        for req in s.get("required") or []:
            if req not in v and not (root and req in ROOT_KEYS):
                out.append(cause(REQUIRED, child_path(path, req)))
        props: Mapping[str, Any] = s.get("properties") or {}
        additional = s.get("additionalProperties")
        for k in keys:
            child = child_path(path, k)
            if k in props and isinstance(props[k], dict):
                self._validate(v[k], props[k], child, out)
            elif isinstance(additional, dict):
                self._validate(v[k], additional, child, out)
            elif additional is False:
                out.append(
                    cause(INVALID, child, value=v[k], detail=f"{child} in body is a forbidden property")
                )
        meta_schema = props.get("metadata")
        if root and isinstance(meta_schema, dict) and isinstance(v.get("metadata"), dict):
            # The only part of ObjectMeta a CRD schema may constrain: name and generateName.
            meta_props: Mapping[str, Any] = meta_schema.get("properties") or {}
            for field in ("name", "generateName"):
                sub = meta_props.get(field)
                if isinstance(sub, dict) and field in v["metadata"]:
                    self._validate(v["metadata"][field], sub, child_path(child_path(path, "metadata"), field), out)

    def _validate_combinators(
        self, v: Any, s: Mapping[str, Any], path: str, name: str, out: list[Cause]
    ) -> None:
        def ok(sub: Any) -> bool:
            if not isinstance(sub, dict):
                return True
            errs: list[Cause] = []
            self._validate(v, sub, path, errs)
            return not errs

        for sub in s.get("allOf") or []:
            if isinstance(sub, dict):
                self._validate(v, sub, path, out)
        any_of = s.get("anyOf")
        if isinstance(any_of, list) and any_of and not any(ok(x) for x in any_of):
            out.append(
                cause(
                    INVALID, path, value=v, detail=f"{name} in body must validate at least one schema (anyOf)"
                )
            )
        one_of = s.get("oneOf")
        if isinstance(one_of, list) and one_of and sum(1 for x in one_of if ok(x)) != 1:
            out.append(
                cause(
                    INVALID,
                    path,
                    value=v,
                    detail=f"{name} in body must validate one and only one schema (oneOf)",
                )
            )
        neg = s.get("not")
        if isinstance(neg, dict) and ok(neg):
            out.append(
                cause(INVALID, path, value=v, detail=f"{name} in body must not validate the schema (not)")
            )

    # --- defaulting ------------------------------------------------------------------------------

    def default(self, obj: Any) -> Any:
        """Apply schema defaults to ``obj`` in place (and return it).

        Structural defaulting: at every object level that exists, a property with a default is
        set when missing (or null while not nullable); then the algorithm recurses into every
        property, additionalProperties value and array item -- including values it has just
        defaulted, so nested defaults inside a defaulted object apply too.
        """
        apply_defaults(obj, self.schema)
        return obj

    # --- pruning ---------------------------------------------------------------------------------

    def prune(self, obj: Any) -> Any:
        """Drop, in place, fields the schema does not specify (and return ``obj``).

        ``x-kubernetes-preserve-unknown-fields: true`` keeps unknown fields at that level (the
        known ones are still pruned inside); at the root and in ``x-kubernetes-embedded-resource``
        objects ``apiVersion``, ``kind`` and ``metadata`` are kept untouched.
        """
        pruning.prune(obj, self.schema, root=True)
        return obj

    def pruned_paths(self, obj: Any) -> list[str]:
        """The paths ``prune`` would drop from ``obj`` (without changing it)."""
        dropped: list[str] = []
        pruning.prune(json.loads(json.dumps(obj)), self.schema, root=True, dropped=dropped)
        return dropped


def _enum_equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_enum_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_enum_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and bool(a == b)
