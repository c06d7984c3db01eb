"""Server-side apply: typed field sets, merge, conflicts and managedFields over the served schemas.

The algebra of sigs.k8s.io/structured-merge-diff (``typed/`` and ``merge/update.go``) as
kube-apiserver runs it (``staging/src/k8s.io/apimachinery/pkg/util/managedfields``), over the
OpenAPI definitions the emulator publishes (openapi.py):

* a value's **field set** (``ToFieldSet``): its leaves, every list item, and every map entry
  that is null, empty or not a declared field of a struct; atomic lists and maps are one leaf;
* **compare** (``Compare``): the fields added, modified and removed between two values;
* **merge** (``Merge``): the applied configuration over the live object, lists by their type
  (atomic: replaced; set: union; map: items merged by their keys);
* **apply** (``Updater.Apply``): merge, then remove what the manager applied last time and no
  longer applies unless another manager owns it, then take the changed fields from every other
  manager -- a 409 Conflict listing them unless ``force``;
* **update** (``Updater.Update``): a PUT or non-apply PATCH gives its manager the added and
  modified fields and takes them from everyone else.

List semantics come from the schema: ``x-kubernetes-list-type`` (``atomic``/``set``/``map`` with
``x-kubernetes-list-map-keys``), else the patch strategy (merge with a key: a map keyed by it,
merge without: a set), else atomic; ``x-kubernetes-map-type: atomic`` makes a map or struct one
leaf. Fields without a schema (``x-kubernetes-preserve-unknown-fields``) are "deduced": maps are
granular, lists atomic.

A field set is a nested dict: path element (``f:name``, ``k:{"name":"web"}``, ``v:"value"``) ->
child set, with ``"."`` present when the node itself is a member (the FieldsV1 wire form).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from rook_py.framework.client import errors
from rook_py.framework.kube.lists import from_openapi

JSON = dict[str, Any]
FieldSet = dict[str, Any]
Schema = Mapping[str, Any]

MEMBER = "."
_ABSENT: Any = object()
_UNTYPED: Schema = {"x-kubernetes-preserve-unknown-fields": True}

SCALAR, STRUCT, MAP, ATOMIC, LIST_SET, LIST_MAP, UNTYPED = "scalar", "struct", "map", "atomic", "set", "map-list", \
    "untyped"


class Types:
    """Resolves schema nodes (``$ref``, single ``allOf``) against a definitions table."""

    def __init__(self, definitions: Mapping[str, JSON]) -> None:
        self.definitions = definitions

    def resolve(self, schema: Schema) -> Schema:
        for _ in range(16):
            ref = schema.get("$ref")
            if isinstance(ref, str):
                schema = self.definitions.get(ref.rsplit("/", 1)[-1], _UNTYPED)
                continue
            all_of = schema.get("allOf")
            if isinstance(all_of, list) and len(all_of) == 1 and "properties" not in schema:
                rest = {k: v for k, v in schema.items() if k != "allOf"}
                schema = {**rest, **self.resolve(all_of[0])}
                continue
            break
        return schema

    def kind(self, schema: Schema, value: Any) -> str:
        """What ``schema`` makes of a node (``value`` decides for untyped nodes)."""
        if schema.get("format") == "int-or-string" or schema.get("x-kubernetes-int-or-string"):
            return SCALAR
        t = schema.get("type")
        if t == "array":
            list_type = list_semantics(schema)[0]
            return {"set": LIST_SET, "map": LIST_MAP}.get(list_type, ATOMIC)
        if t == "object" or "properties" in schema or "additionalProperties" in schema:
            if schema.get("x-kubernetes-map-type") == "atomic":
                return ATOMIC
            if isinstance(schema.get("properties"), dict) and schema["properties"]:
                return STRUCT
            if isinstance(schema.get("additionalProperties"), dict):
                return MAP
            return UNTYPED if isinstance(value, dict) else (ATOMIC if isinstance(value, list) else SCALAR)
        if t in ("string", "integer", "number", "boolean"):
            return SCALAR
        # untyped (preserve-unknown-fields, RawExtension): deduced from the value
        if isinstance(value, dict):
            return UNTYPED
        return ATOMIC if isinstance(value, list) else SCALAR

    def child(self, schema: Schema, key: str) -> tuple[Schema, bool]:
        """The schema of ``key`` in a struct or map, and whether it is a declared struct field."""
        props = schema.get("properties")
        if isinstance(props, dict) and key in props:
            return self.resolve(props[key]), True
        additional = schema.get("additionalProperties")
        if isinstance(additional, dict):
            return self.resolve(additional), False
        return _UNTYPED, False

    def items(self, schema: Schema) -> Schema:
        items = schema.get("items")
        return self.resolve(items) if isinstance(items, dict) else _UNTYPED


def list_semantics(schema: Schema) -> tuple[str, tuple[str, ...]]:
    """(list type, map keys) of an array schema (kube.lists.from_openapi, as kube-openapi's
    schemaconv derives them)."""
    semantics = from_openapi(schema)
    return semantics.list_type, semantics.map_keys


def _item_element(types: Types, list_kind: str, schema: Schema, item: Any) -> str:
    """The path element of a list item: ``k:{...}`` by its keys, or ``v:<value>`` in a set."""
    if list_kind == LIST_SET:
        return "v:" + json.dumps(item, separators=(",", ":"), sort_keys=True)
    keys = list_semantics(schema)[1]
    item_schema = types.items(schema)
    fields: JSON = {}
    for key in sorted(keys):
        if isinstance(item, dict) and key in item:
            fields[key] = item[key]
            continue
        default = types.child(item_schema, key)[0].get("default")
        if default is None:
            raise errors.Invalid(f'associative list with keys has an element that omits key field "{key}" '
                                 "(and doesn't have default value)")
        fields[key] = default
    return "k:" + json.dumps(fields, separators=(",", ":"))


# --- field sets ---------------------------------------------------------------------------------

def _insert(fs: FieldSet, path: tuple[str, ...]) -> None:
    node = fs
    for pe in path:
        node = node.setdefault(pe, {})
    node[MEMBER] = {}


def to_set(types: Types, value: Any, schema: Schema) -> FieldSet:
    """``ToFieldSet``: the fields ``value`` sets (what an applier of ``value`` owns)."""
    out: FieldSet = {}
    _to_set(types, value, types.resolve(schema), out)
    return out


def _to_set(types: Types, value: Any, schema: Schema, node: FieldSet) -> None:
    kind = types.kind(schema, value)
    if kind in (SCALAR, ATOMIC):
        node[MEMBER] = {}
        return
    if kind in (LIST_SET, LIST_MAP):
        if not isinstance(value, list):
            return
        item_schema = types.items(schema)
        elements = [_item_element(types, kind, schema, item) for item in value]
        counts: dict[str, int] = {}
        for pe in elements:
            counts[pe] = counts.get(pe, 0) + 1
        for pe, item in zip(elements, value, strict=True):
            child = node.setdefault(pe, {})
            if counts[pe] == 1:  # a duplicated item is owned whole, not field by field
                _to_set(types, item, item_schema, child)
            child[MEMBER] = {}
        return
    if not isinstance(value, dict):
        return
    for key, val in value.items():
        sub, declared = types.child(schema, key) if kind != UNTYPED else (_UNTYPED, False)
        child = node.setdefault("f:" + key, {})
        _to_set(types, val, sub, child)
        if val is None or val == {} or not declared:
            child[MEMBER] = {}


class Comparison:
    def __init__(self) -> None:
        self.added: FieldSet = {}
        self.modified: FieldSet = {}
        self.removed: FieldSet = {}


def compare(types: Types, lhs: Any, rhs: Any, schema: Schema) -> Comparison:
    """``Compare``: what changed from ``lhs`` to ``rhs`` (either may be ``None`` for "absent")."""
    out = Comparison()
    _compare(types, _ABSENT if lhs is None else lhs, _ABSENT if rhs is None else rhs, types.resolve(schema), (), out)
    return out


def _compare(types: Types, lhs: Any, rhs: Any, schema: Schema, path: tuple[str, ...], out: Comparison) -> None:
    kind = types.kind(schema, rhs if rhs is not _ABSENT else lhs)
    composite = kind in (STRUCT, MAP, UNTYPED) and isinstance(lhs if rhs is _ABSENT else rhs, dict) and (
        lhs is _ABSENT or rhs is _ABSENT or (isinstance(lhs, dict) and isinstance(rhs, dict)))
    is_list = kind in (LIST_SET, LIST_MAP) and (lhs is _ABSENT or isinstance(lhs, list)) and (
        rhs is _ABSENT or isinstance(rhs, list))
    if not composite and not is_list:
        if lhs is _ABSENT:
            _insert(out.added, path)
        elif rhs is _ABSENT:
            _insert(out.removed, path)
        elif lhs != rhs or type(lhs) is not type(rhs):
            _insert(out.modified, path)
        return
    if composite:
        left = lhs if isinstance(lhs, dict) else {}
        right = rhs if isinstance(rhs, dict) else {}
        for key in [*left, *(k for k in right if k not in left)]:
            sub = types.child(schema, key)[0] if kind != UNTYPED else _UNTYPED
            _compare(types, left.get(key, _ABSENT), right.get(key, _ABSENT), sub, (*path, "f:" + key), out)
    else:
        item_schema = types.items(schema)
        left_items = _group(types, kind, schema, lhs if isinstance(lhs, list) else [])
        right_items = _group(types, kind, schema, rhs if isinstance(rhs, list) else [])
        for pe in [*left_items, *(p for p in right_items if p not in left_items)]:
            ls, rs = left_items.get(pe, []), right_items.get(pe, [])
            if len(ls) <= 1 and len(rs) <= 1:
                _compare(types, ls[0] if ls else _ABSENT, rs[0] if rs else _ABSENT, item_schema, (*path, pe), out)
            elif len(ls) >= 2 and len(rs) >= 2:
                if ls != rs:
                    _insert(out.modified, (*path, pe))
            elif len(ls) >= 2:
                _insert(out.removed if not rs else out.modified, (*path, pe))
            else:
                _insert(out.added if not ls else out.modified, (*path, pe))
    if lhs is _ABSENT:
        _insert(out.added, path)
    elif rhs is _ABSENT:
        _insert(out.removed, path)


def _group(types: Types, kind: str, schema: Schema, items: list[Any]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for item in items:
        out.setdefault(_item_element(types, kind, schema, item), []).append(item)
    return out


def merge(types: Types, live: Any, config: Any, schema: Schema) -> Any:
    """``Merge``: ``config`` over ``live``; the configuration wins on every field it sets."""
    return _merge(types, live, config, types.resolve(schema))


def _merge(types: Types, live: Any, config: Any, schema: Schema) -> Any:
    kind = types.kind(schema, config)
    if kind in (STRUCT, MAP, UNTYPED) and isinstance(live, dict) and isinstance(config, dict):
        out = dict(live)
        for key, val in config.items():
            sub = types.child(schema, key)[0] if kind != UNTYPED else _UNTYPED
            out[key] = _merge(types, live[key], val, sub) if key in live else val
        return out
    if kind in (LIST_SET, LIST_MAP) and isinstance(live, list) and isinstance(config, list):
        item_schema = types.items(schema)
        lpes = [_item_element(types, kind, schema, i) for i in live]
        rpes = [_item_element(types, kind, schema, i) for i in config]
        live_by = dict(zip(lpes, live, strict=True))
        in_config = set(rpes)
        out_items: list[Any] = []
        emitted: set[str] = set()
        li = ri = 0
        while li < len(live) or ri < len(config):
            if li < len(live) and lpes[li] in emitted:
                li += 1
                continue
            if li < len(live) and lpes[li] not in in_config:
                out_items.append(live[li])
                li += 1
                continue
            if ri < len(config):
                pe = rpes[ri]
                if pe not in emitted:
                    item = config[ri]
                    out_items.append(_merge(types, live_by[pe], item, item_schema) if pe in live_by else item)
                    emitted.add(pe)
                ri += 1
                continue
            li += 1
        return out_items
    return config


def remove(types: Types, value: Any, fields: FieldSet, schema: Schema) -> Any:
    """``RemoveItems``: ``value`` without the members of ``fields`` (whole subtrees)."""
    return _remove(types, value, fields, types.resolve(schema))


def _remove(types: Types, value: Any, fields: FieldSet, schema: Schema) -> Any:
    kind = types.kind(schema, value)
    if isinstance(value, dict) and kind in (STRUCT, MAP, UNTYPED):
        out = {}
        for key, val in value.items():
            sub_fields = fields.get("f:" + key)
            if sub_fields is None:
                out[key] = val
            elif MEMBER in sub_fields:
                continue
            else:
                sub = types.child(schema, key)[0] if kind != UNTYPED else _UNTYPED
                out[key] = _remove(types, val, sub_fields, sub)
        return out
    if isinstance(value, list) and kind in (LIST_SET, LIST_MAP):
        item_schema = types.items(schema)
        out_items = []
        for item in value:
            sub_fields = fields.get(_item_element(types, kind, schema, item))
            if sub_fields is None:
                out_items.append(item)
            elif MEMBER not in sub_fields:
                out_items.append(_remove(types, item, sub_fields, item_schema))
        return out_items
    return value


# --- set algebra ------------------------------------------------------------------------------

def union(a: FieldSet, b: FieldSet) -> FieldSet:
    out = dict(a)
    for k, v in b.items():
        out[k] = union(out[k], v) if k in out else v
    return out


def difference(a: FieldSet, b: FieldSet) -> FieldSet:
    """``a`` without the members of ``b``."""
    out: FieldSet = {}
    for k, v in a.items():
        if k not in b:
            out[k] = v
        elif k != MEMBER:
            sub = difference(v, b[k])
            if sub:
                out[k] = sub
    return out


def intersection(a: FieldSet, b: FieldSet) -> FieldSet:
    out: FieldSet = {}
    for k, v in a.items():
        if k not in b:
            continue
        if k == MEMBER:
            out[k] = {}
        else:
            sub = intersection(v, b[k])
            if sub:
                out[k] = sub
    return out


def _unowned(last: FieldSet, owned: FieldSet) -> FieldSet:
    """The nodes of ``last`` (named fields included, ``EnsureNamedFieldsAreMembers``) that no
    set in ``owned`` reaches: what pruning a manager's dropped fields removes."""
    out: FieldSet = {}
    for k, sub in last.items():
        if k == MEMBER:
            continue
        if k not in owned:
            out[k] = {MEMBER: {}}
        else:
            inner = _unowned(sub, owned[k])
            if inner:
                out[k] = inner
    return out


