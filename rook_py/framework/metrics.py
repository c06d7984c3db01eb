"""The process-wide Prometheus registry and the metrics the framework records.

Names, types and labels match controller-runtime (pkg/metrics/workqueue.go,
pkg/internal/controller/metrics/metrics.go, client-go's rest_client metrics) so dashboards
written for Go operators work unchanged. Providers register their own metrics on ``REGISTRY``.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any, cast

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.utils import floatToGoString

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)

_QUEUE_BUCKETS = tuple(1e-8 * 10**i for i in range(12))  # ExponentialBuckets(10e-9, 10, 12)
_RECONCILE_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9,
    1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30, 40, 50, 60,
)

# workqueue_* : labels name and controller both carry the queue's name, as controller-runtime sets
# them. Collected from WorkqueueSeries (below) at scrape time rather than kept in prometheus_client
# metric objects: those take a lock of their own on every update, and a queue updates its metrics
# under its own lock already, several times per item.
# Bucket bounds as the exposition's "le" label spells them (the untyped helper, typed once here).
_le = cast(Callable[[float], str], floatToGoString)
_WORKQUEUE_HELP = {
    "depth": "Current depth of workqueue",
    "adds": "Total number of adds handled by workqueue",
    "queue_duration": "How long in seconds an item stays in workqueue before being requested",
    "work_duration": "How long in seconds processing an item from workqueue takes.",
    "unfinished": "How many seconds of work has been done that is in progress and hasn't been "
                  "observed by work_duration.",
    "longest": "How many seconds has the longest running processor for workqueue been running.",
    "retries": "Total number of retries handled by workqueue",
}


class _Buckets:
    """A histogram's per-bucket counts (not cumulative) and sum; updated by one writer at a time."""

    __slots__ = ("bounds", "counts", "labels", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.labels = [_le(b) for b in (*bounds, float("inf"))]
        self.counts = [0] * (len(bounds) + 1)   # the last one is +Inf
        self.total = 0.0

    def observe(self, value: float) -> None:
        # An observation equal to a bound belongs to that bucket (le: "less or equal").
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def merge(self, other: _Buckets) -> None:
        for i, count in enumerate(other.counts):
            self.counts[i] += count
        self.total += other.total

    def cumulative(self) -> list[tuple[str, float]]:
        """(le, count) pairs as the exposition format wants them, ending with +Inf."""
        out: list[tuple[str, float]] = []
        running = 0
        for label, count in zip(self.labels, self.counts, strict=True):
            running += count
            out.append((label, running))
        return out


class _Totals:
    """The series of one queue name added up, at one scrape."""

    def __init__(self) -> None:
        self.adds = self.depth = self.retries = 0
        self.queue_duration = _Buckets(_QUEUE_BUCKETS)
        self.work_duration = _Buckets(_QUEUE_BUCKETS)
        self.unfinished = self.longest = 0.0


class WorkqueueSeries:
    """One queue's ``workqueue_*`` values.

    Invariant: every update happens with ``lock`` held (the owning queue's lock), and the
    collector reads under the same lock, so a scrape never sees half an update. ``unfinished``
    and ``longest`` are computed when scraped (client-go refreshes them from a 500 ms ticker).
    """

    __slots__ = (
        "adds",
        "depth",
        "lock",
        "longest",
        "name",
        "queue_duration",
        "retries",
        "unfinished",
        "work_duration",
    )

    def __init__(self, name: str, lock: AbstractContextManager[Any],
                 unfinished: Callable[[], float], longest: Callable[[], float]) -> None:
        self.name, self.lock = name, lock
        self.adds = self.depth = self.retries = 0
        self.queue_duration = _Buckets(_QUEUE_BUCKETS)
        self.work_duration = _Buckets(_QUEUE_BUCKETS)
        self.unfinished, self.longest = unfinished, longest


class _WorkqueueCollector:
    """Exposes every queue's series. Queues sharing a name add up, as they would sharing one
    labelled child of a prometheus_client metric."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._series: list[WorkqueueSeries] = []

    def series(self, name: str, lock: AbstractContextManager[Any], unfinished: Callable[[], float],
               longest: Callable[[], float]) -> WorkqueueSeries:
        series = WorkqueueSeries(name, lock, unfinished, longest)
        with self._lock:
            self._series.append(series)
        return series

    def describe(self) -> Iterator[Metric]:
        return iter(self._families())

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            all_series = list(self._series)
        totals: dict[str, _Totals] = {}
        for s in all_series:
            t = totals.setdefault(s.name, _Totals())
            with s.lock:
                t.adds += s.adds
                t.depth += s.depth
                t.retries += s.retries
                t.queue_duration.merge(s.queue_duration)
                t.work_duration.merge(s.work_duration)
            # Outside the queue's lock: these take it themselves.
            t.unfinished += s.unfinished()
            t.longest = max(t.longest, s.longest())
        depth, adds, qdur, wdur, unfinished, longest, retries = self._families()
        for name, t in sorted(totals.items()):
            labels = [name, name]
            adds.add_metric(labels, t.adds)
            depth.add_metric(labels, t.depth)
            retries.add_metric(labels, t.retries)
            qdur.add_metric(labels, t.queue_duration.cumulative(), t.queue_duration.total)
            wdur.add_metric(labels, t.work_duration.cumulative(), t.work_duration.total)
            unfinished.add_metric(labels, t.unfinished)
            longest.add_metric(labels, t.longest)
        yield from (depth, adds, qdur, wdur, unfinished, longest, retries)

    @staticmethod
    def _families() -> tuple[Any, ...]:
        labels = ["name", "controller"]
        return (
            GaugeMetricFamily("workqueue_depth", _WORKQUEUE_HELP["depth"], labels=labels),
            CounterMetricFamily("workqueue_adds_total", _WORKQUEUE_HELP["adds"], labels=labels),
            HistogramMetricFamily("workqueue_queue_duration_seconds", _WORKQUEUE_HELP["queue_duration"],
                                  labels=labels),
            HistogramMetricFamily("workqueue_work_duration_seconds", _WORKQUEUE_HELP["work_duration"],
                                  labels=labels),
            GaugeMetricFamily("workqueue_unfinished_work_seconds", _WORKQUEUE_HELP["unfinished"],
                              labels=labels),
            GaugeMetricFamily("workqueue_longest_running_processor_seconds", _WORKQUEUE_HELP["longest"],
                              labels=labels),
            CounterMetricFamily("workqueue_retries_total", _WORKQUEUE_HELP["retries"], labels=labels),
        )


WORKQUEUE = _WorkqueueCollector()
REGISTRY.register(WORKQUEUE)

# controller_runtime_* : result is one of success, error, requeue, requeue_after.
RECONCILE_TOTAL = Counter("controller_runtime_reconcile_total",
                          "Total number of reconciliations per controller",
                          ["controller", "result"], registry=REGISTRY)
RECONCILE_ERRORS = Counter("controller_runtime_reconcile_errors_total",
                           "Total number of reconciliation errors per controller",
                           ["controller"], registry=REGISTRY)
RECONCILE_TERMINAL_ERRORS = Counter("controller_runtime_terminal_reconcile_errors_total",
                                    "Total number of terminal reconciliation errors per controller",
                                    ["controller"], registry=REGISTRY)
RECONCILE_PANICS = Counter("controller_runtime_reconcile_panics_total",
                           "Total number of reconciliation panics per controller",
                           ["controller"], registry=REGISTRY)
RECONCILE_TIME = Histogram("controller_runtime_reconcile_time_seconds",
                           "Length of time per reconciliation per controller",
                           ["controller"], buckets=_RECONCILE_BUCKETS, registry=REGISTRY)
MAX_CONCURRENT_RECONCILES = Gauge("controller_runtime_max_concurrent_reconciles",
                                  "Maximum number of concurrent reconciles per controller",
                                  ["controller"], registry=REGISTRY)
ACTIVE_WORKERS = Gauge("controller_runtime_active_workers",
                       "Number of currently used workers per controller",
                       ["controller"], registry=REGISTRY)

LEADER_ELECTION_STATUS = Gauge("leader_election_master_status",
                               "Gauge of if the reporting system is master of the relevant lease, "
                               "0 indicates backup, 1 indicates master. 'name' is the string used to "
                               "identify the lease.", ["name"], registry=REGISTRY)

REST_CLIENT_REQUESTS = Counter("rest_client_requests_total",
                               "Number of HTTP requests, partitioned by status code, method, and host.",
                               ["code", "method", "host"], registry=REGISTRY)
REST_CLIENT_LATENCY = Histogram("rest_client_request_duration_seconds",
                                "Request latency in seconds. Broken down by verb, and host.",
                                ["verb", "host"],
                                buckets=(0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0),
                                registry=REGISTRY)

# controller-runtime pkg/webhook/internal/metrics: buckets are prometheus' DefBuckets.
WEBHOOK_REQUESTS_TOTAL = Counter("controller_runtime_webhook_requests_total",
                                 "Total number of admission requests by HTTP status code.",
                                 ["webhook", "code"], registry=REGISTRY)
WEBHOOK_LATENCY = Histogram("controller_runtime_webhook_latency_seconds",
                            "Histogram of the latency of processing admission requests",
                            ["webhook"], registry=REGISTRY)
WEBHOOK_IN_FLIGHT = Gauge("controller_runtime_webhook_requests_in_flight",
                          "Current number of admission requests being served.",
                          ["webhook"], registry=REGISTRY)

EVENTS_DROPPED = Counter("rook_events_dropped_total",
                         "Events not written, by reason: queue_full, spam_filtered, write_failed.",
                         ["reason"], registry=REGISTRY)


def exposition() -> tuple[bytes, str]:
    """The registry in the Prometheus text format, with its content type."""
    from prometheus_client import CONTENT_TYPE_LATEST

    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
