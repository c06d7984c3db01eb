"""Shared index informers and their factory (client-go tools/cache/shared_informer.go,
controller.go, informers/factory.go).

One informer per (apiVersion, kind, namespace, label selector) per process: a reflector fills a
DeltaFIFO, a single thread pops it, applies each delta to the indexer and fans the resulting
notification out to every registered handler.

* Each handler has its **own unbounded buffer and thread** (client-go's processorListener), so
  a slow handler delays only itself, never the cache or other handlers.
* A handler added after the informer started first receives the whole cache as adds with
  ``is_initial_list=True``, while delta processing is paused, so it sees no gap and no duplicate.
* Resync: handlers registered with a resync period receive ``on_update(obj, obj)`` for every
  cached object at that period (``Sync`` deltas go only to handlers whose period is due).
* A relist that returns an object with an unchanged resourceVersion is delivered as a resync,
  not as an update (client-go treats such ``Replaced`` deltas as ``Sync``).
* The transform hook runs on each object before it is cached; the default drops
  ``metadata.managedFields`` (often half an object's size, never needed by a controller). It
  runs in the reflector page by page, so a large list never holds all of them at once.
* The first list into an empty cache is indexed in one pass and handed to each handler as one
  batch of initial adds (``DeltaFIFO.replace_initial``): the same events, a third of the cost.

Objects passed to handlers are the cached objects: read-only (see ``store.py``).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from rook_py.framework.cache.fifo import DeltaFIFO, Deltas, DeltaType, FIFOClosedError, Transform
from rook_py.framework.cache.reflector import ClientListerWatcher, ListerWatcher, Reflector
from rook_py.framework.cache.store import Indexer, IndexFunc
from rook_py.framework.logging import get_logger

JSON = dict[str, Any]

log = get_logger(__name__)

MINIMUM_RESYNC_PERIOD = 1.0  # client-go's minimumResyncPeriod


def drop_managed_fields(obj: JSON) -> JSON:
    """Default transform: remove ``metadata.managedFields``.

    Mutates and returns ``obj``: the reflector hands over freshly decoded objects that nobody
    else references yet, so a copy would be pure waste.
    """
    md = obj.get("metadata")
    if md is not None and "managedFields" in md:
        del md["managedFields"]
    return obj


class ResourceEventHandler(Protocol):
    def on_add(self, obj: Any, is_initial_list: bool) -> None: ...

    def on_update(self, old: Any, new: Any) -> None: ...

    def on_delete(self, obj: Any) -> None:
        """``obj`` is the last state, or a ``DeletedFinalStateUnknown``."""
        ...


@dataclass
class ResourceEventHandlerFuncs:
    """A ``ResourceEventHandler`` from optional callables."""

    add_func: Callable[[Any, bool], None] | None = None
    update_func: Callable[[Any, Any], None] | None = None
    delete_func: Callable[[Any], None] | None = None

    def on_add(self, obj: Any, is_initial_list: bool) -> None:
        if self.add_func is not None:
            self.add_func(obj, is_initial_list)

    def on_update(self, old: Any, new: Any) -> None:
        if self.update_func is not None:
            self.update_func(old, new)

    def on_delete(self, obj: Any) -> None:
        if self.delete_func is not None:
            self.delete_func(obj)


# Notifications are plain tuples: this is the per-event hot path. _INITIAL carries a whole
# first list, (kind, objs), delivered as one on_add(obj, True) per object.
_ADD, _UPDATE, _DELETE, _INITIAL = 0, 1, 2, 3
Notification = tuple[Any, ...]


class _Listener:
    """One handler's unbounded buffer and delivery thread (client-go processorListener).

    Producers (the informer's delta loop, or ``add_event_handler`` for a late handler) run one at
    a time under the FIFO lock; the consumer is this listener's thread. Appending to a deque is
    atomic, so the producer takes the condition's lock only when the consumer is (about to be)
    asleep: the consumer raises ``_waiting`` under the lock *before* re-checking the buffer, so
    an append it did not see is always followed by a notify it will receive.
    """

    def __init__(self, handler: ResourceEventHandler, requested_resync: float, resync: float,
                 now: float, name: str) -> None:
        self.handler = handler
        self.requested_resync_period = requested_resync
        self.resync_period = resync
        self.next_resync = now + resync
        self._pending: deque[Notification] = deque()
        self._cond = threading.Condition(threading.Lock())
        self._waiting = False
        self._stopped = False
        # Single-writer counters (producers serialised by the FIFO lock; the consumer thread),
        # so neither needs a lock; has_synced compares them.
        self._initial_added = 0
        self._initial_delivered = 0
        # Notified by the consumer when the initial list has been delivered (wait_initial_list).
        self._delivered_cond = threading.Condition(threading.Lock())
        self._thread = threading.Thread(target=self._run, name=f"informer-handler-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def add(self, notification: Notification) -> None:
        if notification[0] == _ADD and notification[2]:
            self._initial_added += 1
        elif notification[0] == _INITIAL:
            self._initial_added += len(notification[1])
        self._pending.append(notification)
        if self._waiting:
            with self._cond:
                self._cond.notify()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        with self._delivered_cond:
            self._delivered_cond.notify_all()

    def join(self, timeout: float | None = None) -> None:
        if self._thread.is_alive():
            self._thread.join(timeout)

    def initial_list_delivered(self) -> bool:
        return self._initial_delivered >= self._initial_added

    def wait_initial_list(self, timeout: float) -> bool:
        """Block until ``initial_list_delivered`` (woken by the consumer, no polling)."""
        deadline = time.monotonic() + timeout
        with self._delivered_cond:
            while not self.initial_list_delivered():
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stopped:
                    return False
                self._delivered_cond.wait(remaining)
        return True

    def _initial_progress(self) -> None:
        """After initial adds were delivered: wake waiters once all of them are."""
        if self._initial_delivered >= self._initial_added:
            with self._delivered_cond:
                self._delivered_cond.notify_all()

    def should_resync(self, now: float) -> bool:
        return self.resync_period > 0 and now >= self.next_resync

    def determine_next_resync(self, now: float) -> None:
        self.next_resync = now + self.resync_period

    def _next(self) -> Notification | None:
        pending = self._pending
        while True:
            if self._stopped:
                return None
            try:
                return pending.popleft()
            except IndexError:
                pass
            with self._cond:
                self._waiting = True
                if not pending and not self._stopped:
                    self._cond.wait()
                self._waiting = False

    def _run(self) -> None:
        handler = self.handler
        while True:
            n = self._next()
            if n is None:
                return
            if n[0] == _INITIAL:
                self._deliver_initial(n[1])
                continue
            try:
                if n[0] == _ADD:
                    handler.on_add(n[1], n[2])
                elif n[0] == _UPDATE:
                    handler.on_update(n[1], n[2])
                else:
                    handler.on_delete(n[1])
            except Exception:
                # A handler bug must not stop delivery of later events to this handler.
                log.exception("event handler raised", handler=repr(handler))
            finally:
                if n[0] == _ADD and n[2]:
                    self._initial_delivered += 1
                    self._initial_progress()


    def _deliver_initial(self, objs: list[Any]) -> None:
        on_add = self.handler.on_add
        for obj in objs:
            if self._stopped:
                return
            try:
                on_add(obj, True)
            except Exception:
                log.exception("event handler raised", handler=repr(self.handler))
            finally:
                self._initial_delivered += 1
        self._initial_progress()


class HandlerRegistration:
    """Returned by ``add_event_handler``; ``has_synced`` is True once the informer synced and this
    handler has been given every object of the initial list."""

    def __init__(self, informer: SharedIndexInformer, listener: _Listener) -> None:
        self._informer = informer
        self._listener = listener

    def has_synced(self) -> bool:
        return self._informer.has_synced() and self._listener.initial_list_delivered()

    def wait_for_sync(self, timeout: float) -> bool:
        """Block until ``has_synced``, woken by the informer and then by this handler's delivery
        thread rather than polling; False on timeout."""
        deadline = time.monotonic() + timeout
        if not self._informer.wait_for_sync(timeout):
            return False
        return self._listener.wait_initial_list(max(0.0, deadline - time.monotonic()))


class _Processor:
    """Fans notifications out to listeners (client-go sharedProcessor)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._lock = threading.RLock()
        self._clock = clock
        self.listeners: list[_Listener] = []
        self._syncing: list[_Listener] = []
        self._started = False

    def add(self, listener: _Listener) -> None:
        with self._lock:
            self.listeners = [*self.listeners, listener]
            if self._started:
                listener.start()

    def remove(self, listener: _Listener) -> None:
        with self._lock:
            self.listeners = [x for x in self.listeners if x is not listener]
            self._syncing = [x for x in self._syncing if x is not listener]
        listener.stop()

    def distribute(self, notification: Notification, sync: bool) -> None:
        # Copy-on-write lists: reading the attribute is atomic, no lock on the hot path.
        for listener in (self._syncing if sync else self.listeners):
            listener.add(notification)

    def should_resync(self) -> bool:
        with self._lock:
            now = self._clock()
            due = [x for x in self.listeners if x.should_resync(now)]
            for x in due:
                x.determine_next_resync(now)
            self._syncing = due
            return bool(due)

    def resync_check_period_changed(self, period: float) -> None:
        with self._lock:
            now = self._clock()
            for x in self.listeners:
                x.resync_period = max(x.requested_resync_period, period) if x.requested_resync_period else 0
                x.determine_next_resync(now)

    def start(self) -> None:
        with self._lock:
            self._started = True
            for x in self.listeners:
                x.start()

    def stop(self) -> None:
        with self._lock:
            listeners = list(self.listeners)
        for x in listeners:
            x.stop()
        for x in listeners:
            x.join(5.0)


class SharedIndexInformer:
    """An indexer kept in step with the server, plus handler fan-out. ``run`` blocks until stop."""

    def __init__(self, lister_watcher: ListerWatcher, *, name: str = "informer",
                 resync_period: float | None = None, indexers: dict[str, IndexFunc] | None = None,
                 transform: Transform | None = drop_managed_fields,
                 detect_mutations: bool | None = None, min_resync_period: float = MINIMUM_RESYNC_PERIOD,
                 mutation_check_period: float = 1.0,
                 reflector_options: dict[str, Any] | None = None) -> None:
        """``resync_period`` is the default for handlers that do not set their own (None or 0: no
        resync). ``reflector_options`` are passed to ``Reflector`` (intervals, page size)."""
        self.name = name
        self.lister_watcher = lister_watcher
        self.indexer = Indexer(indexers, detect_mutations=detect_mutations)
        self.default_resync_period = resync_period or 0.0
        self.min_resync_period = min_resync_period
        self.resync_check_period = self.default_resync_period
        self.mutation_check_period = mutation_check_period
        self._clock: Callable[[], float] = time.monotonic
        self._processor = _Processor(self._clock)
        # The transform runs in the reflector, page by page, rather than in the FIFO: trimmed
        # early, a 10,000-object list never holds every object's managedFields at once.
        self.fifo = DeltaFIFO(known_objects=self.indexer, emit_delta_type_replaced=True)
        self.reflector = Reflector(lister_watcher, _ReflectorTarget(self), name=name,
                                   transform=transform, **(reflector_options or {}))
        self._lock = threading.Lock()
        self._started = False
        self._stopped = threading.Event()

    # -- handlers ---------------------------------------------------------------------------

    def add_event_handler(self, handler: ResourceEventHandler,
                          resync_period: float | None = None) -> HandlerRegistration:
        """Register ``handler``; ``resync_period`` None means the informer's default, 0 none."""
        with self._lock:
            if self._stopped.is_set():
                raise RuntimeError(f"informer {self.name} has stopped; cannot add a handler")
            period = self.default_resync_period if resync_period is None else resync_period
            if period > 0:
                period = max(period, self.min_resync_period)
                # The resync ticker runs at the smallest period asked for before start; once it
                # runs it cannot go faster, so a later, shorter period is rounded up to it.
                # (Unlike client-go, a handler registered before start may ask for a resync even
                # when the informer has no default one.)
                if not self._started and (self.resync_check_period <= 0 or period < self.resync_check_period):
                    self.resync_check_period = period
                    self._processor.resync_check_period_changed(period)
            effective = (max(period, self.resync_check_period)
                         if period > 0 and self.resync_check_period > 0 else 0.0)
            listener = _Listener(handler, period, effective, self._clock(), self.name)
            if not self._started:
                self._processor.add(listener)
                return HandlerRegistration(self, listener)
        # Started: hold the FIFO lock so no delta is applied while the handler is fed the cache;
        # after this block it receives exactly the changes made after its snapshot.
        with self.fifo.lock:
            self._processor.add(listener)
            for obj in self.indexer.list():
                listener.add((_ADD, obj, True))
        return HandlerRegistration(self, listener)

    def remove_event_handler(self, registration: HandlerRegistration) -> None:
        self._processor.remove(registration._listener)

    def add_indexers(self, indexers: dict[str, IndexFunc]) -> None:
        self.indexer.add_indexers(indexers)

    # -- state ------------------------------------------------------------------------------

    def has_synced(self) -> bool:
        """True once the first list has been fully applied to the indexer."""
        return self.fifo.has_synced()

    def wait_for_sync(self, timeout: float | None = None) -> bool:
        """Block until ``has_synced`` (woken at once, no polling); False on timeout."""
        return self.fifo.wait_synced(timeout)

    def last_sync_resource_version(self) -> str | None:
        return self.reflector.last_sync_resource_version()

    @property
    def started(self) -> bool:
        with self._lock:
            return self._started

    def is_stopped(self) -> bool:
        return self._stopped.is_set()

    # -- run --------------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Run until ``stop`` is set. May be called once."""
        with self._lock:
            if self._started:
                raise RuntimeError(f"informer {self.name} already started")
            self._started = True
        self._processor.start()
        threads = [threading.Thread(target=self.reflector.run, args=(stop,),
                                    name=f"reflector-{self.name}", daemon=True),
                   threading.Thread(target=self._close_on_stop, args=(stop,), daemon=True)]
        if self.resync_check_period > 0:
            threads.append(threading.Thread(target=self._resync_loop, args=(stop,), daemon=True))
        if self.indexer.mutation_detector is not None:
            threads.append(threading.Thread(target=self._mutation_loop, args=(stop,), daemon=True))
        for t in threads:
            t.start()
        try:
            while True:
                try:
                    self.fifo.pop_batch(self._handle_deltas)
                except FIFOClosedError:
                    break
                except Exception:
                    # Like utilruntime.HandleError: report and keep the informer alive.
                    log.exception("processing deltas failed", informer=self.name)
        finally:
            self._stopped.set()
            self._processor.stop()
            for t in threads:
                t.join(5.0)

    def _close_on_stop(self, stop: threading.Event) -> None:
        stop.wait()
        self.fifo.close()

    def _resync_loop(self, stop: threading.Event) -> None:
        while not stop.wait(self.resync_check_period):
            if self._processor.should_resync():
                self.fifo.resync()

    def _mutation_loop(self, stop: threading.Event) -> None:
        detector = self.indexer.mutation_detector
        assert detector is not None
        while not stop.wait(self.mutation_check_period):
            detector.scan(self.indexer.items())

    def _apply_initial_list(self, objs: list[JSON]) -> None:
        """First list with an empty cache (under the FIFO lock): index it in one pass and give
        each handler the whole list as one buffered batch of initial adds."""
        self.indexer.replace(objs)
        if objs:
            self._processor.distribute((_INITIAL, objs), False)

    def _handle_deltas(self, key: str, deltas: Deltas, is_in_initial_list: bool) -> None:
        """Apply one key's deltas to the indexer and notify handlers. Runs under the FIFO lock."""
        indexer = self.indexer
        distribute = self._processor.distribute
        for delta in deltas:
            obj = delta.object
            if delta.type is DeltaType.DELETED:
                indexer.delete_key(key)
                distribute((_DELETE, obj), False)
                continue
            old = indexer.upsert_key(key, obj)
            if old is None:
                distribute((_ADD, obj, is_in_initial_list), False)
                continue
            sync = delta.type is DeltaType.SYNC
            if delta.type is DeltaType.REPLACED:
                # A relist returning an unchanged object is a resync, not a change.
                sync = (old["metadata"].get("resourceVersion")
                        == obj["metadata"].get("resourceVersion"))
            distribute((_UPDATE, old, obj), sync)


class _ReflectorTarget:
    """What the informer's reflector writes to: the DeltaFIFO, with a fast path for the first
    list (see ``DeltaFIFO.replace_initial``)."""

    def __init__(self, informer: SharedIndexInformer) -> None:
        self._informer = informer
        fifo = informer.fifo
        self.add, self.update, self.delete = fifo.add, fifo.update, fifo.delete

    def replace(self, objs: list[JSON], resource_version: str | None = None) -> None:
        informer = self._informer
        if not informer.fifo.replace_initial(objs, informer._apply_initial_list):
            informer.fifo.replace(objs, resource_version)


@dataclass(frozen=True)
class InformerKey:
    api_version: str
    kind: str
    namespace: str | None
    label_selector: str | None


class SharedInformerFactory:
    """One informer per (apiVersion, kind, namespace, label selector), shared process-wide.

    ``start`` runs every informer created so far that is not yet running; call it again after
    creating more (the manager and the CacheReader do).
    """

    def __init__(self, client: Any, *, default_resync: float | None = None, namespace: str | None = None,
                 transform: Transform | None = drop_managed_fields, detect_mutations: bool | None = None,
                 informer_options: dict[str, Any] | None = None) -> None:
        """``informer_options`` are extra ``SharedIndexInformer`` keyword arguments (tests use
        them for short reflector intervals)."""
        self.client = client
        self.default_resync = default_resync
        self.namespace = namespace
        self.transform = transform
        self.detect_mutations = detect_mutations
        self.informer_options = informer_options or {}
        self._lock = threading.Lock()
        self._informers: dict[InformerKey, SharedIndexInformer] = {}
        self._threads: dict[InformerKey, threading.Thread] = {}
        self._stop: threading.Event | None = None

    def informer(self, api_version: str, kind: str, *, namespace: str | None = None,
                 label_selector: str | None = None) -> SharedIndexInformer:
        """The shared informer for this kind and scope, created on first use (not started)."""
        ns = namespace if namespace is not None else self.namespace
        if ns and not self._namespaced(api_version, kind):
            ns = None
        key = InformerKey(api_version, kind, ns or None, label_selector or None)
        with self._lock:
            informer = self._informers.get(key)
            if informer is None:
                lw = ClientListerWatcher(self.client, api_version, kind, namespace=key.namespace,
                                         label_selector=key.label_selector)
                name = f"{kind}.{api_version}" + (f"/{key.namespace}" if key.namespace else "") + (
                    f"?{key.label_selector}" if key.label_selector else "")
                informer = SharedIndexInformer(lw, name=name, resync_period=self.default_resync,
                                               transform=self.transform,
                                               detect_mutations=self.detect_mutations,
                                               **self.informer_options)
                self._informers[key] = informer
            return informer

    def scope_namespace(self, api_version: str, kind: str) -> str | None:
        """The one namespace this factory's informers watch for the kind; None for all."""
        if self.namespace and self._namespaced(api_version, kind):
            return self.namespace
        return None

    def _namespaced(self, api_version: str, kind: str) -> bool:
        """Cluster-scoped kinds ignore the factory's namespace; unknown kinds keep it."""
        resource_for = getattr(self.client, "resource_for", None)
        if resource_for is None:
            return True
        try:
            return bool(resource_for(api_version, kind).namespaced)
        except Exception:
            return True

    def informers(self) -> dict[InformerKey, SharedIndexInformer]:
        with self._lock:
            return dict(self._informers)

    @property
    def started(self) -> bool:
        with self._lock:
            return self._stop is not None

    def start(self, stop: threading.Event) -> None:
        """Start every informer not yet running; they stop when ``stop`` is set."""
        with self._lock:
            self._stop = stop
            for key, informer in self._informers.items():
                if key in self._threads:
                    continue
                t = threading.Thread(target=informer.run, args=(stop,), name=f"informer-{informer.name}",
                                     daemon=True)
                self._threads[key] = t
                t.start()

    def ensure_started(self, informer: SharedIndexInformer) -> None:
        """Start ``informer`` if the factory runs already (informers created late, e.g. by a reader)."""
        with self._lock:
            stop = self._stop
        if stop is not None and not informer.started:
            self.start(stop)

    def wait_for_cache_sync(self, timeout: float | None = None, *, poll: float = 0.1) -> bool:
        """Wait until every started informer has synced; False on timeout or if stopped first.

        Each informer wakes this at once when it syncs; ``poll`` only bounds how late a stop is
        noticed.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                running = [self._informers[k] for k in self._threads]
                stop = self._stop
            pending = [i for i in running if not i.has_synced()]
            if not pending:
                return True
            if stop is not None and stop.is_set():
                return False
            wait = poll
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                wait = min(poll, remaining)
            pending[0].wait_for_sync(wait)

    def join(self, timeout: float | None = None) -> None:
        """Wait for stopped informers' threads to finish."""
        with self._lock:
            threads = list(self._threads.values())
        for t in threads:
            t.join(timeout)
