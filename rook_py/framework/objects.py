"""Object helpers for providers: owner references, finalizers, conditions, status writes, apply.

All helpers work on plain-dict objects and never mutate their inputs: objects handed in may
come straight from the informer cache, which is read-only for callers. Every write is
optimistic (it carries ``metadata.resourceVersion``) and a ``Conflict`` is retried a bounded
number of times after a fresh read from the API server, as client-go's
``retry.RetryOnConflict`` (k8s.io/client-go/util/retry/util.go) is used in controllers.
"""

from __future__ import annotations

import copy
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

from rook_py.framework.client import errors
from rook_py.framework.kube.conditions import get_condition, set_condition
from rook_py.framework.kube.lists import list_semantics
from rook_py.framework.kube.owners import controller_of, controller_reference, owner_scope_error, same_owner
from rook_py.framework.kube.quantity import QuantityError, parse_quantity

JSON = dict[str, Any]
T = TypeVar("T")
Path = tuple[str, ...]

__all__ = [
    "LAST_APPLIED_ANNOTATION",
    "AlreadyOwnedError",
    "ApplyResult",
    "ObjectClient",
    "ObjectReader",
    "add_finalizer",
    "apply",
    "controller_of",
    "get_condition",
    "remove_finalizer",
    "retry_on_conflict",
    "set_condition",
    "set_controller_reference",
    "update_status",
]

LAST_APPLIED_ANNOTATION = "rook.io/last-applied"


class ObjectClient(Protocol):
    """The slice of ``rook_py.framework.client.Client`` these helpers use."""

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None, *,
            subresource: str | None = None) -> JSON: ...

    def create(self, obj: JSON, *, namespace: str | None = None) -> JSON: ...

    def update(self, obj: JSON) -> JSON: ...

    def update_status(self, obj: JSON) -> JSON: ...

    def apply(self, obj: JSON, *, field_manager: str, force: bool = False, subresource: str | None = None
              ) -> JSON: ...

    def patch(self, api_version: str, kind: str, name: str, patch: Any, *, namespace: str | None = None,
              patch_type: Literal["merge", "json", "strategic"] = "merge",
              subresource: str | None = None) -> JSON: ...


class ObjectReader(Protocol):
    """A (possibly cached, possibly stale) reader, e.g. the manager's ``CacheReader``."""

    def get(self, api_version: str, kind: str, name: str,
            namespace: str | None = None) -> JSON | None: ...


# -- retry ----------------------------------------------------------------------------------------

def retry_on_conflict(fn: Callable[[], T], attempts: int = 5, *, backoff: float = 0.01,
                      sleep: Callable[[float], None] = time.sleep) -> T:
    """Call ``fn`` until it does not raise ``errors.Conflict``, at most ``attempts`` times.

    ``fn`` must re-read what it writes on each call (or arrange for it after a conflict).
    Between attempts it sleeps ``backoff`` with 10% jitter: client-go's ``DefaultRetry``
    (5 steps of 10 ms). The last Conflict propagates.
    """
    if attempts < 1:
        raise ValueError("attempts must be >= 1")
    for attempt in range(attempts):
        try:
            return fn()
        except errors.Conflict:
            if attempt == attempts - 1:
                raise
            sleep(backoff * (1.0 + 0.1 * random.random()))
    raise AssertionError("unreachable")  # pragma: no cover


def _identity(obj: JSON) -> tuple[str, str, str, str | None]:
    meta = obj.get("metadata") or {}
    try:
        return obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace")
    except KeyError as exc:
        raise ValueError(f"object needs apiVersion, kind and metadata.name: missing {exc}") from None


def _read(client: ObjectClient, obj: JSON) -> JSON:
    api_version, kind, name, namespace = _identity(obj)
    return client.get(api_version, kind, name, namespace)


# -- owner references -----------------------------------------------------------------------------

