"""Core (``v1``) resource strategies, after ``pkg/registry/core/*/strategy.go`` and the v1 defaulters
(``pkg/apis/core/v1/defaults.go``). Only what operators observe is modelled."""

from __future__ import annotations

import base64
import binascii
import copy
import ipaddress
import itertools
import re
import threading
from typing import Any

from rook_py.framework.client import errors
from rook_py.framework.kube.quantity import Quantity, QuantityError, canonical_quantity, parse_quantity

from .base import (
    JSON,
    Cause,
    ServedResource,
    Strategy,
    cause,
    dns1035_label,
    dns1123_label,
    forbidden,
    immutable,
    invalid_value,
    required,
    without,
)

_CONFIG_KEY_RE = re.compile(r"^[-._a-zA-Z0-9]+$")

TERMINATING = "Terminating"
ACTIVE = "Active"


# --- pod templates (shared with apps/v1) --------------------------------------------------------

def _default_container(c: JSON) -> None:
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    image = str(c.get("image", ""))
    last = image.rsplit("/", 1)[-1]
    if "imagePullPolicy" not in c:
        tagged = ":" in last and not last.endswith(":latest")
        c["imagePullPolicy"] = "IfNotPresent" if tagged or "@" in last else "Always"
    canonical_resources(c.setdefault("resources", {}))
    for port in c.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")


def canonical_resource_list(resources: Any) -> None:
    """Rewrite a ResourceList's quantities as kube-apiserver stores them (``1024Mi`` -> ``1Gi``,
    ``0.5`` -> ``500m``): it decodes them into resource.Quantity and writes the canonical form
    back. A value that is not a quantity is left for validation to report."""
    if not isinstance(resources, dict):
        return
    for name, value in resources.items():
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            try:
                resources[name] = canonical_quantity(value)
            except QuantityError:
                continue


def canonical_resources(requirements: Any) -> None:
    """The limits and requests of a ResourceRequirements, canonical."""
    if isinstance(requirements, dict):
        canonical_resource_list(requirements.get("limits"))
        canonical_resource_list(requirements.get("requests"))


# volume sources whose defaultMode is defaulted (SetDefaults_ConfigMapVolumeSource & co.)
_DEFAULT_MODE_SOURCES = ("configMap", "secret", "downwardAPI", "projected")


def default_pod_spec(spec: JSON) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("securityContext", {})
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for c in spec.get(key) or []:
            if isinstance(c, dict):
                _default_container(c)
    canonical_resource_list(spec.get("overhead"))
    for volume in spec.get("volumes") or []:
        if not isinstance(volume, dict):
            continue
        for source in _DEFAULT_MODE_SOURCES:
            if isinstance(volume.get(source), dict):
                volume[source].setdefault("defaultMode", 0o644)
        empty_dir = volume.get("emptyDir")
        if isinstance(empty_dir, dict) and "sizeLimit" in empty_dir:
            holder = {"sizeLimit": empty_dir["sizeLimit"]}
            canonical_resource_list(holder)
            empty_dir["sizeLimit"] = holder["sizeLimit"]


def default_claim(claim: JSON) -> None:
    """PersistentVolumeClaim defaults, also those of a StatefulSet's claim templates."""
    spec = claim.setdefault("spec", {})
    spec.setdefault("volumeMode", "Filesystem")
    canonical_resources(spec.get("resources"))
    if isinstance(claim.get("status"), dict):
        canonical_resource_list(claim["status"].get("capacity"))


def validate_pod_spec(spec: Any, path: str) -> list[Cause]:
    if not isinstance(spec, dict):
        return [required(path)]
    causes: list[Cause] = []
    containers = spec.get("containers")
    if not containers:
        causes.append(required(f"{path}.containers"))
        return causes
    seen: set[str] = set()
    for key in ("initContainers", "containers"):
        for i, c in enumerate(spec.get(key) or []):
            cpath = f"{path}.{key}[{i}]"
            name = c.get("name") if isinstance(c, dict) else None
            if not name:
                causes.append(required(f"{cpath}.name"))
            else:
                causes += [invalid_value(f"{cpath}.name", name, m) for m in dns1123_label(name)]
                if name in seen:
                    causes.append(cause("FieldValueDuplicate", f"{cpath}.name", f'Duplicate value: "{name}"'))
                seen.add(name)
            if isinstance(c, dict) and not c.get("image"):
                causes.append(required(f"{cpath}.image"))
    return causes


