"""Reflector: paging, watch options, relist on 410, re-watch on transport errors and 429."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pytest_mock import MockerFixture

from rook_py.framework.cache import Backoff, DeletedFinalStateUnknown, DeltaFIFO, Indexer, Reflector
from rook_py.framework.client import errors
from tests.unit.cache.fakes import FakeListerWatcher, cm
from tests.unit.workqueue.helpers import eventually


def fast_backoff() -> Backoff:
    return Backoff(initial=0.001, cap=0.005, reset_after=60, jitter=0.0)


class Running:
    """A reflector on a thread, stopped (and joined) on exit."""

    def __init__(self, reflector: Reflector) -> None:
        self.reflector = reflector
        self.stop = threading.Event()
        self.thread = threading.Thread(target=reflector.run, args=(self.stop,), daemon=True)

    def __enter__(self) -> Running:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5)
        assert not self.thread.is_alive()


def make(lw: Any, store: Any = None, **kw: Any) -> Reflector:
    kw.setdefault("backoff", fast_backoff())
    return Reflector(lw, store if store is not None else Indexer(), **kw)


def test_first_list_asks_the_watch_cache_and_comes_whole() -> None:
    # client-go's first list is at resourceVersion "0"; kube-apiserver v1.28 answers it from its
    # watch cache, which ignores the limit, so 1,001 objects arrive in one response.
    lw = FakeListerWatcher([cm(f"o{i}", i) for i in range(1001)], rv=42)
    store = Indexer()
    with Running(make(lw, store)):
        lw.wait_watches(1)
    assert lw.list_calls == [{"limit": 500, "continue_": None, "resource_version": "0"}]
    assert len(store) == 1001 and lw.watch_calls[0]["resource_version"] == "42"


def test_without_the_watch_cache_every_list_is_consistent_and_paged() -> None:
    lw = FakeListerWatcher([cm(f"o{i}", i) for i in range(5)], rv=10)
    with Running(make(lw, page_size=2, list_from_watch_cache=False)):
        lw.wait_watches(1).send(errors.expired("10", "11"))
        lw.wait_watches(2)
    assert [(c["resource_version"], c["limit"]) for c in lw.list_calls] == [
        ("", 2), (None, 2), (None, 2), ("", 2), (None, 2), (None, 2)]


def test_paged_list_follows_continue_then_watches_from_list_rv() -> None:
    lw = FakeListerWatcher([cm(f"o{i}", i) for i in range(7)], rv=42)
    lw.pages_watch_cache_lists = True
    store = Indexer()
    with Running(make(lw, store, page_size=3, min_watch_timeout=300)):
        lw.wait_watches(1)
    assert [c["limit"] for c in lw.list_calls] == [3, 3, 3]
    assert [c["continue_"] is None for c in lw.list_calls] == [True, False, False]
    # The version goes with the first page only; the continue token pins the rest.
    assert [c["resource_version"] for c in lw.list_calls] == ["0", None, None]
    assert len(store) == 7
    call = lw.watch_calls[0]
    assert call["resource_version"] == "42"
    assert 300 <= call["timeout_seconds"] < 600
    assert call["read_timeout"] > call["timeout_seconds"]


def test_default_page_size_is_500() -> None:
    lw = FakeListerWatcher([cm(f"o{i}", i) for i in range(1001)])
    lw.pages_watch_cache_lists = True
    with Running(make(lw)):
        lw.wait_watches(1)
    assert [c["limit"] for c in lw.list_calls] == [500, 500, 500]


def synced_at_11(lw: FakeListerWatcher, r: Reflector) -> None:
    """The first watch is open and has delivered one event, resourceVersion 11."""
    lw.wait_watches(1)
    lw.create(cm("b", 0))
    assert eventually(lambda: r.last_sync_resource_version() == "11")


def test_relist_after_a_watch_410_asks_for_the_last_synced_version_whole() -> None:
    lw = FakeListerWatcher([cm("a", 1)], rv=10)
    r = make(lw)
    with Running(r):
        synced_at_11(lw, r)
        lw.streams[-1].send(errors.expired("11", "12"))
        lw.wait_watches(2)
    # Not older than what the store holds, and not paged: the server pages only exact reads.
    assert lw.list_calls[1] == {"limit": None, "continue_": None, "resource_version": "11"}


@pytest.mark.parametrize("refusal", [errors.expired("11", "20"),
                                     errors.too_large_resource_version(11, 9)],
                         ids=["expired", "too-large"])
def test_a_refused_version_is_retried_at_once_as_a_consistent_list(refusal: errors.ApiError) -> None:
    lw = FakeListerWatcher([cm("a", 1)], rv=10)
    lw.watch_errors = [None, None]
    r = make(lw)
    with Running(r):
        synced_at_11(lw, r)
        lw.list_errors = [refusal]
        lw.streams[-1].send(errors.expired("11", "20"))
        lw.wait_watches(2)
        assert r.relist_resource_version() == lw.watch_calls[1]["resource_version"] == "11"
    assert [(c["resource_version"], c["limit"]) for c in lw.list_calls] == [("0", 500), ("11", None),
                                                                            ("", 500)]


def test_a_server_that_paged_the_first_list_is_paged_on_relists() -> None:
    lw = FakeListerWatcher([cm(f"o{i}", i) for i in range(5)], rv=10)
    lw.pages_watch_cache_lists = True
    with Running(make(lw, page_size=2)):
        lw.wait_watches(1).send(errors.expired("10", "11"))
        lw.wait_watches(2)
    assert [(c["resource_version"], c["limit"]) for c in lw.list_calls] == [
        ("0", 2), (None, 2), (None, 2), ("10", 2), (None, 2), (None, 2)]


def test_watch_timeouts_are_spread(mocker: MockerFixture) -> None:
    lw = FakeListerWatcher()
    rands = iter([0.0, 0.999])
    r = make(lw, min_watch_timeout=300, rand=lambda: next(rands))
    with Running(r):
        lw.wait_watches(1).end()
        lw.wait_watches(2)
    assert [c["timeout_seconds"] for c in lw.watch_calls[:2]] == [300, 599]


def test_expired_continue_token_relists_from_scratch() -> None:
    lw = FakeListerWatcher([cm(f"o{i}", i) for i in range(5)])
    lw.pages_watch_cache_lists = True
    lw.list_errors = [None, errors.expired("1", "5")]  # first page fine, second page 410
    store = Indexer()
    with Running(make(lw, store, page_size=2)):
        lw.wait_watches(1)
    assert [c["continue_"] is None for c in lw.list_calls] == [True, False, True, False, False]
    assert len(store) == 5


def test_watch_events_reach_the_store_and_advance_rv() -> None:
    lw = FakeListerWatcher([cm("a", 1)], rv=10)
    store = Indexer()
    r = make(lw, store)
    with Running(r):
        lw.wait_watches(1)
        lw.create(cm("b", 0))
        lw.modify(cm("a", 0, data={"x": "1"}))
        lw.remove("default/a")
        stream = lw.streams[-1]
        stream.send({"type": "BOOKMARK", "object": {"kind": "ConfigMap", "metadata": {"resourceVersion": "99"}}})
        assert eventually(lambda: r.last_sync_resource_version() == "99")
    assert store.list_keys() == ["default/b"]


def test_stream_end_rewatches_from_last_rv_without_relist() -> None:
    lw = FakeListerWatcher([cm("a", 1)], rv=10)
    r = make(lw)
    with Running(r):
        synced_at_11(lw, r)
        lw.streams[-1].end()
        lw.wait_watches(2)
    assert len(lw.list_calls) == 1
    assert lw.watch_calls[1]["resource_version"] == "11"


def test_transport_error_rewatches_without_relist() -> None:
    lw = FakeListerWatcher([cm("a", 1)], rv=10)
    r = make(lw)
    with Running(r):
        lw.wait_watches(1).send(errors.TransportError("connection reset by peer"))
        lw.wait_watches(2)
        lw.watch_errors = [errors.TransportError("connection refused")]
        lw.streams[-1].end()
        lw.wait_watches(3)
    assert len(lw.list_calls) == 1
    assert {c["resource_version"] for c in lw.watch_calls} == {"10"}


def test_too_many_requests_honours_retry_after_without_relist(mocker: MockerFixture) -> None:
    lw = FakeListerWatcher(rv=10)
    lw.watch_errors = [errors.TooManyRequests("slow down", retry_after=0.02)]
    r = make(lw)
    waits: list[float] = []
    real_wait = r._wait

    def spy(seconds: float) -> bool:
        waits.append(seconds)
        return real_wait(seconds)

    mocker.patch.object(r, "_wait", side_effect=spy)
    with Running(r):
        lw.wait_watches(1)
    assert len(lw.list_calls) == 1
    assert 0.02 in waits


def test_gone_during_watch_relists_and_reports_vanished_objects() -> None:
    lw = FakeListerWatcher([cm("a", 1), cm("b", 1)], rv=10)
    known = Indexer()
    fifo = DeltaFIFO(known_objects=known)
    consumed: list[Any] = []

    def consume(stop: threading.Event) -> None:
        while not stop.is_set():
            fifo.pop(lambda ds, _: [consumed.append(d) or (known.delete(d.object) if d.type == "Deleted"
                                                            else known.upsert(d.object)) for d in ds],
                     timeout=0.01)

    r = make(lw, fifo)
    with Running(r) as run:
        consumer = threading.Thread(target=consume, args=(run.stop,), daemon=True)
        consumer.start()
        lw.wait_watches(1)
        assert eventually(lambda: len(known) == 2)
        lw.remove("default/b", emit=False)  # missed while "down"
        lw.streams[-1].send(errors.expired("10", "12"))
        lw.wait_watches(2)
        assert eventually(lambda: len(known) == 1)
    consumer.join(5)
    assert len(lw.list_calls) == 2
    tomb = [d.object for d in consumed if d.type == "Deleted"]
    assert len(tomb) == 1 and isinstance(tomb[0], DeletedFinalStateUnknown)
    assert tomb[0].key == "default/b" and tomb[0].obj["metadata"]["resourceVersion"] == "1"


def test_gone_when_opening_watch_relists() -> None:
    lw = FakeListerWatcher(rv=10)
    lw.watch_errors = [errors.Gone("gone")]
    with Running(make(lw)):
        lw.wait_watches(1)
    assert len(lw.list_calls) == 2


def test_list_failure_backs_off_and_retries(mocker: MockerFixture) -> None:
    lw = mocker.Mock()
    lw.list.side_effect = [errors.InternalError("etcd down"), errors.TransportError("refused"),
                           {"metadata": {"resourceVersion": "5"}, "items": [cm("a", 1)]}]
    opened = threading.Event()

    def watch(**kw: Any) -> Any:
        opened.set()
        stream = mocker.MagicMock()

        def forever() -> Iterator[dict[str, Any]]:
            while not stream.close.called:
                opened.wait(0.01)
            return
            yield

        stream.__iter__.side_effect = lambda: forever()
        return stream

    lw.watch.side_effect = watch
    store = Indexer()
    backoff, connect = fast_backoff(), fast_backoff()
    spy, connect_spy = mocker.spy(backoff, "next"), mocker.spy(connect, "next")
    with Running(make(lw, store, backoff=backoff, connect_backoff=connect)):
        assert opened.wait(5)
    assert lw.list.call_count == 3
    # The server's 500 waits on the relist backoff, the refused connection on the connect one.
    assert spy.call_count == 1
    assert connect_spy.call_count == 1
    assert store.list_keys() == ["default/a"]
    assert lw.watch.call_args.kwargs["resource_version"] == "5"


def test_stop_interrupts_a_blocked_watch() -> None:
    lw = FakeListerWatcher(rv=10)
    with Running(make(lw)):
        stream = lw.wait_watches(1)
    assert stream.closed.is_set()


class TestBackoff:
    def make(self, **kw: Any) -> tuple[Backoff, list[float]]:
        now = [0.0]
        clock: Callable[[], float] = lambda: now[0]  # noqa: E731
        return Backoff(clock=clock, **kw), now

    def test_doubles_to_cap(self) -> None:
        b, now = self.make(initial=0.8, cap=30.0, jitter=0.0)
        got = []
        for _ in range(8):
            got.append(b.next())
            now[0] += 1
        assert got == pytest.approx([0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 30.0, 30.0])

    def test_resets_after_healthy_period(self) -> None:
        b, now = self.make(initial=0.8, cap=30.0, reset_after=120.0, jitter=0.0)
        b.next()
        b.next()
        assert b.next() == pytest.approx(3.2)
        now[0] += 121
        assert b.next() == pytest.approx(0.8)

    def test_jitter_adds_up_to_factor(self) -> None:
        now = [0.0]
        b = Backoff(initial=1.0, jitter=1.0, clock=lambda: now[0], rand=lambda: 0.5)
        assert b.next() == pytest.approx(1.5)
        b2 = Backoff(initial=1.0, jitter=1.0)
        assert all(1.0 <= Backoff(initial=1.0).next() < 2.0 for _ in range(50))
        assert 1.0 <= b2.next() < 2.0


def test_transform_runs_per_page_and_per_event() -> None:
    lw = FakeListerWatcher([cm(f"o{i}", i, metadata={"managedFields": [{"m": i}]}) for i in range(5)], rv=10)
    store = Indexer()
    trimmed_before_next_page: list[bool] = []
    seen: list[str] = []

    def transform(obj: dict[str, Any]) -> dict[str, Any]:
        seen.append(obj["metadata"]["name"])
        obj["metadata"].pop("managedFields", None)
        return obj

    lw.pages_watch_cache_lists = True
    real_list = lw.list

    def list_spy(**kw: Any) -> dict[str, Any]:
        # Every object already received has been transformed before the next page is asked for.
        trimmed_before_next_page.append(len(seen) == 2 * (len(lw.list_calls)))
        return real_list(**kw)

    lw.list = list_spy  # type: ignore[method-assign]
    with Running(make(lw, store, page_size=2, transform=transform)):
        lw.wait_watches(1)
        lw.create(cm("w", 0, metadata={"managedFields": [{"m": "w"}]}))
        assert eventually(lambda: store.get_by_key("default/w") is not None)
    assert all(trimmed_before_next_page)
    assert sorted(seen) == sorted([f"o{i}" for i in range(5)] + ["w"])
    assert all("managedFields" not in o["metadata"] for o in store.list())



def test_list_throttled_waits_retry_after_not_backoff(mocker: MockerFixture) -> None:
    lw = FakeListerWatcher([cm("a", 1)], rv=10)
    lw.list_errors = [errors.TooManyRequests("slow down", retry_after=0.03)]
    backoff = fast_backoff()
    spy = mocker.spy(backoff, "next")
    r = make(lw, backoff=backoff)
    waits: list[float] = []
    real_wait = r._wait
    mocker.patch.object(r, "_wait", side_effect=lambda s: waits.append(s) or real_wait(s))
    with Running(r):
        lw.wait_watches(1)
    assert waits[0] == 0.03
    assert spy.call_count == 0
    assert len(lw.list_calls) == 2


def test_very_short_empty_watch_backs_off_before_rewatching(mocker: MockerFixture) -> None:
    lw = FakeListerWatcher(rv=10)
    backoff = fast_backoff()
    spy = mocker.spy(backoff, "next")
    with Running(make(lw, backoff=backoff, short_watch=10.0)):
        lw.wait_watches(1).end()  # ends at once, nothing in it
        lw.wait_watches(2)
        assert spy.call_count == 1
    assert len(lw.list_calls) == 1


class TestSeparateBackoffs:
    """An outage grows only the connection backoff; the relist after it starts at once."""

    def test_outage_uses_connect_backoff_and_relist_after_410_is_immediate(self, mocker: MockerFixture) -> None:
        lw = FakeListerWatcher([cm("a", 1)], rv=10)
        relist, connect = fast_backoff(), fast_backoff()
        relist_spy, connect_spy = mocker.spy(relist, "next"), mocker.spy(connect, "next")
        r = make(lw, backoff=relist, connect_backoff=connect)
        waits: list[float] = []
        real_wait = r._wait
        mocker.patch.object(r, "_wait", side_effect=lambda s: waits.append(s) or real_wait(s))
        with Running(r):
            lw.wait_watches(1).send(errors.expired("10", "11"))  # watch dies (server restarts)
            # ...and the server refuses connections for a while, then answers 410 (new watch cache).
            lw.list_errors = [errors.TransportError("refused")] * 5
            lw.wait_watches(2)
        assert connect_spy.call_count == 5
        assert relist_spy.call_count == 0  # the first relist after a working watch waits nothing
        assert waits[0] == 0.0
        assert len(lw.list_calls) == 7  # first list, five refused, one that worked

    def test_watch_refused_while_down_keeps_rv_and_uses_connect_backoff(self, mocker: MockerFixture) -> None:
        lw = FakeListerWatcher([cm("a", 1)], rv=10)
        relist, connect = fast_backoff(), fast_backoff()
        relist_spy, connect_spy = mocker.spy(relist, "next"), mocker.spy(connect, "next")
        lw.watch_errors = [errors.TransportError("refused"), errors.ServiceUnavailable("starting"),
                           errors.TransportError("refused")]
        with Running(make(lw, backoff=relist, connect_backoff=connect)):
            lw.wait_watches(1)
        assert connect_spy.call_count == 3
        assert relist_spy.call_count == 0
        assert len(lw.list_calls) == 1

    def test_connect_backoff_resets_once_the_server_answers(self) -> None:
        lw = FakeListerWatcher([cm("a", 1)], rv=10)
        now = [0.0]
        connect = Backoff(initial=0.001, cap=1.0, jitter=0.0, clock=lambda: now[0])
        lw.list_errors = [errors.TransportError("refused")] * 4
        with Running(make(lw, connect_backoff=connect)):
            lw.wait_watches(1)
        # Four failures grew it to 8 ms; the successful list reset it.
        assert connect.next() == pytest.approx(0.001)

    def test_relists_in_quick_succession_back_off(self, mocker: MockerFixture) -> None:
        lw = FakeListerWatcher([cm("a", 1)], rv=10)
        relist = fast_backoff()
        spy = mocker.spy(relist, "next")
        lw.watch_errors = [errors.Gone("gone"), errors.Gone("gone"), errors.Gone("gone")]
        with Running(make(lw, backoff=relist)):
            lw.wait_watches(1)
        assert len(lw.list_calls) == 4
        assert spy.call_count == 2  # the first relist at once, the next two wait

    def test_a_working_watch_resets_the_relist_backoff(self, mocker: MockerFixture) -> None:
        lw = FakeListerWatcher([cm("a", 1)], rv=10)
        relist = fast_backoff()
        reset = mocker.spy(relist, "reset")
        with Running(make(lw, backoff=relist)):
            stream = lw.wait_watches(1)
            lw.create(cm("b", 0))
            assert eventually(lambda: reset.call_count >= 1)
            stream.send(errors.expired("11", "12"))
            lw.wait_watches(2)
        assert len(lw.list_calls) == 2


def test_backoff_reset_starts_from_initial() -> None:
    now = [0.0]
    b = Backoff(initial=0.5, cap=30.0, jitter=0.0, clock=lambda: now[0])
    assert [b.next() for _ in range(3)] == pytest.approx([0.5, 1.0, 2.0])
    b.reset()
    assert b.next() == pytest.approx(0.5)


def test_default_connect_backoff_tries_at_least_every_800ms() -> None:
    from rook_py.framework.cache.reflector import default_connect_backoff

    b = default_connect_backoff()
    assert max(b.next() for _ in range(50)) < 0.8


def test_a_quiet_watch_broken_by_a_restart_still_counts_as_working(mocker: MockerFixture) -> None:
    """No events for a while, then the server dies (stream broken) and answers 410 when it is
    back: the relist starts at once, because the watch served until the connection broke."""
    lw = FakeListerWatcher([cm("a", 1)], rv=10)
    relist = fast_backoff()
    spy = mocker.spy(relist, "next")
    with Running(make(lw, backoff=relist, short_watch=0.05)):
        stream = lw.wait_watches(1)
        stream.send(errors.expired("10", "11"))  # first relist: at once
        stream = lw.wait_watches(2)
        threading.Event().wait(0.1)  # quiet, but open longer than short_watch
        lw.watch_errors = [errors.Gone("too old")]
        stream.send(errors.TransportError("connection reset"))
        lw.wait_watches(3)
    assert len(lw.list_calls) == 3
    assert spy.call_count == 0
