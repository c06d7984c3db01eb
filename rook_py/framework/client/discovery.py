"""Discovery: map (apiVersion, kind) to the REST resource that serves it.

Each group-version's ``APIResourceList`` (``/api/v1`` for the core group, ``/apis/{group}/{version}``
otherwise) is fetched once and cached. A lookup that misses the cache re-fetches that one
group-version before giving up, because CustomResourceDefinitions are installed while an
operator runs (the same reset-on-miss idea as client-go's ``DeferredDiscoveryRESTMapper``,
k8s.io/client-go/restmapper/discovery.go).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from rook_py.framework.client import errors

JSON = dict[str, Any]

__all__ = ["Discovery", "ResourceInfo", "group_version_path", "split_api_version"]


def split_api_version(api_version: str) -> tuple[str, str]:
    """``"v1"`` -> ``("", "v1")``; ``"apps/v1"`` -> ``("apps", "v1")``."""
    group, sep, version = api_version.rpartition("/")
    if not version or (sep and not group):
        raise ValueError(f"malformed apiVersion {api_version!r}")
    return group, version


def group_version_path(api_version: str) -> str:
    """The URL prefix of a group-version: legacy core group under /api, the rest under /apis."""
    group, version = split_api_version(api_version)
    return f"/api/{version}" if not group else f"/apis/{group}/{version}"


@dataclass(frozen=True, slots=True)
class ResourceInfo:
    """One served resource. ``resource`` is the plural path segment; ``subresources`` are the
    names after the slash in discovery (``status``, ``scale``, ...). ``base_path`` is the
    precomputed group-version prefix, so building a URL on the hot path is string concatenation."""

    group: str
    version: str
    resource: str
    kind: str
    namespaced: bool
    verbs: tuple[str, ...]
    subresources: tuple[str, ...]
    api_version: str
    base_path: str = field(repr=False, compare=False, default="")

    def path(self, namespace: str | None = None, name: str | None = None,
             subresource: str | None = None) -> str:
        """The request path. ``namespace`` is ignored for cluster-scoped resources (as
        controller-runtime's client does); None on a namespaced resource means all namespaces
        (valid for list/watch/deletecollection only, which the server enforces)."""
        parts = [self.base_path]
        if self.namespaced and namespace:
            parts.append("/namespaces/")
            parts.append(quote(namespace, safe=""))
        parts.append("/")
        parts.append(self.resource)
        if name is not None:
            if not name:
                raise ValueError(f"empty name for {self.kind}")
            parts.append("/")
            parts.append(quote(name, safe=":@"))
            if subresource:
                parts.append("/")
                parts.append(subresource)
        return "".join(parts)


def parse_resource_list(api_version: str, body: JSON) -> dict[str, ResourceInfo]:
    """Turn an ``APIResourceList`` into ``{kind: ResourceInfo}`` (subresources folded in)."""
    group, version = split_api_version(api_version)
    base = group_version_path(api_version)
    subs: dict[str, list[str]] = {}
    mains: list[JSON] = []
    for entry in body.get("resources") or []:
        name = entry.get("name", "")
        parent, slash, sub = name.partition("/")
        if slash:
            subs.setdefault(parent, []).append(sub)
        else:
            mains.append(entry)
    by_kind: dict[str, ResourceInfo] = {}
    for entry in mains:
        name = entry["name"]
        kind = entry["kind"]
        by_kind[kind] = ResourceInfo(
            group=group, version=version, resource=name, kind=kind,
            namespaced=bool(entry.get("namespaced")), verbs=tuple(entry.get("verbs") or ()),
            subresources=tuple(subs.get(name, ())), api_version=api_version, base_path=base)
    return by_kind


class Discovery:
    """Thread-safe per-group-version cache of served resources.

    ``fetch(path)`` returns the decoded JSON body or raises ``errors.ApiError``; a 404 on the
    group-version means "not served (yet)". Concurrent misses on the same group-version share
    one fetch.
    """

    def __init__(self, fetch: Callable[[str], JSON]) -> None:
        self._fetch = fetch
        self._lock = threading.Lock()
        self._cache: dict[str, dict[str, ResourceInfo]] = {}
        self._gv_locks: dict[str, threading.Lock] = {}

    def _gv_lock(self, api_version: str) -> threading.Lock:
        with self._lock:
            lock = self._gv_locks.get(api_version)
            if lock is None:
                lock = self._gv_locks[api_version] = threading.Lock()
            return lock

    def _refresh(self, api_version: str, seen: dict[str, ResourceInfo] | None) -> dict[str, ResourceInfo]:
        with self._gv_lock(api_version):
            current = self._cache.get(api_version)
            if current is not None and current is not seen:
                return current  # another thread refreshed while we waited
            try:
                body = self._fetch(group_version_path(api_version))
            except errors.NotFound:
                body = {}
            resources = parse_resource_list(api_version, body)
            with self._lock:
                self._cache[api_version] = resources
            return resources

    def resource_for(self, api_version: str, kind: str) -> ResourceInfo:
        """The resource serving ``kind`` in ``api_version``; raises ``errors.NotFound`` when the
        server does not serve it even after a fresh discovery read."""
        resources = self._cache.get(api_version)
        if resources is not None:
            info = resources.get(kind)
            if info is not None:
                return info
        resources = self._refresh(api_version, resources)
        info = resources.get(kind)
        if info is None:
            raise errors.NotFound(
                f'no matches for kind "{kind}" in version "{api_version}": the server does not '
                "serve it (is the CRD installed?)",
                details={"kind": kind, "group": split_api_version(api_version)[0]})
        return info

    def resources(self, api_version: str) -> list[ResourceInfo]:
        """Every resource of a group-version (cached)."""
        cached = self._cache.get(api_version)
        if cached is None:
            cached = self._refresh(api_version, None)
        return list(cached.values())

    def invalidate(self, api_version: str | None = None) -> None:
        """Forget one group-version, or everything."""
        with self._lock:
            if api_version is None:
                self._cache.clear()
            else:
                self._cache.pop(api_version, None)