def _qos_class(spec: JSON) -> str:
    requests_any = limits_all = False
    guaranteed = True
    for c in spec.get("containers") or []:
        res = c.get("resources") or {}
        req, lim = res.get("requests") or {}, res.get("limits") or {}
        if req or lim:
            requests_any = True
        for r in ("cpu", "memory"):
            if r not in lim or (r in req and req[r] != lim[r]):
                guaranteed = False
        limits_all = limits_all or bool(lim)
    if not requests_any:
        return "BestEffort"
    return "Guaranteed" if guaranteed and limits_all else "Burstable"


# --- strategies ---------------------------------------------------------------------------------

class NamespaceStrategy(Strategy):
    has_status = True
    return_deleted_object = True
    name_validator = staticmethod(dns1123_label)
    selectable_fields = {"status.phase": "status.phase"}

    def prepare_for_create(self, obj: JSON) -> None:
        obj["status"] = {"phase": ACTIVE}
        spec = obj.setdefault("spec", {})
        if "finalizers" not in spec:
            spec["finalizers"] = ["kubernetes"]
        self.default(obj)

    def default(self, obj: JSON) -> None:
        # the NamespaceDefaultLabelName feature: the name label is forced on every write
        meta = obj.setdefault("metadata", {})
        labels = meta.get("labels") or {}
        labels["kubernetes.io/metadata.name"] = meta.get("name", "")
        meta["labels"] = labels

    def prepare_for_update(self, new: JSON, old: JSON) -> None:
        # spec.finalizers can only change through /finalize
        new["spec"] = copy.deepcopy(old.get("spec", {}))
        super().prepare_for_update(new, old)

    def prepare_for_status_update(self, new: JSON, old: JSON) -> JSON:
        result = super().prepare_for_status_update(new, old)
        # the status strategy embeds the main one, so its Canonicalize (the name label) runs too
        self.default(result)
        return result

    def prepare_for_finalize(self, new: JSON, old: JSON) -> JSON:
        result = copy.deepcopy(old)
        result["spec"] = dict(old.get("spec", {}))
        result["spec"]["finalizers"] = list((new.get("spec") or {}).get("finalizers") or [])
        return result


class NodeStrategy(Strategy):
    has_status = True
    keep_status_on_create = True  # nodes register with their status, as a kubelet does
    selectable_fields = {"spec.unschedulable": "spec.unschedulable"}


