"""Admission webhooks served by the framework, called by the emulator and by a real kube-apiserver."""

from __future__ import annotations

import datetime as dt
import http.client
import json
import ssl
import threading
from collections.abc import Callable, Iterator
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
from rook_py.framework.webhook.admission import review as admission_review
from tests.support.waiting import eventually

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
    envtest.install_crds([CRD])
    c = envtest.client()
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


# -- server-side apply and deletecollection, seen from a webhook that records what it is sent ------

APPLY = "application/apply-patch+yaml"


class Recorder:
    """Two webhooks that keep every AdmissionReview request: a mutating one that labels objects on
    UPDATE, a validating one refusing ``spec.colour: forbidden`` and deletes of ``protected`` ones."""

    def __init__(self, server: WebhookServer, ca: bytes) -> None:
        self.server, self.ca = server, ca
        self.requests: list[tuple[str, dict[str, Any]]] = []
        #: called from inside each webhook call when set (a webhook reading the API server)
        self.callback: Callable[[], Any] | None = None
        self.callbacks = 0
        self._lock = threading.Lock()
        server.register_admission("/record-mutate", self._mutate)
        server.register_admission("/record-validate", self._validate)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server.address[1]}"

    def seen(self, kind: str, operation: str) -> list[dict[str, Any]]:
        with self._lock:
            return [raw for k, raw in self.requests if k == kind and raw["operation"] == operation]

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()

    def _record(self, kind: str, request: AdmissionRequest) -> None:
        with self._lock:
            self.requests.append((kind, request.raw))
        if self.callback is not None:
            self.callback()
            with self._lock:
                self.callbacks += 1

    def _mutate(self, request: AdmissionRequest) -> dict[str, Any]:
        self._record("mutating", request)
        patch = None
        if request.operation == "UPDATE" and request.object is not None:
            labels = request.object["metadata"].get("labels")
            patch = ([{"op": "add", "path": "/metadata/labels/mutated", "value": "true"}] if labels is not None
                     else [{"op": "add", "path": "/metadata/labels", "value": {"mutated": "true"}}])
        return admission_review(request.uid, allowed=True, patch=patch)

    def _validate(self, request: AdmissionRequest) -> dict[str, Any]:
        self._record("validating", request)
        refusal = None
        if request.object is not None and request.object["spec"].get("colour") == "forbidden":
            refusal = "colour forbidden"
        if request.operation == "DELETE" and (request.old_object or {})["metadata"].get(
                "labels", {}).get("protected") == "true":
            refusal = f"{request.old_object['metadata']['name']} is protected"  # type: ignore[index]
        if refusal is None:
            return admission_review(request.uid, allowed=True)
        return admission_review(request.uid, allowed=False, status={"code": 403, "message": refusal})


def recording_configurations() -> list[dict[str, Any]]:
    rule = {"apiGroups": [GROUP], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE", "DELETE"],
            "resources": ["widgets"]}
    common = {"admissionReviewVersions": ["v1"], "sideEffects": "None", "failurePolicy": "Fail",
              "timeoutSeconds": 5, "rules": [rule]}
    return [
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
         "metadata": {"name": "widgets-recording-mutating"},
         "webhooks": [{"name": "mrecord.hooks.example.io", **common,
                       "clientConfig": {"service": {"namespace": "x", "name": "x", "path": "/record-mutate"}}}]},
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
         "metadata": {"name": "widgets-recording-validating"},
         "webhooks": [{"name": "vrecord.hooks.example.io", **common,
                       "clientConfig": {"service": {"namespace": "x", "name": "x", "path": "/record-validate"}}}]},
    ]


@pytest.fixture
def recorder(envtest: Any) -> Iterator[Recorder]:
    ca = make_ca("webhook-test-ca", dt.timedelta(days=1))
    server = WebhookServer(StaticCert(make_serving_cert(ca, ["127.0.0.1"], dt.timedelta(days=1))), "127.0.0.1:0")
    rec = Recorder(server, ca.cert_pem)
    server.serve_in_background()
    try:
        envtest.install_crds([CRD])
        envtest.install_webhooks(recording_configurations(), url=rec.url, ca_bundle=rec.ca)
        yield rec
    finally:
        server.shutdown()


