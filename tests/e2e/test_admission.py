"""Admission end to end: the operator serves its webhooks (--webhook-url, self-managed
certificates) and kubectl shows what a user sees; a certificate rotates under load. Both back ends."""

from __future__ import annotations

import contextlib
import datetime as dt
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from rook_py.chubaofs.api import types as t
from rook_py.chubaofs.api.crd import chubao_monitor_crd
from rook_py.chubaofs.api.webhooks import (
    CLUSTER_LABEL,
    VALIDATING_PATH,
    MonitorValidator,
    webhook_configurations,
)
from rook_py.chubaofs.provider import ChubaoFSProvider
from rook_py.chubaofs.settings import ChubaoFSSettings
from rook_py.framework.client import errors
from rook_py.framework.operator import run_operator
from rook_py.framework.provider import OperatorSettings
from rook_py.framework.webhook import CertOptions, SelfManagedCerts, WebhookServer
from rook_py.framework.webhook.admission import validating_handle
from tests.support.waiting import eventually

KUBECTL = shutil.which("kubectl")
OPERATOR_NS, USER_NS = "rook-chubaofs", "monitors"
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed (looked in PATH)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def create_namespaces(client: Any) -> None:
    for ns in (OPERATOR_NS, USER_NS):
        with contextlib.suppress(errors.AlreadyExists):
            client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})


class Kubectl:
    def __init__(self, kubeconfig: str, cache: Path) -> None:
        self.base = [str(KUBECTL), f"--kubeconfig={kubeconfig}", f"--cache-dir={cache}"]

    def apply(self, tmp: Path, obj: dict[str, Any]) -> subprocess.CompletedProcess[str]:
        path = tmp / f"{obj['metadata']['name']}.yaml"
        path.write_text(yaml.safe_dump(obj))
        return subprocess.run([*self.base, "apply", "--validate=false", "-f", str(path)], capture_output=True,
                              text=True, timeout=60, check=False)


def monitor(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": t.API_VERSION, "kind": t.KIND, "metadata": {"name": name, "namespace": USER_NS},
            "spec": {"cluster": {"name": "cfs"}, **spec}}


@pytest.fixture
def operator(envtest: Any) -> Iterator[Any]:
    """The ChubaoFS operator out of cluster, serving its webhooks on 127.0.0.1 (--webhook-url)."""
    admin = envtest.client()
    create_namespaces(admin)
    envtest.install_crds([chubao_monitor_crd()])
    for config in webhook_configurations(OPERATOR_NS):
        admin.create(config)
    port = free_port()
    settings = OperatorSettings(provider="chubaofs", namespace=OPERATOR_NS, image="rook-py:test",
                                leader_election=False, metrics_bind_address="0",
                                health_probe_bind_address="0", graceful_shutdown_timeout=5.0,
                                webhook_url=f"https://127.0.0.1:{port}", webhook_port=port,
                                provider_settings=ChubaoFSSettings(reload_settle=0.0, enable_agent=False,
                                                                   enable_discovery_daemon=False))
    stop = threading.Event()
    thread = threading.Thread(target=run_operator, args=(ChubaoFSProvider(), settings),
                              kwargs={"client": envtest.client(), "stop": stop}, daemon=True)
    thread.start()

    def injected() -> bool:
        config = admin.get("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration",
                           "rook-chubaofs-validating-webhook")
        client_config = config["webhooks"][0]["clientConfig"]
        return bool(client_config.get("caBundle")) and client_config.get("url", "").startswith(
            f"https://127.0.0.1:{port}/")

    eventually(injected, 30, interval=0.05, ignore=(errors.ApiError,), what="CA bundle and URL injected")
    socket_ready = eventually(lambda: _connects(port), 30, interval=0.05, what="webhook port open")
    assert socket_ready
    if envtest.backend == "real":
        time.sleep(1.0)  # kube-apiserver's configuration informer
    def stop_operator() -> None:
        stop.set()
        thread.join(30)
        assert not thread.is_alive()

    admin.stop_operator = stop_operator  # the failurePolicy test takes the operator away
    try:
        yield admin
    finally:
        stop_operator()


