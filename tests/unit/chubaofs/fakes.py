"""An in-memory API server slice for the ChubaoMonitor controller's unit tests.

``FakeCluster`` implements the client verbs the controller and ``framework.objects`` use, with
resourceVersion checks (409), generation bumps on spec changes, a status subresource and
finalizer-aware deletion, and records every write. ``reader`` answers from the same store (a
cache that is never stale), returning copies so tests catch accidental mutation of reads.
"""

from __future__ import annotations

import copy
import itertools
import uuid
from typing import Any

from rook_py.framework.client.errors import AlreadyExists, Conflict, NotFound
from rook_py.framework.kube.selectors import parse_selector

JSON = dict[str, Any]
WRITE_VERBS = ("create", "update", "update_status", "patch", "delete")


def _matches(labels: dict[str, str], selector: str | None) -> bool:
    return not selector or parse_selector(selector).matches(labels)


class FakeReader:
    def __init__(self, cluster: FakeCluster) -> None:
        self._cluster = cluster

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> JSON | None:
        obj = self._cluster.store.get((kind, namespace, name))
        return copy.deepcopy(obj) if obj is not None else None

    def list(self, api_version: str, kind: str, namespace: str | None = None,
             label_selector: str | None = None) -> list[JSON]:
        return [copy.deepcopy(o) for (k, ns, _), o in sorted(self._cluster.store.items())
                if k == kind and (namespace is None or ns == namespace)
                and _matches(o["metadata"].get("labels") or {}, label_selector)]


