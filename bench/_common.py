"""Shared harness for the framework benchmarks (B1-B5).

Layout of one benchmark run, so contenders compare like with like on a small noisy machine:

* **one emulator** (``Environment(in_process=False)``: ``python -m rook_py.envtest.serve``
  in its own process, its own GIL) serves every contender of a section, one contender at a time;
* **each contender in its own subprocess** (``python -m bench.<module> ...``), so its CPU, RSS and
  import cost are its own. A contender prints one JSON object per line on stdout; the harness
  reads the lines it asked for (``start``, ``result``);
* **API write calls are counted on the server**, per User-Agent, from the emulator's
  ``/envtest/v1/stats`` endpoint: a contender cannot under-report its own writes;
* figures are **medians of several rounds**, contenders interleaved round by round, so slow drift of
  the machine hits every contender alike.

``time.monotonic()`` is CLOCK_MONOTONIC, one system-wide clock on Linux, so a timestamp taken in a
contender and one taken here are comparable.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

JSON = dict[str, Any]
REPO = Path(__file__).resolve().parent.parent
WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})

# The benchmark CRD: a namespaced kind with a status subresource and an open schema, the shape of
# any operator's custom resource.
GROUP = "bench.rook.io"
VERSION = "v1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "Widget"
PLURAL = "widgets"
NAMESPACE = "bench"
STATUS_FIELD = "processed"   # the one status field every contender writes


def widget_crd() -> JSON:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"plural": PLURAL, "singular": "widget", "kind": KIND, "listKind": f"{KIND}List"},
            "versions": [{
                "name": VERSION, "served": True, "storage": True,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                    },
                }},
            }],
        },
    }


def widget(i: int, namespace: str = NAMESPACE, **spec: Any) -> JSON:
    return {"apiVersion": API_VERSION, "kind": KIND,
            "metadata": {"name": f"w-{i:05d}", "namespace": namespace},
            "spec": {"index": i, **spec}}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


def peak_rss_mb() -> float:
    """This process's peak RSS in MiB: VmHWM, the high-water mark of its own address space.

    Not ru_maxrss: Linux carries that across fork and exec, so a contender started from the
    (large) harness process would report the harness's peak, and growth would read as 0."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0   # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def proc_usage(pid: int) -> tuple[float, float]:
    """(peak RSS MiB, CPU seconds: user + system) of a live process, from /proc."""
    with open(f"/proc/{pid}/status") as fh:
        hwm = next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:"))
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return hwm / 1024.0, (int(fields[11]) + int(fields[12])) / ticks   # utime, stime


class CpuSampler:
    """Samples a process's CPU seconds every ``interval`` s on a thread, so the figure survives the
    process exiting right after its work (as the limit contender does); ``latest`` is the last
    sample taken while it was alive."""

    def __init__(self, pid: int, interval: float = 0.01) -> None:
        self.pid, self.interval = pid, interval
        self.latest = float("nan")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-sampler", daemon=True)

    def start(self) -> CpuSampler:
        self._sample()
        self._thread.start()
        return self

    def _sample(self) -> bool:
        try:
            self.latest = proc_usage(self.pid)[1]
        except (OSError, StopIteration, IndexError, ValueError):
            return False   # exited (or a zombie without a status)
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.interval) and self._sample():
            pass

    def stop(self) -> float:
        self._stop.set()
        self._thread.join(1.0)
        self._sample()
        return self.latest


def rss_now_mb() -> float:
    """This process's current resident set in MiB (/proc/self/statm; Linux)."""
    with open("/proc/self/statm") as fh:
        resident_pages = int(fh.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / (1024.0 * 1024.0)


def emit(event: str, **fields: Any) -> None:
    """A contender's report line: one JSON object on stdout (read by ``Contender``)."""
    sys.stdout.write(json.dumps({"bench": event, **fields}) + "\n")
    sys.stdout.flush()


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in [0, 100]) of ``values``."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, int(-(-q * len(ordered) // 100)))  # ceil(q/100 * n), at least 1
    return ordered[min(rank, len(ordered)) - 1]


# -- the emulator -----------------------------------------------------------------------------

