"""Node-daemon DaemonSets, placed the way Rook places its own.

Rook's operator reads the placement of its discover/agent DaemonSets from settings named, for a
prefix ``P`` (``DISCOVER``, ``AGENT``), as below (rook/rook ``pkg/operator/discover/discover.go``;
the parsers live in ``pkg/operator/k8sutil``). A provider declares them as settings
(``rook_py.framework.settings``) with the parsers of this module, and passes the values in a
``Scheduling``:

* ``P_TOLERATIONS``: a YAML list of Tolerations;
* ``P_NODE_AFFINITY``: ``"key=v1,v2; key2=v3; key3"`` -> one required node-selector term whose
  expressions are ANDed: ``key In [v1, v2]``, ``key2 In [v3]``, ``key3 Exists``; or a whole
  NodeAffinity as YAML or JSON (``k8sutil.GenerateNodeAffinity`` tries that first);
* ``P_PRIORITY_CLASS_NAME``; ``P_POD_LABELS``: ``"k=v,k2=v2"`` added to the pod template (never to
  the selector, which is immutable).

``ensure_daemonset`` creates or updates in place (server-side apply through ``objects.apply``), never deletes
and recreates: a delete would stop the daemon on every node at once, while an update rolls
(``RollingUpdate``, one node at a time). ``remove_daemonset`` deletes it when its switch is off.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import yaml

from rook_py.framework.client import errors
from rook_py.framework.logging import get_logger
from rook_py.framework.objects import DEFAULT_FIELD_MANAGER, ApplyResult, apply

JSON = dict[str, Any]
log = get_logger(__name__)


class SchedulingError(ValueError):
    """A placement setting holds something that cannot be parsed."""


def parse_tolerations(text: str | None, source: str = "tolerations") -> list[JSON]:
    """A YAML list of Tolerations; empty or absent -> []."""
    if not text or not text.strip():
        return []
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise SchedulingError(f"{source}: invalid YAML: {err}") from None
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
        raise SchedulingError(f"{source}: expected a YAML list of tolerations")
    return [dict(t) for t in value]


def parse_node_affinity(text: str | None, source: str = "node affinity") -> JSON | None:
    """``"key=v1,v2; key2"`` or a NodeAffinity as YAML/JSON -> a NodeAffinity; empty -> None."""
    if not text or not text.strip():
        return None
    whole = _node_affinity_document(text, source)
    if whole is not None:
        return whole
    expressions: list[JSON] = []
    for clause in text.split(";"):
        clause = clause.strip()
        if not clause:
            continue
        key, sep, values = clause.partition("=")
        key = key.strip()
        if not key:
            raise SchedulingError(f"{source}: empty label key in {clause!r}")
        wanted = [v.strip() for v in values.split(",") if v.strip()]
        if sep and not wanted:
            raise SchedulingError(f"{source}: no values after '=' in {clause!r}")
        expressions.append({"key": key, "operator": "In", "values": wanted} if wanted
                           else {"key": key, "operator": "Exists"})
    if not expressions:
        return None
    return {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": expressions}]}}


_NODE_AFFINITY_FIELDS = frozenset({"requiredDuringSchedulingIgnoredDuringExecution",
                                   "preferredDuringSchedulingIgnoredDuringExecution"})


def _node_affinity_document(text: str, source: str) -> JSON | None:
    """A NodeAffinity written as a YAML/JSON mapping, or None when ``text`` is not a mapping
    (then it is the ``key=values`` form)."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    if not isinstance(value, dict):
        return None
    unknown = sorted(set(map(str, value)) - _NODE_AFFINITY_FIELDS)
    if unknown or not value:
        raise SchedulingError(f"{source}: not a NodeAffinity (unknown fields {', '.join(unknown)}); use "
                              f"requiredDuringSchedulingIgnoredDuringExecution or the 'key=v1,v2; key2' form")
    return dict(value)


