"""OpenAPI documents of what the emulator serves: ``/openapi/v2`` and ``/openapi/v3``.

kubectl reads them for client-side apply's strategic merge patches, for ``explain``, and to learn
that the server validates fields itself (``fieldValidation`` on the PATCH operation of the kind's
path, cli-runtime's query_param_verifier_v3.go), which is what lets its default
``--validate=strict`` work. kube-apiserver builds them from the Go types (kube-openapi); the
emulator builds the built-in kinds' schemas from the official Python client's model classes
(their ``openapi_types``/``attribute_map`` and field descriptions) plus the list semantics table
the strategic merge patch uses, and the custom resources' schemas from each CRD version's
structural schema, as apiextensions-apiserver does (``pkg/controller/openapi/builder``).

Definitions are named as upstream names them (``io.k8s.api.apps.v1.Deployment``; a custom
resource is its reversed group, version and kind: ``com.example.v1.Widget``). The documents are
rebuilt only when the set of served resources changes (a CRD established, updated or removed).
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import threading
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from rook_py.framework.kube.lists import list_semantics

from .registry import Registry, ServedResource

JSON = dict[str, Any]

META = "io.k8s.apimachinery.pkg.apis.meta.v1"
OBJECT_META = f"{META}.ObjectMeta"
INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
#: the classes of meta/v1 the client names with a plain version prefix
_META_TYPES = frozenset({"ObjectMeta", "ListMeta", "LabelSelector", "LabelSelectorRequirement", "OwnerReference",
                         "ManagedFieldsEntry", "Condition", "Status", "StatusDetails", "StatusCause",
                         "DeleteOptions", "Preconditions", "Time", "MicroTime"})
_APIEXTENSIONS = "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1"
_SCALARS: dict[str, JSON] = {
    "str": {"type": "string"}, "int": {"type": "integer"}, "bool": {"type": "boolean"},
    "float": {"type": "number", "format": "double"}, "datetime": {"type": "string", "format": "date-time"},
    "date": {"type": "string", "format": "date"}, "bytes": {"type": "string", "format": "byte"},
    "object": {"type": "object"},
}
_PREFIX = re.compile(r"^(?P<group>[A-Z][a-z]+)?(?P<version>V\d+(?:alpha\d+|beta\d+)?)(?P<name>[A-Z]\w*)$")
#: structs and maps kube-openapi publishes with ``x-kubernetes-map-type: atomic`` (``+structType=atomic``
#: / ``+mapType=atomic`` in k8s.io/api v0.28): server-side apply owns them as one leaf
_ATOMIC_STRUCTS = frozenset({
    "io.k8s.api.core.v1.ConfigMapKeySelector", "io.k8s.api.core.v1.EndpointAddress",
    "io.k8s.api.core.v1.EndpointPort", "io.k8s.api.core.v1.LocalObjectReference", "io.k8s.api.core.v1.NodeSelector",
    "io.k8s.api.core.v1.NodeSelectorTerm", "io.k8s.api.core.v1.ObjectFieldSelector",
    "io.k8s.api.core.v1.ObjectReference", "io.k8s.api.core.v1.ResourceFieldSelector",
    "io.k8s.api.core.v1.ScopeSelector", "io.k8s.api.core.v1.SecretKeySelector", "io.k8s.api.core.v1.SecretReference",
    "io.k8s.api.core.v1.TopologySelectorTerm", "io.k8s.api.core.v1.TypedLocalObjectReference",
    "io.k8s.api.rbac.v1.RoleRef", "io.k8s.api.rbac.v1.Subject", f"{META}.LabelSelector", f"{META}.OwnerReference"})
_ATOMIC_MAP_FIELDS = frozenset({("io.k8s.api.core.v1.PodSpec", "nodeSelector"),
                                ("io.k8s.api.core.v1.ServiceSpec", "selector")})
#: defaults of list map keys (server-side apply keys an item that omits one by its default)
_KEY_DEFAULTS: dict[tuple[str, str], Any] = {("io.k8s.api.core.v1.ContainerPort", "protocol"): "TCP",
                                             ("io.k8s.api.core.v1.ServicePort", "protocol"): "TCP"}
#: the list table (rook_py.framework.kube.lists) answers by (kind, field path); a definition
#: that holds lists is looked up through one path that reaches it (the table's rules say in
#: which parent, kind or path they hold)
_REPRESENTATIVE_PATH: dict[str, tuple[str | None, tuple[str, ...]]] = {
    "io.k8s.api.core.v1.Container": (None, ("spec", "containers")),
    "io.k8s.api.core.v1.EphemeralContainer": (None, ("spec", "ephemeralContainers")),
    "io.k8s.api.core.v1.PodSpec": (None, ("spec",)),
    "io.k8s.api.core.v1.ResourceRequirements": (None, ("spec", "containers", "resources")),
    f"{META}.ObjectMeta": (None, ("metadata",)),
    "io.k8s.api.core.v1.ServiceSpec": ("Service", ("spec",)),
    "io.k8s.api.core.v1.NodeSpec": ("Node", ("spec",)),
    "io.k8s.api.core.v1.ServiceAccount": ("ServiceAccount", ()),
    "io.k8s.api.admissionregistration.v1.MutatingWebhookConfiguration": ("MutatingWebhookConfiguration", ()),
    "io.k8s.api.admissionregistration.v1.ValidatingWebhookConfiguration": ("ValidatingWebhookConfiguration", ()),
    "io.k8s.api.admissionregistration.v1.MutatingWebhook": ("MutatingWebhookConfiguration", ("webhooks",)),
    "io.k8s.api.admissionregistration.v1.ValidatingWebhook": ("ValidatingWebhookConfiguration", ("webhooks",)),
}


def _representative_path(definition: str) -> tuple[str | None, tuple[str, ...]]:
    known = _REPRESENTATIVE_PATH.get(definition)
    if known is not None:
        return known
    short = definition.rsplit(".", 1)[-1]
    if short.endswith("Status"):  # DeploymentStatus: the status of a Deployment
        return short[: -len("Status")], ("status",)
    return None, ("spec",)


def _group_package(group: str, version: str) -> str:
    if group == "":
        return f"io.k8s.api.core.{version}"
    if group == "apiextensions.k8s.io":
        return _APIEXTENSIONS
    return f"io.k8s.api.{group.split('.')[0]}.{version}"


def model_class(group: str, version: str, kind: str) -> type | None:
    """The official client's model class of a built-in kind (``V1Deployment``, ``CoreV1Event``)."""
    import kubernetes.client.models as models

    ver = version[:1].upper() + version[1:]
    prefix = (group.split(".")[0] or "core").capitalize()
    for name in (f"{prefix}{ver}{kind}", f"{ver}{kind}"):
        cls = getattr(models, name, None)
        if isinstance(getattr(cls, "openapi_types", None), dict):
            return cls
    return None


