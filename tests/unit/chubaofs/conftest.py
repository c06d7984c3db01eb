"""Fixtures for the ChubaoFS unit tests: a ChubaoMonitor, a fake cluster, a reconciler."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from rook_py.chubaofs.api import types as t
from rook_py.chubaofs.api.defaults import with_defaults
from rook_py.chubaofs.monitor.common import MonitorContext
from rook_py.chubaofs.monitor.controller import MonitorReconciler
from rook_py.framework.controller import Request
from tests.unit.chubaofs.fakes import FakeCluster

JSON = dict[str, Any]


def make_monitor(spec: JSON | None = None, name: str = "mon", namespace: str = "ns") -> JSON:
    return {"apiVersion": t.API_VERSION, "kind": t.KIND,
            "metadata": {"name": name, "namespace": namespace, "uid": "uid-1", "generation": 1,
                         "resourceVersion": "1"},
            "spec": copy.deepcopy(spec) if spec is not None else {"cluster": {"name": "cfs"}}}


def make_ctx(spec: JSON | None = None) -> MonitorContext:
    monitor = make_monitor(spec)
    return MonitorContext(monitor, with_defaults(monitor["spec"]))


class Harness:
    """A reconciler wired to a fake cluster, a mock recorder and a mock reloader."""

    def __init__(self, mocker: Any, *, reload_failures: list[str] | None = None,
                 settle: float = 0.0, cleanup_attempts: int = 3) -> None:
        self.cluster = FakeCluster()
        self.recorder = mocker.Mock()
        self.reloader = mocker.Mock()
        self.reloader.reload.return_value = list(reload_failures or [])
        self.reconciler = MonitorReconciler(self.cluster, self.cluster.reader, self.recorder,
                                            reloader=self.reloader, settle_seconds=settle,
                                            operator_targets=("rook-chubaofs-operator.rook.svc:8080",),
                                            cleanup_attempts=cleanup_attempts, cleanup_backoff=0.5)

    def create_monitor(self, spec: JSON | None = None, name: str = "mon") -> JSON:
        monitor = make_monitor(spec, name)
        for key in ("uid", "generation", "resourceVersion"):
            del monitor["metadata"][key]
        return self.cluster.create(monitor)

    def monitor(self, name: str = "mon") -> JSON:
        return self.cluster.obj(t.KIND, name)

    def edit_spec(self, mutate: Any, name: str = "mon") -> None:
        current = copy.deepcopy(self.monitor(name))
        mutate(current["spec"])
        self.cluster.update(current)

    def reconcile(self, name: str = "mon") -> Any:
        return self.reconciler.reconcile(Request("ns", name))

    def events(self, reason: str | None = None) -> list[tuple[str, str, str]]:
        found = [(c.args[1], c.args[2], c.args[3]) for c in self.recorder.event.call_args_list]
        return [e for e in found if reason is None or e[1] == reason]

    def converge(self, name: str = "mon") -> None:
        """Install, let every workload become ready, and settle the status."""
        self.reconcile(name)
        self.cluster.make_workloads_ready()
        self.reconcile(name)

    def condition(self, type_: str, name: str = "mon") -> JSON | None:
        for cond in (self.monitor(name).get("status") or {}).get("conditions") or []:
            if cond["type"] == type_:
                return dict(cond)
        return None


@pytest.fixture
def harness(mocker: Any) -> Harness:
    return Harness(mocker)
