"""Object keys and the thread-safe indexer (client-go tools/cache/store.go, thread_safe_store.go,
index.go).

**Cached objects are read-only.** ``get_by_key``, ``list`` and ``by_index`` return the very
dicts the cache holds, shared with every other reader and with the informer's own diffing; no
copy is made on the read path. A caller that needs to change an object must deep-copy it first
(``copy.deepcopy(obj)``). Debug mode (``ROOK_CACHE_MUTATION_DETECTOR=true`` or
``Indexer(detect_mutations=True)``) detects violations; see ``mutation.py``.

Index functions map an object to zero or more string values (multi-valued, like client-go's
IndexFunc); ``by_index(name, value)`` returns the objects that produced ``value``.
"""

from __future__ import annotations

import builtins
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from rook_py.framework.cache.mutation import MutationDetector, mutation_detection_enabled

JSON = dict[str, Any]
IndexFunc = Callable[[JSON], list[str]]
KeyFunc = Callable[[Any], str]

NAMESPACE_INDEX = "namespace"
CONTROLLER_OWNER_INDEX = "controller-owner-uid"


@dataclass(frozen=True)
class DeletedFinalStateUnknown:
    """Delivered to ``on_delete`` when an object vanished while the watch was down.

    The deletion was inferred from a relist, so ``obj`` is the last state the cache knew, which
    may be stale; ``key`` is its ``namespace/name`` key.
    """

    key: str
    obj: JSON | None


def meta_namespace_key(obj: Any) -> str:
    """``namespace/name`` for namespaced objects, ``name`` for cluster-scoped ones."""
    # Exact type test first: this runs for every object, and isinstance is the slower check.
    if type(obj) is not dict and isinstance(obj, DeletedFinalStateUnknown):
        return obj.key
    md = obj["metadata"]
    ns = md.get("namespace")
    return f"{ns}/{md['name']}" if ns else str(md["name"])


def split_key(key: str) -> tuple[str | None, str]:
    """Inverse of ``meta_namespace_key``: ``(namespace or None, name)``."""
    ns, sep, name = key.partition("/")
    if not sep:
        return None, key
    if "/" in name:
        raise ValueError(f"unexpected key format: {key!r}")
    return ns, name


def namespace_index(obj: JSON) -> list[str]:
    """The object's namespace ("" for cluster-scoped objects)."""
    return [obj["metadata"].get("namespace") or ""]


def controller_owner_index(obj: JSON) -> list[str]:
    """The UID of the owner reference marked ``controller: true``, if any."""
    for ref in obj["metadata"].get("ownerReferences") or ():
        if ref.get("controller"):
            return [ref["uid"]]
    return []


def default_indexers() -> dict[str, IndexFunc]:
    return {NAMESPACE_INDEX: namespace_index, CONTROLLER_OWNER_INDEX: controller_owner_index}


