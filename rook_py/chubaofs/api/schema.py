"""The structural ``openAPIV3Schema`` of ``ChubaoMonitor``.

Invariants (checked by tests):
- structural: every node has a ``type`` (or is an int-or-string / preserve-unknown-fields node),
  so the API server can prune, default and validate it;
- every leaf carries its bounds: an enum, a pattern, a min/max or a maxLength;
- ``default`` values live here and only here; :mod:`rook_py.chubaofs.api.defaults` applies the
  very same tree in code, so an object written before a default existed never crashes the
  operator. Parent objects carry ``default: {}`` so their children's defaults apply (the API
  server only defaults inside objects that exist, see apiextensions-apiserver
  pkg/apiserver/schema/defaulting/algorithm.go).

Where each invariant is checked -- CEL in this schema, or the operator's validating webhook:

- CEL (``x-kubernetes-validations``) holds every rule Kubernetes 1.25-1.28 CEL can express: odd
  Consul servers, ``enabled: false`` needing ``externalAddress``, Consul not losing a quorum of
  its current servers in one step, warning threshold below critical, the operator-owned
  ``replica`` external label, ``storageClassName`` unchanged once a volume exists, and
  ``deleteData`` needing its confirmation. Each rule tolerates absent fields (``has()``): the API
  server also checks rules against the ``default: {}`` written here, before nested defaults. The API server enforces them with no operator running
  (or with ``--enable-webhooks=false``), before any webhook sees the object. Messages are static
  text: kube-apiserver 1.28's cost estimator refuses ``string(int)`` in a ``messageExpression``.
- The validating webhook (``rook_py.chubaofs.api.webhooks``) runs ``validation.validate`` -- the
  very function the controller runs -- for what CEL cannot say before 1.29's ``quantity()``
  library or without data outside the object: quantities (sizes above zero, requests within
  limits, a volume may grow but not shrink), Prometheus durations and byte sizes, the supported
  ChubaoFS versions table, free-form rule groups, and Secret references (a warning, since the
  Secret may be created next).
"""

from __future__ import annotations

import copy
from typing import Any

from rook_py.chubaofs import versions
from rook_py.chubaofs.api import types as t

JSON = dict[str, Any]

# Same grammar as the quantity pattern kube-openapi emits for resource.Quantity.
QUANTITY_PATTERN = (r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|"
                    r"([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$")
# Prometheus' model.Duration grammar (prometheus/common model/time.go): units in descending order.
DURATION_PATTERN = (r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?"
                    r"(([0-9]+)s)?(([0-9]+)ms)?)$")
