"""F10: leader handover between two operator processes on a real control plane (issue 15), as F5
does on the emulator, counted from kube-apiserver's side: its audit log says when the standby's
lease write succeeded (takeover) and which identity (User-Agent ``f10-<identity>``) sent every
write, so no figure rests on the client's word.

Two tests/faults/leader_operator.py processes share one Lease; the leader keeps a Secret per
ConfigMap. Rounds, each with a fresh standby started for the next: the leader is SIGTERMed
(releases its lease: the standby takes over at its next retry), frozen (SIGSTOP: the standby
takes over once the lease expires; thawed, the old leader sends nothing and exits 1), and
SIGKILLed (the standby takes over once the lease expires). ConfigMaps created right after each
fault get their Secrets from the new leader; every Secret is created exactly once.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest

from rook_py.envtest.environment import Environment
from tests.faults.realapi import (
    audit_time,
    count_by_agent,
    real_control_plane,
    requires_real_api,
    wall_now,
    writes,
)
from tests.faults.support import FULL, Process, eventually, iterations, report

pytestmark = requires_real_api

NS = "f10"
LEASE, RENEW, RETRY = (15.0, 10.0, 2.0) if FULL else (4.0, 3.0, 0.5)
PER_ROUND = iterations(5, 20)
ROUNDS = ["term", "freeze", "kill"] * iterations(1, 2)
SLACK = 1.5


__all__ = ["real_control_plane"]  # the shared fixture


@pytest.fixture(scope="module")
def env(real_control_plane: Environment) -> Iterator[Environment]:
    real_control_plane.client().create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    yield real_control_plane


def operator(env: Environment, identity: str) -> Process:
    return Process("tests.faults.leader_operator", [
        "--identity", identity, "--namespace", NS, "--lease-duration", str(LEASE),
        "--renew-deadline", str(RENEW), "--retry-period", str(RETRY),
        "--user-agent-prefix", "f10"], env.kubeconfig)


def secrets_exist(client: Any, names: list[str]) -> bool:
    have = {s["metadata"]["name"] for s in client.list("v1", "Secret", NS)["items"]}
    return all(f"{n}-out" in have for n in names)


def create_configmaps(client: Any, prefix: str, count: int) -> list[str]:
    names = [f"{prefix}-{i}" for i in range(count)]
    for name in names:
        client.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": NS}})
    return names


def test_takeover_times_and_writes_per_identity_from_the_server(env: Environment) -> None:
    client = env.client(user_agent="f10-test")
    plane = env.control_plane
    serial = 0
    leader = operator(env, f"p{serial}")
    leader.expect("leader", 60)
    standby = operator(env, f"p{serial + 1}")
    standby.expect("standby", 60)
    names = create_configmaps(client, "warmup", PER_ROUND)
    eventually(lambda: secrets_exist(client, names), 30, "warm-up Secrets")
    rounds: list[dict[str, Any]] = []
    processes = [leader, standby]
    try:
        for index, fault in enumerate(ROUNDS):
            old_agent = f"f10-{leader.proc.args[leader.proc.args.index('--identity') + 1]}"
            new_agent = f"f10-{standby.proc.args[standby.proc.args.index('--identity') + 1]}"
            at_wall, at = wall_now(), time.monotonic()
            leader.proc.send_signal({"term": signal.SIGTERM, "freeze": signal.SIGSTOP,
                                     "kill": signal.SIGKILL}[fault])
            batch = create_configmaps(client, f"r{index}-{fault}", PER_ROUND)
            standby.expect("leader", LEASE + 20)
            noticed = time.monotonic() - at
            eventually(lambda b=batch: secrets_exist(client, b), 30, f"Secrets after {fault}")  # type: ignore[misc]
            thawed_wall = None
            if fault == "freeze":
                thawed_wall = wall_now()
                leader.proc.send_signal(signal.SIGCONT)
                leader.expect("lost", RENEW + 10)
            leader.proc.wait(15)
            time.sleep(0.5)  # the audit log is written as requests complete
            events = plane.audit_events()
            lease_writes = [e for e in writes(events, agent=new_agent, since=at_wall, resource="leases")
                            if (e.get("responseStatus") or {}).get("code") == 200]
            takeover = (audit_time(lease_writes[0], "stageTimestamp") - at_wall).total_seconds() if lease_writes else None
            old_after = writes(events, agent=old_agent, since=at_wall)
            rounds.append({
                "fault": fault, "takeover_s": round(takeover, 3) if takeover is not None else None,
                "standby_reported_leader_s": round(noticed, 3), "old_leader_exit_code": leader.proc.returncode,
                "old_leader_writes_after_fault": count_by_agent(old_after),
                "old_leader_writes_after_thaw": (len(writes(events, agent=old_agent, since=thawed_wall))
                                                 if thawed_wall else None),
            })
            if index + 1 < len(ROUNDS):
                serial += 2
                leader, standby = standby, operator(env, f"p{serial}")
                processes.append(standby)
                standby.expect("standby", 60)
        events = plane.audit_events()
    finally:
        for proc in processes:
            proc.kill()
    creates = [e for e in writes(events, resource="secrets") if e["verb"] == "create"]
    created = [e for e in creates if (e.get("responseStatus") or {}).get("code") == 201]
    conflicts = [e for e in creates if (e.get("responseStatus") or {}).get("code") == 409]
    ours = [e for e in writes(events) if str(e.get("userAgent")).startswith("f10-p")]
    by_identity = {agent: {resource: sum(1 for e in ours if e.get("userAgent") == agent
                                         and e["objectRef"].get("resource") == resource)
                           for resource in ("leases", "secrets")}
                   for agent in sorted(count_by_agent(ours))}
    report("F10", lease_s=[LEASE, RENEW, RETRY], per_round=PER_ROUND, rounds=rounds,
           secrets_created=len(created), secret_create_conflicts=len(conflicts),
           writes_per_identity=by_identity)
    expected_secrets = PER_ROUND * (len(ROUNDS) + 1)
    assert len(created) == expected_secrets, "every Secret is created exactly once"
    assert len({(e["objectRef"]["name"]) for e in created}) == expected_secrets
    for r in rounds:
        assert r["takeover_s"] is not None, r
        if r["fault"] == "term":  # released: the standby's next retry
            assert r["takeover_s"] <= RETRY * (1 + 1.2) + SLACK, r
            assert r["old_leader_exit_code"] == 0, r
        else:  # expiry on the standby's own clock: a lease duration after it last saw a renewal
            assert LEASE - RETRY - SLACK <= r["takeover_s"] <= LEASE + RETRY * 2.2 + SLACK, r
        if r["fault"] == "freeze":
            assert r["old_leader_writes_after_thaw"] == 0, r
            assert r["old_leader_exit_code"] == 1, r
        if r["fault"] == "kill":
            assert r["old_leader_writes_after_fault"] == {}, r

