"""What apiextensions-apiserver checks when a CRD is created or updated:
pkg/apis/apiextensions/validation/validation.go -- names, group, scope, versions, structural
schema rules, defaults that validate, printer columns, scale subresource paths.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from rook_py.envtest.apiserver.jsonpath import compile_path

from .defaulting import copy_json
from .fielderrors import (
    DUPLICATE,
    FORBIDDEN,
    INVALID,
    NOT_SUPPORTED,
    REQUIRED,
    Cause,
    cause,
    supported_values,
)
from .pruning import prune
from .schema import CRDVersionSchema

_DNS1035_RE: Final = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN_RE: Final = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
_KIND_RE: Final = re.compile(r"^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$")
_PRINTER_TYPES: Final = ("integer", "number", "string", "boolean", "date")
_SCHEMA_TYPES: Final = ("array", "boolean", "integer", "number", "object", "string")
_DNS1035_MSG: Final = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "
    "regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)


def _validate_names(names: Mapping[str, Any], path: str, out: list[Cause]) -> None:
    for field in ("plural", "singular"):
        value = names.get(field) or ""
        if not value:
            if field == "plural":
                out.append(cause(REQUIRED, f"{path}.{field}"))
            continue
        if len(value) > 63 or not _DNS1035_RE.match(value):
            out.append(cause(INVALID, f"{path}.{field}", value=value, detail=_DNS1035_MSG))
    for field in ("kind", "listKind"):
        value = names.get(field) or ""
        if not value:
            out.append(cause(REQUIRED, f"{path}.{field}"))
        elif not _KIND_RE.match(value):
            out.append(
                cause(
                    INVALID,
                    f"{path}.{field}",
                    value=value,
                    detail="may have mixed case, but should otherwise match: [a-z]([-a-z0-9]*[a-z0-9])?",
                )
            )
    if names.get("kind") and names.get("kind") == names.get("listKind"):
        out.append(
            cause(
                INVALID,
                f"{path}.listKind",
                value=names["listKind"],
                detail="kind and listKind may not be the same",
            )
        )
    for field in ("shortNames", "categories"):
        for i, value in enumerate(names.get(field) or []):
            if not isinstance(value, str) or not _DNS1035_RE.match(value):
                out.append(cause(INVALID, f"{path}.{field}[{i}]", value=value, detail=_DNS1035_MSG))


def _schema_field(path: str, key: str) -> str:
    return f"{path}.properties[{key}]"


def _validate_structural(
    s: Any, path: str, out: list[Cause], *, is_root: bool, in_value_validation: bool = False, what: str = ""
) -> None:
    """Structural-schema rules: every specified field has a type unless int-or-string or
    preserve-unknown-fields says otherwise; no additionalProperties beside properties or set
    to false; no uniqueItems; defaults that validate against their own schema.
    """
    if not isinstance(s, dict):
        out.append(cause(INVALID, path, value=s, detail="must be an object"))
        return
    t = s.get("type")
    int_or_string = bool(s.get("x-kubernetes-int-or-string"))
    preserve = bool(s.get("x-kubernetes-preserve-unknown-fields"))
    if t is not None and t not in _SCHEMA_TYPES:
        out.append(cause(NOT_SUPPORTED, f"{path}.type", value=t, detail=supported_values(_SCHEMA_TYPES)))
    if is_root:
        if not t:
            out.append(cause(REQUIRED, f"{path}.type", detail="must not be empty at the root"))
        elif t != "object":
            out.append(cause(INVALID, f"{path}.type", value=t, detail="must be object at the root"))
        _validate_root_metadata(s, path, out)
    elif not in_value_validation and not t and not int_or_string and not preserve:
        out.append(cause(REQUIRED, f"{path}.type", detail=f"must not be empty for specified {what}"))
    if int_or_string and t:
        out.append(
            cause(FORBIDDEN, f"{path}.type", detail="must be empty if x-kubernetes-int-or-string is true")
        )
    props = s.get("properties")
    additional = s.get("additionalProperties")
    if props and additional is not None:
        out.append(
            cause(
                FORBIDDEN,
                f"{path}.additionalProperties",
                detail="additionalProperties and properties are mutual exclusive",
            )
        )
    if additional is False:
        out.append(cause(FORBIDDEN, f"{path}.additionalProperties", detail="must not be false"))
    if s.get("uniqueItems"):
        out.append(
            cause(
                FORBIDDEN,
                f"{path}.uniqueItems",
                detail="uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
            )
        )
    if t == "array" and not in_value_validation and "items" not in s:
        out.append(cause(REQUIRED, f"{path}.items", detail="must be specified"))
    pattern = s.get("pattern")
    if isinstance(pattern, str):
        try:
            re.compile(pattern)
        except re.error as exc:
            out.append(
                cause(
                    INVALID,
                    f"{path}.pattern",
                    value=pattern,
                    detail=f"must be a valid regular expression: {exc}",
                )
            )
    if isinstance(props, dict):
        for k, sub in props.items():
            _validate_structural(
                sub,
                _schema_field(path, k),
                out,
                is_root=False,
                in_value_validation=in_value_validation,
                what="object fields",
            )
    if isinstance(additional, dict):
        _validate_structural(
            additional,
            f"{path}.additionalProperties",
            out,
            is_root=False,
            in_value_validation=in_value_validation,
            what="object fields",
        )
    items = s.get("items")
    if isinstance(items, dict):
        _validate_structural(
            items,
            f"{path}.items",
            out,
            is_root=False,
            in_value_validation=in_value_validation,
            what="array items",
        )
    for comb in ("allOf", "anyOf", "oneOf"):
        for i, sub in enumerate(s.get(comb) or []):
            _validate_structural(sub, f"{path}.{comb}[{i}]", out, is_root=False, in_value_validation=True)
    if isinstance(s.get("not"), dict):
        _validate_structural(s["not"], f"{path}.not", out, is_root=False, in_value_validation=True)
    if "default" in s and not in_value_validation:
        _validate_default(s, path, out, is_root)


def _validate_root_metadata(s: Mapping[str, Any], path: str, out: list[Cause]) -> None:
    """ObjectMeta belongs to the apiserver: a root ``metadata`` schema may only be an object
    constraining ``name``/``generateName`` as strings (structural schema rule).
    """
    props = s.get("properties")
    meta = props.get("metadata") if isinstance(props, dict) else None
    if not isinstance(meta, dict):
        return
    mpath = _schema_field(path, "metadata")
    extra = sorted(k for k in meta if k not in ("type", "properties", "description"))
    if meta.get("type", "object") != "object" or extra:
        out.append(
            cause(
                FORBIDDEN,
                mpath,
                detail="must not specify anything other than name and generateName, but metadata is implicitly specified",
            )
        )
    for field, sub in (meta.get("properties") or {}).items():
        if field not in ("name", "generateName"):
            out.append(
                cause(
                    FORBIDDEN,
                    _schema_field(mpath, field),
                    detail="must not be specified, only name and generateName",
                )
            )
        elif isinstance(sub, dict) and sub.get("type", "string") != "string":
            out.append(
                cause(
                    INVALID,
                    f"{_schema_field(mpath, field)}.type",
                    value=sub.get("type"),
                    detail="must be string",
                )
            )


def _validate_default(s: Mapping[str, Any], path: str, out: list[Cause], is_root: bool) -> None:
    if is_root:
        out.append(cause(FORBIDDEN, f"{path}.default", detail="must not be set at the root"))
        return
    default = s["default"]
    # Upstream validates the default as data at the field path of the default itself.
    out.extend(CRDVersionSchema(s).validate(default, root=False, path=f"{path}.default"))
    pruned = _pruned_in_default(s, default)
    if pruned:
        out.append(
            cause(
                INVALID,
                f"{path}.default",
                value=default,
                detail=f"must not have unknown fields: {', '.join(pruned)}",
            )
        )


def _pruned_in_default(s: Mapping[str, Any], default: Any) -> list[str]:
    dropped: list[str] = []
    prune(copy_json(default), s, path="", dropped=dropped)
    return dropped


def _validate_printer_columns(columns: Any, path: str, out: list[Cause]) -> None:
    if not isinstance(columns, list):
        return
    for i, col in enumerate(columns):
        cpath = f"{path}[{i}]"
        if not isinstance(col, dict):
            out.append(cause(INVALID, cpath, value=col, detail="must be an object"))
            continue
        if not col.get("name"):
            out.append(cause(REQUIRED, f"{cpath}.name"))
        if not col.get("type"):
            out.append(cause(REQUIRED, f"{cpath}.type"))
        elif col["type"] not in _PRINTER_TYPES:
            out.append(
                cause(NOT_SUPPORTED, f"{cpath}.type", value=col["type"], detail=supported_values(_PRINTER_TYPES))
            )
        fmt = col.get("format")
        if fmt and fmt not in ("int32", "int64", "float", "double", "byte", "date", "date-time", "password"):
            out.append(
                cause(
                    NOT_SUPPORTED,
                    f"{cpath}.format",
                    value=fmt,
                    detail=supported_values(
                        ("int32", "int64", "float", "double", "byte", "date", "date-time", "password")
                    ),
                )
            )
        jp = col.get("jsonPath")
        if not jp:
            out.append(cause(REQUIRED, f"{cpath}.jsonPath"))
        else:
            try:
                compile_path(jp)
            except ValueError as exc:
                out.append(
                    cause(INVALID, f"{cpath}.jsonPath", value=jp, detail=f"must be a simple json path: {exc}")
                )


def _validate_scale(scale: Any, path: str, out: list[Cause]) -> None:
    if not isinstance(scale, dict):
        return
    spec = scale.get("specReplicasPath")
    if not spec:
        out.append(cause(REQUIRED, f"{path}.specReplicasPath"))
    elif not spec.startswith(".spec."):
        out.append(
            cause(INVALID, f"{path}.specReplicasPath", value=spec, detail="should be a json path under .spec")
        )
    status = scale.get("statusReplicasPath")
    if not status:
        out.append(cause(REQUIRED, f"{path}.statusReplicasPath"))
    elif not status.startswith(".status."):
        out.append(
            cause(
                INVALID,
                f"{path}.statusReplicasPath",
                value=status,
                detail="should be a json path under .status",
            )
        )
    selector = scale.get("labelSelectorPath")
    if selector and not (selector.startswith(".spec.") or selector.startswith(".status.")):
        out.append(
            cause(
                INVALID,
                f"{path}.labelSelectorPath",
                value=selector,
                detail="should be a json path under either .spec or .status",
            )
        )


def validate_crd_definition(crd: Mapping[str, Any]) -> list[Cause]:
    """Everything wrong with a ``apiextensions.k8s.io/v1`` CRD object, as causes."""
    out: list[Cause] = []
    spec: Mapping[str, Any] = crd.get("spec") or {}
    names: Mapping[str, Any] = spec.get("names") or {}
    group = spec.get("group") or ""
    name = (crd.get("metadata") or {}).get("name") or ""

    plural = names.get("plural") or ""
    if name != f"{plural}.{group}":
        out.append(
            cause(INVALID, "metadata.name", value=name, detail='must be spec.names.plural+"."+spec.group')
        )

    if not group:
        out.append(cause(REQUIRED, "spec.group"))
    elif "." not in group:
        out.append(
            cause(INVALID, "spec.group", value=group, detail="should be a domain with at least one dot")
        )
    elif len(group) > 253 or not _DNS1123_SUBDOMAIN_RE.match(group):
        out.append(
            cause(
                INVALID,
                "spec.group",
                value=group,
                detail="a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
                "and must start and end with an alphanumeric character",
            )
        )

    scope = spec.get("scope")
    if not scope:
        out.append(cause(REQUIRED, "spec.scope"))
    elif scope not in ("Cluster", "Namespaced"):
        out.append(
            cause(NOT_SUPPORTED, "spec.scope", value=scope, detail=supported_values(("Cluster", "Namespaced")))
        )

    _validate_names(names, "spec.names", out)

    versions = spec.get("versions")
    if not isinstance(versions, list) or not versions:
        out.append(
            cause(REQUIRED, "spec.versions", detail="must have exactly one version marked as storage version")
        )
        return out
    storage = sum(1 for v in versions if isinstance(v, dict) and v.get("storage"))
    if storage != 1:
        out.append(
            cause(
                INVALID,
                "spec.versions",
                value=versions,
                detail="must have exactly one version marked as storage version",
            )
        )
    seen: set[str] = set()
    for i, version in enumerate(versions):
        vpath = f"spec.versions[{i}]"
        if not isinstance(version, dict):
            out.append(cause(INVALID, vpath, value=version, detail="must be an object"))
            continue
        vname = version.get("name") or ""
        if not vname:
            out.append(cause(REQUIRED, f"{vpath}.name"))
        elif not _DNS1035_RE.match(vname) or len(vname) > 63:
            out.append(cause(INVALID, f"{vpath}.name", value=vname, detail=_DNS1035_MSG))
        elif vname in seen:
            out.append(cause(DUPLICATE, f"{vpath}.name", value=vname))
        seen.add(vname)
        # `served`/`storage` are plain bools upstream: absent decodes as false, not as an error.
        schema = (version.get("schema") or {}).get("openAPIV3Schema")
        spath = f"{vpath}.schema.openAPIV3Schema"
        if schema is None:
            out.append(cause(REQUIRED, spath, detail="schemas are required"))
        else:
            _validate_structural(schema, spath, out, is_root=True)
        _validate_printer_columns(
            version.get("additionalPrinterColumns"), f"{vpath}.additionalPrinterColumns", out
        )
        subresources = version.get("subresources") or {}
        if isinstance(subresources, dict) and "scale" in subresources:
            _validate_scale(subresources["scale"], f"{vpath}.subresources.scale", out)
    return out
