"""Protobuf request bodies (what kubectl's generators send): the decoder, over HTTP and with kubectl."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rook_py.envtest.apiserver.protobuf import MAGIC, ProtobufError, UnsupportedKind, decode_object
from rook_py.envtest.apiserver.server import APIServer

JSON = dict[str, Any]


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _ld(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _vi(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def _entry(key: str, value: bytes) -> bytes:
    return _ld(1, key.encode()) + _ld(2, value)


def _envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    type_meta = _ld(1, api_version.encode()) + _ld(2, kind.encode())
    return MAGIC + _ld(1, type_meta) + _ld(2, raw)


def _configmap_body() -> bytes:
    meta = (_ld(1, b"cm") + _ld(2, b"") + _ld(3, b"default") + _ld(11, _entry("app", b"web"))
            + _ld(8, _vi(1, 0)) + _ld(14, b"example.com/f") + _vi(7, 0))
    raw = _ld(1, meta) + _ld(2, _entry("k", b"v")) + _ld(3, _entry("bin", b"\x00\x01")) + _vi(4, 1)
    return _envelope("v1", "ConfigMap", raw)


def test_decode_configmap_like_go_json() -> None:
    obj = decode_object(_configmap_body())
    assert obj == {
        "apiVersion": "v1", "kind": "ConfigMap",
        # empty strings, zero ints and Go's zero time are omitted, as omitempty JSON would
        "metadata": {"name": "cm", "namespace": "default", "labels": {"app": "web"},
                     "finalizers": ["example.com/f"]},
        "data": {"k": "v"}, "binaryData": {"bin": "AAE="}, "immutable": True,
    }


def test_decode_rejects_unknown_kinds_and_garbage() -> None:
    with pytest.raises(UnsupportedKind):
        decode_object(_envelope("apiextensions.k8s.io/v1", "CustomResourceDefinition", b""))
    for garbage in (b"not protobuf", MAGIC + b"\x0a\xff", _envelope("v1", "ConfigMap", _ld(1, _ld(1, b"\xff\xfe"))),
                    _envelope("v1", "ConfigMap", _vi(1, 5)), MAGIC + b"\x09\x01"):
        with pytest.raises(ProtobufError) as exc:
            decode_object(garbage)
        assert not isinstance(exc.value, UnsupportedKind)
    with pytest.raises(ProtobufError):
        decode_object(b"not protobuf")
    with pytest.raises(ProtobufError):
        decode_object(MAGIC + b"\x0a\xff")  # a length running past the end


def test_decode_negative_int64() -> None:
    meta = _ld(1, b"x") + _vi(10, -1)
    obj = decode_object(_envelope("v1", "Secret", _ld(1, meta)))
    assert obj["metadata"]["deletionGracePeriodSeconds"] == -1


@pytest.fixture
def server() -> Iterator[APIServer]:
    srv = APIServer().start()
    yield srv
    srv.stop()


def test_protobuf_create_over_http(server: APIServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("POST", "/api/v1/namespaces/default/configmaps", body=_configmap_body(),
                 headers={"Authorization": f"Bearer {server.token}",
                          "Content-Type": "application/vnd.kubernetes.protobuf",
                          "Accept": "application/vnd.kubernetes.protobuf,application/json"})
    resp = conn.getresponse()
    body = json.loads(resp.read())
    conn.close()
    assert resp.status == 201 and resp.getheader("Content-Type") == "application/json"
    assert body["data"] == {"k": "v"} and body["metadata"]["uid"]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed on this machine")
def test_kubectl_generators(server: APIServer, tmp_path: Path) -> None:
    kubeconfig = server.write_kubeconfig(str(tmp_path / "kubeconfig"))

    def kubectl(*args: str) -> str:
        done = subprocess.run(["kubectl", *args], capture_output=True, text=True, timeout=60,
                              env={**os.environ, "KUBECONFIG": kubeconfig})
        assert done.returncode == 0, done.stderr
        return done.stdout

    kubectl("create", "configmap", "gen", "--from-literal=a=b")
    kubectl("create", "secret", "generic", "pw", "--from-literal=password=hunter2")
    kubectl("create", "namespace", "made-by-kubectl")
    kubectl("create", "role", "reader", "--verb=get,list", "--resource=pods")
    kubectl("create", "rolebinding", "rb", "--role=reader", "--serviceaccount=default:default")
    assert server.local.get("v1", "configmaps", "gen", "default")["data"] == {"a": "b"}
    assert server.local.get("v1", "secrets", "pw", "default")["data"] == {"password": "aHVudGVyMg=="}
    assert server.local.get("v1", "namespaces", "made-by-kubectl")["spec"]["finalizers"] == ["kubernetes"]
    role = server.local.get("rbac.authorization.k8s.io/v1", "roles", "reader", "default")
    assert role["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]
    binding = server.local.get("rbac.authorization.k8s.io/v1", "rolebindings", "rb", "default")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"}


def _post(server: APIServer, path: str, body: bytes, content_type: str, method: str = "POST") -> tuple[int, JSON]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        conn.request(method, path, body=body, headers={"Authorization": f"Bearer {server.token}",
                                                      "Content-Type": content_type})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def test_protobuf_of_an_unknown_kind_is_415_and_garbage_is_400(server: APIServer) -> None:
    crd = _envelope("apiextensions.k8s.io/v1", "CustomResourceDefinition", _ld(1, _ld(1, b"a.b.c")))
    code, status = _post(server, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd,
                         "application/vnd.kubernetes.protobuf")
    assert code == 415 and status["reason"] == "UnsupportedMediaType" and "CustomResourceDefinition" in status["message"]
    code, status = _post(server, "/api/v1/namespaces/default/configmaps", b"k8s\x00\x0a\xff",
                         "application/vnd.kubernetes.protobuf")
    assert code == 400 and status["reason"] == "BadRequest" and "yaml" not in status["message"].lower()


@pytest.mark.parametrize("content_type", ["text/plain", "application/cbor", "application/x-www-form-urlencoded",
                                          "application/octet-stream"])
def test_bodies_in_other_media_types_are_415(server: APIServer, content_type: str) -> None:
    code, status = _post(server, "/api/v1/namespaces/default/configmaps", b"metadata: {name: x}", content_type)
    assert code == 415 and status["reason"] == "UnsupportedMediaType"
    assert "application/json" in status["message"]
    assert server.local.list("v1", "configmaps", "default")["items"] == []


def test_yaml_and_untyped_bodies_are_still_read(server: APIServer) -> None:
    code, _ = _post(server, "/api/v1/namespaces/default/configmaps", b"metadata: {name: y}\ndata: {k: v}",
                    "application/yaml")
    assert code == 201
    code, _ = _post(server, "/api/v1/namespaces/default/configmaps", b'{"metadata": {"name": "z"}}', "")
    assert code == 201


def test_protobuf_delete_options(server: APIServer) -> None:
    server.local.create("v1", "configmaps", {"metadata": {"name": "gone", "namespace": "default"}})
    uid = server.local.get("v1", "configmaps", "gone", "default")["metadata"]["uid"]
    stale = _envelope("meta.k8s.io/v1", "DeleteOptions", _ld(2, _ld(1, b"not-" + uid.encode())))
    code, status = _post(server, "/api/v1/namespaces/default/configmaps/gone", stale,
                         "application/vnd.kubernetes.protobuf", method="DELETE")
    assert code == 409 and "UID in the precondition" in status["message"]
    ok = _envelope("meta.k8s.io/v1", "DeleteOptions", _ld(2, _ld(1, uid.encode())) + _vi(1, 0))
    code, status = _post(server, "/api/v1/namespaces/default/configmaps/gone", ok,
                         "application/vnd.kubernetes.protobuf", method="DELETE")
    assert code == 200 and status["status"] == "Success"
