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
from rook_py.framework.kube.lists import patch_merge_key
from rook_py.framework.kube.owners import controller_of, controller_reference, owner_scope_error, same_owner

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
    "three_way_merge",
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

_MISSING: Any = object()


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """``object`` is the object as the server has it after the call (the live object when
    ``action`` is ``"unchanged"``)."""

    object: JSON
    action: Literal["created", "updated", "unchanged"]


def _merge_key(kind: str | None, path: Path, desired: list[Any], live: list[Any]) -> str | None:
    """The patch merge key of the list (kube.lists, as kubectl apply merges), if every element is a
    map and every desired element carries the key, uniquely; else None (merged by position)."""
    key = patch_merge_key(kind, path)
    if key is None:
        return None
    if not all(isinstance(e, dict) for e in desired) or not all(isinstance(e, dict) for e in live):
        return None
    values = [e.get(key, _MISSING) for e in desired]
    if _MISSING not in values and len({json.dumps(v, sort_keys=True) for v in values}) == len(values):
        return key
    return None


def _prune(live: Any, last: Any) -> Any:
    """Remove from ``live`` what ``last`` (our previous apply) set; _MISSING if nothing remains.
    Maps are pruned key by key so entries others added to the same map survive."""
    if isinstance(live, dict) and isinstance(last, dict):
        out = dict(live)
        for key, last_value in last.items():
            if key in out:
                pruned = _prune(out[key], last_value)
                if pruned is _MISSING:
                    del out[key]
                else:
                    out[key] = pruned
        return out if out else _MISSING
    return _MISSING


def _merge_lists(live: list[Any], desired: list[Any], last: list[Any] | None, kind: str | None,
                 path: Path) -> list[Any]:
    key = _merge_key(kind, path, desired, live)
    if key is None:
        if len(live) == len(desired) and all(isinstance(e, dict) for e in (*live, *desired)):
            lasts: list[Any] = last if last is not None and len(last) == len(desired) else [None] * len(desired)
            return [_merge(lv, dv, la, kind, path) for lv, dv, la in zip(live, desired, lasts, strict=True)]
        return desired if desired != live else live
    wanted = {json.dumps(e[key], sort_keys=True): e for e in desired}
    previous = {json.dumps(e[key], sort_keys=True): e for e in last or () if isinstance(e, dict) and key in e}
    out: list[Any] = []
    seen: set[str] = set()
    # Live order is kept so a server- or user-chosen order never causes a write on its own;
    # new desired elements are appended in desired order.
    for element in live:
        k = json.dumps(element.get(key, None), sort_keys=True)
        if k in wanted:
            out.append(_merge(element, wanted[k], previous.get(k), kind, path))
            seen.add(k)
        elif k not in previous:
            out.append(element)  # someone else's element
        # else: we applied it before and no longer want it -> dropped
    out.extend(e for k, e in wanted.items() if k not in seen)
    return out


def _merge(live: Any, desired: Any, last: Any, kind: str | None, path: Path) -> Any:
    if isinstance(desired, dict) and isinstance(live, dict):
        return _merge_maps(live, desired, last if isinstance(last, dict) else None, kind, path)
    if isinstance(desired, list) and isinstance(live, list):
        return _merge_lists(live, desired, last if isinstance(last, list) else None, kind, path)
    return live if live == desired else desired


def _merge_maps(live: JSON, desired: JSON, last: JSON | None, kind: str | None, path: Path) -> JSON:
    # Shallow copy: untouched subtrees stay shared with ``live`` and are never mutated.
    out = dict(live)
    for key, want in desired.items():
        have = live.get(key, _MISSING)
        if want is None:
            out.pop(key, None)  # an explicit null deletes, as in a merge patch
        elif have is _MISSING:
            if (want == {} or want == []) and last is not None and last.get(key, _MISSING) == want:
                # We wrote this empty value before and the server dropped it (Go ``omitempty``
                # on built-in types): equivalent, not a difference -- else every reconcile
                # would write and trigger itself again.
                continue
            out[key] = want
        else:
            out[key] = _merge(have, want, last.get(key) if last is not None else None, kind, (*path, key))
    if last is not None:
        for key, last_value in last.items():
            if key not in desired and key in out:
                pruned = _prune(out[key], last_value)
                if pruned is _MISSING:
                    del out[key]
                else:
                    out[key] = pruned
    return out


