"""F8: kube-apiserver frozen (SIGSTOP) past the lease duration (issue 15), on a real control plane.

A frozen server is worse than a dead one: the kernel still accepts connections, so requests hang
instead of being refused. The leader (tests/faults/leader_operator.py, /healthz and /metrics on)
must give its lease up at the renew deadline, counted from its last successful renewal (within
one retry period of the freeze): leader_election_master_status drops to 0, /healthz fails, the
write fence closes and the process exits 1 -- all at the deadline, not after the client's 30 s
request timeout (the renewal itself runs under the deadline, ``Client.deadline``). What
kube-apiserver received from it once thawed is read from its audit log: at most the one renewal
that was in flight when the deadline passed, nothing sent later.

Then a SIGTERM during the hang: the process exits within its graceful shutdown timeout (5 s).
"""

from __future__ import annotations

import signal
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from rook_py.envtest.environment import Environment
from tests.faults.realapi import audit_time, real_control_plane, requires_real_api, wall_now, writes
from tests.faults.support import FULL, Process, report

pytestmark = requires_real_api

LEASE, RENEW, RETRY = (15.0, 10.0, 2.0) if FULL else (4.0, 3.0, 0.5)
FROZEN = LEASE + 1.0
GRACEFUL = 5.0  # leader_operator's graceful_shutdown_timeout
SLACK = 1.0     # scheduling on a shared 2-core machine


__all__ = ["real_control_plane"]  # the shared fixture


@pytest.fixture(scope="module")
def env(real_control_plane: Environment) -> Iterator[Environment]:
    client = real_control_plane.client()
    for ns in ("f8", "f8-term"):
        client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    yield real_control_plane


def leader(env: Environment, namespace: str, identity: str) -> Process:
    return Process("tests.faults.leader_operator", [
        "--identity", identity, "--namespace", namespace, "--lease-duration", str(LEASE),
        "--renew-deadline", str(RENEW), "--retry-period", str(RETRY), "--probes",
        "--user-agent-prefix", "f8"], env.kubeconfig)


class Probes:
    """Polls the operator's /healthz and leader_election_master_status every 20 ms and notes
    when each first says this process no longer leads (a refused connection counts: the
    process is gone)."""

    def __init__(self, health: list[Any], metrics: list[Any]) -> None:
        self.health_url = f"http://{health[0]}:{health[1]}/healthz"
        self.metrics_url = f"http://{metrics[0]}:{metrics[1]}/metrics"
        self.unhealthy_at: float | None = None
        self.not_leader_at: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @staticmethod
    def _get(url: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                return int(resp.status), resp.read().decode()
        except urllib.error.HTTPError as err:
            return int(err.code), ""
        except OSError:
            return 0, ""

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            now = time.monotonic()
            if self.unhealthy_at is None and self._get(self.health_url)[0] != 200:
                self.unhealthy_at = now
            if self.not_leader_at is None:
                code, text = self._get(self.metrics_url)
                if code != 200 or 'leader_election_master_status{name="f5-operator"} 1.0' not in text:
                    self.not_leader_at = now

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)


def test_frozen_api_server_costs_the_lease_at_the_renew_deadline(env: Environment) -> None:
    plane = env.control_plane
    with leader(env, "f8", "a") as proc:
        standby = proc.expect("standby", 60)
        proc.expect("leader", 30)
        probes = Probes(standby["health"], standby["metrics"])
        time.sleep(3 * RETRY)  # renewing steadily
        assert probes.unhealthy_at is None and probes.not_leader_at is None
        frozen_wall = wall_now()
        frozen = time.monotonic()
        plane.freeze_apiserver()
        try:
            lost = proc.expect("lost", RENEW + 10)
            lost_at = time.monotonic()
            proc.proc.wait(10)
            exited_at = time.monotonic()
            time.sleep(max(0.0, frozen + FROZEN - time.monotonic()))
        finally:
            plane.thaw_apiserver()
            probes.close()
        thawed_wall = wall_now()
        code = proc.proc.returncode
    time.sleep(1.0)  # let the thawed server finish what was queued, and audit it
    delivered = writes(plane.audit_events(), agent="f8-a", since=frozen_wall)
    figures = {
        "lease_s": [LEASE, RENEW, RETRY], "frozen_s": FROZEN,
        "metric_zero_after_freeze_s": round(probes.not_leader_at - frozen, 3) if probes.not_leader_at else None,
        "healthz_failing_after_freeze_s": round(probes.unhealthy_at - frozen, 3) if probes.unhealthy_at else None,
        "lost_after_freeze_s": round(lost_at - frozen, 3), "exited_after_freeze_s": round(exited_at - frozen, 3),
        "exit_code": code,
        "writes_delivered_at_thaw": [
            {"verb": e["verb"], "resource": e["objectRef"].get("resource"),
             "code": (e.get("responseStatus") or {}).get("code"),
             "received_after_thaw": audit_time(e) >= thawed_wall} for e in delivered],
    }
    report("F8", **figures)
    assert code == 1, lost
    # The deadline counts from the last renewal *sent*, which is within one retry period (plus a
    # request's flight) before the freeze: loss at RENEW - RETRY .. RENEW after it.
    for key in ("metric_zero_after_freeze_s", "healthz_failing_after_freeze_s", "lost_after_freeze_s"):
        assert figures[key] is not None and RENEW - RETRY - SLACK <= figures[key] <= RENEW + SLACK, figures
    assert figures["exited_after_freeze_s"] <= RENEW + 2 * SLACK, figures
    # Nothing was sent after the deadline (the process was gone by then); what the server got at
    # thaw is at most the renewal that was in flight.
    assert len(delivered) <= 1, figures
    assert all(e["objectRef"].get("resource") == "leases" for e in delivered), figures


def test_sigterm_while_the_api_server_hangs_exits_within_the_graceful_timeout(env: Environment) -> None:
    plane = env.control_plane
    with leader(env, "f8-term", "b") as proc:
        proc.expect("leader", 60)
        time.sleep(3 * RETRY)
        plane.freeze_apiserver()
        try:
            time.sleep(RETRY + 0.5)  # a renewal is now hanging
            started = time.monotonic()
            proc.proc.send_signal(signal.SIGTERM)
            proc.proc.wait(GRACEFUL + 10)
            took = time.monotonic() - started
        finally:
            plane.thaw_apiserver()
        code = proc.proc.returncode
    report("F8", case="sigterm-during-hang", exit_s=round(took, 3), graceful_timeout_s=GRACEFUL, exit_code=code)
    assert took <= GRACEFUL + 0.25, took  # the manager keeps a tenth of it for its own exit
    assert code is not None
