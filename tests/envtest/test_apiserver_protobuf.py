"""Protobuf request bodies (what kubectl's generators send): the decoder, over HTTP and with kubectl."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from rook_py.framework.envtest.apiserver.protobuf import MAGIC, ProtobufError, decode_object
from rook_py.framework.envtest.apiserver.server import APIServer


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
    with pytest.raises(ProtobufError):
        decode_object(_envelope("apps/v1", "Deployment", b""))
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
