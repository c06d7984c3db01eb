"""The HTTPS webhook server: reviews in and out, limits, failures, metrics, certificates, readiness."""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rook_py.framework import metrics
from rook_py.framework.webhook import (
    CertDir,
    KeyPair,
    StaticCert,
    WebhookServer,
    make_ca,
    make_serving_cert,
)
from rook_py.framework.webhook.admission import AdmissionRequest, review

JSON = dict[str, Any]
YEAR = dt.timedelta(days=365)


@pytest.fixture(scope="module")
def ca() -> KeyPair:
    return make_ca("test-ca", YEAR)


def client_context(ca: KeyPair) -> ssl.SSLContext:
    context = ssl.create_default_context(cadata=ca.cert_pem.decode())
    return context


def admission(uid: str = "abc", operation: str = "CREATE") -> JSON:
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": uid, "operation": operation, "kind": {"kind": "Widget"},
                        "object": {"metadata": {"name": "w"}}}}


def handle(request: AdmissionRequest) -> JSON:
    if request.operation == "DELETE":
        raise LookupError("boom\nsecond line never shown")
    if request.operation == "CONNECT":
        time.sleep(1.0)
    return review(request.uid, allowed=True, warnings=[f"seen {request.uid}"])


@pytest.fixture
def server(ca: KeyPair) -> Iterator[WebhookServer]:
    srv = WebhookServer(StaticCert(make_serving_cert(ca, ["127.0.0.1", "localhost"], YEAR)),
                        "127.0.0.1:0", request_timeout=0.3)
    srv.register_admission("/validate-widget", handle)
    srv.serve_in_background()
    try:
        yield srv
    finally:
        srv.shutdown()


def post(conn: http.client.HTTPSConnection, path: str, body: bytes,
         content_type: str = "application/json") -> tuple[int, bytes]:
    conn.request("POST", path, body=body, headers={"Content-Type": content_type})
    response = conn.getresponse()
    return response.status, response.read()


def connect(server: WebhookServer, ca: KeyPair) -> http.client.HTTPSConnection:
    return http.client.HTTPSConnection("127.0.0.1", server.address[1], context=client_context(ca),
                                       timeout=5)


def test_answers_reviews_on_one_kept_alive_connection(server: WebhookServer, ca: KeyPair) -> None:
    conn = connect(server, ca)
    for uid in ("one", "two", "three"):
        status, body = post(conn, "/validate-widget", json.dumps(admission(uid)).encode())
        assert status == 200
        answer = json.loads(body)
        assert answer["kind"] == "AdmissionReview" and answer["apiVersion"] == "admission.k8s.io/v1"
        assert answer["response"] == {"uid": uid, "allowed": True, "warnings": [f"seen {uid}"]}
    conn.close()


def test_a_failing_handler_answers_500_and_the_server_keeps_serving(server: WebhookServer,
                                                                      ca: KeyPair) -> None:
    conn = connect(server, ca)
    status, body = post(conn, "/validate-widget", json.dumps(admission("x", "DELETE")).encode())
    answer = json.loads(body)["response"]
    assert status == 200 and answer["allowed"] is False and answer["uid"] == "x"
    assert answer["status"]["code"] == 500
    assert answer["status"]["message"] == "internal error in webhook /validate-widget: LookupError: boom"
    status, body = post(conn, "/validate-widget", json.dumps(admission("y")).encode())
    assert json.loads(body)["response"]["allowed"] is True


def test_a_slow_handler_times_out(server: WebhookServer, ca: KeyPair) -> None:
    conn = connect(server, ca)
    started = time.monotonic()
    _, body = post(conn, "/validate-widget", json.dumps(admission("slow", "CONNECT")).encode())
    answer = json.loads(body)["response"]
    assert time.monotonic() - started < 0.9
    assert answer["status"]["code"] == 500 and "timed out after 0.3s" in answer["status"]["message"]


def test_limits_and_malformed_bodies(server: WebhookServer, ca: KeyPair) -> None:
    conn = connect(server, ca)
    status, _ = post(conn, "/validate-widget", b"x" * (3 * 1024 * 1024 + 1))
    assert status == 413
    conn = connect(server, ca)
    status, body = post(conn, "/validate-widget", b"{not json")
    answer = json.loads(body)["response"]
    assert status == 200 and answer["allowed"] is False and answer["status"]["code"] == 400
    status, body = post(conn, "/validate-widget", b"{}", content_type="text/plain")
    assert json.loads(body)["response"]["status"]["message"] == \
        "contentType=text/plain, expected application/json"
    status, body = post(conn, "/validate-widget", b'{"apiVersion": "v1", "kind": "Pod"}')
    assert json.loads(body)["response"]["status"]["code"] == 400
    status, _ = post(conn, "/nowhere", b"{}")
    assert status == 404


