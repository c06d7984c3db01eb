"""Server-side field validation: unknown and duplicate fields in request bodies.

kube-apiserver decodes every write strictly and then acts on ``?fieldValidation=``
(``staging/src/k8s.io/apiserver/pkg/endpoints/handlers/create.go`` & co., KEP-2885):

* ``Strict``: 400 BadRequest, ``<Kind> in version "<v>" cannot be handled as a <Kind>: strict
  decoding error: duplicate field "metadata.name", unknown field "spec.bogus"`` (duplicates
  first, then unknown fields, each in document order);
* ``Warn`` (the default): the write goes through without the unknown fields, and each problem is
  a ``Warning: 299 - "unknown field \\"spec.bogus\\""`` response header;
* ``Ignore``: unknown fields are dropped silently.

Either way unknown fields never reach storage: built-in kinds are decoded into their Go types
(which have no room for them), custom resources are pruned by their structural schema. Which
fields are known comes from the OpenAPI definitions (openapi.py), so the same schemas serve
kubectl's ``explain`` and this check.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import yaml

from rook_py.framework.client import errors

JSON = dict[str, Any]

STRICT = "Strict"
WARN = "Warn"
IGNORE = "Ignore"
DIRECTIVES = (STRICT, WARN, IGNORE)


class Problems:
    """What one request body got wrong, in the order kube-apiserver reports it."""

    def __init__(self) -> None:
        self.duplicates: list[str] = []        # JSON bodies: field paths
        self.yaml_duplicates: list[str] = []   # YAML bodies: the decoder's "line N: key ..." lines
        self.unknown: list[str] = []

    def __bool__(self) -> bool:
        return bool(self.duplicates or self.yaml_duplicates or self.unknown)

    def messages(self) -> list[str]:
        out = [f'duplicate field "{p}"' for p in self.duplicates]
        if self.yaml_duplicates:
            out.append("yaml: unmarshal errors:\n  " + "\n  ".join(self.yaml_duplicates))
        return out + [f'unknown field "{p}"' for p in self.unknown]


# --- decoding with duplicate detection --------------------------------------------------------

class _Dup(dict[str, Any]):
    """A JSON object that remembers the keys it saw more than once."""

    dups: list[str]


def _pairs(pairs: list[tuple[str, Any]]) -> _Dup:
    out = _Dup()
    dups: list[str] = []
    for k, v in pairs:
        if k in out:
            dups.append(k)
        out[k] = v
    out.dups = dups
    return out


def loads_json(body: bytes) -> tuple[Any, list[str]]:
    """Decode a JSON body; also the paths of the fields it repeats (``metadata.name``)."""
    value = json.loads(body, object_pairs_hook=_pairs)
    dups: list[str] = []
    plain = _collect_dups(value, "", dups)
    return plain, dups


def _collect_dups(value: Any, path: str, out: list[str]) -> Any:
    if isinstance(value, _Dup):
        for k in value.dups:
            out.append(_join(path, k))
        return {k: _collect_dups(v, _join(path, k), out) for k, v in value.items()}
    if isinstance(value, list):
        return [_collect_dups(v, f"{path}[{i}]", out) for i, v in enumerate(value)]
    return value


class _DupYAMLLoader(yaml.SafeLoader):
    """SafeLoader that records duplicate mapping keys with their line, as the yaml decoder
    upstream reports them (``line 5: key "name" already set in map``)."""

    duplicates: list[str]


def _construct_mapping(loader: _DupYAMLLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            if key in seen:
                loader.duplicates.append(f'line {key_node.start_mark.line + 1}: key "{key}" already set in map')
            seen.add(key)
        except TypeError:
            pass
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_DupYAMLLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def loads_yaml(body: bytes) -> tuple[Any, list[str]]:
    """Decode a YAML body; also its duplicate keys as the YAML decoder words them."""
    loader = _DupYAMLLoader(body)
    loader.duplicates = []
    try:
        value = loader.get_single_data()
    finally:
        loader.dispose()
    return value, loader.duplicates


# --- unknown fields ---------------------------------------------------------------------------

def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _resolve(schema: Mapping[str, Any], definitions: Mapping[str, JSON]) -> Mapping[str, Any]:
    for _ in range(32):  # refs chain through allOf at most a few levels
        ref = schema.get("$ref")
        if isinstance(ref, str):
            target = definitions.get(ref.rsplit("/", 1)[-1])
            if target is None:
                return {"x-kubernetes-preserve-unknown-fields": True}
            schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}} if len(schema) > 1 else target
            continue
        all_of = schema.get("allOf")
        if isinstance(all_of, list) and len(all_of) == 1 and isinstance(all_of[0], dict) and "properties" not in schema:
            schema = {**{k: v for k, v in schema.items() if k != "allOf"}, **all_of[0]}
            continue
        return schema
    return schema


def strip_unknown(value: Any, schema: Mapping[str, Any], definitions: Mapping[str, JSON], *, drop: bool,
                  path: str = "", out: list[str] | None = None) -> list[str]:
    """The paths of ``value``'s fields its schema does not declare, in document order; with
    ``drop`` they are also removed from ``value`` (what decoding into the Go type, or pruning
    a custom resource, does). Keys starting with ``$`` (strategic merge patch directives) and
    fields under ``x-kubernetes-preserve-unknown-fields`` are never unknown."""
    found: list[str] = [] if out is None else out
    schema = _resolve(schema, definitions)
    if isinstance(value, dict):
        props = schema.get("properties")
        additional = schema.get("additionalProperties")
        preserve = schema.get("x-kubernetes-preserve-unknown-fields") is True
        embedded = schema.get("x-kubernetes-embedded-resource") is True
        if not isinstance(props, dict) and additional is None and (preserve or "type" not in schema):
            return found  # untyped (RawExtension, int-or-string, JSON): anything goes
        unknown: list[str] = []
        for key, child in value.items():
            child_path = _join(path, key)
            sub = props.get(key) if isinstance(props, dict) else None
            if sub is None and isinstance(additional, dict):
                sub = additional
            if sub is None and (additional is True or preserve or key.startswith("$")):
                continue
            if sub is None and embedded and key in ("apiVersion", "kind"):
                continue
            if sub is None and embedded and key == "metadata":
                sub = {"$ref": "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}
            if sub is None:
                found.append(child_path)
                unknown.append(key)
                continue
            strip_unknown(child, sub, definitions, drop=drop, path=child_path, out=found)
        if drop:
            for key in unknown:
                del value[key]
    elif isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, dict):
            for i, item in enumerate(value):
                strip_unknown(item, items, definitions, drop=drop, path=f"{path}[{i}]", out=found)
    return found


def directive(value: str | None, options_kind: str) -> str:
    """The request's validation directive (Warn when absent); 400 for anything else, as
    kube-apiserver's fieldValidation check answers."""
    if value is None or value == "":
        return WARN
    if value not in DIRECTIVES:
        raise errors.BadRequest(f'invalid fieldValidation directive "{value}": must be one of '
                                f"{', '.join(DIRECTIVES)}")
    return value


def strict_error(kind: str, version: str, problems: Problems) -> errors.ApiError:
    return errors.BadRequest(f'{kind} in version "{version}" cannot be handled as a {kind}: strict decoding error: '
                             + ", ".join(problems.messages()))