class PodStrategy(Strategy):
    has_status = True
    return_deleted_object = True
    # podStatusStrategy.PrepareForUpdate (pkg/registry/core/pod/strategy.go): labels and
    # annotations written through /status persist, ownerReferences do not (old kubelets
    # corrupted them and broke garbage collection).
    status_reset_metadata = ("ownerReferences",)
    selectable_fields = {
        "spec.nodeName": "spec.nodeName", "spec.restartPolicy": "spec.restartPolicy",
        "spec.schedulerName": "spec.schedulerName", "spec.serviceAccountName": "spec.serviceAccountName",
        "spec.hostNetwork": "spec.hostNetwork", "status.phase": "status.phase",
        "status.podIP": "status.podIP", "status.nominatedNodeName": "status.nominatedNodeName",
    }

    def prepare_for_create(self, obj: JSON) -> None:
        spec = obj.setdefault("spec", {})
        if isinstance(spec, dict):
            default_pod_spec(spec)
            spec.setdefault("serviceAccountName", "default")
            spec.setdefault("enableServiceLinks", True)
            spec.setdefault("priority", 0)
            spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
            tolerations = spec.setdefault("tolerations", [])
            keys = {t.get("key") for t in tolerations if isinstance(t, dict)}
            # DefaultTolerationSeconds admission
            for key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"):
                if key not in keys:
                    tolerations.append({"key": key, "operator": "Exists", "effect": "NoExecute",
                                        "tolerationSeconds": 300})
        obj["status"] = {"phase": "Pending", "qosClass": _qos_class(spec if isinstance(spec, dict) else {})}

    def validate(self, obj: JSON) -> list[Cause]:
        return validate_pod_spec(obj.get("spec"), "spec")

    def validate_update(self, new: JSON, old: JSON) -> list[Cause]:
        causes = self.validate(new)
        # pod spec updates may only change images, activeDeadlineSeconds, tolerations additions
        # and schedulingGates (pkg/apis/core/validation ValidatePodUpdate)
        def mutable_stripped(spec: JSON) -> JSON:
            s = copy.deepcopy(spec)
            for c in itertools.chain(s.get("containers") or [], s.get("initContainers") or []):
                c.pop("image", None)
            for k in ("activeDeadlineSeconds", "tolerations", "schedulingGates"):
                s.pop(k, None)
            if not old.get("spec", {}).get("nodeName"):
                s.pop("nodeName", None)
            return s
        if mutable_stripped(new.get("spec", {})) != mutable_stripped(old.get("spec", {})):
            causes.append(forbidden("spec", "pod updates may not change fields other than "
                                    "`spec.containers[*].image`, `spec.initContainers[*].image`, "
                                    "`spec.activeDeadlineSeconds`, `spec.tolerations` (only additions "
                                    "to existing tolerations) or `spec.terminationGracePeriodSeconds`"))
        return causes


class ServiceIPAllocator:
    """Allocates ClusterIPs from 10.96.0.0/12 and NodePorts from 30000-32767, like the real
    allocators (pkg/registry/core/service/ipallocator): .1 is reserved for the kubernetes Service."""

    def __init__(self, cidr: str = "10.96.0.0/12") -> None:
        self._net = ipaddress.ip_network(cidr)
        self._next = 10
        self._used_ips: set[str] = set()
        self._used_ports: set[int] = set()
        self._lock = threading.Lock()

    def allocate_ip(self) -> str:
        with self._lock:
            while True:
                ip = str(self._net[self._next])
                self._next = self._next + 1 if self._next + 2 < self._net.num_addresses else 10
                if ip not in self._used_ips:
                    self._used_ips.add(ip)
                    return ip

    def reserve_ip(self, ip: str) -> bool:
        with self._lock:
            if ip in self._used_ips:
                return False
            self._used_ips.add(ip)
            return True

    def allocate_port(self) -> int:
        with self._lock:
            for port in range(30000, 32768):
                if port not in self._used_ports:
                    self._used_ports.add(port)
                    return port
        raise RuntimeError("node port range exhausted")

    def release(self, obj: JSON) -> None:
        spec = obj.get("spec") or {}
        with self._lock:
            for ip in spec.get("clusterIPs") or [spec.get("clusterIP")]:
                self._used_ips.discard(str(ip))
            for port in spec.get("ports") or []:
                if isinstance(port, dict) and port.get("nodePort"):
                    self._used_ports.discard(int(port["nodePort"]))


