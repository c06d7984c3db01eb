"""The HTTPS webhook server (controller-runtime pkg/webhook/server.go and admission/http.go).

* One path per webhook (``register``); POST with a JSON AdmissionReview or ConversionReview.
* HTTP/1.1 keep-alive: the API server reuses connections, so a TLS handshake is paid once.
* Every new connection takes the certificate source's current context, so a rotated
  certificate is served from the next connection on without a restart.
* Bodies over ``max_body`` (3 MiB, kube-apiserver's own request limit) are refused with 413
  unread; a body that is not a review is answered with a 400 review; a handler that raises
  (or outlives ``request_timeout``) is answered with a 500 review carrying a one-line reason,
  logged with its traceback, and the server keeps serving.
* Metrics: ``controller_runtime_webhook_{requests_total,latency_seconds,requests_in_flight}``,
  labelled with the path, as controller-runtime does (``code`` is the HTTP status).
"""

from __future__ import annotations

import concurrent.futures
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from rook_py.framework import metrics
from rook_py.framework.httpserver import parse_bind_address
from rook_py.framework.logging import get_logger
from rook_py.framework.webhook.admission import AdmissionRequest, Handle, errored
from rook_py.framework.webhook.certs import CertSource
from rook_py.framework.webhook.conversion import ConversionHandler

JSON = dict[str, Any]
MAX_BODY = 3 * 1024 * 1024
log = get_logger(__name__)


@dataclass
class _Route:
    path: str
    serve: Callable[[JSON], JSON]
    #: The answer when the body is not usable (admission: a 400 review; conversion: 400 HTTP).
    bad_request: Callable[[str, str], tuple[int, JSON | None]]
    failed: Callable[[JSON, str], JSON]


def _admission_bad_request(uid: str, message: str) -> tuple[int, JSON | None]:
    return 200, errored(uid, 400, message)


def _admission_failed(body: JSON, message: str) -> JSON:
    uid = str((body.get("request") or {}).get("uid") or "")
    return errored(uid, 500, message)


def _conversion_bad_request(uid: str, message: str) -> tuple[int, JSON | None]:
    return 400, None


def _conversion_failed(body: JSON, message: str) -> JSON:
    uid = str((body.get("request") or {}).get("uid") or "")
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
            "response": {"uid": uid, "convertedObjects": [],
                         "result": {"status": "Failure", "message": message}}}


class _TLSServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    cert_source: CertSource

    def get_request(self) -> tuple[Any, Any]:
        sock, address = self.socket.accept()
        # Answers are small and written at once; without this, Nagle's algorithm holds a reply
        # back until the client's delayed ACK (~40 ms on Linux).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        context = self.cert_source.context()
        if context is None:
            sock.close()
            raise OSError("no serving certificate yet")  # handle_request skips this connection
        # The handshake runs on the connection's own thread (first read), not the accept loop.
        return context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), address


class _TLSServer6(_TLSServer):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "rook-py-webhook"
    timeout = 60  # an idle keep-alive connection is closed after this
    webhook: WebhookServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, code: int, body: bytes, content_type: str = "application/json",
              close: bool = False) -> None:
        head = [f"HTTP/1.1 {code} {self.responses.get(code, ('',))[0]}", f"Content-Type: {content_type}",
                f"Content-Length: {len(body)}"]
        if close:
            head.append("Connection: close")
            self.close_connection = True
        # One write: status line, headers and body leave in one TLS record.
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)

    def do_GET(self) -> None:
        self._send(405, b"method not allowed\n", "text/plain; charset=utf-8")

    def do_POST(self) -> None:
        route = self.webhook.route(self.path.split("?", 1)[0])
        if route is None:
            self._send(404, b"404 page not found\n", "text/plain; charset=utf-8")
            return
        name = route.path
        metrics.WEBHOOK_IN_FLIGHT.labels(name).inc()
        started = time.perf_counter()
        code = 500
        try:
            code = self._serve(route)
        finally:
            metrics.WEBHOOK_IN_FLIGHT.labels(name).dec()
            metrics.WEBHOOK_LATENCY.labels(name).observe(time.perf_counter() - started)
            metrics.WEBHOOK_REQUESTS_TOTAL.labels(name, str(code)).inc()

    def _serve(self, route: _Route) -> int:
        try:
            length = int(self.headers.get("Content-Length") or "-1")
        except ValueError:
            length = -1
        if length < 0:
            self._send(411, b"Content-Length required\n", "text/plain; charset=utf-8", close=True)
            return 411
        if length > self.webhook.max_body:
            if length <= 4 * self.webhook.max_body:
                # Drained so the client, still sending, reads the answer instead of a reset.
                for offset in range(0, length, 65536):
                    self.rfile.read(min(65536, length - offset))
            self._send(413, f"request body over {self.webhook.max_body} bytes\n".encode(),
                       "text/plain; charset=utf-8", close=True)
            return 413
        raw = self.rfile.read(length)
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        body: Any = None
        problem = ""
        if content_type != "application/json":
            problem = f"contentType={content_type}, expected application/json"
        else:
            try:
                body = json.loads(raw)
            except ValueError as err:
                problem = f"couldn't decode the body: {err}"
            if not problem and not isinstance(body, dict):
                problem = "the body is not a JSON object"
        if problem:
            uid = ""
            code, answer = route.bad_request(uid, problem)
            self._send(code, json.dumps(answer).encode() if answer is not None else problem.encode(),
                       "application/json" if answer is not None else "text/plain; charset=utf-8")
            return code
        answer = self.webhook.run(route, body)
        self._send(200, json.dumps(answer, separators=(",", ":")).encode())
        return 200


