"""The ChubaoFS node agent: one pod per node (DaemonSet ``rook-chubaofs-agent``).

Every ``interval`` it
1. reads its node's discover ConfigMap (``local-device-<node>``) so disks that vanished from
   sysfs are still reported (as not present) rather than silently disappearing;
2. finds the Consul to register in: ``--consul-addr``, else the ChubaoMonitor named by
   ``--monitor`` (its ``spec.consul.externalAddress`` or its in-cluster Consul Service), and
   (re-)registers itself there;
3. with ``--deregister-stale-after``, removes dead ChubaoFS ``cfs`` instances of its node.

``/metrics`` is served the whole time; ``stop`` (SIGTERM) deregisters from Consul before the
server closes, so Prometheus stops scraping a pod that is going away.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rook_py.chubaofs.agent.consul import ConsulClient, ConsulError, Registrar, StaleReaper, registration
from rook_py.chubaofs.agent.metrics import NodeCollector, exposition, make_registry
from rook_py.chubaofs.api import types as t
from rook_py.framework.client import errors
from rook_py.framework.daemons.discover import configmap_name, read_devices
from rook_py.framework.httpserver import HTTPServer
from rook_py.framework.logging import get_logger

JSON = dict[str, Any]
log = get_logger(__name__)


@dataclass(frozen=True)
class ConsulTarget:
    address: str
    cluster: str


def monitor_consul(monitor: JSON) -> ConsulTarget:
    """Where a ChubaoMonitor's Consul answers, and its cluster name."""
    meta, spec = monitor["metadata"], monitor.get("spec") or {}
    external = (spec.get(t.CONSUL) or {}).get("externalAddress")
    address = str(external) if external else f"{meta['name']}-{t.CONSUL}.{meta['namespace']}.svc:{t.CONSUL_HTTP_PORT}"
    return ConsulTarget(address, str((spec.get("cluster") or {}).get("name") or ""))


@dataclass
class AgentConfig:
    node: str
    namespace: str
    advertise_address: str
    port: int = 9500
    listen_address: str = ":9500"
    cluster: str = ""
    consul_addr: str = ""
    monitor: str = ""                     # "namespace/name"
    node_addresses: frozenset[str] = frozenset()
    deregister_stale_after: float = 0.0   # 0: off
    interval: float = 30.0
    check_interval: float = 10.0
    extra: dict[str, Any] = field(default_factory=dict)


class Agent:
    """See the module docstring. ``client`` is the Kubernetes client (None: no ConfigMap or
    monitor lookups); ``consul_factory`` builds the Consul client for an address (tests)."""

    def __init__(self, config: AgentConfig, collector: NodeCollector, client: Any = None, *,
                 consul_factory: Callable[[str], ConsulClient] = ConsulClient) -> None:
        self.config = config
        self.collector = collector
        self.client = client
        self._consul_factory = consul_factory
        self._registry = make_registry(collector)
        self.registrar: Registrar | None = None
        self._consul_address = ""
        self.reaper: StaleReaper | None = None
        self.server: HTTPServer | None = None

    # -- pieces -----------------------------------------------------------------------------
    def _serve_metrics(self, sub_path: str, query: dict[str, list[str]]) -> tuple[int, bytes, str]:
        if sub_path:
            return 404, b"404 page not found\n", "text/plain; charset=utf-8"
        body, content_type = exposition(self._registry)
        return 200, body, content_type

    def refresh_disks(self) -> None:
        if self.client is None:
            return
        try:
            cm = self.client.get("v1", "ConfigMap", configmap_name(self.config.node), self.config.namespace)
        except errors.NotFound:
            return  # discover has not run (yet) or is disabled: sysfs alone
        disks = {str(d["name"]): int(d.get("size") or 0) for d in read_devices(cm)
                 if d.get("type") == "disk" and d.get("name")}
        self.collector.set_known_disks(disks)

    def resolve_consul(self) -> ConsulTarget | None:
        cfg = self.config
        if cfg.consul_addr:
            return ConsulTarget(cfg.consul_addr, cfg.cluster)
        if not cfg.monitor or self.client is None:
            return None
        namespace, _, name = cfg.monitor.rpartition("/")
        try:
            monitor = self.client.get(t.API_VERSION, t.KIND, name, namespace or cfg.namespace)
        except errors.NotFound:
            log.info("monitor not found; not registering yet", monitor=cfg.monitor)
            return None
        target = monitor_consul(monitor)
        return ConsulTarget(target.address, cfg.cluster or target.cluster)

    def sync_consul(self) -> None:
        target = self.resolve_consul()
        if target is None:
            return
        if self.registrar is None or self._consul_address != target.address:
            if self.registrar is not None:
                self.registrar.deregister()  # the monitor's Consul moved: leave the old one
            consul = self._consul_factory(target.address)
            self._consul_address = target.address
            self.registrar = Registrar(consul, registration(
                self.config.node, target.cluster, self.config.advertise_address, self.config.port,
                check_interval=self.config.check_interval))
            if self.config.deregister_stale_after > 0:
                self.reaper = StaleReaper(consul, self.config.node_addresses, self.config.deregister_stale_after)
        self.registrar.register()
        if self.reaper is not None:
            try:
                self.reaper.sweep()
            except ConsulError as err:
                log.warning("stale instance sweep failed", error=str(err))

    def tick(self) -> None:
        """One refresh pass; errors are logged and retried next interval (never fatal)."""
        try:
            self.refresh_disks()
        except errors.ApiError as err:
            log.warning("cannot read discover ConfigMap", error=str(err))
        try:
            self.sync_consul()
        except errors.ApiError as err:
            log.warning("cannot read ChubaoMonitor", error=str(err))

    # -- lifecycle --------------------------------------------------------------------------
    def start_server(self) -> tuple[str, int]:
        self.server = HTTPServer("agent-metrics", self.config.listen_address, {"/metrics": self._serve_metrics})
        self.server.start()
        if self.config.port == 0:  # ":0" (tests): register the port the kernel picked
            self.config.port = self.server.address[1]
        return self.server.address

    def run(self, stop: threading.Event) -> None:
        """Serve and refresh until ``stop``; then deregister and close the server."""
        if self.server is None:
            self.start_server()
        try:
            while not stop.is_set():
                self.tick()
                stop.wait(self.config.interval)
        finally:
            if self.registrar is not None:
                self.registrar.deregister()
            if self.server is not None:
                self.server.stop()
                self.server = None
