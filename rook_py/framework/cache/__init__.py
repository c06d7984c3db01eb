"""client-go's tools/cache: reflector, DeltaFIFO, thread-safe indexer, shared informers.

Objects handed out by anything in this package are the cached objects themselves and are
read-only: deep-copy before changing them. ``ROOK_CACHE_MUTATION_DETECTOR=true`` detects
violations.
"""

from rook_py.framework.cache.fifo import Delta, DeltaFIFO, Deltas, DeltaType, FIFOClosedError
from rook_py.framework.cache.informer import (
    HandlerRegistration,
    InformerKey,
    ResourceEventHandler,
    ResourceEventHandlerFuncs,
    SharedIndexInformer,
    SharedInformerFactory,
    drop_managed_fields,
)
from rook_py.framework.cache.mutation import (
    CacheMutationError,
    MutationDetector,
    mutation_detection_enabled,
)
from rook_py.framework.cache.reader import (
    CacheNotStartedError,
    CacheReader,
    CacheSyncTimeoutError,
    NamespaceOutOfScopeError,
)
from rook_py.framework.cache.reflector import Backoff, ClientListerWatcher, ListerWatcher, Reflector
from rook_py.framework.cache.store import (
    CONTROLLER_OWNER_INDEX,
    NAMESPACE_INDEX,
    DeletedFinalStateUnknown,
    Indexer,
    IndexFunc,
    controller_owner_index,
    meta_namespace_key,
    namespace_index,
    split_key,
)

__all__ = [
    "CONTROLLER_OWNER_INDEX",
    "NAMESPACE_INDEX",
    "Backoff",
    "CacheMutationError",
    "CacheNotStartedError",
    "CacheReader",
    "CacheSyncTimeoutError",
    "ClientListerWatcher",
    "DeletedFinalStateUnknown",
    "Delta",
    "DeltaFIFO",
    "DeltaType",
    "Deltas",
    "FIFOClosedError",
    "HandlerRegistration",
    "IndexFunc",
    "Indexer",
    "InformerKey",
    "ListerWatcher",
    "MutationDetector",
    "NamespaceOutOfScopeError",
    "Reflector",
    "ResourceEventHandler",
    "ResourceEventHandlerFuncs",
    "SharedIndexInformer",
    "SharedInformerFactory",
    "controller_owner_index",
    "drop_managed_fields",
    "meta_namespace_key",
    "mutation_detection_enabled",
    "namespace_index",
    "split_key",
]
