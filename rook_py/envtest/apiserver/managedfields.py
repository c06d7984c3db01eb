"""``metadata.managedFields``: which manager last set which fields, as kube-apiserver records them.

kube-apiserver's field manager (``staging/src/k8s.io/apimachinery/pkg/util/managedfields`` on top
of sigs.k8s.io/structured-merge-diff) keeps one entry per (manager, operation, apiVersion,
subresource) with the set of fields that manager owns, encoded as FieldsV1: nested maps keyed
``f:<field>``, ``k:<json key>`` for list items and ``.`` for "this node itself". The set algebra
over the kind's schema is fieldmanager.py; this module keeps the entries:

* an update (create, PUT, PATCH, /status, /scale) gives the manager the fields it added or
  changed and takes them from every other manager; a manager left with no field loses its
  entry; a write that changes nothing changes no entry (``record_write``);
* a server-side apply (``apply_write``) gives the applier exactly the fields of its
  configuration, prunes what it applied before and no longer does (unless someone else owns
  it), and answers 409 when the change touches another manager's fields, unless forced;
* the stripped fields are upstream's (``internal/stripmeta.go``): apiVersion, kind and the
  metadata the server owns (name, namespace, uid, resourceVersion, generation,
  creationTimestamp, selfLink, managedFields);
* a body without managedFields (or with ``[]``, or an invalid list) keeps the stored entries,
  ``[{}]`` clears them (only this write's own entry remains, if it changed anything), any
  other valid list replaces them; writes to subresources always start from the stored ones.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from typing import Any

from . import fieldmanager
from .fieldmanager import Schema, Types

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


# --- field sets ----------------------------------------------------------------------------------

def strip_server_fields(fs: FieldSet) -> FieldSet:
    """``fs`` without apiVersion, kind and the metadata the server owns (``internal/stripmeta.go``)."""
    out = {k: v for k, v in fs.items() if k[2:] not in _STRIPPED_TOP or not k.startswith("f:")}
    meta = out.get("f:metadata")
    if meta is not None:
        meta = {k: v for k, v in meta.items() if k == _MEMBER or k[2:] not in _STRIPPED_META}
        meta.pop(_MEMBER, None)
        if meta:
            out["f:metadata"] = meta
        else:
            del out["f:metadata"]
    return out


def _without_managed_fields(obj: JSON) -> JSON:
    meta = obj.get("metadata")
    if isinstance(meta, dict) and "managedFields" in meta:
        return {**obj, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}
    return obj


def _zero_value(obj: JSON) -> JSON:
    """What a create compares against: the kind's zero value, whose non-pointer top-level
    structs (metadata, spec, status) exist empty, so a create does not own those nodes."""
    return {k: {} for k in ("metadata", "spec", "status") if isinstance(obj.get(k), dict)}


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
                 now: Callable[[], str], types: Types, schema: Schema) -> None:
    """Set ``new["metadata"]["managedFields"]`` for a write of ``new`` over ``old`` (None: create).

    ``new`` is the object about to be stored (after defaulting and the strategy's resets); its
    metadata.managedFields, if any, is what the request carried. structured-merge-diff's
    ``Updater.Update`` over the kind's schema (fieldmanager.py): the manager gains the fields
    it added or modified, every other manager loses them, and removed fields leave every set.
    """
    meta = new.setdefault("metadata", {})
    requested = meta.pop("managedFields", None)
    stored = (old.get("metadata") or {}).get("managedFields") if old is not None else None
    entries = _base_entries(requested, stored, subresource=subresource)
    me: JSON = {"manager": manager, "operation": UPDATE, "apiVersion": api_version}
    if subresource:
        me["subresource"] = subresource
    my_id = _identity(me)
    mine_entry = next((e for e, _ in entries if _identity(e) == my_id), None)
    before = _without_managed_fields(old) if old is not None else _zero_value(new)
    owned, others, changed = fieldmanager.update(
        types, before, new, schema, manager_id=lambda e: _identity(e) == my_id, managers=entries,
        ignore=strip_server_fields)
    result = [{**entry, "fieldsType": "FieldsV1", "fieldsV1": to_fields_v1(fs)} for entry, fs in others]
    if owned:
        # the timestamp moves only when this write took fields (managedFieldsUpdater)
        stamp = now() if changed or mine_entry is None else str(mine_entry.get("time") or now())
        base = mine_entry if mine_entry is not None else me
        result.append({**base, **me, "time": stamp, "fieldsType": "FieldsV1", "fieldsV1": to_fields_v1(owned)})
    result.sort(key=_sort_key)
    if result:
        meta["managedFields"] = result


def status_only(fs: FieldSet) -> FieldSet:
    """What an apply to /status may own: its status (the rest is reset by the status strategy)."""
    return {k: v for k, v in fs.items() if k == "f:status"}


def apply_write(live: JSON | None, config: JSON, *, manager: str, api_version: str, subresource: str | None,
                force: bool, now: Callable[[], str], types: Types, schema: Schema,
                has_status: bool) -> JSON:
    """The object an apply of ``config`` by ``manager`` makes of ``live`` (None: create on
    apply), with its managedFields; raises fieldmanager.Conflicts unless ``force``."""
    stored = (live.get("metadata") or {}).get("managedFields") if live is not None else None
    entries = _decode(stored) or []
    if subresource == "status":
        def ignore(fs: FieldSet) -> FieldSet:
            return status_only(strip_server_fields(fs))
    elif has_status:
        def ignore(fs: FieldSet) -> FieldSet:
            return {k: v for k, v in strip_server_fields(fs).items() if k != "f:status"}
    else:
        ignore = strip_server_fields
    me: JSON = {"manager": manager, "operation": APPLY, "apiVersion": api_version}
    if subresource:
        me["subresource"] = subresource
    my_id = _identity(me)
    # entries of the same manager applying to another endpoint are someone else here
    keyed = [({**e, "manager": f"\0{manager}"}
              if e.get("operation") == APPLY and e.get("manager") == manager and _identity(e) != my_id else e, fs)
             for e, fs in entries]
    base = _without_managed_fields(live) if live is not None else None
    config = _without_managed_fields(config)
    merged, result = fieldmanager.apply(types, base, config, schema, manager=manager, managers=keyed,
                                        force=force, ignore=ignore)
    mine_entry = next((e for e, _ in entries if _identity(e) == my_id), None)
    out: list[JSON] = []
    for entry, fs in result:
        if entry.get("operation") == APPLY and entry.get("manager") == manager and "time" not in entry:
            unchanged = mine_entry is not None and from_fields_v1(mine_entry.get("fieldsV1") or {}) == fs
            stamp = str(mine_entry.get("time") or now()) if unchanged and mine_entry else now()
            out.append({**me, "time": stamp, "fieldsType": "FieldsV1", "fieldsV1": to_fields_v1(fs)})
            continue
        name = str(entry.get("manager", ""))
        original = {**entry, "manager": name[1:] if name.startswith("\0") else name}
        out.append({**original, "fieldsType": "FieldsV1", "fieldsV1": to_fields_v1(fs)})
    out.sort(key=_sort_key)
    merged.setdefault("metadata", {})["managedFields"] = out
    return merged
