"""HTTPS calls from the emulator to webhooks (admission and CRD conversion), as kube-apiserver's
webhook client makes them: kept-alive connections per endpoint, the certificate verified against
``caBundle`` for the name the client config implies, ``timeoutSeconds`` on the whole call."""

from __future__ import annotations

import base64
import http.client
import socket
import ssl
import threading
from collections import deque
from typing import Any
from urllib.parse import urlsplit


class CallError(Exception):
    """The webhook could not be called or answered nonsense (``ErrCallingWebhook``)."""


#: (host, port, TLS server name, request path, URL as kube-apiserver prints it in errors)
Endpoint = tuple[str, int, str, str, str]


def url_endpoint(config: dict[str, Any]) -> Endpoint:
    """Where a clientConfig with ``url`` is called. A ``service`` needs the Services the admitting
    engine knows of (``AdmittingEngine.endpoint``); without one it cannot be reached."""
    if not config.get("url"):
        service = config.get("service") or {}
        raise CallError(f'service "{service.get("name")}" cannot be resolved: no Service resolver')
    url = urlsplit(str(config["url"]))
    host = url.hostname or ""
    path = url.path or "/"
    if url.query:
        path += "?" + url.query
    return host, url.port or 443, host, path, str(config["url"])


class Connections:
    """Kept-alive HTTPS connections per (host, port, server name, CA bundle)."""

    def __init__(self) -> None:
        self._idle: dict[tuple[str, int, str, str], deque[http.client.HTTPSConnection]] = {}
        self._lock = threading.Lock()

    def _new(self, host: str, port: int, server_name: str, ca_bundle: str, timeout: float) -> http.client.HTTPSConnection:
        context = ssl.create_default_context()
        if ca_bundle:
            try:
                context = ssl.create_default_context(cadata=base64.b64decode(ca_bundle).decode())
            except (ValueError, ssl.SSLError) as err:
                raise CallError(f"invalid caBundle: {err}") from None
        conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
        # Verify against the name the client config implies, not the address dialled.
        conn._server_name = server_name  # type: ignore[attr-defined]

        def connect() -> None:
            sock = socket.create_connection((host, port), timeout)
            conn.sock = context.wrap_socket(sock, server_hostname=server_name)

        conn.connect = connect  # type: ignore[method-assign]
        return conn

    def post(self, host: str, port: int, server_name: str, ca_bundle: str, path: str, body: bytes,
             timeout: float) -> tuple[int, bytes]:
        key = (host, port, server_name, ca_bundle)
        for attempt in range(2):
            with self._lock:
                idle = self._idle.setdefault(key, deque())
                conn = idle.popleft() if idle else None
            fresh = conn is None
            if conn is None:
                conn = self._new(host, port, server_name, ca_bundle, timeout)
            try:
                conn.timeout = timeout
                if conn.sock is not None:
                    conn.sock.settimeout(timeout)
                conn.request("POST", path, body=body, headers={"Content-Type": "application/json",
                                                                "Accept": "application/json"})
                response = conn.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                if fresh or attempt:
                    raise
                continue  # a kept-alive connection the server had closed: one retry on a new one
            with self._lock:
                self._idle.setdefault(key, deque()).append(conn)
            return response.status, data
        raise AssertionError("unreachable")

    def close(self) -> None:
        with self._lock:
            for idle in self._idle.values():
                for conn in idle:
                    conn.close()
            self._idle.clear()


def reason_for(err: BaseException) -> str:
    if isinstance(err, TimeoutError | socket.timeout):
        return "context deadline exceeded"
    if isinstance(err, ssl.SSLCertVerificationError):
        return f"tls: failed to verify certificate: x509: {err.verify_message}"
    if isinstance(err, ConnectionRefusedError):
        return "connect: connection refused"
    return str(err) or type(err).__name__
