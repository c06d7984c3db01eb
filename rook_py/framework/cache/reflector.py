"""The reflector: keeps a store in step with the server by list-then-watch
(client-go tools/cache/reflector.go, tools/pager/pager.go).

Loop, until ``stop`` is set:

1. **List** at client-go's resourceVersions (``relist_resource_version``): "0" first, answered
   from kube-apiserver's watch cache (which ignores ``limit``, so it comes whole) without a quorum
   read from etcd; after a watch's 410, the last synced version ("not older than" what the store
   holds); a consistent "" list, paged by ``page_size`` (500), only once the server refused a
   version as expired or too large. A continue token that expires (410) part-way restarts the
   list from scratch, since pages from two snapshots cannot be mixed. The whole result goes to
   ``store.replace(items, resourceVersion)`` at once.
2. **Watch** from the last seen resourceVersion with ``allowWatchBookmarks``, a server
   ``timeoutSeconds`` drawn from [min_watch_timeout, 2*min_watch_timeout) so a fleet of clients
   does not reconnect in lock-step, and a client read timeout a little above it so a silently
   dead connection cannot hang the loop. Every event and bookmark advances the resourceVersion.
3. When the stream ends (server timeout or dropped connection) the watch is **re-opened from the
   last resourceVersion without relisting**; so are transport failures and 429s (after
   Retry-After). A 410 Gone/Expired means our resourceVersion fell out of the server's history:
   **relist**. Any other error relists too, as client-go's ListAndWatch returning does.

Two backoffs, kept apart as client-go keeps ``backoffManager`` and ``initConnBackoffManager``
(staging/src/k8s.io/client-go/tools/cache/reflector.go), because they answer different failures:

* ``connect_backoff``: the server cannot be reached or is not serving yet (connection refused or
  reset, a read timeout, 503 while it starts). Short and capped low
  (100 ms doubling to 400 ms, jittered up to 2x, so an attempt at least every 0.8 s; a 503's
  Retry-After, 5 s from a starting kube-apiserver, is not waited for): a refused
  connection costs the server nothing, and an operator must notice a restarted API server within
  a second, not 30-60 s later because an outage grew the delay to its cap.
* ``backoff`` (relist): the server answered, but the watch cannot continue (410 Gone, another
  error, a watch that ends at once with nothing in it). 800 ms doubling, jittered, capped at 30 s,
  as client-go's. The *first* relist after a working watch starts at once: a 410 after an API
  server restart is expected (its watch cache starts at the current revision), not a failure to
  slow down for; only relists in quick succession back off.

Both reset as soon as the server answers successfully: the connection backoff on any successful
list or watch, the relist backoff once a list is followed by a watch that works (delivers an event
or stays open for ``short_watch``, however it ends). Without that a second outage within 2 minutes would start at the cap.
Every interval is a constructor argument so tests run in milliseconds.
The reflector talks to the server only through a ``ListerWatcher``; ``ClientListerWatcher`` binds
one to the framework ``Client`` contract (``client.list``/``client.watch``).
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from rook_py.framework.client import errors
from rook_py.framework.logging import get_logger

JSON = dict[str, Any]

log = get_logger(__name__)


class WatchStreamLike(Protocol):
    def __iter__(self) -> Iterator[JSON]: ...

    def close(self) -> None: ...


class ListerWatcher(Protocol):
    def list(self, *, limit: int | None, continue_: str | None, resource_version: str | None = None) -> JSON:
        """One page of the List (``items``, ``metadata.continue``, ``metadata.resourceVersion``);
        ``resource_version`` None or "" is a consistent read, "0" any recent state."""
        ...

    def watch(self, *, resource_version: str | None, timeout_seconds: int,
              read_timeout: float) -> WatchStreamLike:
        ...


class ReflectorStore(Protocol):
    """What the reflector writes into (a DeltaFIFO, or directly an Indexer)."""

    def add(self, obj: JSON) -> None: ...

    def update(self, obj: JSON) -> None: ...

    def delete(self, obj: Any) -> None: ...

    def replace(self, objs: list[JSON], resource_version: str | None = None) -> None: ...


def _own_retries(client: Any) -> contextlib.AbstractContextManager[None]:
    """The reflector waits on its own backoffs: the client must not sleep a Retry-After too."""
    without = getattr(client, "without_retries", None)
    return without() if without is not None else contextlib.nullcontext()


class ClientListerWatcher:
    """A ``ListerWatcher`` over the framework client for one kind, namespace and selector.
    Its requests are not retried by the client (``Client.without_retries``): a 429 or 503
    reaches the reflector, which waits the 429's Retry-After or its connection backoff."""

    def __init__(self, client: Any, api_version: str, kind: str, *, namespace: str | None = None,
                 label_selector: str | None = None, field_selector: str | None = None) -> None:
        self.client = client
        self.api_version = api_version
        self.kind = kind
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector

    def list(self, *, limit: int | None, continue_: str | None, resource_version: str | None = None) -> JSON:
        with _own_retries(self.client):
            page: JSON = self.client.list(self.api_version, self.kind, self.namespace,
                                          label_selector=self.label_selector,
                                          field_selector=self.field_selector,
                                          limit=limit, continue_=continue_,
                                          resource_version=resource_version or None)
        # List items carry no apiVersion/kind on the wire; watch objects do. Set them so cached
        # objects look the same whichever way they arrived.
        api_version, kind = self.api_version, self.kind
        for item in page.get("items") or ():
            if "kind" not in item:
                item["apiVersion"] = api_version
                item["kind"] = kind
        return page

    def watch(self, *, resource_version: str | None, timeout_seconds: int,
              read_timeout: float) -> WatchStreamLike:
        with _own_retries(self.client):
            stream: WatchStreamLike = self.client.watch(
                self.api_version, self.kind, self.namespace, resource_version=resource_version,
                timeout_seconds=timeout_seconds, allow_watch_bookmarks=True,
                label_selector=self.label_selector, field_selector=self.field_selector,
                read_timeout=read_timeout)
        return stream


