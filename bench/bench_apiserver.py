"""Benchmark of the envtest API-server emulator through the official Python client.

The emulator runs in its own process (as a real kube-apiserver would); this process drives it
with the official ``kubernetes`` client and 8 threads, through the kubeconfig the emulator writes
(HTTPS with a bearer token, exactly how kubectl and operators connect).

Measured:
* GET throughput: 8 threads reading one small ConfigMap;
* create throughput: 8 threads creating small ConfigMaps;
* watch fan-out: 10 watchers on one namespace while the emulator commits 1,000 events/s; every
  watcher must receive every event (checked by name), and the delivered rate is reported.

``run()`` returns a Markdown section; ``python -m bench.bench_apiserver`` prints it. Figures depend
on the machine and are reported, not asserted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from typing import Any

THREADS = 8
WATCHERS = 10
DURATION = float(os.environ.get("ROOK_BENCH_SECONDS", "5"))
EVENT_RATE = 1000
EVENT_COUNT = int(os.environ.get("ROOK_BENCH_EVENTS", "5000"))

# The emulator process: serves until its stdin closes. A control endpoint lets the benchmark ask
# the emulator itself to commit events at a fixed rate (the producer must not share this
# process's GIL with the watchers being measured).
_SERVER = r"""
import sys, threading, time
from rook_py.envtest.apiserver.server import APIServer

server = APIServer(history_size=50_000).start()

def produce(method, rest, body):
    count, rate, ns = int(body["count"]), float(body["rate"]), body.get("namespace", "bench-watch")
    def run():
        start = time.monotonic()
        for i in range(count):
            due = start + i / rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            server.local.create("v1", "configmaps",
                                {"metadata": {"name": f"ev-{i}", "namespace": ns}, "data": {"i": str(i)}})
    threading.Thread(target=run, daemon=True).start()
    return 200, {"started": count}

server.register_control("bench/produce", produce)
server.write_kubeconfig(sys.argv[1])
print(server.url, server.token, flush=True)
sys.stdin.read()
server.stop()
"""


def _start_server(kubeconfig: str) -> tuple[subprocess.Popen[str], str, str]:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.Popen([sys.executable, "-c", _SERVER, kubeconfig], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, cwd=root,
                            env={**os.environ, "PYTHONPATH": root})
    assert proc.stdout is not None
    first = proc.stdout.readline().split()
    if len(first) != 2:
        raise RuntimeError("the emulator process did not start")
    return proc, first[0], first[1]


def _threads(n: int, target: Callable[[int], None]) -> float:
    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start


def _bench_gets(core: Any) -> tuple[int, float]:
    from kubernetes import client

    core.create_namespaced_config_map("default", client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="bench-get"), data={"k": "v"}))
    counts = [0] * THREADS
    stop_at = time.perf_counter() + DURATION

    def worker(i: int) -> None:
        while time.perf_counter() < stop_at:
            core.read_namespaced_config_map("bench-get", "default")
            counts[i] += 1
    elapsed = _threads(THREADS, worker)
    return sum(counts), elapsed


def _bench_creates(core: Any) -> tuple[int, float]:
    from kubernetes import client

    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="bench-create")))
    counts = [0] * THREADS
    stop_at = time.perf_counter() + DURATION

    def worker(i: int) -> None:
        n = 0
        while time.perf_counter() < stop_at:
            core.create_namespaced_config_map("bench-create", client.V1ConfigMap(
                metadata=client.V1ObjectMeta(name=f"c-{i}-{n}"), data={"k": "v"}))
            n += 1
        counts[i] = n
    elapsed = _threads(THREADS, worker)
    return sum(counts), elapsed


def _control(url: str, token: str, path: str, body: dict[str, Any]) -> None:
    req = urllib.request.Request(f"{url}/envtest/v1/{path}", data=json.dumps(body).encode(), method="POST",
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        resp.read()


def _bench_watch(core: Any, url: str, token: str) -> tuple[list[int], float, float]:
    """(events received per watcher, seconds from first to last event, production seconds)."""
    from kubernetes import client, watch

    ns = "bench-watch"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    rv = core.list_namespaced_config_map(ns).metadata.resource_version
    received = [0] * WATCHERS
    missing: list[set[str]] = [set(f"ev-{i}" for i in range(EVENT_COUNT)) for _ in range(WATCHERS)]
    first_last = [[0.0, 0.0] for _ in range(WATCHERS)]
    ready = threading.Barrier(WATCHERS + 1)

    def watcher(i: int) -> None:
        w = watch.Watch()
        ready.wait()
        # deserialize=False: the client's model deserialisation would measure the client, not the server
        for event in w.stream(core.list_namespaced_config_map, ns, resource_version=rv, timeout_seconds=120,
                              deserialize=False):
            if event["type"] != "ADDED":
                continue
            now = time.perf_counter()
            if not received[i]:
                first_last[i][0] = now
            first_last[i][1] = now
            received[i] += 1
            missing[i].discard(event["object"]["metadata"]["name"])
            if received[i] >= EVENT_COUNT:
                w.stop()

    threads = [threading.Thread(target=watcher, args=(i,), daemon=True) for i in range(WATCHERS)]
    for t in threads:
        t.start()
    ready.wait()
    time.sleep(0.5)  # let every watch request reach the server
    _control(url, token, "bench/produce", {"count": EVENT_COUNT, "rate": EVENT_RATE, "namespace": ns})
    start = time.perf_counter()
    for t in threads:
        t.join(timeout=EVENT_COUNT / EVENT_RATE + 60)
    produced = time.perf_counter() - start
    lost = sum(len(m) for m in missing)
    if lost:
        raise RuntimeError(f"watch fan-out lost {lost} events")
    span = max(fl[1] for fl in first_last) - min(fl[0] for fl in first_last)
    return received, span, produced


def run() -> str:
    from kubernetes import client, config

    with tempfile.TemporaryDirectory() as tmp:
        kubeconfig = os.path.join(tmp, "kubeconfig")
        proc, url, token = _start_server(kubeconfig)
        try:
            api_client = config.new_client_from_config(config_file=kubeconfig)
            api_client.rest_client.pool_manager.connection_pool_kw["maxsize"] = THREADS + WATCHERS + 2
            core = client.CoreV1Api(api_client)
            gets, get_s = _bench_gets(core)
            creates, create_s = _bench_creates(core)
            received, span, _ = _bench_watch(core, url, token)
        finally:
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait(timeout=30)
    per_watcher = EVENT_COUNT / span if span else float("inf")
    lines = [
        "## envtest API-server emulator",
        "",
        f"Official `kubernetes` Python client, {THREADS} threads, emulator in its own process, HTTPS + "
        f"bearer token via the written kubeconfig, {os.cpu_count()} CPUs.",
        "",
        "| measurement | result | target |",
        "|---|---|---|",
        f"| GET of a small ConfigMap | {gets / get_s:,.0f} req/s ({gets} in {get_s:.1f} s) | >= 1,000 req/s |",
        f"| create of small ConfigMaps | {creates / create_s:,.0f} req/s ({creates} in {create_s:.1f} s) | "
        f">= 700 req/s |",
        f"| watch fan-out, {WATCHERS} watchers, {EVENT_RATE:,} events/s produced | "
        f"{per_watcher:,.0f} events/s per watcher, {sum(received):,} of {EVENT_COUNT * WATCHERS:,} delivered, "
        f"0 lost | 1,000 events/s, none lost |",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(run())