def paths(fs: FieldSet, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every member path of ``fs``, in set order."""
    if MEMBER in fs:
        yield prefix
    for k, v in sorted(fs.items()):
        if k != MEMBER:
            yield from paths(v, (*prefix, k))


def path_string(path: tuple[str, ...]) -> str:
    """A path as structured-merge-diff prints it: ``.spec.replicas``, ``.spec.containers[name="c"]``."""
    out = ""
    for pe in path:
        if pe.startswith("f:"):
            out += "." + pe[2:]
        elif pe.startswith("k:"):
            keys = json.loads(pe[2:])
            out += "[" + ",".join(f"{k}={json.dumps(v)}" for k, v in keys.items()) + "]"
        elif pe.startswith("v:"):
            out += f"[={pe[2:]}]"
        else:
            out += f"[{pe}]"
    return out


# --- managers ---------------------------------------------------------------------------------

class Conflicts(Exception):
    """Fields the applier would change that other managers own: (manager, path) pairs."""

    def __init__(self, conflicts: list[tuple[str, str]]) -> None:
        super().__init__(conflicts)
        self.conflicts = conflicts

    def to_error(self, resource: str, group: str, name: str) -> errors.ApiError:
        """kube-apiserver's 409 (``internal.NewConflictError``)."""
        items = self.conflicts
        if len(items) == 1:
            detail = f"conflict with {items[0][0]}: {items[0][1]}"
        else:
            lines: list[str] = []
            for manager in sorted({m for m, _ in items}):
                lines.append(f"conflicts with {manager}:")
                lines += [f"- {p}" for m, p in items if m == manager]
            detail = "\n".join(lines)
        plural = "conflict" if len(items) == 1 else "conflicts"
        message = f"Apply failed with {len(items)} {plural}: {detail}"
        causes = [{"reason": "FieldManagerConflict", "message": f"conflict with {m}", "field": p} for m, p in items]
        return errors.Conflict(message, details={"causes": causes})


def apply(types: Types, live: JSON | None, config: JSON, schema: Schema, *, manager: str,
          managers: list[tuple[JSON, FieldSet]], force: bool, ignore: Callable[[FieldSet], FieldSet],
          ) -> tuple[JSON, list[tuple[JSON, FieldSet]]]:
    """``Updater.Apply``: the new object and the managers' sets after ``manager`` applied ``config``.

    ``managers`` are the stored entries (identity dict, set) with the applier's own Apply
    entry among them (or not); ``ignore`` strips the fields this endpoint resets (status on the
    main resource, everything but status on /status) and the server-owned metadata.
    """
    base = live if live is not None else {}
    merged = merge(types, base, config, schema)
    applied = ignore(to_set(types, config, schema))
    last: FieldSet = {}
    others: list[tuple[JSON, FieldSet]] = []
    for entry, fs in managers:
        if entry.get("manager") == manager and entry.get("operation") == "Apply":
            last = fs
        else:
            others.append((entry, fs))
    if last:
        owned = applied
        for _, fs in others:
            owned = union(owned, fs)
        drop = _unowned(ignore(last), owned)
        if drop:
            merged = remove(types, merged, drop, schema)
    diff = compare(types, live, merged, schema)
    changed = ignore(union(diff.added, diff.modified))
    conflicts: list[tuple[str, str]] = []
    result: list[tuple[JSON, FieldSet]] = []
    for entry, fs in others:
        clash = intersection(fs, changed)
        if clash and not force:
            conflicts += [(_describe(entry), path_string(p)) for p in paths(clash)]
        kept = difference(difference(fs, changed), diff.removed)
        if kept:
            result.append((entry, kept))
    if conflicts:
        raise Conflicts(conflicts)
    if applied:
        result.append(({"manager": manager, "operation": "Apply"}, applied))
    return merged, result


def _describe(entry: JSON) -> str:
    """A manager as conflicts name it (``printManager`` in managedfields/internal/conflict.go)."""
    out = json.dumps(str(entry.get("manager", "")))
    if entry.get("subresource"):
        out += f' with subresource {json.dumps(entry["subresource"])}'
    if entry.get("operation") == "Update":
        out += f' using {entry.get("apiVersion", "")}'
    return out


def update(types: Types, live: JSON | None, new: JSON, schema: Schema, *, manager_id: Callable[[JSON], bool],
           managers: list[tuple[JSON, FieldSet]], ignore: Callable[[FieldSet], FieldSet],
           ) -> tuple[FieldSet, list[tuple[JSON, FieldSet]], FieldSet]:
    """``Updater.Update``: (the updater's new set, every other manager's remaining set, the
    fields this update added or modified)."""
    diff = compare(types, live, new, schema)
    changed = ignore(union(diff.added, diff.modified))
    removed = diff.removed
    mine: FieldSet = {}
    result: list[tuple[JSON, FieldSet]] = []
    for entry, fs in managers:
        if manager_id(entry):
            mine = fs
            continue
        kept = difference(difference(fs, changed), removed)
        if kept:
            result.append((entry, kept))
    return ignore(union(difference(mine, removed), changed)), result, changed