class _BuiltinBuilder:
    """Walks model classes into kube-openapi-shaped definitions (v2 form: ``#/definitions/``)."""

    def __init__(self) -> None:
        import kubernetes.client.models as models

        self.models = models
        self.definitions: dict[str, JSON] = {}
        self.names: dict[str, str] = {}  # python class name -> definition name

    def name_of(self, class_name: str, package: str) -> str:
        known = self.names.get(class_name)
        if known is not None:
            return known
        m = _PREFIX.match(class_name)
        short = m.group("name") if m else class_name
        version = m.group("version").lower() if m else "v1"
        if m and m.group("group"):
            package = _group_package("" if m.group("group") == "Core" else m.group("group").lower(), version)
        elif short in _META_TYPES:
            package = f"io.k8s.apimachinery.pkg.apis.meta.{version}"
        elif short.startswith(("CustomResource", "JSONSchemaProps", "ExternalDocumentation", "WebhookC",
                               "ServiceReference", "ValidationRule", "SelectableField")) and package == _APIEXTENSIONS:
            package = _APIEXTENSIONS
        name = f"{package}.{short}"
        self.names[class_name] = name
        return name

    def add(self, class_name: str, package: str, gvk: JSON | None = None) -> str:
        name = self.name_of(class_name, package)
        if name in self.definitions:
            if gvk is not None:
                self.definitions[name].setdefault("x-kubernetes-group-version-kind", []).append(gvk)
            return name
        cls = getattr(self.models, class_name)
        own_package = name.rsplit(".", 1)[0]
        schema: JSON = {"type": "object"}
        self.definitions[name] = schema  # before recursing: types refer to themselves (JSONSchemaProps)
        doc = _class_description(cls)
        if doc:
            schema["description"] = doc
        fields = getattr(cls, "model_fields", {})
        props: JSON = {}
        required: list[str] = []
        for attr, type_str in cls.openapi_types.items():
            json_name = cls.attribute_map[attr]
            info = fields.get(attr)
            prop = self._type(type_str, own_package, info)
            extensions = self._list_extensions(name, json_name, type_str)
            prop.update(extensions)
            if (name, json_name) in _ATOMIC_MAP_FIELDS:
                prop["x-kubernetes-map-type"] = "atomic"
            if (name, json_name) in _KEY_DEFAULTS:
                prop["default"] = _KEY_DEFAULTS[(name, json_name)]
            description = getattr(info, "description", None)
            if description:
                prop = {"description": description, **prop}
            props[json_name] = prop
            if info is not None and getattr(info, "is_required", lambda: False)():
                required.append(json_name)
        if props:
            schema["properties"] = props
        if required:
            schema["required"] = sorted(required)
        if gvk is not None:
            schema["x-kubernetes-group-version-kind"] = [gvk]
        if name in _ATOMIC_STRUCTS:
            schema["x-kubernetes-map-type"] = "atomic"
        return name

    def _type(self, type_str: str, package: str, info: Any) -> JSON:
        if type_str in _SCALARS:
            if type_str == "object" and _is_int_or_string(info):
                self.definitions.setdefault(INT_OR_STRING, {"type": "string", "format": "int-or-string"})
                return {"$ref": f"#/definitions/{INT_OR_STRING}"}
            if type_str == "object":
                return {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
            return dict(_SCALARS[type_str])
        if type_str.startswith(("List[", "list[")):
            return {"type": "array", "items": self._type(type_str[5:-1], package, None)}
        if type_str.startswith(("Dict[", "dict(")):
            inner = type_str[5:-1].split(",", 1)[1].strip()
            return {"type": "object", "additionalProperties": self._type(inner, package, None)}
        return {"$ref": f"#/definitions/{self.add(type_str, package)}"}

    @staticmethod
    def _list_extensions(definition: str, field: str, type_str: str) -> JSON:
        """The list's merge semantics from the one table (kube.lists): the strategic-merge-patch
        metadata kubectl reads, and the list type server-side apply uses, spelled out."""
        if not type_str.startswith(("List[", "list[")):
            return {}
        kind, base = _representative_path(definition)
        semantics = list_semantics(kind, (*base, field))
        out: JSON = {}
        if semantics.patch_merges:
            out["x-kubernetes-patch-strategy"] = semantics.patch_strategy
            if semantics.patch_merge_key:
                out["x-kubernetes-patch-merge-key"] = semantics.patch_merge_key
        if semantics.list_type != "atomic" or semantics.patch_merges:
            out["x-kubernetes-list-type"] = semantics.list_type
            if semantics.list_type == "map":
                out["x-kubernetes-list-map-keys"] = list(semantics.map_keys)
        return out


def _is_int_or_string(info: Any) -> bool:
    text = repr(getattr(info, "annotation", ""))
    return "int" in text and "str" in text


def _class_description(cls: type) -> str:
    doc = (cls.__doc__ or "").strip()
    first = doc.split("\n\n", 1)[0].strip()
    return "" if first.startswith(("Attributes:", "NOTE:")) else " ".join(first.split())


@lru_cache(maxsize=1)
def _builtin_definitions(kinds: tuple[tuple[str, str, str], ...]) -> dict[str, JSON]:
    builder = _BuiltinBuilder()
    # core first: the types shared by every workload (PodSpec, Container...) belong to core/v1
    for group, version, kind in sorted(kinds, key=lambda k: (k[0] != "", k)):
        cls = model_class(group, version, kind)
        if cls is not None:
            builder.add(cls.__name__, _group_package(group, version),
                        {"group": group, "version": version, "kind": kind})
    builder.add("V1DeleteOptions", f"{META}")
    builder.add("V1Status", f"{META}")
    return builder.definitions


def builtin_definition_name(sr: ServedResource) -> str | None:
    cls = model_class(sr.group, sr.version, sr.kind)
    if cls is None:
        return None
    return _BuiltinBuilder().name_of(cls.__name__, _group_package(sr.group, sr.version))


def _reversed_group(group: str) -> str:
    return ".".join(reversed(group.split(".")))


def custom_definition_name(sr: ServedResource) -> str:
    return f"{_reversed_group(sr.group)}.{sr.version}.{sr.kind}"


def _custom_definition(sr: ServedResource) -> JSON:
    """A CRD version's structural schema as apiextensions-apiserver publishes it: metadata is
    ObjectMeta, apiVersion and kind described, the GVK extension added."""
    raw = sr.schema.schema if sr.schema is not None else {"type": "object",
                                                           "x-kubernetes-preserve-unknown-fields": True}
    schema: JSON = copy.deepcopy(dict(raw))
    props = schema.setdefault("properties", {})
    props["apiVersion"] = {"type": "string", "description": _API_VERSION_DOC}
    props["kind"] = {"type": "string", "description": _KIND_DOC}
    props["metadata"] = {"$ref": f"#/definitions/{OBJECT_META}", "description": _METADATA_DOC}
    schema.setdefault("type", "object")
    schema["x-kubernetes-group-version-kind"] = [{"group": sr.group, "version": sr.version, "kind": sr.kind}]
    return schema


_API_VERSION_DOC = ("APIVersion defines the versioned schema of this representation of an object. Servers should "
                    "convert recognized schemas to the latest internal value, and may reject unrecognized values.")
_KIND_DOC = ("Kind is a string value representing the REST resource this object represents. Servers may infer "
             "this from the endpoint the client submits requests to. Cannot be updated. In CamelCase.")
_METADATA_DOC = "Standard object's metadata."

_QUERY_PARAMS = {
    "dryRun": ("string", "When present, indicates that modifications should not be persisted."),
    "fieldManager": ("string", "fieldManager is a name associated with the actor or entity that is making these "
                               "changes. It is required for apply requests (application/apply-patch)."),
    "fieldValidation": ("string", "fieldValidation instructs the server on how to handle objects in the request "
                                  "(POST/PUT/PATCH) containing unknown or duplicate fields: Ignore, Warn or Strict."),
    "force": ("boolean", "Force is going to \"force\" Apply requests: the caller re-acquires fields owned by "
                         "other managers."),
}
_PATCH_TYPES_BUILTIN = ("application/apply-patch+yaml", "application/json-patch+json",
                        "application/merge-patch+json", "application/strategic-merge-patch+json")
_PATCH_TYPES_CUSTOM = ("application/apply-patch+yaml", "application/json-patch+json",
                       "application/merge-patch+json")


class Documents:
    """The OpenAPI documents for one registry, rebuilt when its served resources change."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._lock = threading.Lock()
        self._key: tuple[int, ...] | None = None
        self._definitions: dict[str, JSON] = {}
        self._kind_definition: dict[tuple[str, str, str], str] = {}
        self._v2: bytes = b""
        self._v3: dict[str, bytes] = {}

    # -- building --------------------------------------------------------------------------------

    def _refresh(self) -> None:
        served = self.registry.all()
        key = tuple(sorted(id(r) for r in served))
        with self._lock:
            if key == self._key:
                return
            builtins = tuple(sorted((r.group, r.version, r.kind) for r in served if not r.extra.get("crd")))
            definitions = dict(_builtin_definitions(builtins))
            kind_definition: dict[tuple[str, str, str], str] = {}
            for r in served:
                if r.extra.get("crd"):
                    name = custom_definition_name(r)
                    definitions[name] = _custom_definition(r)
                else:
                    maybe = builtin_definition_name(r)
                    if maybe is None or maybe not in definitions:
                        continue
                    name = maybe
                kind_definition[(r.group, r.version, r.kind)] = name
            self._definitions = definitions
            self._kind_definition = kind_definition
            self._v2 = json.dumps(self._v2_document(served), separators=(",", ":")).encode()
            self._v3 = {}
            for gv, members in _by_group_version(served).items():
                self._v3[gv] = json.dumps(self._v3_document(members), separators=(",", ":")).encode()
            self._key = key

    def definitions(self) -> dict[str, JSON]:
        """Every definition, v2 form (refs ``#/definitions/...``)."""
        self._refresh()
        return self._definitions

    def definition_of(self, sr: ServedResource) -> str | None:
        self._refresh()
        return self._kind_definition.get((sr.group, sr.version, sr.kind))

    def _closure(self, roots: Iterable[str]) -> dict[str, JSON]:
        """The named definitions and every definition they refer to."""
        out: dict[str, JSON] = {}
        todo = [r for r in roots if r in self._definitions]
        while todo:
            name = todo.pop()
            if name in out:
                continue
            out[name] = self._definitions[name]
            todo.extend(ref for ref in _refs(out[name]) if ref not in out and ref in self._definitions)
        return dict(sorted(out.items()))

    def _paths(self, members: list[ServedResource], ref: str) -> JSON:
        paths: JSON = {}
        for sr in sorted(members, key=lambda r: r.resource):
            definition = self._kind_definition.get((sr.group, sr.version, sr.kind))
            if definition is None:
                continue
            gvk = {"group": sr.group, "version": sr.version, "kind": sr.kind}
            base = f"/api/{sr.version}" if not sr.group else f"/apis/{sr.group}/{sr.version}"
            collection = f"{base}/namespaces/{{namespace}}/{sr.resource}" if sr.namespaced else f"{base}/{sr.resource}"
            custom = bool(sr.extra.get("crd"))
            body = {"$ref": f"{ref}{definition}"}
            paths[collection] = {
                "get": _operation("list", sr, gvk, body, ()),
                "post": _operation("create", sr, gvk, body, ("dryRun", "fieldManager", "fieldValidation")),
            }
            item = {
                "get": _operation("read", sr, gvk, body, ()),
                "put": _operation("replace", sr, gvk, body, ("dryRun", "fieldManager", "fieldValidation")),
                "patch": _operation("patch", sr, gvk, body, ("dryRun", "fieldManager", "fieldValidation", "force"),
                                    _PATCH_TYPES_CUSTOM if custom else _PATCH_TYPES_BUILTIN),
                "delete": _operation("delete", sr, gvk, body, ("dryRun",)),
            }
            paths[f"{collection}/{{name}}"] = item
            if "status" in sr.subresources:
                paths[f"{collection}/{{name}}/status"] = copy.deepcopy({k: item[k] for k in ("get", "put", "patch")})
        return paths

    def _v2_document(self, served: list[ServedResource]) -> JSON:
        from .discovery import KUBE_VERSION

        return {"swagger": "2.0", "info": {"title": "Kubernetes", "version": KUBE_VERSION["gitVersion"]},
                "paths": self._v2_paths(served), "definitions": dict(sorted(self._definitions.items()))}

    def _v2_paths(self, served: list[ServedResource]) -> JSON:
        paths = self._paths(served, "#/definitions/")
        for ops in paths.values():
            for op in ops.values():
                _to_v2_operation(op)
        return paths

    def _v3_document(self, members: list[ServedResource]) -> JSON:
        from .discovery import KUBE_VERSION

        roots = [self._kind_definition[(r.group, r.version, r.kind)] for r in members
                 if (r.group, r.version, r.kind) in self._kind_definition]
        schemas = {name: to_v3_schema(s) for name, s in self._closure([*roots, f"{META}.Patch"]).items()}
        schemas.setdefault(f"{META}.Patch", {"type": "object", "description": "Patch is provided to give a "
                                             "concrete name and type to the Kubernetes PATCH request body."})
        return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": KUBE_VERSION["gitVersion"]},
                "paths": self._paths(members, "#/components/schemas/"), "components": {"schemas": schemas}}

    # -- serving ---------------------------------------------------------------------------------

    def v2(self) -> bytes:
        self._refresh()
        return self._v2

    def v3_index(self) -> JSON:
        self._refresh()
        return {"paths": {gv: {"serverRelativeURL": f"/openapi/v3/{gv}?hash={_hash(doc)}"}
                          for gv, doc in sorted(self._v3.items())}}

    def v3(self, group_version_path: str) -> bytes | None:
        self._refresh()
        return self._v3.get(group_version_path)


def _hash(doc: bytes) -> str:
    return hashlib.sha512(doc).hexdigest().upper()


def _by_group_version(served: list[ServedResource]) -> dict[str, list[ServedResource]]:
    out: dict[str, list[ServedResource]] = {}
    for r in served:
        key = f"api/{r.version}" if not r.group else f"apis/{r.group}/{r.version}"
        out.setdefault(key, []).append(r)
    return out


def _refs(schema: Any) -> Iterable[str]:
    if isinstance(schema, dict):
        for k, v in schema.items():
            if k == "$ref" and isinstance(v, str):
                yield v.rsplit("/", 1)[-1]
            else:
                yield from _refs(v)
    elif isinstance(schema, list):
        for v in schema:
            yield from _refs(v)


def to_v3_schema(schema: Any) -> Any:
    """v2 form to v3 form: refs point into ``components/schemas``; a ref with siblings (a
    description) becomes ``allOf: [ref]``, as kube-openapi's v3 builder writes it."""
    if isinstance(schema, list):
        return [to_v3_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: to_v3_schema(v) for k, v in schema.items() if k != "$ref"}
    ref = schema.get("$ref")
    if isinstance(ref, str):
        target = "#/components/schemas/" + ref.rsplit("/", 1)[-1]
        if out:
            out["allOf"] = [{"$ref": target}]
        else:
            out["$ref"] = target
    return out


def _operation(action: str, sr: ServedResource, gvk: JSON, body: JSON, params: tuple[str, ...],
               patch_types: tuple[str, ...] = ()) -> JSON:
    kind = sr.kind
    scope = "Namespaced" if sr.namespaced else ""
    group = "".join(p.capitalize() for p in (sr.group.split(".")[0] or "core").split("-"))
    op: JSON = {
        "description": f"{action} the specified {kind}",
        "operationId": f"{action}{group}{sr.version.capitalize()}{scope}{kind}",
        "parameters": [{"name": p, "in": "query", "description": _QUERY_PARAMS[p][1],
                        "schema": {"type": _QUERY_PARAMS[p][0], "uniqueItems": True}} for p in params],
        "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": body}}}},
        "x-kubernetes-action": {"read": "get", "replace": "put", "create": "post"}.get(action, action),
        "x-kubernetes-group-version-kind": gvk,
    }
    if action in ("create", "replace"):
        op["requestBody"] = {"content": {"*/*": {"schema": body}}, "required": True}
    if patch_types:
        patch_ref = {"$ref": body["$ref"].rsplit("/", 1)[0] + f"/{META}.Patch"}
        op["requestBody"] = {"content": {t: {"schema": patch_ref} for t in patch_types}, "required": True}
    return op