class FakeCluster:
    def __init__(self) -> None:
        self.store: dict[tuple[str, str | None, str], JSON] = {}
        self.calls: list[tuple[str, str, str]] = []
        self._rv = itertools.count(1)
        self.reader = FakeReader(self)
        self.fail: dict[str, Exception] = {}  # verb -> error raised by the next such call

    # --- helpers for tests ---
    def writes(self) -> list[tuple[str, str, str]]:
        return [c for c in self.calls if c[0] in WRITE_VERBS]

    def reset_calls(self) -> None:
        self.calls.clear()

    def obj(self, kind: str, name: str, namespace: str = "ns") -> JSON:
        return self.store[(kind, namespace, name)]

    def has(self, kind: str, name: str, namespace: str = "ns") -> bool:
        return (kind, namespace, name) in self.store

    def names(self, kind: str) -> set[str]:
        return {n for (k, _, n) in self.store if k == kind}

    def _record(self, verb: str, kind: str, name: str) -> None:
        self.calls.append((verb, kind, name))
        if verb in self.fail:
            raise self.fail.pop(verb)

    def _next_rv(self) -> str:
        return str(next(self._rv))

    # --- client verbs ---
    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None, *,
            subresource: str | None = None) -> JSON:
        self._record("get", kind, name)
        obj = self.store.get((kind, namespace, name))
        if obj is None:
            raise NotFound(f'{kind} "{name}" not found')
        return copy.deepcopy(obj)

    def list(self, api_version: str, kind: str, namespace: str | None = None, *,
             label_selector: str | None = None, **_: Any) -> JSON:
        self._record("list", kind, "")
        return {"items": self.reader.list(api_version, kind, namespace, label_selector)}

    def create(self, obj: JSON, *, namespace: str | None = None) -> JSON:
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        namespace = namespace or meta.get("namespace")
        key = (obj["kind"], namespace, meta["name"])
        self._record("create", obj["kind"], meta["name"])
        if key in self.store:
            raise AlreadyExists(f'{obj["kind"]} "{meta["name"]}" already exists')
        meta.update(namespace=namespace, uid=str(uuid.uuid4()), resourceVersion=self._next_rv(),
                    generation=1, creationTimestamp="2026-01-01T00:00:00Z")
        obj.pop("status", None)
        self.store[key] = obj
        return copy.deepcopy(obj)

    def update(self, obj: JSON) -> JSON:
        meta = obj["metadata"]
        key = (obj["kind"], meta.get("namespace"), meta["name"])
        self._record("update", obj["kind"], meta["name"])
        live = self.store.get(key)
        if live is None:
            raise NotFound(f'{obj["kind"]} "{meta["name"]}" not found')
        if meta.get("resourceVersion") not in (None, live["metadata"]["resourceVersion"]):
            raise Conflict("the object has been modified")
        new = copy.deepcopy(obj)
        new["status"] = copy.deepcopy(live.get("status"))
        if new["status"] is None:
            new.pop("status")
        new["metadata"]["uid"] = live["metadata"]["uid"]
        new["metadata"]["generation"] = live["metadata"].get("generation", 1) + (
            1 if new.get("spec") != live.get("spec") else 0)
        new["metadata"]["resourceVersion"] = self._next_rv()
        if live["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers"):
            del self.store[key]
            return new
        self.store[key] = new
        return copy.deepcopy(new)

    def apply(self, obj: JSON, *, field_manager: str, force: bool = False, subresource: str | None = None
              ) -> JSON:
        """Server-side apply, simplified: the applied object replaces the live one's fields
        (server metadata and status kept); recorded as the create or update it amounts to."""
        meta = obj["metadata"]
        key = (obj["kind"], meta.get("namespace"), meta["name"])
        live = self.store.get(key)
        if live is None:
            return self.create(obj)
        new = copy.deepcopy(obj)
        new["metadata"] = {**{k: v for k, v in live["metadata"].items()
                              if k in ("uid", "resourceVersion", "generation", "creationTimestamp",
                                       "deletionTimestamp", "finalizers")}, **new["metadata"]}
        new["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
        return self.update(new)

    def update_status(self, obj: JSON) -> JSON:
        meta = obj["metadata"]
        key = (obj["kind"], meta.get("namespace"), meta["name"])
        self._record("update_status", obj["kind"], meta["name"])
        live = self.store.get(key)
        if live is None:
            raise NotFound(f'{obj["kind"]} "{meta["name"]}" not found')
        if meta.get("resourceVersion") not in (None, live["metadata"]["resourceVersion"]):
            raise Conflict("the object has been modified")
        live["status"] = copy.deepcopy(obj.get("status"))
        live["metadata"]["resourceVersion"] = self._next_rv()
        return copy.deepcopy(live)

    def patch(self, api_version: str, kind: str, name: str, patch: JSON, *,
              namespace: str | None = None, patch_type: str = "merge",
              subresource: str | None = None) -> JSON:
        self._record("patch", kind, name)
        live = self.store.get((kind, namespace, name))
        if live is None:
            raise NotFound(f'{kind} "{name}" not found')

        def merge(target: JSON, source: JSON) -> None:
            for k, v in source.items():
                if isinstance(v, dict) and isinstance(target.get(k), dict):
                    merge(target[k], v)
                elif v is None:
                    target.pop(k, None)
                else:
                    target[k] = copy.deepcopy(v)

        merge(live, patch)
        live["metadata"]["resourceVersion"] = self._next_rv()
        return copy.deepcopy(live)

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None, *,
               propagation_policy: str | None = None, **_: Any) -> JSON | None:
        self._record("delete", kind, name)
        key = (kind, namespace, name)
        live = self.store.get(key)
        if live is None:
            raise NotFound(f'{kind} "{name}" not found')
        if live["metadata"].get("finalizers"):
            live["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
            return copy.deepcopy(live)
        del self.store[key]
        return None

    # --- a tiny kubelet/controller-manager ---
    def make_workloads_ready(self) -> None:
        """Every Deployment/StatefulSet reports its latest generation fully rolled out and ready,
        and every StatefulSet's claims exist as PVCs."""
        for (kind, ns, name), obj in list(self.store.items()):
            if kind not in ("StatefulSet", "Deployment"):
                continue
            replicas = obj["spec"].get("replicas", 1)
            obj["status"] = {"observedGeneration": obj["metadata"]["generation"],
                             "replicas": replicas, "readyReplicas": replicas,
                             "updatedReplicas": replicas, "availableReplicas": replicas}
            for tpl in obj["spec"].get("volumeClaimTemplates") or []:
                for i in range(replicas):
                    pvc_name = f"{tpl['metadata']['name']}-{name}-{i}"
                    if (("PersistentVolumeClaim", ns, pvc_name)) not in self.store:
                        self.store[("PersistentVolumeClaim", ns, pvc_name)] = {
                            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                            "metadata": {"name": pvc_name, "namespace": ns,
                                         "labels": dict(tpl["metadata"].get("labels") or {}),
                                         "resourceVersion": self._next_rv(), "uid": str(uuid.uuid4())},
                            "spec": copy.deepcopy(tpl["spec"])}
