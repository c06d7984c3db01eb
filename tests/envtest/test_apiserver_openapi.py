"""OpenAPI documents and server-side field validation of the emulator (issue 13, part 1)."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from typing import Any

import pytest

from rook_py.envtest.apiserver.fieldvalidation import loads_json, loads_yaml, strip_unknown
from rook_py.envtest.apiserver.server import APIServer

from .apiserver_support import Raw, widget_crd

JSON = dict[str, Any]
CMS = "/api/v1/namespaces/default/configmaps"
DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"


@pytest.fixture
def server() -> Iterator[APIServer]:
    srv = APIServer(tls=False).start()
    yield srv
    srv.stop()


def _send(server: APIServer, method: str, path: str, body: bytes,
          content_type: str = "application/json") -> tuple[int, JSON, list[str]]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request(method, path, body=body, headers={"Content-Type": content_type, "Accept": "application/json",
                                                       "Authorization": f"Bearer {server.token}"})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read()), resp.msg.get_all("Warning") or []
    finally:
        conn.close()


def test_v3_index_and_group_version_documents(server: APIServer) -> None:
    raw = Raw(server)
    code, index = raw.get("/openapi/v3")
    assert code == 200 and {"api/v1", "apis/apps/v1", "apis/apiextensions.k8s.io/v1"} <= set(index["paths"])
    url = index["paths"]["apis/apps/v1"]["serverRelativeURL"]
    assert url.startswith("/openapi/v3/apis/apps/v1?hash=")
    code, doc = raw.get(url)
    assert code == 200 and doc["openapi"] == "3.0.0"
    schemas = doc["components"]["schemas"]
    deployment = schemas["io.k8s.api.apps.v1.Deployment"]
    assert deployment["x-kubernetes-group-version-kind"] == [{"group": "apps", "version": "v1", "kind": "Deployment"}]
    spec = deployment["properties"]["spec"]
    assert (spec.get("allOf") or [spec])[0] == {"$ref": "#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec"}
    pod_spec = schemas["io.k8s.api.core.v1.PodSpec"]["properties"]
    assert pod_spec["containers"]["x-kubernetes-patch-merge-key"] == "name"
    ports = schemas["io.k8s.api.core.v1.Container"]["properties"]["ports"]
    assert ports["x-kubernetes-list-type"] == "map"
    assert ports["x-kubernetes-list-map-keys"] == ["containerPort", "protocol"]
    # kubectl learns that the server validates fields from the PATCH operation of the kind's path
    patch = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"]["kind"] == "Deployment"
    assert {"fieldValidation", "fieldManager", "force"} <= {p["name"] for p in patch["parameters"]}
    assert "application/strategic-merge-patch+json" in patch["requestBody"]["content"]


def test_custom_resource_documents_follow_the_crd(server: APIServer) -> None:
    raw = Raw(server)
    crd = widget_crd()
    server.local.create("apiextensions.k8s.io/v1", "customresourcedefinitions", crd)
    _, index = raw.get("/openapi/v3")
    gv = next(p for p in index["paths"] if p.startswith("apis/") and p.endswith(crd["spec"]["group"] + "/v1"))
    _, doc = raw.get(index["paths"][gv]["serverRelativeURL"])
    kind = crd["spec"]["names"]["kind"]
    name = ".".join(reversed(crd["spec"]["group"].split("."))) + f".v1.{kind}"
    schema = doc["components"]["schemas"][name]
    assert schema["x-kubernetes-group-version-kind"][0]["kind"] == kind
    assert schema["properties"]["metadata"]["allOf"][0]["$ref"].endswith("meta.v1.ObjectMeta")
    assert "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta" in doc["components"]["schemas"]
    patch = next(p["patch"] for p in doc["paths"].values() if "patch" in p)
    assert "application/strategic-merge-patch+json" not in patch["requestBody"]["content"]
    _, v2 = raw.get("/openapi/v2")
    assert name in v2["definitions"]
    server.local.delete("apiextensions.k8s.io/v1", "customresourcedefinitions", crd["metadata"]["name"])
    _code, index = raw.get("/openapi/v3")
    assert gv not in index["paths"]


def test_v2_protobuf_is_served_to_clients_that_only_accept_it(server: APIServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request("GET", "/openapi/v2", headers={
            "Accept": "application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
            "Authorization": f"Bearer {server.token}"})
        resp = conn.getresponse()
        body = resp.read()
    finally:
        conn.close()
    assert resp.status == 200 and resp.getheader("Content-Type").startswith("application/com.github.proto-openapi")
    assert body.startswith(b"\x0a\x032.0") and b"io.k8s.api.apps.v1.Deployment" in body


def test_strict_rejects_unknown_and_duplicate_fields_with_kube_apiservers_wording(server: APIServer) -> None:
    body = (b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"d","name":"d"},'
            b'"data":{"a":"1"},"foo":1}')
    code, status, _ = _send(server, "POST", CMS + "?fieldValidation=Strict", body)
    assert code == 400 and status["reason"] == "BadRequest"
    assert status["message"] == ('ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: '
                                 'duplicate field "metadata.name", unknown field "foo"')
    yaml_body = b'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: y\n  name: y\nfoo: 1\n'
    code, status, _ = _send(server, "POST", CMS + "?fieldValidation=Strict", yaml_body, "application/yaml")
    assert code == 400 and status["message"].endswith(
        'strict decoding error: yaml: unmarshal errors:\n  line 5: key "name" already set in map, unknown field "foo"')
    assert Raw(server).get(CMS + "/d")[0] == 404


def test_warn_is_the_default_and_ignore_is_silent(server: APIServer) -> None:
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "w"},
           "spec": {"selector": {"matchLabels": {"a": "b"}}, "bog": 1,
                    "template": {"metadata": {"labels": {"a": "b"}},
                                 "spec": {"containers": [{"name": "c", "image": "i", "zz": 1}]}}}}
    code, obj, warnings = _send(server, "POST", DEPLOYMENTS, json.dumps(dep).encode())
    assert code == 201
    assert warnings == ['299 - "unknown field \\"spec.bog\\""',
                        '299 - "unknown field \\"spec.template.spec.containers[0].zz\\""']
    assert "bog" not in obj["spec"] and "zz" not in obj["spec"]["template"]["spec"]["containers"][0]
    code, obj, warnings = _send(server, "PATCH", DEPLOYMENTS + "/w?fieldValidation=Ignore",
                                b'{"spec":{"paused":true,"nope":1}}', "application/merge-patch+json")
    assert code == 200 and warnings == [] and obj["spec"]["paused"] is True and "nope" not in obj["spec"]
    code, status, _ = _send(server, "PATCH", DEPLOYMENTS + "/w?fieldValidation=Strict",
                            b'{"spec":{"nope":1}}', "application/strategic-merge-patch+json")
    assert code == 400 and status["message"].endswith('unknown field "spec.nope"')
    code, status, _ = _send(server, "POST", DEPLOYMENTS + "?fieldValidation=Loud", json.dumps(dep).encode())
    assert code == 400 and "fieldValidation" in status["message"]


def test_decoders_report_duplicates_by_path() -> None:
    value, dups = loads_json(b'{"a":{"b":1,"b":2},"l":[{"x":1,"x":1}]}')
    assert value == {"a": {"b": 2}, "l": [{"x": 1}]} and dups == ["a.b", "l[0].x"]
    value, dups = loads_yaml(b"a: 1\na: 2\n")
    assert value == {"a": 2} and dups == ['line 2: key "a" already set in map']


def test_strip_unknown_honours_preserve_unknown_fields_and_embedded_resources() -> None:
    schema = {"type": "object", "properties": {
        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        "emb": {"type": "object", "x-kubernetes-embedded-resource": True, "properties": {"spec": {"type": "object"}}},
        "m": {"type": "object", "additionalProperties": {"type": "object", "properties": {"v": {"type": "string"}}}}}}
    value = {"free": {"anything": 1}, "emb": {"apiVersion": "v1", "kind": "X", "metadata": {"name": "n"}, "x": 1},
             "m": {"k": {"v": "1", "w": 2}}, "gone": 1}
    assert strip_unknown(value, schema, {}, drop=True) == ["emb.x", "m.k.w", "gone"]
    assert value == {"free": {"anything": 1}, "emb": {"apiVersion": "v1", "kind": "X", "metadata": {"name": "n"}},
                     "m": {"k": {"v": "1"}}}
