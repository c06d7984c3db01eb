"""Pieces of the loopback monitoring pipeline: a fake ChubaoFS exporter, a webhook receiver, and
real Prometheus/Alertmanager processes with bounded start-up and guaranteed stop."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

from tests.support.waiting import eventually

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def get_json(url: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.load(response)


def wait_until(probe: Callable[[], T | None], timeout: float, interval: float = 0.2, what: str = "condition") -> T:
    """``eventually`` at the pipeline's pace; a refused connection or a half-written answer means "not up yet"."""
    return eventually(probe, timeout, interval=interval, ignore=(OSError, ValueError, KeyError), what=what)


class _Server:
    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class _MetricsServer(_Server):
    """A fake exporter: GET /metrics answers ``exposition()`` in the Prometheus text format, or 500
    while ``healthy`` is false (what makes a Consul HTTP check go critical); anything else is 404."""

    healthy = True

    def __init__(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                if self.path != "/metrics":
                    self.send_error(404)
                    return
                if not server.healthy:
                    self.send_error(500)
                    return
                body = server.exposition().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        super().__init__(Handler)

    def exposition(self) -> str:
        raise NotImplementedError

    def _register(self, consul_url: str, service: dict[str, Any]) -> None:
        """PUT ``service`` to the Consul agent API, as the real exporter does at start-up."""
        request = urllib.request.Request(f"{consul_url}/v1/agent/service/register",
                                         data=json.dumps(service).encode(), method="PUT")
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200


class FakeChubaoFSExporter(_MetricsServer):
    """Serves a ChubaoFS master's /metrics (cfs_master_* gauges) and registers like the daemon.

    Registration mirrors cubefs/cubefs util/exporter/consul_register.go: service ``cfs``,
    ID ``cfs_<role>_<ip>_<port>``, tags app/role/cluster, no health check.
    """

    def __init__(self, *, cluster: str, role: str = "master") -> None:
        self.cluster = cluster
        self.role = role
        self.gauges: dict[str, float] = {
            "cfs_master_master_no_leader": 0,
            "cfs_master_dataNodes_count": 3,
            "cfs_master_dataNodes_inactive": 0,
            "cfs_master_metaNodes_count": 3,
            "cfs_master_metaNodes_inactive": 0,
            "cfs_master_dataNodes_total_GB": 3000,
            "cfs_master_dataNodes_used_GB": 300,
            "cfs_master_dataNodes_not_writable": 0,
            "cfs_master_vol_count": 1,
        }
        self.lock = threading.Lock()
        super().__init__()

    def set(self, name: str, value: float) -> None:
        with self.lock:
            self.gauges[name] = value

    def exposition(self) -> str:
        with self.lock:
            items = sorted(self.gauges.items())
        lines = []
        for name, value in items:
            lines += [f"# TYPE {name} gauge", f"{name} {value}"]
        lines += ["# TYPE cfs_master_vol_usage_ratio gauge", 'cfs_master_vol_usage_ratio{volName="logs"} 0.1']
        return "\n".join(lines) + "\n"

    @property
    def service_id(self) -> str:
        return f"cfs_{self.role}_127.0.0.1_{self.port}"

    def register(self, consul_url: str) -> None:
        self._register(consul_url, {
            "Name": "cfs", "ID": self.service_id, "Address": "127.0.0.1", "Port": self.port,
            "Tags": ["app=cfs", f"role={self.role}", f"cluster={self.cluster}"],
        })


class WebhookReceiver(_Server):
    """Collects Alertmanager webhook notifications (JSON bodies) in `notifications`."""

    def __init__(self) -> None:
        self.notifications: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                payload = json.loads(self.rfile.read(length) or b"{}")
                with receiver.lock:
                    receiver.notifications.append(payload)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        super().__init__(Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/alerts"

    def alerts(self, alertname: str, status: str = "firing") -> list[dict[str, Any]]:
        with self.lock:
            return [a for n in self.notifications for a in n.get("alerts", [])
                    if a["labels"].get("alertname") == alertname and a["status"] == status]


class ManagedProcess:
    """A subprocess with output in a log file, stopped with SIGTERM then SIGKILL."""

    def __init__(self, argv: Sequence[str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(list(argv), stdout=self._log, stderr=subprocess.STDOUT)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def wait_ready(self, url: str, timeout: float) -> None:
        def ready() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"process exited with {self.process.returncode}:\n{self.log()}")
            with urllib.request.urlopen(url, timeout=2) as response:
                return bool(response.status == 200)

        try:
            wait_until(ready, timeout, what=url)
        except AssertionError as err:
            raise AssertionError(f"{err}\n--- log ---\n{self.log()}") from None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self._log.close()


class FakeNodeAgent(_MetricsServer):
    """Serves the node agent's disk gauges and registers like the agent contract says: service
    ``rook-chubaofs-agent``, tags ``node=<node>``, ``cluster=<cluster>``, an HTTP check on /metrics.
    `healthy=False` makes /metrics answer 500, so its Consul check goes critical."""

    def __init__(self, *, node: str, cluster: str, healthy: bool = True) -> None:
        self.node = node
        self.cluster = cluster
        self.healthy = healthy
        self.disks: dict[str, int] = {"sdb": 1, "sdc": 1}
        self.lock = threading.Lock()
        super().__init__()

    def set_online(self, device: str, online: int) -> None:
        with self.lock:
            self.disks[device] = online

    def exposition(self) -> str:
        with self.lock:
            disks = sorted(self.disks.items())
        lines = ["# TYPE rook_chubaofs_node_disk_present gauge"]
        lines += [f'rook_chubaofs_node_disk_present{{node="{self.node}",device="{d}"}} 1' for d, _ in disks]
        lines += ["# TYPE rook_chubaofs_node_disk_online gauge"]
        lines += [f'rook_chubaofs_node_disk_online{{node="{self.node}",device="{d}"}} {v}' for d, v in disks]
        return "\n".join(lines) + "\n"

    def register(self, consul_url: str) -> None:
        self._register(consul_url, {
            "Name": "rook-chubaofs-agent", "ID": f"rook-chubaofs-agent-{self.node}", "Address": "127.0.0.1",
            "Port": self.port, "Tags": [f"node={self.node}", f"cluster={self.cluster}"],
            "Check": {"HTTP": f"http://127.0.0.1:{self.port}/metrics", "Interval": "200ms", "Timeout": "1s"},
        })
