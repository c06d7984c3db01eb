"""F1: dropped watches and 410 Gone during churn (issue 6).

While objects are created, updated and deleted, a disruptor ends every watch stream every
``DISRUPT_EVERY`` seconds and compacts the history, so the reflector's resume answers 410 and it
must relist. Each disruption also deletes a few objects *while the watch is down* (the re-watch is
held back by injected latency), so those deletions can only be learnt from the relist and reach the
handlers as ``DeletedFinalStateUnknown`` -- client-go's tools/cache/delta_fifo.go ``Replace``.

At the end:
* the informer cache equals the server's list exactly (keys and resourceVersions);
* every deleted object that a handler had seen added got exactly one delete notification, no object
  got two, no live object got one; some of them were DeletedFinalStateUnknown;
* the last reconcile of every live object read its last resourceVersion from the cache.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from rook_py.envtest.environment import Environment
from rook_py.framework import ControllerBuilder, Manager, Request, Result
from rook_py.framework.cache import (
    Backoff,
    DeletedFinalStateUnknown,
    SharedInformerFactory,
    meta_namespace_key,
)
from tests.faults.support import ManagerThread, eventually, iterations, manager_options, report

pytestmark = pytest.mark.emulator_only(reason="fault injection: dropped watch streams and history compaction")

NS = "f1"
OBJECTS = iterations(150, 1000)
CHURN_SECONDS = iterations(4, 30)
DISRUPT_EVERY = (0.4, 1.0) if OBJECTS < 1000 else (1.0, 3.0)
SEED = 1106


class Notifications:
    """Counts handler notifications per key."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.adds: Counter[str] = Counter()
        self.deletes: Counter[str] = Counter()
        self.unknown: Counter[str] = Counter()   # deletes delivered as DeletedFinalStateUnknown

    def on_add(self, obj: Any, is_initial_list: bool) -> None:
        with self.lock:
            self.adds[meta_namespace_key(obj)] += 1

    def on_update(self, old: Any, new: Any) -> None:
        pass

    def on_delete(self, obj: Any) -> None:
        with self.lock:
            if isinstance(obj, DeletedFinalStateUnknown):
                self.deletes[obj.key] += 1
                self.unknown[obj.key] += 1
            else:
                self.deletes[meta_namespace_key(obj)] += 1


class LastSeen:
    """A reconciler noting, per key, the resourceVersion it read from the cache."""

    def __init__(self, reader: Any) -> None:
        self.reader = reader
        self.lock = threading.Lock()
        self.seen: dict[str, str | None] = {}

    def reconcile(self, request: Request) -> Result | None:
        obj = self.reader.get("v1", "ConfigMap", request.name, request.namespace)
        with self.lock:
            self.seen[f"{request.namespace}/{request.name}"] = obj["metadata"]["resourceVersion"] if obj else None
        return None


