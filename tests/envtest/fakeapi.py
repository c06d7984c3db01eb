"""A small in-memory LocalAPI for the simulated cluster's unit tests.

It keeps the semantics the controllers depend on (resourceVersion preconditions, status and
finalize subresources, generation, finalizers and deletionTimestamp, propagation finalizers,
generateName, ordered event delivery on one dispatcher thread) and nothing else. The same tests
also run against the real emulator's LocalAPI when it is importable.
"""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import queue
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rook_py.framework.client import errors

JSON = dict[str, Any]


@dataclass(frozen=True)
class Served:
    api_version: str
    resource: str
    kind: str
    namespaced: bool
    status: bool = True
    verbs: tuple[str, ...] = field(default=("get", "list", "watch", "create", "update", "patch", "delete"))

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def version(self) -> str:
        return self.api_version.rpartition("/")[2]


RESOURCES = [
    Served("v1", "namespaces", "Namespace", False),
    Served("v1", "nodes", "Node", False),
    Served("v1", "pods", "Pod", True),
    Served("v1", "configmaps", "ConfigMap", True, status=False),
    Served("v1", "secrets", "Secret", True, status=False),
    Served("v1", "services", "Service", True),
    Served("v1", "endpoints", "Endpoints", True, status=False),
    Served("v1", "persistentvolumeclaims", "PersistentVolumeClaim", True),
    Served("v1", "persistentvolumes", "PersistentVolume", False),
    Served("apps/v1", "deployments", "Deployment", True),
    Served("apps/v1", "replicasets", "ReplicaSet", True),
    Served("apps/v1", "statefulsets", "StatefulSet", True),
    Served("apps/v1", "daemonsets", "DaemonSet", True),
]


