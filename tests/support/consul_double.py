"""A Consul HTTP API test double on 127.0.0.1 (one agent that is also the only server).

It speaks the subset of the HTTP API that ChubaoFS daemons, the rook-chubaofs node agent and
Prometheus' consul_sd use, with Consul's semantics where clients depend on them:

* Agent: ``PUT /v1/agent/service/register`` (with ``Check``/``Checks``: HTTP, TTL or a fixed
  ``Status``), ``PUT /v1/agent/service/deregister/<id>``, ``GET /v1/agent/services``,
  ``GET /v1/agent/service/<id>``, ``GET /v1/agent/checks``, ``PUT /v1/agent/check/{pass,warn,fail}/<id>``,
  ``PUT /v1/agent/check/update/<id>``, ``GET /v1/agent/self``, ``GET /v1/agent/members``,
  ``GET /v1/agent/metrics`` (JSON, or Prometheus text with ``?format=prometheus``).
* Status: ``GET /v1/status/leader`` (a JSON string, empty while "leaderless"), ``/v1/status/peers``.
* Catalog and health, as read by consul_sd (prometheus/prometheus discovery/consul/consul.go):
  ``GET /v1/catalog/services``, ``/v1/catalog/service/<name>``, ``/v1/catalog/nodes``,
  ``/v1/health/service/<name>`` (``?passing``, ``?tag=``), ``/v1/health/checks/<name>``,
  ``/v1/health/state/<state>``.
* Blocking queries: read endpoints honour ``?index=N&wait=D`` and answer with ``X-Consul-Index``,
  ``X-Consul-KnownLeader`` and ``X-Consul-LastContact`` (the Go API client refuses answers
  without them). The index is one counter for the whole state; Consul documents the index as
  opaque and allows wake-ups on unrelated changes, which a global index produces.

HTTP checks run for real: a checker thread GETs each check's URL at its ``Interval`` (2xx =
passing, 429 = warning, anything else or no answer = critical), TTL checks go critical when not
refreshed in time, and new checks start ``critical`` unless their definition sets ``Status``, as
in Consul. Every request is recorded in ``requests`` for assertions. The double stops itself on
``stop()`` (also as a context manager), releasing every blocked query.
"""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from rook_py.framework.cmdline import parse_duration

JSON = dict[str, Any]

PASSING, WARNING, CRITICAL = "passing", "warning", "critical"
_STATUSES = (PASSING, WARNING, CRITICAL)

#: Consul's durations (check Interval/Timeout/TTL, ``?wait=``) are Go durations, like the rook
#: flags': one parser serves both ("10s", "1m30s", "250ms"; a bare number means seconds).
parse_go_duration = parse_duration

#: Consul caps blocking waits at 10 minutes and defaults to 5 (agent/http.go parseWait).
MAX_WAIT = 600.0
DEFAULT_WAIT = 300.0

def aggregated_status(checks: list[JSON]) -> str:
    """Worst status wins: critical > warning > passing (consul/api HealthChecks.AggregatedStatus)."""
    statuses = {c["Status"] for c in checks}
    if CRITICAL in statuses:
        return CRITICAL
    if WARNING in statuses:
        return WARNING
    return PASSING


@dataclass
class _Check:
    check_id: str
    name: str
    service_id: str
    service_name: str
    status: str
    output: str = ""
    http: str | None = None
    interval: float | None = None
    timeout: float = 10.0
    ttl: float | None = None
    next_run: float = 0.0
    ttl_deadline: float = 0.0
    create_index: int = 0
    modify_index: int = 0

    def to_json(self, node: str) -> JSON:
        definition: JSON = {}
        if self.http:
            definition = {"HTTP": self.http, "Interval": f"{self.interval}s", "Timeout": f"{self.timeout}s"}
        elif self.ttl is not None:
            definition = {"TTL": f"{self.ttl}s"}
        return {
            "Node": node,
            "CheckID": self.check_id,
            "Name": self.name,
            "Status": self.status,
            "Notes": "",
            "Output": self.output,
            "ServiceID": self.service_id,
            "ServiceName": self.service_name,
            "ServiceTags": [],
            "Type": "http" if self.http else ("ttl" if self.ttl is not None else ""),
            "Definition": definition,
            "CreateIndex": self.create_index,
            "ModifyIndex": self.modify_index,
        }


