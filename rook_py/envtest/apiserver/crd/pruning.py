"""Structural pruning: apiextensions-apiserver/pkg/apiserver/schema/pruning/algorithm.go.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

# Keys at the root of a custom resource the schema does not govern (the apiserver validates
# ObjectMeta itself and pruning keeps them).
ROOT_KEYS: Final = frozenset({"apiVersion", "kind", "metadata"})


def child_path(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def prune(
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
                dropped.extend(child_path(path, k) for k in x)
            x.clear()
            return
        keep_meta = root or bool(s.get("x-kubernetes-embedded-resource"))
        props: Mapping[str, Any] = s.get("properties") or {}
        additional = s.get("additionalProperties")
        for k in list(x):
            if keep_meta and k in ROOT_KEYS:
                continue
            child = child_path(path, k)
            if k in props and isinstance(props[k], dict):
                prune(x[k], props[k], path=child, dropped=dropped)
            elif isinstance(additional, dict):
                prune(x[k], additional, path=child, dropped=dropped)
            elif additional is True:
                continue  # `additionalProperties: true` admits any value under any key.
            else:
                if dropped is not None:
                    dropped.append(child)
                del x[k]
    elif isinstance(x, list):
        items = s.get("items") if s is not None else None
        for i, v in enumerate(x):
            prune(v, items if isinstance(items, dict) else None, path=f"{path}[{i}]", dropped=dropped)


def _skip_prune(x: Any, s: Mapping[str, Any], path: str, dropped: list[str] | None) -> None:
    """Keep unknown fields here, but still prune inside the fields the schema does specify."""
    if isinstance(x, dict):
        embedded = bool(s.get("x-kubernetes-embedded-resource"))
        props: Mapping[str, Any] = s.get("properties") or {}
        additional = s.get("additionalProperties")
        for k, v in x.items():
            if embedded and k in ROOT_KEYS:
                continue
            if k in props and isinstance(props[k], dict):
                prune(v, props[k], path=child_path(path, k), dropped=dropped)
            elif isinstance(additional, dict):
                prune(v, additional, path=child_path(path, k), dropped=dropped)
    elif isinstance(x, list):
        items = s.get("items")
        if isinstance(items, dict):
            for i, v in enumerate(x):
                _skip_prune(v, items, f"{path}[{i}]", dropped)
