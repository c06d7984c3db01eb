"""Event handlers: turn an informer event into zero or more workqueue Requests.

Mirrors controller-runtime pkg/handler (enqueue.go, enqueue_owner.go, enqueue_mapped.go). A
handler only computes keys and adds them to the queue; the queue deduplicates, so enqueueing a
key twice for one event (old and new owner being the same) costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

from rook_py.framework.controller.reconcile import Request

JSON = dict[str, Any]
MapFunc = Callable[[JSON], Iterable[Request]]


class Queue(Protocol):
    """The part of the workqueue a handler uses."""

    def add(self, item: Any) -> None: ...


class EventHandler:
    """Base handler; subclasses override the event kinds they map. Objects are read-only."""

    def create(self, obj: JSON, queue: Queue) -> None:
        pass

    def update(self, old: JSON, new: JSON, queue: Queue) -> None:
        pass

    def delete(self, obj: JSON, queue: Queue) -> None:
        pass

    def generic(self, obj: JSON, queue: Queue) -> None:
        pass


def request_for(obj: JSON) -> Request | None:
    """The Request naming ``obj`` itself, or ``None`` for an object without a name."""
    meta = obj.get("metadata") or {}
    name = meta.get("name")
    if not name:
        return None
    return Request(meta.get("namespace") or None, name)


class EnqueueRequestForObject(EventHandler):
    """Enqueues the object's own key for every event (the ``for_`` kind's handler)."""

    def _add(self, obj: JSON, queue: Queue) -> None:
        req = request_for(obj)
        if req is not None:
            queue.add(req)

    def create(self, obj: JSON, queue: Queue) -> None:
        self._add(obj, queue)

    def update(self, old: JSON, new: JSON, queue: Queue) -> None:
        # Old and new share namespace/name; one key suffices, as in enqueue.go.
        self._add(new, queue)

    def delete(self, obj: JSON, queue: Queue) -> None:
        self._add(obj, queue)

    def generic(self, obj: JSON, queue: Queue) -> None:
        self._add(obj, queue)


def group_of(api_version: str) -> str:
    """The API group of an apiVersion ("apps/v1" -> "apps", "v1" -> "")."""
    return api_version.rpartition("/")[0]


class EnqueueRequestForOwner(EventHandler):
    """Enqueues the owner(s) of type (group, kind) found in the object's ownerReferences.

    Owners are matched on group and kind, not version: an owner reference written with
    ``v1beta1`` still names the same object served at ``v1`` (enqueue_owner.go does the same).
    With ``only_controller`` (the ``owns`` default) only the reference with ``controller: true``
    counts. On update both the old and the new owners are enqueued, so an object that moves from
    one owner to another wakes both. An owner reference never crosses namespaces: the owner
    lives in the object's namespace, or is cluster-scoped (``owner_namespaced=False``).
    """

    def __init__(self, owner_api_version: str, owner_kind: str, *, only_controller: bool = True,
                 owner_namespaced: bool = True) -> None:
        self._group = group_of(owner_api_version)
        self._kind = owner_kind
        self._only_controller = only_controller
        self._owner_namespaced = owner_namespaced

    def owners(self, obj: JSON) -> list[Request]:
        meta = obj.get("metadata") or {}
        namespace = (meta.get("namespace") or None) if self._owner_namespaced else None
        found: list[Request] = []
        for ref in meta.get("ownerReferences") or ():
            if ref.get("kind") != self._kind or group_of(ref.get("apiVersion", "")) != self._group:
                continue
            if self._only_controller and not ref.get("controller"):
                continue
            if ref.get("name"):
                found.append(Request(namespace, ref["name"]))
        return found

    def _add(self, obj: JSON, queue: Queue) -> None:
        for req in self.owners(obj):
            queue.add(req)

    def create(self, obj: JSON, queue: Queue) -> None:
        self._add(obj, queue)

    def update(self, old: JSON, new: JSON, queue: Queue) -> None:
        for req in dict.fromkeys(self.owners(old) + self.owners(new)):
            queue.add(req)

    def delete(self, obj: JSON, queue: Queue) -> None:
        self._add(obj, queue)

    def generic(self, obj: JSON, queue: Queue) -> None:
        self._add(obj, queue)


class EnqueueRequestsFromMapFunc(EventHandler):
    """Enqueues whatever ``mapper(obj)`` returns; on update, for the old and the new object.

    The mapper runs on the informer's handler thread: keep it cheap (read the cache, not the API
    server) and never mutate ``obj``.
    """

    def __init__(self, mapper: MapFunc) -> None:
        self._mapper = mapper

    def _add(self, obj: JSON, queue: Queue) -> None:
        for req in self._mapper(obj):
            queue.add(req)

    def create(self, obj: JSON, queue: Queue) -> None:
        self._add(obj, queue)

    def update(self, old: JSON, new: JSON, queue: Queue) -> None:
        for req in dict.fromkeys([*self._mapper(old), *self._mapper(new)]):
            queue.add(req)

    def delete(self, obj: JSON, queue: Queue) -> None:
        self._add(obj, queue)

    def generic(self, obj: JSON, queue: Queue) -> None:
        self._add(obj, queue)
