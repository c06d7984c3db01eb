"""A tiny scripted HTTP API server for the client's unit tests.

Not an emulator (that is envtest's job): it serves discovery from a mutable table, keeps objects
in a dict with a resourceVersion counter (create/get/list/put/merge-patch/delete), records every
request, and lets a test queue canned answers (``script``) or watch streams (``watch_script``).
Binds 127.0.0.1:0; ``stop()`` ends it; streaming handlers wait on bounded events.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

JSON = dict[str, Any]

CORE_RESOURCES: list[JSON] = [
    {"name": "namespaces", "namespaced": False, "kind": "Namespace",
     "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]},
    {"name": "configmaps", "namespaced": True, "kind": "ConfigMap",
     "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]},
    {"name": "pods", "namespaced": True, "kind": "Pod",
     "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]},
    {"name": "pods/status", "namespaced": True, "kind": "Pod", "verbs": ["get", "patch", "update"]},
    {"name": "pods/log", "namespaced": True, "kind": "Pod", "verbs": ["get"]},
]
APPS_RESOURCES: list[JSON] = [
    {"name": "deployments", "namespaced": True, "kind": "Deployment",
     "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]},
]


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class Canned:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    delay: float = 0.0  # seconds to stay silent before answering (read-timeout tests)


@dataclass
class WatchScript:
    """Frames to send (dicts are JSON-encoded + newline; bytes sent as is), then either close
    (``hold=0``) or keep the connection open and silent for up to ``hold`` seconds."""

    frames: list[Any]
    hold: float = 0.0


class FakeAPIServer:
    def __init__(self) -> None:
        self.discovery: dict[str, list[JSON]] = {"v1": list(CORE_RESOURCES),
                                                 "apps/v1": list(APPS_RESOURCES)}
        self.objects: dict[tuple[str, str | None, str], JSON] = {}
        self.rv = 100
        self.requests: list[Recorded] = []
        self.script: deque[Canned] = deque()
        self.watch_script: deque[WatchScript] = deque()
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # else delayed ACKs add ~40 ms per response

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                server.dispatch(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)

    @property
    def url(self) -> str:
        port = self.httpd.server_address[1]
        return f"http://127.0.0.1:{port}"

    def start(self) -> FakeAPIServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    # -- plumbing ------------------------------------------------------------------------------

    @staticmethod
    def reply(h: BaseHTTPRequestHandler, status: int, body: Any = None,
              headers: dict[str, str] | None = None, raw: bytes | None = None) -> None:
        data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)

    @staticmethod
    def status(code: int, reason: str, message: str, details: JSON | None = None) -> JSON:
        st: JSON = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": message, "reason": reason, "code": code}
        if details:
            st["details"] = details
        return st

    def dispatch(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        rec = Recorded(h.command, parts.path, query, {k: v for k, v in h.headers.items()}, body)
        parsed = self.parse(parts.path)
        is_discovery = parsed is not None and parsed[2] == ""
        with self.lock:
            self.requests.append(rec)
            # Canned answers apply to resource requests only, so discovery never eats them.
            canned = self.script.popleft() if self.script and not is_discovery else None
        if canned is not None:
            if canned.delay:
                self.stopping.wait(canned.delay)
            self.reply(h, canned.status, canned.body, canned.headers, canned.raw)
            return
        if query.get("watch") == "true":
            self.serve_watch(h)
            return
        self.serve_rest(h, rec)

    def serve_watch(self, h: BaseHTTPRequestHandler) -> None:
        with self.lock:
            script = self.watch_script.popleft() if self.watch_script else WatchScript([])
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()

        def chunk(data: bytes) -> None:
            h.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            h.wfile.flush()

        try:
            for frame in script.frames:
                chunk(frame if isinstance(frame, bytes) else json.dumps(frame).encode() + b"\n")
            if script.hold:
                deadline = time.monotonic() + script.hold
                while time.monotonic() < deadline and not self.stopping.is_set():
                    time.sleep(0.02)
                h.close_connection = True
                return
            h.wfile.write(b"0\r\n\r\n")
            h.wfile.flush()
        except OSError:
            h.close_connection = True

    # -- a minimal object store ---------------------------------------------------------------

    def parse(self, path: str) -> tuple[str, str | None, str, str | None, str | None] | None:
        """-> (api_version, namespace, resource, name, subresource)"""
        segs = [s for s in path.split("/") if s]
        if segs[:1] == ["api"] and len(segs) >= 2:
            gv, rest = segs[1], segs[2:]
        elif segs[:1] == ["apis"] and len(segs) >= 3:
            gv, rest = f"{segs[1]}/{segs[2]}", segs[3:]
        else:
            return None
        ns = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            ns, rest = rest[1], rest[2:]
        if not rest:
            return gv, ns, "", None, None
        return gv, ns, rest[0], rest[1] if len(rest) > 1 else None, rest[2] if len(rest) > 2 else None

    def serve_rest(self, h: BaseHTTPRequestHandler, rec: Recorded) -> None:
        parsed = self.parse(rec.path)
        if parsed is None:
            self.reply(h, 404, self.status(404, "NotFound", "the server could not find the requested resource"))
            return
        gv, ns, resource, name, sub = parsed
        if not resource:
            if gv in self.discovery:
                self.reply(h, 200, {"kind": "APIResourceList", "groupVersion": gv,
                                    "resources": self.discovery[gv]})
            else:
                self.reply(h, 404, self.status(404, "NotFound", "the server could not find the requested resource"))
            return
        with self.lock:
            code, body = self.store(rec, gv, ns, resource, name, sub)
        self.reply(h, code, body)

    def store(self, rec: Recorded, gv: str, ns: str | None, resource: str, name: str | None,
              sub: str | None) -> tuple[int, Any]:
        m = rec.method
        if name is None:
            if m == "GET":
                items = [copy.deepcopy(o) for (r, n, _), o in sorted(self.objects.items(), key=lambda kv: str(kv[0]))
                         if r == resource and (ns is None or n == ns)]
                return 200, {"kind": "List", "apiVersion": gv, "metadata": {"resourceVersion": str(self.rv)},
                             "items": items}
            if m == "POST":
                obj = rec.body
                key = (resource, ns, obj["metadata"]["name"])
                if key in self.objects:
                    return 409, self.status(409, "AlreadyExists", f'{resource} "{key[2]}" already exists')
                self.rv += 1
                obj["metadata"].update(resourceVersion=str(self.rv), uid=f"uid-{self.rv}")
                if ns:
                    obj["metadata"]["namespace"] = ns
                self.objects[key] = obj
                return 201, obj
            if m == "DELETE":
                doomed = [k for k in self.objects if k[0] == resource and (ns is None or k[1] == ns)]
                for k in doomed:
                    del self.objects[k]
                return 200, {"kind": "Status", "apiVersion": "v1", "status": "Success"}
            return 405, self.status(405, "MethodNotAllowed", "no")
        key = (resource, ns, name)
        cur = self.objects.get(key)
        if cur is None:
            return 404, self.status(404, "NotFound", f'{resource} "{name}" not found',
                                    {"name": name, "kind": resource})
        if m == "GET":
            return 200, copy.deepcopy(cur)
        if m == "PUT":
            obj = rec.body
            if obj["metadata"].get("resourceVersion") != cur["metadata"]["resourceVersion"]:
                return 409, self.status(409, "Conflict", f'Operation cannot be fulfilled on {resource} "{name}": '
                                        "the object has been modified; please apply your changes to the latest "
                                        "version and try again")
            self.rv += 1
            new = copy.deepcopy(cur)
            if sub == "status":
                new["status"] = obj.get("status")
            else:
                status = new.get("status")
                new = copy.deepcopy(obj)
                if status is not None:
                    new["status"] = status
            new["metadata"]["resourceVersion"] = str(self.rv)
            self.objects[key] = new
            return 200, copy.deepcopy(new)
        if m == "PATCH":
            new = merge_patch(copy.deepcopy(cur), rec.body)
            self.rv += 1
            new["metadata"]["resourceVersion"] = str(self.rv)
            self.objects[key] = new
            return 200, copy.deepcopy(new)
        if m == "DELETE":
            if cur["metadata"].get("finalizers"):
                cur["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
                return 200, copy.deepcopy(cur)
            del self.objects[key]
            return 200, {"kind": "Status", "apiVersion": "v1", "status": "Success", "details": {"name": name}}
        return 405, self.status(405, "MethodNotAllowed", "no")


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return patch
    if not isinstance(target, dict):
        target = {}
    for k, v in patch.items():
        if v is None:
            target.pop(k, None)
        else:
            target[k] = merge_patch(target.get(k), v)
    return target