@pytest.fixture
def env() -> Iterator[Environment]:
    with Environment(backend="emulator", simulate_cluster=False, history_size=5000) as e:
        assert e.server is not None
        e.server.local.create("v1", "namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                   "metadata": {"name": NS}})
        yield e


def _churn(env: Environment, rng: random.Random, deleted: set[str], lock: threading.Lock) -> None:
    """Create OBJECTS ConfigMaps over CHURN_SECONDS, updating and deleting older ones as it goes."""
    assert env.server is not None
    local = env.server.local
    live: list[str] = []
    pace = CHURN_SECONDS / OBJECTS
    for i in range(OBJECTS):
        name = f"cm-{i:05d}"
        local.create("v1", "configmaps", {"apiVersion": "v1", "kind": "ConfigMap",
                                          "metadata": {"name": name, "namespace": NS}, "data": {"v": "0"}},
                     namespace=NS)
        live.append(name)
        for _ in range(2):
            target = rng.choice(live)
            with lock:  # the disruptor may have deleted it
                if f"{NS}/{target}" not in deleted:
                    local.patch("v1", "configmaps", target, {"data": {"v": str(rng.randrange(10**6))}},
                                namespace=NS)
        if len(live) > 10 and rng.random() < 0.3:
            victim = live.pop(rng.randrange(len(live) - 5))  # never the newest few
            with lock:
                if f"{NS}/{victim}" not in deleted:
                    _delete(env, victim, deleted)
        time.sleep(pace)


def _delete(env: Environment, name: str, deleted: set[str]) -> None:
    assert env.server is not None
    env.server.local.delete("v1", "configmaps", name, namespace=NS)
    deleted.add(f"{NS}/{name}")


def _disrupt(env: Environment, rng: random.Random, stop: threading.Event, deleted: set[str],
             lock: threading.Lock, counts: Counter[str]) -> None:
    """Every DISRUPT_EVERY s: hold re-watches back, end every watch, delete a few, compact."""
    assert env.server is not None
    faults, local = env.server.faults, env.server.local
    while not stop.wait(rng.uniform(*DISRUPT_EVERY)):
        with lock:
            faults.set_latency(0.3, verb="watch", resource="configmaps")
            counts["closed"] += faults.close_watches()
            names = [o["metadata"]["name"] for o in local.list("v1", "configmaps", namespace=NS)["items"]]
            for name in rng.sample(names[:-5], min(3, max(0, len(names) - 5))):
                _delete(env, name, deleted)
            faults.compact()
            counts["compactions"] += 1
            time.sleep(0.05)  # the delayed re-watch is now in flight with a compacted resourceVersion
            faults.reset()


def test_cache_and_notifications_survive_dropped_watches_and_410(env: Environment) -> None:
    assert env.server is not None
    client = env.client(user_agent="faults-f1")
    factory = SharedInformerFactory(client, namespace=NS, informer_options={
        "reflector_options": {"backoff": Backoff(initial=0.05, cap=0.5)}})
    manager = Manager(client, manager_options(namespace=NS), cache=factory)
    notes = Notifications()
    informer = factory.informer("v1", "ConfigMap")
    informer.add_event_handler(notes)
    reconciler = LastSeen(manager.reader)
    ControllerBuilder(manager).named("f1").for_("v1", "ConfigMap").with_options(
        max_concurrent_reconciles=4).complete(reconciler)

    rng = random.Random(SEED)
    deleted: set[str] = set()
    lock = threading.Lock()
    counts: Counter[str] = Counter()
    stop = threading.Event()
    with ManagerThread(manager) as run:
        disruptor = threading.Thread(target=_disrupt, args=(env, random.Random(SEED + 1), stop, deleted, lock,
                                                            counts), daemon=True)
        disruptor.start()
        try:
            _churn(env, rng, deleted, lock)
        finally:
            stop.set()
            disruptor.join(10)
        local = env.server.local

        def server_state() -> dict[str, str]:
            return {f"{NS}/{o['metadata']['name']}": o["metadata"]["resourceVersion"]
                    for o in local.list("v1", "configmaps", namespace=NS)["items"]}

        def cache_state() -> dict[str, str]:
            return {meta_namespace_key(o): o["metadata"]["resourceVersion"] for o in informer.indexer.list()}

        expected = server_state()
        eventually(lambda: cache_state() == expected, 30, "informer cache equals the server's list")

        def reconciled_last_versions() -> bool:
            with reconciler.lock:
                return all(reconciler.seen.get(k) == rv for k, rv in expected.items())

        eventually(reconciled_last_versions, 30, "last reconcile of every live object saw its last version")
        assert run.alive, run.errors

    with notes.lock:
        adds, deletes, unknown = Counter(notes.adds), Counter(notes.deletes), Counter(notes.unknown)
    report("F1", objects=OBJECTS, deleted=len(deleted), live=len(expected), watches_closed=counts["closed"],
           compactions=counts["compactions"], relists=informer.reflector.lists,
           delete_notifications=sum(deletes.values()), as_deleted_final_state_unknown=sum(unknown.values()),
           deleted_never_seen=len(deleted - set(adds)))
    assert counts["compactions"] >= 2, counts
    assert informer.reflector.lists >= 2, "the 410s must have forced relists"
    assert max(adds.values()) == 1, "an object was added twice"
    assert all(n == 1 for n in deletes.values()), {k: n for k, n in deletes.items() if n != 1}
    assert not set(deletes) & set(expected), "a live object got a delete notification"
    seen_and_deleted = {k for k in deleted if adds[k]}
    assert {k for k in seen_and_deleted if deletes[k] != 1} == set(), "a seen object was deleted silently"
    assert set(deletes) <= deleted
    assert set(adds) - set(deletes) == set(expected), "every live object was added once and is still cached"
    assert len(deleted) >= OBJECTS // 5
    assert sum(unknown.values()) >= 1, "no deletion reached the handlers as DeletedFinalStateUnknown"
