"""Decoding of Kubernetes protobuf request bodies (what kubectl's typed clients send).

kubectl's typed clients (``kubectl create deployment|service|configmap|secret|role|...``)
POST ``application/vnd.kubernetes.protobuf`` bodies and do not fall back to JSON, so the emulator
reads them. The envelope is the 4-byte magic ``k8s\\0`` followed by a ``runtime.Unknown`` message
(k8s.io/apimachinery/pkg/runtime/types_proto.go); the object inside is the gogo-protobuf encoding
of the versioned Go struct, whose field numbers are in each API group's ``generated.proto``.

The field numbers are in protobuf_fields.py (core, apps, batch, networking, policy, coordination,
rbac, autoscaling, events and meta/v1); any other kind is 415 UnsupportedMediaType
(the client can send JSON instead: ``kubectl create -f``/``apply`` always do). Answers are always
JSON, which every client accepts.
"""

from __future__ import annotations

import base64
import datetime
from typing import Any

from .protobuf_fields import FIELDS

JSON = dict[str, Any]

MAGIC = b"k8s\x00"

#: API group -> the package prefix of its messages in protobuf_fields.FIELDS
_GROUP_PACKAGES = {"": "core.v1", "apps": "apps.v1", "batch": "batch.v1", "networking.k8s.io": "networking.v1",
                   "policy": "policy.v1", "coordination.k8s.io": "coordination.v1",
                   "rbac.authorization.k8s.io": "rbac.v1", "autoscaling": "autoscaling.v1",
                   "events.k8s.io": "events.v1", "meta.k8s.io": "meta"}
#: pointer fields whose zero value means something (Go keeps a set pointer to 0/false);
#: every other zero scalar is what omitempty drops
_KEEP_ZERO = frozenset({"replicas", "automountServiceAccountToken", "immutable", "controller",
                        "blockOwnerDeletion", "orphanDependents", "gracePeriodSeconds", "suspend", "parallelism",
                        "completions", "backoffLimit", "minAvailable", "maxUnavailable"})
#: Go structs embedded inline (their fields appear at the parent's level in JSON)
_INLINE = frozenset({"ephemeralContainerCommon"})


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


def _entry(value: Any) -> dict[int, Any]:
    return {n: v for n, _w, v in _fields(value)}


def _time(value: Any) -> str | None:
    seconds = int(_entry(value).get(1, 0))
    if seconds <= 0:  # Go's zero time
        return None
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _int_or_string(value: Any) -> int | str:
    entry = _entry(value)
    return _text(entry.get(3, b"")) if entry.get(1) == 1 else int(entry.get(2, 0))


def _quantity(value: Any) -> str:
    return _text(_entry(value).get(1, b""))


def _signed32(value: int) -> int:
    return value - (1 << 32) if (1 << 31) <= value < (1 << 32) else value


def _scalar(kind: str, value: Any, wire: int) -> Any:
    """A singular value of ``kind``; raises ProtobufError on a wire type mismatch."""
    if kind in ("int", "bool"):
        if isinstance(value, bytes):
            raise ProtobufError("a varint field has the wrong wire type")
        return bool(value) if kind == "bool" else _signed32(value)
    if kind == "double":
        import struct

        return struct.unpack("<d", value.to_bytes(8, "little"))[0] if wire == 1 else 0.0
    if not isinstance(value, bytes):
        raise ProtobufError("a length-delimited field has the wrong wire type")
    if kind == "string":
        return _text(value)
    if kind == "bytes":
        return base64.b64encode(value).decode()
    if kind == "time":
        return _time(value)
    if kind == "intstr":
        return _int_or_string(value)
    if kind == "quantity":
        return _quantity(value)
    if kind == "duration":
        return _text(_entry(value).get(1, b""))
    if kind in ("rawext", "fieldsv1"):
        import json

        raw = _entry(value).get(1, b"")
        return json.loads(raw) if raw else {}
    return decode_message(kind, value)


def decode_message(name: str, data: bytes) -> JSON:
    """Decode one message to its JSON form, omitting zero values as Go's omitempty does."""
    schema = FIELDS[name]
    out: JSON = {}
    for number, wire, value in _fields(data):
        if number not in schema:
            continue  # a newer field this emulator does not know: dropped, as an older server would
        key, kind = schema[number]
        if kind in ("map", "bmap") or kind.startswith("map:"):
            if not isinstance(value, bytes):
                raise ProtobufError(f"field {number} of {name} has the wrong wire type")
            entry = _entry(value)
            value_kind = "string" if kind == "map" else "bytes" if kind == "bmap" else kind[4:]
            out.setdefault(key, {})[_text(entry.get(1, b""))] = _scalar(value_kind, entry.get(2, b""), 2)
        elif kind.startswith("[]"):
            inner = kind[2:]
            if inner == "int" and isinstance(value, bytes):  # packed repeated varints
                pos, items = 0, out.setdefault(key, [])
                while pos < len(value):
                    item, pos = _varint(value, pos)
                    items.append(_signed32(item))
            else:
                out.setdefault(key, []).append(_scalar(inner, value, wire))
        elif key in _INLINE:
            out.update(_scalar(kind, value, wire))
        else:
            decoded = _scalar(kind, value, wire)
            if decoded is None or (decoded in ("", 0, False) and not isinstance(decoded, float)
                                   and key not in _KEEP_ZERO and kind in ("string", "int", "bool")):
                continue
            out[key] = decoded
    return out


def decode_object(body: bytes) -> JSON:
    """Decode an enveloped object; raises UnsupportedKind for a kind without a schema here and
    ProtobufError when the body is malformed."""
    if not body.startswith(MAGIC):
        raise ProtobufError("missing the k8s protobuf magic prefix")
    envelope = _entry(body[len(MAGIC):])
    type_meta = _entry(envelope.get(1, b""))
    api_version, kind = _text(type_meta.get(1, b"")), _text(type_meta.get(2, b""))
    group = api_version.rpartition("/")[0]
    package = "meta" if kind == "DeleteOptions" else _GROUP_PACKAGES.get(group)
    name = f"{package}.{kind}"
    if package is None or name not in FIELDS:
        raise UnsupportedKind(f"protobuf bodies of kind {kind!r} are not supported by the emulator; send JSON")
    raw = envelope.get(2, b"")
    obj = decode_message(name, raw if isinstance(raw, bytes) else b"")
    return {"apiVersion": api_version, "kind": kind, **obj}
