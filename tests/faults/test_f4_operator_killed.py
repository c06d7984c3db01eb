"""F4: the ChubaoFS operator SIGKILLed at random points of an install and of an upgrade (issue 6).

Each run gets a fresh emulator with the simulated cluster (kubelet, StatefulSet controller, PVC
binding, garbage collector) and runs the operator as a child process
(tests/faults/chubao_operator.py). A reference run installs (and then upgrades) undisturbed; each
disturbed run kills the operator with SIGKILL at a random moment within the reference's duration
of that phase, starts a new operator process, and waits for the monitor to be Ready at its
current generation. Then the objects the operator made must equal the reference's: same
names, specs, data, labels, annotations and owner references (``chubao_support.snapshot``), hence
no duplicates and nothing missing; and the upgrade must keep every PVC (same uid before and after).
"""

from __future__ import annotations

import random
import signal
import time
from collections.abc import Callable
from typing import Any

import pytest

from rook_py.chubaofs.api import types as t
from rook_py.chubaofs.api.crd import chubao_monitor_crd
from rook_py.envtest.environment import Environment
from tests.faults import chubao_support as cs
from tests.faults.support import Process, iterations, report

pytestmark = pytest.mark.emulator_only(
    reason="a ChubaoMonitor is Ready only when kubelets run its pods (controller-manager and kubelet)")

KILLS = iterations(2, 10)
SETTLE_TIMEOUT = 60.0
UPGRADE = {"spec": {
    "alertmanager": {"image": "quay.io/prometheus/alertmanager:v0.28.0"},
    "grafana": {"image": "grafana/grafana:11.1.0"},
    "prometheus": {"scrapeInterval": "15s", "retention": "30d"},
}}


def _operator(env: Environment) -> Process:
    return Process("tests.faults.chubao_operator", [], env.kubeconfig)


def _new_env() -> Environment:
    env = Environment(backend="emulator", crds=[chubao_monitor_crd()]).start()
    assert env.server is not None
    env.server.local.create("v1", "namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                 "metadata": {"name": cs.NS}})
    return env


def _settle_with_kill(env: Environment, start_phase: Callable[[], None], kill_at: float | None,
                      progress: list[int] | None = None) -> float:
    """Start an operator, ``start_phase()``, optionally SIGKILL the operator ``kill_at`` seconds
    later and start a fresh one; return seconds from the phase start to Ready. ``progress`` gets
    how many owned objects existed at the kill (evidence the kill landed mid-way)."""
    assert env.server is not None
    local = env.server.local
    op = _operator(env)
    try:
        op.expect("started", 30)
        started = time.monotonic()
        start_phase()
        if kill_at is not None:
            time.sleep(kill_at)
            op.kill(signal.SIGKILL)
            if progress is not None:
                progress.append(len(cs.owned_objects(local)))
            op = _operator(env)
            op.expect("started", 30)
        outcome = cs.wait_settled(local, "mon", SETTLE_TIMEOUT, alive=lambda: op.proc.poll() is None)
        assert outcome == "Ready", outcome
        return time.monotonic() - started
    finally:
        op.kill()


def _install(kill_at: float | None, progress: list[int] | None = None) -> tuple[dict[tuple[str, str], Any], float]:
    env = _new_env()
    try:
        assert env.server is not None
        local = env.server.local
        took = _settle_with_kill(env, lambda: local.create(t.API_VERSION, t.PLURAL, cs.monitor(), namespace=cs.NS),
                                 kill_at, progress)
        return cs.snapshot(local), took
    finally:
        env.stop()


def _upgrade(kill_at: float | None, progress: list[int] | None = None,
             ) -> tuple[dict[tuple[str, str], Any], float, dict[str, str], dict[str, str]]:
    env = _new_env()
    try:
        assert env.server is not None
        local = env.server.local
        _settle_with_kill(env, lambda: local.create(t.API_VERSION, t.PLURAL, cs.monitor(), namespace=cs.NS), None)
        before = cs.pvc_uids(local)
        took = _settle_with_kill(env, lambda: local.patch(t.API_VERSION, t.PLURAL, "mon", UPGRADE, namespace=cs.NS),
                                 kill_at, progress)
        return cs.snapshot(local), took, before, cs.pvc_uids(local)
    finally:
        env.stop()


def test_install_killed_at_random_points_converges_to_the_undisturbed_result() -> None:
    rng = random.Random(4404)
    reference, duration = _install(None)
    assert any(kind == "PersistentVolumeClaim" for kind, _ in reference)
    kills: list[float] = []
    progress: list[int] = []
    for _ in range(KILLS):
        kill_at = rng.uniform(0.0, duration)
        snap, _ = _install(kill_at, progress)
        kills.append(round(kill_at, 3))
        assert cs.diff(reference, snap) == [], f"killed {kill_at:.3f}s into the install"
    report("F4-install", kills=KILLS, reference_install_s=round(duration, 2), kill_points_s=kills,
           objects_at_kill=progress, objects=len(reference))


def test_upgrade_killed_at_random_points_converges_and_keeps_every_pvc() -> None:
    rng = random.Random(4405)
    reference, duration, before, after = _upgrade(None)
    assert before == after and before, "the undisturbed upgrade itself must keep the PVCs"
    kills: list[float] = []
    for _ in range(KILLS):
        kill_at = rng.uniform(0.0, duration)
        snap, _, before, after = _upgrade(kill_at)
        kills.append(round(kill_at, 3))
        assert cs.diff(reference, snap) == [], f"killed {kill_at:.3f}s into the upgrade"
        assert after == before, f"a PVC was lost or replaced (killed {kill_at:.3f}s into the upgrade)"
    report("F4-upgrade", kills=KILLS, reference_upgrade_s=round(duration, 2), kill_points_s=kills,
           objects=len(reference), pvcs=len(before))