def merge_patch(doc: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(doc) if isinstance(doc, dict) else {}
    for k, v in patch.items():
        if v is None:
            result.pop(k, None)
        else:
            result[k] = merge_patch(result.get(k), v)
    return result


def _matches(labels: dict[str, str], selector: str | None) -> bool:
    if not selector:
        return True
    for part in selector.split(","):
        k, _, v = part.partition("=")
        if labels.get(k) != v.lstrip("="):
            return False
    return True


class FakeLocalAPI:
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._store: dict[tuple[str, str, str, str], JSON] = {}
        self._rv = itertools.count(100)
        self._subs: list[Callable[[str, str, str, JSON], None]] = []
        self._events: queue.Queue[tuple[str, str, str, JSON] | None] = queue.Queue()
        self.writes: list[tuple[str, str, str]] = []  # (verb, resource, name)
        self._dispatcher = threading.Thread(target=self._dispatch, daemon=True)
        self._dispatcher.start()

    # plumbing ----------------------------------------------------------------------------------
    def close(self) -> None:
        self._events.put(None)
        self._dispatcher.join(2)

    def _dispatch(self) -> None:
        while (item := self._events.get()) is not None:
            for cb in list(self._subs):
                cb(*item)

    def subscribe(self, callback: Callable[[str, str, str, JSON], None]) -> Callable[[], None]:
        self._subs.append(callback)
        return lambda: self._subs.remove(callback) if callback in self._subs else None

    def resources(self) -> list[Served]:
        return list(RESOURCES)

    def _served(self, api_version: str, resource: str) -> Served:
        for s in RESOURCES:
            if s.api_version == api_version and s.resource == resource:
                return s
        raise errors.NotFound(f"the server could not find the requested resource ({resource})")

    def _emit(self, event: str, served: Served, obj: JSON) -> None:
        self._events.put((event, served.api_version, served.resource, copy.deepcopy(obj)))

    def _key(self, served: Served, name: str, namespace: str | None) -> tuple[str, str, str, str]:
        return (served.api_version, served.resource, (namespace or "") if served.namespaced else "", name)

    # verbs -------------------------------------------------------------------------------------
    def get(self, api_version: str, resource: str, name: str, namespace: str | None = None) -> JSON:
        served = self._served(api_version, resource)
        with self._lock:
            obj = self._store.get(self._key(served, name, namespace))
            if obj is None:
                raise errors.not_found(resource, served.group, name)
            return copy.deepcopy(obj)

    def list(self, api_version: str, resource: str, namespace: str | None = None,
             label_selector: str | None = None, field_selector: str | None = None) -> JSON:
        served = self._served(api_version, resource)
        with self._lock:
            items = [copy.deepcopy(o) for k, o in sorted(self._store.items())
                     if k[:2] == (api_version, resource) and (namespace is None or k[2] == namespace)
                     and _matches(o["metadata"].get("labels") or {}, label_selector)]
            if field_selector:
                f, _, v = field_selector.partition("=")
                if f == "metadata.name":
                    items = [o for o in items if o["metadata"]["name"] == v]
                elif f == "spec.nodeName":
                    items = [o for o in items if (o.get("spec") or {}).get("nodeName", "") == v]
            return {"kind": served.kind + "List", "apiVersion": api_version, "items": items,
                    "metadata": {"resourceVersion": str(next(self._rv))}}

    def create(self, api_version: str, resource: str, obj: JSON, namespace: str | None = None) -> JSON:
        served = self._served(api_version, resource)
        obj = copy.deepcopy(obj)
        m = obj.setdefault("metadata", {})
        if not m.get("name") and m.get("generateName"):
            m["name"] = m["generateName"] + uuid.uuid4().hex[:5]
        namespace = namespace or m.get("namespace")
        if served.namespaced:
            m["namespace"] = namespace or "default"
        with self._lock:
            key = self._key(served, m["name"], m.get("namespace"))
            if key in self._store:
                raise errors.already_exists(resource, served.group, m["name"])
            if served.namespaced:
                ns = self._store.get(("v1", "namespaces", "", m["namespace"]))
                if ns is None:
                    raise errors.not_found("namespaces", "", m["namespace"])
                if ns["metadata"].get("deletionTimestamp"):
                    raise errors.Forbidden(f"namespace {m['namespace']} is being terminated")
            obj["apiVersion"], obj["kind"] = api_version, served.kind
            m.update(uid=str(uuid.uuid4()), resourceVersion=str(next(self._rv)), generation=1,
                     creationTimestamp=dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
            if resource == "namespaces":
                obj.setdefault("spec", {})["finalizers"] = ["kubernetes"]
                obj["status"] = {"phase": "Active"}
            self._store[key] = obj
            self.writes.append(("create", resource, m["name"]))
            self._emit("ADDED", served, obj)
            return copy.deepcopy(obj)

    def update(self, api_version: str, resource: str, obj: JSON, subresource: str | None = None) -> JSON:
        served = self._served(api_version, resource)
        m = obj["metadata"]
        with self._lock:
            key = self._key(served, m["name"], m.get("namespace"))
            cur = self._store.get(key)
            if cur is None:
                raise errors.not_found(resource, served.group, m["name"])
            if m.get("resourceVersion") and m["resourceVersion"] != cur["metadata"]["resourceVersion"]:
                raise errors.conflict(resource, served.group, m["name"], errors.STALE_OBJECT)
            new = copy.deepcopy(cur)
            if subresource == "status":
                new["status"] = copy.deepcopy(obj.get("status"))
                if resource == "deployments":  # deploymentStatusStrategy keeps annotation changes
                    new["metadata"]["annotations"] = copy.deepcopy(m.get("annotations"))
            elif subresource == "finalize":
                new.setdefault("spec", {})["finalizers"] = list((obj.get("spec") or {}).get("finalizers") or [])
            else:
                keep = {k: new["metadata"][k] for k in ("uid", "creationTimestamp", "generation",
                                                         "deletionTimestamp", "namespace") if k in new["metadata"]}
                status = new.get("status")
                new = copy.deepcopy(obj)
                new["metadata"].update(keep)
                if served.status:
                    new["status"] = status
                if new.get("spec") != cur.get("spec"):
                    new["metadata"]["generation"] = cur["metadata"]["generation"] + 1
            return self._commit(served, key, cur, new, f"update{'/' + subresource if subresource else ''}")

    def patch(self, api_version: str, resource: str, name: str, patch: Any, patch_type: str = "merge",
              namespace: str | None = None, subresource: str | None = None) -> JSON:
        assert patch_type == "merge", "the fake only speaks merge patch"
        cur = self.get(api_version, resource, name, namespace)
        merged = merge_patch(cur, patch)
        if "resourceVersion" not in ((patch.get("metadata") or {}) if isinstance(patch, dict) else {}):
            merged["metadata"]["resourceVersion"] = None
        if subresource == "status":
            return self.update(api_version, resource, merged, subresource="status")
        served = self._served(api_version, resource)
        with self._lock:
            key = self._key(served, name, namespace)
            stored = self._store.get(key)
            if stored is None:
                raise errors.not_found(resource, served.group, name)
            rv = merged["metadata"].get("resourceVersion")
            if rv and rv != stored["metadata"]["resourceVersion"]:
                raise errors.conflict(resource, served.group, name, errors.STALE_OBJECT)
            if served.status:
                merged["status"] = stored.get("status")
            if merged.get("spec") != stored.get("spec"):
                merged["metadata"]["generation"] = stored["metadata"]["generation"] + 1
            return self._commit(served, key, stored, merged, "patch")

    def _commit(self, served: Served, key: tuple[str, str, str, str], cur: JSON, new: JSON, verb: str) -> JSON:
        m = new["metadata"]
        if cur["metadata"].get("deletionTimestamp") and set(m.get("finalizers") or []) - set(
                cur["metadata"].get("finalizers") or []):
            raise errors.invalid(served.kind, served.group, m["name"], [
                {"reason": "FieldValueForbidden", "field": "metadata.finalizers",
                 "message": "no new finalizers can be added if the object is being deleted"}])
        m["resourceVersion"] = str(next(self._rv))
        self.writes.append((verb, served.resource, m["name"]))
        if m.get("deletionTimestamp") and not m.get("finalizers") and not (
                (new.get("spec") or {}).get("finalizers") if served.resource == "namespaces" else None):
            del self._store[key]
            self._emit("DELETED", served, new)
            return copy.deepcopy(new)
        self._store[key] = new
        self._emit("MODIFIED", served, new)
        return copy.deepcopy(new)

    def delete(self, api_version: str, resource: str, name: str, namespace: str | None = None,
               propagation_policy: str | None = None, preconditions: JSON | None = None) -> Any:
        served = self._served(api_version, resource)
        with self._lock:
            key = self._key(served, name, namespace)
            cur = self._store.get(key)
            if cur is None:
                raise errors.not_found(resource, served.group, name)
            for field_name, value in (preconditions or {}).items():
                if value is not None and cur["metadata"].get(field_name) != value:
                    raise errors.conflict(resource, served.group, name, f"Precondition failed: {field_name}")
            new = copy.deepcopy(cur)
            m = new["metadata"]
            finalizers = list(m.get("finalizers") or [])
            extra = {"Foreground": "foregroundDeletion", "Orphan": "orphan"}.get(propagation_policy or "")
            if extra and extra not in finalizers:
                finalizers.append(extra)
            pending = finalizers or (resource == "namespaces" and (new.get("spec") or {}).get("finalizers"))
            if not pending:
                del self._store[key]
                self.writes.append(("delete", resource, name))
                self._emit("DELETED", served, cur)
                return {"kind": "Status", "status": "Success"}
            if m.get("deletionTimestamp") and finalizers == (cur["metadata"].get("finalizers") or []):
                return copy.deepcopy(cur)
            m["finalizers"] = finalizers or None
            if not m["finalizers"]:
                del m["finalizers"]
            m.setdefault("deletionTimestamp", dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
            m["deletionGracePeriodSeconds"] = 0
            if resource == "namespaces":
                new["status"] = {"phase": "Terminating"}
            m["resourceVersion"] = str(next(self._rv))
            self._store[key] = new
            self.writes.append(("delete", resource, name))
            self._emit("MODIFIED", served, new)
            return copy.deepcopy(new)
