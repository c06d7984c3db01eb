"""Decoding of Kubernetes protobuf request bodies for the few kinds kubectl's generators send.

kubectl's typed clients (``kubectl create configmap|secret|namespace|serviceaccount|role|...``)
POST ``application/vnd.kubernetes.protobuf`` bodies and do not fall back to JSON, so the emulator
reads them. The envelope is the 4-byte magic ``k8s\\0`` followed by a ``runtime.Unknown`` message
(k8s.io/apimachinery/pkg/runtime/types_proto.go); the object inside is the gogo-protobuf encoding
of the versioned Go struct, whose field numbers are in each API group's ``generated.proto``.

Only the kinds listed in ``SCHEMAS`` are understood; anything else is 415 UnsupportedMediaType
(the client can send JSON instead: ``kubectl create -f``/``apply`` always do). Answers are always
JSON, which every client accepts.
"""

from __future__ import annotations

import base64
import datetime
from typing import Any

JSON = dict[str, Any]

MAGIC = b"k8s\x00"

# A field is (json name, type). Types: "string", "int", "bool", "bytes" (JSON base64), "time",
# "map" (map<string,string>), "bmap" (map<string,bytes>), "[]string", or a message name ("Name"
# or "[]Name" for repeated). Fields that Go marshals as pointers keep zero values ("bool?", "int?").
Field = tuple[str, str]

SCHEMAS: dict[str, dict[int, Field]] = {
    # k8s.io/apimachinery/pkg/runtime/generated.proto
    "Unknown": {1: ("typeMeta", "TypeMeta"), 2: ("raw", "raw"), 3: ("contentEncoding", "string"),
                4: ("contentType", "string")},
    "TypeMeta": {1: ("apiVersion", "string"), 2: ("kind", "string")},
    # k8s.io/apimachinery/pkg/apis/meta/v1/generated.proto
    "ObjectMeta": {1: ("name", "string"), 2: ("generateName", "string"), 3: ("namespace", "string"),
                   4: ("selfLink", "string"), 5: ("uid", "string"), 6: ("resourceVersion", "string"),
                   7: ("generation", "int"), 8: ("creationTimestamp", "time"), 9: ("deletionTimestamp", "time"),
                   10: ("deletionGracePeriodSeconds", "int"), 11: ("labels", "map"), 12: ("annotations", "map"),
                   13: ("ownerReferences", "[]OwnerReference"), 14: ("finalizers", "[]string")},
    "OwnerReference": {1: ("kind", "string"), 3: ("name", "string"), 4: ("uid", "string"),
                       5: ("apiVersion", "string"), 6: ("controller", "bool?"), 7: ("blockOwnerDeletion", "bool?")},
    # k8s.io/api/core/v1/generated.proto
    "ConfigMap": {1: ("metadata", "ObjectMeta"), 2: ("data", "map"), 3: ("binaryData", "bmap"),
                  4: ("immutable", "bool?")},
    "Secret": {1: ("metadata", "ObjectMeta"), 2: ("data", "bmap"), 3: ("type", "string"), 4: ("stringData", "map"),
               5: ("immutable", "bool?")},
    "Namespace": {1: ("metadata", "ObjectMeta"), 2: ("spec", "NamespaceSpec"), 3: ("status", "NamespaceStatus")},
    "NamespaceSpec": {1: ("finalizers", "[]string")},
    "NamespaceStatus": {1: ("phase", "string")},
    "ServiceAccount": {1: ("metadata", "ObjectMeta"), 2: ("secrets", "[]ObjectReference"),
                       3: ("imagePullSecrets", "[]LocalObjectReference"),
                       4: ("automountServiceAccountToken", "bool?")},
    "ObjectReference": {1: ("kind", "string"), 2: ("namespace", "string"), 3: ("name", "string"),
                        4: ("uid", "string"), 5: ("apiVersion", "string"), 6: ("resourceVersion", "string"),
                        7: ("fieldPath", "string")},
    "LocalObjectReference": {1: ("name", "string")},
    # k8s.io/api/rbac/v1/generated.proto
    "Role": {1: ("metadata", "ObjectMeta"), 2: ("rules", "[]PolicyRule")},
    "ClusterRole": {1: ("metadata", "ObjectMeta"), 2: ("rules", "[]PolicyRule")},
    "PolicyRule": {1: ("verbs", "[]string"), 2: ("apiGroups", "[]string"), 3: ("resources", "[]string"),
                   4: ("resourceNames", "[]string"), 5: ("nonResourceURLs", "[]string")},
    "RoleBinding": {1: ("metadata", "ObjectMeta"), 2: ("subjects", "[]Subject"), 3: ("roleRef", "RoleRef")},
    "ClusterRoleBinding": {1: ("metadata", "ObjectMeta"), 2: ("subjects", "[]Subject"), 3: ("roleRef", "RoleRef")},
    "Subject": {1: ("kind", "string"), 2: ("apiGroup", "string"), 3: ("name", "string"), 4: ("namespace", "string")},
    "RoleRef": {1: ("apiGroup", "string"), 2: ("kind", "string"), 3: ("name", "string")},
    "Time": {1: ("seconds", "int"), 2: ("nanos", "int")},
    # typed clients send DELETE bodies in protobuf too (meta/v1 generated.proto)
    "DeleteOptions": {1: ("gracePeriodSeconds", "int?"), 2: ("preconditions", "Preconditions"),
                      3: ("orphanDependents", "bool?"), 4: ("propagationPolicy", "string"), 5: ("dryRun", "[]string")},
    "Preconditions": {1: ("uid", "string"), 2: ("resourceVersion", "string")},
}

