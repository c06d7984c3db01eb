"""Structural defaulting: apiextensions-apiserver/pkg/apiserver/schema/defaulting/algorithm.go.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def _is_non_nullable_null(v: Any, s: Mapping[str, Any] | None) -> bool:
    return v is None and s is not None and not s.get("nullable")


def copy_json(v: Any) -> Any:
    return json.loads(json.dumps(v))


def apply_defaults(x: Any, s: Mapping[str, Any] | None) -> None:
    if not s:
        return
    if isinstance(x, dict):
        props: Mapping[str, Any] = s.get("properties") or {}
        for k, prop in props.items():
            has_default = isinstance(prop, dict) and prop.get("default") is not None
            if has_default and (k not in x or _is_non_nullable_null(x[k], prop)):
                x[k] = copy_json(prop["default"])
        additional = s.get("additionalProperties")
        for k, v in list(x.items()):
            if k in props and isinstance(props[k], dict):
                apply_defaults(v, props[k])
            elif isinstance(additional, dict):
                if _is_non_nullable_null(v, additional) and additional.get("default") is not None:
                    x[k] = v = copy_json(additional["default"])
                apply_defaults(v, additional)
    elif isinstance(x, list):
        items = s.get("items")
        if not isinstance(items, dict):
            return
        for i, v in enumerate(x):
            if _is_non_nullable_null(v, items) and items.get("default") is not None:
                x[i] = v = copy_json(items["default"])
            apply_defaults(v, items)