class Backoff:
    """Exponential backoff with jitter and reset (k8s.io/apimachinery wait.exponentialBackoffManagerImpl).

    ``next()`` returns ``base * (1 + jitter * random())`` where ``base`` starts at ``initial``,
    doubles per call up to ``cap``, and returns to ``initial`` when more than ``reset_after``
    seconds passed since the previous call (the loop was healthy that long) or after ``reset()``.
    """

    def __init__(self, initial: float = 0.8, cap: float = 30.0, reset_after: float = 120.0,
                 factor: float = 2.0, jitter: float = 1.0, *,
                 clock: Callable[[], float] = time.monotonic,
                 rand: Callable[[], float] = random.random) -> None:
        self.initial, self.cap, self.reset_after = initial, cap, reset_after
        self.factor, self.jitter = factor, jitter
        self._clock, self._rand = clock, rand
        self._base: float | None = None
        self._last: float | None = None

    def next(self) -> float:
        now = self._clock()
        if self._base is None or self._last is None or now - self._last > self.reset_after:
            self._base = self.initial
        else:
            self._base = min(self._base * self.factor, self.cap)
        self._last = now
        return self._base * (1.0 + self.jitter * self._rand())

    def reset(self) -> None:
        """The guarded operation succeeded: the next failure starts from ``initial`` again."""
        self._base = None
        self._last = None


def default_connect_backoff() -> Backoff:
    """See the module docstring: an attempt at least every 0.8 s while the server is unreachable."""
    return Backoff(initial=0.1, cap=0.4)


def is_unreachable(exc: errors.ApiError) -> bool:
    """Errors that say the server is not serving (yet), as opposed to answering no: they keep the
    resourceVersion and wait on the connection backoff (client-go's isWatchErrorRetriable; a 429
    waits its Retry-After instead)."""
    return isinstance(exc, (errors.TransportError, errors.ServiceUnavailable))


class _Relist(Exception):
    """Internal: the watch cannot continue from our resourceVersion."""


