"""The kopf contender: an ordinary kopf operator for the benchmark Widget CRD.

``python -m bench.kopf_operator MODE --namespace NS --expected N`` with ``KUBECONFIG`` set.
Modes (each reports JSON lines through ``bench._common.emit``):

* ``throughput`` (B1): ``@kopf.on.create`` and ``@kopf.on.update`` handlers set
  ``status.processed`` when it is not set yet -- the same single field the rook-py contender writes,
  through kopf's own ``patch`` object, as a kopf user would. Runs until stopped (the harness then
  counts idle writes).
* ``latency`` (B3): the ``@kopf.on.create`` handler notes ``now - spec.sent`` (the harness's
  monotonic time just before it sent the create) and, after N objects, reports p50/p99 and exits.
* ``sync`` (B2): ``@kopf.on.event`` on ConfigMaps counts distinct objects; once N were seen it
  reports the time
  since start and the peak RSS, and exits. kopf has no cache: "synced" is "saw every object".

kopf is left with its defaults (progress and diff-base annotations, sync handlers on its thread
pool, batching window), except logging, which is set to WARNING for both frameworks so neither pays
for console output. kopf posts its per-object INFO log records as Kubernetes Events; at WARNING it
posts none, so kopf's write counts here exclude the Events a default kopf install would also write
(a choice in kopf's favour). Standalone: no peering objects.
"""

from __future__ import annotations

import argparse
import logging
import os
import threading
import time
from typing import Any

import kopf

from bench._common import GROUP, PLURAL, STATUS_FIELD, emit, peak_rss_mb, percentile, rss_now_mb

_state: dict[str, Any] = {"expected": 0, "seen": set(), "latencies": [], "started": 0.0}
_lock = threading.Lock()


def _finish(**fields: Any) -> None:
    emit("result", **fields)
    os._exit(0)  # the measurement is over; kopf's orderly shutdown would only add noise


def _throughput_handler(body: Any, patch: Any, **_: Any) -> None:
    if not (body.get("status") or {}).get(STATUS_FIELD):
        patch.status[STATUS_FIELD] = True


def _latency_handler(body: Any, **_: Any) -> None:
    now = time.monotonic()
    sent = (body.get("spec") or {}).get("sent")
    with _lock:
        if sent is not None:
            _state["latencies"].append(now - float(sent))
        done = len(_state["latencies"]) >= _state["expected"]
        lat = list(_state["latencies"])
    if done:
        _finish(n=len(lat), p50_ms=percentile(lat, 50) * 1000, p99_ms=percentile(lat, 99) * 1000,
                rss_mb=peak_rss_mb())


def _sync_handler(body: Any, **_: Any) -> None:
    with _lock:
        _state["seen"].add(body["metadata"]["name"])
        done = len(_state["seen"]) >= _state["expected"]
    if done:
        _finish(n=len(_state["seen"]), seconds=time.monotonic() - _state["started"], rss_mb=peak_rss_mb(),
                baseline_mb=_state["baseline_mb"], now_mb=rss_now_mb())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.kopf_operator")
    parser.add_argument("mode", choices=("throughput", "latency", "sync"))
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--expected", type=int, required=True)
    args = parser.parse_args(argv)
    _state["expected"] = args.expected

    logging.basicConfig(level=logging.WARNING)
    registry = kopf.OperatorRegistry()
    # A private registry has none of kopf's default login handlers; use the one for the official
    # client library (it reads KUBECONFIG), which is what a default kopf install picks here.
    kopf.on.login(registry=registry)(kopf.login_via_client)
    if args.mode == "throughput":
        kopf.on.create(GROUP, PLURAL, registry=registry)(_throughput_handler)
        kopf.on.update(GROUP, PLURAL, registry=registry)(_throughput_handler)
    elif args.mode == "latency":
        kopf.on.create(GROUP, PLURAL, registry=registry)(_latency_handler)
    else:
        kopf.on.event("v1", "configmaps", registry=registry)(_sync_handler)

    settings = kopf.OperatorSettings()
    for name in ("kopf", "kopf.objects", "kopf.activities", "kopf.reactor"):
        logging.getLogger(name).setLevel(logging.WARNING)
    _state["baseline_mb"] = rss_now_mb()
    emit("start", t=time.monotonic(), rss_mb=_state["baseline_mb"])
    _state["started"] = time.monotonic()
    kopf.run(registry=registry, settings=settings, standalone=True, namespaces=[args.namespace])


if __name__ == "__main__":
    main()
