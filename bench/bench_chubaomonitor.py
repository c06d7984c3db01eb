"""The ChubaoFS operator under measurement: B4 (one ChubaoMonitor) and B5 (200 in 50 namespaces).

``python -m bench.bench_chubaomonitor`` prints the Markdown section; ``run()`` returns it.

The emulator runs in its own process with the simulated cluster (kubelet, StatefulSet and
Deployment controllers, PVC binding, garbage collection), so "Ready" means what it means on a
cluster: every workload's pods report ready. The operator runs in its own process (the production
``ChubaoFSProvider.setup`` wiring on a ``Manager``; hot reloads go to a no-op reloader, since no
Prometheus runs here) and identifies itself with its own User-Agent, so every request it makes is
counted on the server.

* **B4**: create one ChubaoMonitor, time until it is Ready at its generation, and the operator's
  API calls (all, and writes) from the create to Ready; median of ``ROUNDS`` monitors, each in a
  fresh namespace. Then ``STEADY_SECONDS`` with nothing changing: the operator's API calls per
  minute (watches and their renewals included) and its writes (target: 0).
* **B5**: one operator, ``B5_MONITORS`` monitors created at once across ``B5_NAMESPACES``
  namespaces: time from the first create until all are Ready, the operator's peak RSS and CPU
  seconds (from /proc, so the operator does not measure itself).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench._common import (
    Contender,
    Emulator,
    RealServer,
    emit,
    env_float,
    env_int,
    fmt,
    median,
    proc_usage,
    real_server_available,
)

ROUNDS = env_int("ROOK_BENCH_ROUNDS", 3)
STEADY_SECONDS = env_float("ROOK_BENCH_STEADY_SECONDS", 60.0)
B5_MONITORS = env_int("ROOK_BENCH_B5_MONITORS", 200)
B5_NAMESPACES = env_int("ROOK_BENCH_B5_NAMESPACES", 50)
WORKERS = env_int("ROOK_BENCH_CHUBAO_WORKERS", 4)
TIMEOUT = env_float("ROOK_BENCH_TIMEOUT", 600.0)
B5_TIMEOUT = env_float("ROOK_BENCH_B5_TIMEOUT", 600.0)
OPERATOR_UA = "bench-chubaofs-operator"
WRITE_VERBS = ("create", "update", "patch", "delete", "deletecollection")


# == the operator process ========================================================================

def operator_main(argv: Sequence[str]) -> None:
    import threading

    from rook_py.framework.logging import configure_logging

    # Before the other imports: module-level loggers bind the configuration current at import.
    configure_logging("warning", "json", stream=sys.stderr)
    from rook_py.chubaofs.provider import ChubaoFSProvider
    from rook_py.chubaofs.settings import ChubaoFSSettings
    from rook_py.framework import Manager, ManagerOptions
    from rook_py.framework.client import Client, load_config
    from rook_py.framework.provider import OperatorSettings

    parser = argparse.ArgumentParser(prog="python -m bench.bench_chubaomonitor --operator")
    parser.add_argument("--workers", type=int, default=WORKERS)
    args = parser.parse_args(argv)

    class NoReload:
        def reload(self, base_urls: Sequence[str]) -> list[str]:
            return []

    client = Client(load_config(), user_agent=OPERATOR_UA)
    manager = Manager(client, ManagerOptions(metrics_bind_address="0", health_probe_bind_address="0"))
    ChubaoFSProvider(reloader=NoReload()).setup(manager, OperatorSettings(
        provider="chubaofs", metrics_bind_address="0", max_concurrent_reconciles=args.workers,
        provider_settings=ChubaoFSSettings(reload_settle=0.0)))

    def ready() -> None:
        manager.elected.wait()
        if manager.cache.wait_for_cache_sync(60):
            emit("ready", t=time.monotonic())

    threading.Thread(target=ready, daemon=True).start()
    manager.start()


# == harness =====================================================================================

def _monitor(name: str, namespace: str) -> dict[str, Any]:
    from rook_py.chubaofs.api import types as t

    return {"apiVersion": t.API_VERSION, "kind": t.KIND, "metadata": {"name": name, "namespace": namespace},
            "spec": {"cluster": {"name": "cfs"}, "consul": {"replicas": 1}}}


def _ready_set(observer: Any, namespace: str | None = None) -> set[tuple[str, str]]:
    from rook_py.chubaofs.api import types as t

    items = observer.list(t.API_VERSION, t.KIND, namespace)["items"]
    out = set()
    for m in items:
        st = m.get("status") or {}
        if st.get("phase") == t.PHASE_READY and st.get("observedGeneration") == m["metadata"].get("generation"):
            out.add((m["metadata"]["namespace"], m["metadata"]["name"]))
    return out


def _wait_ready(observer: Any, expected: int, namespace: str | None, timeout: float, poll: float,
                ) -> tuple[float, int]:
    """(when, how many were Ready) once ``expected`` are Ready, or when ``timeout`` ran out."""
    deadline = time.monotonic() + timeout
    while True:
        ready = len(_ready_set(observer, namespace))
        now = time.monotonic()
        if ready >= expected or now > deadline:
            return now, ready
        time.sleep(poll)


def _operator(emu: Emulator | RealServer) -> Contender:
    return Contender("bench.bench_chubaomonitor", ["--operator", "--workers", str(WORKERS)], emu.kubeconfig)


def _calls(emu: Emulator) -> tuple[int, int]:
    """(all requests, write requests) the operator made so far."""
    total = emu.stats.count(user_agent=OPERATOR_UA)
    writes = sum(emu.stats.count(user_agent=OPERATOR_UA, verb=v) for v in WRITE_VERBS)
    return total, writes


OWNED_KINDS = (("v1", "ConfigMap"), ("v1", "Secret"), ("v1", "Service"), ("apps/v1", "StatefulSet"),
               ("apps/v1", "Deployment"), ("policy/v1", "PodDisruptionBudget"), ("networking.k8s.io/v1", "Ingress"))


def _largest_owned(observer: Any, namespace: str, count: int = 3) -> list[tuple[str, int]]:
    """The ``count`` largest objects a monitor owns in ``namespace``: (kind/name, bytes as
    served, i.e. compact JSON, managedFields included)."""
    sizes = []
    for api_version, kind in OWNED_KINDS:
        for obj in observer.list(api_version, kind, namespace).get("items") or []:
            size = len(json.dumps(obj, separators=(",", ":")).encode())
            sizes.append((f"{kind}/{obj['metadata']['name']}", size))
    return sorted(sizes, key=lambda s: -s[1])[:count]


def run_b4() -> tuple[str, dict[str, float]]:
    from rook_py.chubaofs.api.crd import chubao_monitor_crd

    rows: list[dict[str, float]] = []
    with Emulator(crds=[chubao_monitor_crd()], simulate_cluster=True, nodes=3) as emu:
        observer = emu.client("bench-observer")
        op = _operator(emu)
        try:
            op.expect("ready", 60)
            for r in range(ROUNDS):
                namespace = f"b4-{r}"
                emu.ensure_namespace(namespace)
                calls0, writes0 = _calls(emu)
                t0 = time.monotonic()
                observer.create(_monitor("mon", namespace))
                t1, ready = _wait_ready(observer, 1, namespace, TIMEOUT, 0.02)
                if not ready:
                    raise TimeoutError(f"the monitor in {namespace} was not Ready within {TIMEOUT}s")
                calls1, writes1 = _calls(emu)
                rows.append({"seconds": t1 - t0, "calls": calls1 - calls0, "writes": writes1 - writes0})
                print(f"B4 round {r}: {rows[-1]}", file=sys.stderr, flush=True)
            time.sleep(2.0)  # let the last status write's own watch events settle
            largest = _largest_owned(observer, "b4-0")
            calls0, writes0 = _calls(emu)
            time.sleep(STEADY_SECONDS)
            calls1, writes1 = _calls(emu)
            steady_calls = (calls1 - calls0) * 60.0 / STEADY_SECONDS
            steady_writes = (writes1 - writes0) * 60.0 / STEADY_SECONDS
            by_verb = {}
            for row in emu.stats.snapshot():
                if str(row.get("userAgent", "")).startswith(OPERATOR_UA):
                    by_verb[row["verb"]] = by_verb.get(row["verb"], 0) + int(row["count"])
        finally:
            op.stop()
            observer.close()
    summary = {"B4 create -> Ready s": median([r["seconds"] for r in rows]),
               "B4 writes to Ready": median([r["writes"] for r in rows]),
               "B4 steady-state writes/min": steady_writes}
    return "\n".join([
        f"### B4 one ChubaoMonitor (median of {ROUNDS}, each in a fresh namespace; operator with "
        f"{WORKERS} workers)",
        "",
        "| create -> Ready s | API calls to Ready | of which writes | steady-state calls/min | "
        "steady-state writes/min |",
        "|---:|---:|---:|---:|---:|",
        f"| {fmt(median([r['seconds'] for r in rows]), 2)} | {fmt(median([r['calls'] for r in rows]), 0)} | "
        f"{fmt(median([r['writes'] for r in rows]), 0)} | {fmt(steady_calls, 1)} | {fmt(steady_writes, 1)} |",
        "",
        f"Steady state measured over {STEADY_SECONDS:.0f} s with {ROUNDS} Ready monitors. Target: 0 "
        f"writes. Operator requests by verb over the whole run: {dict(sorted(by_verb.items()))}.",
        "",
        "Largest owned objects (bytes as served, managedFields included): "
        + ", ".join(f"{name} {size:,}" for name, size in largest) + ".",
    ]), summary


def run_b5() -> str:
    from rook_py.chubaofs.api.crd import chubao_monitor_crd

    with Emulator(crds=[chubao_monitor_crd()], simulate_cluster=True, nodes=3, history_size=50_000) as emu:
        namespaces = [f"b5-{i:02d}" for i in range(B5_NAMESPACES)]
        for ns in namespaces:
            emu.ensure_namespace(ns)
        monitors = [_monitor(f"mon-{i:03d}", namespaces[i % len(namespaces)]) for i in range(B5_MONITORS)]
        observer = emu.client("bench-observer")
        server_pid = emu.pid
        op = _operator(emu)
        try:
            op.expect("ready", 60)
            rss0, cpu0 = proc_usage(op.proc.pid)
            server_cpu0 = proc_usage(server_pid)[1]
            t0 = time.monotonic()
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(observer.create, monitors))
            created = time.monotonic() - t0
            t1, ready = _wait_ready(observer, B5_MONITORS, None, B5_TIMEOUT, 0.5)
            rss, cpu = proc_usage(op.proc.pid)
            server_cpu = proc_usage(server_pid)[1]
            calls, writes = _calls(emu)
        finally:
            op.stop()
            observer.close()
    seconds = t1 - t0
    finished = ready >= B5_MONITORS
    return "\n".join([
        f"### B5 scale: {B5_MONITORS} ChubaoMonitors in {B5_NAMESPACES} namespaces, one operator "
        f"({WORKERS} workers)",
        "",
        "| Ready | seconds | monitors Ready/s | operator peak RSS MiB | operator CPU s | emulator CPU s "
        "| operator API calls | writes |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {ready}/{B5_MONITORS}{'' if finished else ' (timed out)'} | {fmt(seconds, 1)} | "
        f"{fmt(ready / seconds, 2)} | {fmt(rss)} | {fmt(cpu - cpu0, 1)} | {fmt(server_cpu - server_cpu0, 1)} | "
        f"{calls} | {writes} |",
        "",
        f"Creating the {B5_MONITORS} monitors took {created:.1f} s of that. RSS before the first create: "
        f"{rss0:.1f} MiB. CPU seconds count from the first create. The emulator process (API server plus "
        "simulated kubelet, workload controllers and garbage collector for every pod) shares the 2 cores; "
        "when its CPU seconds approach the elapsed time it, not the operator, is the bottleneck.",
    ])


# == B4 on a real kube-apiserver ================================================================

class WorkloadStandIn:
    """Writes the status kube-controller-manager and kubelets would write for the StatefulSets and
    Deployments in one namespace: all replicas updated and ready at the current generation.

    A real control plane from KUBEBUILDER_ASSETS runs no controllers and no kubelet, so without
    this nothing would ever become Ready. It watches both kinds (one long watch each, opened
    before the measurement) and answers each new generation with one status patch; every request
    it makes is the harness's, counted in this process and subtracted from the server's counts.
    """

    def __init__(self, server: RealServer, namespace: str) -> None:
        import threading

        self.client = server.client("bench-workload-stand-in")
        self.namespace = namespace
        self.stop_event = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(kind,), daemon=True, name=f"stand-in-{kind}")
                        for kind in ("StatefulSet", "Deployment")]
        self.opened = threading.Barrier(len(self.threads) + 1)

    def __enter__(self) -> WorkloadStandIn:
        for thread in self.threads:
            thread.start()
        self.opened.wait(30)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_event.set()
        self.client.close()
        for thread in self.threads:
            thread.join(5)

    def _run(self, kind: str) -> None:
        from rook_py.framework.client import errors

        try:
            self._serve(kind)
        except errors.ApiError:
            if not self.stop_event.is_set():  # closing the client ends the watch: expected then
                raise

    def _serve(self, kind: str) -> None:
        from rook_py.framework.client import errors

        rv = self.client.list("apps/v1", kind, self.namespace)["metadata"]["resourceVersion"]
        with self.client.watch("apps/v1", kind, self.namespace, resource_version=rv, timeout_seconds=3600,
                               read_timeout=3700, allow_watch_bookmarks=False) as stream:
            self.opened.wait(30)
            for event in stream:
                if self.stop_event.is_set():
                    return
                obj = event["object"]
                generation = obj["metadata"].get("generation")
                if event["type"] == "DELETED" or (obj.get("status") or {}).get("observedGeneration") == generation:
                    continue
                replicas = int((obj.get("spec") or {}).get("replicas", 1))
                status = {"observedGeneration": generation, "replicas": replicas, "readyReplicas": replicas,
                          "updatedReplicas": replicas, "availableReplicas": replicas}
                if kind == "StatefulSet":
                    status.update(currentReplicas=replicas, currentRevision="r1", updateRevision="r1")
                try:
                    self.client.patch("apps/v1", kind, obj["metadata"]["name"], {"status": status},
                                      namespace=self.namespace, subresource="status")
                except errors.NotFound:
                    continue


def _harness_requests() -> tuple[int, int]:
    """(requests, writes) this harness process has sent so far: every framework Client counts
    its requests in rest_client_requests_total{code,method,host}."""
    from rook_py.framework.metrics import REGISTRY

    total = writes = 0
    for metric in REGISTRY.collect():
        for sample in metric.samples:
            if sample.name == "rest_client_requests_total":
                total += int(sample.value)
                if sample.labels.get("method") in ("POST", "PUT", "PATCH", "DELETE"):
                    writes += int(sample.value)
    return total, writes


def _server_calls(real: RealServer) -> tuple[int, int]:
    """(requests other than watches, writes) the real server answered, less its own Lease and
    Endpoints traffic."""
    from rook_py.envtest.requestcounts import SERVER_OWN_RESOURCES

    rows = [r for r in real.stats.snapshot() if r["resource"] not in SERVER_OWN_RESOURCES and r["verb"] != "watch"]
    return sum(r["count"] for r in rows), sum(r["count"] for r in rows if r["verb"] in WRITE_VERBS)


def _operator_calls(real: RealServer) -> tuple[int, int]:
    """(requests other than watches, writes) of the operator so far: the server's counts less this
    harness's own requests (nothing else talks to the server during B4)."""
    (calls, writes), (harness_calls, harness_writes) = _server_calls(real), _harness_requests()
    return calls - harness_calls, writes - harness_writes


