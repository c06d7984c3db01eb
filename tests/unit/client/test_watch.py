"""Watch streams: framing, bookmarks, ERROR events, stalls, and close from another thread."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from rook_py.framework.client import Client, WatchStream, errors
from tests.unit.client.fake_apiserver import Canned, FakeAPIServer, WatchScript


def ev(type_: str, name: str, rv: str) -> dict[str, Any]:
    return {"type": type_, "object": {"apiVersion": "v1", "kind": "ConfigMap",
                                      "metadata": {"name": name, "resourceVersion": rv}}}


def test_events_are_decoded_across_chunk_boundaries(client: Client, server: FakeAPIServer) -> None:
    two = b"".join(__import__("json").dumps(e).encode() + b"\n"
                   for e in (ev("MODIFIED", "a", "3"), ev("DELETED", "a", "4")))
    server.watch_script.append(WatchScript([
        ev("ADDED", "a", "2"),
        b'{"type":"BOOK', b'MARK","object":{"kind":"ConfigMap","metadata":{"resourceVersion":"9"}}}\n',
        two,
    ]))
    with client.watch("v1", "ConfigMap", "default", resource_version="1") as stream:
        events = [(e["type"], e["object"]["metadata"]["resourceVersion"]) for e in stream]
    assert events == [("ADDED", "2"), ("BOOKMARK", "9"), ("MODIFIED", "3"), ("DELETED", "4")]
    req = server.requests[-1]
    assert req.path == "/api/v1/namespaces/default/configmaps"
    assert req.query == {"watch": "true", "timeoutSeconds": "300", "resourceVersion": "1",
                         "allowWatchBookmarks": "true"}


def test_watch_query_options(client: Client, server: FakeAPIServer) -> None:
    server.watch_script.append(WatchScript([]))
    stream = client.watch("v1", "ConfigMap", timeout_seconds=7, allow_watch_bookmarks=False,
                          label_selector="a=b", field_selector="metadata.name=x")
    assert list(stream) == []
    assert server.requests[-1].query == {"watch": "true", "timeoutSeconds": "7", "labelSelector": "a=b",
                                         "fieldSelector": "metadata.name=x"}
    assert server.requests[-1].path == "/api/v1/configmaps"


def test_error_event_raises_typed_expired(client: Client, server: FakeAPIServer) -> None:
    status = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 410, "reason": "Expired",
              "message": "too old resource version: 1 (50)"}
    server.watch_script.append(WatchScript([ev("ADDED", "a", "60"), {"type": "ERROR", "object": status}]))
    stream = client.watch("v1", "ConfigMap", "default", resource_version="1")
    it = iter(stream)
    assert next(it)["type"] == "ADDED"
    with pytest.raises(errors.Expired, match="too old"):
        next(it)
    assert stream.closed


def test_watch_open_error_is_typed(client: Client, server: FakeAPIServer) -> None:
    server.script.append(Canned(403, {"kind": "Status", "code": 403, "reason": "Forbidden", "message": "no"}))
    with pytest.raises(errors.Forbidden):
        client.watch("v1", "ConfigMap", "default")


def test_silent_stream_raises_transport_error_after_read_timeout(client: Client,
                                                                 server: FakeAPIServer) -> None:
    server.watch_script.append(WatchScript([ev("ADDED", "a", "2")], hold=5.0))
    stream = client.watch("v1", "ConfigMap", "default", read_timeout=0.3)
    it = iter(stream)
    assert next(it)["type"] == "ADDED"
    with pytest.raises(errors.TransportError):
        next(it)


def test_close_from_another_thread_ends_iteration_quietly(client: Client, server: FakeAPIServer) -> None:
    server.watch_script.append(WatchScript([ev("ADDED", "a", "2")], hold=5.0))
    stream = client.watch("v1", "ConfigMap", "default", read_timeout=10.0)
    got: list[Any] = []
    failure: list[BaseException] = []
    first = threading.Event()

    def consume() -> None:
        try:
            for e in stream:
                got.append(e)
                first.set()
        except BaseException as exc:  # surfaced to the test thread below
            failure.append(exc)

    t = threading.Thread(target=consume)
    t.start()
    assert first.wait(5)
    stream.close()
    t.join(5)
    assert not t.is_alive()
    assert failure == []
    assert [e["type"] for e in got] == ["ADDED"]
    stream.close()  # idempotent


def test_undecodable_frame_is_a_transport_error(client: Client, server: FakeAPIServer) -> None:
    server.watch_script.append(WatchScript([b"{not json\n"]))
    with pytest.raises(errors.TransportError, match="undecodable"):
        list(client.watch("v1", "ConfigMap", "default"))


def test_non_chunked_stream_is_read_incrementally(mocker: Any) -> None:
    resp = mocker.Mock(chunked=False)
    resp.read1.side_effect = [b'{"type":"ADDED","object":{}}\n{"type":"DEL', b'ETED","object":{}}', b""]
    assert [e["type"] for e in WatchStream(resp)] == ["ADDED", "DELETED"]
    resp.close.assert_called_once()


def test_close_from_another_thread_mid_read_ends_quietly() -> None:
    """urllib3 drops its file object when closed under a blocked reader (AttributeError)."""
    import threading

    from rook_py.framework.client.watch import WatchStream

    started = threading.Event()

    class Response:
        chunked = False

        def supports_chunked_reads(self) -> bool:
            return False

        def read1(self, size: int) -> bytes:
            started.set()
            stream_closed.wait(5)
            raise AttributeError("'NoneType' object has no attribute 'read'")

        def close(self) -> None:
            pass

        def release_conn(self) -> None:
            pass

    stream_closed = threading.Event()
    stream = WatchStream(Response())
    threading.Thread(target=lambda: (started.wait(5), stream.close(), stream_closed.set())).start()
    assert list(stream) == []


def test_attribute_error_without_close_is_not_swallowed() -> None:
    import pytest

    from rook_py.framework.client.watch import WatchStream

    class Response:
        chunked = False

        def supports_chunked_reads(self) -> bool:
            return False

        def read1(self, size: int) -> bytes:
            raise AttributeError("a real bug")

        def close(self) -> None:
            pass

        def release_conn(self) -> None:
            pass

    with pytest.raises(AttributeError, match="a real bug"):
        list(WatchStream(Response()))
