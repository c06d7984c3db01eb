"""A scripted, thread-safe ListerWatcher for cache tests: a tiny in-memory API server."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

JSON = dict[str, Any]
_END = object()


def cm(name: str, rv: int | str, namespace: str | None = "default", **extra: Any) -> JSON:
    md: JSON = {"name": name, "resourceVersion": str(rv), "uid": f"uid-{name}"}
    if namespace:
        md["namespace"] = namespace
    md.update(extra.pop("metadata", {}))
    obj: JSON = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": md}
    obj.update(extra)
    return obj


class FakeStream:
    """Yields scripted events; an exception instance in the script is raised; ``end()`` ends it."""

    def __init__(self) -> None:
        self._q: queue.Queue[Any] = queue.Queue()
        self.closed = threading.Event()

    def send(self, event: Any) -> None:
        self._q.put(event)

    def end(self) -> None:
        self._q.put(_END)

    def __iter__(self) -> Iterator[JSON]:
        while not self.closed.is_set():
            try:
                item = self._q.get(timeout=0.01)
            except queue.Empty:
                continue
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        self.closed.set()


class FakeListerWatcher:
    """Holds objects by key and a resourceVersion counter; ``list`` pages them.

    ``list_errors`` / ``watch_errors`` are consumed first-in-first-out: each call pops one entry
    and raises it if it is an exception. Every opened watch is recorded in ``streams`` and
    ``watch_calls`` (keyword arguments).
    """

    def __init__(self, objs: list[JSON] | None = None, rv: int = 100) -> None:
        self.lock = threading.Lock()
        self.objects: dict[str, JSON] = {}
        for o in objs or []:
            self.objects[self.key(o)] = o
        self.rv = rv
        self.list_calls: list[JSON] = []
        self.watch_calls: list[JSON] = []
        self.streams: list[FakeStream] = []
        self.list_errors: list[BaseException | None] = []
        self.watch_errors: list[BaseException | None] = []
        self.watch_opened = threading.Condition(self.lock)
        self._snapshots: dict[str, list[JSON]] = {}
        #: honour ``limit`` on resourceVersion="0" lists too (a server whose cache pages)
        self.pages_watch_cache_lists = False

    @staticmethod
    def key(o: JSON) -> str:
        md = o["metadata"]
        return f"{md.get('namespace')}/{md['name']}" if md.get("namespace") else md["name"]

    def list(self, *, limit: int | None, continue_: str | None, resource_version: str | None = None) -> JSON:
        with self.lock:
            self.list_calls.append({"limit": limit, "continue_": continue_, "resource_version": resource_version})
            if resource_version == "0" and not self.pages_watch_cache_lists:
                limit = None  # kube-apiserver v1.28's watch cache does not page
            if self.list_errors:
                err = self.list_errors.pop(0)
                if err is not None:
                    raise err
            if continue_ is None:
                snap = [dict(o) for o in self.objects.values()]
                token_base = f"snap{len(self.list_calls)}"
                self._snapshots[token_base] = snap
                offset = 0
            else:
                token_base, _, off = continue_.rpartition(":")
                snap, offset = self._snapshots[token_base], int(off)
            size = limit or len(snap)
            page = snap[offset:offset + size]
            md: JSON = {"resourceVersion": str(self.rv)}
            if offset + size < len(snap):
                md["continue"] = f"{token_base}:{offset + size}"
            return {"kind": "ConfigMapList", "apiVersion": "v1", "metadata": md, "items": page}

    def watch(self, *, resource_version: str | None, timeout_seconds: int,
              read_timeout: float) -> FakeStream:
        with self.lock:
            self.watch_calls.append({"resource_version": resource_version,
                                     "timeout_seconds": timeout_seconds, "read_timeout": read_timeout})
            if self.watch_errors:
                err = self.watch_errors.pop(0)
                if err is not None:
                    self.watch_opened.notify_all()
                    raise err
            stream = FakeStream()
            self.streams.append(stream)
            self.watch_opened.notify_all()
            return stream

    def wait_watches(self, n: int, timeout: float = 5.0) -> FakeStream:
        """Block until at least ``n`` watches were opened; returns the latest stream."""
        with self.lock:
            ok = self.watch_opened.wait_for(lambda: len(self.streams) >= n, timeout)
            assert ok, f"expected {n} watches, saw {len(self.streams)}"
            return self.streams[-1]

    # -- server-side mutations, emitting on the current stream when told --------------------

    def _bump(self, obj: JSON) -> JSON:
        self.rv += 1
        obj = {**obj, "metadata": {**obj["metadata"], "resourceVersion": str(self.rv)}}
        return obj

    def create(self, obj: JSON, emit: bool = True) -> JSON:
        with self.lock:
            obj = self._bump(obj)
            self.objects[self.key(obj)] = obj
            stream = self.streams[-1] if self.streams else None
        if emit and stream is not None:
            stream.send({"type": "ADDED", "object": obj})
        return obj

    def modify(self, obj: JSON, emit: bool = True) -> JSON:
        with self.lock:
            obj = self._bump(obj)
            self.objects[self.key(obj)] = obj
            stream = self.streams[-1] if self.streams else None
        if emit and stream is not None:
            stream.send({"type": "MODIFIED", "object": obj})
        return obj

    def remove(self, key: str, emit: bool = True) -> JSON:
        with self.lock:
            obj = self.objects.pop(key)
            obj = self._bump(obj)
            stream = self.streams[-1] if self.streams else None
        if emit and stream is not None:
            stream.send({"type": "DELETED", "object": obj})
        return obj