class _Server:
    """What every benchmark server offers: an ``Environment`` with the Widget CRD and the bench
    namespace, a raw JSON client for seeding (``http``), framework clients, and write counts."""

    env: Any
    backend = ""

    def __enter__(self) -> Any:
        self.env.start()
        self.ensure_namespace(NAMESPACE)
        return self

    def __exit__(self, *exc: object) -> None:
        self.env.stop()

    @property
    def kubeconfig(self) -> str:
        return str(self.env.kubeconfig)

    @property
    def http(self) -> Any:
        return self.env.http

    @property
    def stats(self) -> Any:
        """count/snapshot/reset of the requests the server answered (``Environment.request_counts``)."""
        return self.env.request_counts

    def client(self, user_agent: str, **kwargs: Any) -> Any:
        return self.env.client(user_agent=user_agent, **kwargs)

    def server_cpu(self) -> float:
        """CPU seconds (user + system) the server's processes have used so far."""
        return sum(proc_usage(pid)[1] for pid in self.pids())

    def pids(self) -> list[int]:
        raise NotImplementedError

    def ensure_namespace(self, name: str) -> None:
        from rook_py.framework.client import errors

        with contextlib.suppress(errors.AlreadyExists):
            self.http.request("POST", "/api/v1/namespaces",
                              {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})

    def create_many(self, objects: Sequence[JSON], workers: int = 8) -> None:
        """Create every object from a small thread pool (User-Agent ``bench-seed``)."""
        client = self.client("bench-seed")
        try:
            with ThreadPoolExecutor(workers) as pool:
                list(pool.map(client.create, objects))
        finally:
            client.close()

    def seed_widgets(self, n: int, namespace: str = NAMESPACE, start: int = 0, **spec: Any) -> None:
        """Create Widgets w-<start>..w-<start+n-1> in ``namespace`` (created if missing)."""
        self.ensure_namespace(namespace)
        self.create_many([widget(i, namespace, **spec) for i in range(start, start + n)])

    def writes(self, user_agent: str, *, resource: str | None = None) -> int:
        """API write calls (create/update/patch/delete) the server answered for ``user_agent``."""
        return sum(self.stats.count(user_agent=user_agent, verb=verb, resource=resource)
                   for verb in WRITE_VERBS)

    def writes_by_resource(self, user_agent: str) -> dict[str, int]:
        """Write calls per ``resource[/subresource]`` for ``user_agent`` (prefix), so far."""
        out: dict[str, int] = {}
        for row in self.stats.snapshot():
            if str(row.get("userAgent", "")).startswith(user_agent) and row.get("verb") in WRITE_VERBS:
                key = row["resource"] + (f"/{row['subresource']}" if row.get("subresource") else "")
                out[key] = out.get(key, 0) + int(row["count"])
        return out


class Emulator(_Server):
    """One envtest emulator in its own process, with the Widget CRD and the bench namespace.

    ``stats``/``faults`` reach the emulator's control endpoints; its request statistics are per
    User-Agent, so each contender's writes are its own even while others talk to the server.
    """

    backend = "emulator"

    def __init__(self, *, crds: Sequence[JSON] = (), simulate_cluster: bool = False, nodes: int = 0,
                 history_size: int = 20_000) -> None:
        from rook_py.envtest.environment import Environment

        self.env = Environment(backend="emulator", in_process=False, simulate_cluster=simulate_cluster,
                               nodes=nodes, crds=[widget_crd(), *crds], history_size=history_size)

    def __enter__(self) -> Emulator:
        super().__enter__()
        return self

    @property
    def pid(self) -> int:
        """The emulator process's pid (it always runs in its own process here)."""
        proc = self.env._proc
        assert proc is not None
        return proc.pid

    def pids(self) -> list[int]:
        return [self.pid]

    @property
    def faults(self) -> Any:
        return self.env.faults


def real_server_available() -> bool:
    """Whether ``$KUBEBUILDER_ASSETS`` holds etcd and kube-apiserver (the real server sections run)."""
    from rook_py.envtest.realcluster import find_binaries

    return find_binaries() is not None


class RealServer(_Server):
    """etcd + kube-apiserver from ``$KUBEBUILDER_ASSETS``, with the Widget CRD and the bench namespace.

    Requests are counted by kube-apiserver itself (``apiserver_request_total`` on its ``/metrics``).
    That counter has no client label, so a count is everything the server answered since the
    harness's last look: the harness runs one contender at a time, reads the counter right before
    and after it, makes no writes meanwhile, and leaves out what kube-apiserver writes by itself
    (its identity Lease, the ``kubernetes`` Endpoints retries: ``SERVER_OWN_RESOURCES``).
    ``user_agent`` arguments are accepted for the Emulator's signature and narrow nothing here.
    """

    backend = "real"

    def __init__(self, *, crds: Sequence[JSON] = ()) -> None:
        from rook_py.envtest.environment import Environment

        self.env = Environment(backend="real", crds=[widget_crd(), *crds])

    def __enter__(self) -> RealServer:
        super().__enter__()
        return self

    def pids(self) -> list[int]:
        plane = self.env.control_plane
        return [pid for pid in (plane.apiserver.pid if plane.apiserver else None,
                                plane.etcd.pid if plane.etcd else None) if pid]

    def writes(self, user_agent: str, *, resource: str | None = None) -> int:
        from rook_py.envtest.requestcounts import SERVER_OWN_RESOURCES

        return sum(self.stats.count(verb=verb, resource=resource, exclude_resources=SERVER_OWN_RESOURCES)
                   for verb in WRITE_VERBS)

    def writes_by_resource(self, user_agent: str) -> dict[str, int]:
        from rook_py.envtest.requestcounts import SERVER_OWN_RESOURCES

        out: dict[str, int] = {}
        for row in self.stats.snapshot():
            if row["verb"] in WRITE_VERBS and row["resource"] not in SERVER_OWN_RESOURCES:
                key = row["resource"] + (f"/{row['subresource']}" if row.get("subresource") else "")
                out[key] = out.get(key, 0) + int(row["count"])
        return out