def run_b4_real() -> tuple[str, dict[str, float]]:
    """B4 against etcd + kube-apiserver: the operator's calls and writes to Ready and in steady state,
    from kube-apiserver's apiserver_request_total less the harness's own requests."""
    from rook_py.chubaofs.api.crd import chubao_monitor_crd

    rows: list[dict[str, float]] = []
    with RealServer(crds=[chubao_monitor_crd()]) as real:
        observer = real.client("bench-observer")
        op = _operator(real)
        try:
            op.expect("ready", 60)
            for r in range(ROUNDS):
                namespace = f"b4-{r}"
                real.ensure_namespace(namespace)
                with WorkloadStandIn(real, namespace):
                    time.sleep(0.5)
                    calls0, writes0 = _operator_calls(real)
                    t0 = time.monotonic()
                    observer.create(_monitor("mon", namespace))
                    t1, ready = _wait_ready(observer, 1, namespace, TIMEOUT, 0.05)
                    if not ready:
                        raise TimeoutError(f"the monitor in {namespace} was not Ready within {TIMEOUT}s")
                    time.sleep(0.5)  # the stand-in's last status patch is counted by then
                    calls1, writes1 = _operator_calls(real)
                rows.append({"seconds": t1 - t0, "calls": calls1 - calls0, "writes": writes1 - writes0})
                print(f"B4 (real) round {r}: {rows[-1]}", file=sys.stderr, flush=True)
            time.sleep(2.0)
            calls0, writes0 = _operator_calls(real)
            time.sleep(STEADY_SECONDS)
            calls1, writes1 = _operator_calls(real)
            steady_calls = (calls1 - calls0) * 60.0 / STEADY_SECONDS
            steady_writes = (writes1 - writes0) * 60.0 / STEADY_SECONDS
        finally:
            op.stop()
            observer.close()
    summary = {"B4 create -> Ready s": median([r["seconds"] for r in rows]),
               "B4 API calls to Ready (watches not counted)": median([r["calls"] for r in rows]),
               "B4 writes to Ready": median([r["writes"] for r in rows]),
               "B4 steady-state writes/min": steady_writes}
    return "\n".join([
        f"### Real server: B4 one ChubaoMonitor (median of {ROUNDS}, each in a fresh namespace; operator "
        f"with {WORKERS} workers)",
        "",
        "| create -> Ready s | API calls to Ready (watches not counted) | of which writes | "
        "steady-state calls/min (no watches) | steady-state writes/min |",
        "|---:|---:|---:|---:|---:|",
        f"| {fmt(summary['B4 create -> Ready s'], 2)} | "
        f"{fmt(summary['B4 API calls to Ready (watches not counted)'], 0)} | "
        f"{fmt(summary['B4 writes to Ready'], 0)} | {fmt(steady_calls, 1)} | {fmt(steady_writes, 1)} |",
        "",
        "etcd + kube-apiserver run no controllers and no kubelet: the harness stands in for them, "
        "patching each StatefulSet's and Deployment's status to all replicas ready at its generation "
        "(one status write per generation). Counts are kube-apiserver's own apiserver_request_total, "
        "less every request of the harness process (the observer's polling, the stand-in's status "
        "patches, the create; counted by its clients) and the server's own Lease/Endpoints traffic; "
        "watches are left out (the server counts a watch when it ends).",
    ]), summary


