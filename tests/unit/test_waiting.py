"""tests.support.waiting.eventually: the shared bounded poll."""

from __future__ import annotations

import itertools

import pytest

from tests.support.waiting import eventually


def test_returns_first_truthy_value() -> None:
    values = iter([None, 0, "", [], {"ready": True}, "later"])
    assert eventually(lambda: next(values), timeout=5, interval=0) == {"ready": True}
    assert next(values) == "later"  # polling stopped at the first truthy value


def test_ignored_exceptions_mean_not_yet() -> None:
    calls = itertools.count(1)

    def probe() -> int:
        n = next(calls)
        if n < 3:
            raise KeyError(n)
        return n

    assert eventually(probe, timeout=5, interval=0, ignore=(KeyError, OSError)) == 3


def test_other_exceptions_propagate_at_once() -> None:
    calls: list[int] = []

    def probe() -> int:
        calls.append(1)
        raise ValueError("broken")

    with pytest.raises(ValueError, match="broken"):
        eventually(probe, timeout=5, interval=0, ignore=(KeyError,))
    assert len(calls) == 1


def test_timeout_names_what_and_last_value() -> None:
    with pytest.raises(AssertionError, match=r"waiting for the widget; last value: \[\]"):
        eventually(lambda: [], timeout=0.05, interval=0.01, what="the widget")


def test_timeout_names_and_chains_last_ignored_error() -> None:
    def probe() -> None:
        raise KeyError("missing")

    with pytest.raises(AssertionError, match="last error: KeyError") as info:
        eventually(probe, timeout=0.05, interval=0.01, ignore=(KeyError,))
    assert isinstance(info.value.__cause__, KeyError)


def test_zero_timeout_still_tries_once() -> None:
    assert eventually(lambda: "now", timeout=0) == "now"
    calls: list[int] = []
    with pytest.raises(AssertionError):
        eventually(lambda: calls.append(1), timeout=0, interval=0)
    assert calls == [1]
