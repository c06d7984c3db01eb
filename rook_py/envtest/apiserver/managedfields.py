"""``metadata.managedFields``: which manager last set which fields, as kube-apiserver records them.

kube-apiserver's field manager (``staging/src/k8s.io/apimachinery/pkg/util/managedfields`` on top
of sigs.k8s.io/structured-merge-diff) keeps one entry per (manager, operation, apiVersion,
subresource) with the set of fields that manager owns, encoded as FieldsV1: nested maps keyed
``f:<field>``, ``k:<json key>`` for list items and ``.`` for "this node itself".

The emulator approximates it without OpenAPI schemas, which is what clients observe:

* a create gives the creating manager every field of the object;
* an update (PUT, PATCH, /status, /scale) gives the manager the fields it *changed*, takes
  them away from every other manager, and drops fields that no longer exist; a manager left
  with no field loses its entry; a write that changes nothing changes no entry;
* lists of objects that all carry a distinct ``name`` (containers, volumes, env, ports...) or
  ``type`` (conditions) are associative (``k:{"name":"web"}``); other lists are atomic;
* the stripped fields are upstream's (``internal/stripmeta.go``): apiVersion, kind and the
  metadata the server owns (name, namespace, uid, resourceVersion, generation,
  creationTimestamp, selfLink, managedFields);
* a body without managedFields (or with ``[]``, or an invalid list) keeps the stored entries,
  ``[{}]`` clears them (only this write's own entry remains, if it changed anything), any
  other valid list replaces them; writes to subresources always start from the stored ones.

Only the ``Update`` operation is recorded: the emulator does not serve server-side apply
(``application/apply-patch+yaml`` is answered 415).

Internally a field set is a nested dict: path element -> child set, with ``"."`` present when
the node itself is a member. Leaves are ``{".": {}}``; :func:`to_fields_v1` turns them into the
wire's ``{}``.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable
from typing import Any

JSON = dict[str, Any]
FieldSet = dict[str, Any]

UPDATE = "Update"
APPLY = "Apply"
#: the longest manager name kube-apiserver accepts (fieldManager validation)
MAX_MANAGER_LENGTH = 128

_MEMBER = "."
_LEAF: FieldSet = {_MEMBER: {}}
_STRIPPED_TOP = frozenset({"apiVersion", "kind"})
_STRIPPED_META = frozenset({"name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp",
                            "selfLink", "managedFields", "clusterName"})
# Top-level maps (not structs): their node is a member, as for map-typed fields upstream.
_TOP_LEVEL_MAPS = frozenset({"data", "binaryData", "stringData"})
_LIST_KEYS = ("name", "type")


def manager_from_user_agent(user_agent: str) -> str:
    """The default manager name: the User-Agent up to its first ``/``, printable characters only,
    at most 128 of them (``prefixFromUserAgent`` in apiserver/pkg/endpoints/handlers/rest.go)."""
    prefix = user_agent.split("/", 1)[0]
    out = [c for c in prefix if c.isprintable() and unicodedata.category(c) != "Cc"]
    return "".join(out[:MAX_MANAGER_LENGTH])


def validate_manager(name: str) -> str | None:
    """Why a ``fieldManager`` query parameter is unacceptable, or None."""
    if len(name) > MAX_MANAGER_LENGTH:
        return f"must be no more than {MAX_MANAGER_LENGTH} characters"
    if not all(c.isprintable() for c in name):
        return "must only contain printable characters"
    return None


# --- field sets -----------------------------------------------------------------------------------

def _list_key(items: list[Any]) -> str | None:
    """The key field that makes ``items`` an associative list, or None (atomic)."""
    if not items or not all(isinstance(i, dict) for i in items):
        return None
    for key in _LIST_KEYS:
        values = [i.get(key) for i in items]
        if all(isinstance(v, str) for v in values) and len(set(values)) == len(values):
            return key
    return None


def _item_path(key: str, item: JSON) -> str:
    return "k:" + json.dumps({key: item[key]}, separators=(",", ":"))


def _value_set(value: Any, member: bool) -> FieldSet:
    """Every field of ``value``; ``member`` says whether the node itself counts (maps, list
    items, pointers) or is a struct whose presence is implied (spec, status, metadata)."""
    if isinstance(value, dict) and value:
        out: FieldSet = {_MEMBER: {}} if member else {}
        for k, v in value.items():
            out["f:" + k] = _value_set(v, True)
        return out
    if isinstance(value, list):
        key = _list_key(value)
        if key is not None:
            out = {_MEMBER: {}}
            for item in value:
                out[_item_path(key, item)] = _value_set(item, True)
            return out
    return {_MEMBER: {}}


def fields_of(obj: JSON) -> FieldSet:
    """The field set of a whole object, without the fields the server owns."""
    out: FieldSet = {}
    for k, v in obj.items():
        if k in _STRIPPED_TOP:
            continue
        if k == "metadata" and isinstance(v, dict):
            meta = {mk: mv for mk, mv in v.items() if mk not in _STRIPPED_META}
            if meta:
                out["f:metadata"] = _value_set(meta, False)
            continue
        out["f:" + k] = _value_set(v, k in _TOP_LEVEL_MAPS)
    return out


def _changed(old: Any, new: Any, member: bool) -> FieldSet:
    """Fields set or modified in ``new`` relative to ``old`` (removals are not included)."""
    if isinstance(old, dict) and isinstance(new, dict) and old and new:
        out: FieldSet = {}
        for k, v in new.items():
            if k not in old:
                out["f:" + k] = _value_set(v, True)
            elif old[k] != v:
                sub = _changed(old[k], v, True)
                if sub:
                    out["f:" + k] = sub
        return out
    if isinstance(old, list) and isinstance(new, list):
        key = _list_key(new)
        if key is not None and key == _list_key(old):
            before = {item[key]: item for item in old}
            out = {}
            for item in new:
                path = _item_path(key, item)
                if item[key] not in before:
                    out[path] = _value_set(item, True)
                elif before[item[key]] != item:
                    sub = _changed(before[item[key]], item, True)
                    if sub:
                        out[path] = sub
            return out
    return _value_set(new, member)


def changed_fields(old: JSON, new: JSON) -> FieldSet:
    """The fields an update from ``old`` to ``new`` sets (what the updating manager takes over)."""
    out: FieldSet = {}
    for k, v in new.items():
        if k in _STRIPPED_TOP:
            continue
        if k == "metadata" and isinstance(v, dict):
            before = {mk: mv for mk, mv in (old.get("metadata") or {}).items() if mk not in _STRIPPED_META}
            after = {mk: mv for mk, mv in v.items() if mk not in _STRIPPED_META}
            if after != before and after:
                sub = _changed(before, after, False) if before else _value_set(after, False)
                if sub:
                    out["f:metadata"] = sub
            continue
        if k not in old:
            out["f:" + k] = _value_set(v, k in _TOP_LEVEL_MAPS)
        elif old[k] != v:
            sub = _changed(old[k], v, k in _TOP_LEVEL_MAPS)
            if sub:
                out["f:" + k] = sub
    return out


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
        elif k != _MEMBER:
            sub = difference(v, b[k])
            if sub:
                out[k] = sub
    return out


def intersection(a: FieldSet, b: FieldSet) -> FieldSet:
    """The members of ``a`` that are also in ``b`` (used to forget fields that are gone)."""
    out: FieldSet = {}
    for k, v in a.items():
        if k not in b:
            continue
        if k == _MEMBER:
            out[k] = {}
        else:
            sub = intersection(v, b[k])
            if sub:
                out[k] = sub
    return out


def to_fields_v1(fs: FieldSet) -> JSON:
    """Wire form: a node that is only a member is ``{}``."""
    out: JSON = {}
    for k, v in fs.items():
        if k == _MEMBER or (len(v) == 1 and _MEMBER in v):
            out[k] = {}
        else:
            out[k] = to_fields_v1(v)
    return out


def from_fields_v1(fields: Any) -> FieldSet:
    """Parse a FieldsV1 map; ValueError when it is not one."""
    if not isinstance(fields, dict):
        raise ValueError("fieldsV1 must be an object")
    out: FieldSet = {}
    for k, v in fields.items():
        if not isinstance(v, dict):
            raise ValueError(f"fieldsV1 entry {k!r} must be an object")
        if k == _MEMBER:
            out[k] = {}
        elif not v:
            out[k] = {_MEMBER: {}}
        else:
            out[k] = from_fields_v1(v)
    return out


# --- entries --------------------------------------------------------------------------------------

def _identity(entry: JSON) -> tuple[str, str, str, str]:
    # BuildManagerIdentifier (managedfields/internal/managedfields.go): appliers are identified
    # without their apiVersion, updaters with it.
    api_version = "" if entry.get("operation") == APPLY else str(entry.get("apiVersion", ""))
    return (str(entry.get("manager", "")), str(entry.get("operation", "")), api_version,
            str(entry.get("subresource", "")))


def _sort_key(entry: JSON) -> tuple[str, str, str, str, str]:
    # sortEncodedManagedFields: operation, then time (oldest first), manager, apiVersion,
    # subresource. RFC 3339 UTC stamps of one format sort chronologically as strings.
    return (str(entry.get("operation", "")), str(entry.get("time", "")), str(entry.get("manager", "")),
            str(entry.get("apiVersion", "")), str(entry.get("subresource", "")))


def _decode(entries: Any) -> list[tuple[JSON, FieldSet]] | None:
    """Entries with their parsed sets; None when ``entries`` is not a valid managedFields list."""
    if not isinstance(entries, list):
        return None
    out = []
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("operation") not in (UPDATE, APPLY):
            return None
        if entry.get("fieldsType", "FieldsV1") != "FieldsV1":
            return None
        try:
            fs = from_fields_v1(entry.get("fieldsV1") or {})
        except ValueError:
            return None
        out.append(({k: v for k, v in entry.items() if k != "fieldsV1"}, fs))
    return out


def _base_entries(requested: Any, stored: Any, *, subresource: str | None) -> list[tuple[JSON, FieldSet]]:
    """What the write starts from (decodeLiveOrNew in managedfields/internal/fieldmanager.go):
    the stored entries for subresources and for requests without (valid) managedFields, so
    clients that strip them never erase them; none for the reset value ``[{}]``; else the
    request's own list."""
    if not subresource and isinstance(requested, list) and requested:
        if requested == [{}]:
            return []
        decoded = _decode(requested)
        if decoded:
            return decoded
    return _decode(stored) or []


