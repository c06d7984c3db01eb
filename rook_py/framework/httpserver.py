"""The manager's two small HTTP servers: health probes and Prometheus metrics.

* Health (controller-runtime pkg/healthz/healthz.go): ``/healthz`` and ``/readyz`` run every
  registered check and answer 200 ``ok`` when all pass, 500 with a per-check ``[+]``/``[-]``
  listing otherwise; ``?verbose`` lists on success too; ``/healthz/<name>`` runs one check. A
  check is a callable that raises (or returns ``False``) when unhealthy. No checks means healthy.
* Metrics: ``/metrics`` serves ``metrics.exposition()`` (the shared registry).

Bind addresses use the controller-runtime flag syntax: ``":8080"`` listens on all interfaces,
``"127.0.0.1:0"`` on loopback with a kernel-chosen port (read it back from ``.address``), and
``"0"`` disables the server.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from rook_py.framework import metrics
from rook_py.framework.logging import get_logger

log = get_logger(__name__)

Check = Callable[[], object]


def parse_bind_address(address: str) -> tuple[str, int] | None:
    """``":8080"`` -> ("", 8080); ``"[::1]:0"`` -> ("::1", 0); ``"0"`` or ``""`` -> None (disabled)."""
    if address in ("", "0"):
        return None
    host, sep, port = address.rpartition(":")
    if not sep:
        raise ValueError(f"bind address {address!r} must be host:port, :port or 0")
    host = host.strip("[]")
    try:
        port_number = int(port)
    except ValueError:
        raise ValueError(f"bind address {address!r} has a non-numeric port") from None
    if not 0 <= port_number <= 65535:
        raise ValueError(f"bind address {address!r} has an out-of-range port")
    return host, port_number


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    server_version = "rook-py"
    routes: dict[str, Callable[[str, dict[str, list[str]]], tuple[int, bytes, str]]] = {}

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query: dict[str, list[str]] = {}
        for part in url.query.split("&") if url.query else ():
            key, _, value = part.partition("=")
            query.setdefault(key, []).append(value)
        for prefix, route in self.routes.items():
            if url.path == prefix or url.path.startswith(prefix + "/"):
                status, body, content_type = route(url.path[len(prefix):].lstrip("/"), query)
                break
        else:
            status, body, content_type = 404, b"404 page not found\n", "text/plain; charset=utf-8"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        # Probes hit these endpoints every few seconds; keep them out of the operator's log.
        pass


class HTTPServer:
    """A ThreadingHTTPServer on its own daemon thread, with a fixed route table."""

    def __init__(self, name: str, bind_address: str,
                 routes: dict[str, Callable[[str, dict[str, list[str]]], tuple[int, bytes, str]]]) -> None:
        parsed = parse_bind_address(bind_address)
        if parsed is None:
            raise ValueError(f"{name} server is disabled (bind address {bind_address!r})")
        host, port = parsed
        handler = type(f"{name}Handler", (_Handler,), {"routes": routes})
        server_cls = _Server6 if ":" in host else _Server
        self.name = name
        self._server = server_cls((host, port), handler)
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port); the port is the real one when 0 was requested."""
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"{self.name}-server", daemon=True)
        self._thread.start()
        log.info("serving", server=self.name, address=f"{self.address[0]}:{self.address[1]}")

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()


_TEXT = "text/plain; charset=utf-8"


class HealthChecks:
    """A named, thread-safe set of checks behind one endpoint (``/healthz`` or ``/readyz``)."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self._checks: dict[str, Check] = {}
        self._lock = threading.Lock()

    def add(self, name: str, check: Check) -> None:
        with self._lock:
            if name in self._checks:
                raise ValueError(f"{self.endpoint} check {name!r} already registered")
            self._checks[name] = check

    @staticmethod
    def _run(check: Check) -> str | None:
        """None when healthy, else the reason."""
        try:
            ok = check()
        except Exception as err:
            return str(err) or type(err).__name__
        return "check returned false" if ok is False else None

    def serve(self, sub_path: str, query: dict[str, list[str]]) -> tuple[int, bytes, str]:
        with self._lock:
            checks = dict(self._checks)
        if sub_path:
            if sub_path not in checks:
                return 404, b"404 page not found\n", _TEXT
            reason = self._run(checks[sub_path])
            if reason is None:
                return 200, b"ok", _TEXT
            return 500, f"internal server error: {reason}\n".encode(), _TEXT
        excluded = set(query.get("exclude", []))
        lines, failed = [], False
        for name, check in checks.items():
            if name in excluded:
                lines.append(f"[+]{name} excluded: ok")
                continue
            reason = self._run(check)
            if reason is None:
                lines.append(f"[+]{name} ok")
            else:
                failed = True
                lines.append(f"[-]{name} failed: {reason}")
        if failed:
            lines.append(f"{self.endpoint} check failed")
            return 500, ("\n".join(lines) + "\n").encode(), _TEXT
        if "verbose" in query:
            lines.append(f"{self.endpoint} check passed")
            return 200, ("\n".join(lines) + "\n").encode(), _TEXT
        return 200, b"ok", _TEXT


def health_server(bind_address: str, healthz: HealthChecks, readyz: HealthChecks) -> HTTPServer:
    return HTTPServer("health", bind_address, {"/healthz": healthz.serve, "/readyz": readyz.serve})


def _serve_metrics(sub_path: str, query: dict[str, list[str]]) -> tuple[int, bytes, str]:
    if sub_path:
        return 404, b"404 page not found\n", _TEXT
    body, content_type = metrics.exposition()
    return 200, body, content_type


def metrics_server(bind_address: str) -> HTTPServer:
    return HTTPServer("metrics", bind_address, {"/metrics": _serve_metrics})
