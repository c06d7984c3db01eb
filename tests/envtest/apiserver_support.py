"""Shared helpers for the API-server emulator tests: a raw HTTP client and object builders."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from rook_py.envtest.apiserver.server import APIServer

JSON = dict[str, Any]


class Raw:
    """A minimal keep-alive HTTP client speaking to the emulator's plain-HTTP side."""

    def __init__(self, server: APIServer, token: str | None = "default", user_agent: str = "raw-test") -> None:
        parts = urlsplit(server.url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.token = server.token if token == "default" else token
        self.user_agent = user_agent

    def _headers(self, content_type: str, accept: str) -> dict[str, str]:
        headers = {"Content-Type": content_type, "Accept": accept, "User-Agent": self.user_agent}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def request(self, method: str, path: str, body: Any = None, *, content_type: str = "application/json",
                accept: str = "application/json") -> tuple[int, Any, dict[str, str]]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            data = json.dumps(body).encode() if body is not None else None
            conn.request(method, path, body=data, headers=self._headers(content_type, accept))
            resp = conn.getresponse()
            raw = resp.read()
            try:
                parsed: Any = json.loads(raw) if raw else None
            except ValueError:
                parsed = raw.decode()
            return resp.status, parsed, {k.lower(): v for k, v in resp.getheaders()}
        finally:
            conn.close()

    def get(self, path: str, **kw: Any) -> tuple[int, Any]:
        code, body, _ = self.request("GET", path, **kw)
        return code, body

    def post(self, path: str, body: Any) -> tuple[int, Any]:
        code, answer, _ = self.request("POST", path, body)
        return code, answer

    def put(self, path: str, body: Any) -> tuple[int, Any]:
        code, answer, _ = self.request("PUT", path, body)
        return code, answer

    def patch(self, path: str, body: Any, kind: str = "merge") -> tuple[int, Any]:
        ct = {"merge": "application/merge-patch+json", "json": "application/json-patch+json",
              "strategic": "application/strategic-merge-patch+json", "apply": "application/apply-patch+yaml"}[kind]
        code, answer, _ = self.request("PATCH", path, body, content_type=ct)
        return code, answer

    def delete(self, path: str, body: Any = None) -> tuple[int, Any]:
        code, answer, _ = self.request("DELETE", path, body)
        return code, answer

    def watch(self, path: str, timeout: float = 10, count: int | None = None) -> Iterator[JSON]:
        """Yield watch events until the server ends the stream, or ``count`` events were read."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            conn.request("GET", path, headers=self._headers("application/json", "application/json"))
            resp = conn.getresponse()
            assert resp.status == 200, resp.read()
            seen = 0
            while count is None or seen < count:
                line = resp.readline()
                if not line:
                    return
                seen += 1
                yield json.loads(line)
        finally:
            conn.close()


def configmap(name: str, namespace: str = "default", labels: dict[str, str] | None = None,
              data: dict[str, str] | None = None) -> JSON:
    meta: JSON = {"name": name, "namespace": namespace}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data or {"k": "v"}}


def deployment(name: str, namespace: str = "default", replicas: int | None = None) -> JSON:
    spec: JSON = {"selector": {"matchLabels": {"app": name}},
                  "template": {"metadata": {"labels": {"app": name}},
                               "spec": {"containers": [{"name": "main", "image": "nginx:1.25"}]}}}
    if replicas is not None:
        spec["replicas"] = replicas
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": namespace},
            "spec": spec}


def widget_crd(scale: bool = True, columns: bool = True) -> JSON:
    subresources: JSON = {"status": {}}
    if scale:
        subresources["scale"] = {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas",
                                 "labelSelectorPath": ".status.selector"}
    version: JSON = {
        "name": "v1", "served": True, "storage": True, "subresources": subresources,
        "schema": {"openAPIV3Schema": {
            "type": "object",
            "properties": {
                "spec": {"type": "object", "required": ["size"], "properties": {
                    "size": {"type": "integer", "minimum": 1},
                    "replicas": {"type": "integer", "default": 1},
                    "mode": {"type": "string", "enum": ["fast", "safe"], "default": "safe"}}},
                "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            }}},
    }
    if columns:
        version["additionalPrinterColumns"] = [{"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
                                               {"name": "Mode", "type": "string", "jsonPath": ".spec.mode"}]
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                     "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"]},
                     "versions": [version]}}


def widget(name: str, size: int = 2, namespace: str = "default") -> JSON:
    return {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": name, "namespace": namespace},
            "spec": {"size": size}}
