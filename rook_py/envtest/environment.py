"""``Environment``: one entry point to a Kubernetes API for tests, with two back ends.

- ``"real"``: etcd + kube-apiserver from ``$KUBEBUILDER_ASSETS`` (controller-runtime's convention),
  see realcluster.py. Nothing else runs: no controller-manager, no scheduler, no kubelet.
- ``"emulator"``: the built-in API server emulator, in this process (cheap: a fresh one per test)
  or in a subprocess (``in_process=False``, for benchmarks, so client and server do not share a GIL),
  optionally with the simulated cluster (nodes, kubelet, GC, namespace finalization, workloads).

``backend=None`` picks "real" when ``$KUBEBUILDER_ASSETS`` holds both binaries, else "emulator",
so one test suite runs on either. Everything the environment creates (kubeconfig, temp dirs,
processes, threads) is removed by ``stop()`` / leaving the ``with`` block.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import copy
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from rook_py.envtest.realcluster import ASSETS_ENV, RealControlPlane, find_binaries
from rook_py.envtest.remote import HTTPAPI, RemoteFaults, RemotePods, RemoteStats
from rook_py.envtest.requestcounts import ApiserverRequestCounts
from rook_py.framework.client import errors

if TYPE_CHECKING:
    import kubernetes.client

    from rook_py.envtest.apiserver.server import APIServer
    from rook_py.envtest.cluster import NodeSpec, SimulatedCluster
    from rook_py.framework.client import Client

JSON = dict[str, Any]
BACKENDS = ("emulator", "real")
CRD_API = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


class EnvtestStartError(RuntimeError):
    """The requested back end cannot start (missing binaries, subprocess failure, ...)."""


def resolve_backend(requested: str | None, environ: Mapping[str, str] | None = None) -> str:
    """"emulator" or "real" for a requested backend (None/"auto" = decide from KUBEBUILDER_ASSETS)."""
    if requested in (None, "", "auto"):
        return "real" if find_binaries(environ) else "emulator"
    if requested not in BACKENDS:
        raise ValueError(f"unknown envtest backend {requested!r}; use one of {', '.join(BACKENDS)} or None")
    if requested == "real" and find_binaries(environ) is None:
        raise EnvtestStartError(
            f"backend 'real' needs ${ASSETS_ENV} to name a folder holding etcd and kube-apiserver "
            f"(currently {(environ or os.environ).get(ASSETS_ENV)!r})")
    return requested


class Environment:
    """A started Kubernetes API for one test (or one benchmark, or one demo).

    Parameters: ``backend`` None/"emulator"/"real"; ``nodes`` a count or ``NodeSpec``s, ``crds``
    installed (and Established) at start, ``history_size`` the emulator's watch window,
    ``simulate_cluster`` whether to run the SimulatedCluster, ``pod_ready_delay`` how long pods stay
    Pending, ``in_process`` False to run the emulator as ``python -m rook_py.envtest.serve``.
    The emulator-only parameters are ignored on a real control plane, which runs no controllers.
    Real-only: ``audit`` turns kube-apiserver's audit log on, ``apiserver_args`` are appended to
    its command line; ``control_plane`` then does faults to it (kill, restart, freeze, compact).

    Attributes after ``start()``: ``kubeconfig`` (path to a kubeconfig file in a temp dir),
    ``url``, ``token``, ``backend``, ``cluster`` (the in-process SimulatedCluster, else None),
    ``server`` (the in-process APIServer, else None). Invariant: ``url`` is the server the
    kubeconfig names, so every client -- kubectl, the official client, ``client()`` -- talks to
    the same address with the same credentials.
    """

    def __init__(self, backend: str | None = None, nodes: int | Sequence[NodeSpec] = 3,
                 crds: Iterable[JSON] = (), history_size: int = 10_000, simulate_cluster: bool = True,
                 pod_ready_delay: float = 0.05, in_process: bool = True, *,
                 bookmark_interval: float = 60.0, start_timeout: float = 60.0,
                 resync_period: float = 5.0, audit: bool = False,
                 apiserver_args: Sequence[str] = ()) -> None:
        self.backend = resolve_backend(backend)
        self.nodes = nodes
        self.crds = list(crds)
        self.history_size = history_size
        self.simulate_cluster = simulate_cluster
        self.pod_ready_delay = pod_ready_delay
        self.in_process = in_process
        self.bookmark_interval = bookmark_interval
        self.start_timeout = start_timeout
        self.resync_period = resync_period
        self.audit = audit
        self.apiserver_args = list(apiserver_args)
        self.kubeconfig = ""
        self.url = ""
        self.token = ""
        self.server: APIServer | None = None
        self.cluster: SimulatedCluster | None = None
        self._dir: Path | None = None
        self._real: RealControlPlane | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._http: HTTPAPI | None = None
        self._ca_data: bytes | None = None
        self._request_counts: ApiserverRequestCounts | None = None

    # lifecycle -----------------------------------------------------------------------------------
    def start(self) -> Environment:
        if self._dir is not None:
            return self
        self._dir = Path(tempfile.mkdtemp(prefix="rook-envtest-"))
        self.kubeconfig = str(self._dir / "kubeconfig")
        try:
            if self.backend == "real":
                self._start_real()
            elif self.in_process:
                self._start_in_process()
            else:
                self._start_subprocess()
            self._http = HTTPAPI(self.url, self.token, ca_data=self._ca_data)
            if self.crds:
                self.install_crds(self.crds)
        except BaseException:
            self.stop()
            raise
        return self

    def _start_real(self) -> None:
        binaries = find_binaries()
        assert binaries is not None  # resolve_backend checked
        self._real = RealControlPlane(binaries, start_timeout=self.start_timeout, audit=self.audit,
                                      extra_apiserver_args=self.apiserver_args).start()
        self._real.write_kubeconfig(self.kubeconfig)
        self.url, self.token = self._real.url, self._real.token
        self._ca_data = self._real.certs.ca_data if self._real.certs else None

    def _start_in_process(self) -> None:
        from rook_py.envtest.apiserver.server import APIServer
        from rook_py.envtest.cluster import SimulatedCluster

        self.server = APIServer(history_size=self.history_size, bookmark_interval=self.bookmark_interval)
        self.server.start()
        if self.simulate_cluster:
            self.cluster = SimulatedCluster(self.server.local, nodes=self.nodes,
                                            pod_ready_delay=self.pod_ready_delay,
                                            resync_period=self.resync_period).start()
            register_pod_hooks(self.server, self.cluster)
        self.server.write_kubeconfig(self.kubeconfig)
        # The kubeconfig names the TLS address when the emulator serves one (kubectl only sends
        # the token over TLS); .url follows it so every client sees the same server.
        self.url, self.token, self._ca_data = _read_kubeconfig(self.kubeconfig)

    def _start_subprocess(self) -> None:
        if not isinstance(self.nodes, int):
            raise ValueError("in_process=False takes a node count, not NodeSpecs")
        assert self._dir is not None
        log_path = self._dir / "serve.log"
        cmd = [sys.executable, "-m", "rook_py.envtest.serve", "--kubeconfig", self.kubeconfig,
               "--nodes", str(self.nodes), "--history-size", str(self.history_size),
               "--pod-ready-delay", str(self.pod_ready_delay), "--bookmark-interval", str(self.bookmark_interval),
               "--resync-period", str(self.resync_period)]
        if not self.simulate_cluster:
            cmd.append("--no-cluster")
        with log_path.open("wb") as log:
            self._proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                          start_new_session=True)
        atexit.register(self.stop)  # its own session: end it even if the caller never calls stop()
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise EnvtestStartError(f"envtest serve exited with {self._proc.returncode}: "
                                        f"{log_path.read_text(errors='replace')[-2000:]}")
            if os.path.exists(self.kubeconfig):  # serve writes it atomically once listening
                server, token, ca_data = _read_kubeconfig(self.kubeconfig)
                probe = HTTPAPI(server, token, ca_data=ca_data, timeout=2)
                with contextlib.suppress(errors.ApiError):
                    probe.request("GET", "/readyz")
                    self.url, self.token, self._ca_data = server, token, ca_data
                    return
            time.sleep(0.02)
        raise EnvtestStartError(f"envtest serve not ready within {self.start_timeout}s")

    def stop(self) -> None:
        """Stop everything started and remove the temp dir; safe to call more than once."""
        atexit.unregister(self.stop)
        if self.cluster is not None:
            self.cluster.stop()
            self.cluster = None
        if self.server is not None:
            self.server.stop()
            self.server = None
        if self._proc is not None:
            proc, self._proc = self._proc, None
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
        if self._real is not None:
            self._real.stop()
            self._real = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> Environment:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # clients -------------------------------------------------------------------------------------
    def client(self, **kwargs: Any) -> Client:
        """A framework ``Client`` for this environment (keyword arguments go to ``Client``)."""
        from rook_py.framework.client import Client, load_config

        return Client(load_config(self.kubeconfig), **kwargs)

    def k8s_configuration(self) -> kubernetes.client.Configuration:
        """An official-client ``Configuration`` loaded from this environment's kubeconfig."""
        import kubernetes.client
        import kubernetes.config

        configuration = kubernetes.client.Configuration()
        kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=self.kubeconfig, client_configuration=configuration)
        return configuration

    @property
    def http(self) -> HTTPAPI:
        """Raw authenticated JSON access to the API (what install_crds uses)."""
        if self._http is None:
            raise RuntimeError("the environment is not started")
        return self._http

    # emulator-only handles -----------------------------------------------------------------------
    def _require_emulator(self, what: str) -> None:
        if self.backend != "emulator":
            raise RuntimeError(f"{what} needs the envtest emulator; this environment runs a real control plane")

    @property
    def faults(self) -> Any:
        """Fault injection: the in-process ``Faults``, or a remote handle with the same methods."""
        self._require_emulator("fault injection")
        return self.server.faults if self.server is not None else RemoteFaults(self.http)

    @property
    def stats(self) -> Any:
        """Request statistics: the in-process ``RequestStats``, or a remote handle (count/snapshot/reset)."""
        self._require_emulator("request statistics")
        return self.server.stats if self.server is not None else RemoteStats(self.http)

    @property
    def request_counts(self) -> Any:
        """Requests the server answered, with ``count``/``snapshot``/``reset``: the emulator's
        per-User-Agent ``stats``, or on a real control plane kube-apiserver's own
        ``apiserver_request_total`` (no client label, so ``user_agent`` narrows nothing there;
        see requestcounts.py)."""
        if self.backend == "emulator":
            return self.stats
        if self._request_counts is None:
            self._request_counts = ApiserverRequestCounts(self.http)
        return self._request_counts

    def set_pod_mode(self, namespace: str, name: str, mode: str) -> None:
        """Simulated kubelet hook: ``mode`` "ready", "notready" or "crashloop"."""
        self._require_emulator("the simulated kubelet")
        if self.server is not None:
            if self.cluster is None:
                raise RuntimeError("this environment runs without the simulated cluster")
            self.cluster.set_pod_mode(namespace, name, mode)
        else:
            RemotePods(self.http).set_pod_mode(namespace, name, mode)

    def set_node_ready(self, name: str, ready: bool) -> None:
        """Simulated kubelet hook: stop (False) or resume (True) node ``name``'s kubelet."""
        self._require_emulator("the simulated kubelet")
        if self.server is not None:
            if self.cluster is None:
                raise RuntimeError("this environment runs without the simulated cluster")
            self.cluster.set_node_ready(name, ready)
        else:
            RemotePods(self.http).set_node_ready(name, ready)

    # real-control-plane faults ------------------------------------------------------------------------
    @property
    def control_plane(self) -> RealControlPlane:
        """The real back end's etcd + kube-apiserver, for faults the emulator does with ``faults``:
        ``kill_apiserver``, ``stop_apiserver``, ``start_apiserver`` (same etcd, port, certificates,
        token), ``freeze_apiserver``/``thaw_apiserver`` (SIGSTOP/SIGCONT), ``compact_etcd``,
        ``etcd_revision``, ``audit_events`` (with ``audit=True``)."""
        if self._real is None:
            raise RuntimeError("control_plane needs the real back end (KUBEBUILDER_ASSETS), started")
        return self._real

    # CRDs ----------------------------------------------------------------------------------------
    def install_crds(self, crds: Iterable[JSON], timeout: float = 30.0) -> list[JSON]:
        """Create (or replace) each CRD and wait until every one is Established and discovery serves
        each served version's resource (envtest.InstallCRDs + WaitForCRDs: kube-apiserver adds a
        new CRD to discovery a moment after it reports Established, and a client that looks it up
        in between gets "no matches for kind")."""
        http = self.http
        installed: list[JSON] = []
        for crd in crds:
            name = crd["metadata"]["name"]
            try:
                http.request("POST", CRD_API, crd)
            except errors.AlreadyExists:
                current = http.request("GET", f"{CRD_API}/{name}")
                replacement = dict(crd)
                replacement["metadata"] = dict(crd["metadata"], resourceVersion=current["metadata"]["resourceVersion"])
                http.request("PUT", f"{CRD_API}/{name}", replacement)
            installed.append(crd)
        deadline = time.monotonic() + timeout
        pending = {c["metadata"]["name"] for c in installed}
        established: dict[str, JSON] = {}
        while pending:
            for name in sorted(pending):
                obj = http.request("GET", f"{CRD_API}/{name}")
                conds = {c.get("type"): c.get("status") for c in (obj.get("status") or {}).get("conditions") or []}
                if conds.get("Established") == "True":
                    established[name] = obj
            pending -= set(established)
            if pending:
                if time.monotonic() > deadline:
                    raise EnvtestStartError(f"CRDs not Established within {timeout}s: {sorted(pending)}")
                time.sleep(0.02)
        for crd in installed:
            self._wait_for_discovery(crd, deadline, timeout)
        return [established[c["metadata"]["name"]] for c in installed]

    def _wait_for_discovery(self, crd: JSON, deadline: float, timeout: float) -> None:
        spec = crd.get("spec") or {}
        plural = (spec.get("names") or {}).get("plural")
        for version in spec.get("versions") or []:
            if not version.get("served", True):
                continue
            path = f"/apis/{spec.get('group')}/{version.get('name')}"
            while True:
                try:
                    listing = self.http.request("GET", path)
                    if any(r.get("name") == plural for r in (listing or {}).get("resources") or []):
                        break
                except errors.NotFound:
                    pass
                if time.monotonic() > deadline:
                    raise EnvtestStartError(f"{plural} not served at {path} within {timeout}s")
                time.sleep(0.02)


    # Webhooks ------------------------------------------------------------------------------------
    def install_webhooks(self, configurations: Iterable[JSON], *, url: str, ca_bundle: bytes,
                         timeout: float = 10.0) -> list[JSON]:
        """Create (or replace) Validating/MutatingWebhookConfigurations pointed at a test's server
        (controller-runtime's ``envtest.WebhookInstallOptions``), on either back end.

        Each webhook's ``clientConfig`` becomes ``url`` + the path of its ``service`` (or of its
        url), trusting ``ca_bundle`` (PEM). Returns once the server at ``url`` accepts connections
        and, on a real kube-apiserver (which learns configurations through an informer), once a
        short settle time has passed.
        """
        from urllib.parse import urlsplit

        http = self.http
        installed = []
        bundle = base64.b64encode(ca_bundle).decode()
        for configuration in configurations:
            config = copy.deepcopy(configuration)
            kind = config["kind"]
            plural = {"ValidatingWebhookConfiguration": "validatingwebhookconfigurations",
                      "MutatingWebhookConfiguration": "mutatingwebhookconfigurations"}[kind]
            for hook in config.get("webhooks") or []:
                client_config = hook.get("clientConfig") or {}
                path = (client_config.get("service") or {}).get("path") or urlsplit(
                    client_config.get("url") or "").path or "/"
                hook["clientConfig"] = {"url": url.rstrip("/") + path, "caBundle": bundle}
            base = f"/apis/admissionregistration.k8s.io/v1/{plural}"
            name = config["metadata"]["name"]
            try:
                installed.append(http.request("POST", base, config))
            except errors.AlreadyExists:
                current = http.request("GET", f"{base}/{name}")
                config["metadata"] = dict(config["metadata"], resourceVersion=current["metadata"]["resourceVersion"])
                installed.append(http.request("PUT", f"{base}/{name}", config))
        target = urlsplit(url)
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection((target.hostname or "127.0.0.1", target.port or 443), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise EnvtestStartError(f"webhook server at {url} not reachable within {timeout}s") from None
                time.sleep(0.02)
        if self.backend == "real":
            time.sleep(1.0)  # kube-apiserver's configuration informer; no API says when it has them
        return installed

    def serve_service(self, namespace: str, name: str, port: int, address: tuple[str, int]) -> None:
        """Emulator: calls to Service ``namespace/name:port`` (a webhook's ``clientConfig.service``)
        go to ``address`` on this host (kube-apiserver would resolve the Service's endpoints)."""
        self._require_emulator("serve_service")
        if self.server is None:
            raise RuntimeError("serve_service needs the in-process emulator")
        self.server.engine.service_addresses[(namespace, name, port)] = address


def register_pod_hooks(server: APIServer, cluster: SimulatedCluster) -> None:
    """Serve the simulated kubelet's hooks: POST /envtest/v1/pods/{namespace}/{name}/{mode} (mode
    ready, notready or crashloop) and POST /envtest/v1/nodes/{name}/{ready|notready}."""

    def nodes(method: str, rest: list[str], body: Any) -> tuple[int, Any]:
        if method != "POST":
            return 405, errors.MethodNotAllowed("use POST /envtest/v1/nodes/{name}/{ready|notready}").to_status()
        if len(rest) != 2 or rest[1] not in ("ready", "notready"):
            return 404, errors.NotFound("expected /envtest/v1/nodes/{name}/{ready|notready}").to_status()
        try:
            cluster.set_node_ready(rest[0], rest[1] == "ready")
        except ValueError as exc:
            return 404, errors.NotFound(str(exc)).to_status()
        return 200, {"name": rest[0], "mode": rest[1]}

    server.register_control("nodes", nodes)

    def handler(method: str, rest: list[str], body: Any) -> tuple[int, Any]:
        if method != "POST":
            return 405, errors.MethodNotAllowed("use POST /envtest/v1/pods/{namespace}/{name}/{mode}").to_status()
        if len(rest) != 3:
            return 404, errors.NotFound("expected /envtest/v1/pods/{namespace}/{name}/{mode}").to_status()
        namespace, name, mode = rest
        try:
            cluster.set_pod_mode(namespace, name, mode)
        except ValueError as exc:
            return 400, errors.BadRequest(str(exc)).to_status()
        except errors.ApiError as exc:
            return exc.status_code, exc.to_status()
        return 200, {"namespace": namespace, "name": name, "mode": mode}

    server.register_control("pods", handler)


def _read_kubeconfig(kubeconfig: str) -> tuple[str, str, bytes | None]:
    """(server, token, CA bytes or None) of the kubeconfig's current context."""
    with open(kubeconfig) as fh:
        config = yaml.safe_load(fh)
    current = config["current-context"]
    context = next(c["context"] for c in config["contexts"] if c["name"] == current)
    cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == context["cluster"])
    user = next(u["user"] for u in config["users"] if u["name"] == context["user"])
    ca: bytes | None = None
    if cluster.get("certificate-authority-data"):
        ca = base64.b64decode(cluster["certificate-authority-data"])
    elif cluster.get("certificate-authority"):
        with open(cluster["certificate-authority"], "rb") as fh_ca:
            ca = fh_ca.read()
    return str(cluster["server"]), str(user.get("token", "")), ca
