"""`make demo`: the operator end to end on the embedded Kubernetes API, in under a minute.

1. start `rook envtest serve` (API emulator + simulated 3-node cluster) in its own process;
2. apply manifests/crds.yaml and manifests/common.yaml (kubectl when present, else the Python client);
3. run `rook chubaofs operator` against it;
4. apply manifests/monitor.yaml and wait until the ChubaoMonitor is Ready;
5. print the ChubaoMonitor with its status and the objects it owns;
6. stop everything it started (also on failure or Ctrl-C).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
MANIFESTS = ROOT / "manifests"
OPERATOR_NAMESPACE = "rook-chubaofs"
GROUP_VERSION = "chubaofs.rook.io/v1alpha1"
READY_TIMEOUT = 90.0


def say(message: str) -> None:
    print(f"\n==> {message}", flush=True)


def rook_command() -> list[str]:
    """The venv's `rook` console script (falls back to the module for an uninstalled checkout)."""
    script = Path(sys.executable).parent / "rook"
    return [str(script)] if script.exists() else [sys.executable, "-m", "rook_py.cli"]


@contextmanager
def process(name: str, argv: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
                                start_new_session=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        print(f"    stopped {name} (exit {proc.returncode})", flush=True)


def wait_for(predicate: Any, timeout: float, what: str, proc: subprocess.Popen[bytes] | None = None,
             log: Path | None = None) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:] if log else ""
            raise SystemExit(f"demo: {what}: process exited with {proc.returncode}\n{tail}")
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    tail = log.read_text(errors="replace")[-3000:] if log else ""
    raise SystemExit(f"demo: timed out after {timeout:.0f}s waiting for {what}\n{tail}")


def apply_manifests(kubeconfig: Path, path: Path, client: Any) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl:
        subprocess.run([kubectl, "--kubeconfig", str(kubeconfig), "apply", "-f", str(path)],
                       check=True)
        return
    from rook_py.framework.client import errors

    for doc in yaml.safe_load_all(path.read_text()):
        if not doc:
            continue
        meta = doc["metadata"]
        try:
            client.create(doc)
            print(f"    {doc['kind']}/{meta['name']} created")
        except errors.AlreadyExists:
            live = client.get(doc["apiVersion"], doc["kind"], meta["name"], meta.get("namespace"))
            doc["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
            client.update(doc)
            print(f"    {doc['kind']}/{meta['name']} configured")


def print_objects(kubeconfig: Path, client: Any, monitor: dict[str, Any]) -> None:
    name = monitor["metadata"]["name"]
    namespace = monitor["metadata"]["namespace"]
    live = client.get(GROUP_VERSION, "ChubaoMonitor", name, namespace)
    say(f"ChubaoMonitor {namespace}/{name}")
    print(yaml.safe_dump({"metadata": {k: live["metadata"].get(k) for k in ("name", "namespace", "generation",
                                                                            "finalizers")},
                          "status": live.get("status", {})}, sort_keys=False))
    kinds = [("apps/v1", "StatefulSet"), ("apps/v1", "Deployment"), ("apps/v1", "DaemonSet"),
             ("v1", "Service"), ("v1", "ConfigMap"), ("v1", "Secret"), ("v1", "PersistentVolumeClaim"),
             ("policy/v1", "PodDisruptionBudget")]
    kubectl = shutil.which("kubectl")
    if kubectl:
        say("objects in the namespace (kubectl get)")
        subprocess.run([kubectl, "--kubeconfig", str(kubeconfig), "get", "-n", namespace,
                        "chubaomonitors,statefulsets,deployments,daemonsets,services,configmaps,pvc,pdb"],
                       check=False)
        return
    say("objects in the namespace")
    for api_version, kind in kinds:
        for obj in client.list(api_version, kind, namespace)["items"]:
            owners = ",".join(f"{o['kind']}/{o['name']}" for o in obj["metadata"].get("ownerReferences", []))
            print(f"    {kind:<24} {obj['metadata']['name']:<40} owner={owners or '-'}")


def main() -> int:
    sys.path.insert(0, str(ROOT))
    from rook_py.framework.client import Client, load_config

    for needed in ("crds.yaml", "common.yaml", "monitor.yaml"):
        if not (MANIFESTS / needed).exists():
            raise SystemExit(f"demo: manifests/{needed} is missing (run `make manifests`)")
    monitor = next(d for d in yaml.safe_load_all((MANIFESTS / "monitor.yaml").read_text()) if d)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="rook-demo-") as tmp:
        work = Path(tmp)
        kubeconfig = work / "kubeconfig"
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env.pop("KUBECONFIG", None)
        say("starting the local Kubernetes API (rook envtest serve --nodes 3)")
        server_log = work / "envtest.log"
        with process("envtest", [*rook_command(), "envtest", "serve", "--kubeconfig", str(kubeconfig),
                                 "--nodes", "3"], env, server_log) as server:
            wait_for(kubeconfig.exists, 30, "the envtest kubeconfig", server, server_log)
            client = Client(load_config(str(kubeconfig)), user_agent="rook-demo")
            version = wait_for(lambda: client.request_json("GET", "/version"), 30, "the API", server, server_log)
            print(f"    API at {version.get('gitVersion', '?')}; "
                  f"export KUBECONFIG={kubeconfig} to look around while it runs")

            say("installing CRDs and RBAC (manifests/crds.yaml, manifests/common.yaml)")
            apply_manifests(kubeconfig, MANIFESTS / "crds.yaml", client)
            apply_manifests(kubeconfig, MANIFESTS / "common.yaml", client)

            say("starting the operator (rook chubaofs operator)")
            operator_env = dict(env, POD_NAMESPACE=OPERATOR_NAMESPACE, KUBECONFIG=str(kubeconfig))
            operator_log = work / "operator.log"
            with process("operator", [*rook_command(), "chubaofs", "operator", "--kubeconfig", str(kubeconfig),
                                      "--image", "rook/chubaofs:demo", "--metrics-bind-address", "127.0.0.1:0",
                                      "--health-probe-bind-address", "127.0.0.1:0", "--log-format", "console"],
                         operator_env, operator_log) as operator:
                say("creating the example ChubaoMonitor (manifests/monitor.yaml)")
                apply_manifests(kubeconfig, MANIFESTS / "monitor.yaml", client)
                name = monitor["metadata"]["name"]
                namespace = monitor["metadata"]["namespace"]
                last_phase = [""]

                def ready() -> bool:
                    live = client.get(GROUP_VERSION, "ChubaoMonitor", name, namespace)
                    status = live.get("status") or {}
                    phase = status.get("phase", "")
                    if phase != last_phase[0]:
                        components = status.get("components") or {}
                        summary = ", ".join(f"{c}={'ready' if s.get('ready') else 'not ready'}"
                                            for c, s in sorted(components.items()))
                        print(f"    phase={phase or '-'} {summary}", flush=True)
                        last_phase[0] = phase
                    return phase == "Ready" and status.get("observedGeneration") == live["metadata"]["generation"]

                wait_for(ready, READY_TIMEOUT, f"ChubaoMonitor {namespace}/{name} to be Ready", operator,
                         operator_log)
                print_objects(kubeconfig, client, monitor)
                say(f"ChubaoMonitor Ready in {time.monotonic() - started:.1f}s from a cold start; stopping")
    return 0


if __name__ == "__main__":
    sys.exit(main())
