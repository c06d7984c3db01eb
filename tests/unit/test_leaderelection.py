from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from rook_py.framework.client.errors import InternalError
from rook_py.framework.kube.times import format_micro_time, parse_time
from rook_py.framework.leaderelection import (
    LeaderCallbacks,
    LeaderElectionRecord,
    LeaderElector,
    LeaseLock,
    validate_timing,
)
from rook_py.framework.metrics import REGISTRY
from tests.unit.controller.fakes import FakeObjectClient

NS, NAME = "rook-system", "test-lock"


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def elector(client: FakeObjectClient, identity: str, clock: Clock | None = None, *,
            name: str = NAME, **kw: object) -> LeaderElector:
    return LeaderElector(LeaseLock(client, NS, name, identity), lease_duration=15, renew_deadline=10,
                         retry_period=2, clock=clock or Clock(), **kw)  # type: ignore[arg-type]


def test_validate_timing_matches_client_go() -> None:
    validate_timing(15, 10, 2)
    for args in [(10, 10, 2), (15, 2.4, 2), (0, -1, 1), (15, 10, 0)]:
        with pytest.raises(ValueError):
            validate_timing(*args)
    validate_timing(1.0, 0.5, 0.4)  # 0.5 > 1.2 * 0.4


def test_identity_required() -> None:
    with pytest.raises(ValueError):
        LeaseLock(FakeObjectClient(), NS, NAME, "")


def test_micro_time_round_trip() -> None:
    t = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    assert format_micro_time(t) == "2026-01-02T03:04:05.678901Z"
    assert parse_time(format_micro_time(t)) == t
    rec = LeaderElectionRecord("me", 15, t, t, 3)
    assert LeaderElectionRecord.from_lease_spec(rec.to_lease_spec()) == rec


def test_first_candidate_creates_the_lease() -> None:
    client = FakeObjectClient()
    a = elector(client, "a")
    assert a.try_acquire_or_renew()
    assert a.is_leader() and a.get_leader() == "a"
    spec = client.lease(NS, NAME)["spec"]  # type: ignore[index]
    assert spec["holderIdentity"] == "a" and spec["leaseDurationSeconds"] == 15
    assert spec["leaseTransitions"] == 0 and spec["renewTime"].endswith("Z")


def test_standby_waits_for_expiry_measured_on_its_own_clock() -> None:
    client = FakeObjectClient()
    a_clock, b_clock = Clock(), Clock()
    a, b = elector(client, "a", a_clock), elector(client, "b", b_clock)
    assert a.try_acquire_or_renew()
    assert not b.try_acquire_or_renew() and b.get_leader() == "a"
    # a renews: the record changes, so b's expiry clock restarts.
    a_clock.t += 10
    b_clock.t += 10
    assert a.try_acquire_or_renew()
    b_clock.t += 10  # 20 s after b first saw the lease; b now sees the renewed record
    assert not b.try_acquire_or_renew()
    b_clock.t += 14  # 14 s since b saw the record change: still valid
    assert not b.try_acquire_or_renew()
    b_clock.t += 2  # 16 s (> 15 s) without a change seen by b
    assert b.try_acquire_or_renew() and b.is_leader()
    spec = client.lease(NS, NAME)["spec"]  # type: ignore[index]
    assert spec["holderIdentity"] == "b" and spec["leaseTransitions"] == 1
    # a's fast path hits a conflict, falls back to reading, and sees b's valid lease.
    a_clock.t += 1
    assert not a.try_acquire_or_renew() and not a.is_leader()


def test_renewal_keeps_acquire_time_and_transitions() -> None:
    client = FakeObjectClient()
    clock = Clock()
    a = elector(client, "a", clock)
    assert a.try_acquire_or_renew()
    first = client.lease(NS, NAME)["spec"]  # type: ignore[index]
    clock.t += 2
    assert a.try_acquire_or_renew()
    second = client.lease(NS, NAME)["spec"]  # type: ignore[index]
    assert second["acquireTime"] == first["acquireTime"]
    assert second["leaseTransitions"] == first["leaseTransitions"]
    # The fast path skipped the GET.
    assert [c[0] for c in client.calls] == ["get", "create", "update"]


def test_release_clears_holder_so_a_standby_takes_over_at_once() -> None:
    client = FakeObjectClient()
    a, b = elector(client, "a"), elector(client, "b")
    assert a.try_acquire_or_renew()
    assert not b.try_acquire_or_renew()
    assert a.release()
    spec = client.lease(NS, NAME)["spec"]  # type: ignore[index]
    assert spec["holderIdentity"] == "" and spec["leaseDurationSeconds"] == 1
    assert b.try_acquire_or_renew()  # no waiting for expiry: the holder is empty
    assert b.release() and elector(client, "c").release()  # non-leader release is a no-op


def test_api_errors_are_reported_as_failure_not_raised() -> None:
    client = FakeObjectClient()
    client.fail_next = [InternalError("etcd down")]
    a = elector(client, "a")
    assert not a.try_acquire_or_renew()
    assert a.try_acquire_or_renew()


def _status(name: str) -> float:
    return REGISTRY.get_sample_value("leader_election_master_status", {"name": name}) or 0.0


def test_run_leads_until_stopped_then_releases() -> None:
    client = FakeObjectClient()
    events: list[str] = []
    started = threading.Event()
    cb = LeaderCallbacks(on_started_leading=lambda: (events.append("start"), started.set()),
                         on_stopped_leading=lambda: events.append("stop"),
                         on_new_leader=lambda who: events.append(f"leader={who}"))
    le = LeaderElector(LeaseLock(client, NS, "run-lock", "a"), lease_duration=1.0, renew_deadline=0.5,
                       retry_period=0.02, callbacks=cb)
    stop = threading.Event()
    t = threading.Thread(target=le.run, args=(stop,), daemon=True)
    t.start()
    assert started.wait(5)
    assert _status("run-lock") == 1
    time.sleep(0.1)  # several renewals
    renewals = sum(1 for c in client.calls if c[0] == "update")
    assert renewals >= 2
    stop.set()
    t.join(5)
    assert events == ["leader=a", "start", "stop"]
    assert client.lease(NS, "run-lock")["spec"]["holderIdentity"] == ""  # type: ignore[index]
    assert _status("run-lock") == 0


def test_run_stops_leading_when_renewal_keeps_failing() -> None:
    client = FakeObjectClient()
    lost = threading.Event()
    started = threading.Event()
    le = LeaderElector(LeaseLock(client, NS, "lossy-lock", "a"), lease_duration=1.0, renew_deadline=0.2,
                       retry_period=0.02,
                       callbacks=LeaderCallbacks(on_started_leading=started.set,
                                                 on_stopped_leading=lost.set))
    stop = threading.Event()
    t = threading.Thread(target=le.run, args=(stop,), daemon=True)
    t.start()
    assert started.wait(5)
    # Someone else takes the lease by force (e.g. an admin edit): our renewals now conflict.
    lease = client.lease(NS, "lossy-lock")
    assert lease is not None
    lease["spec"]["holderIdentity"] = "intruder"
    lease["spec"]["renewTime"] = format_micro_time(datetime.now(UTC) + timedelta(seconds=1))
    client.update(lease)
    assert lost.wait(5)
    t.join(5)
    assert not t.is_alive() and not stop.is_set()
    assert client.lease(NS, "lossy-lock")["spec"]["holderIdentity"] == "intruder"  # type: ignore[index]
    assert _status("lossy-lock") == 0