class WebhookServer:
    """Serves registered webhooks over HTTPS; a manager runnable on every replica."""

    def __init__(self, certs: CertSource, bind_address: str = ":9443", *,
                 request_timeout: float = 10.0, max_body: int = MAX_BODY, workers: int = 16) -> None:
        parsed = parse_bind_address(bind_address)
        if parsed is None:
            raise ValueError(f"webhook server bind address {bind_address!r} disables it")
        self._bind = parsed
        self.certs = certs
        self.request_timeout = request_timeout
        self.max_body = max_body
        self._routes: dict[str, _Route] = {}
        self._conversion: ConversionHandler | None = None
        self._pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="webhook")
        self._server: _TLSServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def need_leader_election(self) -> bool:
        return False

    # Registration -------------------------------------------------------------------------------

    def register_admission(self, path: str, handle: Handle) -> None:
        def serve(body: JSON) -> JSON:
            try:
                request = AdmissionRequest.from_review(body)
            except ValueError as err:
                return errored("", 400, str(err))
            return handle(request)

        self._add(_Route(path, serve, _admission_bad_request, _admission_failed))

    def conversion(self, path: str = "/convert") -> ConversionHandler:
        """The (one) conversion handler, registered at ``path`` on first use."""
        with self._lock:
            if self._conversion is None:
                self._conversion = ConversionHandler()
                handler = self._conversion

                def serve(body: JSON) -> JSON:
                    return handler.convert_review(body)

                self._routes[path] = _Route(path, serve, _conversion_bad_request, _conversion_failed)
            return self._conversion

    def _add(self, route: _Route) -> None:
        with self._lock:
            if route.path in self._routes:
                raise ValueError(f"webhook path {route.path} is already registered")
            self._routes[route.path] = route

    def route(self, path: str) -> _Route | None:
        return self._routes.get(path)

    def paths(self) -> list[str]:
        return sorted(self._routes)

    # Serving ------------------------------------------------------------------------------------

    def run(self, route: _Route, body: JSON) -> JSON:
        future = self._pool.submit(route.serve, body)
        try:
            return future.result(timeout=self.request_timeout)
        except concurrent.futures.TimeoutError:
            log.error("webhook handler timed out", webhook=route.path, timeout=self.request_timeout)
            return route.failed(body, f"webhook {route.path} timed out after {self.request_timeout:g}s")
        except Exception as err:
            log.error("webhook handler failed", webhook=route.path, error=repr(err), exc_info=err)
            reason = str(err).splitlines()[0][:200] if str(err) else ""
            return route.failed(body, f"internal error in webhook {route.path}: "
                                      f"{type(err).__name__}{': ' + reason if reason else ''}")

    @property
    def address(self) -> tuple[str, int]:
        if self._server is None:
            raise RuntimeError("webhook server not started")
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def bind(self) -> None:
        """Listen (idempotent); ``start`` calls it. Tests call it to learn the port early."""
        with self._lock:
            if self._server is not None:
                return
            host, port = self._bind
            handler = type("WebhookHandler", (_Handler,), {"webhook": self})
            cls = _TLSServer6 if ":" in host else _TLSServer
            server = cls((host, port), handler)
            server.cert_source = self.certs
            self._server = server

    def serve_in_background(self) -> None:
        """Bind and serve on a daemon thread until ``shutdown`` (tests, benchmarks)."""
        self.bind()
        assert self._server is not None
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="webhook-server", daemon=True)
        self._thread.start()
        host, port = self.address
        log.info("webhook server listening", address=f"{host}:{port}", paths=self.paths())

    def shutdown(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            if self._thread is not None:
                server.shutdown()
                self._thread.join()
            server.server_close()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def start(self, stop: threading.Event) -> None:
        self.serve_in_background()
        try:
            stop.wait()
        finally:
            self.shutdown()

    # Readiness ----------------------------------------------------------------------------------

    def ready(self) -> bool:
        """controller-runtime's ``StartedChecker``: a TLS handshake with ourselves succeeds and
        the certificate served is valid now. Raises with the reason otherwise."""
        if self._server is None or self._thread is None:
            raise RuntimeError("webhook server not started")
        problem = self.certs.problem()
        if problem:
            raise RuntimeError(problem)
        host, port = self.address
        client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        client.check_hostname = False
        client.verify_mode = ssl.CERT_NONE
        target = "::1" if ":" in host else "127.0.0.1"
        try:
            with socket.create_connection((target, port), timeout=2.0) as raw, \
                    client.wrap_socket(raw) as tls:
                if not tls.getpeercert(binary_form=True):
                    raise RuntimeError("webhook server presented no certificate")
        except OSError as err:
            raise RuntimeError(f"webhook server does not complete a TLS handshake: {err}") from None
        return True
