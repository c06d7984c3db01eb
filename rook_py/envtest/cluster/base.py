"""Shared pieces of the simulated cluster: the LocalAPI protocol it drives, the controller shape,
a small delaying de-duplicating queue, and object helpers.

The simulated cluster stands in for kube-controller-manager, kube-scheduler and the kubelets (as
KWOK does): it never runs a container, it only writes the objects and statuses those components
would write. Every write goes through the API (LocalAPI), never into the store directly, so the
emulator's validation, resourceVersions and watch events apply to the simulator's writes exactly
as they do to a real controller's.
"""

from __future__ import annotations

import builtins
import copy
import hashlib
import heapq
import inspect
import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from rook_py.framework.kube.times import now as now_rfc3339

JSON = dict[str, Any]

# (api_version, resource, namespace or "", name): what a controller queues. Plain tuples hash and
# compare cheaply, and the queue de-duplicates on them.
Key = tuple[str, str, str, str]

Subscriber = Callable[[str, str, str, JSON], None]


class LocalAPILike(Protocol):
    """The in-process API of docs/architecture.md (``APIServer.local``); raises ApiError subclasses."""

    def get(self, api_version: str, resource: str, name: str, namespace: str | None = None) -> JSON: ...

    def list(self, api_version: str, resource: str, namespace: str | None = None,
             label_selector: str | None = None, field_selector: str | None = None) -> JSON: ...

    def create(self, api_version: str, resource: str, obj: JSON, namespace: str | None = None) -> JSON: ...

    def update(self, api_version: str, resource: str, obj: JSON, subresource: str | None = None) -> JSON: ...

    def patch(self, api_version: str, resource: str, name: str, patch: Any, patch_type: str = "merge",
              namespace: str | None = None, subresource: str | None = None) -> JSON: ...

    def delete(self, api_version: str, resource: str, name: str, namespace: str | None = None,
               propagation_policy: str | None = None, preconditions: JSON | None = None) -> Any: ...

    def resources(self) -> builtins.list[Any]: ...

    def subscribe(self, callback: Subscriber) -> Callable[[], None]: ...


class _FieldManagerAPI:
    """A LocalAPI whose writes carry a field manager, so managedFields name the component that
    would have written them on a cluster (kube-controller-manager, kube-scheduler, kubelet)."""

    def __init__(self, api: LocalAPILike, manager: str) -> None:
        # Any: the writes pass field_manager=, which the LocalAPILike protocol leaves out (the
        # simulator also runs against APIs without it; with_field_manager checks first).
        self._api: Any = api
        self._typed = api
        self._manager = manager

    def get(self, api_version: str, resource: str, name: str, namespace: str | None = None) -> JSON:
        return self._typed.get(api_version, resource, name, namespace)

    def list(self, api_version: str, resource: str, namespace: str | None = None,
             label_selector: str | None = None, field_selector: str | None = None) -> JSON:
        return self._typed.list(api_version, resource, namespace, label_selector, field_selector)

    def list_view(self, api_version: str, resource: str, namespace: str | None = None,
                  label_selector: str | None = None, field_selector: str | None = None) -> builtins.list[JSON]:
        return read_only_items(self._typed, api_version, resource, namespace, label_selector, field_selector)

    def create(self, api_version: str, resource: str, obj: JSON, namespace: str | None = None) -> JSON:
        result: JSON = self._api.create(api_version, resource, obj, namespace, field_manager=self._manager)
        return result

    def update(self, api_version: str, resource: str, obj: JSON, subresource: str | None = None) -> JSON:
        result: JSON = self._api.update(api_version, resource, obj, subresource, field_manager=self._manager)
        return result

    def patch(self, api_version: str, resource: str, name: str, patch: Any, patch_type: str = "merge",
              namespace: str | None = None, subresource: str | None = None) -> JSON:
        result: JSON = self._api.patch(api_version, resource, name, patch, patch_type, namespace, subresource,
                                       field_manager=self._manager)
        return result

    def delete(self, api_version: str, resource: str, name: str, namespace: str | None = None,
               propagation_policy: str | None = None, preconditions: JSON | None = None) -> Any:
        return self._typed.delete(api_version, resource, name, namespace, propagation_policy, preconditions)

    def resources(self) -> builtins.list[Any]:
        return self._typed.resources()

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        return self._typed.subscribe(callback)


