"""The controller runtime: a rate-limited workqueue, its sources, and a pool of workers.

Semantics follow controller-runtime pkg/internal/controller/controller.go (``Start``,
``processNextWorkItem``, ``reconcileHandler``):

* sources start first, then the controller waits for every source's cache to sync (bounded by
  ``cache_sync_timeout``), and only then starts ``max_concurrent_reconciles`` workers, so a
  reconciler never reads a half-filled cache;
* the workqueue never hands one key to two workers at once, and a key added while being
  reconciled is reconciled once more afterwards;
* outcome handling:

  ===========================  ==========================  ================================
  reconcile outcome            queue action                 controller_runtime_reconcile_total
  ===========================  ==========================  ================================
  ``None`` / ``Result()``      ``forget``                   ``success``
  ``Result(requeue_after=s)``  ``forget`` + ``add_after``   ``requeue_after``
  ``Result(requeue=True)``     ``add_rate_limited``         ``requeue``
  ``TerminalError``            nothing (no retry)           ``error`` (+ terminal errors)
  ``LeaderElectionLost``       nothing; workers stop        not counted
  any other exception          ``add_rate_limited``         ``error``
  ===========================  ==========================  ================================

* ``LeaderElectionLost`` (in practice ``NotLeader``: the manager's write fence refused a write
  because this process may no longer hold the lease), raised directly or as the cause of the
  reconciler's own exception, is not a reconcile failure: retrying cannot succeed and another
  process now owns the work. The controller stops taking keys (the queue is shut down, the key
  is not requeued) and waits for the manager, which is already shutting down, to stop it.

* a worker never dies: every exception from the reconciler is caught, logged with its
  traceback, counted and retried. Python has no panics; the closest analogue of a Go panic is
  an exception that signals a programming bug rather than a failed operation (``TypeError``,
  ``KeyError``, ``AttributeError``...). Those also increment
  ``controller_runtime_reconcile_panics_total``, as controller-runtime does for a recovered panic.
* on stop, intake stops (the queue is shut down, queued keys are dropped: whoever runs next
  lists everything again), reconciles already running finish, and ``start`` returns once every
  worker has exited.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol

import structlog

from rook_py.framework import metrics
from rook_py.framework.cache.reader import NamespaceOutOfScopeError
from rook_py.framework.controller.handler import Queue as _HandlerQueue
from rook_py.framework.controller.reconcile import Reconciler, Request, Result, TerminalError
from rook_py.framework.controller.source import Source
from rook_py.framework.leaderelection import LeaderElectionLost
from rook_py.framework.logging import get_logger

log = get_logger(__name__)

# Exceptions that mean "the reconciler has a bug" rather than "the operation failed".
PANIC_TYPES: tuple[type[BaseException], ...] = (
    ArithmeticError, AssertionError, AttributeError, LookupError, NameError, NotImplementedError,
    RecursionError, TypeError,
)
# The framework's own errors that happen to subclass one of those: an operation that failed
# (a read outside the cache's namespace is a LookupError), not a bug in the reconciler.
NOT_PANIC_TYPES: tuple[type[BaseException], ...] = (NamespaceOutOfScopeError,)


def is_panic(err: BaseException) -> bool:
    """Whether ``err`` from a reconciler counts as a bug (controller_runtime_reconcile_panics_total)."""
    return isinstance(err, PANIC_TYPES) and not isinstance(err, NOT_PANIC_TYPES)

RESULTS = ("success", "error", "requeue", "requeue_after")
# How often a controller waiting for its caches checks whether it was told to stop.
_SYNC_STOP_CHECK = 0.1


class ControllerQueue(_HandlerQueue, Protocol):
    """The workqueue operations a controller uses (workqueue.RateLimitingQueue satisfies it)."""

    def get(self, timeout: float | None = None) -> tuple[Any, bool]: ...

    def done(self, item: Any) -> None: ...

    def add_after(self, item: Any, seconds: float) -> None: ...

    def add_rate_limited(self, item: Any) -> None: ...

    def forget(self, item: Any) -> None: ...

    def shut_down(self) -> None: ...

    def shutting_down(self) -> bool: ...


def default_queue(name: str) -> ControllerQueue:
    """client-go's default controller rate limiter behind a named (metrics-emitting) queue."""
    from rook_py.framework.workqueue import RateLimitingQueue, default_controller_rate_limiter

    return RateLimitingQueue(default_controller_rate_limiter(), name)


