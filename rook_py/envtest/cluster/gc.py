"""Garbage collection by ownerReferences, as kube-controller-manager's garbage collector does it.

Reference: pkg/controller/garbagecollector/garbagecollector.go (attemptToDeleteItem,
processDeletingDependentsItem, orphanDependents) and graph_builder.go in kubernetes/kubernetes.

An in-memory graph (uid -> object identity, owner uid -> dependent uids) is fed by every committed
event, so finding an owner's dependents never scans the store. The graph only says *where to look*:
before deleting anything the collector reads the live owners by name and compares uids, exactly as
upstream verifies absence against the API rather than its own cache.

- Background: a dependent whose owners are all absent is deleted. If some owners are still there,
  only the references to absent owners are removed.
- Foreground: an owner being deleted with the ``foregroundDeletion`` finalizer gets its dependents
  deleted (with Foreground themselves when they have dependents of their own); once no dependent
  with ``blockOwnerDeletion: true`` remains, the finalizer is removed and the API deletes the owner.
- Orphan: an owner being deleted with the ``orphan`` finalizer has its references stripped from
  every dependent, then the finalizer is removed.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable
from dataclasses import dataclass

from rook_py.envtest.cluster.base import (
    JSON,
    Controller,
    Key,
    LocalAPILike,
    is_deleting,
    key_of,
    meta,
    ns_arg,
    read_only_items,
)
from rook_py.framework.client import errors

FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"


@dataclass
class _Node:
    key: Key
    owners: tuple[JSON, ...]
    deleting: bool
    finalizers: tuple[str, ...]


class GarbageCollector(Controller):
    name = "garbage-collector"

    def __init__(self, api: LocalAPILike) -> None:
        super().__init__(api)
        self._lock = threading.Lock()
        self._nodes: dict[str, _Node] = {}
        self._dependents: dict[str, set[str]] = {}
        self._by_kind: dict[tuple[str, str], tuple[str, bool]] = {}

    # graph ---------------------------------------------------------------------------------------
    def on_event(self, event_type: str, api_version: str, resource: str, obj: JSON) -> Iterable[Key]:
        m = meta(obj)
        uid = m.get("uid")
        if not uid:
            return ()
        key = key_of(api_version, resource, obj)
        keys: list[Key] = []
        with self._lock:
            old = self._nodes.get(uid)
            if event_type == "DELETED":
                self._nodes.pop(uid, None)
                self._unlink(uid, old)
                # Dependents may now be orphaned; owners waiting on this one may now be unblocked.
                keys.extend(self._nodes[d].key for d in self._dependents.get(uid, ()) if d in self._nodes)
                keys.extend(self._nodes[o["uid"]].key for o in (old.owners if old else ())
                            if o.get("uid") in self._nodes)
                return keys
            node = _Node(key, tuple(m.get("ownerReferences") or ()), bool(m.get("deletionTimestamp")),
                         tuple(m.get("finalizers") or ()))
            self._unlink(uid, old)
            self._nodes[uid] = node
            for ref in node.owners:
                self._dependents.setdefault(ref.get("uid", ""), set()).add(uid)
            if node.deleting and (FOREGROUND in node.finalizers or ORPHAN in node.finalizers):
                keys.append(key)
            if any(ref.get("uid") not in self._nodes for ref in node.owners):
                keys.append(key)  # an owner we have not seen (or that is gone): verify against the API
        return keys

    def _unlink(self, uid: str, node: _Node | None) -> None:
        if node is None:
            return
        for ref in node.owners:
            deps = self._dependents.get(ref.get("uid", ""))
            if deps is not None:
                deps.discard(uid)
                if not deps:
                    self._dependents.pop(ref.get("uid", ""), None)

    def prime(self) -> Iterable[Key]:
        """List every served resource once to build the graph (events keep it current after)."""
        keys: list[Key] = []
        for served in self.api.resources():
            if "list" not in (getattr(served, "verbs", None) or ("list",)):
                continue
            try:
                items = read_only_items(self.api, served.api_version, served.resource)
            except errors.ApiError:
                continue
            for item in items:
                if "apiVersion" not in item:  # the view is shared with the store: never write into it
                    item = {**item, "apiVersion": served.api_version}
                keys.extend(self.on_event("ADDED", served.api_version, served.resource, item))
        return keys

    def resync(self) -> Iterable[Key]:
        with self._lock:
            return [n.key for n in self._nodes.values()
                    if (n.deleting and (FOREGROUND in n.finalizers or ORPHAN in n.finalizers))
                    or any(ref.get("uid") not in self._nodes for ref in n.owners)]

    def dependents_of(self, uid: str) -> list[Key]:
        with self._lock:
            return [self._nodes[d].key for d in self._dependents.get(uid, ()) if d in self._nodes]

    # API lookups ---------------------------------------------------------------------------------
    def _resource_for(self, api_version: str, kind: str) -> tuple[str, bool] | None:
        found = self._by_kind.get((api_version, kind))
        if found is None:
            self._by_kind = {(r.api_version, r.kind): (r.resource, bool(r.namespaced))
                             for r in self.api.resources() if "/" not in r.resource}
            found = self._by_kind.get((api_version, kind))
        return found

    def _owner_state(self, dependent_ns: str, ref: JSON) -> str:
        """"absent", "waiting" (being deleted in foreground) or "solid"."""
        resolved = self._resource_for(ref.get("apiVersion", ""), ref.get("kind", ""))
        if resolved is None:
            return "solid"  # unknown kind: never delete on a guess (upstream logs and retries)
        resource, namespaced = resolved
        if namespaced and not dependent_ns:
            return "absent"  # a cluster-scoped dependent cannot have a namespaced owner
        try:
            owner = self.api.get(ref["apiVersion"], resource, ref.get("name", ""),
                                 dependent_ns if namespaced else None)
        except errors.NotFound:
            return "absent"
        if meta(owner).get("uid") != ref.get("uid"):
            return "absent"
        if is_deleting(owner) and FOREGROUND in (meta(owner).get("finalizers") or []):
            return "waiting"
        return "solid"

    # reconcile -----------------------------------------------------------------------------------
    def reconcile(self, key: Key) -> float | None:
        api_version, resource, _namespace, name = key
        try:
            obj = self.api.get(api_version, resource, name, ns_arg(key))
        except errors.NotFound:
            return None
        finalizers = meta(obj).get("finalizers") or []
        if is_deleting(obj) and ORPHAN in finalizers:
            return self._orphan_dependents(key, obj)
        if is_deleting(obj) and FOREGROUND in finalizers:
            retry = self._delete_dependents(key, obj)
            if retry is not None:
                return retry
        if meta(obj).get("ownerReferences"):
            self._attempt_to_delete(key, obj)
        return None

    def _attempt_to_delete(self, key: Key, obj: JSON) -> None:
        if is_deleting(obj):
            return
        refs = meta(obj).get("ownerReferences") or []
        states = {ref.get("uid"): self._owner_state(key[2], ref) for ref in refs}
        solid = [r for r in refs if states[r.get("uid")] == "solid"]
        stale = {uid for uid, state in states.items() if state != "solid"}
        if solid:
            if stale:
                remaining = [r for r in refs if r.get("uid") not in stale]
                self.api.patch(key[0], key[1], key[3],
                               {"metadata": {"ownerReferences": remaining,
                                             "resourceVersion": meta(obj).get("resourceVersion")}},
                               namespace=ns_arg(key))
            return
        waiting = any(state == "waiting" for state in states.values())
        uid = meta(obj).get("uid", "")
        policy = "Foreground" if waiting and self.dependents_of(uid) else "Background"
        with contextlib.suppress(errors.NotFound, errors.Conflict):
            self.api.delete(key[0], key[1], key[3], ns_arg(key), propagation_policy=policy,
                            preconditions={"uid": uid})

    def _delete_dependents(self, key: Key, owner: JSON) -> float | None:
        uid = meta(owner).get("uid", "")
        blocking = 0
        for dep_key in self.dependents_of(uid):
            try:
                dep = self.api.get(dep_key[0], dep_key[1], dep_key[3], ns_arg(dep_key))
            except errors.NotFound:
                continue
            ref = next((r for r in meta(dep).get("ownerReferences") or [] if r.get("uid") == uid), None)
            if ref is None:
                continue
            if ref.get("blockOwnerDeletion"):
                blocking += 1
            if not is_deleting(dep):
                self._attempt_to_delete(dep_key, dep)
        if blocking:
            return 0.5  # DELETED events of the dependents requeue sooner; this is the safety net
        self._remove_finalizer(key, FOREGROUND)
        return None

    def _orphan_dependents(self, key: Key, owner: JSON) -> float | None:
        uid = meta(owner).get("uid", "")
        for dep_key in self.dependents_of(uid):
            try:
                dep = self.api.get(dep_key[0], dep_key[1], dep_key[3], ns_arg(dep_key))
            except errors.NotFound:
                continue
            refs = meta(dep).get("ownerReferences") or []
            remaining = [r for r in refs if r.get("uid") != uid]
            if len(remaining) != len(refs):
                self.api.patch(dep_key[0], dep_key[1], dep_key[3],
                               {"metadata": {"ownerReferences": remaining or None,
                                             "resourceVersion": meta(dep).get("resourceVersion")}},
                               namespace=ns_arg(dep_key))
        self._remove_finalizer(key, ORPHAN)
        return None

    def _remove_finalizer(self, key: Key, finalizer: str) -> None:
        """Read-modify-write guarded by resourceVersion; a Conflict is retried by the caller's requeue."""
        try:
            obj = self.api.get(key[0], key[1], key[3], ns_arg(key))
        except errors.NotFound:
            return
        finalizers = meta(obj).get("finalizers") or []
        if finalizer not in finalizers:
            return
        self.api.patch(key[0], key[1], key[3],
                       {"metadata": {"finalizers": [f for f in finalizers if f != finalizer] or None,
                                     "resourceVersion": meta(obj).get("resourceVersion")}},
                       namespace=ns_arg(key))
