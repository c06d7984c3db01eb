"""Fixtures and helpers shared by the simulated-cluster tests.

``api`` runs each test twice: against the small in-memory fake (fast, pins the controllers'
contract) and against the real emulator's LocalAPI (what users get).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest

from rook_py.envtest.apiserver.server import APIServer
from rook_py.envtest.cluster import NodeSpec, SimulatedCluster
from tests.envtest.fakeapi import FakeLocalAPI
from tests.support import waiting

T = TypeVar("T")

NODES = [
    NodeSpec("node-a", labels={"zone": "a", "role": "storage"}),
    NodeSpec("node-b", labels={"zone": "b", "role": "storage"}),
    NodeSpec("node-c", labels={"zone": "c"}, taints=[{"key": "dedicated", "value": "infra", "effect": "NoSchedule"}]),
]


@pytest.fixture(params=["fake", "emulator"])
def api(request: pytest.FixtureRequest) -> Iterator[Any]:
    if request.param == "fake":
        fake = FakeLocalAPI()
        fake.create("v1", "namespaces", {"metadata": {"name": "default"}})
        yield fake
        fake.close()
        return
    server = APIServer(tls=False)  # the tests use LocalAPI only
    server.start()
    try:
        try:
            server.local.get("v1", "namespaces", "default")
        except Exception:
            server.local.create("v1", "namespaces", {"metadata": {"name": "default"}})
        yield server.local
    finally:
        server.stop()


@pytest.fixture
def cluster(api: Any) -> Iterator[SimulatedCluster]:
    sim = SimulatedCluster(api, nodes=NODES, pod_ready_delay=0.02, crash_interval=0.05, resync_period=0.5)
    sim.start()
    try:
        yield sim
    finally:
        sim.stop()


def eventually(fn: Callable[[], T | None], timeout: float = 10.0, interval: float = 0.01,
               what: str = "condition") -> T:
    """``tests.support.waiting.eventually`` at the simulator's pace; any exception (NotFound
    before a controller has created the object) means "not yet"."""
    return waiting.eventually(fn, timeout, interval=interval, ignore=(Exception,), what=what)


def items(api: Any, api_version: str, resource: str, namespace: str | None = None,
          label_selector: str | None = None) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = api.list(api_version, resource, namespace,
                                            label_selector=label_selector).get("items") or []
    return result


def names(objs: list[dict[str, Any]]) -> list[str]:
    return sorted(o["metadata"]["name"] for o in objs)


def pod_template(labels: dict[str, str], image: str = "nginx:1.25", **spec: Any) -> dict[str, Any]:
    return {"metadata": {"labels": labels},
            "spec": {"containers": [{"name": "main", "image": image}], **spec}}
