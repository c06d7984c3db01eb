"""Fluent wiring of a controller, after controller-runtime pkg/builder/controller.go.

``ControllerBuilder(mgr).for_(...).owns(...).watches(...).complete(reconciler)``:

* ``for_`` (exactly one): the reconciled kind; each event enqueues the object's own key;
* ``owns``: children the reconciled kind controls; an event enqueues the child's *controller*
  owner of the ``for_`` kind (old and new owner on update);
* ``watches``: any kind, mapped to requests by a function (or an explicit EventHandler);
* predicates per watch, plus ``with_event_filter`` predicates applied to every watch.

Informers come from the manager's shared factory, so two controllers watching one kind share one
watch and one cache. The controller is added to the manager, which starts it once elected.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from rook_py.framework.controller.controller import Controller, ControllerQueue, default_queue
from rook_py.framework.controller.handler import (
    EnqueueRequestForObject,
    EnqueueRequestForOwner,
    EnqueueRequestsFromMapFunc,
    EventHandler,
)
from rook_py.framework.controller.predicates import Predicate
from rook_py.framework.controller.reconcile import Reconciler, Request
from rook_py.framework.controller.source import Informer, Kind, Source

JSON = dict[str, Any]


class _Manager(Protocol):
    """What the builder needs from a Manager."""

    @property
    def client(self) -> Any: ...

    @property
    def cache(self) -> Any: ...

    def add(self, runnable: Any) -> None: ...


@dataclass
class _Watch:
    api_version: str
    kind: str
    handler: EventHandler | None  # None: the owner handler, built at complete() once for_ is known
    predicates: tuple[Predicate, ...]
    namespace: str | None
    label_selector: str | None


class ControllerBuilder:
    def __init__(self, manager: _Manager) -> None:
        self._mgr = manager
        self._name: str | None = None
        self._for: _Watch | None = None
        self._watches: list[_Watch] = []
        self._sources: list[Source] = []
        self._global: list[Predicate] = []
        self._max_concurrent = 1
        # Default: the manager's option (ManagerOptions.cache_sync_timeout), else controller-runtime's 2 min.
        self._cache_sync_timeout: float = float(getattr(getattr(manager, "options", None),
                                                        "cache_sync_timeout", 120.0))
        self._queue_factory: Callable[[str], ControllerQueue] = default_queue
        self._need_leader_election = True

    def named(self, name: str) -> ControllerBuilder:
        """The controller's name (metrics label, log field). Default: the ``for_`` kind, lower-cased."""
        self._name = name
        return self

    def for_(self, api_version: str, kind: str, predicates: Sequence[Predicate] = (), *,
             namespace: str | None = None, label_selector: str | None = None) -> ControllerBuilder:
        if self._for is not None:
            raise ValueError("for_ may only be called once")
        self._for = _Watch(api_version, kind, EnqueueRequestForObject(), tuple(predicates),
                           namespace, label_selector)
        return self

    def owns(self, api_version: str, kind: str, predicates: Sequence[Predicate] = (), *,
             namespace: str | None = None, label_selector: str | None = None) -> ControllerBuilder:
        self._watches.append(_Watch(api_version, kind, None, tuple(predicates), namespace, label_selector))
        return self

    def watches(self, api_version: str, kind: str,
                mapper: Callable[[JSON], Iterable[Request]] | EventHandler,
                predicates: Sequence[Predicate] = (), *, namespace: str | None = None,
                label_selector: str | None = None) -> ControllerBuilder:
        handler = mapper if isinstance(mapper, EventHandler) else EnqueueRequestsFromMapFunc(mapper)
        self._watches.append(_Watch(api_version, kind, handler, tuple(predicates), namespace, label_selector))
        return self

    def watches_source(self, source: Source) -> ControllerBuilder:
        """A source built by hand (e.g. ``source.Channel``); global predicates do not apply to it."""
        self._sources.append(source)
        return self

    def with_event_filter(self, *predicates: Predicate) -> ControllerBuilder:
        """Predicates applied to every ``for_``/``owns``/``watches`` event of this controller."""
        self._global.extend(predicates)
        return self

    def with_options(self, *, max_concurrent_reconciles: int | None = None,
                     cache_sync_timeout: float | None = None,
                     queue_factory: Callable[[str], ControllerQueue] | None = None,
                     need_leader_election: bool | None = None) -> ControllerBuilder:
        """``need_leader_election=False`` runs the controller on every replica (e.g. node-local work)."""
        if need_leader_election is not None:
            self._need_leader_election = need_leader_election
        if max_concurrent_reconciles is not None:
            self._max_concurrent = max_concurrent_reconciles
        if cache_sync_timeout is not None:
            self._cache_sync_timeout = cache_sync_timeout
        if queue_factory is not None:
            self._queue_factory = queue_factory
        return self

    def _informer(self, w: _Watch) -> Informer:
        informer: Informer = self._mgr.cache.informer(w.api_version, w.kind, namespace=w.namespace,
                                                      label_selector=w.label_selector)
        return informer

    def complete(self, reconciler: Reconciler) -> Controller:
        """Build the controller, register its watches, add it to the manager and return it."""
        if self._for is None:
            raise ValueError("for_ must be called before complete")
        if not callable(getattr(reconciler, "reconcile", None)):
            raise TypeError("reconciler must have a reconcile(request) method")
        for_ = self._for
        name = self._name or for_.kind.lower()
        ctrl = Controller(name, reconciler, max_concurrent_reconciles=self._max_concurrent,
                          cache_sync_timeout=self._cache_sync_timeout, queue_factory=self._queue_factory,
                          need_leader_election=self._need_leader_election)
        owner_handler: EventHandler | None = None
        for w in (for_, *self._watches):
            handler = w.handler
            if handler is None:
                if owner_handler is None:
                    # Whether the owner is namespaced decides the owner key's namespace.
                    info = self._mgr.client.resource_for(for_.api_version, for_.kind)
                    owner_handler = EnqueueRequestForOwner(
                        for_.api_version, for_.kind, only_controller=True,
                        owner_namespaced=bool(info.namespaced))
                handler = owner_handler
            ctrl.watch(Kind(self._informer(w), handler, (*self._global, *w.predicates),
                            description=f"{w.kind}.{w.api_version}"))
        for source in self._sources:
            ctrl.watch(source)
        self._mgr.add(ctrl)
        return ctrl
