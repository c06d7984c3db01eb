"""Endpoints for Services with a selector, as kube-controller-manager's endpoints controller writes them.

Reference: pkg/controller/endpoint/endpoints_controller.go. Pods selected by the Service that have
an IP become addresses (``notReadyAddresses`` while not Ready, unless the Service publishes
not-ready addresses); each Service port resolves its targetPort (a number, or a container port
name looked up in the pod); pods resolving to the same port set share one subset. Services without
a selector are left alone (their Endpoints are the user's), and a Service's Endpoints go with it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from typing import Any

from rook_py.envtest.cluster.base import (
    JSON,
    Controller,
    Key,
    is_deleting,
    meta,
    pod_ready,
    read_only_items,
)
from rook_py.framework.client import errors

V1 = "v1"


def _selects(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _resolve_port(service_port: Mapping[str, Any], pod: JSON) -> int | None:
    """podutil.FindPort: an integer targetPort is used as is; a name is looked up among the pod's
    container ports with the same protocol; an absent targetPort means the service port."""
    target = service_port.get("targetPort", service_port.get("port"))
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    protocol = service_port.get("protocol", "TCP")
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == target and port.get("protocol", "TCP") == protocol:
                return int(port["containerPort"])
    return None


class EndpointsController(Controller):
    name = "endpoints"

    def on_event(self, event_type: str, api_version: str, resource: str, obj: JSON) -> Iterable[Key]:
        if api_version != V1:
            return ()
        namespace = meta(obj).get("namespace") or ""
        if resource == "services":
            return [(V1, "services", namespace, meta(obj).get("name") or "")]
        if resource == "pods":
            labels = meta(obj).get("labels") or {}
            services = read_only_items(self.api, V1, "services", namespace)
            # Any service that selects the pod now; a pod whose labels changed away from a selector
            # is caught by the service's next resync (and by the pod's own later events).
            return [(V1, "services", namespace, meta(s)["name"]) for s in services
                    if _selects((s.get("spec") or {}).get("selector") or {}, labels)]
        return ()

    def resync(self) -> Iterable[Key]:
        items = read_only_items(self.api, V1, "services")
        return [(V1, "services", meta(s).get("namespace") or "", meta(s)["name"]) for s in items]

    def reconcile(self, key: Key) -> float | None:
        namespace, name = key[2], key[3]
        try:
            service = self.api.get(V1, "services", name, namespace)
        except errors.NotFound:
            # The Service is gone: so are its Endpoints (upstream deletes them unconditionally).
            with contextlib.suppress(errors.NotFound):
                self.api.delete(V1, "endpoints", name, namespace)
            return None
        spec = service.get("spec") or {}
        selector = spec.get("selector") or {}
        if not selector or is_deleting(service):
            return None
        publish_not_ready = bool(spec.get("publishNotReadyAddresses"))
        pods = read_only_items(self.api, V1, "pods", namespace)  # read-only: only rendered
        subsets: dict[tuple[tuple[str, int, str], ...], dict[str, list[JSON]]] = {}
        for pod in sorted(pods, key=lambda p: meta(p)["name"]):
            status = pod.get("status") or {}
            if not _selects(selector, meta(pod).get("labels") or {}) or is_deleting(pod) or not status.get("podIP"):
                continue
            if status.get("phase") in ("Succeeded", "Failed"):
                continue
            ports = []
            for sp in spec.get("ports") or []:
                port = _resolve_port(sp, pod)
                if port is not None:
                    ports.append((sp.get("name", ""), port, sp.get("protocol", "TCP")))
            address = {"ip": status["podIP"], "nodeName": (pod.get("spec") or {}).get("nodeName"),
                       "targetRef": {"kind": "Pod", "namespace": namespace, "name": meta(pod)["name"],
                                     "uid": meta(pod).get("uid")}}
            bucket = subsets.setdefault(tuple(ports), {"addresses": [], "notReadyAddresses": []})
            ready = pod_ready(pod) or publish_not_ready
            bucket["addresses" if ready else "notReadyAddresses"].append(address)
        rendered = []
        for ports_key, addresses in subsets.items():
            subset: JSON = {k: v for k, v in addresses.items() if v}
            if ports_key:
                subset["ports"] = [{"name": n, "port": p, "protocol": proto} if n else {"port": p, "protocol": proto}
                                   for n, p, proto in ports_key]
            rendered.append(subset)
        labels = dict(meta(service).get("labels") or {})
        if spec.get("clusterIP") == "None":
            labels["service.kubernetes.io/headless"] = ""
        desired: JSON = {"apiVersion": "v1", "kind": "Endpoints",
                         "metadata": {"name": name, "namespace": namespace, "labels": labels}}
        if rendered:
            desired["subsets"] = rendered
        try:
            current = self.api.get(V1, "endpoints", name, namespace)
        except errors.NotFound:
            self.api.create(V1, "endpoints", desired, namespace=namespace)
            return None
        if current.get("subsets") == desired.get("subsets") and meta(current).get("labels") == labels:
            return None
        fresh = dict(current)
        fresh["metadata"] = dict(meta(current), labels=labels)
        if rendered:
            fresh["subsets"] = rendered
        else:
            fresh.pop("subsets", None)
        self.api.update(V1, "endpoints", fresh)
        return None
