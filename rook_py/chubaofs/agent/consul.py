"""The agent's side of Consul: its own registration, and cleaning up dead ChubaoFS instances.

Only the agent HTTP API is used (``/v1/agent/service/register``, ``/deregister/<id>``,
``/v1/agent/services``): ChubaoFS daemons register through the agent API
(cubefs/cubefs ``util/exporter/consul.go``), and a service registered with an agent must be
removed through that agent, or anti-entropy re-creates its catalog entry.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from rook_py.framework.logging import get_logger

JSON = dict[str, Any]
AGENT_SERVICE = "rook-chubaofs-agent"
CFS_SERVICE = "cfs"

log = get_logger(__name__)


class ConsulError(Exception):
    """Consul answered with an error or not at all."""


def _go_duration(seconds: float) -> str:
    return f"{seconds:g}s"


class ConsulClient:
    """A minimal Consul HTTP API client; ``address`` is ``host:port`` or a URL."""

    def __init__(self, address: str, *, timeout: float = 5.0, token: str | None = None) -> None:
        self.base = address.rstrip("/") if "://" in address else f"http://{address.rstrip('/')}"
        self.timeout = timeout
        self.token = token

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("X-Consul-Token", self.token)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as err:
            detail = err.read().decode(errors="replace").strip()
            raise ConsulError(f"{method} {path}: HTTP {err.code}: {detail}") from None
        except (urllib.error.URLError, OSError) as err:
            raise ConsulError(f"{method} {path}: {err}") from None
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode(errors="replace")

    def register(self, definition: JSON) -> None:
        self._call("PUT", "/v1/agent/service/register", definition)

    def deregister(self, service_id: str) -> None:
        self._call("PUT", f"/v1/agent/service/deregister/{quote(service_id, safe='')}")

    def services(self) -> dict[str, JSON]:
        result = self._call("GET", "/v1/agent/services")
        return dict(result) if isinstance(result, dict) else {}


def registration(node: str, cluster: str, address: str, port: int, *, check_interval: float = 10.0,
                 check_timeout: float = 5.0, deregister_critical_after: float = 600.0) -> JSON:
    """The agent's service definition: one instance per node (ID ``rook-chubaofs-agent-<node>``),
    tags ``node=`` and ``cluster=`` in ChubaoFS' ``k=v`` style so the same Prometheus relabeling
    applies, and an HTTP check on its own ``/metrics``. ``DeregisterCriticalServiceAfter`` lets
    Consul reap the entry if the agent died without deregistering (node lost)."""
    url = f"http://{address}:{port}/metrics"
    return {
        "ID": f"{AGENT_SERVICE}-{node}", "Name": AGENT_SERVICE, "Address": address, "Port": port,
        "Tags": [f"node={node}", f"cluster={cluster}"],
        "Meta": {"node": node, "cluster": cluster, "metric_path": "/metrics"},
        "Check": {"HTTP": url, "Interval": _go_duration(check_interval), "Timeout": _go_duration(check_timeout),
                  "DeregisterCriticalServiceAfter": _go_duration(deregister_critical_after)},
    }


def http_probe(url: str, timeout: float) -> bool:
    """True when ``url`` answers 2xx."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return 200 <= int(response.status) < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


@dataclass
class StaleReaper:
    """Deregisters ``cfs`` instances on this node whose exporter stayed unreachable longer than
    ``grace`` seconds. ChubaoFS re-registers live daemons every few minutes and never
    deregisters, so a daemon that died (or moved) leaves a target Prometheus scrapes forever.

    An instance is "on this node" when its registered Address is one of ``addresses`` (the node
    IP: ChubaoFS daemons run with host networking and register the first non-loopback IPv4).
    Unreachability is tracked from the first failed probe; any success forgets it.
    """

    consul: ConsulClient
    addresses: frozenset[str]
    grace: float
    probe: Callable[[str, float], bool] = http_probe
    probe_timeout: float = 2.0
    clock: Callable[[], float] = time.monotonic
    _down_since: dict[str, float] = field(default_factory=dict)

    def candidates(self, services: dict[str, JSON]) -> Iterable[JSON]:
        for service in services.values():
            if service.get("Service") == CFS_SERVICE and service.get("Address") in self.addresses:
                yield service

    def sweep(self) -> list[str]:
        """One pass; returns the IDs it deregistered."""
        now = self.clock()
        removed: list[str] = []
        seen: set[str] = set()
        for service in self.candidates(self.consul.services()):
            sid = str(service["ID"])
            seen.add(sid)
            path = str((service.get("Meta") or {}).get("metric_path") or "/metrics")
            if self.probe(f"http://{service['Address']}:{service['Port']}{path}", self.probe_timeout):
                self._down_since.pop(sid, None)
                continue
            since = self._down_since.setdefault(sid, now)
            if now - since >= self.grace:
                try:
                    self.consul.deregister(sid)
                except ConsulError as err:
                    log.warning("cannot deregister stale ChubaoFS instance", service_id=sid, error=str(err))
                    continue
                log.info("deregistered stale ChubaoFS instance", service_id=sid, down_for=now - since)
                self._down_since.pop(sid, None)
                removed.append(sid)
        for sid in set(self._down_since) - seen:  # gone by other means
            self._down_since.pop(sid, None)
        return removed


class Registrar:
    """Keeps the agent registered (re-registering every ``interval``: a restarted Consul agent
    forgets agent-API services) until ``deregister`` is called."""

    def __init__(self, consul: ConsulClient, definition: JSON) -> None:
        self.consul = consul
        self.definition = definition
        self.registered = False
        self._lock = threading.Lock()

    @property
    def service_id(self) -> str:
        return str(self.definition["ID"])

    def register(self) -> bool:
        with self._lock:
            try:
                self.consul.register(self.definition)
            except ConsulError as err:
                log.warning("consul registration failed; retrying", error=str(err))
                return False
            if not self.registered:
                log.info("registered in consul", service_id=self.service_id, consul=self.consul.base)
            self.registered = True
            return True

    def deregister(self) -> bool:
        with self._lock:
            if not self.registered:
                return False
            try:
                self.consul.deregister(self.service_id)
            except ConsulError as err:
                log.warning("consul deregistration failed", error=str(err))
                return False
            self.registered = False
            log.info("deregistered from consul", service_id=self.service_id)
            return True
