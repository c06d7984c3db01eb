"""The workqueue and cache tests' fine-grained pace for ``tests.support.waiting.eventually``."""

from __future__ import annotations

from collections.abc import Callable

from tests.support import waiting


def eventually(pred: Callable[[], bool], timeout: float = 5.0, interval: float = 0.002) -> bool:
    """Whether ``pred`` became true within ``timeout``: False rather than a failure, so a test can
    also assert that something does *not* happen (``assert not eventually(...)``)."""
    try:
        return bool(waiting.eventually(pred, timeout, interval=interval))
    except AssertionError:
        return False