def record_write(new: JSON, old: JSON | None, *, manager: str, api_version: str, subresource: str | None,
                 now: Callable[[], str]) -> None:
    """Set ``new["metadata"]["managedFields"]`` for a write of ``new`` over ``old`` (None: create).

    ``new`` is the object about to be stored (after defaulting and the strategy's resets); its
    metadata.managedFields, if any, is what the request carried. Mirrors the Update path of
    structured-merge-diff's ``merge.Updater``: the manager gains the fields it added or modified,
    every other manager loses them, and fields that disappeared leave every set.
    """
    meta = new.setdefault("metadata", {})
    requested = meta.pop("managedFields", None)
    stored = (old.get("metadata") or {}).get("managedFields") if old is not None else None
    entries = _base_entries(requested, stored, subresource=subresource)
    present = fields_of(new)
    changed = present if old is None else changed_fields(old, new)
    me: JSON = {"manager": manager, "operation": UPDATE, "apiVersion": api_version}
    if subresource:
        me["subresource"] = subresource
    my_id = _identity(me)
    result: list[JSON] = []
    mine: FieldSet = {}
    mine_entry: JSON | None = None
    for entry, fs in entries:
        if _identity(entry) == my_id:
            mine, mine_entry = fs, entry
            continue
        kept = intersection(difference(fs, changed) if changed else fs, present)
        if kept:
            result.append({**entry, "fieldsType": "FieldsV1", "fieldsV1": to_fields_v1(kept)})
    owned = intersection(union(mine, changed), present)
    if owned:
        # the timestamp moves only when this write took fields (managedFieldsUpdater)
        stamp = now() if changed or mine_entry is None else str(mine_entry.get("time") or now())
        base = mine_entry if mine_entry is not None else me
        result.append({**base, **me, "time": stamp, "fieldsType": "FieldsV1", "fieldsV1": to_fields_v1(owned)})
    result.sort(key=_sort_key)
    if result:
        meta["managedFields"] = result
