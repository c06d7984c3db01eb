"""client-go's util/workqueue: a deduplicating work queue, its delaying and rate-limited forms."""

from rook_py.framework.workqueue.clock import Clock, FakeClock, RealClock
from rook_py.framework.workqueue.delaying import DelayingQueue
from rook_py.framework.workqueue.queue import Queue
from rook_py.framework.workqueue.ratelimit import (
    BucketRateLimiter,
    ItemExponentialFailureRateLimiter,
    ItemFastSlowRateLimiter,
    MaxOfRateLimiter,
    RateLimiter,
    RateLimitingQueue,
    default_controller_rate_limiter,
)

__all__ = [
    "BucketRateLimiter",
    "Clock",
    "DelayingQueue",
    "FakeClock",
    "ItemExponentialFailureRateLimiter",
    "ItemFastSlowRateLimiter",
    "MaxOfRateLimiter",
    "Queue",
    "RateLimiter",
    "RateLimitingQueue",
    "RealClock",
    "default_controller_rate_limiter",
]
