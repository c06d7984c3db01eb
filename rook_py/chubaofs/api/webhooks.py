"""ChubaoMonitor admission webhooks: refuse at ``kubectl apply`` what the controller would refuse.

* ``MonitorValidator`` runs :func:`~rook_py.chubaofs.api.validation.validate` -- the very function
  the controller runs before it touches anything -- on the defaulted spec, so the webhook and the
  controller can never disagree; each problem becomes a field error
  (``spec.consul.storage.size: Invalid value: "0": must be greater than zero``). Secret
  references are checked too, but a missing Secret (or key) is only a *warning*: the Secret may be
  applied right after the monitor, and the controller reports it until it exists.
  Updates add the rules that need the old object and quantity arithmetic (CEL in Kubernetes
  1.25-1.28 has no ``quantity()``): a volume may grow, never shrink. The rules CEL can express
  (odd Consul servers, quorum-preserving scale-down, immutable storage class, ...) are in the CRD
  schema instead, and are enforced even with the operator down (see ``schema.py``).
* ``MonitorDefaulter`` sets only what the schema cannot default: a schema ``default`` can neither
  depend on another field nor reach ``metadata``, so the label ``chubaofs.rook.io/cluster`` (the
  monitored cluster's name, for ``kubectl get chubaomonitors -l chubaofs.rook.io/cluster=cfs``)
  is set here, and follows ``spec.cluster.name`` on every update. Spec fields are deliberately not
  defaulted from other fields: a value stored once would stop following its source.

Both have no side effects (the configurations declare ``sideEffects: None``), so dry runs are
safe; the Secret lookups are reads.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from rook_py.chubaofs.api import types as t
from rook_py.chubaofs.api.defaults import with_defaults
from rook_py.chubaofs.api.validation import validate
from rook_py.framework.client import errors
from rook_py.framework.kube.quantity import QuantityError, parse_quantity
from rook_py.framework.webhook import FieldError, FieldErrors, forbidden, invalid
from rook_py.framework.webhook.admission import AdmissionRequest

JSON = dict[str, Any]
SecretGetter = Callable[[str, str], "JSON | None"]

#: the components with a ``storage`` section, in the order problems are reported
STORAGE_COMPONENTS = (t.CONSUL, t.PROMETHEUS, t.ALERTMANAGER, t.GRAFANA)
_PROBLEM = re.compile(r"^(?P<field>[A-Za-z0-9_.\[\]-]+): (?P<detail>.*)$", re.S)
_SECRET_FIELDS = ("alertmanager.configSecret", "grafana.adminSecret")
CLUSTER_LABEL = "chubaofs.rook.io/cluster"
VALIDATING_PATH = "/validate-chubaofs-rook-io-v1alpha1-chubaomonitor"
MUTATING_PATH = "/mutate-chubaofs-rook-io-v1alpha1-chubaomonitor"


def _value_at(spec: JSON, dotted: str) -> Any:
    node: Any = spec
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def field_errors(spec: JSON, problems: Sequence[str]) -> list[FieldError]:
    """``field: message`` problems (the controller's wording) as field errors under ``spec``."""
    out = []
    for problem in problems:
        match = _PROBLEM.match(problem)
        if match is None:
            out.append(FieldError("FieldValueInvalid", "spec", detail=problem))
            continue
        field = match.group("field")
        value = _value_at(spec, field)
        if value is None or isinstance(value, dict | list):
            out.append(FieldError("FieldValueInvalid", f"spec.{field}", detail=match.group("detail")))
        else:
            out.append(invalid(f"spec.{field}", value, match.group("detail")))
    return out


def default_client_secret_getter(client: Any) -> SecretGetter:
    def get(namespace: str, name: str) -> JSON | None:
        try:
            secret: JSON = client.get("v1", "Secret", name, namespace)
        except errors.NotFound:
            return None
        return secret

    return get


class MonitorValidator:
    """See the module docstring. ``secrets(namespace, name)`` returns a Secret or None."""

    def __init__(self, secrets: SecretGetter | None = None) -> None:
        self.secrets = secrets

    def _check(self, obj: JSON, namespace: str) -> tuple[JSON, list[FieldError], list[str]]:
        spec = with_defaults(obj.get("spec"))
        problems = validate(spec)
        errs = field_errors(spec, problems)
        warnings: list[str] = []
        if self.secrets is not None:
            getter = self.secrets

            def lookup(name: str) -> JSON | None:
                return getter(namespace, name)

            # Same function, now with Secret lookups: what it adds are the Secret problems.
            with_secrets = validate(spec, secrets=lookup)
            warnings = [f"spec.{p}" for p in with_secrets if p not in problems]
        return spec, errs, warnings

    def validate_create(self, request: AdmissionRequest, obj: JSON) -> list[str]:
        _, errs, warnings = self._check(obj, request.namespace)
        if errs:
            raise FieldErrors(errs, warnings)
        return warnings

    def validate_update(self, request: AdmissionRequest, old: JSON, new: JSON) -> list[str]:
        if new.get("metadata", {}).get("deletionTimestamp"):
            return []  # finalizer removal on a deleted monitor must always pass
        spec, errs, warnings = self._check(new, request.namespace)
        errs += shrunk_volumes(with_defaults(old.get("spec")), spec)
        if errs:
            raise FieldErrors(errs, warnings)
        return warnings

    def validate_delete(self, request: AdmissionRequest, obj: JSON) -> list[str]:
        return []


def shrunk_volumes(old_spec: JSON, new_spec: JSON) -> list[FieldError]:
    """A volume may grow (the PVCs are expanded) but never shrink: Kubernetes cannot shrink a
    PersistentVolumeClaim, so the request could never be met."""
    out = []
    for component in STORAGE_COMPONENTS:
        old = ((old_spec.get(component) or {}).get("storage") or {}).get("size")
        new = ((new_spec.get(component) or {}).get("storage") or {}).get("size")
        if old is None or new is None:
            continue
        try:
            shrinks = parse_quantity(new) < parse_quantity(old)
        except (QuantityError, ValueError, TypeError):
            continue  # a malformed size is validate()'s to report
        if shrinks:
            out.append(forbidden(
                f"spec.{component}.storage.size",
                f"may not shrink from {old} to {new}: a PersistentVolumeClaim cannot shrink; keep "
                f"{old} or more (to start smaller, create a new ChubaoMonitor: the old volumes stay "
                f"unless cleanupPolicy.deleteData)"))
    return out


class MonitorDefaulter:
    """See the module docstring."""

    def default(self, request: AdmissionRequest, obj: JSON) -> None:
        cluster = ((obj.get("spec") or {}).get("cluster") or {}).get("name")
        if not isinstance(cluster, str) or not cluster or len(cluster) > 63:
            return  # the schema refuses it; nothing to label
        meta = obj.setdefault("metadata", {})
        meta["labels"] = {**(meta.get("labels") or {}), CLUSTER_LABEL: cluster}


WEBHOOK_SERVICE = "rook-chubaofs-webhook"
WEBHOOK_SECRET = "rook-chubaofs-webhook-cert"
VALIDATING_CONFIGURATION = "rook-chubaofs-validating-webhook"
MUTATING_CONFIGURATION = "rook-chubaofs-mutating-webhook"
WEBHOOK_PORT = 9443


def webhook_configurations(namespace: str) -> list[JSON]:
    """The Mutating and Validating configurations the manifests install (CA bundle injected by
    the running operator). The operator's own namespace is excluded, so a broken operator never
    blocks its own repair; ``failurePolicy: Fail`` means that while no replica serves, creates and
    updates of ChubaoMonitors are refused (500, ``failed calling webhook``) rather than let
    through unchecked -- deleting the operator therefore deletes these configurations with it
    (they are in the same manifest), and ``kubectl delete validatingwebhookconfiguration
    rook-chubaofs-validating-webhook`` (and the mutating one) unblocks a cluster whose operator is
    gone for good. Deletes are not sent: a ChubaoMonitor can always be deleted."""
    def hook(name: str, path: str) -> JSON:
        return {
            "name": name,
            "admissionReviewVersions": ["v1"],
            "sideEffects": "None",
            "failurePolicy": "Fail",
            "matchPolicy": "Equivalent",
            "timeoutSeconds": 10,
            "namespaceSelector": {"matchExpressions": [{
                "key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": [namespace]}]},
            "rules": [{"apiGroups": [t.GROUP], "apiVersions": [t.VERSION], "operations": ["CREATE", "UPDATE"],
                       "resources": [t.PLURAL], "scope": "Namespaced"}],
            "clientConfig": {"service": {"namespace": namespace, "name": WEBHOOK_SERVICE, "path": path,
                                         "port": 443}},
        }

    labels = {"app.kubernetes.io/name": "rook-chubaofs-operator", "app.kubernetes.io/component": "webhook"}
    return [
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
         "metadata": {"name": MUTATING_CONFIGURATION, "labels": labels},
         "webhooks": [{**hook(f"m{t.PLURAL}.{t.GROUP}", MUTATING_PATH), "reinvocationPolicy": "Never"}]},
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
         "metadata": {"name": VALIDATING_CONFIGURATION, "labels": labels},
         "webhooks": [hook(f"v{t.PLURAL}.{t.GROUP}", VALIDATING_PATH)]},
    ]
