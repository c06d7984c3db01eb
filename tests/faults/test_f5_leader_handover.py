"""F5: leader handover between two operator processes (issue 6).

Two processes of tests/faults/leader_operator.py share one Lease (lease 2 s, renew deadline 1.5 s,
retry 0.3 s). The leader is stopped in the middle of a burst of work, at a random moment: with
SIGKILL (it never releases the Lease; the standby must wait for it to expire) and, alternately,
with SIGTERM (it drains in-flight reconciles, then releases the Lease; the standby must take over
well before expiry). Writes are counted on the API server per client identity (each process sends
its own User-Agent). Checked:

* while the leader lives, the standby makes no write (it only reads the Lease);
* after SIGKILL the standby takes over within the lease duration plus its retry interval
  (client-go's leaderelection: a candidate acquires once ``leaseDurationSeconds`` passed since it
  last saw the record change, polling every ``retryPeriod`` with jitter 1.2); after SIGTERM within
  the lease duration (ReleaseOnCancel);
* the old leader makes no write after the lease passed to the standby;
* the work is finished exactly once: one Secret per ConfigMap, each created by exactly one
  successful request (no duplicate creates, none lost).
"""

from __future__ import annotations

import random
import signal
import time
from collections.abc import Iterator

import pytest

from rook_py.framework.client.errors import NotFound
from rook_py.framework.envtest.environment import Environment
from tests.faults.leader_operator import LEASE
from tests.faults.support import Process, eventually, iterations, report

pytestmark = pytest.mark.emulator_only

NS = "f5"
LEASE_DURATION, RETRY_PERIOD = 2.0, 0.3
TAKEOVER_BOUND = LEASE_DURATION + 2 * RETRY_PERIOD * 2.2   # observation lag + acquire retry, both jittered
SLACK = 2.0
BATCH = 20
HANDOVERS = iterations(2, 6)   # alternately SIGKILL (lease expires) and SIGTERM (lease released)
WRITES = ("create", "update", "patch", "delete")


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

    def create_batch(start: int) -> list[str]:
        names = [f"cm-{i:04d}" for i in range(start, start + BATCH)]
        for name in names:
            local.create("v1", "configmaps", {"apiVersion": "v1", "kind": "ConfigMap",
                                              "metadata": {"name": name, "namespace": NS}}, namespace=NS)
        return names

    def all_done(names: list[str]) -> bool:
        secrets = {s["metadata"]["name"] for s in local.list("v1", "secrets", namespace=NS)["items"]}
        return all(f"{n}-out" in secrets for n in names)

    created: list[str] = []
    takeovers: list[tuple[str, float]] = []
    leader = _operator(env, "op-0")
    generation = 0
    try:
        leader.expect("leader", 20)
        assert holder() == "op-0"
        for round_ in range(HANDOVERS):
            how = signal.SIGKILL if round_ % 2 == 0 else signal.SIGTERM
            standby_id = f"op-{generation + 1}"
            standby = _operator(env, standby_id)
            try:
                standby.expect("standby", 20)
                names = create_batch(len(created))
                created += names
                eventually(lambda n=names: all_done(n), 20, "the leader handled the first batch")
                assert writes(standby_id) == 0, "the standby wrote while the leader held the lease"

                # A second burst; the leader is killed, or told to stop, in the middle of it.
                names = create_batch(len(created))
                created += names
                time.sleep(rng.uniform(0.0, 0.3))
                old_id = f"op-{generation}"
                leader.proc.send_signal(how)
                killed = time.monotonic()
                # SIGKILL: the lease must expire. SIGTERM: in-flight work drains, then the lease is
                # released, so the standby must not need to wait for expiry.
                bound = TAKEOVER_BOUND + SLACK if how == signal.SIGKILL else LEASE_DURATION
                eventually(lambda s=standby_id: holder() == s, bound,
                           f"the standby acquired the lease after {how.name}")
                takeovers.append((how.name, round(time.monotonic() - killed, 2)))
                old_writes = writes(old_id)
                standby.expect("leader", 5)
                eventually(lambda everything=tuple(created): all_done(list(everything)), 20,
                           "the new leader finished the work")
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
    report("F5", handovers=HANDOVERS, takeover_s=takeovers,
           bound_s=round(TAKEOVER_BOUND, 2), configmaps=len(created), secrets=len(secrets),
           secret_creates_201=succeeded_creates)
    assert sorted(s["metadata"]["name"] for s in secrets) == sorted(f"{n}-out" for n in created)
    assert succeeded_creates == len(created), "a Secret was created twice or not at all"
    assert all(seconds <= TAKEOVER_BOUND + SLACK for _, seconds in takeovers)