class ServiceStrategy(Strategy):
    has_status = True
    name_validator = staticmethod(dns1035_label)

    def __init__(self, allocator: ServiceIPAllocator) -> None:
        self.allocator = allocator

    def prepare_for_create(self, obj: JSON) -> None:
        obj["status"] = {"loadBalancer": {}}
        self.default(obj)
        spec = obj["spec"]
        if spec.get("type") != "ExternalName":
            ip = spec.get("clusterIP")
            if not ip:
                ip = self.allocator.allocate_ip()
            elif ip != "None" and not self.allocator.reserve_ip(ip):
                name = str(obj.get("metadata", {}).get("name", ""))
                raise errors.invalid("Service", "", name, [invalid_value(
                    "spec.clusterIPs", [ip], f"failed to allocate IP {ip}: provided IP is already allocated")])
            spec["clusterIP"] = ip
            spec["clusterIPs"] = [ip]
            spec.setdefault("ipFamilies", ["IPv4"])
            spec.setdefault("ipFamilyPolicy", "SingleStack")
            spec.setdefault("internalTrafficPolicy", "Cluster")
        if spec.get("type") in ("NodePort", "LoadBalancer"):
            spec.setdefault("externalTrafficPolicy", "Cluster")
            for port in spec.get("ports") or []:
                if isinstance(port, dict) and not port.get("nodePort"):
                    port["nodePort"] = self.allocator.allocate_port()

    def create_failed(self, obj: JSON) -> None:
        self.allocator.release(obj)

    def default(self, obj: JSON) -> None:
        spec = obj.setdefault("spec", {})
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        for port in spec.get("ports") or []:
            if isinstance(port, dict):
                port.setdefault("protocol", "TCP")
                if "port" in port:
                    port.setdefault("targetPort", port["port"])

    def validate(self, obj: JSON) -> list[Cause]:
        spec = obj.get("spec") or {}
        causes: list[Cause] = []
        if spec.get("type") not in ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"):
            causes.append(cause("FieldValueNotSupported", "spec.type",
                                f'Unsupported value: "{spec.get("type")}"'))
        ports = spec.get("ports") or []
        if not ports and spec.get("clusterIP") != "None" and spec.get("type") != "ExternalName":
            causes.append(required("spec.ports"))
        for i, port in enumerate(ports):
            p = port.get("port") if isinstance(port, dict) else None
            if not isinstance(p, int) or not 0 < p < 65536:
                causes.append(invalid_value(f"spec.ports[{i}].port", p, "must be between 1 and 65535, inclusive"))
            if len(ports) > 1 and isinstance(port, dict) and not port.get("name"):
                causes.append(required(f"spec.ports[{i}].name"))
        return causes

    def prepare_for_update(self, new: JSON, old: JSON) -> None:
        super().prepare_for_update(new, old)
        spec, old_spec = new.setdefault("spec", {}), old.get("spec", {})
        # an update that omits the allocated addresses keeps them (as the REST layer patches them in)
        for key in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy", "internalTrafficPolicy"):
            if key not in spec and key in old_spec:
                spec[key] = old_spec[key]

    def validate_update(self, new: JSON, old: JSON) -> list[Cause]:
        causes = self.validate(new)
        old_ip = old.get("spec", {}).get("clusterIP")
        new_ip = new.get("spec", {}).get("clusterIP")
        if old_ip and new_ip != old_ip and new.get("spec", {}).get("type") != "ExternalName":
            causes.append(immutable("spec.clusterIPs[0]", new_ip))
        return causes


class _DataStrategy(Strategy):
    """ConfigMaps and Secrets: key format, and `immutable: true` freezing data."""

    data_fields: tuple[str, ...] = ("data", "binaryData")
    kind = "ConfigMap"

    def validate(self, obj: JSON) -> list[Cause]:
        causes: list[Cause] = []
        for fname in self.data_fields:
            data = obj.get(fname)
            if data is None:
                continue
            if not isinstance(data, dict):
                causes.append(invalid_value(fname, data, "must be a map"))
                continue
            for key in data:
                if not _CONFIG_KEY_RE.match(key) or len(key) > 253:
                    causes.append(invalid_value(f"{fname}[{key}]", key,
                                                "a valid config key must consist of alphanumeric "
                                                "characters, '-', '_' or '.'"))
        return causes

    def validate_update(self, new: JSON, old: JSON) -> list[Cause]:
        causes = self.validate(new)
        if old.get("immutable"):
            if not new.get("immutable"):
                causes.append(forbidden("immutable", "field is immutable when `immutable` is set"))
            for fname in self.data_fields:
                if (new.get(fname) or {}) != (old.get(fname) or {}):
                    causes.append(forbidden(fname, "field is immutable when `immutable` is set"))
        return causes