class AlreadyOwnedError(ValueError):
    """The object already has a different controller owner (controller-runtime's
    ``AlreadyOwnedError``, sigs.k8s.io/controller-runtime/pkg/controller/controllerutil)."""

    def __init__(self, obj: JSON, owner: JSON) -> None:
        meta = obj.get("metadata") or {}
        super().__init__(f"{obj.get('kind')} {meta.get('namespace') or ''}/{meta.get('name')} is already "
                         f"controlled by {owner.get('kind')} {owner.get('name')}")
        self.owner = owner


def set_controller_reference(owner: JSON, obj: JSON) -> None:
    """Make ``owner`` the controller of ``obj`` (mutates ``obj``, which must be the caller's own
    copy). Raises ``AlreadyOwnedError`` if another object is the controller, and ``ValueError``
    for references the garbage collector would reject: a namespaced owner of a cluster-scoped
    object, or an owner in another namespace. A cluster-scoped owner may own anything."""
    ref = controller_reference(owner)  # ValueError without name and uid
    problem = owner_scope_error(owner, obj)
    if problem is not None:
        raise ValueError(problem)
    obj_meta = obj.setdefault("metadata", {})
    current = controller_of(obj)
    if current is not None and not same_owner(current, ref):
        raise AlreadyOwnedError(obj, current)
    refs: list[JSON] = list(obj_meta.get("ownerReferences") or [])
    for i, existing in enumerate(refs):
        if same_owner(existing, ref):
            refs[i] = ref
            break
    else:
        refs.append(ref)
    obj_meta["ownerReferences"] = refs


# -- finalizers -----------------------------------------------------------------------------------

def _mutate_metadata(client: ObjectClient, obj: JSON, mutate: Callable[[JSON], bool],
                     attempts: int) -> JSON:
    """Apply ``mutate`` to a copy of the object and PUT it; on Conflict re-read and redo.
    ``mutate`` returns False when there is nothing to change, and then nothing is written."""
    state = {"current": obj}

    def attempt() -> JSON:
        working = copy.deepcopy(state["current"])
        if not mutate(working):
            return state["current"]
        try:
            return client.update(working)
        except errors.Conflict:
            state["current"] = _read(client, obj)
            raise

    return retry_on_conflict(attempt, attempts)


def add_finalizer(client: ObjectClient, obj: JSON, name: str, *, attempts: int = 5) -> JSON:
    """Ensure ``name`` is in ``metadata.finalizers``; returns the up-to-date object.
    No write when it is already there (also re-checked after every fresh read)."""

    def add(o: JSON) -> bool:
        meta = o.setdefault("metadata", {})
        finalizers: list[str] = list(meta.get("finalizers") or [])
        if name in finalizers:
            return False
        meta["finalizers"] = [*finalizers, name]
        return True

    return _mutate_metadata(client, obj, add, attempts)


def remove_finalizer(client: ObjectClient, obj: JSON, name: str, *, attempts: int = 5) -> JSON:
    """Ensure ``name`` is not in ``metadata.finalizers``; returns the up-to-date object.
    No write when it is already absent. If the object vanished meanwhile (NotFound), there is
    nothing left to remove and the last known object is returned."""

    def remove(o: JSON) -> bool:
        meta = o.setdefault("metadata", {})
        finalizers: list[str] = list(meta.get("finalizers") or [])
        if name not in finalizers:
            return False
        remaining = [f for f in finalizers if f != name]
        if remaining:
            meta["finalizers"] = remaining
        else:
            meta.pop("finalizers", None)
        return True

    try:
        return _mutate_metadata(client, obj, remove, attempts)
    except errors.NotFound:
        return obj


# -- status ---------------------------------------------------------------------------------------

