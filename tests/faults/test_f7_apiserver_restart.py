"""F7: kube-apiserver killed and started again on the same etcd (issue 15), on a real control plane.

The ChubaoFS operator runs as a child process, with and without leader election. kube-apiserver
is SIGKILLed for an outage (5 s and 35 s under ``make faults``; 1 s and 5 s in the normal run),
and while it is down etcd's revision moves on (``etcd_put``: what other API servers or clients
would write meanwhile), so the restarted server's watch caches start past every resourceVersion
the operator holds and every watch resume answers 410: the relist case that left the operator
blind for 36-97 s when its relist waited behind a connection backoff grown to 30 s.

Measured from the moment kube-apiserver answers /readyz again:
(a) a ChubaoMonitor created then is reconciled (its status.observedGeneration reaches its
    generation), and (b) an owned ConfigMap deleted then is restored. Bound: 5 s each.
And from kube-apiserver's audit log, per resource the operator watches: when its relist LIST
arrived, and how long after the server answered the resumed watch (the 410): at most 1 s.

The operator reconnects within 0.8 s, usually before /readyz passes; a starting kube-apiserver
answers paths it has not installed yet (the custom resource's) with 503 and Retry-After: 5. The
reflector polls on its connection backoff instead of sleeping those 5 s (it did, and (a) then
took 4-5 s): see ``Client.without_retries``.

With leader election an outage longer than the renew deadline costs the leader its lease: it
exits 1 (LeaderElectionLost), a supervisor restarts it at once (as the kubelet would), and the
new process reclaims its own lease (same identity) as soon as the server answers.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from rook_py.chubaofs.api import types as t
from rook_py.chubaofs.api.crd import chubao_monitor_crd
from rook_py.envtest.environment import Environment
from rook_py.framework.client import errors
from tests.faults.chubao_support import NS, monitor
from tests.faults.realapi import Supervisor, real_control_plane, relists_after, requires_real_api, wall_now
from tests.faults.support import FULL, eventually, report

pytestmark = requires_real_api

OUTAGES = (5.0, 35.0) if FULL else (2.0,)
BOUND = 5.0
RELIST_BOUND = 1.0
# Leader-election timings: the operator's defaults under make faults; shorter in the normal run,
# so that its outage (2 s, plus ~3 s for kube-apiserver to start) crosses the renew deadline.
LEASE = (15.0, 10.0, 2.0) if FULL else (4.0, 3.0, 0.5)
LEASE_NS = "rook-system"


__all__ = ["real_control_plane"]  # the shared fixture


@pytest.fixture(scope="module")
def env(real_control_plane: Environment) -> Iterator[Environment]:
    real_control_plane.install_crds([chubao_monitor_crd()])
    client = real_control_plane.client()
    for ns in (NS, LEASE_NS):
        client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    yield real_control_plane


def reconciled(client: Any, name: str) -> bool:
    try:
        obj = client.get(t.API_VERSION, t.KIND, name, NS)
    except (errors.NotFound, errors.TransportError):
        return False
    return bool((obj.get("status") or {}).get("observedGeneration") == obj["metadata"]["generation"])


def config_uid(client: Any, name: str) -> str | None:
    try:
        return str(client.get("v1", "ConfigMap", f"{name}-prometheus-config", NS)["metadata"]["uid"])
    except (errors.NotFound, errors.TransportError):
        return None


def operator_args(leader_election: bool, identity: str) -> list[str]:
    args = ["--user-agent", f"f7-{identity}"]
    if leader_election:
        lease, renew, retry = LEASE
        args += ["--leader-elect", "--identity", identity, "--lease-namespace", LEASE_NS,
                 "--lease-duration", str(lease), "--renew-deadline", str(renew),
                 "--retry-period", str(retry)]
    return args


# The normal run keeps to the headline case (no leader election, a watch resume that
# answers 410); the lease lost during an outage and reclaimed by the restarted process is in
# make faults (F8 and F10 cover leader election on the real server in the normal run).
@pytest.mark.parametrize("leader_election", [False, pytest.param(True, marks=pytest.mark.skipif(
    not FULL, reason="make faults only (ROOK_FAULT_ITERATIONS=full): keeps the normal run short"))],
    ids=["no-leader-election", "leader-election"])
def test_operator_recovers_within_seconds_of_the_api_server_answering_again(
        env: Environment, leader_election: bool) -> None:
    client = env.client(timeout=5.0, user_agent="f7-test")
    plane = env.control_plane
    identity = "le" if leader_election else "plain"
    base = f"base-{identity}"
    figures: list[dict[str, Any]] = []
    with Supervisor("tests.faults.chubao_operator", operator_args(leader_election, identity),
                    env.kubeconfig) as operator:
        operator.expect("started", 60)
        client.create(monitor(base))
        eventually(lambda: reconciled(client, base) and config_uid(client, base), 30,
                   f"{base} reconciled before any outage")
        for round_, outage in enumerate(OUTAGES):
            old_uid = config_uid(client, base)
            held_rv = client.list("v1", "ConfigMap", NS)["metadata"]["resourceVersion"]
            exits_before = len(operator.exits)
            killed_wall = wall_now()
            plane.kill_apiserver()
            time.sleep(outage)
            plane.etcd_put("/f7/outage", str(round_))
            plane.start_apiserver()
            back, back_wall = time.monotonic(), wall_now()
            fresh = f"new-{identity}-{round_}"
            client.create(monitor(fresh))
            client.delete("v1", "ConfigMap", f"{base}-prometheus-config", NS)
            took_new = took_restore = None
            while time.monotonic() - back < 30 and (took_new is None or took_restore is None):
                if took_new is None and reconciled(client, fresh):
                    took_new = time.monotonic() - back
                if took_restore is None and config_uid(client, base) not in (None, old_uid):
                    took_restore = time.monotonic() - back
                time.sleep(0.02)
            # The scenario crossed the 410 case: a watch resumed at what the operator held is expired.
            with pytest.raises(errors.Gone):
                for _ in client.watch("v1", "ConfigMap", NS, resource_version=held_rv, timeout_seconds=2):
                    break
            relists = relists_after(plane.audit_events(), f"f7-{identity}", killed_wall)
            figures.append({"outage_s": outage, "new_monitor_reconciled_s": took_new,
                            "owned_configmap_restored_s": took_restore,
                            "relist_after_readyz_s": {
                                r: round((v["list_at"] - back_wall).total_seconds(), 3)
                                for r, v in sorted(relists.items())},
                            "relist_after_410_s": {
                                r: round((v["list_at"] - v["watch_ended_at"]).total_seconds(), 3)
                                for r, v in sorted(relists.items()) if v["watch_ended_at"]},
                            "operator_restarts": len(operator.exits) - exits_before,
                            "exit_codes": operator.exits[exits_before:]})
        alive = operator.process.proc.poll() is None
        exited_output = "\n".join(line[:300] for out in operator.outputs for line in out)
    report("F7", leader_election=leader_election, bound_s=BOUND, lease=LEASE if leader_election else None,
           rounds=figures)
    assert alive, "the operator is not running at the end"
    for fig in figures:
        assert fig["new_monitor_reconciled_s"] is not None and fig["new_monitor_reconciled_s"] <= BOUND, fig
        assert fig["owned_configmap_restored_s"] is not None and fig["owned_configmap_restored_s"] <= BOUND, fig
        assert all(s <= RELIST_BOUND for s in fig["relist_after_410_s"].values()), fig
        if not leader_election:
            assert fig["operator_restarts"] == 0, f"the operator exited:\n{exited_output}"
        else:  # lost its lease: exit 1 after saying so, never a crash
            assert all(code == 1 for code in fig["exit_codes"]), (fig, exited_output)
            assert all("lost" in names for names in operator.reported), (operator.reported, exited_output)
    if leader_election:
        # The longest outage outlasts the renew deadline: the leader gave its lease up and restarted.
        assert figures[-1]["operator_restarts"] >= 1, figures