def three_way_merge(live: JSON, desired: JSON, last_applied: JSON | None) -> JSON:
    """The object to write so that every field in ``desired`` has its desired value, fields we
    applied last time but no longer want are removed, and everything else in ``live``
    (server defaults, other controllers' and users' fields) is kept. Inputs are not mutated;
    the result shares unchanged subtrees with ``live``. ``result == live`` means no write.
    Lists merge as ``kubectl apply`` merges them: by their patch merge key
    (``rook_py.framework.kube.lists``, by the object's kind and the list's path)."""
    kind = desired.get("kind") or live.get("kind")
    return _merge_maps(live, desired, last_applied, kind if isinstance(kind, str) else None, ())


def _clean_desired(desired: JSON) -> JSON:
    clean = copy.deepcopy(desired)
    # status is written through its subresource; a PUT on the main resource ignores it, so
    # comparing it would make every reconcile write.
    clean.pop("status", None)
    meta = clean.setdefault("metadata", {})
    for key in _SERVER_METADATA:
        meta.pop(key, None)
    annotations = meta.get("annotations")
    if isinstance(annotations, dict):
        annotations.pop(LAST_APPLIED_ANNOTATION, None)
    return clean


def _serialize(obj: JSON) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def _last_applied(live: JSON) -> JSON | None:
    raw = ((live.get("metadata") or {}).get("annotations") or {}).get(LAST_APPLIED_ANNOTATION)
    if not raw:
        return None
    try:
        parsed = json.loads(raw)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _with_annotation(obj: JSON, value: str) -> JSON:
    out = dict(obj)
    meta = dict(out.get("metadata") or {})
    annotations = dict(meta.get("annotations") or {})
    annotations[LAST_APPLIED_ANNOTATION] = value
    meta["annotations"] = annotations
    out["metadata"] = meta
    return out


def apply(client: ObjectClient, desired: JSON, *, reader: ObjectReader | None = None,
          attempts: int = 5) -> ApplyResult:
    """Create ``desired`` when absent; otherwise write only if a field we own differs.

    Ownership is "what ``desired`` sets now, plus what we set last time" (recorded, compact and
    key-sorted, in the ``rook.io/last-applied`` annotation, like kubectl's
    ``last-applied-configuration``): a three-way merge (``three_way_merge``) reverts manual
    edits of owned fields, removes fields dropped from ``desired``, and leaves every other
    field alone, so server defaults never cause a write and a no-op reconcile makes zero
    write calls. Lists of maps with known merge keys are compared element-wise.

    Writes are PUTs carrying the live resourceVersion; a Conflict re-reads from the server
    (not ``reader``, which may lag) and retries, at most ``attempts`` times.

    Values are compared exactly: a quantity written as ``"1Gi"`` that the server stored as
    ``"1Gi"`` matches, but ``"1024Mi"`` vs ``"1Gi"`` counts as a difference (the real API
    server canonicalises quantities, so write them in canonical form; the envtest emulator
    does not normalise). An empty list or map that we applied before and the server dropped
    (``omitempty``) counts as equal. ``status`` in ``desired`` is ignored (use ``update_status``).
    Secret ``stringData`` never reads back, so use ``data``.
    """
    api_version, kind, name, namespace = _identity(desired)
    clean = _clean_desired(desired)
    annotation = _serialize(clean)
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
            return ApplyResult(client.create(_with_annotation(clean, annotation)), "created")
        except errors.AlreadyExists:
            live = client.get(api_version, kind, name, namespace)  # the reader lagged
    state = {"live": live}

    def attempt() -> ApplyResult:
        current = state["live"]
        merged = _with_annotation(three_way_merge(current, clean, _last_applied(current)), annotation)
        if merged == current:
            return ApplyResult(current, "unchanged")
        try:
            return ApplyResult(client.update(merged), "updated")
        except errors.Conflict:
            state["live"] = client.get(api_version, kind, name, namespace)
            raise

    return retry_on_conflict(attempt, attempts)