# --storage.tsdb.retention.size: a Prometheus units.Base2Bytes (B, KB, MB, ... powers of 1024).
BYTE_SIZE_PATTERN = r"^(0|[0-9]+(B|KB|MB|GB|TB|PB|EB))$"
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# ChubaoFS puts the cluster name into a Consul tag and a Prometheus label value.
CLUSTER_NAME_PATTERN = r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
# Consul's consul_sd server is host:port, never a URL (a known mistake of a community fork).
HOST_PORT_PATTERN = r"^[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?:[0-9]{1,5}$"
HOSTNAME_PATTERN = (r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_NAME_PATTERN = r"^[a-zA-Z_][a-zA-Z0-9_]*$"
IMAGE_PATTERN = r"^[^\s]+$"


def _str(pattern: str | None = None, max_length: int = 253, **extra: Any) -> JSON:
    node: JSON = {"type": "string", "maxLength": max_length}
    if pattern:
        node["minLength"] = 1  # patterns with only optional parts would accept ""
    if pattern:
        node["pattern"] = pattern
    node.update(extra)
    return node


def _int(minimum: int, maximum: int, **extra: Any) -> JSON:
    return {"type": "integer", "format": "int32", "minimum": minimum, "maximum": maximum, **extra}


def _bool(default: bool) -> JSON:
    return {"type": "boolean", "default": default}


def _quantity(**extra: Any) -> JSON:
    return {"anyOf": [{"type": "integer"}, {"type": "string"}], "pattern": QUANTITY_PATTERN,
            "x-kubernetes-int-or-string": True, **extra}


def _free_form_list(description: str, max_items: int = 100) -> JSON:
    """A list of objects the operator passes through unchanged (kept, never pruned)."""
    return {"type": "array", "maxItems": max_items, "description": description,
            "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}


def _string_map(description: str, key_pattern: str | None = None, max_properties: int = 64) -> JSON:
    node: JSON = {"type": "object", "maxProperties": max_properties, "description": description,
                  "additionalProperties": _str(max_length=1024)}
    if key_pattern:
        # propertyNames is not allowed in structural schemas; patterns on keys are enforced by
        # semantic validation (validation.py) instead.
        node["description"] += f" Keys must match {key_pattern}."
    return node


def resources_schema(default_requests: JSON | None = None) -> JSON:
    """core/v1 ResourceRequirements (limits, requests) with quantity values."""
    node: JSON = {
        "type": "object",
        "description": "Compute resources of the component's main container.",
        "properties": {
            "limits": {"type": "object", "maxProperties": 16,
                       "additionalProperties": _quantity()},
            "requests": {"type": "object", "maxProperties": 16,
                         "additionalProperties": _quantity()},
        },
    }
    if default_requests is not None:
        node["default"] = {"requests": dict(default_requests)}
    return node


def storage_schema(default_size: str | None) -> JSON:
    """A persistent volume request. Storage may grow; shrinking or another class is refused."""
    node: JSON = {
        "type": "object",
        "description": "Persistent storage. It can grow (when the StorageClass allows volume "
                       "expansion); shrinking it or changing storageClassName is refused.",
        "required": ["size"],
        "properties": {
            "size": _quantity(description="Requested capacity, e.g. 20Gi."),
            "storageClassName": _str(DNS_SUBDOMAIN_PATTERN,
                                     description="StorageClass; empty means the cluster default."),
        },
        "x-kubernetes-validations": [{
            "rule": "(has(self.storageClassName) ? self.storageClassName : '') == "
                    "(has(oldSelf.storageClassName) ? oldSelf.storageClassName : '')",
            "message": "storageClassName cannot change: a volume keeps the class it was created "
                       "with; keep the old class, or create a new ChubaoMonitor for the new one"}],
    }
    if default_size is not None:
        node["default"] = {"size": default_size}
    return node


def _image(component: str) -> JSON:
    return _str(IMAGE_PATTERN, 512, default=t.DEFAULT_IMAGES[component],
                description=f"Container image of {component}.")


def _consul() -> JSON:
    return {
        "type": "object", "default": {},
        "description": "Consul servers: service discovery of ChubaoFS daemons and node agents.",
        "x-kubernetes-validations": [
            {"rule": "has(self.externalAddress) || !has(self.enabled) || self.enabled",
             "message": "enabled: false needs externalAddress: without a Consul Prometheus cannot "
                        "discover ChubaoFS daemons"},
            {"rule": "has(self.externalAddress) || !has(self.replicas) || self.replicas % 2 == 1",
             "message": "replicas must be 1, 3 or 5: an even server count adds no fault tolerance "
                        "and risks a split vote"},
            {"rule": "has(self.externalAddress) || has(oldSelf.externalAddress) || "
                     "!has(self.replicas) || !has(oldSelf.replicas) || self.replicas * 2 > oldSelf.replicas",
             "message": "replicas may not drop below a quorum (more than half) of the current servers "
                        "in one step: 5 -> 3 is allowed, 3 -> 1 is not; to run one server, recreate "
                        "the ChubaoMonitor (volumes are kept unless cleanupPolicy.deleteData)"},
        ],
        "properties": {
            "enabled": _bool(True),
            "image": _image(t.CONSUL),
            "replicas": _int(1, 5, default=3,
                             description="Server count: 1, 3 or 5 (an odd count keeps a raft "
                                         "quorum; even counts are reported as InvalidSpec)."),
            "storage": storage_schema("1Gi"),
            "resources": resources_schema({"cpu": "100m", "memory": "128Mi"}),
            "externalAddress": _str(HOST_PORT_PATTERN,
                                    description="host:port of an existing Consul to use instead; "
                                                "when set no Consul is deployed."),
        },
    }


def _prometheus() -> JSON:
    return {
        "type": "object", "default": {},
        "x-kubernetes-validations": [{
            "rule": "!has(self.externalLabels) || !('replica' in self.externalLabels) || "
                    "!has(self.replicas) || self.replicas == 1",
            "message": "externalLabels.replica is set by the operator when replicas > 1"}],
        "properties": {
            "image": _image(t.PROMETHEUS),
            "replicas": _int(1, 10, default=1,
                             description="Identical HA replicas; each adds an external label "
                                         "`replica` with its pod name."),
            "retention": _str(DURATION_PATTERN, 32, default="15d",
                              description="--storage.tsdb.retention.time, e.g. 15d."),
            "retentionSize": _str(BYTE_SIZE_PATTERN, 32,
                                  description="--storage.tsdb.retention.size, e.g. 18GB."),
            "scrapeInterval": _str(DURATION_PATTERN, 32, default="30s"),
            "evaluationInterval": _str(DURATION_PATTERN, 32,
                                       description="Rule evaluation interval; defaults to "
                                                   "scrapeInterval."),
            "storage": storage_schema("20Gi"),
            "resources": resources_schema({"cpu": "200m", "memory": "512Mi"}),
            "externalLabels": _string_map("Labels added to every series and alert.",
                                          LABEL_NAME_PATTERN, 32),
            "extraScrapeConfigs": _free_form_list("Extra Prometheus scrape_configs entries."),
            "remoteWrite": _free_form_list("Prometheus remote_write entries (Thanos, Mimir, "
                                           "VictoriaMetrics, ...).", 16),
        },
    }


def _alertmanager() -> JSON:
    return {
        "type": "object", "default": {},
        "properties": {
            "enabled": _bool(True),
            "image": _image(t.ALERTMANAGER),
            "replicas": _int(1, 5, default=1, description="More than one forms a gossip mesh."),
            "configSecret": _str(DNS_SUBDOMAIN_PATTERN,
                                 description="Secret with key alertmanager.yml; a generated "
                                             "default configuration is used when empty."),
            "storage": storage_schema(None),
            "resources": resources_schema({"cpu": "50m", "memory": "64Mi"}),
        },
    }


def _grafana() -> JSON:
    return {
        "type": "object", "default": {},
        "properties": {
            "enabled": _bool(True),
            "image": _image(t.GRAFANA),
            "replicas": _int(1, 5, default=1),
            "adminSecret": _str(DNS_SUBDOMAIN_PATTERN,
                                description="Secret with keys admin-user and admin-password; "
                                            "generated once with a random password when empty."),
            "storage": storage_schema(None),
            "resources": resources_schema({"cpu": "100m", "memory": "128Mi"}),
            "ingress": {
                "type": "object",
                "properties": {
                    "host": _str(HOSTNAME_PATTERN),
                    "className": _str(DNS_SUBDOMAIN_PATTERN),
                    "tlsSecret": _str(DNS_SUBDOMAIN_PATTERN),
                },
                "required": ["host"],
            },
        },
    }


def _rules() -> JSON:
    return {
        "type": "object", "default": {},
        "properties": {
            "enabled": _bool(True),
            "thresholds": {
                "type": "object", "default": {},
                "x-kubernetes-validations": [{
                    "rule": "!has(self.capacityWarningPercent) || !has(self.capacityCriticalPercent) || "
                            "self.capacityWarningPercent < self.capacityCriticalPercent",
                    "message": "capacityWarningPercent must be below capacityCriticalPercent"}],
                "properties": {
                    "capacityWarningPercent": _int(1, 100, default=80),
                    "capacityCriticalPercent": _int(1, 100, default=90),
                    "volumeUsagePercent": _int(1, 100, default=90),
                    "predictFullDays": _int(1, 365, default=7),
                    "targetDownMinutes": _int(1, 1440, default=5),
                },
            },
            "extraRules": _free_form_list("Extra Prometheus rule groups ({name, rules})."),
        },
    }


def _chubaofs() -> JSON:
    return {
        "type": "object", "default": {},
        "description": "The ChubaoFS / CubeFS release the monitored cluster runs. The rules "
                       "normalise every supported release at once; the release tells the "
                       "dashboards which panels cannot have data.",
        "properties": {
            "version": _str(versions.RELEASE_PATTERN, 16, default=versions.DEFAULT_VERSION,
                            description=f"Release of the cluster's daemons, e.g. 2.4.0 or "
                                        f"3.5.2 (ChubaoFS {versions.OLDEST_SUPPORTED} up to "
                                        f"CubeFS 3.x)."),
            "upgradingFrom": _str(versions.RELEASE_PATTERN, 16,
                                  description="During a rolling upgrade: the release the "
                                              "cluster comes from. Panels then say which data "
                                              "only daemons already on `version` provide. "
                                              "Remove it when the upgrade is done."),
        },
    }


def _placement() -> JSON:
    toleration = {
        "type": "object",
        "properties": {
            "key": _str(max_length=316),
            "operator": _str(max_length=16, enum=["Exists", "Equal"]),
            "value": _str(max_length=63),
            "effect": _str(max_length=32, enum=["NoSchedule", "PreferNoSchedule", "NoExecute"]),
            "tolerationSeconds": {"type": "integer", "format": "int64", "minimum": 0},
        },
    }
    return {
        "type": "object", "default": {},
        "description": "Where the monitor pods run.",
        "properties": {
            "nodeSelector": _string_map("Node labels the pods require."),
            "tolerations": {"type": "array", "maxItems": 32, "items": toleration},
            "affinity": {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
                         "description": "core/v1 Affinity; replaces the default soft pod "
                                        "anti-affinity across nodes."},
        },
    }


def _cleanup_policy() -> JSON:
    return {
        "type": "object", "default": {},
        "x-kubernetes-validations": [{
            "rule": f"!has(self.deleteData) || !self.deleteData || (has(self.confirmation) && "
                    f"self.confirmation == '{t.DESTROY_DATA_CONFIRMATION}')",
            "message": f"deleteData: true needs confirmation: {t.DESTROY_DATA_CONFIRMATION}"}],
        "properties": {
            "deleteData": _bool(False),
            "confirmation": _str(max_length=64, enum=["", t.DESTROY_DATA_CONFIRMATION],
                                 description="Must be yes-really-destroy-data for deleteData "
                                             "to take effect."),
        },
    }


def spec_schema() -> JSON:
    return {
        "type": "object",
        "required": ["cluster"],
        "properties": {
            "cluster": {
                "type": "object",
                "required": ["name"],
                "properties": {"name": _str(CLUSTER_NAME_PATTERN, 63,
                                            description="The ChubaoFS cluster to monitor.")},
            },
            "chubaofs": _chubaofs(),
            "consul": _consul(),
            "prometheus": _prometheus(),
            "alertmanager": _alertmanager(),
            "grafana": _grafana(),
            "rules": _rules(),
            "placement": _placement(),
            "imagePullSecrets": {
                "type": "array", "maxItems": 16,
                "items": {"type": "object", "required": ["name"],
                          "properties": {"name": _str(DNS_SUBDOMAIN_PATTERN)}},
            },
            "priorityClassName": _str(DNS_SUBDOMAIN_PATTERN),
            "cleanupPolicy": _cleanup_policy(),
        },
    }


def status_schema() -> JSON:
    condition = {
        "type": "object",
        "required": ["type", "status"],
        "properties": {
            "type": _str(max_length=316, enum=list(t.CONDITION_TYPES)),
            "status": _str(max_length=16, enum=["True", "False", "Unknown"]),
            "reason": _str(r"^([A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?)?$", 1024),
            "message": _str(max_length=32768),
            "lastTransitionTime": {"type": "string", "format": "date-time"},
            "observedGeneration": {"type": "integer", "format": "int64", "minimum": 0},
        },
    }
    component = {
        "type": "object",
        "properties": {
            "ready": {"type": "boolean"},
            "readyReplicas": _int(0, 1000),
            "replicas": _int(0, 1000),
            "image": _str(max_length=512),
            "message": _str(max_length=4096),
        },
    }
    return {
        "type": "object",
        "properties": {
            "phase": _str(max_length=32, enum=list(t.PHASES)),
            "observedGeneration": {"type": "integer", "format": "int64", "minimum": 0},
            "conditions": {"type": "array", "maxItems": 16, "items": condition,
                           "x-kubernetes-list-type": "map",
                           "x-kubernetes-list-map-keys": ["type"]},
            "components": {"type": "object",
                           "properties": {c: copy.deepcopy(component) for c in t.COMPONENTS}},
            "endpoints": {"type": "object", "maxProperties": 16,
                          "additionalProperties": _str(max_length=1024)},
        },
    }


def open_api_v3_schema() -> JSON:
    """The full schema of a ChubaoMonitor object (a fresh copy on every call)."""
    return {
        "type": "object",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec_schema(),
            "status": status_schema(),
        },
    }