class Reflector:
    def __init__(self, lister_watcher: ListerWatcher, store: ReflectorStore, *, name: str = "reflector",
                 page_size: int = 500, min_watch_timeout: float = 300.0,
                 read_timeout_margin: float = 30.0, backoff: Backoff | None = None,
                 connect_backoff: Backoff | None = None, too_many_requests_delay: float = 1.0, short_watch: float = 1.0,
                 rand: Callable[[], float] = random.random,
                 transform: Callable[[JSON], JSON] | None = None,
                 list_from_watch_cache: bool = True) -> None:
        """``transform`` runs on every object as it arrives (each list page, each watch event),
        so a large list never holds what the transform drops for all pages at once.
        ``list_from_watch_cache=False`` makes every list a consistent one in pages of
        ``page_size``: more work for etcd, but no response larger than a page, for kinds with so
        many objects that a whole list at "0" held in memory at once is too much (measured in
        bench/REPORT.md, B2: 10,000 ConfigMaps peak at 126 MiB whole, 82 MiB in pages)."""
        self.lw = lister_watcher
        self.transform = transform
        self.store = store
        self.name = name
        self.page_size = page_size
        self.list_from_watch_cache = list_from_watch_cache
        self.min_watch_timeout = min_watch_timeout
        self.read_timeout_margin = read_timeout_margin
        self.backoff = backoff or Backoff()
        self.connect_backoff = connect_backoff or default_connect_backoff()
        # The next relist may start at once (a watch worked since the last one).
        self._relist_at_once = True
        self.too_many_requests_delay = too_many_requests_delay
        self.short_watch = short_watch
        self._rand = rand
        self._lock = threading.Lock()
        self._last_sync_rv: str | None = None
        self._last_sync_unavailable = False
        self._paginated_result = False
        self._stream: WatchStreamLike | None = None
        self._stop = threading.Event()
        # Counters for diagnostics and tests.
        self.lists = 0
        self.watches = 0
        self._log = log.bind(reflector=name)

    def last_sync_resource_version(self) -> str | None:
        with self._lock:
            return self._last_sync_rv

    def _set_rv(self, rv: str | None) -> None:
        if rv:
            with self._lock:
                self._last_sync_rv = rv

    # -- main loop -----------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """List and watch until ``stop`` is set; never raises for server or network errors."""
        self._stop = stop
        closer = threading.Thread(target=self._close_on_stop, name=f"{self.name}-closer", daemon=True)
        closer.start()
        need_list = True
        while not stop.is_set():
            if need_list:
                try:
                    self._list()
                except errors.ApiError as exc:
                    self._log.warning("list failed", error=repr(exc))
                    if self._wait(self._delay_for(exc)):
                        return
                    continue
                self.connect_backoff.reset()
                if stop.is_set():
                    return
                need_list = False
            try:
                delay = self._watch_once()
            except _Relist:
                need_list = True
                delay = 0.0 if self._relist_at_once else self.backoff.next()
                self._relist_at_once = False
                if self._wait(delay):
                    return
                continue
            if delay and self._wait(delay):
                return

    def _close_on_stop(self) -> None:
        self._stop.wait()
        with self._lock:
            stream = self._stream
        if stream is not None:
            stream.close()

    def _wait(self, seconds: float) -> bool:
        """Sleep unless stopped; True when stopped."""
        return self._stop.wait(seconds) if seconds > 0 else self._stop.is_set()

    def _delay_for(self, exc: errors.ApiError) -> float:
        if isinstance(exc, errors.TooManyRequests):
            return exc.retry_after if exc.retry_after is not None else self.too_many_requests_delay
        if is_unreachable(exc):
            return self.connect_backoff.next()
        return self.backoff.next()

    def _watch_worked(self) -> None:
        """The watch delivered or lasted: the server is healthy, both backoffs start afresh."""
        self.backoff.reset()
        self._relist_at_once = True

    # -- list ------------------------------------------------------------------------------

    def relist_resource_version(self) -> str:
        """The resourceVersion the next list asks for (client-go's relistResourceVersion):
        "0" for the first list, which kube-apiserver answers from its watch cache without
        touching etcd; afterwards the last one synced, so a relist after a watch's 410 is not
        older than what the store already holds; "" (a consistent read from etcd) once a list
        at that version was refused as expired or too large."""
        with self._lock:
            if self._last_sync_unavailable or not self.list_from_watch_cache:
                return ""
            return self._last_sync_rv if self._last_sync_rv is not None else "0"

    def _list(self) -> None:
        # The whole list goes to the store in one replace, after the last page, as in client-go.
        # (Streaming pages to the consumer while the next one downloads looks attractive but is
        # slower in CPython: a CPU-bound consumer thread makes the reading thread wait for the
        # GIL after every socket read, the "convoy effect"; measured 3x slower.)
        resource_version = self.relist_resource_version()
        try:
            items, rv = self._list_pages(resource_version)
        except errors.ApiError as exc:
            if resource_version == "" or not (isinstance(exc, errors.Gone)
                                              or errors.is_too_large_resource_version(exc)):
                raise
            # The version we asked for left the server's history (or is ahead of a restarted
            # server's cache): retry at once with a consistent read, as client-go does.
            self._log.info("list resourceVersion unavailable; listing consistently",
                           resource_version=resource_version, error=str(exc))
            with self._lock:
                self._last_sync_unavailable = True
            items, rv = self._list_pages("")
        if items is None:
            return
        self.store.replace(items, rv)
        with self._lock:
            self._last_sync_unavailable = False
        self._set_rv(rv)
        self.lists += 1

    def _list_pages(self, resource_version: str) -> tuple[list[JSON] | None, str | None]:
        """Every page of one list at ``resource_version`` (None items when stopped). Paged like
        client-go's pager: kube-apiserver ignores ``limit`` for "0" (its watch cache does not
        page) and a list at a specific version is asked for whole, unless the server paged the
        first list, so it honours limits for this resource (client-go's paginatedResult)."""
        paged = resource_version in ("", "0") or self._paginated_result
        limit = self.page_size if paged else None
        items: list[JSON] = []
        continue_: str | None = None
        rv: str | None = None
        while True:
            if self._stop.is_set():
                return None, None
            try:
                # The resourceVersion goes with the first page only: a continue token pins its own.
                page = self.lw.list(limit=limit, continue_=continue_,
                                    resource_version=None if continue_ else resource_version)
            except errors.Gone:
                if continue_ is None:
                    raise
                # The snapshot behind the continue token was compacted away: start over.
                self._log.info("list continue token expired; listing from scratch")
                items, continue_ = [], None
                continue
            md = page.get("metadata") or {}
            page_items = page.get("items")
            if page_items:
                transform = self.transform
                if transform is not None:
                    # Page by page: what the transform drops is freed before the next page.
                    page_items = [transform(o) for o in page_items]
                items.extend(page_items)
            rv = md.get("resourceVersion") or rv
            continue_ = md.get("continue") or None
            if continue_ is None:
                break
            if resource_version == "0":
                self._paginated_result = True
        return items, rv

    # -- watch ------------------------------------------------------------------------------

    def _watch_once(self) -> float:
        """Open one watch and consume it; returns how long to wait before the next one.

        Raises ``_Relist`` when the resourceVersion is unusable or an unexpected error occurred.
        """
        # rand() is in [0, 1), so the timeout is in [min, 2*min): 5-10 minutes by default.
        timeout = max(1, int(self.min_watch_timeout * (1.0 + self._rand())))
        try:
            stream = self.lw.watch(resource_version=self.last_sync_resource_version(),
                                   timeout_seconds=timeout,
                                   read_timeout=timeout + self.read_timeout_margin)
        except errors.Gone as exc:
            self._log.info("watch resourceVersion too old; relisting", error=str(exc))
            raise _Relist from exc
        except (errors.TransportError, errors.TooManyRequests, errors.ServiceUnavailable) as exc:
            # Server unreachable, starting or overloaded: our resourceVersion is still good.
            self._log.warning("watch could not be opened; retrying", error=repr(exc))
            return self._delay_for(exc)
        except errors.ApiError as exc:
            self._log.warning("watch failed; relisting", error=repr(exc))
            raise _Relist from exc
        self.watches += 1
        self.connect_backoff.reset()
        with self._lock:
            self._stream = stream
        if self._stop.is_set():
            stream.close()
        started = time.monotonic()
        events = 0
        try:
            for event in stream:
                if self._stop.is_set():
                    return 0.0
                events += 1
                self._handle(event)
                if events == 1:
                    self._watch_worked()
        except errors.Gone as exc:
            self._log.info("watch expired; relisting", error=str(exc))
            if time.monotonic() - started >= self.short_watch:
                self._watch_worked()  # it served until its history ran out
            raise _Relist from exc
        except errors.TransportError as exc:
            if self._stop.is_set():
                return 0.0
            self._log.info("watch stream broken; re-opening", error=str(exc), events=events)
            if time.monotonic() - started >= self.short_watch:
                # It served until the connection broke (e.g. the server was killed): a quiet
                # resource has no events, and the watch worked all the same.
                self._watch_worked()
            elif events == 0:
                # Broken as soon as it opened (the server is going away): a connection problem.
                return self.connect_backoff.next()
            return 0.0
        except errors.TooManyRequests as exc:
            return self._delay_for(exc)
        except errors.ApiError as exc:
            self._log.warning("watch error; relisting", error=repr(exc))
            raise _Relist from exc
        finally:
            with self._lock:
                self._stream = None
            stream.close()
        if self._stop.is_set():
            return 0.0
        if events == 0 and time.monotonic() - started < self.short_watch:
            # A watch that ends at once with nothing in it hints at a server-side problem;
            # back off rather than hammering (client-go's "very short watch").
            return self.backoff.next()
        if events == 0:
            self._watch_worked()
        return 0.0

    def _handle(self, event: JSON) -> None:
        kind = event.get("type")
        obj = event.get("object") or {}
        if self.transform is not None and kind != "BOOKMARK":
            obj = self.transform(obj)
        if kind == "ADDED":
            self.store.add(obj)
        elif kind == "MODIFIED":
            self.store.update(obj)
        elif kind == "DELETED":
            self.store.delete(obj)
        elif kind != "BOOKMARK":
            self._log.warning("unexpected watch event type", type=kind)
            return
        self._set_rv((obj.get("metadata") or {}).get("resourceVersion"))
