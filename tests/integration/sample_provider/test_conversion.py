"""Greeting v1alpha1 <-> v1 through a conversion webhook, on the emulator and a real kube-apiserver."""

from __future__ import annotations

import base64
import copy
import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rook_py.envtest import emulator_only
from rook_py.framework.client import errors
from rook_py.framework.webhook import StaticCert, WebhookBuilder, WebhookServer, make_ca, make_serving_cert
from tests.integration.sample_provider.provider import (
    API_VERSION,
    API_VERSION_V1,
    KIND,
    greeting_crd_with_v1,
    greeting_hub,
    wait_established,
)

specs = st.fixed_dictionaries({"message": st.text(max_size=20)},
                              optional={"shout": st.booleans(), "extra": st.integers()})


@given(specs)
def test_every_v1alpha1_object_survives_a_round_trip(spec: dict[str, Any]) -> None:
    hub = greeting_hub()
    obj = {"apiVersion": API_VERSION, "kind": KIND, "metadata": {"name": "g"}, "spec": spec}
    there = hub.convert(copy.deepcopy(obj), API_VERSION_V1)
    assert there["apiVersion"] == API_VERSION_V1 and there["spec"]["greeting"]["text"] == spec["message"]
    assert hub.convert(there, API_VERSION) == obj


@given(st.fixed_dictionaries({"text": st.text(max_size=20)}, optional={"style": st.sampled_from(["shout", "plain"])}))
def test_every_v1_object_survives_a_round_trip(greeting: dict[str, Any]) -> None:
    hub = greeting_hub()
    obj = {"apiVersion": API_VERSION_V1, "kind": KIND, "metadata": {"name": "g"}, "spec": {"greeting": greeting}}
    assert hub.convert(hub.convert(copy.deepcopy(obj), API_VERSION), API_VERSION_V1) == obj


@pytest.fixture
def conversion() -> Iterator[tuple[str, bytes]]:
    ca = make_ca("conversion-ca", dt.timedelta(days=1))
    server = WebhookServer(StaticCert(make_serving_cert(ca, ["127.0.0.1"], dt.timedelta(days=1))), "127.0.0.1:0")
    assert WebhookBuilder(None, server).for_(API_VERSION_V1, KIND).with_conversion(greeting_hub()).complete() == [
        "/convert"]
    server.serve_in_background()
    try:
        yield f"https://127.0.0.1:{server.address[1]}/convert", ca.cert_pem
    finally:
        server.shutdown()


def test_reads_and_writes_in_either_version(envtest: Any, conversion: tuple[str, bytes]) -> None:
    client = envtest.client()
    crd = greeting_crd_with_v1(*conversion)
    client.create(crd)
    wait_established(client, crd["metadata"]["name"])
    client.discovery.invalidate()
    old = client.create({"apiVersion": API_VERSION, "kind": KIND,
                         "metadata": {"name": "hello", "namespace": "default"},
                         "spec": {"message": "hi", "shout": True}})
    as_v1 = client.get(API_VERSION_V1, KIND, "hello", "default")
    assert as_v1["apiVersion"] == API_VERSION_V1
    assert as_v1["spec"] == {"greeting": {"text": "hi", "style": "shout"}}
    assert as_v1["metadata"]["uid"] == old["metadata"]["uid"]
    as_v1["spec"]["greeting"] = {"text": "hello there"}
    written = client.update(as_v1)
    assert written["spec"] == {"greeting": {"text": "hello there"}}
    assert client.get(API_VERSION, KIND, "hello", "default")["spec"] == {"message": "hello there"}
    created_v1 = client.create({"apiVersion": API_VERSION_V1, "kind": KIND,
                                "metadata": {"name": "new", "namespace": "default"},
                                "spec": {"greeting": {"text": "yo", "style": "plain"}}})
    assert created_v1["spec"]["greeting"]["style"] == "plain"
    assert client.get(API_VERSION, KIND, "new", "default")["spec"] == {"message": "yo", "shout": False}
    listed = client.list(API_VERSION_V1, KIND, "default")["items"]
    assert sorted(i["spec"]["greeting"]["text"] for i in listed) == ["hello there", "yo"]


@emulator_only(reason="a Service is reached only through kube-proxy and endpoints, which a bare control plane lacks")
def test_a_conversion_webhook_behind_a_service(envtest: Any) -> None:
    """``clientConfig.service`` resolved as admission webhooks' are (Environment.serve_service):
    the certificate must name ``<service>.<namespace>.svc`` and chain to ``caBundle``."""
    ca = make_ca("conversion-ca", dt.timedelta(days=1))
    server = WebhookServer(StaticCert(make_serving_cert(ca, ["greeting-conversion.default.svc"],
                                                        dt.timedelta(days=1))), "127.0.0.1:0")
    WebhookBuilder(None, server).for_(API_VERSION_V1, KIND).with_conversion(greeting_hub()).complete()
    server.serve_in_background()
    try:
        client = envtest.client()
        client.create({"apiVersion": "v1", "kind": "Service",
                       "metadata": {"name": "greeting-conversion", "namespace": "default"},
                       "spec": {"ports": [{"port": 8443, "targetPort": 9443}]}})
        envtest.serve_service("default", "greeting-conversion", 8443, ("127.0.0.1", server.address[1]))
        crd = greeting_crd_with_v1("https://unused/convert", ca.cert_pem)
        crd["spec"]["conversion"]["webhook"]["clientConfig"] = {
            "service": {"namespace": "default", "name": "greeting-conversion", "path": "/convert", "port": 8443},
            "caBundle": base64.b64encode(ca.cert_pem).decode()}
        client.create(crd)
        wait_established(client, crd["metadata"]["name"])
        client.discovery.invalidate()
        client.create({"apiVersion": API_VERSION, "kind": KIND, "metadata": {"name": "hello", "namespace": "default"},
                       "spec": {"message": "hi", "shout": True}})
        assert client.get(API_VERSION_V1, KIND, "hello", "default")["spec"] == {
            "greeting": {"text": "hi", "style": "shout"}}

        # a caBundle the serving certificate does not chain to: the conversion fails
        other = make_ca("another-ca", dt.timedelta(days=1))
        current = client.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", crd["metadata"]["name"])
        current["spec"]["conversion"]["webhook"]["clientConfig"]["caBundle"] = base64.b64encode(
            other.cert_pem).decode()
        client.update(current)
        with pytest.raises(errors.InternalError) as err:
            client.get(API_VERSION_V1, KIND, "hello", "default")
        assert "conversion webhook for" in str(err.value)
        assert "x509" in str(err.value) and "greeting-conversion.default.svc:8443/convert" in str(err.value)
    finally:
        server.shutdown()
