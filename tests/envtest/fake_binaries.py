"""Stand-ins for etcd and kube-apiserver, to test the real back end's process handling here.

No kube-apiserver can be installed on the development machines, so these scripts play the two
binaries just far enough: parse the flags the control plane passes, record them, serve the health
endpoint the control plane polls (etcd: http /health; kube-apiserver: https /readyz with the
serving certificate and the static token, after checking that etcd answers), exit on SIGTERM.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

_COMMON = r'''
import http.server, json, os, signal, ssl, sys, threading, urllib.request

args = sys.argv[1:]
if "--help" in args:
    print(HELP)
    sys.exit(0)
opts = {}
for a in args:
    if a.startswith("--") and "=" in a:
        k, v = a[2:].split("=", 1)
        opts[k] = v
record = os.environ.get("FAKE_RECORD_DIR")
if record:
    with open(os.path.join(record, NAME + ".json"), "w") as fh:
        json.dump({"args": args, "pid": os.getpid()}, fh)
if os.environ.get("FAKE_" + NAME.upper().replace("-", "_") + "_FAIL"):
    print(NAME + ": refusing to start (test asked for a failure)", flush=True)
    sys.exit(3)
'''

ETCD = _COMMON + r'''
url = opts["listen-client-urls"]
port = int(url.rsplit(":", 1)[1])

class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        body = b'{"health":"true"}' if self.path == "/health" else b"{}"
        self.send_response(200 if self.path == "/health" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), H)
signal.signal(signal.SIGTERM, lambda *a: threading.Thread(target=srv.shutdown).start())
print("fake etcd serving", url, flush=True)
srv.serve_forever()
'''

APISERVER = _COMMON + r'''
with open(opts["token-auth-file"]) as fh:
    token = fh.read().split(",", 1)[0]
for f in ("service-account-key-file", "service-account-signing-key-file", "tls-cert-file", "tls-private-key-file"):
    assert os.path.exists(opts[f]), f
with urllib.request.urlopen(opts["etcd-servers"] + "/health", timeout=5) as r:
    assert r.status == 200

class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        ok = self.headers.get("Authorization") == "Bearer " + token
        path = self.path.split("?")[0].rstrip("/")
        code = 200 if ok and path in ("/readyz", "/version") else (401 if not ok else 404)
        body = b"ok" if code == 200 and path == "/readyz" else json.dumps(
            {"major": "1", "minor": "99", "gitVersion": "v1.99.0-fake", "gitCommit": "0", "gitTreeState": "clean",
             "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go0", "compiler": "gc", "platform": "linux/amd64"} if code == 200 else
            {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code,
             "reason": "Unauthorized" if code == 401 else "NotFound", "message": "fake"}).encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

srv = http.server.ThreadingHTTPServer((opts["bind-address"], int(opts["secure-port"])), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(opts["tls-cert-file"], opts["tls-private-key-file"])
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
signal.signal(signal.SIGTERM, lambda *a: threading.Thread(target=srv.shutdown).start())
print("fake kube-apiserver serving", flush=True)
srv.serve_forever()
'''


def install(folder: Path, *, etcd_help: str = "--unsafe-no-fsync  disables fsync") -> Path:
    """Write executable ``etcd`` and ``kube-apiserver`` into ``folder``; returns ``folder``."""
    for name, body, help_text in (("etcd", ETCD, etcd_help), ("kube-apiserver", APISERVER, "--secure-port")):
        path = folder / name
        path.write_text(f"#!{sys.executable}\nNAME = {name!r}\nHELP = {help_text!r}\n{body}")
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return folder


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it has exited for our purposes.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except OSError:
        return False