class Indexer:
    """A thread-safe key -> object map with secondary indexes kept in step with every write.

    Invariant: for every index ``n`` and value ``v``, ``indices[n][v]`` is exactly the set of
    keys whose stored object yields ``v`` under ``indexers[n]``; empty sets are removed.
    """

    def __init__(self, indexers: dict[str, IndexFunc] | None = None, *,
                 key_func: KeyFunc = meta_namespace_key,
                 detect_mutations: bool | MutationDetector | None = None) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, JSON] = {}
        self._key_func = key_func
        self._indexers: dict[str, IndexFunc] = default_indexers()
        self._indices: dict[str, dict[str, set[str]]] = {name: {} for name in self._indexers}
        if indexers:
            self.add_indexers(indexers)
        if detect_mutations is None:
            detect_mutations = mutation_detection_enabled()
        self.mutation_detector: MutationDetector | None = (
            detect_mutations if isinstance(detect_mutations, MutationDetector)
            else MutationDetector() if detect_mutations else None)

    # -- writes ------------------------------------------------------------------------------

    def add(self, obj: JSON) -> None:
        self._put(self._key_func(obj), obj)

    def update(self, obj: JSON) -> None:
        self._put(self._key_func(obj), obj)

    def upsert(self, obj: JSON) -> JSON | None:
        """Add or update; returns the object previously stored under the key (one lock round)."""
        return self._put(self._key_func(obj), obj)

    def upsert_key(self, key: str, obj: JSON) -> JSON | None:
        """``upsert`` when the caller already knows the object's key (the informer does)."""
        return self._put(key, obj)

    def delete(self, obj: Any) -> None:
        """Remove by the key of ``obj`` (which may be a ``DeletedFinalStateUnknown``)."""
        self.delete_key(self._key_func(obj))

    def delete_key(self, key: str) -> None:
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._unindex(key, old)
        if old is not None and self.mutation_detector is not None:
            self.mutation_detector.verify(key, old)
            self.mutation_detector.forget(key)

    def replace(self, objs: Iterable[JSON], resource_version: str | None = None) -> None:
        """Swap the whole content for ``objs`` and rebuild every index."""
        items = {self._key_func(o): o for o in objs}
        with self._lock:
            old_items, self._items = self._items, items
            self._indices = {name: {} for name in self._indexers}
            for key, obj in items.items():
                self._index(key, obj)
        if self.mutation_detector is not None:
            self.mutation_detector.scan(old_items.items())
            for key in old_items.keys() - items.keys():
                self.mutation_detector.forget(key)
            for key, obj in items.items():
                self.mutation_detector.track(key, obj)

    def resync(self) -> None:
        """Nothing to do: the indexer is the source, not the target, of a resync."""

    def add_indexers(self, indexers: dict[str, IndexFunc]) -> None:
        """Add index functions; existing objects are indexed at once. Names must be new."""
        with self._lock:
            clash = indexers.keys() & self._indexers.keys()
            if clash:
                raise ValueError(f"indexer conflict: {sorted(clash)}")
            self._indexers.update(indexers)
            for name, fn in indexers.items():
                index: dict[str, set[str]] = {}
                self._indices[name] = index
                for key, obj in self._items.items():
                    for value in fn(obj):
                        index.setdefault(value, set()).add(key)

    # -- reads (return shared, read-only objects) --------------------------------------------

    def get(self, obj: Any) -> JSON | None:
        return self.get_by_key(self._key_func(obj))

    def get_by_key(self, key: str) -> JSON | None:
        with self._lock:
            return self._items.get(key)

    def list(self) -> builtins.list[JSON]:
        with self._lock:
            return list(self._items.values())

    def items(self) -> builtins.list[tuple[str, JSON]]:
        """``(key, object)`` pairs, a snapshot."""
        with self._lock:
            return list(self._items.items())

    def list_keys(self) -> builtins.list[str]:
        with self._lock:
            return list(self._items)

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def index_keys(self, index_name: str, value: str) -> builtins.list[str]:
        with self._lock:
            index = self._index_for(index_name)
            return list(index.get(value, ()))

    def by_index(self, index_name: str, value: str) -> builtins.list[JSON]:
        with self._lock:
            index = self._index_for(index_name)
            return [self._items[k] for k in index.get(value, ())]

    def index_values(self, index_name: str) -> builtins.list[str]:
        """Every value currently present in an index."""
        with self._lock:
            return list(self._index_for(index_name))

    def indexers(self) -> dict[str, IndexFunc]:
        with self._lock:
            return dict(self._indexers)

    def check_mutations(self) -> None:
        """Debug mode: raise ``CacheMutationError`` if any cached object was changed in place."""
        if self.mutation_detector is None:
            raise RuntimeError("mutation detection is off; set ROOK_CACHE_MUTATION_DETECTOR=true "
                               "or pass detect_mutations=True")
        self.mutation_detector.check(self.items())

    # -- internals (caller holds the lock) ---------------------------------------------------

    def _put(self, key: str, obj: JSON) -> JSON | None:
        with self._lock:
            old = self._items.get(key)
            self._items[key] = obj
            if old is not None:
                self._unindex(key, old)
            self._index(key, obj)
        if self.mutation_detector is not None:
            self.mutation_detector.verify(key, old)
            self.mutation_detector.track(key, obj)
        return old

    def _index_for(self, index_name: str) -> dict[str, set[str]]:
        try:
            return self._indices[index_name]
        except KeyError:
            raise KeyError(f"index {index_name!r} does not exist") from None

    def _index(self, key: str, obj: JSON) -> None:
        for name, fn in self._indexers.items():
            index = self._indices[name]
            for value in fn(obj):
                keys = index.get(value)
                if keys is None:
                    index[value] = {key}
                else:
                    keys.add(key)

    def _unindex(self, key: str, obj: JSON) -> None:
        for name, fn in self._indexers.items():
            index = self._indices[name]
            for value in fn(obj):
                keys = index.get(value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del index[value]
