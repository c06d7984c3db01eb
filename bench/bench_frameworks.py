"""rook-py against kopf on one emulator: throughput (B1), memory and initial sync (B2), latency (B3).

``python -m bench.bench_frameworks`` prints the Markdown section; ``run()`` returns it.

* **B1 throughput.** ``B1_OBJECTS`` Widgets exist before any operator runs; the operator starts and
  writes ``status.processed`` on each. Contenders: rook-py (Manager + ControllerBuilder,
  ``WORKERS`` concurrent reconciles, a status merge patch only when the field is not yet set);
  kopf (``@kopf.on.create``/``@kopf.on.update``, see bench/kopf_operator.py); and *the limit*:
  the same status patches sent by a plain pool of ``WORKERS`` threads, with no list, watch or
  cache -- no operator can write faster through this server. "Caught up" is observed by one
  watcher in the harness (the commit time of the last status write). Write calls are counted on
  the server per User-Agent. After the last round each operator idles ``IDLE_SECONDS`` and the
  writes it makes meanwhile are counted.
* **B2 initial sync** of ``B2_OBJECTS`` ConfigMaps (~1 KB): rook-py's informer (list + watch into
  the indexer, one no-op handler) against kopf (``@kopf.on.event``, until every object was seen)
  and the official typed client (``CoreV1Api.list_namespaced_config_map``, paged, into
  ``V1ConfigMap`` models). Peak RSS of each contender process, and its growth over the baseline
  taken after imports.
* **B3 latency**: the harness creates Widgets at ``B3_RATE``/s with ``spec.sent`` = its monotonic
  clock just before the request; the handler notes ``now - sent`` when it starts: write -> commit ->
  watch event -> queue -> reconcile start. p50/p99 for both frameworks.

Contender entry point (used by the harness): ``python -m bench.bench_frameworks --contender
{rookpy,limit,typed} MODE --namespace NS --expected N``.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench._common import (
    API_VERSION,
    KIND,
    STATUS_FIELD,
    CpuSampler,
    Emulator,
    RealServer,
    StatusWatcher,
    contender,
    emit,
    env_float,
    env_int,
    fmt,
    median,
    peak_rss_mb,
    percentile,
    real_server_available,
    rss_now_mb,
)

B1_OBJECTS = env_int("ROOK_BENCH_B1_OBJECTS", 1000)
B2_OBJECTS = env_int("ROOK_BENCH_B2_OBJECTS", 10_000)
B3_EVENTS = env_int("ROOK_BENCH_B3_EVENTS", 1000)
B3_RATE = env_float("ROOK_BENCH_B3_RATE", 200.0)
WORKERS = env_int("ROOK_BENCH_WORKERS", 8)
ROUNDS = env_int("ROOK_BENCH_ROUNDS", 3)
# B1's rounds are short and its ratio is the noisiest figure on a shared 2-core machine: more rounds,
# in a rotating order so no contender always runs first (or right after kopf's CPU-heavy exit).
B1_ROUNDS = env_int("ROOK_BENCH_B1_ROUNDS", 11)
IDLE_SECONDS = env_float("ROOK_BENCH_IDLE_SECONDS", 60.0)
TIMEOUT = env_float("ROOK_BENCH_TIMEOUT", 300.0)

ROOKPY_UA = "bench-rookpy"
LIMIT_UA = "bench-limit"
KOPF_UA = "kopf/"
CM_NAMESPACE = "sync"


# == contenders (each runs in its own process) ===================================================

def _rookpy(mode: str, namespace: str, expected: int) -> None:
    from rook_py.framework.logging import configure_logging

    # Before the framework modules are imported: their module-level loggers bind the structlog
    # configuration current at import (noted in /tmp/framework-requests.md by H9), and console
    # logging at info level would cost this contender CPU that kopf, set to WARNING, does not pay.
    configure_logging("warning", "json")
    from rook_py.framework import ControllerBuilder, Manager, ManagerOptions, Request, Result
    from rook_py.framework.cache import ResourceEventHandlerFuncs, SharedInformerFactory
    from rook_py.framework.client import Client, load_config
    from rook_py.framework.controller import GenerationChangedPredicate

    client = Client(load_config(), user_agent=ROOKPY_UA)
    if mode == "sync":
        client.resource_for("v1", "ConfigMap")  # discovery: once per process, before the baseline
        factory = SharedInformerFactory(client, namespace=namespace)
        informer = factory.informer("v1", "ConfigMap")
        informer.add_event_handler(ResourceEventHandlerFuncs(add_func=lambda obj, initial: None))
        stop = threading.Event()
        rss0, t0 = rss_now_mb(), time.monotonic()
        emit("start", t=t0, rss_mb=rss0)
        factory.start(stop)
        if not factory.wait_for_cache_sync(TIMEOUT):
            raise SystemExit("informer did not sync")
        emit("result", n=len(informer.indexer.list_keys()), seconds=time.monotonic() - t0,
             rss_mb=peak_rss_mb(), baseline_mb=rss0, now_mb=rss_now_mb())
        os._exit(0)

    client.resource_for(API_VERSION, KIND)  # discovery before the baseline, as the limit does
    manager = Manager(client, ManagerOptions(namespace=namespace, metrics_bind_address="0",
                                             health_probe_bind_address="0"))
    reader = manager.reader
    lock = threading.Lock()
    latencies: list[float] = []

    class Throughput:
        """Writes the status field once: only when the cached object does not have it yet."""

        def reconcile(self, request: Request) -> Result | None:
            obj = reader.get(API_VERSION, KIND, request.name, request.namespace)
            if obj is None or (obj.get("status") or {}).get(STATUS_FIELD):
                return None
            client.patch(API_VERSION, KIND, request.name, {"status": {STATUS_FIELD: True}},
                         namespace=request.namespace, subresource="status")
            return None

    class Latency:
        def reconcile(self, request: Request) -> Result | None:
            now = time.monotonic()
            obj = reader.get(API_VERSION, KIND, request.name, request.namespace)
            sent = ((obj or {}).get("spec") or {}).get("sent")
            if sent is None:
                return None
            with lock:
                latencies.append(now - float(sent))
                done = len(latencies) >= expected
                values = list(latencies)
            if done:
                emit("result", n=len(values), p50_ms=percentile(values, 50) * 1000,
                     p99_ms=percentile(values, 99) * 1000, rss_mb=peak_rss_mb())
                os._exit(0)
            return None

    reconciler = Throughput() if mode == "throughput" else Latency()
    (ControllerBuilder(manager).named("widget")
     .for_(API_VERSION, KIND, predicates=[GenerationChangedPredicate()])
     .with_options(max_concurrent_reconciles=WORKERS).complete(reconciler))

    def ready() -> None:
        manager.serving.wait()
        if manager.cache.wait_for_cache_sync(TIMEOUT):
            emit("ready", t=time.monotonic())

    threading.Thread(target=ready, daemon=True).start()
    emit("start", t=time.monotonic(), rss_mb=peak_rss_mb())
    manager.start()


def _limit(namespace: str, expected: int) -> None:
    """The same status patches from a plain thread pool: the most this server can take."""
    from rook_py.framework.client import Client, load_config

    client = Client(load_config(), user_agent=LIMIT_UA)
    client.resource_for(API_VERSION, KIND)
    names = [f"w-{i:05d}" for i in range(expected)]

    def patch(name: str) -> None:
        client.patch(API_VERSION, KIND, name, {"status": {STATUS_FIELD: True}}, namespace=namespace,
                     subresource="status")

    emit("start", t=time.monotonic(), rss_mb=peak_rss_mb())
    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(patch, names))
    emit("result", t=time.monotonic())


def _typed(namespace: str, expected: int) -> None:
    """The official typed client: paged list into V1ConfigMap models."""
    from kubernetes import client as k8s
    from kubernetes import config as k8s_config

    api = k8s.CoreV1Api(k8s_config.new_client_from_config())
    api.get_api_resources()  # connection and auth set up before the baseline, as for the others
    rss0, t0 = rss_now_mb(), time.monotonic()
    emit("start", t=t0, rss_mb=rss0)
    items: list[Any] = []
    cont: str | None = None
    while True:
        kwargs: dict[str, Any] = {"limit": 500}
        if cont:
            kwargs["_continue"] = cont
        page = api.list_namespaced_config_map(namespace, **kwargs)
        items.extend(page.items)
        cont = page.metadata._continue
        if not cont:
            break
    emit("result", n=len(items), seconds=time.monotonic() - t0, rss_mb=peak_rss_mb(), baseline_mb=rss0,
         now_mb=rss_now_mb())


def contender_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_frameworks --contender")
    parser.add_argument("name", choices=("rookpy", "limit", "typed"))
    parser.add_argument("mode", choices=("throughput", "latency", "sync"))
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--expected", type=int, required=True)
    args = parser.parse_args(argv)
    if args.name == "rookpy":
        _rookpy(args.mode, args.namespace, args.expected)
    elif args.name == "limit":
        _limit(args.namespace, args.expected)
    else:
        _typed(args.namespace, args.expected)


# == harness =====================================================================================

def _command(name: str, mode: str, namespace: str, expected: int) -> tuple[str, list[str]]:
    tail = ["--namespace", namespace, "--expected", str(expected)]
    if name == "kopf":
        return "bench.kopf_operator", [mode, *tail]
    return "bench.bench_frameworks", ["--contender", name, mode, *tail]


_UA = {"rookpy": ROOKPY_UA, "kopf": KOPF_UA, "limit": LIMIT_UA}


def b1_round(emu: Emulator | RealServer, name: str, namespace: str, idle: float) -> dict[str, Any]:
    """One B1 measurement of one contender in a fresh namespace."""
    emu.seed_widgets(B1_OBJECTS, namespace)
    watcher = StatusWatcher(emu, namespace, B1_OBJECTS).start()
    before = emu.writes_by_resource(_UA[name])
    module, args = _command(name, "throughput", namespace, B1_OBJECTS)
    try:
        with contender(module, args, emu.kubeconfig) as proc:
            sampler = CpuSampler(proc.proc.pid).start()
            started = proc.expect("start", 60)["t"]
            # CPU from "start" on: the contender's own work (its imports are done by then) and
            # the server's, as a noise-resistant counterpart of the wall-clock rate.
            client_cpu0, server_cpu0 = sampler.latest, emu.server_cpu()
            if not watcher.wait(TIMEOUT):
                raise TimeoutError(f"{name}: {len(watcher.done)}/{B1_OBJECTS} processed in {TIMEOUT}s\n"
                                   + proc.tail())
            seconds = watcher.last() - started
            client_cpu, server_cpu = sampler.stop() - client_cpu0, emu.server_cpu() - server_cpu0
            time.sleep(0.5)  # let in-flight follow-up writes (kopf's annotation patch) land
            after = emu.writes_by_resource(_UA[name])
            split = {k: (after[k] - before.get(k, 0)) / B1_OBJECTS for k in after
                     if k.startswith("widgets") and after[k] > before.get(k, 0)}
            writes = sum(split.values()) * B1_OBJECTS
            idle_writes = float("nan")
            if idle > 0:
                mark = emu.writes(_UA[name])
                time.sleep(idle)
                idle_writes = emu.writes(_UA[name]) - mark
    finally:
        watcher.stop()
    return {"seconds": seconds, "rate": B1_OBJECTS / seconds, "writes_per_object": writes / B1_OBJECTS,
            "idle_writes": idle_writes, "split": split,
            "client_cpu_ms": 1000 * client_cpu / B1_OBJECTS, "server_cpu_ms": 1000 * server_cpu / B1_OBJECTS}


def run_b1(emu: Emulator | RealServer) -> tuple[str, dict[str, float]]:
    names = ("limit", "rookpy", "kopf")
    results: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    ratios: list[float] = []   # rook-py / limit within each round: the two ran seconds apart
    for r in range(B1_ROUNDS):
        for name in names[r % 3:] + names[:r % 3]:
            idle = IDLE_SECONDS if (r == B1_ROUNDS - 1 and name != "limit") else 0.0
            results[name].append(b1_round(emu, name, f"b1-{name}-{r}", idle))
            print(f"B1 round {r} {name}: {results[name][-1]}", file=sys.stderr, flush=True)
        ratios.append(results["rookpy"][-1]["rate"] / results["limit"][-1]["rate"])

    def med(name: str, key: str) -> float:
        return median([x[key] for x in results[name] if x[key] == x[key]])

    limit_rate = med("limit", "rate")
    rows = []
    for name, label in (("limit", "limit (thread pool)"), ("rookpy", f"rook-py ({WORKERS} workers)"),
                        ("kopf", "kopf")):
        idle = "-" if name == "limit" else fmt(med(name, "idle_writes"), 0)
        split = ", ".join(f"{k} {v:.2f}" for k, v in sorted(results[name][-1]["split"].items()))
        rows.append(f"| {label} | {fmt(med(name, 'seconds'), 2)} | {fmt(med(name, 'rate'))} | "
                    f"{fmt(100 * med(name, 'rate') / limit_rate, 0)}% | {fmt(med(name, 'writes_per_object'), 2)} "
                    f"({split}) | {idle} | {fmt(med(name, 'client_cpu_ms'), 2)} | "
                    f"{fmt(med(name, 'server_cpu_ms'), 2)} |")
    ratio = med("rookpy", "rate") / med("kopf", "rate")
    per_round = ", ".join(f"{100 * x:.0f}%" for x in ratios)
    summary = {"B1 limit objects/s": limit_rate, "B1 rook-py objects/s": med("rookpy", "rate"),
               "B1 kopf objects/s": med("kopf", "rate"),
               "B1 rook-py % of limit (median of per-round ratios)": 100 * median(ratios),
               "B1 rook-py writes/object": med("rookpy", "writes_per_object"),
               "B1 kopf writes/object": med("kopf", "writes_per_object"),
               f"B1 rook-py writes in {IDLE_SECONDS:.0f} s idle": med("rookpy", "idle_writes"),
               "B1 rook-py CPU ms/object": med("rookpy", "client_cpu_ms"),
               "B1 server CPU ms/object (rook-py rounds)": med("rookpy", "server_cpu_ms")}
    server = ("the emulator" if emu.backend == "emulator" else
              "kube-apiserver + etcd (the real server)")
    writes_note = ("Write calls are counted on the server per User-Agent." if emu.backend == "emulator" else
                   "Write calls are counted by kube-apiserver (apiserver_request_total, read before and "
                   "after each contender; no client label, so one contender runs at a time and the "
                   "server's own Lease/Endpoints writes are left out).")
    return "\n".join([
        f"### B1 throughput: {B1_OBJECTS} Widgets, operator starts after they exist "
        f"(median of {B1_ROUNDS} rounds)",
        "",
        f"| contender | seconds to catch up | objects/s | % of limit | API writes/object | "
        f"writes in {IDLE_SECONDS:.0f} s idle | contender CPU ms/object | server CPU ms/object |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        *rows,
        "",
        f"rook-py/kopf throughput ratio: **{ratio:.2f}x**. rook-py/limit per round: {per_round} "
        f"(median **{100 * median(ratios):.0f}%**). Targets: rook-py >= 90% of the limit, "
        "exactly 1 write per object, 0 writes while idle. CPU columns: user + system seconds of the "
        f"contender process and of {server} from the contender's start until caught up, per "
        "object; less noisy than the rate, and they show where the time goes (the server shares the "
        f"2 cores, so every CPU-second spent anywhere slows everyone). {writes_note}",
    ]), summary


def run_b2(emu: Emulator | RealServer) -> tuple[str, dict[str, float]]:
    from bench.bench_informer import _configmap

    emu.ensure_namespace(CM_NAMESPACE)
    cms = []
    for i in range(B2_OBJECTS):
        cm = _configmap(i)
        cm["metadata"]["namespace"] = CM_NAMESPACE
        cms.append(cm)
    emu.create_many(cms)
    names = ("rookpy", "kopf", "typed")
    results: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    for r in range(ROUNDS):
        for name in names:
            module, args = _command(name, "sync", CM_NAMESPACE, B2_OBJECTS)
            with contender(module, args, emu.kubeconfig) as proc:
                start = proc.expect("start", 60)
                res = proc.expect("result", TIMEOUT)
            res.setdefault("baseline_mb", start["rss_mb"])
            results[name].append(res)
            print(f"B2 round {r} {name}: {res}", file=sys.stderr, flush=True)
    rows = []
    for name, label in (("rookpy", "rook-py informer"), ("kopf", "kopf (on.event)"),
                        ("typed", "official typed client (list only)")):
        rs = results[name]
        rows.append(f"| {label} | {fmt(median([x['seconds'] for x in rs]), 2)} | "
                    f"{fmt(median([x['rss_mb'] for x in rs]))} | "
                    f"{fmt(median([x['now_mb'] - x['baseline_mb'] for x in rs]))} | "
                    f"{min(x['n'] for x in rs)} |")
    summary = {f"B2 {label} seconds to synced": median([x["seconds"] for x in results[name]])
               for name, label in (("rookpy", "rook-py informer"), ("kopf", "kopf"), ("typed", "typed client"))}
    return "\n".join([
        f"### B2 initial sync: {B2_OBJECTS} ConfigMaps (~1 KB) (median of {ROUNDS} rounds)",
        "",
        "| contender | seconds to synced | peak RSS MiB | RSS growth MiB (resident after - before) "
        "| objects held/seen |",
        "|---|---:|---:|---:|---:|",
        *rows,
        "",
        "kopf keeps no cache: its figure is the time until its handler had seen every object. The typed "
        "client only lists (no watch), so it is a lower bound for a typed-model cache.",
    ]), summary


def _send_paced(emu: Emulator | RealServer, namespace: str, count: int, rate: float, start: int) -> None:
    client = emu.client("bench-sender")
    interval = 1.0 / rate
    t0 = time.monotonic()

    def send(i: int) -> None:
        due = t0 + i * interval
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        obj = {"apiVersion": API_VERSION, "kind": KIND,
               "metadata": {"name": f"w-{start + i:05d}", "namespace": namespace},
               "spec": {"index": i, "sent": time.monotonic()}}
        client.create(obj)

    # Enough senders that a slow request never delays the schedule; each waits for its slot.
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(send, range(count)))
    client.close()


def run_b3(emu: Emulator) -> str:
    names = ("rookpy", "kopf")
    results: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    for r in range(ROUNDS):
        for name in names:
            namespace = f"b3-{name}-{r}"
            emu.ensure_namespace(namespace)
            module, args = _command(name, "latency", namespace, B3_EVENTS)
            with contender(module, args, emu.kubeconfig) as proc:
                proc.expect("start", 60)
                if name == "rookpy":
                    proc.expect("ready", 60)
                time.sleep(1.0)  # both: watches established (kopf has no readiness signal of its own)
                _send_paced(emu, namespace, B3_EVENTS, B3_RATE, 0)
                res = proc.expect("result", TIMEOUT)
            results[name].append(res)
            print(f"B3 round {r} {name}: {res}", file=sys.stderr, flush=True)
    rows = [f"| {label} | {fmt(median([x['p50_ms'] for x in results[n]]), 2)} | "
            f"{fmt(median([x['p99_ms'] for x in results[n]]), 2)} |"
            for n, label in (("rookpy", "rook-py"), ("kopf", "kopf"))]
    return "\n".join([
        f"### B3 latency: {B3_EVENTS} creates at {B3_RATE:.0f}/s, write sent -> handler start "
        f"(median of {ROUNDS} rounds)",
        "",
        "| framework | p50 ms | p99 ms |",
        "|---|---:|---:|",
        *rows,
    ])


def run() -> str:
    sections = []
    figures: dict[str, dict[str, float]] = {}
    with Emulator(history_size=50_000) as emu:
        for part in (run_b1, run_b3, run_b2):
            try:
                result = part(emu)
            except Exception as exc:  # one failed part must not hide the others' figures
                sections.append(f"### {part.__name__} failed\n\n```\n{exc!r}\n```")
                continue
            if isinstance(result, tuple):
                sections.append(result[0])
                figures.setdefault("emulator", {}).update(result[1])
            else:
                sections.append(result)
    sections.append(f"Setup: one envtest emulator process; each contender in its own process; "
                    f"{os.cpu_count()} CPUs; writes counted on the server per User-Agent.")
    if real_server_available():
        sections.append(run_real(figures))
    else:
        sections.append("The real-server figures need `KUBEBUILDER_ASSETS` (etcd and kube-apiserver); "
                        "not set, so they were not measured this run.")
    return "\n\n".join(sections)


def run_real(figures: dict[str, dict[str, float]] | None = None) -> str:
    """B1 and B2 on a real etcd + kube-apiserver ($KUBEBUILDER_ASSETS), and, when ``figures`` has
    the emulator's, both side by side."""
    figures = figures if figures is not None else {}
    sections = ["### On a real kube-apiserver (etcd + kube-apiserver from KUBEBUILDER_ASSETS)"]
    with RealServer() as real:
        version = real.http.request("GET", "/version").get("gitVersion", "?")
        sections[0] += f": {version}"
        for part in (run_b1, run_b2):
            try:
                body, summary = part(real)
            except Exception as exc:
                sections.append(f"### {part.__name__} (real server) failed\n\n```\n{exc!r}\n```")
                continue
            sections.append(body.replace("### B", "### Real server: B", 1))
            figures.setdefault("real", {}).update(summary)
    sections.append(side_by_side(figures))
    return "\n\n".join(sections)


def side_by_side(figures: dict[str, dict[str, float]]) -> str:
    """One table: each figure on the emulator and on the real server (n/a where not measured)."""
    emulator, real = figures.get("emulator", {}), figures.get("real", {})
    names = list(dict.fromkeys([*emulator, *real]))
    rows = [f"| {name} | {fmt(emulator.get(name, float('nan')), 2)} | {fmt(real.get(name, float('nan')), 2)} |"
            for name in names]
    return "\n".join([
        "### Emulator and real kube-apiserver side by side",
        "",
        "| figure | emulator | real kube-apiserver |",
        "|---|---:|---:|",
        *rows,
        "",
        "Same contenders, objects and rounds on both; measured one after the other on a shared 2-core "
        "machine (other work was running), so compare ratios within a column rather than absolute rates "
        "across columns.",
    ])


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--contender":
        contender_main(sys.argv[2:])
    elif sys.argv[1:] == ["--real"]:   # only the real-server sections (needs KUBEBUILDER_ASSETS)
        print(run_real())
    else:
        print(run())