def _connects(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def test_what_kubectl_shows(envtest: Any, operator: Any, tmp_path: Path) -> None:
    kubectl = Kubectl(envtest.kubeconfig, tmp_path / "cache")
    # Refused by the webhook: the controller's own validation, at apply time.
    bad = kubectl.apply(tmp_path, monitor("bad", consul={"replicas": 1, "storage": {"size": "0"}}))
    assert bad.returncode == 1
    # kubectl prints an Invalid status from its causes (the webhook's field errors travel in them)
    assert bad.stderr == ('The ChubaoMonitor "bad" is invalid: spec.consul.storage.size: Invalid value: "0": '
                          "must be greater than zero\n"), bad.stderr
    # Refused by the CRD's CEL rules, before any webhook.
    even = kubectl.apply(tmp_path, monitor("even", consul={"replicas": 2}))
    assert even.returncode == 1
    assert ('The ChubaoMonitor "even" is invalid: spec.consul: Invalid value: "object": replicas must be 1, 3 or 5'
            in even.stderr), even.stderr
    # Stored, with a warning for the Secret that does not exist yet, and defaults filled in.
    good = kubectl.apply(tmp_path, monitor("good", grafana={"adminSecret": "grafana-admin"},
                                           prometheus={"storage": {"size": "20Gi"}}))
    assert good.returncode == 0, good.stderr
    assert "Warning: spec.grafana.adminSecret: Secret 'grafana-admin' not found" in good.stderr
    assert "chubaomonitor.chubaofs.rook.io/good created" in good.stdout
    stored = operator.get(t.API_VERSION, t.KIND, "good", USER_NS)
    assert stored["spec"]["consul"]["replicas"] == 3                    # schema default
    assert stored["metadata"]["labels"][CLUSTER_LABEL] == "cfs"          # the webhook's default
    # A shrinking volume is refused with what to do instead.
    shrink = kubectl.apply(tmp_path, monitor("good", grafana={"adminSecret": "grafana-admin"},
                                             prometheus={"storage": {"size": "10Gi"}}))
    assert shrink.returncode == 1
    assert ("spec.prometheus.storage.size: Forbidden: may not shrink from 20Gi to 10Gi: a PersistentVolumeClaim "
            "cannot shrink; keep 20Gi or more") in shrink.stderr
    grow = kubectl.apply(tmp_path, monitor("good", grafana={"adminSecret": "grafana-admin"},
                                           prometheus={"storage": {"size": "30Gi"}}))
    assert grow.returncode == 0, grow.stderr
    # The operator's own namespace is never sent to the webhook (a broken operator stays repairable).
    own = kubectl.apply(tmp_path, {**monitor("own", consul={"replicas": 1, "storage": {"size": "0"}}),
                                   "metadata": {"name": "own", "namespace": OPERATOR_NS}})
    assert own.returncode == 0, own.stderr


def test_failure_policy_fail_while_no_replica_serves(envtest: Any, operator: Any, tmp_path: Path) -> None:
    kubectl = Kubectl(envtest.kubeconfig, tmp_path / "cache")
    assert kubectl.apply(tmp_path, monitor("kept")).returncode == 0
    operator.stop_operator()
    refused = kubectl.apply(tmp_path, monitor("new"))
    assert refused.returncode == 1
    assert ('Internal error occurred: failed calling webhook "mchubaomonitors.chubaofs.rook.io": failed to call '
            "webhook: Post") in refused.stderr, refused.stderr
    # Deleting is never blocked, and neither is the operator's own namespace.
    operator.delete(t.API_VERSION, t.KIND, "kept", USER_NS)
    own = kubectl.apply(tmp_path, {**monitor("own"), "metadata": {"name": "own", "namespace": OPERATOR_NS}})
    assert own.returncode == 0, own.stderr
    # With the operator gone for good, deleting its configurations (they ship in operator.yaml)
    # opens the door again; the CRD's CEL rules still hold.
    for kind, name in (("MutatingWebhookConfiguration", "rook-chubaofs-mutating-webhook"),
                       ("ValidatingWebhookConfiguration", "rook-chubaofs-validating-webhook")):
        operator.delete("admissionregistration.k8s.io/v1", kind, name)
    if envtest.backend == "real":
        time.sleep(1.0)
    assert kubectl.apply(tmp_path, monitor("new")).returncode == 0
    assert kubectl.apply(tmp_path, monitor("even", consul={"replicas": 2})).returncode == 1


def served_serial(port: int, ca_pem: bytes) -> int:
    from cryptography import x509

    context = ssl.create_default_context(cadata=ca_pem.decode())
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def test_certificate_rotation_under_load(envtest: Any) -> None:
    admin = envtest.client()
    create_namespaces(admin)
    envtest.install_crds([chubao_monitor_crd()])
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    certs = SelfManagedCerts(admin, CertOptions(
        namespace=OPERATOR_NS, secret_name="webhook-cert", service_name="rook-chubaofs-webhook",
        validating_configurations=["rook-chubaofs-validating-webhook"], webhook_url=url,
        serving_validity=dt.timedelta(seconds=4), rotate_fraction=0.5, resync=0.1))
    server = WebhookServer(certs, f"127.0.0.1:{port}")
    server.register_admission(VALIDATING_PATH, validating_handle(MonitorValidator()))
    (validating,) = [c for c in webhook_configurations(OPERATOR_NS) if c["kind"] == "ValidatingWebhookConfiguration"]
    admin.create(validating)
    stop = threading.Event()
    upkeep = threading.Thread(target=certs.start, args=(stop,), daemon=True)
    upkeep.start()
    try:
        assert certs.injected.wait(15)
        server.serve_in_background()
        if envtest.backend == "real":
            time.sleep(1.0)
        serials = {served_serial(port, certs.ca_bundle)}
        failures: list[str] = []
        deadline = time.monotonic() + 8.0
        count = 0
        while time.monotonic() < deadline and count < 400:
            count += 1
            try:  # dry-run creates: admitted through the webhook, nothing stored
                admin.request_json("POST", f"/apis/{t.API_VERSION}/namespaces/{USER_NS}/{t.PLURAL}",
                                   query={"dryRun": "All"}, body=monitor(f"m{count}"))
            except errors.ApiError as err:
                failures.append(str(err))
            try:
                serials.add(served_serial(port, certs.ca_bundle))
            except (OSError, ssl.SSLError) as err:
                failures.append(f"handshake: {err}")
            with pytest.raises(errors.Invalid):  # the webhook really is in the path
                if count % 50 == 1:
                    admin.request_json("POST", f"/apis/{t.API_VERSION}/namespaces/{USER_NS}/{t.PLURAL}",
                                       query={"dryRun": "All"},
                                       body=monitor("zero", consul={"replicas": 1, "storage": {"size": "0"}}))
                else:
                    raise errors.Invalid("skipped")
        assert failures == []
        assert len(serials) >= 2, "the serving certificate was rotated at least once"
        assert count >= 20
    finally:
        stop.set()
        upkeep.join(5)
        server.shutdown()