def _to_v2_operation(op: JSON) -> None:
    """The v3 operation shape (requestBody, schema-typed parameters) in v2 form."""
    params = []
    for p in op.get("parameters", []):
        params.append({"name": p["name"], "in": p["in"], "description": p["description"],
                       "type": p["schema"]["type"], "uniqueItems": True})
    body = op.pop("requestBody", None)
    if body is not None:
        content = body["content"]
        op["consumes"] = list(content)
        params.insert(0, {"name": "body", "in": "body", "required": True,
                          "schema": next(iter(content.values()))["schema"]})
    op["parameters"] = params
    response = op["responses"]["200"]
    op["responses"] = {"200": {"description": "OK", "schema": response["content"]["application/json"]["schema"]}}
    op["produces"] = ["application/json", "application/yaml", "application/vnd.kubernetes.protobuf"]


# --- gnostic protobuf (what kubectl asks /openapi/v2 for) ---------------------------------------
# Field numbers of github.com/google/gnostic-models openapiv2/OpenAPIv2.proto; only the parts a
# client reads from kube-apiserver's document are encoded: swagger, info, definitions (schemas
# with their vendor extensions). Paths are left out: kubectl learns what the server supports
# from the v3 documents.

def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _string(number: int, value: str) -> bytes:
    return _field(number, value.encode()) if value else b""


