"""The Greeting provider runs end to end on envtest through the generic operator path."""

from __future__ import annotations

import threading
import urllib.request
from typing import Any

from rook_py.framework import Manager, OperatorSettings
from rook_py.framework.client.errors import NotFound
from tests.integration.sample_provider.provider import API_VERSION, KIND, GreetingProvider
from tests.support.waiting import eventually

# Not rendered yet: no object, no key, or the rendered object fails a check.
NOT_YET = (NotFound, KeyError, AssertionError)


def test_greeting_provider_end_to_end(envtest: Any) -> None:
    client = envtest.client()
    provider = GreetingProvider()
    settings = OperatorSettings(provider="greeting", namespace="default", install_crds=True, lease_duration=2.0,
                                renew_deadline=1.0, retry_period=0.1, metrics_bind_address="127.0.0.1:0",
                                health_probe_bind_address="127.0.0.1:0", max_concurrent_reconciles=2)
    provider.pre_start(client, settings)
    provider.pre_start(client, settings)  # every replica runs it: must be idempotent
    mgr = Manager(client, settings.manager_options())
    provider.setup(mgr, settings)
    stop = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            mgr.start(stop)
        except BaseException as err:
            errors.append(err)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        assert mgr.elected.wait(15)
        client.create({"apiVersion": API_VERSION, "kind": KIND,
                       "metadata": {"name": "hello", "namespace": "default"},
                       "spec": {"message": "hi there"}}, namespace="default")

        def rendered(text: str) -> dict[str, Any] | None:
            cm = client.get("v1", "ConfigMap", "hello-greeting", "default")
            return cm if cm.get("data", {}).get("greeting") == text else None

        cm = eventually(lambda: rendered("hi there"), ignore=NOT_YET)
        owner = cm["metadata"]["ownerReferences"][0]
        assert owner["kind"] == KIND and owner["name"] == "hello" and owner["controller"] is True

        greeting = eventually(lambda: (lambda g: g if g.get("status", {}).get("observedGeneration") == 1
                                       else None)(client.get(API_VERSION, KIND, "hello", "default")),
                              ignore=NOT_YET)
        assert greeting["status"]["conditions"][0]["type"] == "Ready"

        # A spec change (generation bump) re-renders.
        client.patch(API_VERSION, KIND, "hello", {"spec": {"shout": True}}, namespace="default")
        eventually(lambda: rendered("HI THERE"), ignore=NOT_YET)

        # The controller owns the ConfigMap: a manual edit is reverted, a deletion is undone.
        client.patch("v1", "ConfigMap", "hello-greeting", {"data": {"greeting": "tampered"}},
                     namespace="default")
        eventually(lambda: rendered("HI THERE"), ignore=NOT_YET)
        client.delete("v1", "ConfigMap", "hello-greeting", "default")
        eventually(lambda: rendered("HI THERE"), ignore=NOT_YET)

        events = eventually(lambda: [e for e in client.list("v1", "Event", "default")["items"]
                                     if e["involvedObject"].get("name") == "hello"], ignore=NOT_YET)
        assert events[0]["reason"] == "Rendered" and events[0]["source"]["component"] == "greeting-controller"

        assert mgr.health_address is not None
        host, port = mgr.health_address
        with urllib.request.urlopen(f"http://{host}:{port}/readyz", timeout=5) as resp:
            assert resp.status == 200
        assert mgr.metrics_address is not None
        host, port = mgr.metrics_address
        with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5) as resp:
            body = resp.read().decode()
        assert 'controller_runtime_reconcile_total{controller="greeting",result="success"}' in body
        assert 'workqueue_adds_total{controller="greeting",name="greeting"}' in body
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive() and errors == []
    lease = client.get("coordination.k8s.io/v1", "Lease", settings.lease_name(), "default")
    assert lease["spec"]["holderIdentity"] == ""  # released on shutdown