def run() -> str:
    sections = []
    emulator: dict[str, float] = {}
    try:
        body, emulator = run_b4()
        sections.append(body)
    except Exception as exc:  # one failed part must not hide the others' figures
        sections.append(f"### run_b4 failed\n\n```\n{exc!r}\n```")
    try:
        sections.append(run_b5())
    except Exception as exc:
        sections.append(f"### run_b5 failed\n\n```\n{exc!r}\n```")
    if real_server_available():
        sections.append(run_real(emulator))
    else:
        sections.append("B4 on a real kube-apiserver needs `KUBEBUILDER_ASSETS` (etcd and kube-apiserver); "
                        "not set, so it was not measured this run.")
    return "\n\n".join(sections)


def run_real(emulator: dict[str, float] | None = None) -> str:
    """B4 on etcd + kube-apiserver, and beside the emulator's B4 figures when given."""
    from bench.bench_frameworks import side_by_side

    try:
        body, real = run_b4_real()
    except Exception as exc:
        return f"### run_b4_real failed\n\n```\n{exc!r}\n```"
    if not emulator:
        return body
    return body + "\n\n" + side_by_side({"emulator": emulator, "real": real}).replace(
        "### Emulator and real kube-apiserver side by side", "### B4: emulator and real kube-apiserver side by side")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--operator":
        operator_main(sys.argv[2:])
    elif sys.argv[1:] == ["--real"]:   # only the real-server section (needs KUBEBUILDER_ASSETS)
        print(run_real())
    else:
        print(run())
