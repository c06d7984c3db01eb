"""What every resource strategy shares: the served-resource record, the strategy base class,
and the object-meta validation kube-apiserver applies to everything.

A strategy plays the part of a ``pkg/registry/<group>/<resource>/strategy.go`` upstream: it
defaults and validates objects, decides what an update may change, and splits the main endpoint
from the status subresource. The generic verb logic (resourceVersion, finalizers, deletion,
generateName) lives in ``local.py`` and is the same for everything, as in
``staging/src/k8s.io/apiserver/pkg/registry/generic/registry/store.go``.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]
Cause = dict[str, str]

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")

# Sentinel: a strategy uses it when the resource has no generation (ConfigMaps, Services...).
NO_GENERATION = "none"
SPEC_GENERATION = "spec"        # bumped when anything outside metadata/status changes
ALL_GENERATION = "all"          # bumped when anything outside metadata changes (CRs without status)


def cause(reason: str, field_path: str, message: str) -> Cause:
    return {"reason": reason, "message": message, "field": field_path}


def required(field_path: str, what: str = "Required value") -> Cause:
    return cause("FieldValueRequired", field_path, what)


def invalid_value(field_path: str, value: Any, why: str) -> Cause:
    shown = f'"{value}"' if isinstance(value, str) else repr(value)
    return cause("FieldValueInvalid", field_path, f"Invalid value: {shown}: {why}")


def forbidden(field_path: str, why: str) -> Cause:
    return cause("FieldValueForbidden", field_path, f"Forbidden: {why}")


def immutable(field_path: str, value: Any) -> Cause:
    return invalid_value(field_path, value, "field is immutable")


# --- name and label formats (k8s.io/apimachinery/pkg/util/validation/validation.go) -------------

_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_SUBDOMAIN_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS1035_RE = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_QUALIFIED_NAME_RE = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def dns1123_label(name: str) -> list[str]:
    errs = []
    if len(name) > 63:
        errs.append("must be no more than 63 characters")
    if not _LABEL_RE.match(name):
        # kube-apiserver ends these messages with an example and the pattern (apimachinery's
        # util/validation RegexError), and clients show them verbatim.
        errs.append("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or "
                    "'-', and must start and end with an alphanumeric character (e.g. 'my-name',  or "
                    "'123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
    return errs


def dns1123_subdomain(name: str) -> list[str]:
    errs = []
    if len(name) > 253:
        errs.append("must be no more than 253 characters")
    if not _SUBDOMAIN_RE.match(name):
        errs.append("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
                    "'-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', "
                    "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
    return errs


def dns1035_label(name: str) -> list[str]:
    errs = []
    if len(name) > 63:
        errs.append("must be no more than 63 characters")
    if not _DNS1035_RE.match(name):
        errs.append("a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
                    "start with an alphabetic character, and end with an alphanumeric character (e.g. "
                    "'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')")
    return errs


def path_segment_name(name: str) -> list[str]:
    """RBAC objects only need to be usable as a URL path segment."""
    if name in (".", ".."):
        return [f"may not be '{name}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in name]


def qualified_name(key: str) -> list[str]:
    prefix, _, name = key.rpartition("/")
    errs = []
    if "/" in key and (not prefix or dns1123_subdomain(prefix)):
        errs.append("prefix part must be a lowercase RFC 1123 subdomain")
    if not name or len(name) > 63 or not _QUALIFIED_NAME_RE.match(name):
        errs.append("name part must consist of alphanumeric characters, '-', '_' or '.', and must "
                    "start and end with an alphanumeric character, at most 63 characters")
    return errs


def validate_labels(labels: Any, field_path: str) -> list[Cause]:
    if labels is None:
        return []
    if not isinstance(labels, dict):
        return [invalid_value(field_path, labels, "must be a map of strings")]
    causes = []
    for key, value in labels.items():
        for msg in qualified_name(str(key)):
            causes.append(invalid_value(field_path, key, msg))
        if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE_RE.match(value):
            causes.append(invalid_value(f"{field_path}", value,
                                        "a valid label must be an empty string or consist of "
                                        "alphanumeric characters, '-', '_' or '.', at most 63 "
                                        "characters"))
    return causes


def validate_annotations(annotations: Any, field_path: str) -> list[Cause]:
    if annotations is None:
        return []
    if not isinstance(annotations, dict):
        return [invalid_value(field_path, annotations, "must be a map of strings")]
    causes = []
    total = 0
    for key, value in annotations.items():
        for msg in qualified_name(str(key).lower()):
            causes.append(invalid_value(field_path, key, msg))
        if not isinstance(value, str):
            causes.append(invalid_value(f"{field_path}[{key}]", value, "must be a string"))
        else:
            total += len(key) + len(value)
    if total > 256 * 1024:
        causes.append(cause("FieldValueTooLong", field_path, "Too long: must have at most 262144 bytes"))
    return causes


# --- small dict helpers -------------------------------------------------------------------------

def without(obj: Mapping[str, Any], *keys: str) -> JSON:
    return {k: v for k, v in obj.items() if k not in keys}


def get_path(obj: Any, path: str) -> Any:
    """Follow a dotted path (``spec.replicas``); None when any step is missing."""
    for part in path.strip(".").split("."):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def set_path(obj: JSON, path: str, value: Any) -> None:
    parts = path.strip(".").split(".")
    for part in parts[:-1]:
        nxt = obj.get(part)
        if not isinstance(nxt, dict):
            nxt = {}
            obj[part] = nxt
        obj = nxt
    obj[parts[-1]] = value


# --- strategies ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class ScaleSpec:
    """Where a resource keeps what the autoscaling/v1 Scale subresource shows (JSON paths)."""

    spec_replicas: str = "spec.replicas"
    status_replicas: str = "status.replicas"
    label_selector: str | None = "status.selector"   # a string selector, or a LabelSelector at spec


class Strategy:
    """Defaults, validation and update rules for one resource. Subclasses override hooks.

    Hooks receive objects the caller owns (deep copies); they mutate them in place.
    """

    #: objects have a status subresource: the main endpoint keeps the old status on update and
    #: drops it on create (unless ``keep_status_on_create``); /status changes only status.
    has_status = False
    keep_status_on_create = False
    generation = NO_GENERATION
    #: PUT on a missing object creates it (Endpoints, as upstream).
    allow_create_on_update = False
    #: PUT without metadata.resourceVersion is accepted (false for custom resources, as upstream).
    allow_unconditional_update = True
    #: DELETE answers with the object rather than a Success Status (pods, CRs, namespaces...).
    return_deleted_object = False
    name_validator: Callable[[str], list[str]] = staticmethod(dns1123_subdomain)
    #: field selector names beyond metadata.name/namespace, mapped to dotted paths in the object.
    selectable_fields: Mapping[str, str] = {}
    scale: ScaleSpec | None = None
    #: metadata keys a /status write cannot change (they keep the stored value). Upstream, most
    #: status strategies only reset ``spec`` (pkg/registry/core/service/strategy.go and friends),
    #: so label, annotation, finalizer and ownerReference changes sent to /status persist; a few
    #: reset more (deployments: labels; pods: ownerReferences; CRDs: labels, annotations,
    #: ownerReferences). None resets all of metadata, as custom resources do
    #: (apiextensions-apiserver/pkg/registry/customresource/status_strategy.go).
    status_reset_metadata: tuple[str, ...] | None = ()

    def prepare_for_create(self, obj: JSON) -> None:
        """Reset what a client may not set on create, and apply defaults."""
        if self.has_status and not self.keep_status_on_create:
            obj.pop("status", None)
        self.default(obj)

    def default(self, obj: JSON) -> None:
        """Fill in defaults the real API server's defaulting functions apply."""

    def create_failed(self, obj: JSON) -> None:
        """Undo side effects of ``prepare_for_create`` (allocations) when the create is rejected."""

    def validate(self, obj: JSON) -> list[Cause]:
        return []

    def prepare_for_update(self, new: JSON, old: JSON) -> None:
        """Main endpoint: status changes are ignored when there is a status subresource."""
        if self.has_status:
            if "status" in old:
                new["status"] = copy.deepcopy(old["status"])
            else:
                new.pop("status", None)
        self.default(new)

    def validate_update(self, new: JSON, old: JSON) -> list[Cause]:
        return self.validate(new)

    def prepare_for_status_update(self, new: JSON, old: JSON) -> JSON:
        """/status: everything outside metadata and ``status`` comes from ``old``; metadata comes
        from ``new`` except the keys in ``status_reset_metadata`` (all of it when that is None).

        Returns the object to store. The generic store then restores the system fields (uid,
        generation, timestamps...) and the resourceVersion, as ``rest.BeforeUpdate`` does for
        every subresource.
        """
        result: JSON = {}
        for key, value in old.items():
            if key == "metadata":
                result[key] = self._status_metadata(new.get("metadata") or {}, value)
            elif key != "status":
                result[key] = copy.deepcopy(value)
        if "status" in new:
            result["status"] = new["status"]
        return result

    def _status_metadata(self, new_meta: JSON, old_meta: JSON) -> JSON:
        reset = self.status_reset_metadata
        if reset is None:
            return copy.deepcopy(old_meta)
        meta = dict(new_meta)
        for key in reset:
            if key in old_meta:
                meta[key] = copy.deepcopy(old_meta[key])
            else:
                meta.pop(key, None)
        return meta

    def validate_status_update(self, new: JSON, old: JSON) -> list[Cause]:
        return []

    def spec_changed(self, new: JSON, old: JSON) -> bool:
        """Whether an update bumps metadata.generation."""
        if self.generation == NO_GENERATION:
            return False
        skip = ("metadata", "status", "apiVersion", "kind") if self.generation == SPEC_GENERATION \
            else ("metadata", "apiVersion", "kind")
        return without(new, *skip) != without(old, *skip)

    def field_value(self, obj: JSON, field_name: str) -> str | None:
        """The string a field selector compares; KeyError when the field is not selectable."""
        meta = obj.get("metadata", {})
        if field_name == "metadata.name":
            return str(meta.get("name", ""))
        if field_name == "metadata.namespace":
            return str(meta.get("namespace", ""))
        path = self.selectable_fields[field_name]
        value = get_path(obj, path)
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)


@dataclass
class ServedResource:
    """One resource at one group/version, as discovery and routing see it."""

    group: str
    version: str
    resource: str
    kind: str
    namespaced: bool
    strategy: Strategy
    singular: str = ""
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    subresources: tuple[str, ...] = ()
    #: where the objects live; shared by every version of a resource (and core/events.k8s.io events)
    storage: tuple[str, str] = ("", "")
    #: for custom resources: the CRD's additionalPrinterColumns for this version (None: defaults)
    printer_columns: list[JSON] | None = None
    #: for custom resources: the version's schema validator (CRDVersionSchema) or None
    schema: Any = None
    #: converts a stored object into this version's shape (and back with ``to_storage``)
    from_storage: Callable[[JSON], JSON] | None = None
    to_storage: Callable[[JSON], JSON] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.singular:
            self.singular = self.kind.lower()
        if self.storage == ("", ""):
            self.storage = (self.group, self.resource)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    def has_subresource(self, name: str) -> bool:
        return name in self.subresources