#: kinds whose top-level object can be decoded
KINDS = frozenset({"ConfigMap", "Secret", "Namespace", "ServiceAccount", "Role", "ClusterRole", "RoleBinding",
                   "ClusterRoleBinding", "DeleteOptions"})


class ProtobufError(ValueError):
    """The body is not a decodable Kubernetes protobuf object (malformed: 400 BadRequest)."""


class UnsupportedKind(ProtobufError):
    """A well-formed envelope around a kind this emulator has no schema for: the server answers
    415, as kube-apiserver does for a body it has no decoder for, so the client sends JSON."""


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ProtobufError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            break
        shift += 7
        if shift > 63:
            raise ProtobufError("varint too long")
    if result >= 1 << 63:  # int64 fields carry negative numbers as 10-byte two's complement
        result -= 1 << 64
    return result, pos


def _fields(data: bytes) -> list[tuple[int, int, Any]]:
    """(field number, wire type, value) in wire order; values are ints or bytes."""
    out = []
    pos = 0
    value: int | bytes
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            length, pos = _varint(data, pos)
            if length < 0 or pos + length > len(data):
                raise ProtobufError("truncated length-delimited field")
            value, pos = data[pos:pos + length], pos + length
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            if pos + size > len(data):
                raise ProtobufError("truncated fixed-size field")
            value, pos = int.from_bytes(data[pos:pos + size], "little"), pos + size
        else:
            raise ProtobufError(f"unsupported wire type {wire}")
        out.append((number, wire, value))
    return out


def _text(value: Any) -> str:
    if not isinstance(value, bytes):
        raise ProtobufError("expected a length-delimited string")
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtobufError("a string field is not valid UTF-8") from None


def _map_entry(value: Any, binary: bool) -> tuple[str, str]:
    entry = {n: v for n, _w, v in _fields(value)}
    raw = entry.get(2, b"")
    return _text(entry.get(1, b"")), base64.b64encode(raw).decode() if binary else _text(raw)


def _time(value: Any) -> str | None:
    t = decode_message("Time", value)
    seconds = int(t.get("seconds", 0))
    if seconds <= 0:  # Go's zero time
        return None
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_SCALAR_KINDS = frozenset({"int", "int?", "bool?"})


def decode_message(name: str, data: bytes) -> JSON:
    """Decode one message to its JSON form, omitting zero values as Go's omitempty does."""
    schema = SCHEMAS[name]
    out: JSON = {}
    for number, _wire, value in _fields(data):
        if number not in schema:
            continue  # a newer field this emulator does not know: dropped, as an older server would
        key, kind = schema[number]
        if isinstance(value, bytes) == (kind in _SCALAR_KINDS):
            raise ProtobufError(f"field {number} of {name} has the wrong wire type")
        if kind == "string":
            if text := _text(value):
                out[key] = text
        elif kind == "int":
            if value:
                out[key] = value
        elif kind == "int?":
            out[key] = value
        elif kind == "bool?":
            out[key] = bool(value)
        elif kind == "raw":
            out[key] = value
        elif kind == "time":
            if (stamp := _time(value)) is not None:
                out[key] = stamp
        elif kind in ("map", "bmap"):
            k, v = _map_entry(value, kind == "bmap")
            out.setdefault(key, {})[k] = v
        elif kind == "[]string":
            out.setdefault(key, []).append(_text(value))
        elif kind.startswith("[]"):
            out.setdefault(key, []).append(decode_message(kind[2:], value))
        else:
            out[key] = decode_message(kind, value)
    return out


def decode_object(body: bytes) -> JSON:
    """Decode an enveloped object; raises UnsupportedKind for a kind without a schema here and
    ProtobufError when the body is malformed."""
    if not body.startswith(MAGIC):
        raise ProtobufError("missing the k8s protobuf magic prefix")
    unknown = decode_message("Unknown", body[len(MAGIC):])
    type_meta = unknown.get("typeMeta") or {}
    kind = type_meta.get("kind", "")
    if kind not in KINDS:
        raise UnsupportedKind(f"protobuf bodies of kind {kind!r} are not supported by the emulator; send JSON")
    obj = decode_message(kind, unknown.get("raw", b""))
    return {"apiVersion": type_meta.get("apiVersion", ""), "kind": kind, **obj}
