"""Test doubles shared by the controller, manager and leader-election unit tests."""

from __future__ import annotations

import copy
import threading
from typing import Any

from rook_py.framework.client.errors import AlreadyExists, Conflict, NotFound, TransportError

JSON = dict[str, Any]


class FakeObjectClient:
    """An in-memory API with resourceVersion checks on update (enough for Leases and Events)."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str | None, str], JSON] = {}
        self.lock = threading.Lock()
        self.rv = 0
        self.calls: list[tuple[str, str, str]] = []
        self.fail_next: list[Exception] = []
        self.namespaced = True

    def _maybe_fail(self) -> None:
        if self.fail_next:
            raise self.fail_next.pop(0)

    def _bump(self, obj: JSON) -> JSON:
        self.rv += 1
        obj.setdefault("metadata", {})["resourceVersion"] = str(self.rv)
        return obj

    def resource_for(self, api_version: str, kind: str) -> Any:
        return type("Info", (), {"namespaced": self.namespaced})()

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None, **_: Any) -> JSON:
        with self.lock:
            self.calls.append(("get", kind, name))
            self._maybe_fail()
            obj = self.objects.get((kind, namespace, name))
            if obj is None:
                raise NotFound(f'{kind} "{name}" not found')
            return copy.deepcopy(obj)

    def create(self, obj: JSON, *, namespace: str | None = None) -> JSON:
        with self.lock:
            meta = obj["metadata"]
            self.calls.append(("create", obj["kind"], meta["name"]))
            self._maybe_fail()
            key = (obj["kind"], namespace or meta.get("namespace"), meta["name"])
            if key in self.objects:
                raise AlreadyExists(f'{obj["kind"]} "{meta["name"]}" already exists')
            stored = self._bump(copy.deepcopy(obj))
            self.objects[key] = stored
            return copy.deepcopy(stored)

    def update(self, obj: JSON) -> JSON:
        with self.lock:
            meta = obj["metadata"]
            self.calls.append(("update", obj["kind"], meta["name"]))
            self._maybe_fail()
            key = (obj["kind"], meta.get("namespace"), meta["name"])
            current = self.objects.get(key)
            if current is None:
                raise NotFound(f'{obj["kind"]} "{meta["name"]}" not found')
            if meta.get("resourceVersion") != current["metadata"]["resourceVersion"]:
                raise Conflict("the object has been modified")
            stored = self._bump(copy.deepcopy(obj))
            self.objects[key] = stored
            return copy.deepcopy(stored)

    def patch(self, api_version: str, kind: str, name: str, patch: JSON, *, namespace: str | None = None,
              patch_type: str = "merge", subresource: str | None = None) -> JSON:
        with self.lock:
            self.calls.append(("patch", kind, name))
            self._maybe_fail()
            current = self.objects.get((kind, namespace, name))
            if current is None:
                raise NotFound(f'{kind} "{name}" not found')
            current.update(copy.deepcopy(patch))
            return copy.deepcopy(self._bump(current))

    def lease(self, namespace: str, name: str) -> JSON | None:
        with self.lock:
            obj = self.objects.get(("Lease", namespace, name))
            return copy.deepcopy(obj) if obj else None


class FakeInformer:
    """Records handlers; ``emit_*`` drives them synchronously, as the informer's thread would."""

    def __init__(self, synced: bool = True) -> None:
        self.handlers: list[Any] = []
        self.synced = synced

    def add_event_handler(self, handler: Any, resync_period: float | None = None) -> None:
        self.handlers.append(handler)

    def has_synced(self) -> bool:
        return self.synced

    def emit_add(self, obj: JSON) -> None:
        for h in self.handlers:
            h.on_add(obj, False)

    def emit_update(self, old: JSON, new: JSON) -> None:
        for h in self.handlers:
            h.on_update(old, new)

    def emit_delete(self, obj: Any) -> None:
        for h in self.handlers:
            h.on_delete(obj)


class FakeCache:
    """SharedInformerFactory stand-in: one FakeInformer per (api_version, kind, namespace)."""

    def __init__(self) -> None:
        self.informers: dict[tuple[str, str, str | None], FakeInformer] = {}
        self.started = threading.Event()
        self.start_calls = 0
        self.synced = True

    def informer(self, api_version: str, kind: str, *, namespace: str | None = None,
                 label_selector: str | None = None) -> FakeInformer:
        return self.informers.setdefault((api_version, kind, namespace), FakeInformer())

    def start(self, stop: threading.Event) -> None:
        self.start_calls += 1
        self.started.set()

    def wait_for_cache_sync(self, timeout: float | None = None) -> bool:
        return self.started.is_set() and self.synced and all(i.synced for i in self.informers.values())


def unreachable() -> TransportError:
    return TransportError("connection refused")