def apply(envtest: Any, name: str, query: dict[str, str] | None = None, **spec: Any) -> Any:
    body = {"apiVersion": API_VERSION, "kind": "Widget", "metadata": {"name": name}, "spec": spec}
    return envtest.http.request("PATCH", f"/apis/{API_VERSION}/namespaces/default/widgets/{name}", body,
                                query={"fieldManager": "tester", **(query or {})}, content_type=APPLY)


def test_server_side_apply_is_admitted_as_create_then_as_update(envtest: Any, recorder: Recorder) -> None:
    created = apply(envtest, "sa", size=1)
    for kind in ("mutating", "validating"):
        [review] = recorder.seen(kind, "CREATE")
        assert review.get("oldObject") is None and review["object"]["spec"]["size"] == 1
        assert review["options"]["kind"] == "CreateOptions"
    assert recorder.seen("mutating", "UPDATE") == []
    recorder.clear()

    updated = apply(envtest, "sa", size=3)
    [mutating] = recorder.seen("mutating", "UPDATE")
    [validating] = recorder.seen("validating", "UPDATE")
    for review in (mutating, validating):
        # the apply's PatchOptions reach webhooks as UpdateOptions (patch.go patchToUpdateOptions)
        assert review["options"]["kind"] == "UpdateOptions", review["options"]
        assert review["name"] == "sa" and review["namespace"] == "default" and review["dryRun"] is False
        assert review["oldObject"]["spec"]["size"] == 1
        assert review["oldObject"]["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
        assert review["object"]["spec"]["size"] == 3
    # mutation comes first: the validating webhook sees the mutating one's label
    assert "mutated" not in (mutating["object"]["metadata"].get("labels") or {})
    assert validating["object"]["metadata"]["labels"] == {"mutated": "true"}
    assert updated["spec"]["size"] == 3 and updated["metadata"]["labels"] == {"mutated": "true"}
    # the webhook's change belongs to no manager: managedFields are worked out before admission
    [entry] = [e for e in updated["metadata"]["managedFields"] if e["manager"] == "tester"]
    assert entry["operation"] == "Apply"
    assert "f:labels" not in entry["fieldsV1"].get("f:metadata", {})
    assert [e["manager"] for e in updated["metadata"]["managedFields"]] == ["tester"]


def test_server_side_apply_refused_or_dry_run_leaves_the_object(envtest: Any, recorder: Recorder) -> None:
    before = apply(envtest, "sb", size=1)
    recorder.clear()
    with pytest.raises(errors.Forbidden) as err:
        apply(envtest, "sb", size=1, colour="forbidden")
    assert str(err.value) == 'admission webhook "vrecord.hooks.example.io" denied the request: colour forbidden'
    [review] = recorder.seen("validating", "UPDATE")
    assert review["object"]["spec"]["colour"] == "forbidden"

    recorder.clear()
    dry = apply(envtest, "sb", {"dryRun": "All"}, size=5)
    assert dry["spec"]["size"] == 5 and dry["metadata"]["labels"] == {"mutated": "true"}
    for kind in ("mutating", "validating"):
        [review] = recorder.seen(kind, "UPDATE")
        assert review["dryRun"] is True
    after = envtest.http.request("GET", f"/apis/{API_VERSION}/namespaces/default/widgets/sb")
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert after["spec"] == before["spec"] and "labels" not in after["metadata"]


def test_deletecollection_admits_a_delete_per_item(envtest: Any, recorder: Recorder) -> None:
    client = envtest.client()
    for name in ("d1", "d2", "d3"):
        labels = {"group": "g", **({"protected": "true"} if name == "d3" else {})}
        client.create({**widget(name, size=1), "metadata": {"name": name, "namespace": "default", "labels": labels}})
    base = f"/apis/{API_VERSION}/namespaces/default/widgets"
    recorder.clear()

    # one item at a time, in name order, until d3 is refused; a dry run deletes none of them
    with pytest.raises(errors.Forbidden):
        envtest.http.request("DELETE", base, query={"labelSelector": "group=g", "dryRun": "All"})
    assert [r["oldObject"]["metadata"]["name"] for r in recorder.seen("validating", "DELETE")] == ["d1", "d2", "d3"]
    assert all(r["dryRun"] is True for r in recorder.seen("validating", "DELETE"))
    assert {w["metadata"]["name"] for w in envtest.http.request("GET", base)["items"]} == {"d1", "d2", "d3"}
    recorder.clear()

    envtest.http.request("DELETE", base, query={"labelSelector": "group=g,!protected"})
    for kind in ("mutating", "validating"):
        reviews = recorder.seen(kind, "DELETE")
        assert [r["oldObject"]["metadata"]["name"] for r in reviews] == ["d1", "d2"], kind
        for review in reviews:
            # handlers/delete.go DeleteCollection: the request's namespace, no name, no object
            assert "name" not in review and review["namespace"] == "default", review
            assert review.get("object") is None and review["options"]["kind"] == "DeleteOptions"
    assert [w["metadata"]["name"] for w in envtest.http.request("GET", base)["items"]] == ["d3"]

    with pytest.raises(errors.Forbidden) as err:
        envtest.http.request("DELETE", base)
    assert str(err.value) == 'admission webhook "vrecord.hooks.example.io" denied the request: d3 is protected'
    assert [w["metadata"]["name"] for w in envtest.http.request("GET", base)["items"]] == ["d3"]


def test_a_mutated_create_on_apply_keeps_the_apply_managed_fields(envtest: Any, client: Any) -> None:
    created = apply(envtest, "fresh", size=5)
    assert created["spec"] == {"size": 5, "colour": "red", "shade": "light"}  # the defaulting webhook ran
    # colour is the webhook's: only what the apply sent is the applier's
    assert [(e["manager"], e["operation"]) for e in created["metadata"]["managedFields"]] == [("tester", "Apply")]
    assert created["metadata"]["managedFields"][0]["fieldsV1"] == {"f:spec": {"f:size": {}}}


def test_webhooks_may_call_the_api_server_during_apply_and_deletecollection(envtest: Any,
                                                                            recorder: Recorder) -> None:
    """The emulator calls webhooks outside its store lock: a webhook reading from the API server
    would otherwise wait for the request that waits for it (until the webhook timeout)."""
    base = f"/apis/{API_VERSION}/namespaces/default/widgets"
    apply(envtest, "cb", size=1)
    recorder.callback = lambda: envtest.http.request("GET", base)
    assert apply(envtest, "cb", size=3)["spec"]["size"] == 3
    apply(envtest, "cb2", size=1)
    envtest.http.request("DELETE", base)
    assert envtest.http.request("GET", base)["items"] == []
    assert recorder.callbacks >= 6  # mutating and validating: UPDATE, CREATE, two DELETEs


def test_deleting_the_crd_removes_its_objects_without_admission(envtest: Any, recorder: Recorder) -> None:
    client = envtest.client()
    client.create({**widget("kept", size=1), "metadata": {"name": "kept", "namespace": "default",
                                                          "labels": {"protected": "true"}}})
    with pytest.raises(errors.Forbidden):
        client.delete(API_VERSION, "Widget", "kept", "default")
    recorder.clear()
    # the CRD finalizer deletes custom resources with no admission (crd_finalizer.go)
    envtest.http.request("DELETE", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{CRD['metadata']['name']}")

    def crd_gone() -> bool:
        try:
            envtest.http.request("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"
                                        f"{CRD['metadata']['name']}")
        except errors.NotFound:
            return True
        return False

    eventually(crd_gone, timeout=30, interval=0.2, what="the CRD to be gone")
    assert recorder.seen("validating", "DELETE") == [] and recorder.seen("mutating", "DELETE") == []


# -- reinvocation of mutating webhooks, parallel validating webhooks -------------------------------


class Counting:
    """Webhooks on one server, each counting its calls by name: mutating ones that set a label
    (``/count/<name>``: ``<name>-calls`` = how often it was called for this object;
    ``/observe/<name>``: ``<name>-saw`` = the labels it saw besides its own), validating ones
    that meet at a barrier or deny after a delay."""

    def __init__(self, server: WebhookServer, ca: bytes) -> None:
        self.server, self.ca = server, ca
        self.calls: dict[str, int] = {}
        self.barrier = threading.Barrier(2, timeout=3)
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server.address[1]}"

    def _called(self, name: str) -> None:
        with self._lock:
            self.calls[name] = self.calls.get(name, 0) + 1

    def counting(self, name: str) -> Callable[[AdmissionRequest], dict[str, Any]]:
        def handle(request: AdmissionRequest) -> dict[str, Any]:
            self._called(name)
            labels = dict((request.object or {})["metadata"].get("labels") or {})
            labels[f"{name}-calls"] = str(int(labels.get(f"{name}-calls", "0")) + 1)
            return admission_review(request.uid, allowed=True,
                                    patch=[{"op": "add", "path": "/metadata/labels", "value": labels}])
        return handle

    def observing(self, name: str) -> Callable[[AdmissionRequest], dict[str, Any]]:
        def handle(request: AdmissionRequest) -> dict[str, Any]:
            self._called(name)
            labels = dict((request.object or {})["metadata"].get("labels") or {})
            seen = "-".join(sorted(k for k in labels if k != f"{name}-saw")) or "nothing"
            labels[f"{name}-saw"] = seen
            return admission_review(request.uid, allowed=True,
                                    patch=[{"op": "add", "path": "/metadata/labels", "value": labels}])
        return handle

    def meeting(self, name: str) -> Callable[[AdmissionRequest], dict[str, Any]]:
        """Allows only when the other ``meeting`` webhook is being called at the same time."""
        def handle(request: AdmissionRequest) -> dict[str, Any]:
            self._called(name)
            try:
                self.barrier.wait()
            except threading.BrokenBarrierError:
                return admission_review(request.uid, allowed=False,
                                        status={"code": 403, "message": f"{name} was called alone"})
            return admission_review(request.uid, allowed=True, warnings=[f"{name} met the other"])
        return handle

    def denying(self, name: str, delay: float) -> Callable[[AdmissionRequest], dict[str, Any]]:
        def handle(request: AdmissionRequest) -> dict[str, Any]:
            self._called(name)
            threading.Event().wait(delay)
            return admission_review(request.uid, allowed=False, status={"code": 403, "message": f"{name} says no"})
        return handle


@pytest.fixture
def counting() -> Iterator[Counting]:
    ca = make_ca("webhook-test-ca", dt.timedelta(days=1))
    server = WebhookServer(StaticCert(make_serving_cert(ca, ["127.0.0.1"], dt.timedelta(days=1))), "127.0.0.1:0")
    hooks = Counting(server, ca.cert_pem)
    for name in ("a", "b"):
        server.register_admission(f"/count/{name}", hooks.counting(name))
        server.register_admission(f"/observe/{name}", hooks.observing(name))
        server.register_admission(f"/meet/{name}", hooks.meeting(name))
    server.register_admission("/deny/slow", hooks.denying("slow", 1.5))
    server.register_admission("/deny/fast", hooks.denying("fast", 0.0))
    server.serve_in_background()
    try:
        yield hooks
    finally:
        server.shutdown()


def webhook_configuration(kind: str, name: str, hooks: list[tuple[str, str, dict[str, Any]]]) -> dict[str, Any]:
    """A configuration of ``kind`` whose webhooks are (name, path, extra fields), for widgets."""
    rule = {"apiGroups": [GROUP], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["widgets"]}
    return {"apiVersion": "admissionregistration.k8s.io/v1", "kind": kind, "metadata": {"name": name},
            "webhooks": [{"name": hook_name, "rules": [rule], "admissionReviewVersions": ["v1"],
                          "sideEffects": "None", "failurePolicy": "Fail", "timeoutSeconds": 10,
                          "clientConfig": {"url": f"https://unused{path}"}, **extra}
                         for hook_name, path, extra in hooks]}


@pytest.fixture
def widgets(envtest: Any) -> Any:
    envtest.install_crds([CRD])
    c = envtest.client()
    return c


def test_if_needed_mutating_webhook_is_called_again_after_a_later_change(envtest: Any, widgets: Any,
                                                                           counting: Counting) -> None:
    """mutating/dispatcher.go: a later webhook's change calls IfNeeded webhooks that ran before it
    once more, so the first sees what the second added; a Never webhook is not called again."""
    configuration = webhook_configuration("MutatingWebhookConfiguration", "widgets-reinvoke", [
        ("observe-a.hooks.example.io", "/observe/a", {"reinvocationPolicy": "IfNeeded"}),
        ("count-b.hooks.example.io", "/count/b", {"reinvocationPolicy": "Never"}),
    ])
    envtest.install_webhooks([configuration], url=counting.url, ca_bundle=counting.ca)
    created = widgets.create(widget("again", size=1))
    assert created["metadata"]["labels"] == {"a-saw": "b-calls", "b-calls": "1"}
    assert counting.calls == {"a": 2, "b": 1}


def test_reinvocation_is_one_round_at_most(envtest: Any, widgets: Any, counting: Counting) -> None:
    """Two IfNeeded webhooks that change the object on every call: each is called twice, not
    forever (reinvocation.go runs the chain a second time only), in order."""
    configuration = webhook_configuration("MutatingWebhookConfiguration", "widgets-reinvoke", [
        ("count-a.hooks.example.io", "/count/a", {"reinvocationPolicy": "IfNeeded"}),
        ("count-b.hooks.example.io", "/count/b", {"reinvocationPolicy": "IfNeeded"}),
    ])
    envtest.install_webhooks([configuration], url=counting.url, ca_bundle=counting.ca)
    created = widgets.create(widget("bounded", size=1))
    assert created["metadata"]["labels"] == {"a-calls": "2", "b-calls": "2"}
    assert counting.calls == {"a": 2, "b": 2}
    counting.calls.clear()
    # the last webhook's own change does not call it again; nothing after it changes anything
    only_last = webhook_configuration("MutatingWebhookConfiguration", "widgets-reinvoke", [
        ("count-a.hooks.example.io", "/count/a", {"reinvocationPolicy": "Never"}),
        ("count-b.hooks.example.io", "/count/b", {"reinvocationPolicy": "IfNeeded"}),
    ])
    envtest.install_webhooks([only_last], url=counting.url, ca_bundle=counting.ca)
    created = widgets.create(widget("once", size=1))
    assert created["metadata"]["labels"] == {"a-calls": "1", "b-calls": "1"}
    assert counting.calls == {"a": 1, "b": 1}


def test_validating_webhooks_are_called_at_the_same_time(envtest: Any, widgets: Any, counting: Counting) -> None:
    """validating/dispatcher.go calls every matching webhook in its own goroutine: two webhooks
    that each wait for the other both admit; the warnings of both come back."""
    configuration = webhook_configuration("ValidatingWebhookConfiguration", "widgets-parallel", [
        ("meet-a.hooks.example.io", "/meet/a", {}), ("meet-b.hooks.example.io", "/meet/b", {})])
    envtest.install_webhooks([configuration], url=counting.url, ca_bundle=counting.ca)
    status, body, warnings = raw_create(envtest, widget("together", size=1))
    assert status == 201, body
    assert sorted(warnings) == ['299 - "a met the other"', '299 - "b met the other"']
    assert counting.calls == {"a": 1, "b": 1}


def test_the_validating_refusal_reported_is_the_first_to_arrive(envtest: Any, widgets: Any,
                                                                counting: Counting) -> None:
    """Upstream takes the first refusal its goroutines hand back, i.e. the first to finish, not
    the first webhook in configuration order; both webhooks are called all the same."""
    configuration = webhook_configuration("ValidatingWebhookConfiguration", "widgets-parallel", [
        ("deny-slow.hooks.example.io", "/deny/slow", {}), ("deny-fast.hooks.example.io", "/deny/fast", {})])
    envtest.install_webhooks([configuration], url=counting.url, ca_bundle=counting.ca)
    with pytest.raises(errors.Forbidden) as err:
        widgets.create(widget("refused", size=1))
    assert str(err.value) == 'admission webhook "deny-fast.hooks.example.io" denied the request: fast says no'
    assert counting.calls == {"slow": 1, "fast": 1}