def parse_labels(text: str | None, source: str = "pod labels") -> dict[str, str]:
    """``"k=v,k2=v2"`` -> a label map."""
    labels: dict[str, str] = {}
    for pair in (text or "").split(","):
        pair = pair.strip()
        if not pair:
            continue
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise SchedulingError(f"{source}: expected key=value, got {pair!r}")
        labels[key.strip()] = value.strip()
    return labels


@dataclass(frozen=True)
class Scheduling:
    tolerations: list[JSON] = field(default_factory=list)
    node_affinity: JSON | None = None
    priority_class_name: str | None = None
    pod_labels: dict[str, str] = field(default_factory=dict)


@dataclass
class NodeDaemon:
    """What differs between node daemons; ``build`` turns it into a DaemonSet."""

    name: str
    namespace: str
    image: str
    args: list[str]
    service_account: str
    scheduling: Scheduling = field(default_factory=Scheduling)
    env: list[JSON] = field(default_factory=list)
    volumes: list[JSON] = field(default_factory=list)
    volume_mounts: list[JSON] = field(default_factory=list)
    ports: list[JSON] = field(default_factory=list)
    security_context: JSON | None = None
    pod_security_context: JSON | None = None
    host_network: bool = False
    resources: JSON | None = None
    labels: dict[str, str] = field(default_factory=dict)
    max_unavailable: int | str = 1

    def selector_labels(self) -> dict[str, str]:
        return {"app": self.name}

    def build(self) -> JSON:
        labels = {**self.labels, **self.selector_labels()}
        container: JSON = {"name": self.name, "image": self.image, "args": list(self.args),
                           "env": list(self.env), "volumeMounts": list(self.volume_mounts)}
        if self.ports:
            container["ports"] = list(self.ports)
        if self.security_context is not None:
            container["securityContext"] = self.security_context
        if self.resources is not None:
            container["resources"] = self.resources
        pod_spec: JSON = {"serviceAccountName": self.service_account, "containers": [container],
                          "volumes": list(self.volumes)}
        sched = self.scheduling
        if sched.tolerations:
            pod_spec["tolerations"] = sched.tolerations
        if sched.node_affinity:
            pod_spec["affinity"] = {"nodeAffinity": sched.node_affinity}
        if sched.priority_class_name:
            pod_spec["priorityClassName"] = sched.priority_class_name
        if self.host_network:
            pod_spec["hostNetwork"] = True
            pod_spec["dnsPolicy"] = "ClusterFirstWithHostNet"
        if self.pod_security_context is not None:
            pod_spec["securityContext"] = self.pod_security_context
        # Deep-copied so callers' shared constants (security contexts, ...) never alias into
        # an object that apply() or the caller may later modify.
        return copy.deepcopy({
            "apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": self.name, "namespace": self.namespace, "labels": labels},
            "spec": {
                "selector": {"matchLabels": self.selector_labels()},
                "updateStrategy": {"type": "RollingUpdate",
                                   "rollingUpdate": {"maxUnavailable": self.max_unavailable}},
                "template": {"metadata": {"labels": {**sched.pod_labels, **labels}}, "spec": pod_spec},
            },
        })


def ensure_daemonset(client: Any, desired: JSON, *, field_manager: str = DEFAULT_FIELD_MANAGER) -> ApplyResult:
    """Create or update in place (see the module docstring), as ``field_manager``."""
    result = apply(client, desired, field_manager=field_manager)
    if result.action != "unchanged":
        log.info("daemonset applied", name=desired["metadata"]["name"], action=result.action)
    return result


def remove_daemonset(client: Any, name: str, namespace: str) -> bool:
    """Delete the DaemonSet (its pods go with it, in the background); False when already gone."""
    try:
        client.delete("apps/v1", "DaemonSet", name, namespace, propagation_policy="Background")
    except errors.NotFound:
        return False
    log.info("daemonset removed", name=name)
    return True
