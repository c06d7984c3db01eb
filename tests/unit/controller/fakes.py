"""Test doubles shared by the controller, manager and leader-election unit tests."""

from __future__ import annotations

import threading
from typing import Any

from rook_py.framework.client.errors import TransportError
from tests.support.fake_api import FakeAPI

JSON = dict[str, Any]


#: the one in-memory API double (tests/support/fake_api.py) under the name these tests use
FakeObjectClient = FakeAPI


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