def update_status(client: ObjectClient, obj: JSON, new_status: JSON, *, attempts: int = 5) -> JSON:
    """Write ``new_status`` through the status subresource, only if it differs from the
    object's current status. On Conflict the object is re-read; if the fresh status already
    equals ``new_status`` nothing is written, otherwise ``new_status`` is written on top of it.

    ``new_status`` was computed from a possibly stale copy. Conditions whose status is the same
    in the fresh object keep the fresh ``lastTransitionTime``: otherwise a late write from a stale
    cache would move a transition back in time (and then differ from every later reconcile's
    view, costing a write each time)."""
    state = {"current": obj}

    def attempt() -> JSON:
        current = state["current"]
        desired = _anchor_transition_times(new_status, current.get("status"))
        if current.get("status") == desired:
            return current
        body = dict(current)  # shallow: only the top-level "status" key is replaced
        body["status"] = desired
        try:
            return client.update_status(body)
        except errors.Conflict:
            state["current"] = _read(client, obj)
            raise

    return retry_on_conflict(attempt, attempts)


def _anchor_transition_times(status: JSON, live_status: JSON | None) -> JSON:
    """``status`` with each condition's lastTransitionTime taken from ``live_status`` where that
    condition (same type) has the same status there; ``status`` itself is not modified."""
    conditions = status.get("conditions")
    live_conditions = (live_status or {}).get("conditions")
    if not isinstance(conditions, list) or not isinstance(live_conditions, list):
        return status
    live_by_type = {c.get("type"): c for c in live_conditions if isinstance(c, dict)}
    anchored: list[Any] = []
    changed = False
    for condition in conditions:
        live = live_by_type.get(condition.get("type")) if isinstance(condition, dict) else None
        if (live is not None and live.get("status") == condition.get("status")
                and "lastTransitionTime" in live
                and live["lastTransitionTime"] != condition.get("lastTransitionTime")):
            condition = {**condition, "lastTransitionTime": live["lastTransitionTime"]}
            changed = True
        anchored.append(condition)
    return {**status, "conditions": anchored} if changed else status


# -- apply ----------------------------------------------------------------------------------------

# Server-managed metadata never taken from a desired object.
_SERVER_METADATA = ("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields",
                    "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds")
#: the manager our PUT-based apply (before server-side apply) wrote under: the client's
#: User-Agent prefix, see rook_py.framework.client.rest
LEGACY_MANAGERS = ("rook-py",)
DEFAULT_FIELD_MANAGER = "rook-py"
APPLY_OPERATION = "Apply"
# parents of ResourceLists and other quantity-valued fields, whose values the server canonicalises
_QUANTITY_PARENTS = frozenset({"limits", "requests", "capacity", "allocatable", "hard", "used", "overhead"})
_QUANTITY_FIELDS = frozenset({"storage", "sizeLimit"})
# key fields with a server default, as server-side apply keys an item that omits them
_KEY_DEFAULTS: dict[str, Any] = {"protocol": "TCP"}

_MISSING: Any = object()


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """``object`` is the object as the server has it after the call (the live object when
    ``action`` is ``"unchanged"``)."""

    object: JSON
    action: Literal["created", "updated", "unchanged"]


def _clean_desired(desired: JSON) -> JSON:
    clean = copy.deepcopy(desired)
    # status is written through its subresource (update_status): an apply to the main
    # resource does not own it
    clean.pop("status", None)
    meta = clean.setdefault("metadata", {})
    for key in _SERVER_METADATA:
        meta.pop(key, None)
    annotations = meta.get("annotations")
    if isinstance(annotations, dict):
        annotations.pop(LAST_APPLIED_ANNOTATION, None)
    return clean


def _same_quantity(a: Any, b: Any) -> bool:
    try:
        return parse_quantity(a) == parse_quantity(b)
    except (QuantityError, TypeError, ValueError):
        return False


def _list_keys(kind: str | None, path: Path) -> tuple[str, tuple[str, ...]]:
    semantics = list_semantics(kind, path)
    return semantics.list_type, semantics.map_keys


def _identity_of(item: Any, keys: tuple[str, ...]) -> tuple[Any, ...] | None:
    if not isinstance(item, dict):
        return None
    return tuple(json.dumps(item.get(k, _KEY_DEFAULTS.get(k)), sort_keys=True) for k in keys)


