"""A hung (not refusing) API server, seen by leader election and the manager: the lease is given
up at the renew deadline -- metric, /healthz, write fence and exit together -- because the renew
requests themselves are bounded by it; and a shutdown during the hang keeps to
graceful_shutdown_timeout."""

from __future__ import annotations

import contextlib
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

from rook_py.framework.client.errors import TransportError
from rook_py.framework.leaderelection import LeaderElectionLost, WriteFence
from rook_py.framework.manager import GracefulShutdownTimeout, Manager, ManagerOptions
from rook_py.framework.metrics import REGISTRY
from tests.support.managers import ManagerRun
from tests.unit.controller.fakes import FakeCache, FakeObjectClient

RENEW_DEADLINE = 0.6
RETRY = 0.05


class HangableClient(FakeObjectClient):
    """A FakeObjectClient whose calls hang while ``hung`` is set, like requests to a SIGSTOPped
    kube-apiserver: each returns TransportError only when its deadline (``deadline()``, as on the
    real Client) or the 30 s client timeout passes."""

    CLIENT_TIMEOUT = 30.0

    def __init__(self) -> None:
        super().__init__()
        self.hung = threading.Event()
        self._local = threading.local()
        self.write_guard: Any = None

    @contextlib.contextmanager
    def deadline(self, at: float) -> Iterator[None]:
        previous = getattr(self._local, "at", None)
        self._local.at = at if previous is None else min(previous, at)
        try:
            yield
        finally:
            self._local.at = previous

    def _maybe_fail(self) -> None:
        if self.hung.is_set():
            at = getattr(self._local, "at", None)
            limit = self.CLIENT_TIMEOUT if at is None else max(0.0, at - time.monotonic())
            time.sleep(min(limit, self.CLIENT_TIMEOUT))
            raise TransportError("read timed out")
        super()._maybe_fail()


def options(**kw: Any) -> ManagerOptions:
    base: dict[str, Any] = dict(
        metrics_bind_address="0", health_probe_bind_address="127.0.0.1:0",
        graceful_shutdown_timeout=1.0, leader_election=True, leader_election_id="hung-lock",
        leader_election_namespace="ns", identity="a", lease_duration=1.0,
        renew_deadline=RENEW_DEADLINE, retry_period=RETRY)
    base.update(kw)
    return ManagerOptions(**base)


def healthz(mgr: Manager) -> int:
    assert mgr.health_address is not None
    host, port = mgr.health_address
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/healthz", timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return int(err.code)


def master_status() -> float | None:
    return REGISTRY.get_sample_value("leader_election_master_status", {"name": "hung-lock"})


class LingeringWork:
    """A leader-only runnable whose in-flight work ignores stop for ``linger`` seconds (a
    reconcile stuck in a request to the hung server)."""

    def __init__(self, linger: float) -> None:
        self.linger = linger
        self.running = threading.Event()

    def start(self, stop: threading.Event) -> None:
        self.running.set()
        stop.wait()
        time.sleep(self.linger)


def test_hung_server_loses_the_lease_at_the_renew_deadline_everywhere_at_once() -> None:
    client = HangableClient()
    mgr = Manager(client, options(), cache=FakeCache())
    work = LingeringWork(linger=20.0)
    mgr.add(work)
    run = ManagerRun(mgr)
    try:
        assert mgr.elected.wait(5) and work.running.wait(5)
        assert healthz(mgr) == 200 and master_status() == 1.0
        fence = mgr.fence
        assert fence is not None
        lost_at: list[float] = []
        real_lose = fence.lose
        fence.lose = lambda reason: (lost_at.append(time.monotonic()), real_lose(reason))  # type: ignore[method-assign]
        client.hung.set()
        hung_at = time.monotonic()
        expiry = fence.expires_at()
        assert expiry - hung_at <= RENEW_DEADLINE
        run.thread.join(10)
        assert not run.thread.is_alive(), "the manager did not exit after losing the lease"
        exited = time.monotonic()
    finally:
        client.hung.clear()
        run.shutdown(5)
    assert isinstance(run.error, LeaderElectionLost)
    assert fence.state == WriteFence.LOST and master_status() == 0.0
    # Noticed by the renew loop at the fence's own expiry (counted from the last renewal sent),
    # never before it, and not after the 30 s client timeout; no graceful wait for the 20 s of
    # stuck work after a lost lease. The bounds separate those outcomes with room for a loaded
    # machine; they are not a speed limit.
    assert lost_at and -0.05 <= lost_at[0] - expiry < HangableClient.CLIENT_TIMEOUT / 6
    assert exited - expiry < work.linger / 4

def test_healthz_fails_once_the_leader_is_past_its_renew_deadline() -> None:
    client = HangableClient()
    # A retry period so long that the renew loop is not what notices: /healthz must on its own.
    mgr = Manager(client, options(lease_duration=30.0, renew_deadline=20.0, retry_period=5.0),
                  cache=FakeCache())
    run = ManagerRun(mgr)
    try:
        assert mgr.elected.wait(5) and mgr.fence is not None
        assert healthz(mgr) == 200
        mgr.fence.renew_deadline = 0.05  # as if frozen past it
        time.sleep(0.1)
        assert healthz(mgr) == 500
    finally:
        run.shutdown(30)


def test_sigterm_during_a_hang_exits_within_the_graceful_timeout() -> None:
    client = HangableClient()
    mgr = Manager(client, options(lease_duration=30.0, renew_deadline=20.0, retry_period=0.05,
                                  graceful_shutdown_timeout=1.0), cache=FakeCache())
    work = LingeringWork(linger=20.0)
    mgr.add(work)
    run = ManagerRun(mgr)
    assert mgr.elected.wait(5) and work.running.wait(5)
    client.hung.set()
    time.sleep(0.2)  # a renewal is now in flight and hanging
    started = time.monotonic()
    try:
        run.shutdown(10)
        took = time.monotonic() - started
    finally:
        client.hung.clear()
    # Bounded by the 1 s graceful timeout, not by the 20 s the stuck work lingers (room for load).
    assert took < work.linger / 4
    assert isinstance(run.error, GracefulShutdownTimeout)
