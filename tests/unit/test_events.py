from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from rook_py.framework.client.errors import Forbidden
from rook_py.framework.events import (
    COMBINED_PREFIX,
    EVENTS_DROPPED,
    EventBroadcaster,
    EventCorrelator,
    TokenBucket,
    object_reference,
)
from rook_py.framework.leaderelection import NotLeader
from tests.unit.controller.fakes import FakeObjectClient, unreachable


class Clocks:
    def __init__(self) -> None:
        self.mono = 100.0
        self.wall = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)

    def advance(self, seconds: float) -> None:
        self.mono += seconds
        self.wall += timedelta(seconds=seconds)


def pod(name: str = "p1", uid: str = "uid-1") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "ns", "uid": uid, "resourceVersion": "7"}}


def setup(**kw: Any) -> tuple[Clocks, FakeObjectClient, EventBroadcaster]:
    clocks, client = Clocks(), FakeObjectClient()
    correlator = EventCorrelator(clock=lambda: clocks.mono, wall_clock=lambda: clocks.wall, **kw)
    b = EventBroadcaster(client, host="node-a", correlator=correlator, wall_clock=lambda: clocks.wall,
                         retry_interval=0.001)
    return clocks, client, b


def record(b: EventBroadcaster, obj: dict[str, Any], reason: str, message: str,
           type_: str = "Normal") -> dict[str, Any] | None:
    """Record through the public recorder, then process the queued event synchronously."""
    b.new_recorder("test-operator").event(obj, type_, reason, message)
    return b.process(b._queue.get_nowait())


def test_created_event_has_client_go_shape() -> None:
    clocks, _client, b = setup()
    ev = record(b, pod(), "Created", "created pod")
    assert ev is not None
    assert ev["involvedObject"] == {"apiVersion": "v1", "kind": "Pod", "namespace": "ns", "name": "p1",
                                    "uid": "uid-1", "resourceVersion": "7"}
    assert ev["metadata"]["namespace"] == "ns"
    assert re.fullmatch(r"p1\.[0-9a-f]+", ev["metadata"]["name"])
    nanos = int(ev["metadata"]["name"].split(".")[1], 16)
    assert nanos >= int(clocks.wall.timestamp()) * 10**9  # strictly increasing across the process
    assert ev["source"] == {"component": "test-operator", "host": "node-a"}
    assert ev["reportingComponent"] == "test-operator" and ev["reportingInstance"] == "node-a"
    assert ev["firstTimestamp"] == ev["lastTimestamp"] == "2026-03-01T12:00:00Z"
    assert ev["count"] == 1 and ev["type"] == "Normal" and ev["reason"] == "Created"


