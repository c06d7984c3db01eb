"""The operator settings ConfigMap on a running ``rook chubaofs operator`` process, configured the way
a Rook user configures Rook (``ROOK_LOG_LEVEL=INFO``, ``rook-<provider>-operator-config``): an edit
is applied live where it can be, and otherwise the operator releases its Lease and exits 0."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from rook_py.chubaofs.api.crd import chubao_monitor_crd
from rook_py.framework.client import errors
from tests.support.waiting import eventually

T = TypeVar("T")
NS = "rook-chubaofs"
CONFIG = "rook-chubaofs-operator-config"
LEASE = "rook-chubaofs-operator-lock"


def wait_for(what: str, fn: Callable[[], T | None], timeout: float = 30.0) -> T:
    return eventually(fn, timeout, interval=0.05, ignore=(errors.ApiError,), what=what)


def log_lines(path: Path) -> list[dict[str, Any]]:
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def discover_pod(admin: Any) -> dict[str, Any]:
    return dict(admin.get("apps/v1", "DaemonSet", "rook-discover", NS)["spec"]["template"]["spec"])


def env_of(pod: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in pod["containers"][0]["env"]}


def test_settings_configmap_live_change_then_clean_restart(envtest: Any, tmp_path: Path) -> None:
    admin = envtest.client()
    admin.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    envtest.install_crds([chubao_monitor_crd()])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ROOK_", "POD_", "AGENT_", "DISCOVER_"))}
    env.update({"KUBECONFIG": envtest.kubeconfig, "POD_NAMESPACE": NS, "POD_NAME": "op-1",
                "ROOK_IMAGE": "rook-py:1", "ROOK_LOG_LEVEL": "INFO", "ROOK_LEADER_ELECT": "True",
                "ROOK_LEASE_DURATION": "2s", "ROOK_RENEW_DEADLINE": "1s", "ROOK_RETRY_PERIOD": "200ms",
                "ROOK_GRACEFUL_SHUTDOWN_TIMEOUT": "5s", "ROOK_METRICS_BIND_ADDRESS": "0",
                "ROOK_HEALTH_PROBE_BIND_ADDRESS": "0"})
    log = tmp_path / "operator.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "rook_py.cli", "chubaofs", "operator"], env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for("leadership", lambda: admin.get("coordination.k8s.io/v1", "Lease", LEASE, NS)["spec"].get(
            "holderIdentity") == "op-1")
        pod = wait_for("rook-discover", lambda: discover_pod(admin))
        assert env_of(pod)["ROOK_LOG_LEVEL"] == "info" and "tolerations" not in pod

        # Live: the log level (Rook's spelling) and a toleration of the node daemons; a value that
        # does not parse is reported and changes nothing.
        admin.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": CONFIG, "namespace": NS},
                      "data": {"ROOK_LOG_LEVEL": "DEBUG", "DISCOVER_TOLERATIONS": "- operator: Exists",
                               "ROOK_ENABLE_AGENT": "sometimes"}})
        pod = wait_for("toleration applied", lambda: (p := discover_pod(admin)).get("tolerations") and p)
        assert pod["tolerations"] == [{"operator": "Exists"}]
        assert env_of(pod)["ROOK_LOG_LEVEL"] == "debug"  # the daemons follow the operator's level
        assert admin.get("apps/v1", "DaemonSet", "rook-chubaofs-agent", NS)
        lines = wait_for("live change logged", lambda: (ls := log_lines(log)) and any(
            e["event"] == "operator settings applied live" for e in ls) and ls)
        assert any("ROOK_ENABLE_AGENT: invalid boolean 'sometimes'" in str(e.get("problem")) for e in lines)
        assert proc.poll() is None

        # Live: a node-daemon switch turned off removes its DaemonSet.
        live = admin.get("v1", "ConfigMap", CONFIG, NS)
        live["data"]["ROOK_ENABLE_AGENT"] = "F"
        admin.update(live)
        wait_for("agent removed", lambda: not [d for d in admin.list("apps/v1", "DaemonSet", NS)["items"]
                                               if d["metadata"]["name"] == "rook-chubaofs-agent"])
        assert proc.poll() is None

        # Restart: the lease duration cannot change under a running elector.
        live = admin.get("v1", "ConfigMap", CONFIG, NS)
        live["data"]["ROOK_LEASE_DURATION"] = "3s"
        admin.update(live)
        assert proc.wait(30) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    lines = log_lines(log)
    restart = next(e for e in lines if e["event"].startswith("operator settings changed that take effect"))
    assert restart["restart_for"] == ["ROOK_LEASE_DURATION"] and restart["values"] == {"ROOK_LEASE_DURATION": "3s"}
    # At debug level since the first live change: the debug lines of the later events show.
    seen = [e for e in lines if e["event"] == "operator settings ConfigMap seen"]
    assert [e["level"] for e in seen] == ["debug", "debug"] and "ROOK_LEASE_DURATION" in seen[-1]["keys"]
    lease = admin.get("coordination.k8s.io/v1", "Lease", LEASE, NS)
    assert not lease["spec"].get("holderIdentity"), lease  # released before exiting
    assert lines[-1]["event"] == "operator stopped to start again with new settings"
