"""Greeting provider: a ``Greeting`` custom resource rendered into an owned ConfigMap.

Deliberately small and written against the framework's public API only, like a third-party
plugin would be: Provider, OperatorSettings, ControllerBuilder, predicates, objects helpers,
events. It shares nothing with the ChubaoFS provider.
"""

from __future__ import annotations

import contextlib
import copy
from typing import Any

from rook_py.framework import ControllerBuilder, Manager, OperatorSettings, Provider, Request, Result
from rook_py.framework.client.errors import AlreadyExists
from rook_py.framework.controller import GenerationChangedPredicate
from rook_py.framework.objects import apply, set_condition, set_controller_reference, update_status
from tests.support import waiting

GROUP, VERSION, KIND = "greetings.example.io", "v1alpha1", "Greeting"
API_VERSION = f"{GROUP}/{VERSION}"

GREETING_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"greetings.{GROUP}"},
    "spec": {
        "group": GROUP,
        "scope": "Namespaced",
        "names": {"plural": "greetings", "singular": "greeting", "kind": KIND, "listKind": "GreetingList"},
        "versions": [{
            "name": VERSION, "served": True, "storage": True,
            "subresources": {"status": {}},
            "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                "spec": {"type": "object", "required": ["message"], "properties": {
                    "message": {"type": "string"}, "shout": {"type": "boolean"}}},
                "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            }}},
        }],
    },
}


def wait_established(client: Any, name: str, timeout: float = 30.0) -> None:
    """Custom resources are served only once the CRD reports Established."""
    def established() -> bool:
        crd = client.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", name)
        return any(c.get("type") == "Established" and c.get("status") == "True"
                   for c in (crd.get("status") or {}).get("conditions") or ())

    waiting.eventually(established, timeout, interval=0.05, what=f"CRD {name} to be Established")


class GreetingReconciler:
    def __init__(self, manager: Manager) -> None:
        self.client = manager.client
        self.reader = manager.reader
        self.events = manager.event_recorder("greeting-controller")

    def reconcile(self, request: Request) -> Result | None:
        greeting = self.reader.get(API_VERSION, KIND, request.name, request.namespace)
        if greeting is None or greeting["metadata"].get("deletionTimestamp"):
            return None  # children go with it through garbage collection
        spec = greeting.get("spec") or {}
        text = spec["message"].upper() if spec.get("shout") else spec["message"]
        desired: dict[str, Any] = {
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": f"{request.name}-greeting", "namespace": request.namespace,
                         "labels": {"greetings.example.io/owner": request.name}},
            "data": {"greeting": text},
        }
        set_controller_reference(greeting, desired)
        result = apply(self.client, desired, reader=self.reader)
        if result.action != "unchanged":
            self.events.event(greeting, "Normal", "Rendered", f"ConfigMap {result.action}")
        status = copy.deepcopy(greeting.get("status") or {})
        status["observedGeneration"] = greeting["metadata"].get("generation")
        status["rendered"] = text
        set_condition(status, "Ready", "True", "Rendered", "greeting rendered",
                      greeting["metadata"].get("generation"))
        update_status(self.client, greeting, status)
        return None


class GreetingProvider(Provider):
    name = "greeting"

    def crds(self) -> list[dict[str, Any]]:
        return [copy.deepcopy(GREETING_CRD)]

    def pre_start(self, client: Any, settings: OperatorSettings) -> None:
        if not settings.install_crds:
            return
        for crd in self.crds():
            with contextlib.suppress(AlreadyExists):
                client.create(crd)
            wait_established(client, crd["metadata"]["name"])

    def setup(self, manager: Manager, settings: OperatorSettings) -> None:
        (ControllerBuilder(manager)
         .named("greeting")
         .for_(API_VERSION, KIND, predicates=[GenerationChangedPredicate()])
         .owns("v1", "ConfigMap")
         .with_options(max_concurrent_reconciles=settings.max_concurrent_reconciles)
         .complete(GreetingReconciler(manager)))


# -- v1 beside v1alpha1, converted hub-and-spoke by a conversion webhook -------------------------
#
# v1alpha1: spec {message, shout?}; v1 (the hub): spec {greeting: {text, style?: shout | plain}}.
# Absent stays absent both ways, so every object survives a round trip unchanged.

HUB_VERSION = "v1"
API_VERSION_V1 = f"{GROUP}/{HUB_VERSION}"


def v1alpha1_to_v1(obj: dict[str, Any]) -> dict[str, Any]:
    spec = dict(obj.get("spec") or {})
    greeting: dict[str, Any] = {"text": spec.pop("message", "")}
    if "shout" in spec:
        greeting["style"] = "shout" if spec.pop("shout") else "plain"
    obj["spec"] = {**spec, "greeting": greeting}
    return obj


def v1_to_v1alpha1(obj: dict[str, Any]) -> dict[str, Any]:
    spec = dict(obj.get("spec") or {})
    greeting = dict(spec.pop("greeting", None) or {})
    out: dict[str, Any] = {**spec, "message": greeting.get("text", "")}
    if "style" in greeting:
        out["shout"] = greeting["style"] == "shout"
    obj["spec"] = out
    return obj


def greeting_hub() -> Any:
    from rook_py.framework.webhook import Hub

    return Hub(GROUP, KIND, HUB_VERSION).spoke(VERSION, v1alpha1_to_v1, v1_to_v1alpha1)


def greeting_crd_with_v1(conversion_url: str, ca_bundle: bytes) -> dict[str, Any]:
    """The Greeting CRD serving v1alpha1 (still stored) and v1, converted by a webhook at
    ``conversion_url`` (``/convert`` of a framework ``WebhookServer``)."""
    import base64

    crd = copy.deepcopy(GREETING_CRD)
    v1_schema = {"type": "object", "properties": {
        "spec": {"type": "object", "required": ["greeting"], "properties": {
            "greeting": {"type": "object", "required": ["text"], "properties": {
                "text": {"type": "string"}, "style": {"type": "string", "enum": ["shout", "plain"]}}}}},
        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}
    crd["spec"]["versions"].append({"name": HUB_VERSION, "served": True, "storage": False,
                                    "subresources": {"status": {}},
                                    "schema": {"openAPIV3Schema": v1_schema}})
    crd["spec"]["conversion"] = {"strategy": "Webhook", "webhook": {
        "conversionReviewVersions": ["v1"],
        "clientConfig": {"url": conversion_url, "caBundle": base64.b64encode(ca_bundle).decode()}}}
    return crd
