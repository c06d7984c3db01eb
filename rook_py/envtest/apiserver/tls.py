"""A self-signed serving certificate for the emulator, made with the ``openssl`` CLI.

Why TLS at all on 127.0.0.1: client-go (hence kubectl) only sends a bearer token over TLS
(``clientcmd``'s ``getUserIdentificationPartialConfig`` is skipped for plain-HTTP servers), so
a token-authenticated server must speak HTTPS for kubectl. The emulator answers both on one port
(it sniffs the first byte of each connection), so plain-HTTP clients keep working too.
"""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import tempfile
import threading
from dataclasses import dataclass

_lock = threading.Lock()
_cached: ServingCert | None = None


@dataclass(frozen=True)
class ServingCert:
    cert_file: str
    key_file: str
    cert_pem: bytes

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert_file, self.key_file)
        ctx.set_alpn_protocols(["http/1.1"])
        return ctx


def serving_cert() -> ServingCert | None:
    """The process-wide certificate for 127.0.0.1/localhost; None when openssl is unavailable.

    Generated once per process (an EC key: fast to make, fast handshakes) and reused.
    """
    global _cached
    with _lock:
        if _cached is not None:
            return _cached
        openssl = shutil.which("openssl")
        if openssl is None:
            return None
        directory = tempfile.mkdtemp(prefix="rook-envtest-tls-")
        cert, key = os.path.join(directory, "tls.crt"), os.path.join(directory, "tls.key")
        try:
            subprocess.run(
                [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                 "-nodes", "-days", "3650", "-subj", "/CN=rook-py-envtest",
                 "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-keyout", key, "-out", cert],
                check=True, capture_output=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            return None
        with open(cert, "rb") as fh:
            _cached = ServingCert(cert, key, fh.read())
        return _cached
