"""F9: etcd compaction under churn, and an informer frozen past compaction (issue 15), on a real
control plane -- F1's checks, against etcd's own history instead of the emulator's.

kube-apiserver runs with ``--watch-cache=false`` here, so watches are served by etcd itself and
a compaction reaches them as it would reach any resourceVersion older than what the server keeps
(with the watch cache on, its own event window, minutes of history, hides a compaction from
watchers; F7 covers the watch cache's 410 after a restart). While ConfigMaps are created,
updated and deleted, etcd is compacted every few seconds, the informer's watches end every 1-2 s
(a short server timeout) and resume from their resourceVersion, which a compaction may already
have removed: 410, relist. In the middle the informer's process is frozen (SIGSTOP) for longer
than several compactions while objects are deleted; when it resumes, its resourceVersion is
gone, and those deletes can only be learnt from the relist, as DeletedFinalStateUnknown.

At the end: the informer's cache equals the server's list (keys and resourceVersions); every
object the handler saw added and that was deleted got exactly one delete; none got two; no live
object got one; the informer relisted.
"""

from __future__ import annotations

import random
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from rook_py.envtest.environment import Environment
from rook_py.framework.client import errors
from tests.faults.realapi import requires_real_api
from tests.faults.support import Process, iterations, report

pytestmark = requires_real_api

NS = "f9"
OBJECTS = iterations(120, 600)
CHURN_SECONDS = iterations(6.0, 30.0)
COMPACT_EVERY = iterations(1.5, 3.0)
FROZEN = iterations(4.0, 10.0)
SEED = 1509


@pytest.fixture(scope="module")
def env() -> Iterator[Environment]:
    with Environment(backend="real", apiserver_args=["--watch-cache=false"]) as e:
        e.client().create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
        yield e


def churn(client: Any, rng: random.Random, deleted: set[str], lock: threading.Lock,
          stop: threading.Event) -> None:
    live: list[str] = []
    pace = CHURN_SECONDS / OBJECTS
    for i in range(OBJECTS):
        if stop.is_set():
            return
        name = f"cm-{i:05d}"
        client.create({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": name, "namespace": NS}, "data": {"v": "0"}})
        live.append(name)
        target = rng.choice(live)
        client.patch("v1", "ConfigMap", target, {"data": {"v": str(rng.randrange(10**6))}}, namespace=NS)
        if len(live) > 10 and rng.random() < 0.35:
            victim = live.pop(rng.randrange(len(live) - 5))  # never the newest few
            client.delete("v1", "ConfigMap", victim, NS)
            with lock:
                deleted.add(f"{NS}/{victim}")
        time.sleep(pace)


def state(proc: Process) -> dict[str, Any]:
    proc.proc.send_signal(signal.SIGUSR1)
    return proc.expect("state", 10)


def test_informer_survives_compaction_under_churn_and_a_freeze_past_it(env: Environment) -> None:
    client = env.client(user_agent="f9-churn")
    plane = env.control_plane
    deleted: set[str] = set()
    lock = threading.Lock()
    stop = threading.Event()
    compactions = [0]

    def compact() -> None:
        while not stop.wait(COMPACT_EVERY):
            plane.compact_etcd()
            compactions[0] += 1

    with Process("tests.faults.informer_process", ["--namespace", NS, "--min-watch-timeout", "1"],
                 env.kubeconfig) as informer:
        informer.expect("synced", 60)
        compactor = threading.Thread(target=compact, daemon=True)
        churner = threading.Thread(target=churn, args=(client, random.Random(SEED), deleted, lock, stop),
                                   daemon=True)
        compactor.start()
        churner.start()
        time.sleep(CHURN_SECONDS / 3)
        informer.proc.send_signal(signal.SIGSTOP)
        with lock:
            deleted_before_freeze = set(deleted)
        time.sleep(FROZEN)
        compactions_while_frozen = compactions[0]
        informer.proc.send_signal(signal.SIGCONT)
        churner.join(CHURN_SECONDS * 4)
        stop.set()
        compactor.join(10)
        assert not churner.is_alive()
        plane.compact_etcd()

        def server_state() -> dict[str, str]:
            return {f"{NS}/{o['metadata']['name']}": o["metadata"]["resourceVersion"]
                    for o in client.list("v1", "ConfigMap", NS)["items"]}

        expected = server_state()
        deadline = time.monotonic() + 30
        while True:
            got = state(informer)
            if got["cache"] == expected or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    adds, deletes, unknown = got["adds"], got["deletes"], got["unknown"]
    with lock:
        deleted_during_freeze = deleted - deleted_before_freeze
    report("F9", objects=OBJECTS, deleted=len(deleted), live=len(expected), compactions=compactions[0] + 1,
           frozen_s=FROZEN, deleted_while_frozen=len(deleted_during_freeze), relists=got["lists"] - 1,
           delete_notifications=sum(deletes.values()),
           as_deleted_final_state_unknown=sum(unknown.values()),
           deleted_never_seen=len(deleted - set(adds)))
    assert got["cache"] == expected, "the informer's cache differs from the server's list"
    assert compactions_while_frozen >= 2
    assert got["lists"] >= 2, "a compaction past the frozen informer's resourceVersion must force a relist"
    assert max(adds.values()) == 1, "an object was added twice"
    assert all(n == 1 for n in deletes.values()), {k: n for k, n in deletes.items() if n != 1}
    assert not set(deletes) & set(expected), "a live object got a delete notification"
    assert {k for k in deleted if k in adds and deletes.get(k) != 1} == set(), "a seen object was deleted silently"
    assert set(adds) - set(deletes) == set(expected)
    if deleted_during_freeze & set(adds):
        assert sum(unknown.values()) >= 1, "deletes missed while frozen must arrive as DeletedFinalStateUnknown"


def test_a_watch_from_a_compacted_revision_is_refused(env: Environment) -> None:
    """The premise: etcd's compaction is what the informer's resume runs into."""
    client = env.client()
    rv = client.list("v1", "ConfigMap", NS)["metadata"]["resourceVersion"]
    for name in ("x", "y"):  # a watch from rv starts at rv+1: compact past that
        client.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": NS}})
    env.control_plane.compact_etcd()
    with pytest.raises(errors.Gone):
        for _ in client.watch("v1", "ConfigMap", NS, resource_version=rv, timeout_seconds=2):
            break
