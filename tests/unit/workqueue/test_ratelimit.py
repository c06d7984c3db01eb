"""Behaviours of client-go's rate_limiter_test.go and rate_limiting_queue_test.go, ported."""

from __future__ import annotations

import pytest

from rook_py.framework import metrics as m
from rook_py.framework.workqueue import (
    BucketRateLimiter,
    FakeClock,
    ItemExponentialFailureRateLimiter,
    ItemFastSlowRateLimiter,
    MaxOfRateLimiter,
    RateLimitingQueue,
    default_controller_rate_limiter,
)
from tests.unit.workqueue.helpers import eventually


def test_item_exponential_failure() -> None:
    limiter = ItemExponentialFailureRateLimiter(0.001, 1.0)
    assert [limiter.when("one") for _ in range(5)] == pytest.approx(
        [0.001, 0.002, 0.004, 0.008, 0.016])
    assert limiter.num_requeues("one") == 5
    assert [limiter.when("two") for _ in range(2)] == pytest.approx([0.001, 0.002])
    assert limiter.num_requeues("two") == 2
    limiter.forget("one")
    assert limiter.num_requeues("one") == 0
    assert limiter.when("one") == pytest.approx(0.001)


def test_item_exponential_caps_and_never_overflows() -> None:
    limiter = ItemExponentialFailureRateLimiter(1.0, 1000.0)
    delays = [limiter.when("one") for _ in range(12)]
    assert delays[9] == 512.0
    assert delays[10] == 1000.0
    for _ in range(5000):
        assert limiter.when("one") == 1000.0
    assert limiter.num_requeues("one") == 5012


def test_item_exponential_default_is_5ms_to_1000s() -> None:
    limiter = ItemExponentialFailureRateLimiter()
    assert limiter.when("x") == pytest.approx(0.005)
    for _ in range(30):
        limiter.when("x")
    assert limiter.when("x") == 1000.0


def test_item_fast_slow() -> None:
    limiter = ItemFastSlowRateLimiter(0.005, 10.0, 3)
    assert [limiter.when("one") for _ in range(5)] == [0.005, 0.005, 0.005, 10.0, 10.0]
    assert limiter.num_requeues("one") == 5
    assert [limiter.when("two") for _ in range(2)] == [0.005, 0.005]
    limiter.forget("one")
    assert limiter.num_requeues("one") == 0
    assert limiter.when("one") == 0.005


def test_max_of() -> None:
    limiter = MaxOfRateLimiter(ItemFastSlowRateLimiter(0.005, 3.0, 3),
                               ItemExponentialFailureRateLimiter(0.001, 1.0))
    assert [limiter.when("one") for _ in range(5)] == pytest.approx([0.005, 0.005, 0.005, 3.0, 3.0])
    assert limiter.num_requeues("one") == 5
    limiter.forget("one")
    assert limiter.num_requeues("one") == 0
    assert limiter.when("one") == 0.005


def test_bucket_burst_then_qps() -> None:
    clock = FakeClock()
    limiter = BucketRateLimiter(10, 100, clock=clock)
    assert [limiter.when(i) for i in range(100)] == [0.0] * 100
    # Bucket empty: each further reservation waits one more token interval (0.1 s at 10 qps).
    assert [limiter.when(i) for i in range(3)] == pytest.approx([0.1, 0.2, 0.3])
    clock.step(1.0)  # refills 10 tokens, 3 of which pay the debt
    assert [limiter.when(i) for i in range(7)] == [0.0] * 7
    assert limiter.when("x") == pytest.approx(0.1)
    assert limiter.num_requeues("x") == 0


def test_bucket_never_exceeds_burst() -> None:
    clock = FakeClock()
    limiter = BucketRateLimiter(10, 5, clock=clock)
    clock.step(3600)
    assert [limiter.when(i) for i in range(5)] == [0.0] * 5
    assert limiter.when("over") == pytest.approx(0.1)


def test_bucket_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError):
        BucketRateLimiter(0, 1)


def test_default_controller_rate_limiter_is_max_of_both() -> None:
    clock = FakeClock()
    limiter = default_controller_rate_limiter(clock=clock)
    assert limiter.when("a") == pytest.approx(0.005)
    assert limiter.when("a") == pytest.approx(0.01)
    for i in range(98):
        limiter.when(i)
    # 100 tokens used; bucket dominates for a fresh item now.
    assert limiter.when("fresh") == pytest.approx(0.1)


def test_rate_limiting_queue() -> None:
    clock = FakeClock()
    limiter = ItemExponentialFailureRateLimiter(1.0, 1000.0)
    name = "test-rate-limiting-queue"
    q = RateLimitingQueue(limiter, name, clock=clock)
    retries0 = m.REGISTRY.get_sample_value("workqueue_retries_total",
                                           {"name": name, "controller": name}) or 0.0
    q.add_rate_limited("one")
    assert q.waiting_len() == 1
    assert q.num_requeues("one") == 1
    q.add_rate_limited("one")  # wants 2 s, keeps the earlier 1 s slot
    assert q.waiting_len() == 1
    assert q.num_requeues("one") == 2
    q.add_rate_limited("two")
    assert q.waiting_len() == 2
    clock.step(1.0)
    assert eventually(lambda: len(q) == 2)
    q.forget("one")
    assert q.num_requeues("one") == 0
    assert q.num_requeues("two") == 1
    assert m.REGISTRY.get_sample_value("workqueue_retries_total",
                                       {"name": name, "controller": name}) == retries0 + 3
    q.shut_down()
