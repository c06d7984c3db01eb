"""Defaulting in code, from the same schema the API server defaults with.

The API server applies ``default`` values at admission, but an object stored before a default
existed (or created on a server that does not default) would otherwise reach the operator with
holes. :func:`with_defaults` walks :func:`~rook_py.chubaofs.api.schema.spec_schema` with the
apiextensions rules (pkg/apiserver/schema/defaulting/algorithm.go in
kubernetes/apiextensions-apiserver): a missing property gets a deep copy of its default, then
defaulting recurses into present objects, map values and list items. Explicit values, including
``null``-free falsy ones such as ``false`` or ``0``, are never overwritten.
"""

from __future__ import annotations

import copy
from typing import Any

from rook_py.chubaofs.api.schema import spec_schema

JSON = dict[str, Any]

_SPEC_SCHEMA = spec_schema()


def apply_schema_defaults(schema: JSON, value: Any) -> Any:
    """Default ``value`` in place according to ``schema``; returns ``value``."""
    if isinstance(value, dict):
        properties: JSON = schema.get("properties") or {}
        for key, prop in properties.items():
            if value.get(key) is None and "default" in prop:
                value[key] = copy.deepcopy(prop["default"])
            if key in value:
                apply_schema_defaults(prop, value[key])
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key, item in value.items():
                if key not in properties:
                    apply_schema_defaults(extra, item)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            apply_schema_defaults(schema["items"], item)
    return value


def with_defaults(spec: JSON | None) -> JSON:
    """A defaulted deep copy of ``spec``; the input (often a cached object) is not touched."""
    return apply_schema_defaults(_SPEC_SCHEMA, copy.deepcopy(spec or {}))  # type: ignore[no-any-return]
