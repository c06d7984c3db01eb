"""F3: a stalled watch -- the connection stays open and no byte arrives (issue 6).

The reflector asks the server to end each watch after ``timeoutSeconds`` drawn from
[MIN_WATCH, 2*MIN_WATCH) and reads with a client timeout ``READ_MARGIN`` above that (client-go
reflector.go does the same with its ``timeoutSeconds`` and the transport's read timeout), so a
healthy quiet watch ends cleanly and only a dead one hits the read timeout. The configured bound
for noticing a dead watch is therefore ``2*MIN_WATCH + READ_MARGIN``.

The emulator stalls every open watch while objects keep being created: the client's read timeout
must end the silent stream within that bound, the re-opened watch must deliver what was missed,
and once the stall ends everything created meanwhile is in the cache.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from rook_py.envtest.environment import Environment
from rook_py.framework.cache import Backoff, ClientListerWatcher, SharedIndexInformer
from rook_py.framework.client import errors
from tests.faults.support import eventually, iterations, report

pytestmark = pytest.mark.emulator_only(reason="fault injection: watch streams that stall")

NS = "f3"
MIN_WATCH = 1.0
READ_MARGIN = 1.0
BOUND = 2 * MIN_WATCH + READ_MARGIN
SLACK = 3.0          # scheduling on a loaded 2-core CI machine; the bound itself is what we check
STALLS = iterations(2, 10)


class ObservedStreams:
    """A ListerWatcher that records how each watch stream ended (cleanly, or with which error)."""

    def __init__(self, inner: ClientListerWatcher) -> None:
        self.inner = inner
        self.lock = threading.Lock()
        self.ends: list[tuple[float, str]] = []

    def list(self, *, limit: int | None, continue_: str | None, resource_version: str | None = None) -> Any:
        return self.inner.list(limit=limit, continue_=continue_, resource_version=resource_version)

    def watch(self, *, resource_version: str | None, timeout_seconds: int, read_timeout: float) -> Any:
        stream = self.inner.watch(resource_version=resource_version, timeout_seconds=timeout_seconds,
                                  read_timeout=read_timeout)
        outer = self

        class Stream:
            def __iter__(self) -> Iterator[Any]:
                try:
                    yield from stream
                except errors.ApiError as exc:
                    outer._end(type(exc).__name__)
                    raise
                outer._end("eof")

            def close(self) -> None:
                stream.close()

        return Stream()

    def _end(self, how: str) -> None:
        with self.lock:
            self.ends.append((time.monotonic(), how))

    def read_timeouts_since(self, t: float) -> int:
        with self.lock:
            return sum(1 for at, how in self.ends if at >= t and how == "TransportError")


@pytest.fixture
def env() -> Iterator[Environment]:
    with Environment(backend="emulator", simulate_cluster=False) as e:
        assert e.server is not None
        e.server.local.create("v1", "namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                   "metadata": {"name": NS}})
        yield e


def test_stalled_watch_is_detected_and_restarted_within_bound(env: Environment) -> None:
    assert env.server is not None
    local, faults = env.server.local, env.server.faults
    client = env.client(user_agent="faults-f3")
    streams = ObservedStreams(ClientListerWatcher(client, "v1", "ConfigMap", namespace=NS))
    informer = SharedIndexInformer(streams, name="f3", reflector_options={
        "min_watch_timeout": MIN_WATCH, "read_timeout_margin": READ_MARGIN,
        "backoff": Backoff(initial=0.05, cap=0.2)})
    stop = threading.Event()
    runner = threading.Thread(target=informer.run, args=(stop,), daemon=True)
    runner.start()
    delays: list[float] = []
    try:
        assert informer.wait_for_sync(10)
        for i in range(STALLS):
            faults.stall_watches()   # until reset: a watch goes silent at its next event, connection kept
            started = time.monotonic()
            # A steady trickle of changes, so whichever watch is open has an event to (not) deliver.
            names: list[str] = []
            trickle_stop = threading.Event()

            def trickle(round_: int = i, out: list[str] = names, until: threading.Event = trickle_stop) -> None:
                k = 0
                while not until.wait(0.1):
                    name = f"stall{round_}-{k:03d}"
                    local.create("v1", "configmaps", {"apiVersion": "v1", "kind": "ConfigMap",
                                                      "metadata": {"name": name, "namespace": NS}}, namespace=NS)
                    out.append(name)
                    k += 1

            producer = threading.Thread(target=trickle, daemon=True)
            producer.start()
            try:
                eventually(lambda since=started: streams.read_timeouts_since(since), BOUND + SLACK,
                           "a stalled watch ended by the client read timeout")
                detected = time.monotonic() - started
                first = f"stall{i}-000"
                eventually(lambda n=first: informer.indexer.get_by_key(f"{NS}/{n}"), BOUND + SLACK,
                           f"{first} reached the cache through a re-opened watch")
                delays.append(detected)
            finally:
                trickle_stop.set()
                producer.join(5)
            faults.reset()
            # Healthy again: everything created during the stall, and a later change, arrive.
            last = names[-1]
            local.patch("v1", "configmaps", last, {"data": {"after": "reset"}}, namespace=NS)
            eventually(lambda n=last: (informer.indexer.get_by_key(f"{NS}/{n}") or {}).get("data"), 10,
                       "an update after the stall ended")
            assert all(informer.indexer.get_by_key(f"{NS}/{n}") for n in names)
    finally:
        faults.reset()
        stop.set()
        runner.join(10)
    report("F3", stalls=STALLS, bound_s=BOUND, detected_after_s=[round(d, 2) for d in delays])
    assert max(delays) <= BOUND + SLACK
