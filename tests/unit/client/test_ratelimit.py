"""Token bucket: burst, steady rate, and reservation order, on a fake clock."""

from __future__ import annotations

import pytest

from rook_py.framework.client.ratelimit import TokenBucket


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


def test_burst_then_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10, 3, clock=clock, sleep=clock.sleep)
    assert [bucket.accept() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.accept() == pytest.approx(0.1)
    assert bucket.accept() == pytest.approx(0.2)  # reserved behind the previous waiter
    assert clock.slept == pytest.approx([0.1, 0.2])


def test_refill_is_capped_at_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(1, 2, clock=clock, sleep=clock.sleep)
    assert bucket.try_accept() and bucket.try_accept()
    assert not bucket.try_accept()
    clock.now = 100.0
    assert bucket.try_accept() and bucket.try_accept()
    assert not bucket.try_accept()
    clock.now = 101.0
    assert bucket.try_accept()


def test_validation() -> None:
    with pytest.raises(ValueError):
        TokenBucket(0, 1)
    with pytest.raises(ValueError):
        TokenBucket(1, 0)
