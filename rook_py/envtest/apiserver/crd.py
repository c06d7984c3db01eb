"""CustomResourceDefinition checks and the structural-schema algorithms served CRs go through.

* :func:`validate_crd_definition` -- what apiextensions-apiserver checks when a CRD is created
  or updated (pkg/apis/apiextensions/validation/validation.go): names, group, scope, versions,
  structural schema rules, defaults that validate, printer columns, scale subresource paths.
* :class:`CRDVersionSchema` -- one version's ``openAPIV3Schema``: ``validate`` (kube-openapi's
  validator, with its error wording, converted to field errors as
  apiextensions-apiserver/pkg/apiserver/validation/validation.go does), ``default``
  (pkg/apiserver/schema/defaulting/algorithm.go) and ``prune``
  (pkg/apiserver/schema/pruning/algorithm.go).

Every problem is a *cause*: ``{"reason", "message", "field"}`` -- a ``metav1.StatusCause`` whose
reason is the field error type (``FieldValueInvalid``, ``FieldValueRequired``, ...), whose message
is the field error body (``Invalid value: 2: spec.replicas in body should be less than or equal
to 1``) and whose field is the dotted path, so the emulator can hand the list straight to
``errors.invalid``.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import math
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime
from typing import Any, Final

from rook_py.envtest.apiserver.jsonpath import compile_path

__all__ = [
    "CRDVersionSchema",
    "Cause",
    "cause",
    "format_value",
    "validate_crd_definition",
]

Cause = dict[str, str]
JSON = dict[str, Any]

# metav1.CauseType values (k8s.io/apimachinery/pkg/util/validation/field/errors.go ErrorType).
REQUIRED: Final = "FieldValueRequired"
INVALID: Final = "FieldValueInvalid"
NOT_SUPPORTED: Final = "FieldValueNotSupported"
TYPE_INVALID: Final = "FieldValueTypeInvalid"
TOO_LONG: Final = "FieldValueTooLong"
TOO_MANY: Final = "FieldValueTooMany"
DUPLICATE: Final = "FieldValueDuplicate"
FORBIDDEN: Final = "FieldValueForbidden"


def format_value(v: Any) -> str:
    """A bad value as field.Error prints it: strings quoted, numbers like Go's ``%v``, else JSON."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, int | float):
        return _go_number(v)
    return json.dumps(v, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def _go_number(n: float) -> str:
    if isinstance(n, float) and n.is_integer() and abs(n) < 1e21:
        return str(int(n))
    return str(n)


def cause(reason: str, field: str, *, value: Any = None, detail: str = "", has_value: bool = True) -> Cause:
    """A StatusCause whose message is field.Error.ErrorBody() for the given error type."""
    if reason == REQUIRED:
        body = "Required value" + (f": {detail}" if detail else "")
    elif reason == FORBIDDEN:
        body = "Forbidden" + (f": {detail}" if detail else "")
    elif reason == DUPLICATE:
        body = f"Duplicate value: {format_value(value)}"
    elif reason == NOT_SUPPORTED:
        body = f"Unsupported value: {format_value(value)}" + (f": {detail}" if detail else "")
    elif reason == TOO_LONG:
        body = f"Too long: {detail}"
    elif reason == TOO_MANY:
        body = f"Too many: {format_value(value)}: {detail}"
    else:  # FieldValueInvalid / FieldValueTypeInvalid both print "Invalid value".
        body = "Invalid value"
        if has_value:
            body += f": {format_value(value)}"
        if detail:
            body += f": {detail}"
    return {"reason": reason, "message": body, "field": field}


def _supported(values: Iterable[Any]) -> str:
    return "supported values: " + ", ".join(
        json.dumps(v) if isinstance(v, str) else json.dumps(json.dumps(v, separators=(",", ":")))
        for v in values
    )


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


_DATE_TIME_RE: Final = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_DURATION_RE: Final = re.compile(r"^([+-]?(\d+(\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h|d|w))+$")
_HOSTNAME_RE: Final = re.compile(
    r"^([a-zA-Z0-9]([-a-zA-Z0-9]{0,61}[a-zA-Z0-9])?)(\.[a-zA-Z0-9]([-a-zA-Z0-9]{0,61}[a-zA-Z0-9])?)*\.?$"
)
_EMAIL_RE: Final = re.compile(r"^[^@\s]+@[^@\s]+$")
_MAC_RE: Final = re.compile(r"^([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}$")
_URI_RE: Final = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S*$")


def _is_date_time(s: str) -> bool:
    if not _DATE_TIME_RE.match(s):
        return False
    try:
        datetime.fromisoformat(s.replace("z", "Z").replace("Z", "+00:00").replace("t", "T"))
    except ValueError:
        return False
    return True


def _is_date(s: str) -> bool:
    try:
        date.fromisoformat(s)
    except ValueError:
        return False
    return re.fullmatch(r"\d{4}-\d{2}-\d{2}", s) is not None


def _is_ip(s: str, version: int) -> bool:
    try:
        return ipaddress.ip_address(s).version == version
    except ValueError:
        return False


def _is_cidr(s: str) -> bool:
    try:
        ipaddress.ip_network(s, strict=False)
    except ValueError:
        return False
    return "/" in s


def _is_byte(s: str) -> bool:
    try:
        base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _is_uuid(s: str, version: int | None = None) -> bool:
    try:
        u = uuid.UUID(s)
    except ValueError:
        return False
    return version is None or u.version == version


# String formats kube-openapi checks (apiextensions' supported set); unknown formats are
# accepted without a check, as upstream does.
_STRING_FORMATS: Final[Mapping[str, Callable[[str], bool]]] = {
    "date-time": _is_date_time,
    "datetime": _is_date_time,
    "date": _is_date,
    "duration": lambda s: _DURATION_RE.match(s) is not None,
    "byte": _is_byte,
    "ipv4": lambda s: _is_ip(s, 4),
    "ipv6": lambda s: _is_ip(s, 6),
    "cidr": _is_cidr,
    "mac": lambda s: _MAC_RE.match(s) is not None,
    "hostname": lambda s: _HOSTNAME_RE.match(s) is not None and len(s) <= 255,
    "email": lambda s: _EMAIL_RE.match(s) is not None,
    "uri": lambda s: _URI_RE.match(s) is not None,
    "uuid": _is_uuid,
    "uuid3": lambda s: _is_uuid(s, 3),
    "uuid4": lambda s: _is_uuid(s, 4),
    "uuid5": lambda s: _is_uuid(s, 5),
}

# Keys at the root of a custom resource the schema does not govern (the apiserver validates
# ObjectMeta itself and pruning keeps them).
_ROOT_KEYS: Final = frozenset({"apiVersion", "kind", "metadata"})


def _child(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


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
            out.append(cause(NOT_SUPPORTED, path, value=v, detail=_supported(s["enum"])))

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
                        INVALID, path, value=v, detail=f"{name} in body should be less than {_go_number(mx)}"
                    )
                )
            elif v > mx:
                out.append(
                    cause(
                        INVALID,
                        path,
                        value=v,
                        detail=f"{name} in body should be less than or equal to {_go_number(mx)}",
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
                        detail=f"{name} in body should be greater than {_go_number(mn)}",
                    )
                )
            elif v < mn:
                out.append(
                    cause(
                        INVALID,
                        path,
                        value=v,
                        detail=f"{name} in body should be greater than or equal to {_go_number(mn)}",
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
                        detail=f"{name} in body should be a multiple of {_go_number(mult)}",
                    )
                )
        fmt = s.get("format")
        if fmt == "int32" and _json_type(v) == "integer" and not -(2**31) <= v < 2**31:
            out.append(
                cause(
                    INVALID, path, value=v, detail=f'{name} in body must be of type int32: "{_go_number(v)}"'
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
        if isinstance(fmt, str) and fmt in _STRING_FORMATS and not _STRING_FORMATS[fmt](v):
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
        keys = [k for k in v if not (root and k in _ROOT_KEYS)]
        if s.get("x-kubernetes-embedded-resource"):
            # An embedded object must say what it is (apiextensions objectmeta validation).
            for field in ("apiVersion", "kind"):
                if not v.get(field):
                    out.append(cause(REQUIRED, _child(path, field), detail="must not be empty"))
        mx = s.get("maxProperties")
        if isinstance(mx, int) and len(keys) > mx:
            out.append(cause(TOO_MANY, path, value=len(keys), detail=f"must have at most {mx} items"))
        mn = s.get("minProperties")
        if isinstance(mn, int) and len(keys) < mn:
            out.append(
                cause(INVALID, path, value=v, detail=f"{name} in body should have at least {mn} properties")
            )
        for req in s.get("required") or []:
            if req not in v and not (root and req in _ROOT_KEYS):
                out.append(cause(REQUIRED, _child(path, req)))
        props: Mapping[str, Any] = s.get("properties") or {}
        additional = s.get("additionalProperties")
        for k in keys:
            child = _child(path, k)
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
                    self._validate(v["metadata"][field], sub, _child(_child(path, "metadata"), field), out)

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
        _default(obj, self.schema)
        return obj

    # --- pruning ---------------------------------------------------------------------------------

    def prune(self, obj: Any) -> Any:
        """Drop, in place, fields the schema does not specify (and return ``obj``).

        ``x-kubernetes-preserve-unknown-fields: true`` keeps unknown fields at that level (the
        known ones are still pruned inside); at the root and in ``x-kubernetes-embedded-resource``
        objects ``apiVersion``, ``kind`` and ``metadata`` are kept untouched.
        """
        _prune(obj, self.schema, root=True)
        return obj

    def pruned_paths(self, obj: Any) -> list[str]:
        """The paths ``prune`` would drop from ``obj`` (without changing it)."""
        dropped: list[str] = []
        _prune(json.loads(json.dumps(obj)), self.schema, root=True, dropped=dropped)
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


def _is_non_nullable_null(v: Any, s: Mapping[str, Any] | None) -> bool:
    return v is None and s is not None and not s.get("nullable")


def _copy(v: Any) -> Any:
    return json.loads(json.dumps(v))


def _default(x: Any, s: Mapping[str, Any] | None) -> None:
    if not s:
        return
    if isinstance(x, dict):
        props: Mapping[str, Any] = s.get("properties") or {}
        for k, prop in props.items():
            has_default = isinstance(prop, dict) and prop.get("default") is not None
            if has_default and (k not in x or _is_non_nullable_null(x[k], prop)):
                x[k] = _copy(prop["default"])
        additional = s.get("additionalProperties")
        for k, v in list(x.items()):
            if k in props and isinstance(props[k], dict):
                _default(v, props[k])
            elif isinstance(additional, dict):
                if _is_non_nullable_null(v, additional) and additional.get("default") is not None:
                    x[k] = v = _copy(additional["default"])
                _default(v, additional)
    elif isinstance(x, list):
        items = s.get("items")
        if not isinstance(items, dict):
            return
        for i, v in enumerate(x):
            if _is_non_nullable_null(v, items) and items.get("default") is not None:
                x[i] = v = _copy(items["default"])
            _default(v, items)


def _prune(
    x: Any,
    s: Mapping[str, Any] | None,
    *,
    root: bool = False,
    path: str = "",
    dropped: list[str] | None = None,
) -> None:
    if s is not None and s.get("x-kubernetes-preserve-unknown-fields"):
        _skip_prune(x, s, path, dropped)
        return
    if isinstance(x, dict):
        if s is None:
            if dropped is not None:
                dropped.extend(_child(path, k) for k in x)
            x.clear()
            return
        keep_meta = root or bool(s.get("x-kubernetes-embedded-resource"))
        props: Mapping[str, Any] = s.get("properties") or {}
        additional = s.get("additionalProperties")
        for k in list(x):
            if keep_meta and k in _ROOT_KEYS:
                continue
            child = _child(path, k)
            if k in props and isinstance(props[k], dict):
                _prune(x[k], props[k], path=child, dropped=dropped)
            elif isinstance(additional, dict):
                _prune(x[k], additional, path=child, dropped=dropped)
            elif additional is True:
                continue  # `additionalProperties: true` admits any value under any key.
            else:
                if dropped is not None:
                    dropped.append(child)
                del x[k]
    elif isinstance(x, list):
        items = s.get("items") if s is not None else None
        for i, v in enumerate(x):
            _prune(v, items if isinstance(items, dict) else None, path=f"{path}[{i}]", dropped=dropped)


def _skip_prune(x: Any, s: Mapping[str, Any], path: str, dropped: list[str] | None) -> None:
    """Keep unknown fields here, but still prune inside the fields the schema does specify."""
    if isinstance(x, dict):
        embedded = bool(s.get("x-kubernetes-embedded-resource"))
        props: Mapping[str, Any] = s.get("properties") or {}
        additional = s.get("additionalProperties")
        for k, v in x.items():
            if embedded and k in _ROOT_KEYS:
                continue
            if k in props and isinstance(props[k], dict):
                _prune(v, props[k], path=_child(path, k), dropped=dropped)
            elif isinstance(additional, dict):
                _prune(v, additional, path=_child(path, k), dropped=dropped)
    elif isinstance(x, list):
        items = s.get("items")
        if isinstance(items, dict):
            for i, v in enumerate(x):
                _skip_prune(v, items, f"{path}[{i}]", dropped)


# =============================================================================================
# CRD definition validation
# =============================================================================================

_DNS1035_RE: Final = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN_RE: Final = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
_KIND_RE: Final = re.compile(r"^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$")
_PRINTER_TYPES: Final = ("integer", "number", "string", "boolean", "date")
_SCHEMA_TYPES: Final = ("array", "boolean", "integer", "number", "object", "string")
_DNS1035_MSG: Final = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "
    "regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)


def _validate_names(names: Mapping[str, Any], path: str, out: list[Cause]) -> None:
    for field in ("plural", "singular"):
        value = names.get(field) or ""
        if not value:
            if field == "plural":
                out.append(cause(REQUIRED, f"{path}.{field}"))
            continue
        if len(value) > 63 or not _DNS1035_RE.match(value):
            out.append(cause(INVALID, f"{path}.{field}", value=value, detail=_DNS1035_MSG))
    for field in ("kind", "listKind"):
        value = names.get(field) or ""
        if not value:
            out.append(cause(REQUIRED, f"{path}.{field}"))
        elif not _KIND_RE.match(value):
            out.append(
                cause(
                    INVALID,
                    f"{path}.{field}",
                    value=value,
                    detail="may have mixed case, but should otherwise match: [a-z]([-a-z0-9]*[a-z0-9])?",
                )
            )
    if names.get("kind") and names.get("kind") == names.get("listKind"):
        out.append(
            cause(
                INVALID,
                f"{path}.listKind",
                value=names["listKind"],
                detail="kind and listKind may not be the same",
            )
        )
    for field in ("shortNames", "categories"):
        for i, value in enumerate(names.get(field) or []):
            if not isinstance(value, str) or not _DNS1035_RE.match(value):
                out.append(cause(INVALID, f"{path}.{field}[{i}]", value=value, detail=_DNS1035_MSG))


def _schema_field(path: str, key: str) -> str:
    return f"{path}.properties[{key}]"


def _validate_structural(
    s: Any, path: str, out: list[Cause], *, is_root: bool, in_value_validation: bool = False, what: str = ""
) -> None:
    """Structural-schema rules: every specified field has a type unless int-or-string or
    preserve-unknown-fields says otherwise; no additionalProperties beside properties or set
    to false; no uniqueItems; defaults that validate against their own schema.
    """
    if not isinstance(s, dict):
        out.append(cause(INVALID, path, value=s, detail="must be an object"))
        return
    t = s.get("type")
    int_or_string = bool(s.get("x-kubernetes-int-or-string"))
    preserve = bool(s.get("x-kubernetes-preserve-unknown-fields"))
    if t is not None and t not in _SCHEMA_TYPES:
        out.append(cause(NOT_SUPPORTED, f"{path}.type", value=t, detail=_supported(_SCHEMA_TYPES)))
    if is_root:
        if not t:
            out.append(cause(REQUIRED, f"{path}.type", detail="must not be empty at the root"))
        elif t != "object":
            out.append(cause(INVALID, f"{path}.type", value=t, detail="must be object at the root"))
        _validate_root_metadata(s, path, out)
    elif not in_value_validation and not t and not int_or_string and not preserve:
        out.append(cause(REQUIRED, f"{path}.type", detail=f"must not be empty for specified {what}"))
    if int_or_string and t:
        out.append(
            cause(FORBIDDEN, f"{path}.type", detail="must be empty if x-kubernetes-int-or-string is true")
        )
    props = s.get("properties")
    additional = s.get("additionalProperties")
    if props and additional is not None:
        out.append(
            cause(
                FORBIDDEN,
                f"{path}.additionalProperties",
                detail="additionalProperties and properties are mutual exclusive",
            )
        )
    if additional is False:
        out.append(cause(FORBIDDEN, f"{path}.additionalProperties", detail="must not be false"))
    if s.get("uniqueItems"):
        out.append(
            cause(
                FORBIDDEN,
                f"{path}.uniqueItems",
                detail="uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
            )
        )
    if t == "array" and not in_value_validation and "items" not in s:
        out.append(cause(REQUIRED, f"{path}.items", detail="must be specified"))
    pattern = s.get("pattern")
    if isinstance(pattern, str):
        try:
            re.compile(pattern)
        except re.error as exc:
            out.append(
                cause(
                    INVALID,
                    f"{path}.pattern",
                    value=pattern,
                    detail=f"must be a valid regular expression: {exc}",
                )
            )
    if isinstance(props, dict):
        for k, sub in props.items():
            _validate_structural(
                sub,
                _schema_field(path, k),
                out,
                is_root=False,
                in_value_validation=in_value_validation,
                what="object fields",
            )
    if isinstance(additional, dict):
        _validate_structural(
            additional,
            f"{path}.additionalProperties",
            out,
            is_root=False,
            in_value_validation=in_value_validation,
            what="object fields",
        )
    items = s.get("items")
    if isinstance(items, dict):
        _validate_structural(
            items,
            f"{path}.items",
            out,
            is_root=False,
            in_value_validation=in_value_validation,
            what="array items",
        )
    for comb in ("allOf", "anyOf", "oneOf"):
        for i, sub in enumerate(s.get(comb) or []):
            _validate_structural(sub, f"{path}.{comb}[{i}]", out, is_root=False, in_value_validation=True)
    if isinstance(s.get("not"), dict):
        _validate_structural(s["not"], f"{path}.not", out, is_root=False, in_value_validation=True)
    if "default" in s and not in_value_validation:
        _validate_default(s, path, out, is_root)


def _validate_root_metadata(s: Mapping[str, Any], path: str, out: list[Cause]) -> None:
    """ObjectMeta belongs to the apiserver: a root ``metadata`` schema may only be an object
    constraining ``name``/``generateName`` as strings (structural schema rule).
    """
    props = s.get("properties")
    meta = props.get("metadata") if isinstance(props, dict) else None
    if not isinstance(meta, dict):
        return
    mpath = _schema_field(path, "metadata")
    extra = sorted(k for k in meta if k not in ("type", "properties", "description"))
    if meta.get("type", "object") != "object" or extra:
        out.append(
            cause(
                FORBIDDEN,
                mpath,
                detail="must not specify anything other than name and generateName, but metadata is implicitly specified",
            )
        )
    for field, sub in (meta.get("properties") or {}).items():
        if field not in ("name", "generateName"):
            out.append(
                cause(
                    FORBIDDEN,
                    _schema_field(mpath, field),
                    detail="must not be specified, only name and generateName",
                )
            )
        elif isinstance(sub, dict) and sub.get("type", "string") != "string":
            out.append(
                cause(
                    INVALID,
                    f"{_schema_field(mpath, field)}.type",
                    value=sub.get("type"),
                    detail="must be string",
                )
            )


def _validate_default(s: Mapping[str, Any], path: str, out: list[Cause], is_root: bool) -> None:
    if is_root:
        out.append(cause(FORBIDDEN, f"{path}.default", detail="must not be set at the root"))
        return
    default = s["default"]
    # Upstream validates the default as data at the field path of the default itself.
    out.extend(CRDVersionSchema(s).validate(default, root=False, path=f"{path}.default"))
    pruned = _pruned_in_default(s, default)
    if pruned:
        out.append(
            cause(
                INVALID,
                f"{path}.default",
                value=default,
                detail=f"must not have unknown fields: {', '.join(pruned)}",
            )
        )


def _pruned_in_default(s: Mapping[str, Any], default: Any) -> list[str]:
    dropped: list[str] = []
    _prune(_copy(default), s, path="", dropped=dropped)
    return dropped


def _validate_printer_columns(columns: Any, path: str, out: list[Cause]) -> None:
    if not isinstance(columns, list):
        return
    for i, col in enumerate(columns):
        cpath = f"{path}[{i}]"
        if not isinstance(col, dict):
            out.append(cause(INVALID, cpath, value=col, detail="must be an object"))
            continue
        if not col.get("name"):
            out.append(cause(REQUIRED, f"{cpath}.name"))
        if not col.get("type"):
            out.append(cause(REQUIRED, f"{cpath}.type"))
        elif col["type"] not in _PRINTER_TYPES:
            out.append(
                cause(NOT_SUPPORTED, f"{cpath}.type", value=col["type"], detail=_supported(_PRINTER_TYPES))
            )
        fmt = col.get("format")
        if fmt and fmt not in ("int32", "int64", "float", "double", "byte", "date", "date-time", "password"):
            out.append(
                cause(
                    NOT_SUPPORTED,
                    f"{cpath}.format",
                    value=fmt,
                    detail=_supported(
                        ("int32", "int64", "float", "double", "byte", "date", "date-time", "password")
                    ),
                )
            )
        jp = col.get("jsonPath")
        if not jp:
            out.append(cause(REQUIRED, f"{cpath}.jsonPath"))
        else:
            try:
                compile_path(jp)
            except ValueError as exc:
                out.append(
                    cause(INVALID, f"{cpath}.jsonPath", value=jp, detail=f"must be a simple json path: {exc}")
                )


def _validate_scale(scale: Any, path: str, out: list[Cause]) -> None:
    if not isinstance(scale, dict):
        return
    spec = scale.get("specReplicasPath")
    if not spec:
        out.append(cause(REQUIRED, f"{path}.specReplicasPath"))
    elif not spec.startswith(".spec."):
        out.append(
            cause(INVALID, f"{path}.specReplicasPath", value=spec, detail="should be a json path under .spec")
        )
    status = scale.get("statusReplicasPath")
    if not status:
        out.append(cause(REQUIRED, f"{path}.statusReplicasPath"))
    elif not status.startswith(".status."):
        out.append(
            cause(
                INVALID,
                f"{path}.statusReplicasPath",
                value=status,
                detail="should be a json path under .status",
            )
        )
    selector = scale.get("labelSelectorPath")
    if selector and not (selector.startswith(".spec.") or selector.startswith(".status.")):
        out.append(
            cause(
                INVALID,
                f"{path}.labelSelectorPath",
                value=selector,
                detail="should be a json path under either .spec or .status",
            )
        )


def validate_crd_definition(crd: Mapping[str, Any]) -> list[Cause]:
    """Everything wrong with a ``apiextensions.k8s.io/v1`` CRD object, as causes."""
    out: list[Cause] = []
    spec: Mapping[str, Any] = crd.get("spec") or {}
    names: Mapping[str, Any] = spec.get("names") or {}
    group = spec.get("group") or ""
    name = (crd.get("metadata") or {}).get("name") or ""

    plural = names.get("plural") or ""
    if name != f"{plural}.{group}":
        out.append(
            cause(INVALID, "metadata.name", value=name, detail='must be spec.names.plural+"."+spec.group')
        )

    if not group:
        out.append(cause(REQUIRED, "spec.group"))
    elif "." not in group:
        out.append(
            cause(INVALID, "spec.group", value=group, detail="should be a domain with at least one dot")
        )
    elif len(group) > 253 or not _DNS1123_SUBDOMAIN_RE.match(group):
        out.append(
            cause(
                INVALID,
                "spec.group",
                value=group,
                detail="a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
                "and must start and end with an alphanumeric character",
            )
        )

    scope = spec.get("scope")
    if not scope:
        out.append(cause(REQUIRED, "spec.scope"))
    elif scope not in ("Cluster", "Namespaced"):
        out.append(
            cause(NOT_SUPPORTED, "spec.scope", value=scope, detail=_supported(("Cluster", "Namespaced")))
        )

    _validate_names(names, "spec.names", out)

    versions = spec.get("versions")
    if not isinstance(versions, list) or not versions:
        out.append(
            cause(REQUIRED, "spec.versions", detail="must have exactly one version marked as storage version")
        )
        return out
    storage = sum(1 for v in versions if isinstance(v, dict) and v.get("storage"))
    if storage != 1:
        out.append(
            cause(
                INVALID,
                "spec.versions",
                value=versions,
                detail="must have exactly one version marked as storage version",
            )
        )
    seen: set[str] = set()
    for i, version in enumerate(versions):
        vpath = f"spec.versions[{i}]"
        if not isinstance(version, dict):
            out.append(cause(INVALID, vpath, value=version, detail="must be an object"))
            continue
        vname = version.get("name") or ""
        if not vname:
            out.append(cause(REQUIRED, f"{vpath}.name"))
        elif not _DNS1035_RE.match(vname) or len(vname) > 63:
            out.append(cause(INVALID, f"{vpath}.name", value=vname, detail=_DNS1035_MSG))
        elif vname in seen:
            out.append(cause(DUPLICATE, f"{vpath}.name", value=vname))
        seen.add(vname)
        # `served`/`storage` are plain bools upstream: absent decodes as false, not as an error.
        schema = (version.get("schema") or {}).get("openAPIV3Schema")
        spath = f"{vpath}.schema.openAPIV3Schema"
        if schema is None:
            out.append(cause(REQUIRED, spath, detail="schemas are required"))
        else:
            _validate_structural(schema, spath, out, is_root=True)
        _validate_printer_columns(
            version.get("additionalPrinterColumns"), f"{vpath}.additionalPrinterColumns", out
        )
        subresources = version.get("subresources") or {}
        if isinstance(subresources, dict) and "scale" in subresources:
            _validate_scale(subresources["scale"], f"{vpath}.subresources.scale", out)
    return out
