"""Admission webhooks served by the framework, called by the emulator and by a real kube-apiserver."""

from __future__ import annotations

import datetime as dt
import http.client
import json
import ssl
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from rook_py.framework.client import errors
from rook_py.framework.webhook import (
    FieldErrors,
    StaticCert,
    WebhookBuilder,
    WebhookServer,
    invalid,
    make_ca,
    make_serving_cert,
)
from rook_py.framework.webhook.admission import AdmissionRequest, Denied
from tests.integration.sample_provider.provider import wait_established

GROUP = "hooks.example.io"
API_VERSION = f"{GROUP}/v1"
CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": f"widgets.{GROUP}"},
    "spec": {"group": GROUP, "scope": "Namespaced",
             "names": {"plural": "widgets", "kind": "Widget", "singular": "widget", "listKind": "WidgetList"},
             "versions": [{"name": "v1", "served": True, "storage": True, "subresources": {"status": {}},
                           "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                               "spec": {"type": "object", "properties": {
                                   "size": {"type": "integer"}, "colour": {"type": "string"},
                                   "shade": {"type": "string", "default": "light"}}},
                               "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}}}]}}


class WidgetDefaulter:
    def default(self, request: AdmissionRequest, obj: dict[str, Any]) -> None:
        spec = obj.setdefault("spec", {})
        if "colour" not in spec:  # a default depending on another field: the schema cannot say it
            spec["colour"] = "red" if spec.get("size", 0) > 3 else "blue"


class WidgetValidator:
    def __init__(self) -> None:
        self.dry_runs: list[bool] = []

    def validate_create(self, request: AdmissionRequest, obj: dict[str, Any]) -> list[str]:
        self.dry_runs.append(request.dry_run)
        size = obj["spec"].get("size", 1)
        if size % 2 == 0:
            raise FieldErrors([invalid("spec.size", size, "must be odd")])
        return [f"colour {obj['spec']['colour']} chosen"] if obj["spec"].get("colour") == "red" else []

    def validate_update(self, request: AdmissionRequest, old: dict[str, Any], new: dict[str, Any]) -> list[str]:
        if new["spec"].get("size", 1) < old["spec"].get("size", 1):
            raise Denied(f"spec.size may not shrink from {old['spec']['size']} to {new['spec']['size']}")
        return []

    def validate_delete(self, request: AdmissionRequest, obj: dict[str, Any]) -> list[str]:
        if (obj["metadata"].get("labels") or {}).get("protected") == "true":
            raise Denied("protected widgets cannot be deleted")
        return []


def configurations(failure_policy: str = "Fail") -> list[dict[str, Any]]:
    rule = {"apiGroups": [GROUP], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
            "resources": ["widgets"]}
    common = {"admissionReviewVersions": ["v1"], "sideEffects": "None", "failurePolicy": failure_policy,
              "timeoutSeconds": 5,
              "namespaceSelector": {"matchExpressions": [{"key": "kubernetes.io/metadata.name",
                                                          "operator": "NotIn", "values": ["kube-system"]}]}}
    return [
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
         "metadata": {"name": "widgets-mutating"},
         "webhooks": [{"name": "mwidget.hooks.example.io", "rules": [rule], **common,
                       "clientConfig": {"service": {"namespace": "x", "name": "x",
                                                    "path": "/mutate-hooks-example-io-v1-widget"}}}]},
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
         "metadata": {"name": "widgets-validating"},
         "webhooks": [{"name": "vwidget.hooks.example.io",
                       "rules": [{**rule, "operations": ["CREATE", "UPDATE", "DELETE"]}], **common,
                       "clientConfig": {"service": {"namespace": "x", "name": "x",
                                                    "path": "/validate-hooks-example-io-v1-widget"}}}]},
    ]


class Hooks:
    def __init__(self, server: WebhookServer, validator: WidgetValidator, ca: bytes) -> None:
        self.server, self.validator, self.ca = server, validator, ca

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server.address[1]}"


@pytest.fixture
def hooks() -> Iterator[Hooks]:
    ca = make_ca("webhook-test-ca", dt.timedelta(days=1))
    server = WebhookServer(StaticCert(make_serving_cert(ca, ["127.0.0.1"], dt.timedelta(days=1))), "127.0.0.1:0")
    validator = WidgetValidator()
    paths = (WebhookBuilder(None, server).for_(API_VERSION, "Widget").with_defaulter(WidgetDefaulter())
             .with_validator(validator).complete())
    assert paths == ["/mutate-hooks-example-io-v1-widget", "/validate-hooks-example-io-v1-widget"]
    server.serve_in_background()
    try:
        yield Hooks(server, validator, ca.cert_pem)
    finally:
        server.shutdown()


@pytest.fixture
def client(envtest: Any, hooks: Hooks) -> Any:
    c = envtest.client()
    c.create(CRD)
    wait_established(c, CRD["metadata"]["name"])
    c.discovery.invalidate()
    envtest.install_webhooks(configurations(), url=hooks.url, ca_bundle=hooks.ca)
    return c


def widget(name: str, namespace: str = "default", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": "Widget", "metadata": {"name": name, "namespace": namespace},
            "spec": spec}