def test_cluster_scoped_object_events_go_to_default_namespace() -> None:
    _, _client, b = setup()
    ev = record(b, {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1", "uid": "u"}}, "Ready", "ok")
    assert ev is not None and ev["metadata"]["namespace"] == "default"
    assert "namespace" not in ev["involvedObject"]


def test_repeat_within_ten_minutes_patches_count() -> None:
    clocks, client, b = setup()
    first = record(b, pod(), "Backoff", "restarting")
    clocks.advance(30)
    second = record(b, pod(), "Backoff", "restarting")
    assert first is not None and second is not None
    assert second["metadata"]["name"] == first["metadata"]["name"]
    assert second["count"] == 2
    assert second["lastTimestamp"] == "2026-03-01T12:00:30Z"
    assert second["firstTimestamp"] == "2026-03-01T12:00:00Z"
    assert [c[0] for c in client.calls] == ["create", "patch"]
    # After the window, the same event is a new Event object.
    clocks.advance(601)
    third = record(b, pod(), "Backoff", "restarting")
    assert third is not None and third["metadata"]["name"] != first["metadata"]["name"]
    assert third["count"] == 1


def test_patch_of_a_vanished_event_creates_it_again() -> None:
    clocks, client, b = setup()
    first = record(b, pod(), "Backoff", "restarting")
    assert first is not None
    client.objects.clear()  # the Event expired on the server
    clocks.advance(1)
    again = record(b, pod(), "Backoff", "restarting")
    assert again is not None and again["metadata"]["name"] != first["metadata"]["name"]
    assert [c[0] for c in client.calls] == ["create", "patch", "create"]


def test_similar_events_with_varying_messages_are_combined() -> None:
    clocks, _client, b = setup()
    for i in range(9):
        assert record(b, pod(), "Failed", f"attempt {i}") is not None
    combined = record(b, pod(), "Failed", "attempt 9")
    assert combined is not None and combined["message"] == COMBINED_PREFIX + "attempt 9"
    clocks.advance(1)
    bumped = record(b, pod(), "Failed", "attempt 10")
    assert bumped is not None
    assert bumped["metadata"]["name"] == combined["metadata"]["name"] and bumped["count"] == 2
    assert bumped["message"] == COMBINED_PREFIX + "attempt 10"


def test_spam_filter_burst_then_one_per_five_minutes() -> None:
    clocks, _client, b = setup()
    before = EVENTS_DROPPED.labels("spam_filtered")._value.get()
    written = [record(b, pod(), f"R{i}", "m") for i in range(30)]  # distinct reasons: no aggregation
    assert sum(e is not None for e in written) == 25
    assert EVENTS_DROPPED.labels("spam_filtered")._value.get() - before == 5
    # Another object has its own bucket.
    assert record(b, pod("p2", "uid-2"), "R0", "m") is not None
    clocks.advance(299)
    assert record(b, pod(), "Rx", "m") is None
    clocks.advance(2)
    assert record(b, pod(), "Ry", "m") is not None


def test_token_bucket() -> None:
    t = [0.0]
    bucket = TokenBucket(qps=2.0, burst=2, clock=lambda: t[0])
    assert bucket.try_accept() and bucket.try_accept() and not bucket.try_accept()
    t[0] += 0.5
    assert bucket.try_accept() and not bucket.try_accept()


def test_transport_errors_are_retried_status_errors_are_not() -> None:
    _, client, b = setup()
    client.fail_next = [unreachable(), unreachable()]
    assert record(b, pod(), "A", "m") is not None
    assert [c[0] for c in client.calls] == ["create", "create", "create"]
    client.fail_next = [Forbidden("events is forbidden")]
    before = EVENTS_DROPPED.labels("write_failed")._value.get()
    assert record(b, pod(), "B", "m") is None
    assert EVENTS_DROPPED.labels("write_failed")._value.get() - before == 1


def test_recorder_never_blocks_and_drops_when_full() -> None:
    client = FakeObjectClient()
    b = EventBroadcaster(client, queue_size=3, host="h")  # not started: nothing drains the queue
    rec = b.new_recorder("op")
    before = EVENTS_DROPPED.labels("queue_full")._value.get()
    started = time.monotonic()
    for i in range(10):
        rec.event(pod(), "Normal", f"R{i}", "m")
    assert time.monotonic() - started < 5  # sanity bound only: put_nowait never waits
    assert b._queue.qsize() == 3
    assert EVENTS_DROPPED.labels("queue_full")._value.get() - before == 7


def test_invalid_events_are_ignored() -> None:
    b = EventBroadcaster(FakeObjectClient(), host="h")
    rec = b.new_recorder("op")
    rec.event(pod(), "Fatal", "R", "m")
    rec.event({"apiVersion": "v1", "kind": "Pod", "metadata": {}}, "Normal", "R", "m")
    assert b._queue.qsize() == 0
    rec.eventf(pod(), "Warning", "Scaled", "scaled to %d", 3)
    assert b._queue.get_nowait()["message"] == "scaled to 3"


def test_background_writer_and_shutdown_flushes() -> None:
    client = FakeObjectClient()
    b = EventBroadcaster(client, host="h")
    b.start()
    rec = b.new_recorder("op")
    for i in range(5):
        rec.event(pod(), "Normal", f"R{i}", "m")
    b.shutdown(timeout=5)
    assert sum(1 for c in client.calls if c[0] == "create") == 5


def test_object_reference_passthrough() -> None:
    assert object_reference({"kind": "Pod", "name": "p", "namespace": "", "uid": "u"}) == {
        "kind": "Pod", "name": "p", "uid": "u"}


def test_a_fenced_write_drops_the_event_without_retrying() -> None:
    _, client, b = setup()
    client.fail_next = [NotLeader("lease lost")]
    before = EVENTS_DROPPED.labels("write_failed")._value.get()
    assert record(b, pod(), "A", "m") is None
    assert [c[0] for c in client.calls] == ["create"]
    assert EVENTS_DROPPED.labels("write_failed")._value.get() - before == 1