def sample(name: str, labels: dict[str, str]) -> float:
    value = metrics.REGISTRY.get_sample_value(name, labels)
    return value or 0.0


def test_metrics_use_controller_runtime_names(server: WebhookServer, ca: KeyPair) -> None:
    before = sample("controller_runtime_webhook_requests_total", {"webhook": "/validate-widget", "code": "200"})
    count_before = sample("controller_runtime_webhook_latency_seconds_count", {"webhook": "/validate-widget"})
    conn = connect(server, ca)
    post(conn, "/validate-widget", json.dumps(admission()).encode())
    assert sample("controller_runtime_webhook_requests_total",
                  {"webhook": "/validate-widget", "code": "200"}) == before + 1
    assert sample("controller_runtime_webhook_latency_seconds_count",
                  {"webhook": "/validate-widget"}) == count_before + 1
    assert sample("controller_runtime_webhook_requests_in_flight", {"webhook": "/validate-widget"}) == 0


def test_readiness_needs_a_served_valid_certificate(ca: KeyPair) -> None:
    srv = WebhookServer(StaticCert(make_serving_cert(ca, ["127.0.0.1"], YEAR)), "127.0.0.1:0")
    with pytest.raises(RuntimeError, match="not started"):
        srv.ready()
    srv.serve_in_background()
    try:
        assert srv.ready() is True
    finally:
        srv.shutdown()
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=3)
    expired = WebhookServer(StaticCert(make_serving_cert(ca, ["127.0.0.1"], dt.timedelta(days=1), now=past)),
                            "127.0.0.1:0")
    expired.serve_in_background()
    try:
        with pytest.raises(RuntimeError, match="expired"):
            expired.ready()
    finally:
        expired.shutdown()


def write_pair(directory: Path, pair: KeyPair) -> None:
    # Written aside and renamed in, as kubelet's atomic writer updates a mounted Secret.
    for name, data in (("tls.key", pair.key_pem), ("tls.crt", pair.cert_pem)):
        tmp = directory / f".{name}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, directory / name)


def served_serial(port: int, ca: KeyPair) -> int:
    import socket

    from cryptography import x509

    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            client_context(ca).wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def test_cert_dir_is_reread_when_the_files_change(tmp_path: Path, ca: KeyPair) -> None:
    first = make_serving_cert(ca, ["127.0.0.1"], YEAR)
    write_pair(tmp_path, first)
    source = CertDir(str(tmp_path), poll=0.0)
    srv = WebhookServer(source, "127.0.0.1:0")
    srv.register_admission("/validate-widget", handle)
    srv.serve_in_background()
    try:
        port = srv.address[1]
        assert served_serial(port, ca) == first.certificate.serial_number
        kept_alive = connect(srv, ca)
        post(kept_alive, "/validate-widget", json.dumps(admission()).encode())
        second = make_serving_cert(ca, ["127.0.0.1"], YEAR)
        write_pair(tmp_path, second)
        assert served_serial(port, ca) == second.certificate.serial_number
        # a connection opened before the rotation keeps working
        status, _ = post(kept_alive, "/validate-widget", json.dumps(admission()).encode())
        assert status == 200
        (tmp_path / "tls.crt").write_bytes(b"garbage")  # a broken write keeps the last good pair
        assert served_serial(port, ca) == second.certificate.serial_number
    finally:
        srv.shutdown()


def test_no_certificate_means_no_connection(tmp_path: Path, ca: KeyPair) -> None:
    srv = WebhookServer(CertDir(str(tmp_path), poll=0.0), "127.0.0.1:0")
    srv.serve_in_background()
    try:
        with pytest.raises(RuntimeError, match="no serving certificate"):
            srv.ready()
        with pytest.raises((ssl.SSLError, OSError)):
            served_serial(srv.address[1], ca)
        write_pair(tmp_path, make_serving_cert(ca, ["127.0.0.1"], YEAR))
        assert srv.ready() is True
    finally:
        srv.shutdown()


def test_concurrent_requests(server: WebhookServer, ca: KeyPair) -> None:
    failures: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            conn = connect(server, ca)
            for j in range(10):
                _, body = post(conn, "/validate-widget", json.dumps(admission(f"{i}-{j}")).encode())
                assert json.loads(body)["response"]["uid"] == f"{i}-{j}"
        except BaseException as err:
            failures.append(err)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert failures == []
