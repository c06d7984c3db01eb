"""Hot reload over HTTP and the reload / settle / fallback decision."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from rook_py.chubaofs.monitor.common import ANNOTATION_CONFIG_HASH, ANNOTATION_LOADED_CONFIG_HASH
from rook_py.chubaofs.monitor.reload import ConfigDelivery, HttpReloader

JSON = dict[str, Any]


class _Handler(BaseHTTPRequestHandler):
    status = 200
    seen: list[tuple[str, str]] = []

    def do_POST(self) -> None:
        type(self).seen.append(("POST", self.path))
        self.send_response(type(self).status)
        self.end_headers()
        self.wfile.write(b"failed to reload config" if type(self).status >= 400 else b"")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, type[_Handler]]]:
    handler = type("Handler", (_Handler,), {"status": 200, "seen": []})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", handler
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def test_http_reloader_posts_to_each_pod(server: tuple[str, type[_Handler]]) -> None:
    url, handler = server
    assert HttpReloader(timeout=2).reload([url, url + "/"]) == []
    assert handler.seen == [("POST", "/-/reload"), ("POST", "/-/reload")]


def test_http_reloader_reports_errors(server: tuple[str, type[_Handler]]) -> None:
    url, handler = server
    handler.status = 500
    (failure,) = HttpReloader(timeout=2).reload([url])
    assert "HTTP 500" in failure and "failed to reload config" in failure
    # A port nobody listens on: refused quickly, reported, no exception.
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    (refused,) = HttpReloader(timeout=1).reload([f"http://127.0.0.1:{closed_port}"])
    assert refused.startswith(f"http://127.0.0.1:{closed_port}:")


class FakeReloader:
    def __init__(self, failures: list[str] | None = None) -> None:
        self.failures = failures or []
        self.calls: list[list[str]] = []

    def reload(self, base_urls: Any) -> list[str]:
        self.calls.append(list(base_urls))
        return list(self.failures)


def workload(loaded: str | None = None, template: str | None = None) -> JSON:
    meta: JSON = {"name": "p"}
    if loaded:
        meta["annotations"] = {ANNOTATION_LOADED_CONFIG_HASH: loaded}
    tmeta: JSON = {"annotations": {ANNOTATION_CONFIG_HASH: template}} if template else {}
    return {"metadata": meta, "spec": {"template": {"metadata": tmeta}}}


def test_new_workload_needs_no_reload() -> None:
    reloader = FakeReloader()
    d = ConfigDelivery(reloader).deliver("k", None, "h1", ["u"])
    assert (d.loaded_hash, d.template_hash, d.reloaded) == ("h1", None, False)
    assert reloader.calls == []


def test_unchanged_config_is_left_alone() -> None:
    reloader = FakeReloader()
    d = ConfigDelivery(reloader).deliver("k", workload("h1", "h0"), "h1", ["u"])
    assert (d.loaded_hash, d.template_hash) == ("h1", "h0") and reloader.calls == []


def test_change_is_reloaded_then_recorded_after_settling() -> None:
    now = [100.0]
    reloader = FakeReloader()
    delivery = ConfigDelivery(reloader, settle_seconds=90, clock=lambda: now[0])
    first = delivery.deliver("k", workload("h1"), "h2", ["u1", "u2"])
    assert first.reloaded and first.loaded_hash == "h1" and first.requeue_after == 90
    assert first.template_hash is None, "a hot reload never touches the pod template"
    now[0] += 30
    second = delivery.deliver("k", workload("h1"), "h2", ["u1", "u2"])
    assert second.loaded_hash == "h1" and second.requeue_after == 60
    now[0] += 60
    done = delivery.deliver("k", workload("h1"), "h2", ["u1", "u2"])
    assert done.loaded_hash == "h2" and done.requeue_after is None and done.reloaded
    assert reloader.calls == [["u1", "u2"]] * 3


def test_a_newer_change_restarts_the_settle_window() -> None:
    now = [0.0]
    delivery = ConfigDelivery(FakeReloader(), settle_seconds=10, clock=lambda: now[0])
    delivery.deliver("k", workload("h1"), "h2", ["u"])
    now[0] = 8
    assert delivery.deliver("k", workload("h1"), "h3", ["u"]).requeue_after == 10


def test_unreachable_pods_fall_back_to_a_template_hash() -> None:
    delivery = ConfigDelivery(FakeReloader(["u: connection refused"]), settle_seconds=0)
    d = delivery.deliver("k", workload("h1"), "h2", ["u"])
    assert d.fell_back and d.template_hash == "h2" and d.loaded_hash == "h2"
    assert d.failures == ["u: connection refused"]


def test_pods_rolled_with_the_hash_count_as_loaded() -> None:
    reloader = FakeReloader()
    d = ConfigDelivery(reloader).deliver("k", workload(None, "h2"), "h2", ["u"])
    assert d.loaded_hash == "h2" and reloader.calls == []


def test_forget_drops_pending_state() -> None:
    now = [0.0]
    delivery = ConfigDelivery(FakeReloader(), settle_seconds=10, clock=lambda: now[0])
    delivery.deliver("ns/a/prometheus", workload("h1"), "h2", ["u"])
    delivery.forget("ns/a/")
    now[0] = 9
    assert delivery.deliver("ns/a/prometheus", workload("h1"), "h2", ["u"]).requeue_after == 10
