"""Delivering configuration changes to running Prometheus and Alertmanager pods.

Both serve ``POST /-/reload`` (Prometheus with ``--web.enable-lifecycle``): they re-read their
files and keep the old configuration when the new one is bad. The operator calls it on every
replica once the mounted ConfigMap/Secret changed, so a config-only change never restarts the
pods. Two subtleties:

- The kubelet projects a changed ConfigMap into running pods only on its next sync (up to its
  sync period plus the ConfigMap cache TTL, about a minute by default, see
  kubernetes/kubernetes pkg/kubelet/volumemanager). A reload POSTed right after the update may
  re-read the old file. :class:`ConfigDelivery` therefore keeps POSTing on each pass until
  ``settle_seconds`` have passed since it first delivered this hash, and only then records the
  hash as loaded.
- When a reload cannot be delivered (pod unreachable, timeout, non-2xx) the fallback is the
  config hash as a pod-template annotation: that rolls the pods, and fresh pods read the new
  files at start.

Which hash the running pods have loaded is recorded on the workload's own metadata
(``ANNOTATION_LOADED_CONFIG_HASH``), which rolls nothing. Pending state is kept in memory: an
operator restarted mid-way simply delivers again, which is harmless.
"""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from rook_py.chubaofs.monitor.common import ANNOTATION_CONFIG_HASH, ANNOTATION_LOADED_CONFIG_HASH

JSON = dict[str, Any]
DEFAULT_TIMEOUT = 3.0
# A bit more than the kubelet's default sync period (60 s) plus ConfigMap cache TTL slack.
DEFAULT_SETTLE_SECONDS = 90.0


class Reloader(Protocol):
    def reload(self, base_urls: Sequence[str]) -> list[str]:
        """POST ``<base>/-/reload`` to each URL; returns one human-readable failure per URL that
        did not answer 2xx (empty when all reloaded)."""
        ...


class HttpReloader:
    """Reloads over HTTP with a short timeout so a dead pod cannot stall a reconcile."""

    def __init__(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.timeout = timeout

    def reload(self, base_urls: Sequence[str]) -> list[str]:
        failures = []
        for base in base_urls:
            request = urllib.request.Request(base.rstrip("/") + "/-/reload", data=b"", method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    response.read()
            except urllib.error.HTTPError as err:
                body = err.read(512).decode(errors="replace").strip()
                failures.append(f"{base}: HTTP {err.code}" + (f": {body}" if body else ""))
            except (urllib.error.URLError, OSError, ValueError) as err:
                reason = getattr(err, "reason", err)
                failures.append(f"{base}: {reason}")
        return failures


@dataclass(frozen=True)
class Delivery:
    """What the workload's annotations must say after this pass, and what happened.

    ``loaded_hash`` goes on the workload metadata (``None``: leave it absent); ``template_hash`` on the pod template
    (``None``: no annotation). ``requeue_after`` asks for another pass while settling.
    """

    loaded_hash: str | None
    template_hash: str | None
    reloaded: bool = False
    fell_back: bool = False
    failures: list[str] = field(default_factory=list)
    requeue_after: float | None = None


@dataclass
class _Pending:
    config_hash: str
    since: float


class ConfigDelivery:
    """Decides, per workload, between nothing, a hot reload, and the rolling fallback."""

    def __init__(self, reloader: Reloader, *, settle_seconds: float = DEFAULT_SETTLE_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._reloader = reloader
        self._settle = settle_seconds
        self._clock = clock
        self._pending: dict[str, _Pending] = {}
        self._lock = threading.Lock()

    def forget(self, key_prefix: str) -> None:
        """Drop pending state of a deleted resource (keys start with its namespace/name)."""
        with self._lock:
            for key in [k for k in self._pending if k.startswith(key_prefix)]:
                del self._pending[key]

    def deliver(self, key: str, live: JSON | None, new_hash: str, urls: Sequence[str]) -> Delivery:
        """``live`` is the current workload (``None`` before it exists); ``urls`` its pods."""
        if live is None:
            # New pods read the current files at start: nothing to deliver.
            self._drop(key)
            return Delivery(new_hash, None)
        meta_annotations = live.get("metadata", {}).get("annotations") or {}
        template_annotations = (live.get("spec", {}).get("template", {}).get("metadata", {})
                                .get("annotations") or {})
        loaded = meta_annotations.get(ANNOTATION_LOADED_CONFIG_HASH)
        template = template_annotations.get(ANNOTATION_CONFIG_HASH)
        if loaded == new_hash or (loaded is None and template == new_hash):
            self._drop(key)
            return Delivery(new_hash, template)
        failures = self._reloader.reload(urls)
        if failures:
            self._drop(key)
            return Delivery(new_hash, new_hash, fell_back=True, failures=failures)
        now = self._clock()
        with self._lock:
            pending = self._pending.get(key)
            if pending is None or pending.config_hash != new_hash:
                pending = self._pending[key] = _Pending(new_hash, now)
            waited = now - pending.since
            if waited >= self._settle:
                del self._pending[key]
                return Delivery(new_hash, template, reloaded=True)
        return Delivery(loaded, template, reloaded=True, requeue_after=self._settle - waited)

    def _drop(self, key: str) -> None:
        with self._lock:
            self._pending.pop(key, None)
