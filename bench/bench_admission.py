"""Admission round trip p50/p99 at 100 and 500 requests/s (target: p99 < 10 ms straight to the
webhook at 500/s).

Two paths, each paced open-loop (requests are sent on a fixed schedule by 4 client threads, each
on its own kept-alive connection, so a slow answer does not slow the schedule down):

* straight: an AdmissionReview for a ChubaoMonitor POSTed over HTTPS to the operator's validating
  webhook (``MonitorValidator``: the controller's whole validation), served by a
  ``WebhookServer`` in its own process;
* through the emulator: a dry-run create of a ChubaoMonitor sent to the envtest emulator (its own
  process), which runs schema defaulting, the CEL rules and the mutating + validating webhooks
  (same webhook process) before answering; and, for the overhead, the same without webhooks.

Latency is measured from the moment a request is sent to the moment its answer is read. Client
and servers share the machine's 2 cores (a noisy neighbour is possible: the figures are medians
of what one run saw, not guarantees).
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

RATES = (100, 500)
SECONDS = 5.0
THREADS = 4


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def serve(cert_dir: str, port_file: str) -> None:
    """Child process: the ChubaoMonitor webhooks on 127.0.0.1, until stdin closes."""
    from rook_py.chubaofs.api.webhooks import (
        MUTATING_PATH,
        VALIDATING_PATH,
        MonitorDefaulter,
        MonitorValidator,
    )
    from rook_py.framework.logging import configure_logging
    from rook_py.framework.webhook import CertDir, WebhookServer
    from rook_py.framework.webhook.admission import defaulting_handle, validating_handle

    configure_logging("warning", "console")
    server = WebhookServer(CertDir(cert_dir), "127.0.0.1:0")
    server.register_admission(VALIDATING_PATH, validating_handle(MonitorValidator()))
    server.register_admission(MUTATING_PATH, defaulting_handle(MonitorDefaulter()))
    server.serve_in_background()
    Path(port_file + ".tmp").write_text(str(server.address[1]))
    os.replace(port_file + ".tmp", port_file)
    sys.stdin.read()
    server.shutdown()


def _review(i: int) -> bytes:
    from rook_py.chubaofs.api import types as t

    return json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": f"u{i}", "operation": "CREATE", "namespace": "bench", "name": f"m{i}",
        "kind": {"group": t.GROUP, "version": t.VERSION, "kind": t.KIND},
        "object": {"apiVersion": t.API_VERSION, "kind": t.KIND, "metadata": {"name": f"m{i}", "namespace": "bench"},
                   "spec": {"cluster": {"name": "cfs"}, "prometheus": {"storage": {"size": "20Gi"}}}}}}).encode()


def _paced(rate: int, send: Any, connect: Any) -> tuple[list[float], int]:
    """Send ``rate * SECONDS`` requests on a fixed schedule; returns (latencies, errors)."""
    total = int(rate * SECONDS)
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    start = time.perf_counter() + 0.2

    def worker(k: int) -> None:
        conn = connect()
        mine: list[float] = []
        for i in range(k, total, THREADS):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            sent = time.perf_counter()
            try:
                send(conn, i)
            except Exception:
                with lock:
                    errors[0] += 1
                conn = connect()
                continue
            mine.append(time.perf_counter() - sent)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return latencies, errors[0]


def run() -> str:
    from rook_py.chubaofs.api import types as t
    from rook_py.chubaofs.api.crd import chubao_monitor_crd
    from rook_py.chubaofs.api.webhooks import webhook_configurations
    from rook_py.envtest import Environment
    from rook_py.framework.webhook import make_ca, make_serving_cert

    rows: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-admission-") as tmp:
        ca = make_ca("bench-ca", dt.timedelta(days=1))
        pair = make_serving_cert(ca, ["127.0.0.1"], dt.timedelta(days=1))
        Path(tmp, "tls.crt").write_bytes(pair.cert_pem)
        Path(tmp, "tls.key").write_bytes(pair.key_pem)
        port_file = str(Path(tmp, "port"))
        child = subprocess.Popen([sys.executable, "-c", "import sys; from bench.bench_admission import serve; "
                                  "serve(sys.argv[1], sys.argv[2])", tmp, port_file],
                                 stdin=subprocess.PIPE, cwd=Path(__file__).resolve().parent.parent)
        try:
            deadline = time.monotonic() + 30
            while not os.path.exists(port_file):
                if time.monotonic() > deadline or child.poll() is not None:
                    raise RuntimeError("the webhook process did not start")
                time.sleep(0.05)
            port = int(Path(port_file).read_text())
            context = ssl.create_default_context(cadata=ca.cert_pem.decode())

            def connect_webhook() -> http.client.HTTPSConnection:
                return http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)

            def send_review(conn: http.client.HTTPSConnection, i: int) -> None:
                conn.request("POST", "/validate-chubaofs-rook-io-v1alpha1-chubaomonitor", body=_review(i),
                             headers={"Content-Type": "application/json"})
                answer = json.loads(conn.getresponse().read())
                assert answer["response"]["allowed"] is True

            _paced(50, send_review, connect_webhook)  # warm-up
            for rate in RATES:
                lat, errs = _paced(rate, send_review, connect_webhook)
                rows.append(_row("straight to the webhook", rate, lat, errs))

            with Environment(backend="emulator", in_process=False, simulate_cluster=False) as env:
                env.install_crds([chubao_monitor_crd()])
                client = env.client(qps=None)
                client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench"}})
                path = f"/apis/{t.API_VERSION}/namespaces/bench/{t.PLURAL}"

                def connect_api() -> Any:
                    return client

                def send_create(c: Any, i: int) -> None:
                    c.request_json("POST", path, query={"dryRun": "All"}, body={
                        "apiVersion": t.API_VERSION, "kind": t.KIND, "metadata": {"name": f"m{i}"},
                        "spec": {"cluster": {"name": "cfs"}}})

                _paced(50, send_create, connect_api)
                for rate in RATES:
                    lat, errs = _paced(rate, send_create, connect_api)
                    rows.append(_row("emulator, no webhooks (baseline)", rate, lat, errs))
                env.install_webhooks(webhook_configurations("rook-chubaofs"), url=f"https://127.0.0.1:{port}",
                                     ca_bundle=ca.cert_pem)
                _paced(50, send_create, connect_api)
                for rate in RATES:
                    lat, errs = _paced(rate, send_create, connect_api)
                    rows.append(_row("through the emulator (mutating + validating)", rate, lat, errs))
        finally:
            assert child.stdin is not None
            child.stdin.close()
            child.wait(10)
    header = ("| path | rate (req/s) | requests | errors | p50 (ms) | p99 (ms) |\n"
              "|---|---:|---:|---:|---:|---:|\n")
    return (__doc__ or "").split("\n\n")[0] + "\n\n" + header + "\n".join(rows) + "\n"


def _row(path: str, rate: int, latencies: list[float], errors: int) -> str:
    return (f"| {path} | {rate} | {len(latencies) + errors} | {errors} | "
            f"{_percentile(latencies, 50) * 1000:.2f} | {_percentile(latencies, 99) * 1000:.2f} |")


if __name__ == "__main__":
    print(run())
