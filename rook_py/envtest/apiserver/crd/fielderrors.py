"""Field errors as metav1.StatusCauses: k8s.io/apimachinery/pkg/util/validation/field/errors.go.

A cause is ``{"reason", "message", "field"}``: the reason is the field error type
(``FieldValueInvalid``, ``FieldValueRequired``, ...), the message the field error body
(``Invalid value: 2: spec.replicas in body should be less than or equal to 1``), the field the
dotted path, so the emulator can hand a list of them straight to ``errors.invalid``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Final

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
        return go_number(v)
    return json.dumps(v, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def go_number(n: float) -> str:
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


def supported_values(values: Iterable[Any]) -> str:
    return "supported values: " + ", ".join(
        json.dumps(v) if isinstance(v, str) else json.dumps(json.dumps(v, separators=(",", ":")))
        for v in values
    )
