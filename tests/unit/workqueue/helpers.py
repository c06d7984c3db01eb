"""Polling helper shared by the workqueue tests (bounded; never asserts on wall-clock time)."""

from __future__ import annotations

import time
from collections.abc import Callable


def eventually(pred: Callable[[], bool], timeout: float = 5.0, interval: float = 0.002) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(interval)
    return pred()