def read_only_items(api: LocalAPILike, api_version: str, resource: str, namespace: str | None = None,
                    label_selector: str | None = None, field_selector: str | None = None) -> builtins.list[JSON]:
    """The items of a list, shared with the store when the API offers ``list_view`` (the
    emulator's LocalAPI does), else a listed private copy.

    Invariant: callers only read the items. A controller that writes an object copies it first
    (``deepcopy``) or re-reads it with ``get``; listing a whole kind per event or per resync
    then costs a scan, not a JSON round trip of every object, which is what lets the simulated
    cluster keep up with thousands of objects.
    """
    view = getattr(api, "list_view", None)
    if callable(view):
        items: builtins.list[JSON] = view(api_version, resource, namespace, label_selector, field_selector)
        return items
    listed: builtins.list[JSON] = api.list(api_version, resource, namespace, label_selector,
                                           field_selector).get("items") or []
    return listed


def with_field_manager(api: LocalAPILike, manager: str) -> LocalAPILike:
    """``api`` with ``manager`` on every write, when the API records field managers (the emulator's
    LocalAPI takes ``field_manager=``); otherwise ``api`` unchanged."""
    try:
        accepts = "field_manager" in inspect.signature(api.create).parameters
    except (TypeError, ValueError):
        accepts = False
    return _FieldManagerAPI(api, manager) if accepts else api


class Controller:
    """One reconciler of the simulated cluster.

    ``on_event`` runs on the API's dispatcher thread and must stay cheap: it maps an event to keys
    (an occasional read is allowed, writes are not); ``reconcile`` runs on the cluster's worker thread, reads fresh state through the API,
    writes, and returns a delay after which to look again (or None). Reconciles are level-based:
    each one recomputes from current state, so dropped or repeated keys are harmless.
    """

    name = "controller"
    field_manager = "kube-controller-manager"

    def __init__(self, api: LocalAPILike) -> None:
        self.api = with_field_manager(api, self.field_manager)

    def on_event(self, event_type: str, api_version: str, resource: str, obj: JSON) -> Iterable[Key]:
        return ()

    def resync(self) -> Iterable[Key]:
        return ()

    def reconcile(self, key: Key) -> float | None:
        return None


class DelayingQueue:
    """A de-duplicating queue of keys with per-key earliest-processing times.

    Like client-go's delaying workqueue, but single consumer: a key that is already waiting keeps
    the earlier of its two due times, so a burst of events for one object costs one reconcile.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._due: dict[Any, float] = {}
        self._heap: list[tuple[float, int, Any]] = []
        self._seq = 0
        self._closed = False

    def add(self, item: Any, delay: float = 0.0) -> None:
        due = time.monotonic() + max(0.0, delay)
        with self._cond:
            if self._closed:
                return
            current = self._due.get(item)
            if current is not None and current <= due:
                return
            self._due[item] = due
            self._seq += 1
            heapq.heappush(self._heap, (due, self._seq, item))
            self._cond.notify()

    def get(self, timeout: float | None = None) -> Any | None:
        """The next due item, or None when closed or ``timeout`` passes first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._closed:
                now = time.monotonic()
                while self._heap and self._due.get(self._heap[0][2]) != self._heap[0][0]:
                    heapq.heappop(self._heap)  # superseded by an earlier due time for the same item
                if self._heap and self._heap[0][0] <= now:
                    _, _, item = heapq.heappop(self._heap)
                    del self._due[item]
                    return item
                wait = self._heap[0][0] - now if self._heap else None
                if deadline is not None:
                    left = deadline - now
                    if left <= 0:
                        return None
                    wait = left if wait is None else min(wait, left)
                self._cond.wait(wait)
            return None

    def pending(self) -> int:
        with self._cond:
            return len(self._due)

    def due_now(self) -> int:
        now = time.monotonic()
        with self._cond:
            return sum(1 for due in self._due.values() if due <= now)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


# --- object helpers -------------------------------------------------------------------------------

def meta(obj: Mapping[str, Any]) -> JSON:
    m: JSON = obj.get("metadata") or {}
    return m


def key_of(api_version: str, resource: str, obj: Mapping[str, Any]) -> Key:
    m = meta(obj)
    return (api_version, resource, m.get("namespace") or "", m.get("name") or "")


def ns_arg(key: Key) -> str | None:
    return key[2] or None


