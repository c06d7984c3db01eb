"""The dynamic REST client: verbs on plain-dict objects, resolved through discovery.

Transport: the urllib3 ``PoolManager`` that the official ``kubernetes`` package builds from a
``Configuration`` (TLS verification, CA bundle, client certificates, proxy, SNI), so every
authentication mode the official loader understands works here. Everything above the socket is
ours: URLs are built by string concatenation from precomputed prefixes, request bodies are
compact JSON, and response bytes go straight into ``json.loads`` -- no generated model classes,
no intermediate copies. This is the hot path of every informer and every reconcile.

Semantics follow client-go's ``rest`` package (k8s.io/client-go/rest/request.go):
- non-2xx answers become typed ``errors.ApiError`` subclasses built from the ``metav1.Status``
  body (``errors.from_status``); no answer at all becomes ``errors.TransportError``;
- a 429, or a 5xx carrying ``Retry-After``, is retried after the advertised delay, at most
  ``max_retries`` times (client-go's default is 10; k8s.io/client-go/rest/with_retry.go) --
  the server did not act on such a request, so the retry is safe for every verb. The delay is
  capped at ``max_retry_after`` so a hostile or buggy header cannot park a worker for minutes;
- ``with client.deadline(at):`` bounds every request the calling thread makes inside it (their
  connect and read timeouts, Retry-After waits) by the monotonic instant ``at``, as a Go
  ``context.WithDeadline`` bounds a client-go request; one past it fails with ``TransportError``
  without being sent. Leader election renews under its renew deadline this way;
- ``with client.without_retries():`` makes the calling thread's requests raise a 429/5xx at
  once instead of sleeping its Retry-After, for a caller with backoffs of its own (the
  reflector): a starting kube-apiserver answers every path it has not installed yet with 503
  and ``Retry-After: 5`` (apiserver/pkg/util/notfoundhandler) although it installs them within
  about a second, and sleeping the full 5 s left informers of custom resources blind that long;
- an optional client-side token bucket (``qps``/``burst``), off by default as in
  controller-runtime (which disables client-go's limiter and relies on server-side APF).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any, Literal
from urllib.parse import urlencode, urlsplit

import urllib3
from kubernetes import client as k8s_client

import rook_py
from rook_py.framework import metrics
from rook_py.framework.client import errors
from rook_py.framework.client.config import RestConfig
from rook_py.framework.client.discovery import Discovery, ResourceInfo
from rook_py.framework.client.ratelimit import TokenBucket
from rook_py.framework.client.watch import WatchStream

JSON = dict[str, Any]
PatchType = Literal["merge", "json", "strategic"]
JSONPatch = list[JSON]  # module-level alias: inside Client, ``list`` is the verb

__all__ = ["DEFAULT_WATCH_TIMEOUT", "PATCH_CONTENT_TYPES", "Client"]

APPLY_CONTENT_TYPE = "application/apply-patch+yaml"
PATCH_CONTENT_TYPES: dict[str, str] = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
}

# When the caller does not choose a watch timeout we ask the server to end the stream after
# five minutes (client-go's reflector picks 5-10 min). Our read timeout then sits above it, so
# a silent healthy watch ends with a clean EOF, and only a dead one raises TransportError.
DEFAULT_WATCH_TIMEOUT = 300
_WATCH_READ_GRACE = 30.0
_MIN_POOL_SIZE = 16
_JSON_CT = "application/json"
# Methods that never change state on the API server; every other one passes the write guard.
_SAFE_METHODS = frozenset(("GET", "HEAD", "OPTIONS"))


def _dumps(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def _retry_after_seconds(resp: Any) -> float | None:
    """Integer seconds only, like client-go's ``retryAfterSeconds`` (HTTP-dates are ignored)."""
    value = resp.headers.get("Retry-After")
    if not value:
        return None
    try:
        seconds = int(value.strip())
    except ValueError:
        return None
    return float(seconds) if seconds >= 0 else None


def _selector_query(label_selector: str | None, field_selector: str | None) -> dict[str, Any]:
    """The ``labelSelector``/``fieldSelector`` query parameters of a list, watch or deletecollection.

    An empty selector matches everything, so it is left out rather than sent as an empty parameter.
    """
    query: dict[str, Any] = {}
    if label_selector:
        query["labelSelector"] = label_selector
    if field_selector:
        query["fieldSelector"] = field_selector
    return query


