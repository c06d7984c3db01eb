"""The Manager: one process's shared client, caches, controllers, leader election and servers.

Lifecycle, after controller-runtime pkg/manager/internal.go (``Start``, ``engageStopProcedure``)
and runnable_group.go:

1. the metrics and health servers bind (so probes answer while caches fill);
2. the shared informer factory starts, and runnables that do not need leader election start.
   Caches start *before* the election, so a standby is warm and takes over without a relist;
3. with leader election on, a LeaderElector campaigns for the Lease; once elected (or at once
   without election) the leader-only runnables (controllers) start;
4. shutdown begins when ``stop`` is set, on SIGTERM/SIGINT (when ``start`` runs on the main
   thread; a second signal exits at once with status 1), when a runnable raises, or when the
   lease is lost. Leader-only runnables stop first (intake stops, in-flight reconciles finish)
   within ``graceful_shutdown_timeout``; then the lease is released (only if they did finish:
   releasing while a reconcile still writes would let the next leader race it); then the other
   runnables, the caches, the event writer and the servers stop. The whole shutdown is bounded
   by ``graceful_shutdown_timeout``, even while a request hangs on an unresponsive API server
   (every join waits at most until that deadline; the lease release is bounded by the lease's
   own renew deadline). After a *lost* lease nothing is waited for at all, as controller-runtime
   sets gracefulShutdownTimeout to 0 in OnStoppedLeading: the write fence already stops every
   write, and another process may lead now.

With leader election, ``/healthz`` has a ``leaderElection`` check that fails once this process
leads but can no longer be sure of it (the fence's renew deadline passed), at the same instant
the fence closes, as client-go's ``HealthzAdaptor`` fails a leader that stopped renewing.

``start`` raises ``LeaderElectionLost`` after losing the lease, the runnable's exception when one
failed, and ``GracefulShutdownTimeout`` when in-flight work did not finish in time, so the
process exits non-zero in each of those cases.

Write fencing: with leader election on, ``start`` installs the elector's ``WriteFence`` as the
client's ``write_guard``, so no mutating request leaves this process once it can no longer be sure
it holds the lease (e.g. after being frozen past it); a refused write raises ``NotLeader`` in the
caller, controllers stop on it, and the manager shuts down and raises ``LeaderElectionLost``. The
fence stays installed after ``start`` returns: open again only after a clean, drained release.
"""

from __future__ import annotations

import gc
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any, Protocol, runtime_checkable

from rook_py.framework.events import EventBroadcaster, EventRecorder
from rook_py.framework.httpserver import HealthChecks, HTTPServer, health_server, metrics_server
from rook_py.framework.leaderelection import (
    LeaderCallbacks,
    LeaderElectionLost,
    LeaderElector,
    LeaseLock,
    WriteFence,
    validate_timing,
)
from rook_py.framework.logging import get_logger

log = get_logger(__name__)

IN_CLUSTER_NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


@runtime_checkable
class Runnable(Protocol):
    """Anything the manager runs: ``start`` blocks until ``stop`` is set (or returns early).

    A runnable may also define ``need_leader_election() -> bool``; without it, it is treated as
    needing leader election (controller-runtime's default for runnables).
    """

    def start(self, stop: threading.Event) -> None: ...


class GracefulShutdownTimeout(RuntimeError):
    """Leader-only runnables were still running when ``graceful_shutdown_timeout`` expired."""


@dataclass
class ManagerOptions:
    namespace: str | None = None
    leader_election: bool = False
    leader_election_id: str = ""
    leader_election_namespace: str | None = None
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    metrics_bind_address: str = ":8080"
    health_probe_bind_address: str = ":8081"
    graceful_shutdown_timeout: float = 30.0
    identity: str | None = None
    default_resync: float | None = None
    #: Debug: keep a pristine copy of every cached object and fail on in-place changes
    #: (``cache/mutation.py``); None leaves it to ``ROOK_CACHE_MUTATION_DETECTOR``.
    detect_mutations: bool | None = None
    cache_sync_timeout: float = 120.0
    event_queue_size: int = 1000
    #: gc.freeze() once per process when a manager starts: what exists by then (modules, classes,
    #: configuration: hundreds of thousands of objects once the kubernetes package is imported)
    #: leaves the cyclic collector's view, so its full passes scan only what the operator
    #: allocates later. A full pass over the import heap stopped every thread for ~35 ms, right in
    #: the middle of the first list. Objects already garbage then are never reclaimed (a one-off).
    freeze_startup_heap: bool = True


