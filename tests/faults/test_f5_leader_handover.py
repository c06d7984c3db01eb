"""F5: leader handover between two operator processes (issue 6).

Two processes of tests/faults/leader_operator.py share one Lease (lease 2 s, renew deadline 1.5 s,
retry 0.3 s). Rounds cycle through four ways of losing the leader:

* SIGKILL in the middle of a burst of work, at a random moment: it never releases the Lease; the
  standby must wait for it to expire;
* SIGTERM, likewise: it drains in-flight reconciles, then releases the Lease; the standby must
  take over well before expiry;
* SIGSTOP in the middle of a burst (a long GC pause, a stalled VM), then SIGCONT once the standby
  has taken over and done all the work, including the work created while the leader was frozen.
  Deterministic: every worker of the leader is parked inside a reconcile right before its write
  (leader_operator's ``f5/hold-for`` label), more work is queued behind them, and the freeze
  lands right after one of its lease renewals was committed, so no thread is between the write
  fence's check and the socket. On resume the parked writes, the renew loop and the release must
  all be fenced: the old leader makes *no* write at all (counted and reported, asserted 0),
  reports ``lost`` and exits non-zero by itself. Without the fence the parked reconciles would
  send their creates on resume (and fail only because the standby already made the objects);
* SIGSTOP in the middle of a burst at a random moment, then SIGCONT likewise. The writes the old
  leader makes after resuming are counted and reported but not asserted to be zero, because that
  cannot be made deterministic: a thread frozen after the fence's check but before its bytes
  reached the socket sends them on resume (no client-side check can close that window, and
  Kubernetes has no server-side fencing token). What is asserted is what the fence guarantees:
  at most one such request per thread that writes (the workers and the renew loop), and none of
  them succeeds (the standby made every object and rewrote the Lease since, so they fail on
  AlreadyExists / a stale resourceVersion).

Writes are counted on the API server per client identity (each process sends its own
User-Agent). Checked:

* while the leader lives, the standby makes no write (it only reads the Lease);
* after SIGKILL the standby takes over within the lease duration plus its retry interval
  (client-go's leaderelection: a candidate acquires once ``leaseDurationSeconds`` passed since it
  last saw the record change, polling every ``retryPeriod`` with jitter 1.2); after SIGTERM within
  the lease duration (ReleaseOnCancel); after SIGSTOP within the SIGKILL bound;
* the old leader makes no write after the lease passed to the standby (after a freeze: see above);
* the work is finished exactly once: one Secret per ConfigMap, each created by exactly one
  successful request (no duplicate creates, none lost).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from rook_py.envtest.environment import Environment
from rook_py.framework.client.errors import NotFound
from tests.faults.leader_operator import HOLD_LABEL, LEASE
from tests.faults.support import Process, eventually, iterations, report

pytestmark = pytest.mark.emulator_only(
    reason="per-process write counts (the emulator's per-User-Agent request statistics)")

NS = "f5"
LEASE_DURATION, RETRY_PERIOD = 2.0, 0.3
TAKEOVER_BOUND = LEASE_DURATION + 2 * RETRY_PERIOD * 2.2   # observation lag + acquire retry, both jittered
SLACK = 2.0
BATCH = 20
MODES = ("SIGKILL", "SIGTERM", "SIGSTOP", "SIGSTOP-random")
HANDOVERS = iterations(len(MODES), 2 * len(MODES))   # each mode once (quick) or twice (full)
WRITES = ("create", "update", "patch", "delete")
WORKERS = 4              # leader_operator's max_concurrent_reconciles
EXIT_BOUND = 5.0         # a resumed old leader reports "lost" and exits within this


@pytest.fixture
def env() -> Iterator[Environment]:
    with Environment(backend="emulator", simulate_cluster=False) as e:
        assert e.server is not None
        e.server.local.create("v1", "namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                   "metadata": {"name": NS}})
        yield e


def _operator(env: Environment, identity: str) -> Process:
    return Process("tests.faults.leader_operator",
                   ["--identity", identity, "--namespace", NS, "--lease-duration", str(LEASE_DURATION),
                    "--renew-deadline", "1.5", "--retry-period", str(RETRY_PERIOD)], env.kubeconfig)


def test_standby_takes_over_and_old_leader_stays_silent(env: Environment) -> None:
    assert env.server is not None
    local, stats = env.server.local, env.server.stats
    rng = random.Random(5505)

    def holder() -> str:
        try:
            lease = local.get("coordination.k8s.io/v1", "leases", LEASE, namespace=NS)
        except NotFound:
            return ""
        return str((lease.get("spec") or {}).get("holderIdentity") or "")

    def writes(identity: str, resource: str | None = None) -> int:
        return sum(stats.count(user_agent=f"f5-{identity}", verb=v, resource=resource) for v in WRITES)

    def accepted_writes(identity: str) -> int:
        return sum(stats.count(user_agent=f"f5-{identity}", verb=v, code=c)
                   for v in WRITES for c in (200, 201, 202))

    def create_batch(start: int, size: int = BATCH, hold_for: str | None = None) -> list[str]:
        names = [f"cm-{i:04d}" for i in range(start, start + size)]
        labels = {HOLD_LABEL: hold_for} if hold_for else {}
        for name in names:
            local.create("v1", "configmaps", {"apiVersion": "v1", "kind": "ConfigMap",
                                              "metadata": {"name": name, "namespace": NS, "labels": labels}},
                         namespace=NS)
        return names

    def all_done(names: list[str]) -> bool:
        secrets = {s["metadata"]["name"] for s in local.list("v1", "secrets", namespace=NS)["items"]}
        return all(f"{n}-out" in secrets for n in names)

    def freeze_after_renewal(process: Process, identity: str) -> None:
        """SIGSTOP ``process`` as soon as the server committed one of its lease renewals: its renew
        thread then waits out ``RETRY_PERIOD``, and its idle workers send nothing, so no thread is
        between the fence's check and the socket when the freeze lands."""
        frozen = threading.Event()

        def on_change(event_type: str, api_version: str, resource: str, obj: dict[str, Any]) -> None:
            spec = obj.get("spec") or {}
            if (resource == "leases" and spec.get("holderIdentity") == identity
                    and not frozen.is_set()):
                os.kill(process.proc.pid, signal.SIGSTOP)
                frozen.set()

        unsubscribe = local.subscribe(on_change)
        try:
            assert frozen.wait(5), "the leader did not renew its lease"
        finally:
            unsubscribe()

    created: list[str] = []
    takeovers: list[tuple[str, float]] = []
    resumed_writes: list[tuple[str, int]] = []
    leader = _operator(env, "op-0")
    generation = 0
    try:
        leader.expect("leader", 20)
        assert holder() == "op-0"
        for round_ in range(HANDOVERS):
            mode = MODES[round_ % len(MODES)]
            frozen = mode.startswith("SIGSTOP")
            standby_id = f"op-{generation + 1}"
            old_id = f"op-{generation}"
            standby = _operator(env, standby_id)
            try:
                standby.expect("standby", 20)
                names = create_batch(len(created))
                created += names
                eventually(lambda n=names: all_done(n), 20, "the leader handled the first batch")
                assert writes(standby_id) == 0, "the standby wrote while the leader held the lease"

                if mode == "SIGSTOP":
                    # Park every worker right before its write, queue more work behind them, freeze.
                    held = create_batch(len(created), WORKERS, hold_for=old_id)
                    created += held
                    for _ in held:
                        leader.expect("holding", 10)
                    created += create_batch(len(created))
                    freeze_after_renewal(leader, old_id)
                    stopped = time.monotonic()
                    assert not any(all_done([n]) for n in held), \
                        "a parked reconcile wrote before the freeze (a host too slow for --hold-seconds?)"
                    created += create_batch(len(created))   # work created while it is frozen
                else:
                    # A second burst; the leader is killed, told to stop, or frozen in the middle of it.
                    created += create_batch(len(created))
                    time.sleep(rng.uniform(0.0, 0.3))
                    leader.proc.send_signal(signal.SIGSTOP if frozen else signal.Signals[mode])
                    stopped = time.monotonic()
                # SIGKILL/SIGSTOP: the lease must expire. SIGTERM: in-flight work drains, then the
                # lease is released, so the standby must not need to wait for expiry.
                bound = LEASE_DURATION if mode == "SIGTERM" else TAKEOVER_BOUND + SLACK
                eventually(lambda s=standby_id: holder() == s, bound,
                           f"the standby acquired the lease after {mode}")
                takeovers.append((mode, round(time.monotonic() - stopped, 2)))
                old_writes, old_accepted = writes(old_id), accepted_writes(old_id)
                standby.expect("leader", 5)
                eventually(lambda everything=tuple(created): all_done(list(everything)), 20,
                           "the new leader finished the work")
                if frozen:
                    assert writes(old_id) == old_writes, "the frozen leader wrote"
                    leader.proc.send_signal(signal.SIGCONT)
                    leader.expect("lost", EXIT_BOUND)
                    try:
                        code = leader.proc.wait(EXIT_BOUND)
                    except subprocess.TimeoutExpired:
                        raise AssertionError(f"the resumed leader did not exit within {EXIT_BOUND}s") from None
                    assert code != 0, "the resumed leader exited with status 0"
                    after = writes(old_id) - old_writes
                    resumed_writes.append((mode, after))
                    if mode == "SIGSTOP":
                        assert after == 0, f"the resumed leader made {after} write(s)"
                    else:
                        assert after <= WORKERS + 1, f"{after} writes after resuming: more than one per thread"
                        assert accepted_writes(old_id) == old_accepted, "a write after resuming succeeded"
                else:
                    time.sleep(0.5)
                    assert writes(old_id) == old_writes, "the old leader wrote after losing the lease"
            except BaseException:
                standby.kill()
                raise
            leader.kill()
            leader, generation = standby, generation + 1
            assert holder() == f"op-{generation}"
    finally:
        leader.kill()

    secrets = local.list("v1", "secrets", namespace=NS)["items"]
    succeeded_creates = stats.count(verb="create", resource="secrets", code=201)
    report("F5", handovers=HANDOVERS, takeover_s=takeovers, writes_after_resume=resumed_writes,
           bound_s=round(TAKEOVER_BOUND, 2), configmaps=len(created), secrets=len(secrets),
           secret_creates_201=succeeded_creates)
    assert sorted(s["metadata"]["name"] for s in secrets) == sorted(f"{n}-out" for n in created)
    assert succeeded_creates == len(created), "a Secret was created twice or not at all"
    assert all(seconds <= TAKEOVER_BOUND + SLACK for _, seconds in takeovers)
