"""Consul service discovery for a Prometheus built without it, over HTTP SD.

Debian's Prometheus is built without consul_sd (see tests/tools/promtools.py). This bridge asks
Consul (here, the Consul double) exactly what consul_sd asks - ``/v1/agent/self`` for the
datacenter, then ``/v1/health/service/<name>`` - and answers Prometheus' HTTP SD with the same
``__meta_consul_*`` labels consul_sd would set (prometheus/prometheus discovery/consul/consul.go:
tags joined with "," and surrounded by ",", the service address winning over the node address,
the health as the aggregated check status). The generated relabel rules then run unchanged.
"""

from __future__ import annotations

import json
import re
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.consul_double import aggregated_status


def _sanitize(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def consul_targets(consul_url: str, service: str) -> list[dict[str, Any]]:
    """The target groups consul_sd would produce for `service`, in HTTP SD format."""
    with urllib.request.urlopen(f"{consul_url}/v1/agent/self", timeout=5) as response:
        datacenter = json.load(response)["Config"]["Datacenter"]
    with urllib.request.urlopen(f"{consul_url}/v1/health/service/{service}?dc={datacenter}", timeout=5) as response:
        entries = json.load(response)
    groups = []
    for entry in entries:
        node, svc = entry["Node"], entry["Service"]
        host = svc["Address"] or node["Address"]
        labels = {
            "__meta_consul_service": service,
            "__meta_consul_dc": datacenter,
            "__meta_consul_address": node["Address"],
            "__meta_consul_node": node["Node"],
            "__meta_consul_tags": "," + ",".join(svc["Tags"]) + ",",
            "__meta_consul_service_address": svc["Address"],
            "__meta_consul_service_port": str(svc["Port"]),
            "__meta_consul_service_id": svc["ID"],
            "__meta_consul_health": aggregated_status(entry["Checks"]),
        }
        for key, value in (node.get("Meta") or {}).items():
            labels[f"__meta_consul_metadata_{_sanitize(key)}"] = value
        for key, value in (svc.get("Meta") or {}).items():
            labels[f"__meta_consul_service_metadata_{_sanitize(key)}"] = value
        for key, value in (node.get("TaggedAddresses") or {}).items():
            labels[f"__meta_consul_tagged_address_{_sanitize(key)}"] = value
        groups.append({"targets": [f"{host}:{svc['Port']}"], "labels": labels})
    return groups


class ConsulSDBridge:
    """HTTP SD endpoint ``/sd/<service>`` backed by a Consul HTTP API at `consul_url`."""

    def __init__(self, consul_url: str) -> None:
        self.consul_url = consul_url
        bridge = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                if not self.path.startswith("/sd/"):
                    self.send_error(404)
                    return
                try:
                    body = json.dumps(consul_targets(bridge.consul_url, self.path[len("/sd/"):])).encode()
                except OSError as err:  # Consul unreachable: HTTP SD keeps its last good targets
                    self.send_error(503, str(err))
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def url_for(self, service: str) -> str:
        return f"{self.url}/sd/{service}"

    def start(self) -> ConsulSDBridge:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