# -- watching progress from the harness --------------------------------------------------------

class StatusWatcher:
    """Watches the Widgets from this process and notes when each first shows ``status.processed``.

    The same observer for every contender, so "caught up" means the same thing for all of them:
    the moment the server committed the last object's status write.
    """

    def __init__(self, emulator: _Server, namespace: str, expected: int) -> None:
        self.expected = expected
        self.namespace = namespace
        self.done: dict[str, float] = {}
        self._client = emulator.client("bench-observer")
        self._stop = threading.Event()
        self._all = threading.Event()
        listing = self._client.list(API_VERSION, KIND, namespace)
        for item in listing.get("items") or ():
            if (item.get("status") or {}).get(STATUS_FIELD):
                self.done[item["metadata"]["name"]] = time.monotonic()
        if len(self.done) >= expected:
            self._all.set()
        self._rv = listing["metadata"]["resourceVersion"]
        self._thread = threading.Thread(target=self._run, name="status-watcher", daemon=True)

    def start(self) -> StatusWatcher:
        self._thread.start()
        return self

    def _run(self) -> None:
        from rook_py.framework.client import errors

        while not self._stop.is_set():
            try:
                with self._client.watch(API_VERSION, KIND, self.namespace, resource_version=self._rv,
                                        timeout_seconds=30, read_timeout=35) as stream:
                    for event in stream:
                        obj = event["object"]
                        self._rv = obj["metadata"].get("resourceVersion", self._rv)
                        if event["type"] in ("ADDED", "MODIFIED") and (obj.get("status") or {}).get(STATUS_FIELD):
                            self.done.setdefault(obj["metadata"]["name"], time.monotonic())
                            if len(self.done) >= self.expected:
                                self._all.set()
                        if self._stop.is_set():
                            return
            except errors.ApiError:
                if self._stop.wait(0.1):
                    return

    def wait(self, timeout: float) -> bool:
        return self._all.wait(timeout)

    def last(self) -> float:
        return max(self.done.values())

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._client.close()


# -- contenders ------------------------------------------------------------------------------

@dataclass
class Contender:
    """A contender subprocess: ``python -m <module> <args>`` with ``KUBECONFIG`` set.

    Its stdout lines that parse as JSON objects with a ``bench`` key are queued for ``expect``
    (structured log lines, which carry ``event``, are not mistaken for reports);
    anything else (and stderr) goes to a log file, shown when the contender fails.
    """

    module: str
    args: Sequence[str]
    kubeconfig: str
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._events: queue.Queue[JSON | None] = queue.Queue()
        self._log: list[str] = []
        environ = dict(os.environ, KUBECONFIG=self.kubeconfig, PYTHONUNBUFFERED="1", **self.env)
        environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), environ.get("PYTHONPATH")) if p)
        self.proc = subprocess.Popen([sys.executable, "-m", self.module, *self.args], cwd=REPO, env=environ,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     text=True, start_new_session=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            line = line.strip()
            event: Any = None
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    event = json.loads(line)
            if isinstance(event, dict) and "bench" in event:
                self._events.put(event)
            else:
                self._log.append(line)
                del self._log[:-200]
        self._events.put(None)

    def expect(self, event: str, timeout: float) -> JSON:
        """The next report line named ``event`` (others before it are skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{self.module}: no {event!r} within {timeout}s; log tail:\n{self.tail()}")
            try:
                item = self._events.get(timeout=remaining)
            except queue.Empty:
                continue
            if item is None:
                self._events.put(None)
                raise RuntimeError(f"{self.module} exited ({self.proc.poll()}) before {event!r}; "
                                   f"log tail:\n{self.tail()}")
            if item.get("bench") == event:
                return item

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self._log[-lines:])

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL if it does not exit in ``timeout`` (its whole session)."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, 15)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, 9)
                self.proc.wait(5)
        self._reader.join(5)


@contextlib.contextmanager
def contender(module: str, args: Sequence[str], kubeconfig: str, **env: str) -> Iterator[Contender]:
    c = Contender(module, list(args), kubeconfig, dict(env))
    try:
        yield c
    finally:
        c.stop()


def fmt(value: float, digits: int = 1) -> str:
    return "n/a" if value != value else f"{value:,.{digits}f}"  # NaN check without math import
