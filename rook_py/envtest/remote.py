"""HTTP helpers for envtest: a tiny JSON client for a kube-apiserver (emulated or real), and remote
handles on an emulator's ``/envtest/v1`` control endpoints (for an emulator in another process).

The remote handles mirror the in-process objects' methods (``APIServer.faults``, ``.stats`` and the
simulated cluster's pod hooks), so a test does not care where its emulator runs.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

from rook_py.framework.client import errors

JSON = dict[str, Any]


class HTTPAPI:
    """Minimal authenticated JSON over HTTP(S); errors become typed ``ApiError``s (metav1.Status)."""

    def __init__(self, url: str, token: str | None, *, ca_data: bytes | None = None, timeout: float = 30.0,
                 user_agent: str = "rook-py-envtest") -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.user_agent = user_agent
        self._context: ssl.SSLContext | None = None
        if self.url.startswith("https://"):
            self._context = ssl.create_default_context(cadata=ca_data.decode() if ca_data else None)

    def request(self, method: str, path: str, body: Any = None, *, query: Mapping[str, Any] | None = None,
                content_type: str = "application/json") -> Any:
        url = self.url + path
        if query:
            url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Accept", "application/json")
        req.add_header("User-Agent", self.user_agent)
        if data is not None:
            req.add_header("Content-Type", content_type)
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout, context=self._context) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                status = json.loads(raw) if raw else None
            except ValueError:
                status = {"message": raw.decode(errors="replace")}
            retry = exc.headers.get("Retry-After") if exc.headers else None
            raise errors.from_status(status, exc.code, retry_after=float(retry) if retry else None) from None
        except OSError as exc:
            raise errors.TransportError(f"{method} {url}: {exc}") from exc
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode(errors="replace")  # /readyz, /healthz answer plain text


class RemoteFaults:
    """``Faults`` of an emulator in another process, through POST /envtest/v1/faults/... ."""

    def __init__(self, http: HTTPAPI) -> None:
        self._http = http

    def _post(self, action: str, body: JSON | None = None) -> Any:
        return self._http.request("POST", f"/envtest/v1/faults/{action}", body or {})

    def fail_next(self, count: int = 1, code: int = 500, *, verb: str | None = None, resource: str | None = None,
                  subresource: str | None = None, retry_after: float | None = None,
                  message: str | None = None) -> None:
        self._post("fail-next", _drop_none({"count": count, "code": code, "verb": verb, "resource": resource,
                                            "subresource": subresource, "retryAfterSeconds": retry_after,
                                            "message": message}))

    def set_error_rates(self, rates: Mapping[int | str, float], *, verb: str | None = None,
                        resource: str | None = None, subresource: str | None = None) -> None:
        self._post("error-rates", _drop_none({"rates": {str(k): v for k, v in rates.items()}, "verb": verb,
                                              "resource": resource, "subresource": subresource}))

    def set_latency(self, seconds: float, *, verb: str | None = None, resource: str | None = None,
                    subresource: str | None = None) -> None:
        self._post("latency", _drop_none({"seconds": seconds, "verb": verb, "resource": resource,
                                          "subresource": subresource}))

    def close_watches(self) -> int:
        return _count(self._post("close-watches"))

    def compact(self) -> int:
        """Returns the resourceVersion history now starts after (as ``Faults.compact``)."""
        body = self._post("compact")
        return int((body or {}).get("resourceVersion") or 0)

    def stall_watches(self, seconds: float | None = None) -> None:
        self._post("stall-watches", _drop_none({"seconds": seconds}))

    def reset(self) -> None:
        self._post("reset")


class RemoteStats:
    """``RequestStats`` of an emulator in another process (GET /envtest/v1/stats)."""

    def __init__(self, http: HTTPAPI) -> None:
        self._http = http

    def snapshot(self) -> list[JSON]:
        body = self._http.request("GET", "/envtest/v1/stats")
        rows = body.get("items", body) if isinstance(body, dict) else body
        return list(rows or [])

    def count(self, *, user_agent: str | None = None, verb: str | None = None, resource: str | None = None,
              subresource: str | None = None, code: int | None = None) -> int:
        """Same matching as ``RequestStats.count`` (user_agent as a prefix), over a snapshot."""
        total = 0
        for row in self.snapshot():
            if user_agent is not None and not str(row.get("userAgent", "")).startswith(user_agent):
                continue
            if any(w is not None and row.get(k) != w for k, w in
                   (("verb", verb), ("resource", resource), ("subresource", subresource), ("code", code))):
                continue
            total += int(row.get("count", 0))
        return total

    def reset(self) -> None:
        self._http.request("POST", "/envtest/v1/stats/reset", {})


class RemotePods:
    """The simulated kubelet's test hooks: POST /envtest/v1/pods/{ns}/{name}/{mode} and
    POST /envtest/v1/nodes/{name}/{ready|notready}."""

    def __init__(self, http: HTTPAPI) -> None:
        self._http = http

    def set_pod_mode(self, namespace: str, name: str, mode: str) -> None:
        if mode not in ("ready", "notready", "crashloop"):
            raise ValueError(f"unknown pod mode {mode!r}; use ready, notready or crashloop")
        path = f"/envtest/v1/pods/{urllib.parse.quote(namespace)}/{urllib.parse.quote(name)}/{mode}"
        self._http.request("POST", path, {})

    def set_node_ready(self, name: str, ready: bool) -> None:
        path = f"/envtest/v1/nodes/{urllib.parse.quote(name)}/{'ready' if ready else 'notready'}"
        self._http.request("POST", path, {})


def _drop_none(body: JSON) -> JSON:
    return {k: v for k, v in body.items() if v is not None}


def _count(body: Any) -> int:
    if isinstance(body, dict):
        for key in ("count", "closed"):
            if isinstance(body.get(key), int):
                return int(body[key])
    return 0
