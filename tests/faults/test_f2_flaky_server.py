"""F2: a flaky API server (issue 6).

5% of the operator's requests answer 500 or 503 and 2% answer 429 with ``Retry-After: 1``, on
every verb and resource (lists, watches, gets, creates, updates, Events). The operator copies
each ConfigMap's data into an owned Secret while the ConfigMaps keep changing. Then:

* everything converges: every Secret holds its ConfigMap's latest data;
* Retry-After is honoured: every 429 the server sent was followed by a client pause of at least
  the advertised second before the retry (the client's sleep is observed, and every 429 counted on
  the server for our User-Agent is matched by one such pause);
* nothing crashes: the manager keeps running, and no reconcile failed with a programming error.
"""

from __future__ import annotations

import base64
import random
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from rook_py.envtest.environment import Environment
from rook_py.framework import ControllerBuilder, Manager, Request, Result, metrics
from rook_py.framework.client import Client, load_config
from rook_py.framework.client.errors import AlreadyExists
from rook_py.framework.objects import set_controller_reference
from tests.faults.support import ManagerThread, eventually, iterations, manager_options, report

pytestmark = pytest.mark.emulator_only(reason="fault injection: server error rates and latency")

NS = "f2"
OBJECTS = iterations(60, 300)
UPDATES = iterations(200, 1500)
UA = "faults-f2"


class CopyToSecret:
    """Keeps Secret ``<cm>-copy`` (controlled by the ConfigMap) equal to the ConfigMap's data."""

    def __init__(self, client: Client, reader: Any) -> None:
        self.client, self.reader = client, reader

    def reconcile(self, request: Request) -> Result | None:
        cm = self.reader.get("v1", "ConfigMap", request.name, request.namespace)
        if cm is None:
            return None  # garbage collection removes the Secret
        name = f"{request.name}-copy"
        secret = self.reader.get("v1", "Secret", name, request.namespace)
        data = dict(cm.get("data") or {})
        if secret is None:
            desired: dict[str, Any] = {"apiVersion": "v1", "kind": "Secret",
                                       "metadata": {"name": name, "namespace": request.namespace},
                                       "stringData": data}
            set_controller_reference(cm, desired)
            try:
                self.client.create(desired)
            except AlreadyExists:
                return Result(requeue=True)  # our cache is behind; look again once it caught up
            return None
        encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
        if (secret.get("data") or {}) != encoded:
            self.client.patch("v1", "Secret", name, {"data": encoded}, namespace=request.namespace)
        return None


@pytest.fixture
def env() -> Iterator[Environment]:
    with Environment(backend="emulator", simulate_cluster=False) as e:
        assert e.server is not None
        e.server.local.create("v1", "namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                   "metadata": {"name": NS}})
        yield e


def _panics(controller: str) -> float:
    value = metrics.REGISTRY.get_sample_value("controller_runtime_reconcile_panics_total",
                                              {"controller": controller})
    return value or 0.0


def test_operator_converges_through_5xx_and_429(env: Environment) -> None:
    assert env.server is not None
    local, faults, stats = env.server.local, env.server.faults, env.server.stats
    sleeps: list[float] = []
    sleeps_lock = threading.Lock()

    def observed_sleep(seconds: float) -> None:
        with sleeps_lock:
            sleeps.append(seconds)
        time.sleep(seconds)

    client = Client(load_config(env.kubeconfig), user_agent=UA, sleep=observed_sleep)
    manager = Manager(client, manager_options(namespace=NS))
    reconciler = CopyToSecret(client, manager.reader)
    ControllerBuilder(manager).named("f2").for_("v1", "ConfigMap").owns("v1", "Secret").with_options(
        max_concurrent_reconciles=4).complete(reconciler)
    panics_before = _panics("f2")

    rng = random.Random(2206)
    data: dict[str, str] = {}
    faults.set_error_rates({500: 0.025, 503: 0.025, 429: 0.02})
    # The rates are random; these make sure each kind of answer happens at least once per run.
    faults.fail_next(1, 429, verb="create", resource="secrets", retry_after=1)
    faults.fail_next(1, 503, verb="create", resource="secrets")
    try:
        with ManagerThread(manager) as run:
            for i in range(OBJECTS):
                name = f"cm-{i:04d}"
                data[name] = "0"
                local.create("v1", "configmaps", {"apiVersion": "v1", "kind": "ConfigMap",
                                                  "metadata": {"name": name, "namespace": NS},
                                                  "data": {"v": "0"}}, namespace=NS)
            for _ in range(UPDATES):
                name = rng.choice(sorted(data))
                data[name] = str(rng.randrange(10**6))
                local.patch("v1", "configmaps", name, {"data": {"v": data[name]}}, namespace=NS)
                time.sleep(0.01)

            def converged() -> bool:
                secrets = {s["metadata"]["name"]: s for s in local.list("v1", "secrets", namespace=NS)["items"]}
                return all(
                    f"{n}-copy" in secrets
                    and base64.b64decode(secrets[f"{n}-copy"].get("data", {}).get("v", "")).decode() == v
                    for n, v in data.items())

            eventually(converged, 60, "every Secret holds its ConfigMap's latest data", interval=0.2)
            assert run.alive, run.errors
    finally:
        faults.reset()

    injected = {code: stats.count(user_agent=UA, code=code) for code in (429, 500, 503)}
    total = stats.count(user_agent=UA)
    with sleeps_lock:
        pauses = list(sleeps)
    report("F2", objects=OBJECTS, updates=UPDATES, requests=total, answered_429=injected[429],
           answered_500=injected[500], answered_503=injected[503], client_pauses=len(pauses))
    assert injected[429] >= 1 and injected[500] + injected[503] >= 1, injected
    # Every 429 carried Retry-After: 1 and every one of them was retried after a pause of >= 1 s.
    assert len(pauses) == injected[429], (pauses, injected)
    assert all(p >= 1.0 for p in pauses), pauses
    assert _panics("f2") == panics_before, "a reconcile failed with a programming error"