def _lost_leadership(err: BaseException) -> bool:
    """``err`` is, or was caused by, a LeaderElectionLost (e.g. a fenced write wrapped by the
    reconciler in its own error type). The chain walk is bounded against cycles."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        if isinstance(current, LeaderElectionLost):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _reconcile_id() -> str:
    """A random (version 4) UUID naming one reconcile in logs, as controller-runtime's reconcileID.

    Not ``uuid.uuid4()``: that reads ``os.urandom``, a syscall that releases the GIL, so with N
    busy workers every reconcile paid a GIL hand-off (up to the 5 ms switch interval) just to
    name itself -- measured at ~8% of worker wall time in B1. The id only correlates log lines;
    it needs uniqueness, not unpredictability, so the process PRNG (reseeded after fork) is enough.
    """
    return str(uuid.UUID(int=random.getrandbits(128), version=4))


class CacheSyncTimeout(RuntimeError):
    """The controller's sources did not sync within ``cache_sync_timeout``."""


class Controller:
    """Reconciles the keys its sources enqueue. A manager runnable that needs leader election.

    ``start`` may be called once; it blocks until ``stop`` is set and the workers have exited.
    ``watch`` may be called before or after ``start`` (a source added later starts at once).
    """

    def __init__(
        self,
        name: str,
        reconciler: Reconciler,
        *,
        max_concurrent_reconciles: int = 1,
        cache_sync_timeout: float = 120.0,
        queue_factory: Callable[[str], ControllerQueue] = default_queue,
        need_leader_election: bool = True,
    ) -> None:
        if not name:
            raise ValueError("a controller needs a name (it labels metrics and logs)")
        if max_concurrent_reconciles < 1:
            raise ValueError("max_concurrent_reconciles must be >= 1")
        self.name = name
        self.reconciler = reconciler
        self.max_concurrent_reconciles = max_concurrent_reconciles
        self.cache_sync_timeout = cache_sync_timeout
        self._need_leader_election = need_leader_election
        self.queue: ControllerQueue = queue_factory(name)
        self._sources: list[Source] = []
        self._lock = threading.Lock()
        self._started = False
        self._stopping = threading.Event()
        self._workers: list[threading.Thread] = []
        self._active = metrics.ACTIVE_WORKERS.labels(name)
        self._time = metrics.RECONCILE_TIME.labels(name)
        self._errors = metrics.RECONCILE_ERRORS.labels(name)
        self._terminal = metrics.RECONCILE_TERMINAL_ERRORS.labels(name)
        self._panics = metrics.RECONCILE_PANICS.labels(name)
        self._totals = {r: metrics.RECONCILE_TOTAL.labels(name, r) for r in RESULTS}

    def need_leader_election(self) -> bool:
        """True by default: only the elected replica reconciles (see Manager)."""
        return self._need_leader_election

    def watch(self, source: Source) -> None:
        with self._lock:
            self._sources.append(source)
            started = self._started
        if started:
            source.start(self.queue)

    def start(self, stop: threading.Event) -> None:
        with self._lock:
            if self._started:
                raise RuntimeError(f"controller {self.name} already started")
            self._started = True
            sources = list(self._sources)
        # Series exist at zero from the start, so rate() works on the first increment.
        metrics.MAX_CONCURRENT_RECONCILES.labels(self.name).set(self.max_concurrent_reconciles)
        self._active.set(0)
        try:
            for source in sources:
                source.start(self.queue)
            bound = log.bind(controller=self.name)
            bound.info("starting controller", sources=len(sources))
            if not self._wait_for_sync(sources, stop):
                if stop.is_set():
                    return
                raise CacheSyncTimeout(f"controller {self.name}: timed out after "
                                       f"{self.cache_sync_timeout}s waiting for caches to sync")
            bound.info("starting workers", worker_count=self.max_concurrent_reconciles)
            for i in range(self.max_concurrent_reconciles):
                worker = threading.Thread(target=self._worker, name=f"{self.name}-worker-{i}", daemon=True)
                self._workers.append(worker)
                worker.start()
            stop.wait()
            bound.info("stopping controller; waiting for in-flight reconciles")
        finally:
            self._shut_down()
        log.info("all workers finished", controller=self.name)

    def _shut_down(self) -> None:
        self._stopping.set()
        self.queue.shut_down()
        for worker in self._workers:
            worker.join()

    def _wait_for_sync(self, sources: list[Source], stop: threading.Event) -> bool:
        """Wait for every source, woken by the sources that can say when they synced (Kind);
        waits are sliced so a stop is noticed within ``_SYNC_STOP_CHECK`` seconds."""
        deadline = time.monotonic() + self.cache_sync_timeout
        for source in sources:
            wait = getattr(source, "wait_for_sync", None)
            while not source.has_synced():
                remaining = deadline - time.monotonic()
                if stop.is_set() or remaining <= 0:
                    return False
                if callable(wait):
                    wait(min(remaining, _SYNC_STOP_CHECK))
                else:
                    stop.wait(min(remaining, 0.01))
        return True

    # -- workers --------------------------------------------------------------------------------

    def _worker(self) -> None:
        while self.process_next_work_item():
            pass

    def process_next_work_item(self) -> bool:
        """Take one key and reconcile it; False once the queue is shut down or we are stopping."""
        item, shutdown = self.queue.get()
        if shutdown:
            return False
        try:
            if self._stopping.is_set():
                # Intake has stopped: a queued key is not started after shutdown began.
                return False
            self._active.inc()
            try:
                self.reconcile_handler(item)
            finally:
                self._active.dec()
            return True
        finally:
            self.queue.done(item)

    def reconcile_handler(self, item: Any) -> None:
        if not isinstance(item, Request):
            log.error("dropping an item that is not a Request", controller=self.name, item=repr(item))
            self.queue.forget(item)
            return
        with structlog.contextvars.bound_contextvars(
                controller=self.name, namespace=item.namespace, name=item.name,
                reconcile_id=_reconcile_id()):
            started = time.monotonic()
            try:
                self._handle(item)
            finally:
                self._time.observe(time.monotonic() - started)

    def _handle(self, req: Request) -> None:
        try:
            result = self.reconciler.reconcile(req) or Result()
        except TerminalError:
            self._terminal.inc()
            self._errors.inc()
            self._totals["error"].inc()
            log.exception("reconciler error (terminal, not requeued)")
            return
        except Exception as err:
            if _lost_leadership(err):
                self._stop_after_lost_leadership(err)
                return
            if is_panic(err):
                self._panics.inc()
                log.exception("observed an unexpected exception in the reconciler (a bug?); requeuing")
            else:
                log.exception("reconciler error; requeuing with backoff")
            self._errors.inc()
            self._totals["error"].inc()
            self.queue.add_rate_limited(req)
            return
        if not isinstance(result, Result):
            # A wrong return type is a bug in the reconciler; treat it as one, never crash.
            self._panics.inc()
            self._errors.inc()
            self._totals["error"].inc()
            log.error("reconciler returned a non-Result value; requeuing", returned=repr(result))
            self.queue.add_rate_limited(req)
            return
        if result.requeue_after:
            # Forget first: a delayed requeue is not a failure, so its backoff history resets.
            self.queue.forget(req)
            self.queue.add_after(req, result.requeue_after)
            self._totals["requeue_after"].inc()
        elif result.requeue:
            self.queue.add_rate_limited(req)
            self._totals["requeue"].inc()
        else:
            self.queue.forget(req)
            self._totals["success"].inc()

    def _stop_after_lost_leadership(self, err: BaseException) -> None:
        """Stop intake on every worker: keys left in the queue belong to the next leader, which
        lists everything again. ``start`` keeps waiting for ``stop`` (the manager sets it)."""
        first = not self._stopping.is_set()
        self._stopping.set()
        self.queue.shut_down()
        if first:
            log.warning("write refused: this process no longer holds the leader lease; "
                        "controller stops reconciling", error=str(err))

    def __repr__(self) -> str:
        return f"Controller({self.name!r}, workers={self.max_concurrent_reconciles})"