def _differs(desired: Any, live: Any, kind: str | None, path: Path) -> bool:
    """Whether applying ``desired`` would change ``live``: a field ``desired`` sets that is
    missing from ``live`` or has another value. Fields only ``live`` has (server defaults,
    other managers' fields) and values the server normalised (canonical quantities, empty
    values dropped) are no difference."""
    if isinstance(desired, dict):
        if not isinstance(live, dict):
            return True
        for key, want in desired.items():
            have = live.get(key, _MISSING)
            if have is _MISSING:
                if want in ({}, [], None):
                    continue  # omitted by the server (omitempty) or nothing to set
                return True
            if _differs(want, have, kind, (*path, key)):
                return True
        return False
    if isinstance(desired, list):
        if not isinstance(live, list):
            return True
        list_type, keys = _list_keys(kind, path)
        if list_type == "map" and keys:
            by_key = {_identity_of(item, keys): item for item in live}
            for item in desired:
                match = by_key.get(_identity_of(item, keys), _MISSING)
                if match is _MISSING or _differs(item, match, kind, path):
                    return True
            return bool(_shadowing_items(desired, live, keys))
        if list_type == "set":
            return any(item not in live for item in desired)
        return len(desired) != len(live) or any(
            _differs(d, lv, kind, path) for d, lv in zip(desired, live, strict=True))
    if desired == live and type(desired) is type(live):
        return False
    if path and (path[-1] in _QUANTITY_FIELDS or (len(path) > 1 and path[-2] in _QUANTITY_PARENTS)):
        return not _same_quantity(desired, live)
    return True


def _shadowing_items(desired: list[Any], live: list[Any], keys: tuple[str, ...]) -> list[tuple[int, Any]]:
    """(position, our item) of live items that another writer put in place of one of ours:
    same ``name`` as a desired item, other identity (a merge patch that replaced a Service's or
    container's ``ports`` with one of a new port number). Server-side apply would keep both --
    two ports named alike, which validation rejects on every later apply."""
    if "name" in keys:
        return []
    wanted = {_identity_of(item, keys) for item in desired}
    present = {_identity_of(item, keys) for item in live}
    # our item, or None when it is in the list already (then the shadowing one just goes)
    ours = {item.get("name"): item if _identity_of(item, keys) not in present else None
            for item in desired if isinstance(item, dict) and item.get("name")}
    return [(i, ours[item.get("name")]) for i, item in enumerate(live) if isinstance(item, dict)
            and item.get("name") in ours and _identity_of(item, keys) not in wanted]


def _shadowed_paths(desired: Any, live: Any, kind: str | None, path: Path, pointer: str) -> list[tuple[str, Any]]:
    """(JSON pointer, our item) of every shadowing item (``_shadowing_items``) under ``desired``."""
    out: list[tuple[str, Any]] = []
    if isinstance(desired, dict) and isinstance(live, dict):
        for key, want in desired.items():
            if key in live:
                escaped = key.replace("~", "~0").replace("/", "~1")
                out += _shadowed_paths(want, live[key], kind, (*path, key), f"{pointer}/{escaped}")
    elif isinstance(desired, list) and isinstance(live, list):
        list_type, keys = _list_keys(kind, path)
        if list_type == "map" and keys:
            out += [(f"{pointer}/{i}", item) for i, item in _shadowing_items(desired, live, keys)]
            by_key = {_identity_of(item, keys): (i, item) for i, item in enumerate(live)}
            for item in desired:
                found = by_key.get(_identity_of(item, keys))
                if found is not None:
                    out += _shadowed_paths(item, found[1], kind, path, f"{pointer}/{found[0]}")
    return out


def _repair_ops(shadowed: list[tuple[str, Any]], live: JSON) -> list[JSON]:
    """A JSON patch putting our item in the place of the first item shadowing it and removing
    any further ones (so a list never becomes empty on the way), guarded by resourceVersion."""
    ops: list[JSON] = [{"op": "test", "path": "/metadata/resourceVersion",
                        "value": live["metadata"]["resourceVersion"]}]
    replaced: set[str] = set()
    removals: list[str] = []
    for pointer, ours in shadowed:
        identity = json.dumps(ours, sort_keys=True)
        if ours is None or identity in replaced:
            removals.append(pointer)
        else:
            replaced.add(identity)
            ops.append({"op": "replace", "path": pointer, "value": ours})
    ops += [{"op": "remove", "path": p} for p in sorted(removals, key=_pointer_order, reverse=True)]
    return ops


