"""The simulated cluster: what kube-controller-manager, kube-scheduler and the kubelets would do.

``SimulatedCluster(api)`` drives an emulator through its in-process API (``APIServer.local``, see
docs/architecture.md): events from ``api.subscribe`` are mapped to keys on the dispatcher thread,
one worker thread reconciles them, and a periodic resync re-queues everything as a safety net.
A single worker keeps the controllers from racing one another (the store's resourceVersion checks
would catch it, but retries would make timings noisier for tests).

Controllers (one module each): nodes.py (node registration, kube-scheduler's filters and binding,
the kubelet's pod status, test hooks), gc.py (ownerReference garbage collection), namespaces.py
(namespace finalization), replicaset.py, deployment.py, statefulset.py and daemonset.py (the
workload controllers, which claim their children through controller_ref_manager.py and share
controller_utils.py), volumes.py (PVC binding and expansion), endpoints.py (Service Endpoints).

Test hooks: ``set_pod_not_ready`` / ``set_pod_crashloop`` / ``set_pod_ready`` (or ``set_pod_mode``)
per pod, ``set_node_ready(name, False/True)`` per node; the emulator serves them over HTTP too
(POST /envtest/v1/pods/{ns}/{name}/{ready|notready|crashloop}, /envtest/v1/nodes/{name}/{ready|notready}).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from rook_py.envtest.cluster.base import (
    JSON,
    Controller,
    DelayingQueue,
    Key,
    LocalAPILike,
    read_only_items,
)
from rook_py.envtest.cluster.daemonset import DaemonSetController
from rook_py.envtest.cluster.deployment import DeploymentController
from rook_py.envtest.cluster.endpoints import EndpointsController
from rook_py.envtest.cluster.gc import GarbageCollector
from rook_py.envtest.cluster.namespaces import NamespaceController
from rook_py.envtest.cluster.nodes import (
    NodeController,
    NodeHealth,
    NodeSpec,
    PodLifecycleController,
    default_nodes,
)
from rook_py.envtest.cluster.replicaset import ReplicaSetController
from rook_py.envtest.cluster.statefulset import StatefulSetController
from rook_py.envtest.cluster.volumes import VolumeBinderController
from rook_py.framework.client import errors
from rook_py.framework.logging import get_logger

__all__ = ["NodeSpec", "SimulatedCluster", "default_nodes"]

_log = get_logger(__name__)

# Retry delays after a failed reconcile: short first (a Conflict usually clears at once), capped.
_BACKOFF_BASE = 0.01
_BACKOFF_MAX = 1.0


class SimulatedCluster:
    """Nodes, scheduler, kubelets, PV binding, GC, namespace finalization, workload controllers, Endpoints.

    ``nodes`` is a count of plain workers or explicit ``NodeSpec``s. ``pod_ready_delay`` is how long
    a bound pod stays Pending before the kubelet reports it Running and Ready; ``crash_interval``
    how often a crash-looping pod "restarts"; ``resync_period`` how often every controller re-queues
    all its objects. Invariant: after ``start()`` returns, the nodes exist and every later committed
    event reaches the controllers.
    """

    def __init__(self, api: LocalAPILike, *, nodes: int | Sequence[NodeSpec] = 3,
                 pod_ready_delay: float = 0.05, crash_interval: float = 0.2,
                 resync_period: float = 5.0) -> None:
        self.api = api
        self.nodes: list[NodeSpec] = default_nodes(nodes) if isinstance(nodes, int) else list(nodes)
        self.resync_period = resync_period
        self.gc = GarbageCollector(api)
        self.health = NodeHealth()
        self.pods = PodLifecycleController(api, self.nodes, ready_delay=pod_ready_delay,
                                           crash_interval=crash_interval, health=self.health)
        self.controllers: dict[str, Controller] = {c.name: c for c in (
            NodeController(api, self.nodes, self.health), self.pods, VolumeBinderController(api), self.gc,
            NamespaceController(api), ReplicaSetController(api), DeploymentController(api),
            StatefulSetController(api), DaemonSetController(api), EndpointsController(api),
        )}
        self._queue = DelayingQueue()
        self._failures: dict[tuple[str, Key], int] = {}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._unsubscribe: object = None
        self._busy = threading.Event()
        self.reconcile_errors = 0

    # lifecycle -----------------------------------------------------------------------------------
    def start(self) -> SimulatedCluster:
        self._unsubscribe = self.api.subscribe(self._on_event)  # first, so nothing falls between
        for key in self.gc.prime():
            self._queue.add((self.gc.name, key))
        for name, controller in self.controllers.items():
            if controller is not self.gc:
                for key in controller.resync():
                    self._queue.add((name, key))
        self._reconcile_nodes_now()
        for target, name in ((self._work, "envtest-cluster-worker"), (self._resync_loop, "envtest-cluster-resync")):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def _reconcile_nodes_now(self) -> None:
        nodes = self.controllers["nodes"]
        for key in nodes.resync():
            nodes.reconcile(key)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if callable(self._unsubscribe):
            self._unsubscribe()
        self._queue.close()
        for t in self._threads:
            t.join(timeout)
        self._threads.clear()

    def __enter__(self) -> SimulatedCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # test hooks ----------------------------------------------------------------------------------
    def set_pod_ready(self, namespace: str, name: str) -> None:
        """Undo a not-ready or crash-loop override: the kubelet reports the pod Ready again."""
        self._set_pod_mode(namespace, name, None)

    def set_pod_not_ready(self, namespace: str, name: str) -> None:
        """The pod keeps Running but its containers report not ready (a failing readiness probe)."""
        self._set_pod_mode(namespace, name, "notready")

    def set_pod_crashloop(self, namespace: str, name: str) -> None:
        """The pod's containers crash repeatedly: restartCount grows, waiting CrashLoopBackOff."""
        self._set_pod_mode(namespace, name, "crashloop")

    def set_pod_mode(self, namespace: str, name: str, mode: str) -> None:
        """``mode`` is "ready", "notready" or "crashloop" (the control endpoint's vocabulary)."""
        if mode not in ("ready", "notready", "crashloop"):
            raise ValueError(f"unknown pod mode {mode!r}; use ready, notready or crashloop")
        self._set_pod_mode(namespace, name, None if mode == "ready" else mode)

    def _set_pod_mode(self, namespace: str, name: str, mode: str | None) -> None:
        self.api.get("v1", "pods", name, namespace)  # NotFound for a pod that does not exist
        self.pods.set_override(namespace, name, mode)
        self._queue.add((self.pods.name, ("v1", "pods", namespace, name)))

    def set_node_ready(self, name: str, ready: bool) -> None:
        """Stop (False) or resume (True) the simulated kubelet of node ``name``: the node turns Ready
        Unknown with the unreachable taints, and its pods turn not Ready; True undoes it."""
        if name not in {n.name for n in self.nodes}:
            raise ValueError(f"{name!r} is not a simulated node")
        self.health.set_ready(name, ready)
        self._queue.add(("nodes", ("v1", "nodes", "", name)))
        for pod in read_only_items(self.api, "v1", "pods", field_selector=f"spec.nodeName={name}"):
            m = pod.get("metadata") or {}
            self._queue.add((self.pods.name, ("v1", "pods", m.get("namespace") or "", m.get("name") or "")))

    def wait_idle(self, timeout: float = 5.0, settle: float = 0.02) -> bool:
        """True once no reconcile is due or running for ``settle`` seconds (delayed keys may wait)."""
        deadline = time.monotonic() + timeout
        quiet_since: float | None = None
        while time.monotonic() < deadline:
            if self._queue.due_now() == 0 and not self._busy.is_set():
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since >= settle:
                    return True
            else:
                quiet_since = None
            time.sleep(0.005)
        return False

    # plumbing ------------------------------------------------------------------------------------
    def _on_event(self, event_type: str, api_version: str, resource: str, obj: JSON) -> None:
        for name, controller in self.controllers.items():
            try:
                keys = controller.on_event(event_type, api_version, resource, obj)
                for key in keys:
                    self._queue.add((name, key))
            except Exception:  # one controller's mapping bug must not starve the others
                _log.exception("event mapping failed", controller=name, resource=resource)

    def _resync_loop(self) -> None:
        while not self._stop.wait(self.resync_period):
            for name, controller in self.controllers.items():
                try:
                    for key in controller.resync():
                        self._queue.add((name, key))
                except errors.ApiError:
                    _log.warning("resync failed", controller=name)

    def _work(self) -> None:
        while not self._stop.is_set():
            item = self._queue.get()
            if item is None:
                return
            name, key = item
            self._busy.set()
            try:
                again = self.controllers[name].reconcile(key)
                self._failures.pop(item, None)
                if again is not None:
                    self._queue.add(item, again)
            except Exception as exc:
                failures = self._failures.get(item, 0) + 1
                self._failures[item] = failures
                self.reconcile_errors += 1
                delay = min(_BACKOFF_MAX, _BACKOFF_BASE * 2 ** (failures - 1))
                if isinstance(exc, errors.Conflict | errors.AlreadyExists | errors.NotFound):
                    _log.debug("reconcile retry", controller=name, key=key, error=str(exc))
                else:
                    _log.warning("reconcile failed", controller=name, key=key, error=repr(exc))
                self._queue.add(item, delay)
            finally:
                self._busy.clear()