class ConfigMapStrategy(_DataStrategy):
    pass


class SecretStrategy(_DataStrategy):
    data_fields = ("data",)
    kind = "Secret"
    selectable_fields = {"type": "type"}

    def default(self, obj: JSON) -> None:
        obj.setdefault("type", "Opaque")
        string_data = obj.pop("stringData", None)
        if isinstance(string_data, dict):
            data = obj.get("data") or {}
            for key, value in string_data.items():
                data[key] = base64.b64encode(str(value).encode()).decode()
            obj["data"] = data

    def validate(self, obj: JSON) -> list[Cause]:
        causes = super().validate(obj)
        for key, value in (obj.get("data") or {}).items():
            try:
                base64.b64decode(str(value), validate=True)
            except (binascii.Error, ValueError):
                causes.append(invalid_value(f"data[{key}]", "<secret contents redacted>",
                                            "illegal base64 data"))
        return causes

    def validate_update(self, new: JSON, old: JSON) -> list[Cause]:
        causes = super().validate_update(new, old)
        if new.get("type") != old.get("type"):
            causes.append(immutable("type", new.get("type")))
        return causes


class PVCStrategy(Strategy):
    has_status = True

    def prepare_for_create(self, obj: JSON) -> None:
        obj["status"] = {"phase": "Pending"}
        self.default(obj)

    def default(self, obj: JSON) -> None:
        default_claim(obj)

    def validate(self, obj: JSON) -> list[Cause]:
        spec = obj.get("spec") or {}
        causes = []
        if not spec.get("accessModes"):
            causes.append(required("spec.accessModes"))
        if not (spec.get("resources") or {}).get("requests", {}).get("storage"):
            causes.append(required("spec.resources[storage]"))
        return causes

    def validate_update(self, new: JSON, old: JSON) -> list[Cause]:
        causes = self.validate(new)
        new_spec, old_spec = copy.deepcopy(new.get("spec") or {}), copy.deepcopy(old.get("spec") or {})
        new_size = _quantity((new_spec.get("resources") or {}).get("requests", {}).get("storage"))
        old_size = _quantity((old_spec.get("resources") or {}).get("requests", {}).get("storage"))
        if new_size is not None and old_size is not None and new_size < old_size:
            causes.append(forbidden("spec.resources.requests.storage", "field can not be less than status.capacity"))
        for spec in (new_spec, old_spec):
            spec.get("resources", {}).get("requests", {}).pop("storage", None)
            spec.pop("volumeAttributesClassName", None)
        # a claim gets bound once: volumeName (and a defaulted class) may be set when empty
        if not old_spec.get("volumeName"):
            new_spec.pop("volumeName", None)
            old_spec.pop("volumeName", None)
        if old_spec.get("storageClassName") is None:
            new_spec.pop("storageClassName", None)
        if new_spec != old_spec:
            causes.append(forbidden("spec", "spec is immutable after creation except "
                                    "resources.requests and volumeAttributesClassName for bound claims"))
        return causes


def _quantity(value: Any) -> Quantity | None:
    if value is None:
        return None
    try:
        return parse_quantity(value)
    except ValueError:
        return None


class PVStrategy(Strategy):
    has_status = True

    def prepare_for_create(self, obj: JSON) -> None:
        obj["status"] = {"phase": "Pending"}
        self.default(obj)

    def default(self, obj: JSON) -> None:
        spec = obj.setdefault("spec", {})
        spec.setdefault("persistentVolumeReclaimPolicy", "Retain")
        spec.setdefault("volumeMode", "Filesystem")


