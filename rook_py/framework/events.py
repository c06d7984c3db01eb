"""Kubernetes Events (core/v1) with client-go's correlation, written off the caller's thread.

After client-go tools/record (event.go: recorder, broadcaster, ``recordToSink``;
events_cache.go: ``EventCorrelator``):

* ``EventRecorder.event`` builds the Event and puts it on a bounded queue without blocking; when
  the queue is full the event is dropped and counted (a reconcile must never wait on events);
* one broadcaster thread correlates and writes:

  1. **aggregate**: more than 10 events of one (source, object, type, reason) with *different*
     messages inside 10 minutes collapse into one "(combined from similar events): ..." event;
  2. **dedup**: an event identical in source, object, type, reason and message to one written
     less than 10 minutes ago is not created again; the existing Event gets ``count`` + 1 and a new
     ``lastTimestamp`` (and message) through a PATCH; if it has vanished (Events expire), it is
     created afresh;
  3. **spam filter**: per (source, object), a token bucket of burst 25 refilled at 1 per 5 min;
     events beyond it are dropped and counted.

* writes failing for lack of a connection are retried (12 tries, 10 s apart by default); an error
  status from the API server is final, as in client-go.

Event naming and fields match client-go's ``makeEvent``: ``<involved name>.<hex unix nanos>`` in
the involved object's namespace (``default`` for cluster-scoped objects).
"""

from __future__ import annotations

import queue
import random
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from rook_py.framework.client.errors import ApiError, NotFound, TransportError
from rook_py.framework.kube.times import format_time
from rook_py.framework.leaderelection import LeaderElectionLost
from rook_py.framework.logging import get_logger
from rook_py.framework.metrics import EVENTS_DROPPED

JSON = dict[str, Any]
log = get_logger(__name__)

NORMAL = "Normal"
WARNING = "Warning"

MAX_LRU_ENTRIES = 4096
AGGREGATE_MAX_EVENTS = 10
AGGREGATE_INTERVAL = 600.0  # seconds; also the window in which an identical event is a repeat
SPAM_BURST = 25
SPAM_QPS = 1.0 / 300.0
MAX_TRIES = 12
RETRY_INTERVAL = 10.0
COMBINED_PREFIX = "(combined from similar events): "


K = TypeVar("K")
V = TypeVar("V")


class _LRU(Generic[K, V]):
    """A size-bounded mapping that evicts the least recently used key (groupcache/lru)."""

    def __init__(self, size: int = MAX_LRU_ENTRIES) -> None:
        self._size = size
        self._data: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._data.get(key)
        if value is not None:
            self._data.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self._size:
            self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)


def object_reference(obj: JSON) -> JSON:
    """core/v1 ObjectReference for an object (or a reference dict passed as is)."""
    if "metadata" not in obj:
        return {k: v for k, v in obj.items() if v}
    meta = obj.get("metadata") or {}
    ref = {
        "apiVersion": obj.get("apiVersion", ""),
        "kind": obj.get("kind", ""),
        "namespace": meta.get("namespace", ""),
        "name": meta.get("name", ""),
        "uid": meta.get("uid", ""),
        "resourceVersion": meta.get("resourceVersion", ""),
    }
    return {k: v for k, v in ref.items() if v}


def _ref_key(event: JSON) -> tuple[str, ...]:
    src, ref = event.get("source") or {}, event.get("involvedObject") or {}
    return (src.get("component", ""), src.get("host", ""), ref.get("kind", ""),
            ref.get("namespace", ""), ref.get("name", ""), ref.get("uid", ""),
            ref.get("apiVersion", ""))


def spam_key(event: JSON) -> tuple[str, ...]:
    """Source and involved object: the spam filter's bucket (getSpamKey)."""
    return _ref_key(event)


def event_key(event: JSON) -> tuple[str, ...]:
    """Everything that makes two events "the same" (getEventKey)."""
    ref = event.get("involvedObject") or {}
    return (*_ref_key(event), ref.get("fieldPath", ""), event.get("type", ""),
            event.get("reason", ""), event.get("message", ""))


def aggregate_key(event: JSON) -> tuple[tuple[str, ...], str]:
    """(key grouping similar events, the part that varies) (EventAggregatorByReasonFunc)."""
    return ((*_ref_key(event), event.get("type", ""), event.get("reason", ""),
             event.get("reportingComponent", ""), event.get("reportingInstance", "")),
            event.get("message", ""))


class TokenBucket:
    """A passive token bucket: starts full (``burst``), refills at ``qps``; ``try_accept`` never waits."""

    def __init__(self, qps: float, burst: int, clock: Callable[[], float]) -> None:
        self._qps, self._burst, self._clock = qps, burst, clock
        self._tokens = float(burst)
        self._last = clock()

    def try_accept(self) -> bool:
        now = self._clock()
        self._tokens = min(float(self._burst), self._tokens + (now - self._last) * self._qps)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


