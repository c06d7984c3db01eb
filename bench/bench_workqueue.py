"""Workqueue throughput: add/get/done cycles per second (``python -m bench.bench_workqueue``).

Three shapes: one thread doing add -> get -> done (the per-item cost of the data structure and
its metrics), the same without metrics (an unnamed queue records none), and one producer with
four workers (lock contention, as a controller with max_concurrent_reconciles=4 sees it).
Figures are the median of several rounds.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable

from rook_py.framework.workqueue import DelayingQueue, Queue

N = 100_000
ROUNDS = 3


def _single_thread(name: str) -> float:
    q = Queue(name)
    items = list(range(N))
    start = time.perf_counter()
    for i in items:
        q.add(i)
    for _ in items:
        item, _ = q.get()
        q.done(item)
    elapsed = time.perf_counter() - start
    q.shut_down()
    return N / elapsed


def _workers(name: str, workers: int = 4) -> float:
    q = Queue(name)
    done = threading.Semaphore(0)

    def work() -> None:
        while True:
            item, shutdown = q.get()
            if shutdown:
                return
            q.done(item)
            done.release()

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for t in threads:
        t.start()
    start = time.perf_counter()
    for i in range(N):
        q.add(i)
    for _ in range(N):
        done.acquire()
    elapsed = time.perf_counter() - start
    q.shut_down()
    for t in threads:
        t.join()
    return N / elapsed


def _add_after(name: str) -> float:
    """Items scheduled 1 ms ahead, then drained: heap insert + waiting thread + queue."""
    q = DelayingQueue(name)
    start = time.perf_counter()
    for i in range(N // 5):
        q.add_after(i, 0.001)
    for _ in range(N // 5):
        item, _ = q.get()
        q.done(item)
    elapsed = time.perf_counter() - start
    q.shut_down()
    return (N // 5) / elapsed


def _median(fn: Callable[[str], float], name: str) -> float:
    return statistics.median(fn(name) for _ in range(ROUNDS))


def run() -> str:
    rows = [
        ("add + get + done, 1 thread, metrics on", _median(_single_thread, "bench-wq")),
        ("add + get + done, 1 thread, metrics off", _median(_single_thread, "")),
        ("1 producer, 4 workers, metrics on", _median(_workers, "bench-wq-workers")),
        ("add_after(1 ms) + get + done, metrics on", _median(_add_after, "bench-wq-delay")),
    ]
    lines = [f"{N:,} items per round (add_after: {N // 5:,}), median of {ROUNDS} rounds.", "",
             "| shape | items/s | µs per item |", "|---|---:|---:|"]
    lines += [f"| {label} | {rate:,.0f} | {1e6 / rate:.1f} |" for label, rate in rows]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(run())
