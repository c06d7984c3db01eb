"""Namespace finalization, as kube-controller-manager's namespace controller does it.

Reference: pkg/controller/namespace/deletion/namespaced_resources_deleter.go. A namespace being
deleted (deletionTimestamp set, phase Terminating) that still carries the ``kubernetes`` finalizer in
spec.finalizers has every namespaced object in it deleted; while some remain (for example held by
finalizers) the namespace reports NamespaceContentRemaining / NamespaceFinalizersRemaining
conditions and is looked at again; once it is empty the ``kubernetes`` finalizer is removed through
the ``finalize`` subresource and the API server deletes the namespace.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable

from rook_py.envtest.cluster.base import (
    JSON,
    Controller,
    Key,
    LocalAPILike,
    deepcopy,
    is_deleting,
    meta,
    read_only_items,
    set_condition,
)
from rook_py.framework.client import errors

V1 = "v1"
FINALIZER = "kubernetes"


class NamespaceController(Controller):
    name = "namespaces"

    def __init__(self, api: LocalAPILike, *, retry_interval: float = 0.2) -> None:
        super().__init__(api)
        self.retry_interval = retry_interval
        self._lock = threading.Lock()
        self._terminating: set[str] = set()

    def on_event(self, event_type: str, api_version: str, resource: str, obj: JSON) -> Iterable[Key]:
        if api_version == V1 and resource == "namespaces":
            name = meta(obj).get("name") or ""
            with self._lock:
                if event_type != "DELETED" and is_deleting(obj):
                    self._terminating.add(name)
                    return [(V1, "namespaces", "", name)]
                self._terminating.discard(name)
            return ()
        if event_type == "DELETED":
            namespace = meta(obj).get("namespace")
            with self._lock:
                if namespace in self._terminating:
                    # The last object going away is what lets the namespace finalize.
                    return [(V1, "namespaces", "", namespace)]
        return ()

    def resync(self) -> Iterable[Key]:
        items = read_only_items(self.api, V1, "namespaces")
        return [(V1, "namespaces", "", meta(n)["name"]) for n in items if is_deleting(n)]

    def reconcile(self, key: Key) -> float | None:
        name = key[3]
        try:
            ns = self.api.get(V1, "namespaces", name)
        except errors.NotFound:
            return None
        if not is_deleting(ns) or FINALIZER not in ((ns.get("spec") or {}).get("finalizers") or []):
            return None
        remaining, finalizers = self._delete_content(name)
        if remaining:
            self._report(ns, remaining, finalizers)
            return self.retry_interval
        fresh = dict(ns)
        fresh["spec"] = dict(ns.get("spec") or {})
        fresh["spec"]["finalizers"] = [f for f in fresh["spec"].get("finalizers") or [] if f != FINALIZER]
        self.api.update(V1, "namespaces", fresh, subresource="finalize")
        return None

    def _namespaced_resources(self) -> list[tuple[str, str]]:
        return [(r.api_version, r.resource) for r in self.api.resources()
                if r.namespaced and "/" not in r.resource]

    def _delete_content(self, namespace: str) -> tuple[dict[str, int], dict[str, int]]:
        """Delete what is left; return the objects still present per resource, and the finalizers
        holding them (objects without finalizers are gone as soon as they are deleted)."""
        resources = self._namespaced_resources()
        for api_version, resource in resources:
            for item in self._items(api_version, resource, namespace):
                m = meta(item)
                if m.get("deletionTimestamp"):
                    continue
                with contextlib.suppress(errors.NotFound, errors.Conflict):
                    self.api.delete(api_version, resource, m["name"], namespace,
                                    propagation_policy="Background", preconditions={"uid": m.get("uid")})
        remaining: dict[str, int] = {}
        finalizers: dict[str, int] = {}
        for api_version, resource in resources:
            items = self._items(api_version, resource, namespace)
            if items:
                remaining[resource] = len(items)
            for item in items:
                for f in meta(item).get("finalizers") or []:
                    finalizers[f] = finalizers.get(f, 0) + 1
        return remaining, finalizers

    def _items(self, api_version: str, resource: str, namespace: str) -> list[JSON]:
        try:
            items = read_only_items(self.api, api_version, resource, namespace)
        except (errors.NotFound, errors.MethodNotAllowed):
            return []  # e.g. a CRD deleted meanwhile
        return items

    def _report(self, ns: JSON, remaining: dict[str, int], finalizers: dict[str, int]) -> None:
        status = deepcopy(ns.get("status") or {})  # conditions are edited in place
        conditions = status.get("conditions") or []
        content = ", ".join(f"{r} has {n} resource instances" for r, n in sorted(remaining.items()))
        set_condition(conditions, "NamespaceContentRemaining", "True", "SomeResourcesRemain",
                      f"Some resources are remaining: {content}")
        if finalizers:
            held = ", ".join(f"{f} in {n} resource instances" for f, n in sorted(finalizers.items()))
            set_condition(conditions, "NamespaceFinalizersRemaining", "True", "SomeFinalizersRemain",
                          f"Some content in the namespace has finalizers remaining: {held}")
        else:
            set_condition(conditions, "NamespaceFinalizersRemaining", "False", "ContentHasNoFinalizers",
                          "All content-preserving finalizers finished")
        status["conditions"] = conditions
        if status == ns.get("status"):
            return
        fresh = dict(ns)
        fresh["status"] = status
        with contextlib.suppress(errors.Conflict, errors.NotFound):
            self.api.update(V1, "namespaces", fresh, subresource="status")