class Client:
    """Thread-safe dynamic client; one per process identity, shared by all workers.

    ``write_guard``, when set, is called as ``write_guard(method, path)`` right before each
    attempt of a mutating request (anything but GET/HEAD/OPTIONS, including retries) goes on the
    wire; it raises to refuse the request, and that exception reaches the caller unchanged. The
    Manager installs its leader-election write fence here (see ``leaderelection.WriteFence``).
    """

    #: see the class docstring; a class-level default keeps an unguarded client at one attribute load
    write_guard: Callable[[str, str], None] | None = None

    def __init__(self, config: RestConfig, *, qps: float | None = None, burst: int = 10,
                 timeout: float = 30.0, user_agent: str | None = None, max_retries: int = 10,
                 max_retry_after: float = 10.0, pool_maxsize: int | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be > 0")
        own = config.copy()
        cfg = own.configuration
        # Enough keep-alive connections for every concurrent worker and informer watch,
        # otherwise urllib3 discards connections beyond maxsize and handshakes again.
        cfg.connection_pool_maxsize = max(pool_maxsize or 0, cfg.connection_pool_maxsize or 0,
                                          _MIN_POOL_SIZE)
        self.config = own
        self._api_client = k8s_client.ApiClient(cfg)
        self._pool = self._api_client.rest_client.pool_manager
        self._cfg = cfg
        self._host = own.host
        self._host_label = urlsplit(self._host).netloc or self._host
        self.timeout = float(timeout)
        self.max_retries = max(0, max_retries)
        self.max_retry_after = max_retry_after
        self._sleep = sleep
        self.user_agent = user_agent or f"rook-py/{rook_py.__version__} (python)"
        self._limiter = TokenBucket(qps, burst) if qps is not None and qps > 0 else None
        self._base_headers = {"Accept": _JSON_CT, "User-Agent": self.user_agent}
        self.token_cache_seconds = 1.0
        self._auth: tuple[float, str | None] | None = None
        self._auth_lock = threading.Lock()
        self._request_counters: dict[tuple[str, str], Any] = {}
        self._latency: dict[str, Any] = {}
        self.discovery = Discovery(self._discovery_get)
        self._deadlines = threading.local()

    # -- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        """Drop pooled connections (the official ApiClient's pool manager)."""
        self._api_client.close()  # type: ignore[no-untyped-call]

    def __enter__(self) -> Client:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- transport -------------------------------------------------------------------------

    @contextlib.contextmanager
    def deadline(self, at: float) -> Iterator[None]:
        """Bound the calling thread's requests by ``at`` (``time.monotonic()``) while inside;
        nested deadlines keep the earliest. See the module docstring."""
        previous: float | None = getattr(self._deadlines, "at", None)
        self._deadlines.at = at if previous is None else min(previous, at)
        try:
            yield
        finally:
            self._deadlines.at = previous

    @contextlib.contextmanager
    def without_retries(self) -> Iterator[None]:
        """The calling thread's requests are not retried on Retry-After while inside (see the
        module docstring); the error, with its ``retry_after``, reaches the caller."""
        previous: bool = getattr(self._deadlines, "no_retry", False)
        self._deadlines.no_retry = True
        try:
            yield
        finally:
            self._deadlines.no_retry = previous

    def _remaining(self, method: str, url: str) -> float | None:
        at: float | None = getattr(self._deadlines, "at", None)
        if at is None:
            return None
        remaining = at - time.monotonic()
        if remaining <= 0:
            self._count("<error>", method)
            raise errors.TransportError(f"{method} {url}: deadline exceeded before sending")
        return remaining

    def _authorization(self, *, force: bool = False) -> str | None:
        """The Authorization header value, refreshed at most every ``token_cache_seconds``.

        For exec/OIDC/in-cluster credentials the official loader installs
        ``refresh_api_key_hook``, which ``get_api_key_with_prefix`` runs to renew an expiring
        token. The hook re-applies the whole kubeconfig to the Configuration each time (~0.3 ms,
        it re-reads proxy settings from the environment) and is not thread-safe, so it runs under
        a lock and its answer is reused briefly; ``force`` bypasses the reuse after a 401, as
        client-go's exec authenticator refreshes on an Unauthorized answer.
        """
        cached = self._auth
        now = time.monotonic()
        if not force and cached is not None and now - cached[0] < self.token_cache_seconds:
            return cached[1]
        with self._auth_lock:
            cfg = self._cfg
            value: str | None = cfg.get_api_key_with_prefix("BearerToken", alias="authorization")
            if not value and (cfg.username or cfg.password):
                value = cfg.get_basic_auth_token()
            self._auth = (now, value)
            return value

    def _headers(self, content_type: str | None) -> dict[str, str]:
        headers = dict(self._base_headers)
        if content_type:
            headers["Content-Type"] = content_type
        authorization = self._authorization()
        if authorization:
            headers["Authorization"] = authorization
        return headers

    # Metric children are looked up once per label set: ``labels()`` takes a lock and builds a
    # tuple on every call, which is measurable on the informer/reconcile hot path.
    def _count(self, code: str, method: str) -> None:
        child = self._request_counters.get((code, method))
        if child is None:
            child = self._request_counters[(code, method)] = metrics.REST_CLIENT_REQUESTS.labels(
                code, method, self._host_label)
        child.inc()

    def _observe(self, method: str, seconds: float) -> None:
        child = self._latency.get(method)
        if child is None:
            child = self._latency[method] = metrics.REST_CLIENT_LATENCY.labels(method, self._host_label)
        child.observe(seconds)

    def _send(self, method: str, path: str, *, query: dict[str, Any] | None = None,
              body: Any = None, content_type: str | None = None, stream: bool = False,
              read_timeout: float | None = None) -> Any:
        """Send one request (plus Retry-After retries); return the urllib3 response for a 2xx,
        raise the typed error otherwise. With ``stream`` the body is left unread."""
        url = self._host + path
        if query:
            url = url + "?" + urlencode(query)
        payload = None if body is None else _dumps(body)
        read = read_timeout if read_timeout is not None else self.timeout
        timeout = urllib3.Timeout(connect=self.timeout, read=read)
        attempt = 0
        auth_retried = False
        while True:
            if self._limiter is not None:
                self._limiter.accept()
            remaining = self._remaining(method, url)
            if remaining is not None:
                timeout = urllib3.Timeout(connect=min(self.timeout, remaining),
                                          read=min(read, remaining))
            headers = self._headers(content_type if payload is not None else None)
            guard = self.write_guard
            if guard is not None and method not in _SAFE_METHODS:
                # As late as possible: nothing of ours runs between this check and the send.
                guard(method, path)
            started = time.perf_counter()
            try:
                resp = self._pool.request(method, url, body=payload, headers=headers,
                                          timeout=timeout, retries=False, redirect=False,
                                          preload_content=not stream)
            except urllib3.exceptions.HTTPError as exc:
                self._count("<error>", method)
                raise errors.TransportError(f"{method} {url}: {exc}") from exc
            self._observe(method, time.perf_counter() - started)
            status = resp.status
            self._count(str(status), method)
            if status < 400:
                return resp
            err = self._error(resp, stream)
            if status == 401 and not auth_retried and self._cfg.refresh_api_key_hook is not None:
                # Credentials may have expired between refreshes: renew once and resend if the
                # renewal produced a different credential.
                auth_retried = True
                if self._authorization(force=True) != headers.get("Authorization"):
                    continue
            retry_after = _retry_after_seconds(resp)
            if ((status == 429 or status >= 500) and retry_after is not None
                    and attempt < self.max_retries
                    and not getattr(self._deadlines, "no_retry", False)):
                wait = min(retry_after, self.max_retry_after)
                at: float | None = getattr(self._deadlines, "at", None)
                if at is not None and wait >= at - time.monotonic():
                    raise err  # the retry could not be sent before the deadline
                attempt += 1
                self._sleep(wait)
                continue
            raise err

    def _error(self, resp: Any, streamed: bool) -> errors.ApiError:
        try:
            data: bytes = resp.read() if streamed else resp.data
        except urllib3.exceptions.HTTPError:
            data = b""
        finally:
            if streamed:
                resp.release_conn()
        retry_after = _retry_after_seconds(resp)
        status: JSON | None = None
        if data:
            try:
                decoded = json.loads(data)
            except ValueError:
                decoded = None
            if isinstance(decoded, dict) and decoded.get("kind") == "Status":
                status = decoded
        if status is None:
            text = data[:512].decode("utf-8", "replace").strip() if data else ""
            status = {"code": resp.status,
                      "message": text or f"the server responded with the status code {resp.status}"}
        return errors.from_status(status, resp.status, retry_after=retry_after)

    def _json(self, method: str, path: str, *, query: dict[str, Any] | None = None,
              body: Any = None, content_type: str | None = _JSON_CT) -> Any:
        resp = self._send(method, path, query=query, body=body, content_type=content_type)
        data = resp.data
        if not data:
            return None
        try:
            return json.loads(data)
        except ValueError as exc:
            raise errors.TransportError(f"{method} {path}: response is not JSON: {exc}") from exc

    def request_json(self, method: str, path: str, *, query: dict[str, Any] | None = None,
                     body: Any = None, content_type: str | None = _JSON_CT) -> Any:
        """A raw request to ``path`` (e.g. ``/version``) through the same transport, auth,
        limiter, retries and metrics as the typed verbs; returns the decoded body."""
        return self._json(method, path, query=query, body=body, content_type=content_type)

    def _discovery_get(self, path: str) -> JSON:
        body: JSON = self._json("GET", path) or {}
        return body

    # -- discovery -------------------------------------------------------------------------

    def resource_for(self, api_version: str, kind: str) -> ResourceInfo:
        """Discovery lookup, cached per group-version and refreshed on a miss."""
        return self.discovery.resource_for(api_version, kind)

    @staticmethod
    def _require_namespace(info: ResourceInfo, namespace: str | None, verb: str) -> None:
        if info.namespaced and not namespace:
            raise ValueError(f"{verb} {info.kind} ({info.api_version}): a namespace is required "
                             "for a namespaced resource")

    @staticmethod
    def _identity(obj: JSON) -> tuple[str, str, str, str | None]:
        try:
            meta = obj["metadata"]
            return obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace")
        except (KeyError, TypeError) as exc:
            raise ValueError(f"object needs apiVersion, kind and metadata.name: missing {exc}") from exc

    # -- verbs -----------------------------------------------------------------------------

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None, *,
            subresource: str | None = None) -> JSON:
        info = self.resource_for(api_version, kind)
        self._require_namespace(info, namespace, "get")
        obj: JSON = self._json("GET", info.path(namespace, name, subresource))
        return obj

    def list(self, api_version: str, kind: str, namespace: str | None = None, *,
             label_selector: str | None = None, field_selector: str | None = None,
             limit: int | None = None, continue_: str | None = None,
             resource_version: str | None = None) -> JSON:
        """One page of the collection: the List object (``items``, ``metadata.continue``,
        ``metadata.resourceVersion``). ``namespace=None`` lists across all namespaces."""
        info = self.resource_for(api_version, kind)
        query = _selector_query(label_selector, field_selector)
        if limit is not None:
            query["limit"] = limit
        if continue_:
            query["continue"] = continue_
        if resource_version is not None:
            query["resourceVersion"] = resource_version
        result: JSON = self._json("GET", info.path(namespace), query=query or None)
        return result

    def watch(self, api_version: str, kind: str, namespace: str | None = None, *,
              resource_version: str | None = None, timeout_seconds: int | None = None,
              allow_watch_bookmarks: bool = True, label_selector: str | None = None,
              field_selector: str | None = None, read_timeout: float | None = None) -> WatchStream:
        """Open a watch. ``timeout_seconds`` defaults to ``DEFAULT_WATCH_TIMEOUT``; the socket read
        timeout defaults to that plus a grace period, so a stream that goes silent without the
        server closing it raises ``errors.TransportError`` instead of hanging."""
        info = self.resource_for(api_version, kind)
        server_timeout = DEFAULT_WATCH_TIMEOUT if timeout_seconds is None else int(timeout_seconds)
        query: dict[str, Any] = {"watch": "true", "timeoutSeconds": server_timeout}
        if resource_version is not None:
            query["resourceVersion"] = resource_version
        if allow_watch_bookmarks:
            query["allowWatchBookmarks"] = "true"
        query.update(_selector_query(label_selector, field_selector))
        if read_timeout is None:
            read_timeout = server_timeout + _WATCH_READ_GRACE
        path = info.path(namespace)
        resp = self._send("GET", path, query=query, stream=True, read_timeout=read_timeout)
        return WatchStream(resp, description=f"watch {path}")

    def create(self, obj: JSON, *, namespace: str | None = None) -> JSON:
        api_version, kind = obj["apiVersion"], obj["kind"]
        info = self.resource_for(api_version, kind)
        ns = namespace or (obj.get("metadata") or {}).get("namespace")
        self._require_namespace(info, ns, "create")
        created: JSON = self._json("POST", info.path(ns), body=obj)
        return created

    def update(self, obj: JSON) -> JSON:
        """PUT the whole object; the server rejects it with ``Conflict`` if
        ``metadata.resourceVersion`` is not the current one (optimistic concurrency)."""
        return self._put(obj, None)

    def update_status(self, obj: JSON) -> JSON:
        """PUT to the ``status`` subresource: only ``.status`` changes are persisted."""
        return self._put(obj, "status")

    def _put(self, obj: JSON, subresource: str | None) -> JSON:
        api_version, kind, name, namespace = self._identity(obj)
        info = self.resource_for(api_version, kind)
        self._require_namespace(info, namespace, "update")
        updated: JSON = self._json("PUT", info.path(namespace, name, subresource), body=obj)
        return updated

    def apply(self, obj: JSON, *, field_manager: str, force: bool = False,
              subresource: str | None = None) -> JSON:
        """Server-side apply (``application/apply-patch+yaml``, a JSON body) of ``obj`` under
        ``field_manager``; ``force`` takes over fields other managers own instead of a 409.
        Creates the object when it does not exist."""
        api_version, kind, name, namespace = self._identity(obj)
        info = self.resource_for(api_version, kind)
        self._require_namespace(info, namespace, "apply")
        query: dict[str, Any] = {"fieldManager": field_manager}
        if force:
            query["force"] = "true"
        applied: JSON = self._json("PATCH", info.path(namespace, name, subresource), query=query, body=obj,
                                   content_type=APPLY_CONTENT_TYPE)
        return applied

    def patch(self, api_version: str, kind: str, name: str, patch: JSON | JSONPatch, *,
              namespace: str | None = None, patch_type: PatchType = "merge",
              subresource: str | None = None) -> JSON:
        try:
            content_type = PATCH_CONTENT_TYPES[patch_type]
        except KeyError:
            raise ValueError(f"unknown patch type {patch_type!r}; use merge, json or strategic") from None
        info = self.resource_for(api_version, kind)
        self._require_namespace(info, namespace, "patch")
        patched: JSON = self._json("PATCH", info.path(namespace, name, subresource), body=patch,
                                   content_type=content_type)
        return patched

    @staticmethod
    def _delete_options(propagation_policy: str | None, preconditions: JSON | None,
                        grace_period_seconds: int | None) -> JSON | None:
        if propagation_policy is None and preconditions is None and grace_period_seconds is None:
            return None
        options: JSON = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if propagation_policy is not None:
            options["propagationPolicy"] = propagation_policy
        if preconditions is not None:
            options["preconditions"] = preconditions
        if grace_period_seconds is not None:
            options["gracePeriodSeconds"] = grace_period_seconds
        return options

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None, *,
               propagation_policy: str | None = None, preconditions: JSON | None = None,
               grace_period_seconds: int | None = None) -> JSON | None:
        """Delete; returns the object when it still exists (finalizers pending, graceful
        deletion) and None when the server answered with a success ``Status`` (it is gone).
        ``preconditions`` is ``{"uid": ..., "resourceVersion": ...}``; a mismatch is a Conflict."""
        info = self.resource_for(api_version, kind)
        self._require_namespace(info, namespace, "delete")
        body = self._delete_options(propagation_policy, preconditions, grace_period_seconds)
        result = self._json("DELETE", info.path(namespace, name), body=body)
        if not isinstance(result, dict) or result.get("kind") == "Status":
            return None
        return result

    def delete_collection(self, api_version: str, kind: str, namespace: str | None = None, *,
                          label_selector: str | None = None, field_selector: str | None = None,
                          propagation_policy: str | None = None) -> JSON:
        info = self.resource_for(api_version, kind)
        query = _selector_query(label_selector, field_selector)
        body = self._delete_options(propagation_policy, None, None)
        result = self._json("DELETE", info.path(namespace), query=query or None, body=body)
        return result if isinstance(result, dict) else {}