def _owned_but_not_desired(owned: JSON, desired: Any) -> bool:
    """Whether our last apply set a field (``owned``, FieldsV1) that ``desired`` no longer
    sets: applying again removes it, so that is a difference too."""
    for element, sub in owned.items():
        if element == ".":
            continue
        if element.startswith("f:"):
            if not isinstance(desired, dict) or element[2:] not in desired:
                return True
            if sub and _owned_but_not_desired(sub, desired[element[2:]]):
                return True
        elif element.startswith("k:"):
            if not isinstance(desired, list):
                return True
            keys = json.loads(element[2:])
            match = next((item for item in desired if isinstance(item, dict) and all(
                item.get(k, _KEY_DEFAULTS.get(k)) == v for k, v in keys.items())), _MISSING)
            if match is _MISSING or (sub and _owned_but_not_desired(sub, match)):
                return True
        elif element.startswith("v:") and (not isinstance(desired, list)
                                           or json.loads(element[2:]) not in desired):
            return True
    return False


def _entries(live: JSON) -> list[JSON]:
    entries = (live.get("metadata") or {}).get("managedFields") or []
    return [e for e in entries if isinstance(e, dict)]


def _our_apply_entry(live: JSON, field_manager: str) -> JSON | None:
    for entry in _entries(live):
        if (entry.get("manager") == field_manager and entry.get("operation") == APPLY_OPERATION
                and not entry.get("subresource")):
            return entry
    return None


def _is_legacy(entry: JSON, field_manager: str) -> bool:
    """An entry of ours from an earlier version: fields our old PUTs wrote (manager ``rook-py``,
    operation Update), or an apply under ``rook-py`` before the object's applier got its own
    field manager (``rook-<provider>``)."""
    if entry.get("manager") not in LEGACY_MANAGERS or entry.get("subresource"):
        return False
    operation = entry.get("operation")
    return operation == "Update" or (operation == APPLY_OPERATION and entry.get("manager") != field_manager)


def _needs_migration(live: JSON, field_manager: str) -> bool:
    """An object an earlier version of ours wrote: it carries our annotation or fields owned by
    a legacy entry (``_is_legacy``), which would otherwise keep fields we stop applying."""
    annotations = (live.get("metadata") or {}).get("annotations") or {}
    if LAST_APPLIED_ANNOTATION in annotations:
        return True
    entries = _entries(live)
    if any(_is_legacy(e, field_manager) and e.get("operation") == APPLY_OPERATION for e in entries):
        return True
    legacy = any(_is_legacy(e, field_manager) for e in entries)
    return legacy and _our_apply_entry(live, field_manager) is None


def _union_fields(a: JSON, b: JSON) -> JSON:
    out = dict(a)
    for k, v in b.items():
        out[k] = _union_fields(out[k], v) if k in out and isinstance(out[k], dict) and v else (out.get(k) or v)
    return out


def _annotation_fields() -> JSON:
    return {"f:metadata": {"f:annotations": {f"f:{LAST_APPLIED_ANNOTATION}": {}}}}


def _migrated(live: JSON, field_manager: str, now: str) -> JSON:
    """``live`` with the fields of legacy entries (``_is_legacy``) and the last-applied
    annotation owned by ``field_manager``'s Apply entry instead, as kubectl's
    csaupgrade (k8s.io/client-go/util/csaupgrade) moves client-side apply ownership: the next
    apply then prunes what we no longer set, the annotation included."""
    owned: JSON = _annotation_fields()
    kept: list[JSON] = []
    for entry in _entries(live):
        legacy = _is_legacy(entry, field_manager)
        ours = (entry.get("manager") == field_manager and entry.get("operation") == APPLY_OPERATION
                and not entry.get("subresource"))
        if legacy or ours:
            owned = _union_fields(owned, entry.get("fieldsV1") or {})
        else:
            kept.append(entry)
    kept.append({"manager": field_manager, "operation": APPLY_OPERATION, "apiVersion": live.get("apiVersion"),
                 "time": now, "fieldsType": "FieldsV1", "fieldsV1": owned})
    meta = dict(live.get("metadata") or {})
    meta["managedFields"] = kept
    return {**live, "metadata": meta}


