"""Initial sync of 10,000 ConfigMaps (~1 KB each) into an informer, against the floor and the
official typed client (``python -m bench.bench_informer``).

One envtest emulator runs in its own process for the whole benchmark. Each variant runs in a
fresh child process, so its peak RSS (``resource.getrusage``, RUSAGE_SELF) is its own:

* **floor**: a bare paged list (``limit=500`` + ``continue``) over urllib3 and ``json.loads``
  into dicts, every item kept in a list. Nothing can be cheaper and still hold the objects.
* **informer**: ``SharedInformerFactory`` -> reflector -> DeltaFIFO -> indexer, until
  ``wait_for_cache_sync`` returns, with one (no-op) event handler registered.
* **typed**: the official client's ``CoreV1Api.list_namespaced_config_map`` with the same paging,
  objects kept as ``V1ConfigMap`` models.

Time is measured from the first request to the last object held; memory is the peak RSS growth
over the same span (the baseline is taken after imports, configuration and, for the informer,
API discovery, which a process does once). Variants are interleaved over ``ROUNDS`` rounds; time is
the best round (least disturbed by other processes on this small shared machine), memory the
median.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from bench._common import peak_rss_mb

N_OBJECTS = int(os.environ.get("ROOK_BENCH_INFORMER_OBJECTS", "10000"))
ROUNDS = int(os.environ.get("ROOK_BENCH_INFORMER_ROUNDS", "5"))
NAMESPACE = "bench"
PAGE = 500
VARIANTS = ("floor", "informer", "typed")


def _rss_mb() -> float:
    return peak_rss_mb()


# -- emulator process -------------------------------------------------------------------------

def _configmap(i: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": f"cm-{i:05d}", "namespace": NAMESPACE,
                     "labels": {"app": "bench", "shard": str(i % 16)},
                     "annotations": {"bench.rook.io/index": str(i)}},
        "data": {"config.yaml": f"key: value-{i:05d}\n" * 48},  # ~850 bytes of payload
    }


def _managed_fields(obj: dict[str, Any]) -> list[dict[str, Any]]:
    """The entry kube-apiserver records for a ``kubectl create`` of ``obj``."""
    md = obj["metadata"]
    fields_meta: dict[str, Any] = {
        "f:labels": {".": {}, **{f"f:{k}": {} for k in md.get("labels") or {}}},
        "f:annotations": {".": {}, **{f"f:{k}": {} for k in md.get("annotations") or {}}},
    }
    return [{"manager": "kubectl-create", "operation": "Update", "apiVersion": "v1",
             "time": md.get("creationTimestamp"), "fieldsType": "FieldsV1",
             "fieldsV1": {"f:data": {".": {}, **{f"f:{k}": {} for k in obj.get("data") or {}}},
                          "f:metadata": fields_meta}}]


def serve(kubeconfig: str, shape: str) -> None:
    """Start an emulator, load it, print READY, and serve until stdin closes.

    ``shape="managed"`` adds the ``metadata.managedFields`` kube-apiserver writes on every create
    (the emulator does not track field managers), so objects look like a real cluster's.
    """
    from rook_py.envtest.apiserver.server import APIServer

    server = APIServer(history_size=1000)
    server.start()
    try:
        local = server.local
        local.create("v1", "namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                          "metadata": {"name": NAMESPACE}})
        for i in range(N_OBJECTS):
            local.create("v1", "configmaps", _configmap(i), namespace=NAMESPACE)
        if shape == "managed":
            # Bench-only: decorate the stored objects in place, before any client reads them.
            with server.store.lock:
                for obj in server.store.items(("", "configmaps")).values():
                    obj["metadata"]["managedFields"] = _managed_fields(obj)
        server.write_kubeconfig(kubeconfig)
        print(json.dumps({"url": server.url, "token": server.token}), flush=True)
        sys.stdin.read()
    finally:
        server.stop()


# -- variants (each in its own process) -----------------------------------------------------------

def _floor(url: str, token: str, kubeconfig: str) -> tuple[float, float, int]:
    import urllib3

    http = urllib3.PoolManager(cert_reqs="CERT_NONE")
    urllib3.disable_warnings()
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    base = f"{url}/api/v1/namespaces/{NAMESPACE}/configmaps"
    http.request("GET", f"{url}/version", headers=headers)  # warm the connection, like the others
    rss0, t0 = _rss_mb(), time.perf_counter()
    items: list[dict[str, Any]] = []
    cont = ""
    while True:
        fields = {"limit": str(PAGE)}
        if cont:
            fields["continue"] = cont
        resp = http.request("GET", base, fields=fields, headers=headers)
        page = json.loads(resp.data)
        items.extend(page["items"])
        cont = page["metadata"].get("continue") or ""
        if not cont:
            break
    elapsed = time.perf_counter() - t0
    return elapsed, _rss_mb() - rss0, len(items)


def _informer(url: str, token: str, kubeconfig: str) -> tuple[float, float, int]:
    import threading

    from rook_py.framework.cache import ResourceEventHandlerFuncs, SharedInformerFactory
    from rook_py.framework.client import Client, load_config

    client = Client(load_config(kubeconfig))
    client.resource_for("v1", "ConfigMap")  # discovery: once per process, outside the measure
    factory = SharedInformerFactory(client, namespace=NAMESPACE)
    informer = factory.informer("v1", "ConfigMap")
    informer.add_event_handler(ResourceEventHandlerFuncs(add_func=lambda obj, initial: None))
    stop = threading.Event()
    rss0, t0 = _rss_mb(), time.perf_counter()
    factory.start(stop)
    if not factory.wait_for_cache_sync(300):
        raise RuntimeError("informer did not sync")
    elapsed = time.perf_counter() - t0
    rss = _rss_mb() - rss0
    count = len(informer.indexer)
    stop.set()
    return elapsed, rss, count


def _typed(url: str, token: str, kubeconfig: str) -> tuple[float, float, int]:
    from kubernetes import client as k8s
    from kubernetes import config as k8s_config

    api_client = k8s_config.new_client_from_config(config_file=kubeconfig)
    core = k8s.CoreV1Api(api_client)
    core.get_api_resources()  # warm the connection
    rss0, t0 = _rss_mb(), time.perf_counter()
    items: list[Any] = []
    cont = None
    while True:
        kwargs: dict[str, Any] = {"limit": PAGE}
        if cont:
            kwargs["_continue"] = cont
        page = core.list_namespaced_config_map(NAMESPACE, **kwargs)
        items.extend(page.items)
        cont = page.metadata._continue
        if not cont:
            break
    elapsed = time.perf_counter() - t0
    return elapsed, _rss_mb() - rss0, len(items)


def variant(name: str, url: str, token: str, kubeconfig: str) -> None:
    fn = {"floor": _floor, "informer": _informer, "typed": _typed}[name]
    elapsed, rss, count = fn(url, token, kubeconfig)
    print(json.dumps({"variant": name, "seconds": elapsed, "rss_mb": rss, "count": count}), flush=True)


# -- driver ---------------------------------------------------------------------------------------

def _child(args: list[str]) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "bench.bench_informer", *args], check=True,
                         capture_output=True, text=True, timeout=600)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def measure(shape: str) -> dict[str, list[dict[str, Any]]]:
    """All variants against one emulator process loaded with objects of ``shape``."""
    with tempfile.TemporaryDirectory() as tmp:
        kubeconfig = os.path.join(tmp, "kubeconfig")
        server = subprocess.Popen(
            [sys.executable, "-m", "bench.bench_informer", "--serve", kubeconfig, shape],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            assert server.stdout is not None
            ready = server.stdout.readline()
            if not ready:
                raise RuntimeError("emulator process exited before it was ready")
            info = json.loads(ready)
            results: dict[str, list[dict[str, Any]]] = {v: [] for v in VARIANTS}
            for _ in range(ROUNDS):
                for v in VARIANTS:
                    r = _child(["--variant", v, info["url"], info["token"], kubeconfig])
                    if r["count"] != N_OBJECTS:
                        raise RuntimeError(f"{v} held {r['count']} objects, expected {N_OBJECTS}")
                    results[v].append(r)
        finally:
            if server.stdin is not None:
                server.stdin.close()
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
    return results


def table(title: str, results: dict[str, list[dict[str, Any]]]) -> list[str]:
    # Time: the best round (the one least disturbed by other processes on this shared machine,
    # as timeit reports); memory: the median (it barely varies).
    med = {v: (min(r["seconds"] for r in rs), statistics.median(r["rss_mb"] for r in rs))
           for v, rs in results.items()}
    ft, fm = med["floor"]
    it, im = med["informer"]
    tt, tm = med["typed"]
    lines = [f"### {title}", "",
             "| variant | time (s) | peak RSS growth (MB) | time vs floor | RSS vs floor |",
             "|---|---:|---:|---:|---:|"]
    for v in VARIANTS:
        t, m = med[v]
        lines.append(f"| {v} | {t:.3f} | {m:.1f} | {t / ft:.2f}x | {m / fm:.2f}x |")
    lines += [
        "",
        f"- informer vs floor: time {it / ft:.2f}x (target <= 1.25x), memory {im / fm:.2f}x "
        "(target <= 1.25x)",
        f"- typed vs informer: {tt / it:.2f}x slower (target >= 2x), {tm / im:.2f}x more memory "
        f"(target >= 1.8x; typed vs floor is {tm / fm:.2f}x)",
        "- all rounds (s / MB): " + "; ".join(
            f"{v}: " + ", ".join(f"{r['seconds']:.2f}/{r['rss_mb']:.0f}" for r in results[v])
            for v in VARIANTS),
        "",
    ]
    return lines


def run() -> str:
    lines = [
        f"{N_OBJECTS:,} ConfigMaps (~1 KB of data each) in one namespace, pages of {PAGE}, the envtest "
        f"emulator in its own process, each variant in a fresh process, {ROUNDS} interleaved rounds: "
        "time is the best round, memory the median. The informer's figures include its reflector, DeltaFIFO, indexer and "
        "one event handler; its default transform drops `metadata.managedFields`.",
        "",
    ]
    lines += table("Objects as the emulator stores them (no managedFields)", measure("plain"))
    lines += table("Objects as kube-apiserver stores them (with managedFields)", measure("managed"))
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "--serve":
        serve(sys.argv[2], sys.argv[3])
    elif len(sys.argv) >= 6 and sys.argv[1] == "--variant":
        variant(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5])
    else:
        print(run())