def _bool(number: int, value: bool) -> bytes:
    return _varint(number << 3) + b"\x01" if value else b""


def _int(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value & (2**64 - 1)) if value else b""


def _double(number: int, value: float) -> bytes:
    import struct

    return _varint(number << 3 | 1) + struct.pack("<d", float(value))


def _any(value: Any) -> bytes:
    import yaml

    return _string(2, yaml.safe_dump(value, default_flow_style=True).strip() if not isinstance(value, str)
                   else json.dumps(value))


def _named(number: int, name: str, payload: bytes) -> bytes:
    return _field(number, _string(1, name) + _field(2, payload))


def _schema_pb(schema: JSON) -> bytes:
    out = b""
    out += _string(1, schema.get("$ref", ""))
    out += _string(2, schema.get("format", ""))
    out += _string(3, schema.get("title", ""))
    out += _string(4, schema.get("description", ""))
    if "default" in schema:
        out += _field(5, _any(schema["default"]))
    for number, key in ((7, "maximum"), (9, "minimum")):
        if isinstance(schema.get(key), (int, float)):
            out += _double(number, schema[key])
    for number, key in ((11, "maxLength"), (12, "minLength"), (14, "maxItems"), (15, "minItems"),
                        (17, "maxProperties"), (18, "minProperties")):
        if isinstance(schema.get(key), int):
            out += _int(number, schema[key])
    out += _string(13, schema.get("pattern", ""))
    out += b"".join(_string(19, r) for r in schema.get("required") or [])
    out += b"".join(_field(20, _any(e)) for e in schema.get("enum") or [])
    additional = schema.get("additionalProperties")
    if isinstance(additional, dict):
        out += _field(21, _field(1, _schema_pb(additional)))
    elif isinstance(additional, bool):
        out += _field(21, _bool(2, additional) or _varint(2 << 3) + b"\x00")
    if isinstance(schema.get("type"), str):
        out += _field(22, _string(1, schema["type"]))
    items = schema.get("items")
    if isinstance(items, dict):
        out += _field(23, _field(1, _schema_pb(items)))
    out += b"".join(_field(24, _schema_pb(s)) for s in schema.get("allOf") or [] if isinstance(s, dict))
    props = schema.get("properties")
    if isinstance(props, dict):
        out += _field(25, b"".join(_named(1, k, _schema_pb(v)) for k, v in props.items() if isinstance(v, dict)))
    for key, value in schema.items():
        if key.startswith("x-"):
            out += _named(31, key, _any(value))
    return out


def openapi_v2_protobuf(document: bytes) -> bytes:
    """The v2 document (JSON bytes) as a gnostic ``openapi_v2.Document`` message."""
    doc = json.loads(document)
    info = doc.get("info", {})
    out = _string(1, doc.get("swagger", "2.0"))
    out += _field(2, _string(1, info.get("title", "")) + _string(2, info.get("version", "")))
    out += _field(9, b"".join(_named(1, name, _schema_pb(s)) for name, s in doc.get("definitions", {}).items()))
    return out