def _needs_leader(runnable: Runnable) -> bool:
    fn = getattr(runnable, "need_leader_election", None)
    return bool(fn()) if callable(fn) else True


def _default_identity() -> str:
    return f"{socket.gethostname()}_{uuid.uuid4()}"


def _in_cluster_namespace() -> str | None:
    try:
        with open(IN_CLUSTER_NAMESPACE_FILE, encoding="utf-8") as f:
            return f.read().strip() or None
    except OSError:
        return None


_heap_frozen = threading.Event()


def _freeze_startup_heap() -> None:
    """See ``ManagerOptions.freeze_startup_heap``; later managers in the process leave it be."""
    if not _heap_frozen.is_set():
        _heap_frozen.set()
        gc.freeze()


class _RunnableThread:
    """A runnable on its own thread; an exception is reported through ``on_error``."""

    def __init__(self, runnable: Runnable, stop: threading.Event,
                 on_error: Callable[[Runnable, BaseException], None]):
        self.runnable = runnable
        self.thread = threading.Thread(target=self._run, args=(stop, on_error),
                                       name=f"runnable-{type(runnable).__name__}", daemon=True)

    def _run(self, stop: threading.Event, on_error: Callable[[Runnable, BaseException], None]) -> None:
        try:
            self.runnable.start(stop)
        except BaseException as err:
            on_error(self.runnable, err)