def raw_create(envtest: Any, obj: dict[str, Any], query: str = "") -> tuple[int, dict[str, Any], list[str]]:
    """POST with the status, body and Warning headers (the Client does not surface warnings)."""
    config = envtest.k8s_configuration()
    url = config.host
    host_port = url.split("://", 1)[1]
    context = ssl.create_default_context(cafile=config.ssl_ca_cert) if config.ssl_ca_cert else \
        ssl._create_unverified_context()
    conn = http.client.HTTPSConnection(host_port, context=context, timeout=15)
    ns = obj["metadata"]["namespace"]
    conn.request("POST", f"/apis/{API_VERSION}/namespaces/{ns}/widgets{query}", body=json.dumps(obj),
                 headers={"Content-Type": "application/json", "Authorization": f"Bearer {envtest.token}"})
    response = conn.getresponse()
    body = json.loads(response.read())
    warnings = response.headers.get_all("Warning") or []
    conn.close()
    return response.status, body, warnings


def test_mutating_then_validating_with_defaults_and_warnings(envtest: Any, client: Any) -> None:
    status, body, warnings = raw_create(envtest, widget("big", size=5))
    assert status == 201, body
    # the webhook's default (colour) and the schema's default (shade, applied after mutation)
    assert body["spec"] == {"size": 5, "colour": "red", "shade": "light"}
    assert warnings == ['299 - "colour red chosen"']
    small = client.create(widget("small", size=1))
    assert small["spec"]["colour"] == "blue"


def test_a_denial_reads_as_kube_apiserver_writes_it(client: Any) -> None:
    with pytest.raises(errors.Invalid) as err:
        client.create(widget("even", size=4))
    assert str(err.value) == ('admission webhook "vwidget.hooks.example.io" denied the request: '
                              'Widget.hooks.example.io "even" is invalid: spec.size: Invalid value: 4: must be odd')
    created = client.create(widget("w", size=5))
    with pytest.raises(errors.Forbidden) as forbidden:
        client.update({**created, "spec": {**created["spec"], "size": 3}})
    assert str(forbidden.value) == ('admission webhook "vwidget.hooks.example.io" denied the request: '
                                    "spec.size may not shrink from 5 to 3")
    grown = client.update({**created, "spec": {**created["spec"], "size": 7}})
    assert grown["spec"]["size"] == 7
    patched = client.patch(API_VERSION, "Widget", "w", {"spec": {"size": 9}}, namespace="default")
    assert patched["spec"]["size"] == 9
    with pytest.raises(errors.Forbidden):
        client.patch(API_VERSION, "Widget", "w", {"spec": {"size": 1}}, namespace="default")
    # status writes are not sent to a webhook whose rules name only the main resource
    client.update_status({**client.get(API_VERSION, "Widget", "w", "default"), "status": {"seen": True}})


def test_delete_is_validated_with_the_old_object(client: Any) -> None:
    client.create({**widget("keep", size=1), "metadata": {"name": "keep", "namespace": "default",
                                                         "labels": {"protected": "true"}}})
    with pytest.raises(errors.Forbidden) as err:
        client.delete(API_VERSION, "Widget", "keep", "default")
    assert "protected widgets cannot be deleted" in str(err.value)
    client.create(widget("go", size=1))
    client.delete(API_VERSION, "Widget", "go", "default")


def test_dry_run_reaches_webhooks_declaring_no_side_effects(envtest: Any, client: Any, hooks: Hooks) -> None:
    status, body, _ = raw_create(envtest, widget("dry", size=3), "?dryRun=All")
    assert status == 201 and body["spec"]["colour"] == "blue"
    assert hooks.validator.dry_runs[-1] is True
    with pytest.raises(errors.NotFound):
        client.get(API_VERSION, "Widget", "dry", "default")


def test_excluded_namespace_is_not_sent_to_webhooks(client: Any) -> None:
    created = client.create(widget("system", namespace="kube-system", size=2))
    assert "colour" not in created["spec"]


def test_failure_policy_while_no_server_answers(envtest: Any, client: Any, hooks: Hooks) -> None:
    url = hooks.url
    hooks.server.shutdown()
    with pytest.raises(errors.InternalError) as err:
        client.create(widget("nobody", size=1))
    message = str(err.value)
    assert message.startswith('Internal error occurred: failed calling webhook "mwidget.hooks.example.io": '
                              'failed to call webhook: Post "' + url + '/mutate-hooks-example-io-v1-widget'
                              '?timeout=5s": '), message
    # With Ignore the write goes through unchecked (what a user gets while the operator is gone).
    http = envtest.http
    for config in configurations("Ignore"):
        plural = config["kind"].lower() + "s"
        base = f"/apis/admissionregistration.k8s.io/v1/{plural}/{config['metadata']['name']}"
        current = http.request("GET", base)
        for hook in current["webhooks"]:
            hook["failurePolicy"] = "Ignore"
        http.request("PUT", base, current)
    if envtest.backend == "real":
        threading.Event().wait(1.0)
    created = client.create(widget("unchecked", size=2))
    assert "colour" not in created["spec"]
