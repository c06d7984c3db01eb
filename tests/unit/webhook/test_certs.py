"""Self-managed webhook certificates: create or adopt, rotate before expiry, inject, no fights."""

from __future__ import annotations

import base64
import copy
import datetime as dt
from typing import Any

from cryptography import x509

from rook_py.framework.client import errors
from rook_py.framework.webhook import CertOptions, SelfManagedCerts
from rook_py.framework.webhook.certs import pem_certificates

JSON = dict[str, Any]


class MemoryClient:
    """get/create/update with AlreadyExists and resourceVersion Conflict, as an API server."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str | None], JSON] = {}
        self.rv = 0
        self.writes: list[tuple[str, str]] = []

    def _key(self, kind: str, name: str, namespace: str | None) -> tuple[str, str | None]:
        return (f"{kind}/{name}", namespace)

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> JSON:
        obj = self.objects.get(self._key(kind, name, namespace))
        if obj is None:
            raise errors.not_found(kind.lower() + "s", "", name)
        return copy.deepcopy(obj)

    def create(self, obj: JSON) -> JSON:
        meta = obj["metadata"]
        key = self._key(obj["kind"], meta["name"], meta.get("namespace"))
        if key in self.objects:
            raise errors.already_exists(obj["kind"].lower() + "s", "", meta["name"])
        self.rv += 1
        stored = copy.deepcopy(obj)
        stored["metadata"]["resourceVersion"] = str(self.rv)
        self.objects[key] = stored
        self.writes.append(("create", obj["kind"]))
        return copy.deepcopy(stored)

    def update(self, obj: JSON) -> JSON:
        meta = obj["metadata"]
        key = self._key(obj["kind"], meta["name"], meta.get("namespace"))
        if self.objects[key]["metadata"]["resourceVersion"] != meta.get("resourceVersion"):
            raise errors.conflict(obj["kind"].lower() + "s", "", meta["name"], errors.STALE_OBJECT)
        self.rv += 1
        stored = copy.deepcopy(obj)
        stored["metadata"]["resourceVersion"] = str(self.rv)
        self.objects[key] = stored
        self.writes.append(("update", obj["kind"]))
        return copy.deepcopy(stored)


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


def options(**kw: Any) -> CertOptions:
    base: JSON = dict(namespace="rook", secret_name="webhook-cert", service_name="rook-webhook",
                      validating_configurations=["v-hooks"], mutating_configurations=["m-hooks"],
                      crds=["greetings.example.io"], serving_validity=dt.timedelta(days=30),
                      ca_validity=dt.timedelta(days=300))
    base.update(kw)
    return CertOptions(**base)


def seed(client: MemoryClient) -> None:
    hook = {"name": "v.example.io", "clientConfig": {"service": {"name": "rook-webhook", "namespace": "rook",
                                                               "path": "/validate-x"}}}
    client.create({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
                   "metadata": {"name": "v-hooks"}, "webhooks": [hook]})
    client.create({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
                   "metadata": {"name": "m-hooks"}, "webhooks": [copy.deepcopy(hook)]})
    client.create({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                   "metadata": {"name": "greetings.example.io"},
                   "spec": {"conversion": {"strategy": "Webhook", "webhook": {
                       "conversionReviewVersions": ["v1"],
                       "clientConfig": {"service": {"name": "rook-webhook", "namespace": "rook",
                                                    "path": "/convert"}}}}}})
    client.writes.clear()


def sans(pem: bytes) -> set[str]:
    cert = x509.load_pem_x509_certificate(pem)
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(v) for v in ext.get_values_for_type(x509.DNSName)} | {
        str(v) for v in ext.get_values_for_type(x509.IPAddress)}


def test_creates_the_secret_and_injects_the_bundle_everywhere() -> None:
    client = MemoryClient()
    seed(client)
    certs = SelfManagedCerts(client, options())
    certs.reconcile()
    secret = client.get("v1", "Secret", "webhook-cert", "rook")
    assert set(secret["data"]) == {"ca.crt", "ca.key", "tls.crt", "tls.key"}
    pair = certs.current()
    assert pair is not None and certs.problem() is None
    assert "rook-webhook.rook.svc" in sans(pair.cert_pem)
    bundle = secret["data"]["ca.crt"]
    for kind, name in (("ValidatingWebhookConfiguration", "v-hooks"), ("MutatingWebhookConfiguration", "m-hooks")):
        config = client.get("admissionregistration.k8s.io/v1", kind, name)["webhooks"][0]["clientConfig"]
        assert config["caBundle"] == bundle and config["service"]["path"] == "/validate-x"
    crd = client.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", "greetings.example.io")
    assert crd["spec"]["conversion"]["webhook"]["clientConfig"]["caBundle"] == bundle
    writes = len(client.writes)
    certs.reconcile()  # nothing due: no write at all
    assert len(client.writes) == writes


def test_replicas_share_one_secret() -> None:
    client = MemoryClient()
    seed(client)
    first, second = SelfManagedCerts(client, options()), SelfManagedCerts(client, options())
    first.reconcile()
    second.reconcile()
    assert first.current() == second.current()
    assert [w for w in client.writes if w[1] == "Secret"] == [("create", "Secret")]


def test_a_replica_losing_the_create_race_adopts_the_winner() -> None:
    client = MemoryClient()
    seed(client)
    winner, loser = SelfManagedCerts(client, options()), SelfManagedCerts(client, options())
    real_create = client.create
    raced: list[bool] = []

    def racing_create(obj: JSON) -> JSON:
        if obj["kind"] == "Secret" and not raced:
            raced.append(True)
            client.create = real_create  # type: ignore[method-assign]
            winner.reconcile()  # the other replica writes between our read and our create
        return real_create(obj)

    client.create = racing_create  # type: ignore[method-assign]
    loser.reconcile()
    assert raced
    assert loser.current() == winner.current()


def test_rotates_the_serving_certificate_well_before_expiry_keeping_the_ca() -> None:
    client, clock = MemoryClient(), Clock()
    seed(client)
    certs = SelfManagedCerts(client, options(), clock=clock)
    other = SelfManagedCerts(client, options(), clock=clock)
    certs.reconcile()
    first = certs.current()
    assert first is not None
    assert 0 < certs.next_check() <= 60.0
    clock.now += dt.timedelta(days=15)  # half the 30-day lifetime left: not yet due
    certs.reconcile()
    assert certs.current() == first
    clock.now += dt.timedelta(days=6)   # 9 days (< 1/3) left: due
    certs.reconcile()
    rotated = certs.current()
    assert rotated is not None and rotated != first
    assert rotated.not_after() > first.not_after()
    other.reconcile()  # the other replica follows instead of rotating again
    assert other.current() == rotated
    assert [w for w in client.writes if w[1] == "Secret"] == [("create", "Secret"), ("update", "Secret")]
    # same CA, so the injected bundle did not change
    assert x509.load_pem_x509_certificate(rotated.cert_pem).issuer == \
        x509.load_pem_x509_certificate(first.cert_pem).issuer


def test_a_due_ca_is_replaced_and_the_old_one_stays_in_the_bundle() -> None:
    client, clock = MemoryClient(), Clock()
    seed(client)
    certs = SelfManagedCerts(client, options(), clock=clock)
    certs.reconcile()
    clock.now += dt.timedelta(days=250)
    certs.reconcile()
    bundle = base64.b64decode(client.get("v1", "Secret", "webhook-cert", "rook")["data"]["ca.crt"])
    assert len(pem_certificates(bundle)) == 2


def test_out_of_cluster_url_replaces_the_service() -> None:
    client = MemoryClient()
    seed(client)
    certs = SelfManagedCerts(client, options(webhook_url="https://127.0.0.1:9443"))
    certs.reconcile()
    pair = certs.current()
    assert pair is not None and "127.0.0.1" in sans(pair.cert_pem)
    config = client.get("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration",
                        "v-hooks")["webhooks"][0]["clientConfig"]
    assert config["url"] == "https://127.0.0.1:9443/validate-x" and "service" not in config
    crd = client.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", "greetings.example.io")
    assert crd["spec"]["conversion"]["webhook"]["clientConfig"]["url"] == "https://127.0.0.1:9443/convert"
    # a replica started later with the Service address takes the url back out of nothing: the
    # certificate lacking the new host is re-issued
    in_cluster = SelfManagedCerts(client, options(webhook_url="https://localhost:9443"))
    in_cluster.reconcile()
    new = in_cluster.current()
    assert new is not None and "localhost" in sans(new.cert_pem)
