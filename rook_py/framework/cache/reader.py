"""Reads served from shared informers (controller-runtime pkg/cache informer_cache.go).

``get``/``list`` find (or create and start) the shared informer for the kind in the factory's
scope, wait for it to sync, then answer from its indexer. As with controller-runtime's cache
reader, results are the cached objects themselves: **read-only**; deep-copy before changing.

Label selectors are parsed and matched by ``rook_py.framework.kube.selectors``, the same code
the envtest emulator serves them with, so a list from the cache selects what the API server
would (and refuses, with the server's message, what it would refuse).
"""

from __future__ import annotations

import time
from typing import Any

from rook_py.framework.cache.informer import SharedIndexInformer, SharedInformerFactory
from rook_py.framework.cache.store import NAMESPACE_INDEX
from rook_py.framework.kube.selectors import parse_selector

JSON = dict[str, Any]


class CacheNotStartedError(RuntimeError):
    """The informer factory has not been started, so the cache cannot answer."""


class CacheSyncTimeoutError(TimeoutError):
    """The informer for a kind did not finish its initial list in time."""


class NamespaceOutOfScopeError(LookupError):
    """A read of a namespace the cache does not watch. controller-runtime's cache refuses these
    too ("unknown namespace for the cache"): answering "not found" would be a lie that makes a
    reconciler create what already exists."""


class CacheReader:
    """``get``/``list`` answered from the factory's informers (one per kind, factory scope)."""

    def __init__(self, factory: SharedInformerFactory, *, sync_timeout: float = 30.0) -> None:
        self.factory = factory
        self.sync_timeout = sync_timeout

    def informer_for(self, api_version: str, kind: str) -> SharedIndexInformer:
        """The kind's shared informer, started and synced (blocks up to ``sync_timeout``)."""
        if not self.factory.started:
            raise CacheNotStartedError("the informer cache has not been started")
        informer = self.factory.informer(api_version, kind)
        self.factory.ensure_started(informer)
        if not informer.has_synced() and not _wait(informer, self.sync_timeout):
            raise CacheSyncTimeoutError(f"informer for {kind}.{api_version} did not sync in "
                                        f"{self.sync_timeout} s")
        return informer

    def _check_scope(self, api_version: str, kind: str, namespace: str | None) -> None:
        scope = self.factory.scope_namespace(api_version, kind) if self.factory.namespace else None
        if scope and namespace and namespace != scope:
            raise NamespaceOutOfScopeError(
                f"cannot read {kind}.{api_version} in namespace {namespace!r}: the cache watches "
                f"only namespace {scope!r}; read it with the client instead")

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> JSON | None:
        """The cached object, or None when the cache has no such object.

        Raises ``NamespaceOutOfScopeError`` for a namespace the cache does not watch."""
        self._check_scope(api_version, kind, namespace)
        informer = self.informer_for(api_version, kind)
        return informer.indexer.get_by_key(f"{namespace}/{name}" if namespace else name)

    def list(self, api_version: str, kind: str, namespace: str | None = None,
             label_selector: str | None = None) -> list[JSON]:
        """Cached objects of the kind, optionally in one namespace and matching a label selector.

        Raises ``NamespaceOutOfScopeError`` for a namespace the cache does not watch."""
        self._check_scope(api_version, kind, namespace)
        selector = parse_selector(label_selector) if label_selector else None
        informer = self.informer_for(api_version, kind)
        objs = (informer.indexer.by_index(NAMESPACE_INDEX, namespace) if namespace
                else informer.indexer.list())
        if selector is None or selector.empty():
            return objs
        return [o for o in objs if selector.matches(o["metadata"].get("labels") or {})]


def _wait(informer: SharedIndexInformer, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not informer.wait_for_sync(min(0.1, max(0.0, deadline - time.monotonic()))):
        if informer.is_stopped() or time.monotonic() >= deadline:
            return informer.has_synced()
    return True