class Manager:
    """See the module docstring. Create it, wire controllers with ControllerBuilder, ``start``."""

    def __init__(self, client: Any, options: ManagerOptions | None = None, *, cache: Any = None) -> None:
        self.options = options or ManagerOptions()
        opts = self.options
        if opts.leader_election:
            if not opts.leader_election_id:
                raise ValueError("leader_election_id is required when leader election is enabled")
            validate_timing(opts.lease_duration, opts.renew_deadline, opts.retry_period)
        self.client = client
        if cache is None:
            from rook_py.framework.cache import SharedInformerFactory

            cache = SharedInformerFactory(client, namespace=opts.namespace,
                                          default_resync=opts.default_resync,
                                          detect_mutations=opts.detect_mutations)
        self.cache = cache
        self._reader: Any = None
        self.identity = opts.identity or _default_identity()
        self._events = EventBroadcaster(client, queue_size=opts.event_queue_size)
        self._healthz = HealthChecks("healthz")
        self._readyz = HealthChecks("readyz")
        self._readyz.add("informers", self._caches_synced)
        self._lock = threading.Lock()
        self._runnables: list[Runnable] = []
        self._threads: list[_RunnableThread] = []
        self._leader_threads: list[_RunnableThread] = []
        self._started = False
        self._leading = False
        self._stopping = False
        self._errors: list[tuple[Runnable, BaseException]] = []
        self._wake = threading.Event()
        self._lost = threading.Event()
        self._runnable_stop = threading.Event()   # non-leader runnables
        self._leader_stop = threading.Event()     # leader-only runnables
        self._cache_stop = threading.Event()
        self._servers: list[HTTPServer] = []
        self._elector: LeaderElector | None = None
        self.fence: WriteFence | None = None
        self.metrics_address: tuple[str, int] | None = None
        self.health_address: tuple[str, int] | None = None
        self.elected = threading.Event()
        self.serving = threading.Event()
        self.webhook_server: Any = None

    def set_webhook_server(self, server: Any) -> None:
        """Run ``server`` (a ``webhook.WebhookServer``) on every replica, leader or not, as
        controller-runtime does (the API server calls whichever replica its Service picks), and
        hold ``/readyz`` until it serves with a valid certificate."""
        if self.webhook_server is not None:
            raise ValueError("the manager already has a webhook server")
        self.webhook_server = server
        self.add(server)
        self.add_ready_check("webhook", server.ready)

    # -- wiring ----------------------------------------------------------------------------------

    @property
    def reader(self) -> Any:
        """A CacheReader over the shared informers (reads never hit the API server)."""
        if self._reader is None:
            from rook_py.framework.cache import CacheReader

            self._reader = CacheReader(self.cache)
        return self._reader

    def event_recorder(self, name: str) -> EventRecorder:
        return self._events.new_recorder(name)

    def add_health_check(self, name: str, check: Callable[[], object]) -> None:
        self._healthz.add(name, check)

    def add_ready_check(self, name: str, check: Callable[[], object]) -> None:
        self._readyz.add(name, check)

    def add(self, runnable: Runnable) -> None:
        """Register a runnable; after ``start`` it starts at once (when its group is running)."""
        if not isinstance(runnable, Runnable) or not callable(runnable.start):
            raise TypeError("a runnable needs a start(stop) method")
        with self._lock:
            self._runnables.append(runnable)
            if not self._started or self._stopping:
                return
            leader = _needs_leader(runnable)
            if leader and not self._leading:
                return
        # Informers the new runnable asked for are started by a second factory start (idempotent).
        self.cache.start(self._cache_stop)
        self._launch(runnable, leader)

    def is_leader(self) -> bool:
        """Leader-only runnables run and, with leader election, the write fence still holds."""
        return self._leading and (self.fence is None or self.fence.holds())

    # -- lifecycle -------------------------------------------------------------------------------

    def _caches_synced(self) -> bool:
        if not self._started:
            raise RuntimeError("manager not started")
        if not self.cache.wait_for_cache_sync(0):
            raise RuntimeError("informers not synced")
        return True

    def _on_error(self, runnable: Runnable, err: BaseException) -> None:
        log.error("runnable failed", runnable=type(runnable).__name__, error=repr(err), exc_info=err)
        with self._lock:
            self._errors.append((runnable, err))
        self._wake.set()

    def _launch(self, runnable: Runnable, leader: bool) -> None:
        rt = _RunnableThread(runnable, self._leader_stop if leader else self._runnable_stop, self._on_error)
        with self._lock:
            (self._leader_threads if leader else self._threads).append(rt)
        rt.thread.start()

    def _start_leader_runnables(self) -> None:
        with self._lock:
            if self._stopping:
                return
            self._leading = True
            pending = [r for r in self._runnables if _needs_leader(r)]
        self.elected.set()
        for runnable in pending:
            self._launch(runnable, True)

    def _on_stopped_leading(self) -> None:
        with self._lock:
            was_leading, self._leading = self._leading, False
            stopping = self._stopping
        if was_leading and not stopping:
            log.error("leader election lost", identity=self.identity)
            self._lost.set()
            self._wake.set()

    def _on_fence_lost(self, reason: str) -> None:
        """The write fence closed (on whichever thread noticed): leadership is over, shut down.

        As ``_on_stopped_leading``, a loss during a shutdown already under way is not an error."""
        with self._lock:
            was_leading, stopping = self._leading, self._stopping
        if was_leading and not stopping:
            log.error("leader election lost: writes are fenced", identity=self.identity, reason=reason)
            self._lost.set()
            self._wake.set()

    def _install_fence(self, fence: WriteFence) -> None:
        """Make ``fence.check`` the client's ``write_guard`` (a client without the hook, e.g. a
        test fake, is left unfenced). Two fences on one client would let one manager's lease
        block another's writes, so a client that already has a guard is refused."""
        if not hasattr(self.client, "write_guard"):
            log.warning("client has no write_guard hook; writes are not fenced by leader election",
                        client=type(self.client).__name__)
            return
        if self.client.write_guard is not None:
            raise RuntimeError("the client already has a write_guard (another manager's?); give "
                               "each leader-elected manager its own Client")
        self.client.write_guard = fence.check

    def _leader_election_healthy(self) -> bool:
        fence = self.fence
        if fence is None or fence.state == WriteFence.OPEN:
            return True  # not leading: a standby is healthy
        if fence.state == WriteFence.LOST or not fence.holds():
            raise RuntimeError("the leader lease was not renewed within the renew deadline")
        return True

    def _leader_election_namespace(self) -> str:
        ns = (self.options.leader_election_namespace or _in_cluster_namespace()
              or self.options.namespace)
        if not ns:
            raise ValueError("leader_election_namespace is required when not running in a cluster")
        return ns

    def _start_servers(self) -> None:
        opts = self.options
        if opts.metrics_bind_address not in ("", "0"):
            server = metrics_server(opts.metrics_bind_address)
            server.start()
            self._servers.append(server)
            self.metrics_address = server.address
        if opts.health_probe_bind_address not in ("", "0"):
            server = health_server(opts.health_probe_bind_address, self._healthz, self._readyz)
            server.start()
            self._servers.append(server)
            self.health_address = server.address

    def start(self, stop: threading.Event | None = None) -> None:
        """Run until stopped; see the module docstring for ordering and what it raises."""
        with self._lock:
            if self._started:
                raise RuntimeError("manager already started")
            self._started = True
        stop = stop or threading.Event()
        if self.options.freeze_startup_heap:
            _freeze_startup_heap()
        restore = self._install_signal_handlers(stop)
        elector_thread: threading.Thread | None = None
        try:
            self._start_servers()
            self._events.start()
            self.cache.start(self._cache_stop)
            with self._lock:
                runnables = list(self._runnables)
            for runnable in runnables:
                if not _needs_leader(runnable):
                    self._launch(runnable, False)
            if self.options.leader_election:
                elector_thread = self._start_election()
            else:
                self._start_leader_runnables()
            self.serving.set()
            while not (stop.is_set() or self._wake.is_set()):
                self._wake.wait(0.05)
        finally:
            try:
                self._shut_down(elector_thread)
            finally:
                restore()
        with self._lock:
            errors = list(self._errors)
        if self._lost.is_set():
            raise LeaderElectionLost(f"lost lease {self.options.leader_election_id}")
        if errors:
            raise errors[0][1]

    def _start_election(self) -> threading.Thread:
        opts = self.options
        lock = LeaseLock(self.client, self._leader_election_namespace(), opts.leader_election_id,
                         self.identity)
        self.fence = WriteFence(opts.renew_deadline, on_lost=self._on_fence_lost,
                                name=opts.leader_election_id)
        self._install_fence(self.fence)
        self._healthz.add("leaderElection", self._leader_election_healthy)
        self._elector = LeaderElector(
            lock, lease_duration=opts.lease_duration, renew_deadline=opts.renew_deadline,
            retry_period=opts.retry_period, name=opts.leader_election_id, fence=self.fence,
            callbacks=LeaderCallbacks(on_started_leading=self._start_leader_runnables,
                                      on_stopped_leading=self._on_stopped_leading))
        self._elector_stop = threading.Event()
        thread = threading.Thread(target=self._elector.run, args=(self._elector_stop,),
                                  name="leader-elector", daemon=True)
        thread.start()
        return thread

    def _shut_down(self, elector_thread: threading.Thread | None) -> None:
        with self._lock:
            self._stopping = True
        lost = self._lost.is_set()
        timeout = 0.0 if lost else self.options.graceful_shutdown_timeout
        log.info("stopping manager; waiting for leader-only runnables", timeout=timeout,
                 lease_lost=lost)
        # The runnables' share of the timeout leaves a tenth (0.3 s to 1 s) for what follows them
        # (caches, events, servers, the process's own exit), so the process is gone within it.
        deadline = time.monotonic() + timeout - min(timeout, 1.0, max(0.3, 0.1 * timeout))
        self._leader_stop.set()
        drained = self._join(self._leader_threads, deadline)
        if elector_thread is not None and self._elector is not None:
            # Release only once nothing of ours can still write as leader.
            self._elector.release_on_cancel = drained
            self._elector_stop.set()
            elector_thread.join(max(0.0, deadline - time.monotonic()))
        self.elected.clear()
        self._runnable_stop.set()
        self._join(self._threads, deadline)
        self._cache_stop.set()
        self._events.shutdown(timeout=min(1.0, max(0.0, deadline - time.monotonic())))
        for server in self._servers:
            server.stop()
        if not drained and not lost:
            err = GracefulShutdownTimeout(
                f"runnables did not finish within {self.options.graceful_shutdown_timeout}s")
            log.error("graceful shutdown timed out")
            with self._lock:
                self._errors.append((self, err))
        log.info("manager stopped")

    @staticmethod
    def _join(threads: list[_RunnableThread], deadline: float) -> bool:
        for rt in list(threads):
            rt.thread.join(max(0.0, deadline - time.monotonic()))
        return not any(rt.thread.is_alive() for rt in threads)

    def _install_signal_handlers(self, stop: threading.Event) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        received: list[int] = []

        def handler(signum: int, frame: FrameType | None) -> None:
            if received:
                # Second signal: the operator asked twice; exit now (controller-runtime does too).
                os._exit(1)
            received.append(signum)
            log.info("received signal; shutting down", signal=signal.Signals(signum).name)
            stop.set()
            self._wake.set()

        previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}

        def restore() -> None:
            for sig, prev in previous.items():
                signal.signal(sig, prev)

        return restore