@dataclass
class _AggregateRecord:
    messages: set[str]
    last_seen: float


@dataclass
class _Observed:
    count: int
    first_timestamp: str
    name: str
    namespace: str
    last_seen: float


@dataclass(frozen=True)
class CorrelateResult:
    """``event`` to write; ``patch`` set when it repeats a written one; ``skip`` when spam-filtered."""

    event: JSON
    key: tuple[str, ...]
    patch: JSON | None = None
    skip: bool = False


class EventCorrelator:
    """Aggregation, dedup and spam filtering of events, in client-go's order. Thread-safe."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 burst: int = SPAM_BURST, qps: float = SPAM_QPS,
                 max_events: int = AGGREGATE_MAX_EVENTS, interval: float = AGGREGATE_INTERVAL) -> None:
        self._clock, self._wall = clock, wall_clock
        self._burst, self._qps = burst, qps
        self._max_events, self._interval = max_events, interval
        self._lock = threading.Lock()
        self._aggregates: _LRU[tuple[str, ...], _AggregateRecord] = _LRU()
        self._observed: _LRU[tuple[str, ...], _Observed] = _LRU()
        self._spam: _LRU[tuple[str, ...], TokenBucket] = _LRU()

    def correlate(self, event: JSON) -> CorrelateResult:
        with self._lock:
            event, key = self._aggregate(event)
            event, patch = self._observe(event, key)
            bucket = self._spam.get(spam_key(event))
            if bucket is None:
                bucket = TokenBucket(self._qps, self._burst, self._clock)
            self._spam.put(spam_key(event), bucket)
            if not bucket.try_accept():
                return CorrelateResult(event, key, skip=True)
            return CorrelateResult(event, key, patch)

    def _aggregate(self, event: JSON) -> tuple[JSON, tuple[str, ...]]:
        now = self._clock()
        akey, local = aggregate_key(event)
        record = self._aggregates.get(akey)
        if record is None or now - record.last_seen > self._interval:
            record = _AggregateRecord(set(), now)
        record.messages.add(local)
        record.last_seen = now
        self._aggregates.put(akey, record)
        if len(record.messages) < self._max_events:
            return event, event_key(event)
        # Keep the set bounded; from here on, every similar event counts on the combined one.
        record.messages.pop()
        combined = dict(event)
        combined["message"] = COMBINED_PREFIX + str(event.get("message", ""))
        combined["metadata"] = {"name": _event_name(event["involvedObject"], self._wall()),
                                "namespace": event["metadata"]["namespace"]}
        return combined, akey

    def _observe(self, event: JSON, key: tuple[str, ...]) -> tuple[JSON, JSON | None]:
        now = self._clock()
        seen = self._observed.get(key)
        if seen is None or now - seen.last_seen > self._interval:
            self._observed.put(key, _Observed(1, event["firstTimestamp"], event["metadata"]["name"],
                                              event["metadata"]["namespace"], now))
            return event, None
        repeated = dict(event)
        repeated["count"] = seen.count + 1
        repeated["firstTimestamp"] = seen.first_timestamp
        repeated["metadata"] = {"name": seen.name, "namespace": seen.namespace}
        self._observed.put(key, _Observed(seen.count + 1, seen.first_timestamp, seen.name,
                                          seen.namespace, now))
        patch = {"count": repeated["count"], "lastTimestamp": repeated["lastTimestamp"],
                 "message": repeated.get("message", "")}
        return repeated, patch

    def update_state(self, key: tuple[str, ...], written: JSON) -> None:
        """Remember what the server stored, so the next repeat patches the right Event."""
        meta = written.get("metadata") or {}
        with self._lock:
            self._observed.put(key, _Observed(int(written.get("count") or 1),
                                              written.get("firstTimestamp", ""), meta.get("name", ""),
                                              meta.get("namespace", ""), self._clock()))


_name_lock = threading.Lock()
_last_nanos = 0


def _event_name(ref: JSON, now: datetime) -> str:
    """``<name>.<hex unix nanos>``; nanos strictly increase within the process.

    datetime has microsecond resolution, so two events in one microsecond would share a name and
    the second create would fail with AlreadyExists; bumping by 1 ns keeps names unique.
    """
    global _last_nanos
    nanos = int(now.timestamp()) * 1_000_000_000 + now.microsecond * 1000
    with _name_lock:
        nanos = _last_nanos = max(nanos, _last_nanos + 1)
    return f"{ref.get('name', '')}.{nanos:x}"


class EventBroadcaster:
    """Owns the queue, the correlator and the writer thread shared by a process's recorders."""

    def __init__(self, client: Any, *, queue_size: int = 1000, host: str | None = None,
                 correlator: EventCorrelator | None = None, max_tries: int = MAX_TRIES,
                 retry_interval: float = RETRY_INTERVAL,
                 wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.client = client
        self.host = socket.gethostname() if host is None else host
        self.correlator = correlator or EventCorrelator(wall_clock=wall_clock)
        self.max_tries = max_tries
        self.retry_interval = retry_interval
        self.wall_clock = wall_clock
        self._queue: queue.Queue[JSON] = queue.Queue(maxsize=queue_size)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def new_recorder(self, component: str) -> EventRecorder:
        return EventRecorder(self, component)

    def start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="event-broadcaster", daemon=True)
                self._thread.start()

    def shutdown(self, timeout: float | None = 5.0) -> None:
        """Write what is queued (bounded by ``timeout``), then stop the writer thread."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._thread is not None and not self._queue.empty():
            if deadline is not None and time.monotonic() >= deadline:
                break
            time.sleep(0.005)
        self._stop.set()
        if self._thread is not None:
            self._thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))

    def enqueue(self, event: JSON) -> bool:
        """Non-blocking; False (and counted) when the queue is full."""
        try:
            self._queue.put_nowait(event)
            return True
        except queue.Full:
            EVENTS_DROPPED.labels("queue_full").inc()
            log.warning("event queue full; dropping event", reason=event.get("reason"),
                        object=event.get("involvedObject", {}).get("name"))
            return False

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                event = self._queue.get(timeout=0.05)
            except queue.Empty:
                continue
            try:
                self.process(event)
            except Exception:
                # The writer thread must outlive any single bad event.
                log.exception("unexpected error recording event")

    def process(self, event: JSON) -> JSON | None:
        """Correlate and write one event (on the writer thread). Returns the stored Event or None."""
        result = self.correlator.correlate(event)
        if result.skip:
            EVENTS_DROPPED.labels("spam_filtered").inc()
            log.debug("event spam-filtered", reason=event.get("reason"))
            return None
        for attempt in range(1, self.max_tries + 1):
            try:
                written = self._write(result)
            except TransportError as err:
                if attempt == self.max_tries or self._stop.is_set():
                    break
                # First retry is randomised so that many recorders do not retry in lockstep.
                wait = self.retry_interval * (random.random() if attempt == 1 else 1.0)
                log.info("cannot reach the API server to write event; retrying", error=str(err),
                         attempt=attempt)
                if self._stop.wait(wait):
                    break
                continue
            except ApiError as err:
                log.warning("server rejected event; not retrying", reason=event.get("reason"),
                            error=str(err), code=err.status_code)
                break
            except LeaderElectionLost as err:
                # The leader-election write fence refused it: this process is shutting down.
                log.info("event not written: this process no longer holds the leader lease",
                         reason=event.get("reason"), error=str(err))
                break
            self.correlator.update_state(result.key, written)
            return written
        EVENTS_DROPPED.labels("write_failed").inc()
        return None

    def _write(self, result: CorrelateResult) -> JSON:
        event = result.event
        namespace = event["metadata"]["namespace"]
        if result.patch is not None:
            try:
                patched: JSON = self.client.patch("v1", "Event", event["metadata"]["name"], result.patch,
                                                  namespace=namespace, patch_type="merge")
                return patched
            except NotFound:
                # The Event expired or was deleted: write it again as a new object.
                event = dict(event)
                event["metadata"] = {"name": _event_name(event["involvedObject"], self.wall_clock()),
                                     "namespace": namespace}
        created: JSON = self.client.create(event, namespace=namespace)
        return created


class EventRecorder:
    """Records Events for one component. ``event`` never blocks and never raises on a bad object."""

    def __init__(self, broadcaster: EventBroadcaster, component: str) -> None:
        self._b = broadcaster
        self.component = component

    def event(self, obj: JSON, type_: str, reason: str, message: str) -> None:
        if type_ not in (NORMAL, WARNING):
            log.error("unsupported event type; not recorded", type=type_, reason=reason)
            return
        ref = object_reference(obj)
        if not ref.get("name") or not ref.get("kind"):
            log.error("cannot record an event for an object without kind and name", reason=reason)
            return
        now = self._b.wall_clock()
        timestamp = format_time(now)
        source: JSON = {"component": self.component}
        if self._b.host:
            source["host"] = self._b.host
        event: JSON = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": _event_name(ref, now), "namespace": ref.get("namespace") or "default"},
            "involvedObject": ref,
            "reason": reason,
            "message": message,
            "type": type_,
            "source": source,
            "firstTimestamp": timestamp,
            "lastTimestamp": timestamp,
            "count": 1,
            "reportingComponent": self.component,
            "reportingInstance": self._b.host,
        }
        self._b.enqueue(event)

    def eventf(self, obj: JSON, type_: str, reason: str, fmt: str, *args: Any) -> None:
        self.event(obj, type_, reason, fmt % args if args else fmt)