class EventStrategy(Strategy):
    selectable_fields = {
        "involvedObject.kind": "involvedObject.kind", "involvedObject.namespace": "involvedObject.namespace",
        "involvedObject.name": "involvedObject.name", "involvedObject.uid": "involvedObject.uid",
        "involvedObject.apiVersion": "involvedObject.apiVersion",
        "involvedObject.resourceVersion": "involvedObject.resourceVersion",
        "involvedObject.fieldPath": "involvedObject.fieldPath", "reason": "reason",
        "reportingComponent": "reportingComponent", "source": "source.component", "type": "type",
    }

    def validate(self, obj: JSON) -> list[Cause]:
        causes = []
        if not obj.get("involvedObject") and not obj.get("regarding"):
            causes.append(required("involvedObject"))
        return causes


class EventsV1Strategy(EventStrategy):
    """events.k8s.io/v1 selects on its own field names; objects are stored in the core shape, so
    the names map onto core paths."""

    selectable_fields = {
        **EventStrategy.selectable_fields,
        **{f"regarding.{k}": f"involvedObject.{k}"
           for k in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")},
        "reportingController": "reportingComponent",
    }


# core/v1 Event <-> events.k8s.io/v1 Event: one stored object, two shapes (pkg/apis/events/v1)
_EVENTS_RENAMES = (("involvedObject", "regarding"), ("message", "note"), ("count", "deprecatedCount"),
                   ("firstTimestamp", "deprecatedFirstTimestamp"), ("lastTimestamp", "deprecatedLastTimestamp"),
                   ("source", "deprecatedSource"), ("related", "related"), ("reportingComponent", "reportingController"))


def core_event_to_events_v1(obj: JSON) -> JSON:
    out = without(obj, *(core for core, _ in _EVENTS_RENAMES))
    for core, new in _EVENTS_RENAMES:
        if core in obj:
            out[new] = obj[core]
    out["apiVersion"] = "events.k8s.io/v1"
    return out


def events_v1_to_core_event(obj: JSON) -> JSON:
    out = without(obj, *(new for _, new in _EVENTS_RENAMES))
    for core, new in _EVENTS_RENAMES:
        if new in obj:
            out[core] = obj[new]
    out["apiVersion"] = "v1"
    return out


def core_resources() -> list[ServedResource]:
    allocator = ServiceIPAllocator()
    plain = Strategy()
    events = ServedResource("events.k8s.io", "v1", "events", "Event", True, EventsV1Strategy(),
                            short_names=("ev",), storage=("", "events"),
                            from_storage=core_event_to_events_v1, to_storage=events_v1_to_core_event)
    endpoints_strategy = Strategy()
    endpoints_strategy.allow_create_on_update = True
    return [
        ServedResource("", "v1", "namespaces", "Namespace", False, NamespaceStrategy(),
                       short_names=("ns",), subresources=("status", "finalize"),
                       verbs=("create", "delete", "get", "list", "patch", "update", "watch")),
        ServedResource("", "v1", "nodes", "Node", False, NodeStrategy(), short_names=("no",),
                       subresources=("status",)),
        ServedResource("", "v1", "pods", "Pod", True, PodStrategy(), short_names=("po",),
                       categories=("all",), subresources=("status",)),
        ServedResource("", "v1", "services", "Service", True, ServiceStrategy(allocator),
                       short_names=("svc",), categories=("all",), subresources=("status",),
                       verbs=("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"),
                       extra={"allocator": allocator}),
        ServedResource("", "v1", "endpoints", "Endpoints", True, endpoints_strategy, short_names=("ep",)),
        ServedResource("", "v1", "configmaps", "ConfigMap", True, ConfigMapStrategy(), short_names=("cm",)),
        ServedResource("", "v1", "secrets", "Secret", True, SecretStrategy()),
        ServedResource("", "v1", "serviceaccounts", "ServiceAccount", True, plain, short_names=("sa",)),
        ServedResource("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", True, PVCStrategy(),
                       short_names=("pvc",), subresources=("status",)),
        ServedResource("", "v1", "persistentvolumes", "PersistentVolume", False, PVStrategy(),
                       short_names=("pv",), subresources=("status",)),
        ServedResource("", "v1", "events", "Event", True, EventStrategy(), short_names=("ev",)),
        events,
    ]
