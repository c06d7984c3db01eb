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
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench._common import Contender, Emulator, emit, env_float, env_int, fmt, median, proc_usage

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


def _operator(emu: Emulator) -> Contender:
    return Contender("bench.bench_chubaomonitor", ["--operator", "--workers", str(WORKERS)], emu.kubeconfig)


def _calls(emu: Emulator) -> tuple[int, int]:
    """(all requests, write requests) the operator made so far."""
    total = emu.stats.count(user_agent=OPERATOR_UA)
    writes = sum(emu.stats.count(user_agent=OPERATOR_UA, verb=v) for v in WRITE_VERBS)
    return total, writes


def run_b4() -> str:
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
    ])


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


def run() -> str:
    sections = []
    for part in (run_b4, run_b5):
        try:
            sections.append(part())
        except Exception as exc:  # one failed part must not hide the other's figures
            sections.append(f"### {part.__name__} failed\n\n```\n{exc!r}\n```")
    return "\n\n".join(sections)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--operator":
        operator_main(sys.argv[2:])
    else:
        print(run())
