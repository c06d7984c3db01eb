"""``rook chubaofs operator`` as a process against ``rook envtest serve`` as a process: exactly
what ``make demo`` and a developer run, with the flags and environment a Deployment gives it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import suppress
from pathlib import Path
from typing import TypeVar

import pytest

from rook_py.chubaofs.api.crd import chubao_monitor_crd
from rook_py.framework.client import Client, errors, load_config
from tests.support.waiting import eventually

T = TypeVar("T")
NS = "rook-chubaofs"
pytestmark = pytest.mark.emulator_only(
    reason="runs `rook envtest serve` (the emulator as a process, as `make demo` does)")


def wait_for(what: str, fn: Callable[[], T | None], timeout: float = 30.0) -> T:
    """``eventually`` at this suite's pace; an API error or a refused connection means "not up yet"."""
    return eventually(fn, timeout, interval=0.05, ignore=(errors.ApiError, OSError), what=what)


def served_address(log: Path, server: str) -> str | None:
    """host:port from the JSON log line the framework's HTTP servers write when they bind."""
    for line in log.read_text().splitlines():
        with suppress(ValueError):
            entry = json.loads(line)
            if entry.get("event") == "serving" and entry.get("server") == server:
                return str(entry["address"])
    return None


def rook(*args: str, env: dict[str, str] | None = None, log: Path | None = None) -> subprocess.Popen[bytes]:
    out = log.open("wb") if log else subprocess.DEVNULL
    return subprocess.Popen([sys.executable, "-m", "rook_py.cli", *args], env=env or dict(os.environ),
                            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def stop(proc: subprocess.Popen[bytes], timeout: float = 30) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
            raise
    return int(proc.returncode)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[tuple[str, Client]]:
    kubeconfig = tmp_path / "kubeconfig"
    proc = rook("envtest", "serve", "--kubeconfig", str(kubeconfig), "--nodes", "2", log=tmp_path / "serve.log")
    try:
        wait_for("kubeconfig", kubeconfig.exists)
        client = Client(load_config(str(kubeconfig)))
        wait_for("API", lambda: client.list("v1", "Namespace") is not None)
        yield str(kubeconfig), client
        client.close()
    finally:
        assert stop(proc) == 0


def operator_env(kubeconfig: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ROOK_", "POD_", "AGENT_", "DISCOVER_"))}
    env.update({"KUBECONFIG": kubeconfig, "POD_NAMESPACE": NS, "ROOK_LEASE_DURATION": "2s",
                "ROOK_RENEW_DEADLINE": "1s", "ROOK_RETRY_PERIOD": "200ms", "ROOK_GRACEFUL_SHUTDOWN_TIMEOUT": "5s"})
    env.update(extra)
    return env


def namespace(client: Client) -> None:
    client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})


def test_operator_runs_installs_daemons_and_stops_cleanly(serve: tuple[str, Client], tmp_path: Path) -> None:
    kubeconfig, client = serve
    namespace(client)
    # The operator's own Pod: its container's image becomes the node daemons' image.
    client.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "op-1", "namespace": NS},
                   "spec": {"containers": [{"name": "rook-chubaofs-operator", "image": "reg/rook-py:v9"}]}})
    log = tmp_path / "operator.log"
    # Port 0: the kernel picks free ports (no race with other processes); the log says which.
    proc = rook("chubaofs", "operator", "--kubeconfig", kubeconfig, "--install-crds",
                "--metrics-bind-address", "127.0.0.1:0", env=operator_env(
                    kubeconfig, POD_NAME="op-1", ROOK_HEALTH_PROBE_BIND_ADDRESS="127.0.0.1:0",
                    DISCOVER_TOLERATIONS="- operator: Exists"), log=log)
    try:
        metrics = wait_for("metrics server", lambda: served_address(log, "metrics"))
        health = wait_for("health server", lambda: served_address(log, "health"))
        ds = wait_for("rook-discover", lambda: client.get("apps/v1", "DaemonSet", "rook-discover", NS))
        pod = ds["spec"]["template"]["spec"]
        assert pod["containers"][0]["image"] == "reg/rook-py:v9"
        assert pod["tolerations"] == [{"operator": "Exists"}]
        agent = wait_for("agent", lambda: client.get("apps/v1", "DaemonSet", "rook-chubaofs-agent", NS))
        assert agent["spec"]["updateStrategy"]["type"] == "RollingUpdate"
        lease = wait_for("lease", lambda: client.get("coordination.k8s.io/v1", "Lease",
                                                       "rook-chubaofs-operator-lock", NS))
        assert lease["spec"]["holderIdentity"] == "op-1"
        ready = wait_for("readyz", lambda: urllib.request.urlopen(
            f"http://{health}/readyz", timeout=2).status == 200)
        assert ready
        body = urllib.request.urlopen(f"http://{metrics}/metrics", timeout=2).read().decode()
        assert "leader_election_master_status" in body
        assert client.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", "chubaomonitors.chubaofs.rook.io")
    finally:
        status = stop(proc)
    text = log.read_text()
    assert status == 0, text
    first = json.loads(text.splitlines()[0])
    assert first["event"] == "starting" and first["flags"]["install-crds"] is True
    assert first["flags"]["namespace"] == NS


def test_missing_crd_is_a_clear_exit(serve: tuple[str, Client], tmp_path: Path) -> None:
    kubeconfig, client = serve
    namespace(client)
    log = tmp_path / "operator.log"
    proc = rook("chubaofs", "operator", "--metrics-bind-address", "0", "--health-probe-bind-address", "0",
                env=operator_env(kubeconfig), log=log)
    assert proc.wait(30) == 1
    assert ("rook: fatal: CRD chubaomonitors.chubaofs.rook.io is not installed: apply manifests/crds.yaml or "
            "run the operator with --install-crds") in log.read_text()


def test_switches_off_remove_the_daemonsets(serve: tuple[str, Client], tmp_path: Path) -> None:
    kubeconfig, client = serve
    namespace(client)
    client.create(chubao_monitor_crd())
    wait_for("CRD established", lambda: any(
        c["type"] == "Established" and c["status"] == "True" for c in client.get(
            "apiextensions.k8s.io/v1", "CustomResourceDefinition", "chubaomonitors.chubaofs.rook.io")
        .get("status", {}).get("conditions", [])))
    common = ["chubaofs", "operator", "--metrics-bind-address", "0", "--health-probe-bind-address", "0",
              "--image", "rook-py:test"]
    proc = rook(*common, env=operator_env(kubeconfig), log=tmp_path / "1.log")
    try:
        wait_for("agent", lambda: client.get("apps/v1", "DaemonSet", "rook-chubaofs-agent", NS))
        uid = client.get("apps/v1", "DaemonSet", "rook-discover", NS)["metadata"]["uid"]
    finally:
        assert stop(proc) == 0
    proc = rook(*common, env=operator_env(kubeconfig, ROOK_ENABLE_AGENT="false"), log=tmp_path / "2.log")
    try:
        def agent_gone() -> bool:
            try:
                client.get("apps/v1", "DaemonSet", "rook-chubaofs-agent", NS)
            except errors.NotFound:
                return True
            return False

        wait_for("agent removed", agent_gone)
        assert client.get("apps/v1", "DaemonSet", "rook-discover", NS)["metadata"]["uid"] == uid
    finally:
        assert stop(proc) == 0
