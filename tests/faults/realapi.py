"""Helpers for the fault tests on a real control plane (F7-F10, issue 15): etcd + kube-apiserver
from ``KUBEBUILDER_ASSETS`` (skipped with a clear reason without it), an operator process that a
supervisor restarts when it exits (as the kubelet restarts a container), and kube-apiserver's
audit log read as the server's record of who wrote what, when.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from rook_py.envtest.environment import Environment
from rook_py.envtest.realcluster import find_binaries
from tests.faults.support import Process

JSON = dict[str, Any]
WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})

requires_real_api = pytest.mark.skipif(
    find_binaries() is None,
    reason="F7-F10 run on a real etcd + kube-apiserver: set KUBEBUILDER_ASSETS (e.g. to "
           "../shared/envtest-assets) to run them")


def wall_now() -> datetime:
    return datetime.now(UTC)


def audit_time(event: JSON, field: str = "requestReceivedTimestamp") -> datetime:
    return datetime.fromisoformat(str(event[field]).replace("Z", "+00:00"))


def writes(events: list[JSON], *, agent: str | None = None, since: datetime | None = None,
           resource: str | None = None) -> list[JSON]:
    """Mutating requests kube-apiserver received (optionally from one User-Agent, at or after
    ``since``, on one resource), as its audit log records them."""
    out = []
    for event in events:
        if event.get("verb") not in WRITE_VERBS:
            continue
        if agent is not None and event.get("userAgent") != agent:
            continue
        if resource is not None and (event.get("objectRef") or {}).get("resource") != resource:
            continue
        if since is not None and audit_time(event) < since:
            continue
        out.append(event)
    return out


def count_by_agent(events: list[JSON]) -> dict[str, int]:
    return dict(Counter(str(e.get("userAgent")) for e in events))


class Supervisor:
    """Keeps one operator process running: when it exits it is started again at once (the
    kubelet's restart, without its crash-loop backoff). ``exits`` records each exit code."""

    def __init__(self, module: str, args: list[str], kubeconfig: str) -> None:
        self.module, self.args, self.kubeconfig = module, args, kubeconfig
        self.exits: list[int | None] = []
        self.outputs: list[list[str]] = []
        self.reported: list[list[str]] = []  # per exited process, the reports it made
        self.process = Process(module, args, kubeconfig)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._watch, name="supervisor", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.is_set():
            code = self.process.proc.poll()
            if code is None:
                time.sleep(0.05)
                continue
            self.process._reader.join(5)
            names = []
            while not self.process.reports.empty():
                item = self.process.reports.get_nowait()
                if item is not None:
                    names.append(str(item.get("fault")))
            self.process.reports.put(None)
            with self._lock:
                self.exits.append(code)
                self.outputs.append(list(self.process.output[-20:]))
                self.reported.append(names)
                if self._stop.is_set():
                    return
                self.process = Process(self.module, self.args, self.kubeconfig)

    def expect(self, name: str, timeout: float) -> JSON:
        return self.process.expect(name, timeout)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        with self._lock:
            self.process.kill()

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def time_until(fn: Callable[[], object], timeout: float, interval: float = 0.02) -> float | None:
    """Seconds until ``fn()`` is truthy (polled), or None after ``timeout``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if fn():
            return time.monotonic() - started
        time.sleep(interval)
    return None


def relists_after(events: list[JSON], agent: str, since: datetime) -> dict[str, JSON]:
    """Per resource, the first LIST ``agent`` sent at or after ``since`` and the watch of that
    resource the server ended last before it (its stageTimestamp is when the server answered the
    watch, e.g. with 410), from kube-apiserver's audit log: ``{"list_at", "watch_ended_at"}``."""
    out: dict[str, JSON] = {}
    ordered = sorted((e for e in events if e.get("userAgent") == agent),
                     key=lambda e: audit_time(e))
    for event in ordered:
        resource = (event.get("objectRef") or {}).get("resource")
        if event.get("verb") != "list" or not resource or resource in out or audit_time(event) < since:
            continue
        ended = [audit_time(w, "stageTimestamp") for w in ordered
                 if w.get("verb") == "watch" and w.get("stage") == "ResponseComplete"
                 and (w.get("objectRef") or {}).get("resource") == resource
                 and audit_time(w, "stageTimestamp") <= audit_time(event)]
        out[resource] = {"list_at": audit_time(event), "watch_ended_at": max(ended) if ended else None}
    return out


@pytest.fixture(scope="session")
def real_control_plane() -> Iterator[Environment]:
    """One etcd + kube-apiserver (watch cache on, audit log on) shared by F7, F8 and F10: each
    test uses its own namespaces and leaves the server running and thawed. Starting one costs
    5-10 s on a loaded 2-core machine, so the suite starts it once."""
    if find_binaries() is None:
        pytest.skip("needs KUBEBUILDER_ASSETS")
    with Environment(backend="real", audit=True) as env:
        yield env
