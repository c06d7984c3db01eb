"""The one in-memory API server double for unit tests.

``FakeAPI`` implements the client verbs (``get``, ``list``, ``create``, ``update``,
``update_status``, ``patch``, ``delete``, ``resource_for``) over a dict, with what tests of
controllers, leader election and events rely on: resourceVersion checks (409), generation bumps
on spec changes, a status subresource, finalizer-aware deletion, merge patches, label selectors
(``kube.selectors``, as the server parses them), injected failures (``fail_next`` for the next
calls whatever the verb, ``fail[verb]`` for the next call of one verb) and a record of every
call. ``reader`` answers from the same store (a cache that is never stale) with copies, so tests
catch accidental mutation of reads. Every verb is atomic, so threads may share one.
"""

from __future__ import annotations

import copy
import itertools
import threading
import uuid
from typing import Any

from rook_py.framework.client.errors import AlreadyExists, Conflict, NotFound
from rook_py.framework.kube.selectors import parse_selector

JSON = dict[str, Any]
Key = tuple[str, str | None, str]
WRITE_VERBS = ("create", "update", "update_status", "patch", "delete")


def _order(item: tuple[Key, JSON]) -> tuple[str, str, str]:
    kind, namespace, name = item[0]
    return kind, namespace or "", name


class FakeReader:
    """A never-stale cache over a FakeAPI's store (the ``ObjectReader`` / CacheReader slice)."""

    def __init__(self, api: FakeAPI) -> None:
        self._api = api

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> JSON | None:
        with self._api.lock:
            obj = self._api.store.get((kind, namespace, name))
            return copy.deepcopy(obj) if obj is not None else None

    def list(self, api_version: str, kind: str, namespace: str | None = None,
             label_selector: str | None = None) -> list[JSON]:
        selector = parse_selector(label_selector) if label_selector else None
        with self._api.lock:
            return [copy.deepcopy(o) for (k, ns, _), o in sorted(self._api.store.items(), key=_order)
                    if k == kind and (namespace is None or ns == namespace)
                    and (selector is None or selector.matches(o["metadata"].get("labels") or {}))]


class FakeAPI:
    def __init__(self) -> None:
        self.store: dict[Key, JSON] = {}
        self.calls: list[tuple[str, str, str]] = []
        self.lock = threading.RLock()
        self._rv = itertools.count(1)
        self.reader = FakeReader(self)
        self.fail: dict[str, Exception] = {}  # verb -> error raised by the next such call
        self.fail_next: list[Exception] = []  # errors raised by the next calls, whatever the verb
        self.namespaced = True  # what resource_for reports

    @property
    def objects(self) -> dict[Key, JSON]:
        """The store itself (tests may clear it: an object expired on the server)."""
        return self.store

    def resource_for(self, api_version: str, kind: str) -> Any:
        return type("Info", (), {"namespaced": self.namespaced})()

    def lease(self, namespace: str, name: str) -> JSON | None:
        with self.lock:
            obj = self.store.get(("Lease", namespace, name))
            return copy.deepcopy(obj) if obj else None

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
        self._maybe_fail()
        if verb in self.fail:
            raise self.fail.pop(verb)

    def _maybe_fail(self) -> None:
        """Raise the next injected failure; subclasses hook here (e.g. to hang like a frozen server)."""
        if self.fail_next:
            raise self.fail_next.pop(0)

    def _next_rv(self) -> str:
        return str(next(self._rv))

    # --- client verbs (each one atomic: leader election and events run on threads) ---
    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None, *,
            subresource: str | None = None) -> JSON:
        with self.lock:
            self._record("get", kind, name)
            obj = self.store.get((kind, namespace, name))
            if obj is None:
                raise NotFound(f'{kind} "{name}" not found')
            return copy.deepcopy(obj)

    def list(self, api_version: str, kind: str, namespace: str | None = None, *,
             label_selector: str | None = None, **_: Any) -> JSON:
        with self.lock:
            self._record("list", kind, "")
            return {"items": self.reader.list(api_version, kind, namespace, label_selector)}

    def create(self, obj: JSON, *, namespace: str | None = None) -> JSON:
        with self.lock:
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
        with self.lock:
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
        with self.lock:
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
        with self.lock:
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
        with self.lock:
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
        with self.lock:
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