@dataclass
class _Service:
    service_id: str
    name: str
    tags: list[str]
    address: str
    port: int
    meta: dict[str, str]
    create_index: int
    modify_index: int
    check_ids: list[str] = field(default_factory=list)

    def agent_json(self, datacenter: str) -> JSON:
        return {
            "ID": self.service_id,
            "Service": self.name,
            "Tags": list(self.tags),
            "Meta": dict(self.meta),
            "Port": self.port,
            "Address": self.address,
            "Weights": {"Passing": 1, "Warning": 1},
            "EnableTagOverride": False,
            "Datacenter": datacenter,
        }

    def health_json(self) -> JSON:
        return {
            "ID": self.service_id,
            "Service": self.name,
            "Tags": list(self.tags),
            "Address": self.address,
            "Meta": dict(self.meta),
            "Port": self.port,
            "Weights": {"Passing": 1, "Warning": 1},
            "EnableTagOverride": False,
            "CreateIndex": self.create_index,
            "ModifyIndex": self.modify_index,
        }


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    body: bytes


class ConsulDouble:
    """The double. Start with `start()` (or `with ConsulDouble() as consul:`), stop with `stop()`.

    `address` is ``host:port`` (what consul_sd's ``server`` takes), `url` the HTTP base URL.
    `leader` is what ``/v1/status/leader`` reports; set it to ``""`` to simulate a lost quorum.
    `min_check_interval` floors HTTP/TTL check periods so a test cannot make the checker spin.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        datacenter: str = "dc1",
        node_name: str = "consul-double",
        node_address: str = "127.0.0.1",
        min_check_interval: float = 0.05,
    ) -> None:
        self.datacenter = datacenter
        self.node_name = node_name
        self.node_address = node_address
        self.leader = f"{node_address}:8300"
        self.min_check_interval = min_check_interval
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Condition()
        self._index = 1
        self._services: dict[str, _Service] = {}
        self._checks: dict[str, _Check] = {}
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._threads: list[threading.Thread] = []

    # ----------------------------------------------------------------- lifecycle
    @property
    def address(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{host!s}:{port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def start(self) -> ConsulDouble:
        serve = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                 name="consul-double-http", daemon=True)
        checker = threading.Thread(target=self._run_checks, name="consul-double-checks", daemon=True)
        self._threads = [serve, checker]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            self._lock.notify_all()  # release blocking queries
        self._server.shutdown()
        self._server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> ConsulDouble:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------ python API
    @property
    def index(self) -> int:
        with self._lock:
            return self._index

    def register_service(self, definition: JSON) -> str:
        """Register like ``PUT /v1/agent/service/register``; returns the service ID."""
        with self._lock:
            return self._register(definition)

    def deregister_service(self, service_id: str) -> bool:
        with self._lock:
            return self._deregister(service_id)

    def set_check_status(self, check_id: str, status: str, output: str = "") -> None:
        if status not in _STATUSES:
            raise ValueError(f"unknown check status {status!r}")
        with self._lock:
            check = self._checks[check_id]
            self._set_status(check, status, output)

    def services(self) -> dict[str, JSON]:
        with self._lock:
            return {sid: s.agent_json(self.datacenter) for sid, s in self._services.items()}

    def checks(self) -> dict[str, JSON]:
        with self._lock:
            return {cid: c.to_json(self.node_name) for cid, c in self._checks.items()}

    def wait_for(self, predicate: Any, timeout: float) -> bool:
        """Wait until ``predicate(double)`` is true (re-evaluated on every state change)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while not predicate(self):
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stopping.is_set():
                    return False
                self._lock.wait(min(remaining, 0.1))
            return True

    # ------------------------------------------------------------- state (locked)
    def _bump(self) -> int:
        self._index += 1
        self._lock.notify_all()
        return self._index

    def _register(self, definition: JSON) -> str:
        name = definition.get("Name")
        if not isinstance(name, str) or not name:
            raise _HTTPError(HTTPStatus.BAD_REQUEST, "Missing service name")
        service_id = str(definition.get("ID") or name)
        port = int(definition.get("Port") or 0)
        previous = self._services.get(service_id)
        for check_id in previous.check_ids if previous else []:
            self._checks.pop(check_id, None)
        index = self._bump()
        service = _Service(
            service_id=service_id,
            name=name,
            tags=[str(t) for t in definition.get("Tags") or []],
            address=str(definition.get("Address") or ""),
            port=port,
            meta={str(k): str(v) for k, v in (definition.get("Meta") or {}).items()},
            create_index=previous.create_index if previous else index,
            modify_index=index,
        )
        check_defs: list[JSON] = []
        if definition.get("Check"):
            check_defs.append(definition["Check"])
        check_defs.extend(definition.get("Checks") or [])
        for position, check_def in enumerate(check_defs):
            default_id = f"service:{service_id}" if len(check_defs) == 1 else f"service:{service_id}:{position + 1}"
            check = self._make_check(check_def, default_id, service, index)
            self._checks[check.check_id] = check
            service.check_ids.append(check.check_id)
        self._services[service_id] = service
        return service_id

    def _make_check(self, check_def: JSON, default_id: str, service: _Service, index: int) -> _Check:
        status = str(check_def.get("Status") or CRITICAL)
        if status not in _STATUSES:
            raise _HTTPError(HTTPStatus.BAD_REQUEST, f"Invalid check status {status!r}")
        check = _Check(
            check_id=str(check_def.get("CheckID") or check_def.get("ID") or default_id),
            name=str(check_def.get("Name") or f"Service '{service.name}' check"),
            service_id=service.service_id,
            service_name=service.name,
            status=status,
            create_index=index,
            modify_index=index,
        )
        now = time.monotonic()
        if check_def.get("HTTP"):
            if not check_def.get("Interval"):
                raise _HTTPError(HTTPStatus.BAD_REQUEST, "HTTP check requires an Interval")
            check.http = str(check_def["HTTP"])
            check.interval = max(parse_go_duration(str(check_def["Interval"])), self.min_check_interval)
            if check_def.get("Timeout"):
                check.timeout = parse_go_duration(str(check_def["Timeout"]))
            check.next_run = now  # Consul runs a new check right away (after a small stagger)
        elif check_def.get("TTL"):
            check.ttl = max(parse_go_duration(str(check_def["TTL"])), self.min_check_interval)
            check.ttl_deadline = now + check.ttl
        return check

    def _deregister(self, service_id: str) -> bool:
        service = self._services.pop(service_id, None)
        if service is None:
            return False
        for check_id in service.check_ids:
            self._checks.pop(check_id, None)
        self._bump()
        return True

    def _set_status(self, check: _Check, status: str, output: str) -> None:
        if check.ttl is not None:
            check.ttl_deadline = time.monotonic() + check.ttl
        if check.status == status and check.output == output:
            return
        check.status, check.output = status, output
        check.modify_index = self._bump()

    def _node_json(self) -> JSON:
        return {
            "ID": "00000000-0000-0000-0000-000000000001",
            "Node": self.node_name,
            "Address": self.node_address,
            "Datacenter": self.datacenter,
            "TaggedAddresses": {"lan": self.node_address, "wan": self.node_address},
            "Meta": {"consul-network-segment": ""},
            "CreateIndex": 1,
            "ModifyIndex": 1,
        }

    def _serf_check(self) -> JSON:
        return {
            "Node": self.node_name, "CheckID": "serfHealth", "Name": "Serf Health Status",
            "Status": PASSING, "Notes": "", "Output": "Agent alive and reachable",
            "ServiceID": "", "ServiceName": "", "ServiceTags": [], "Type": "",
            "Definition": {}, "CreateIndex": 1, "ModifyIndex": 1,
        }

    def _health_entries(self, name: str, tag: list[str], passing: bool) -> list[JSON]:
        entries = []
        for service in sorted(self._services.values(), key=lambda s: s.service_id):
            if service.name != name or any(t not in service.tags for t in tag):
                continue
            checks = [self._serf_check()]
            checks.extend(self._checks[c].to_json(self.node_name) for c in service.check_ids)
            if passing and aggregated_status(checks) != PASSING:
                continue
            entries.append({"Node": self._node_json(), "Service": service.health_json(), "Checks": checks})
        return entries

    def _catalog_entry(self, service: _Service) -> JSON:
        node = self._node_json()
        return {
            "ID": node["ID"], "Node": node["Node"], "Address": node["Address"],
            "Datacenter": self.datacenter, "TaggedAddresses": node["TaggedAddresses"],
            "NodeMeta": node["Meta"], "ServiceKind": "", "ServiceID": service.service_id,
            "ServiceName": service.name, "ServiceTags": list(service.tags),
            "ServiceAddress": service.address, "ServiceMeta": dict(service.meta),
            "ServicePort": service.port, "ServiceEnableTagOverride": False,
            "CreateIndex": service.create_index, "ModifyIndex": service.modify_index,
        }

    # ------------------------------------------------------------------ checker
    def _run_checks(self) -> None:
        while not self._stopping.is_set():
            now = time.monotonic()
            due: list[tuple[str, str, float]] = []
            with self._lock:
                for check in self._checks.values():
                    if check.http and check.interval and check.next_run <= now:
                        check.next_run = now + check.interval
                        due.append((check.check_id, check.http, check.timeout))
                    elif check.ttl is not None and check.ttl_deadline <= now and check.status != CRITICAL:
                        self._set_status(check, CRITICAL, "TTL expired")
            for check_id, url, timeout in due:
                status, output = _probe(url, timeout)
                with self._lock:
                    probed = self._checks.get(check_id)
                    if probed is not None:  # it may have been deregistered meanwhile
                        self._set_status(probed, status, output)
            self._stopping.wait(self.min_check_interval / 2)

    # ------------------------------------------------------------------ HTTP
    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        double = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                return

            def do_GET(self) -> None:
                self._dispatch("GET")

            def do_PUT(self) -> None:
                self._dispatch("PUT")

            def do_POST(self) -> None:
                self._dispatch("POST")

            def _dispatch(self, method: str) -> None:
                parts = urlsplit(self.path)
                query = parse_qs(parts.query, keep_blank_values=True)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                double.requests.append(RecordedRequest(method, parts.path, query, body))
                try:
                    status, payload, index, content_type = double._route(method, parts.path, query, body)
                except _HTTPError as err:
                    status, payload, index, content_type = err.status, err.message, None, "text/plain"
                data = payload if isinstance(payload, bytes) else (
                    payload.encode() if isinstance(payload, str) and content_type != "application/json"
                    else json.dumps(payload).encode()
                )
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                if index is not None:
                    self.send_header("X-Consul-Index", str(index))
                    self.send_header("X-Consul-KnownLeader", "true" if double.leader else "false")
                    self.send_header("X-Consul-LastContact", "0")
                self.end_headers()
                self.wfile.write(data)

        return Handler

    def _block(self, query: dict[str, list[str]]) -> int:
        """Blocking-query wait: return once the index moved past ``?index`` or ``?wait`` ran out."""
        if "index" not in query:
            return self._index
        try:
            wanted = int(query["index"][0])
            wait = parse_go_duration(query["wait"][0]) if query.get("wait") else DEFAULT_WAIT
        except ValueError as err:
            raise _HTTPError(HTTPStatus.BAD_REQUEST, f"Invalid blocking query: {err}") from err
        deadline = time.monotonic() + min(wait, MAX_WAIT)
        while self._index <= wanted and not self._stopping.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._lock.wait(remaining)
        return self._index

    def _route(
        self, method: str, path: str, query: dict[str, list[str]], body: bytes
    ) -> tuple[int, Any, int | None, str]:
        ok = HTTPStatus.OK
        if method == "PUT":
            return self._route_write(path, query, body)
        if method != "GET":
            raise _HTTPError(HTTPStatus.METHOD_NOT_ALLOWED, f"method {method} not allowed")
        if path == "/v1/status/leader":
            return ok, self.leader, None, "application/json"
        if path == "/v1/status/peers":
            return ok, [self.leader] if self.leader else [], None, "application/json"
        if path == "/v1/agent/self":
            return ok, self._agent_self(), None, "application/json"
        if path == "/v1/agent/members":
            return ok, [self._agent_self()["Member"]], None, "application/json"
        if path == "/v1/agent/metrics":
            return self._metrics(query)
        with self._lock:
            if path == "/v1/agent/services":
                return ok, {sid: s.agent_json(self.datacenter) for sid, s in self._services.items()}, None, "application/json"
            if path.startswith("/v1/agent/service/"):
                service = self._services.get(path.rsplit("/", 1)[1])
                if service is None:
                    raise _HTTPError(HTTPStatus.NOT_FOUND, "unknown service ID")
                return ok, service.agent_json(self.datacenter), None, "application/json"
            if path == "/v1/agent/checks":
                return ok, {cid: c.to_json(self.node_name) for cid, c in self._checks.items()}, None, "application/json"
            # Read endpoints below support blocking queries.
            if path == "/v1/catalog/services":
                index = self._block(query)
                names: dict[str, list[str]] = {"consul": []}
                for service in self._services.values():
                    tags = names.setdefault(service.name, [])
                    tags.extend(t for t in service.tags if t not in tags)
                return ok, names, index, "application/json"
            if path.startswith("/v1/catalog/service/"):
                name, tags = path.rsplit("/", 1)[1], query.get("tag", [])
                index = self._block(query)
                entries = [self._catalog_entry(s) for s in sorted(self._services.values(), key=lambda s: s.service_id)
                           if s.name == name and all(t in s.tags for t in tags)]
                return ok, entries, index, "application/json"
            if path == "/v1/catalog/nodes":
                index = self._block(query)
                return ok, [self._node_json()], index, "application/json"
            if path.startswith("/v1/health/service/"):
                name = path.rsplit("/", 1)[1]
                passing = "passing" in query and query["passing"][0].lower() not in ("false", "0")
                index = self._block(query)
                return ok, self._health_entries(name, query.get("tag", []), passing), index, "application/json"
            if path.startswith("/v1/health/checks/"):
                name = path.rsplit("/", 1)[1]
                index = self._block(query)
                return ok, [c.to_json(self.node_name) for c in self._checks.values() if c.service_name == name], index, "application/json"
            if path.startswith("/v1/health/state/"):
                state = path.rsplit("/", 1)[1]
                index = self._block(query)
                checks = [self._serf_check()] + [c.to_json(self.node_name) for c in self._checks.values()]
                return ok, [c for c in checks if state == "any" or c["Status"] == state], index, "application/json"
        raise _HTTPError(HTTPStatus.NOT_FOUND, f"no handler for {path}")

    def _route_write(self, path: str, query: dict[str, list[str]], body: bytes) -> tuple[int, Any, int | None, str]:
        with self._lock:
            if path == "/v1/agent/service/register":
                try:
                    definition = json.loads(body or b"{}")
                except ValueError as err:
                    raise _HTTPError(HTTPStatus.BAD_REQUEST, f"Request decode failed: {err}") from err
                if not isinstance(definition, dict):
                    raise _HTTPError(HTTPStatus.BAD_REQUEST, "Request decode failed: not an object")
                self._register(definition)
                return HTTPStatus.OK, b"", None, "text/plain"
            if path.startswith("/v1/agent/service/deregister/"):
                service_id = path.rsplit("/", 1)[1]
                if not self._deregister(service_id):
                    raise _HTTPError(HTTPStatus.NOT_FOUND, f'Unknown service ID "{service_id}"')
                return HTTPStatus.OK, b"", None, "text/plain"
            match = re.fullmatch(r"/v1/agent/check/(pass|warn|fail|update)/(.+)", path)
            if match:
                verb, check_id = match.groups()
                check = self._checks.get(check_id)
                if check is None:
                    raise _HTTPError(HTTPStatus.NOT_FOUND, f'Unknown check ID "{check_id}"')
                if verb == "update":
                    update = json.loads(body or b"{}")
                    status, output = str(update.get("Status", "")), str(update.get("Output", ""))
                    if status not in _STATUSES:
                        raise _HTTPError(HTTPStatus.BAD_REQUEST, f"Invalid status {status!r}")
                else:
                    status = {"pass": PASSING, "warn": WARNING, "fail": CRITICAL}[verb]
                    output = query.get("note", [""])[0]
                self._set_status(check, status, output)
                return HTTPStatus.OK, b"", None, "text/plain"
        raise _HTTPError(HTTPStatus.NOT_FOUND, f"no handler for PUT {path}")

    def _agent_self(self) -> JSON:
        return {
            "Config": {"Datacenter": self.datacenter, "NodeName": self.node_name,
                       "NodeID": "00000000-0000-0000-0000-000000000001", "Server": True,
                       "Revision": "double", "Version": "1.15.0"},
            "Member": {"Name": self.node_name, "Addr": self.node_address, "Port": 8301,
                       "Tags": {"role": "consul", "dc": self.datacenter}, "Status": 1},
        }

    def _metrics(self, query: dict[str, list[str]]) -> tuple[int, Any, int | None, str]:
        with self._lock:
            services, checks = len(self._services), list(self._checks.values())
        leader = 1 if self.leader else 0
        if query.get("format", [""])[0] == "prometheus":
            lines = [
                "# HELP consul_raft_state_leader Whether this server is the raft leader.",
                "# TYPE consul_raft_state_leader gauge",
                f"consul_raft_state_leader {leader}",
                "# HELP consul_catalog_registered_services Registered services (double).",
                "# TYPE consul_catalog_registered_services gauge",
                f"consul_catalog_registered_services {services}",
                "# HELP consul_health_checks_critical Critical checks (double).",
                "# TYPE consul_health_checks_critical gauge",
                f"consul_health_checks_critical {sum(c.status == CRITICAL for c in checks)}",
            ]
            return HTTPStatus.OK, "\n".join(lines) + "\n", None, "text/plain; version=0.0.4"
        gauges = [{"Name": "consul.raft.state.leader", "Value": leader, "Labels": {}}]
        return HTTPStatus.OK, {"Timestamp": time.strftime("%Y-%m-%d %H:%M:%S +0000 UTC", time.gmtime()),
                               "Gauges": gauges, "Points": [], "Counters": [], "Samples": []}, None, "application/json"


class _HTTPError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _probe(url: str, timeout: float) -> tuple[str, str]:
    """Run one HTTP check the way Consul does: 2xx passing, 429 warning, anything else critical."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return PASSING, f"HTTP GET {url}: {response.status} Output: ok"
    except urllib.error.HTTPError as err:
        status = WARNING if err.code == HTTPStatus.TOO_MANY_REQUESTS else CRITICAL
        return status, f"HTTP GET {url}: {err.code}"
    except (OSError, ValueError) as err:
        return CRITICAL, f"Get {url}: {err}"


@contextmanager
def running_consul(**kwargs: Any) -> Iterator[ConsulDouble]:
    """Context manager: a started ConsulDouble, stopped on exit."""
    double = ConsulDouble(**kwargs).start()
    try:
        yield double
    finally:
        double.stop()