def is_deleting(obj: Mapping[str, Any]) -> bool:
    return bool(meta(obj).get("deletionTimestamp"))


def controller_ref(obj: Mapping[str, Any]) -> JSON | None:
    """The ownerReference with ``controller: true`` (at most one exists, the API enforces it)."""
    for ref in meta(obj).get("ownerReferences") or []:
        if ref.get("controller"):
            result: JSON = ref
            return result
    return None


def is_controlled_by(obj: Mapping[str, Any], owner: Mapping[str, Any]) -> bool:
    ref = controller_ref(obj)
    return ref is not None and ref.get("uid") == meta(owner).get("uid")


def owner_reference(owner: Mapping[str, Any], *, controller: bool = True) -> JSON:
    """A controller ownerReference that blocks the owner's foreground deletion, as the workload
    controllers set it (k8s.io/apimachinery metav1.NewControllerRef)."""
    m = meta(owner)
    return {
        "apiVersion": owner.get("apiVersion"),
        "kind": owner.get("kind"),
        "name": m.get("name"),
        "uid": m.get("uid"),
        "controller": controller,
        "blockOwnerDeletion": True,
    }


def deepcopy(obj: JSON) -> JSON:
    return copy.deepcopy(obj)


def spec_hash(value: Any, collision_count: int = 0) -> str:
    """A short, label-safe, deterministic hash of a pod template.

    Kubernetes hashes the template with FNV-32a and renders it with rand.SafeEncodeString
    (pkg/controller/controller_utils.go ComputeHash); any stable digest serves the same purpose --
    equal templates give equal hashes, different templates (almost surely) different ones.
    """
    digest = hashlib.sha256(json.dumps(drop_nulls(value), sort_keys=True, separators=(",", ":")).encode())
    digest.update(str(collision_count).encode())
    return _safe_encode(int.from_bytes(digest.digest()[:8], "big"), 10)


def drop_nulls(value: Any) -> Any:
    """``value`` without null map entries: Go decodes ``"creationTimestamp": null`` (which kubectl
    sends back in pod templates) to the zero value, so for equality it is the same as absent."""
    if isinstance(value, dict):
        return {k: drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [drop_nulls(v) for v in value]
    return value


# rand.SafeEncodeString's alphabet: no vowels (no accidental words) and no 0/1/3 lookalikes.
_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def _safe_encode(number: int, length: int) -> str:
    chars = []
    for _ in range(length):
        number, rem = divmod(number, len(_ALPHABET))
        chars.append(_ALPHABET[rem])
    return "".join(chars)


def set_condition(conditions: list[JSON], type_: str, status: str, reason: str, message: str,
                  *, with_update_time: bool = False) -> None:
    """Insert or update a condition in place; lastTransitionTime moves only when status changes."""
    now = now_rfc3339()
    for cond in conditions:
        if cond.get("type") == type_:
            if cond.get("status") != status:
                cond["lastTransitionTime"] = now
                if with_update_time:
                    cond["lastUpdateTime"] = now
            elif with_update_time and (cond.get("reason") != reason or cond.get("message") != message):
                cond["lastUpdateTime"] = now
            cond.update({"status": status, "reason": reason, "message": message})
            return
    cond_new: JSON = {"type": type_, "status": status, "reason": reason, "message": message,
                      "lastTransitionTime": now}
    if with_update_time:
        cond_new["lastUpdateTime"] = now
    conditions.append(cond_new)


def condition_true(obj: Mapping[str, Any], type_: str) -> bool:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_:
            return bool(cond.get("status") == "True")
    return False


def pod_ready(pod: Mapping[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") == "Running" and condition_true(pod, "Ready")


def pod_active(pod: Mapping[str, Any]) -> bool:
    """Counts towards a controller's replicas: not being deleted, not Succeeded/Failed."""
    phase = (pod.get("status") or {}).get("phase")
    return not is_deleting(pod) and phase not in ("Succeeded", "Failed")


def int_or_percent(value: Any, total: int, *, round_up: bool) -> int:
    """intstr.GetScaledValueFromIntOrPercent: ``"25%"`` of ``total``, rounded as asked; ints pass."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    text = str(value)
    if text.endswith("%"):
        pct = int(text[:-1])
        scaled = pct * total
        return -(-scaled // 100) if round_up else scaled // 100
    return int(text)