def apply(client: ObjectClient, desired: JSON, *, reader: ObjectReader | None = None,
          field_manager: str = DEFAULT_FIELD_MANAGER, attempts: int = 5) -> ApplyResult:
    """Server-side apply ``desired`` under ``field_manager`` (forced: an operator owns what it
    applies), only when that would change something.

    Before sending, ``desired`` is compared with the live object (``reader``'s, else a GET):
    a field ``desired`` sets that is missing or different in the live object, or a field our
    last apply set that ``desired`` no longer sets, means a write; server defaults, other
    managers' fields and values the server normalised (quantities) do not, so a no-op
    reconcile makes zero write calls. The server then does the merge: drift on our fields is
    reverted, fields we stop applying are removed, fields others own are left alone.

    Two repairs happen first, each one write, only when needed: objects written by the earlier
    client-side apply (``rook.io/last-applied``) have their ownership moved to ``field_manager``
    (a JSON patch of managedFields only, guarded by resourceVersion, as kubectl's csaupgrade
    patches them; the apply that follows removes the annotation), and live list items that took the place of one of ours under another key
    (same name, other port) are replaced by ours (a JSON patch, guarded by resourceVersion; the
    apply that follows takes their ownership), since the apply would otherwise keep both and be
    rejected.

    ``status`` in ``desired`` is ignored (use ``update_status``). Secret ``stringData`` never
    reads back, so use ``data``.
    """
    api_version, kind, name, namespace = _identity(desired)
    clean = _clean_desired(desired)
    live: JSON | None
    if reader is not None:
        live = reader.get(api_version, kind, name, namespace)
    else:
        try:
            live = client.get(api_version, kind, name, namespace)
        except errors.NotFound:
            live = None
    if live is None:
        try:
            return ApplyResult(client.apply(clean, field_manager=field_manager, force=True), "created")
        except errors.AlreadyExists:
            live = client.get(api_version, kind, name, namespace)
    state = {"live": live}

    def attempt() -> ApplyResult:
        current = state["live"]
        try:
            if _needs_migration(current, field_manager):
                stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                entries = _migrated(current, field_manager, stamp)["metadata"]["managedFields"]
                current = client.patch(api_version, kind, name, [
                    {"op": "test", "path": "/metadata/resourceVersion",
                     "value": current["metadata"]["resourceVersion"]},
                    {"op": "replace", "path": "/metadata/managedFields", "value": entries}],
                    namespace=namespace, patch_type="json")
            shadowed = _shadowed_paths(clean, current, kind, (), "")
            if shadowed:
                current = client.patch(api_version, kind, name, _repair_ops(shadowed, current),
                                       namespace=namespace, patch_type="json")
        except (errors.Conflict, errors.Invalid):
            state["live"] = client.get(api_version, kind, name, namespace)
            raise errors.Conflict("the object changed while being repaired; retrying") from None
        entry = _our_apply_entry(current, field_manager)
        owned = (entry or {}).get("fieldsV1") or {}
        if not shadowed and not _differs(clean, current, kind, ()) and not _owned_but_not_desired(owned, clean):
            return ApplyResult(current, "unchanged")
        return ApplyResult(client.apply(clean, field_manager=field_manager, force=True), "updated")

    return retry_on_conflict(attempt, attempts)


def _pointer_order(pointer: str) -> tuple[str, int]:
    parent, _, index = pointer.rpartition("/")
    return parent, int(index) if index.isdigit() else -1
