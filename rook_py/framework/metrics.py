"""The process-wide Prometheus registry and the metrics the framework records.

Names, types and labels match controller-runtime (pkg/metrics/workqueue.go,
pkg/internal/controller/metrics/metrics.go, client-go's rest_client metrics) so dashboards
written for Go operators work unchanged. Providers register their own metrics on ``REGISTRY``.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)

_QUEUE_BUCKETS = tuple(1e-8 * 10**i for i in range(12))  # ExponentialBuckets(10e-9, 10, 12)
_RECONCILE_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9,
    1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30, 40, 50, 60,
)

# workqueue_* : labels name and controller both carry the queue's name, as controller-runtime sets them.
WORKQUEUE_DEPTH = Gauge("workqueue_depth", "Current depth of workqueue",
                        ["name", "controller"], registry=REGISTRY)
WORKQUEUE_ADDS = Counter("workqueue_adds_total", "Total number of adds handled by workqueue",
                         ["name", "controller"], registry=REGISTRY)
WORKQUEUE_QUEUE_DURATION = Histogram(
    "workqueue_queue_duration_seconds",
    "How long in seconds an item stays in workqueue before being requested",
    ["name", "controller"], buckets=_QUEUE_BUCKETS, registry=REGISTRY)
WORKQUEUE_WORK_DURATION = Histogram(
    "workqueue_work_duration_seconds", "How long in seconds processing an item from workqueue takes.",
    ["name", "controller"], buckets=_QUEUE_BUCKETS, registry=REGISTRY)
WORKQUEUE_UNFINISHED_WORK = Gauge(
    "workqueue_unfinished_work_seconds",
    "How many seconds of work has been done that is in progress and hasn't been observed by "
    "work_duration.", ["name", "controller"], registry=REGISTRY)
WORKQUEUE_LONGEST_RUNNING = Gauge(
    "workqueue_longest_running_processor_seconds",
    "How many seconds has the longest running processor for workqueue been running.",
    ["name", "controller"], registry=REGISTRY)
WORKQUEUE_RETRIES = Counter("workqueue_retries_total", "Total number of retries handled by workqueue",
                            ["name", "controller"], registry=REGISTRY)

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

EVENTS_DROPPED = Counter("rook_events_dropped_total",
                         "Events not written, by reason: queue_full, spam_filtered, write_failed.",
                         ["reason"], registry=REGISTRY)


def exposition() -> tuple[bytes, str]:
    """The registry in the Prometheus text format, with its content type."""
    from prometheus_client import CONTENT_TYPE_LATEST

    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
