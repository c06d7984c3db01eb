"""The table of served resources: built-ins plus whatever established CRDs add.

Lookups happen on every request, so the table is a dict keyed by (group, version, resource),
replaced copy-on-write when CRDs come and go: readers never take a lock.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable

from ..webhookclient import Endpoint, url_endpoint
from .admissionregistration import admissionregistration_resources
from .apps import apps_resources
from .base import JSON, ServedResource, Strategy
from .core import core_resources
from .custom import crd_resource, served_from_crd
from .misc import misc_resources

__all__ = ["Registry", "ServedResource", "Strategy"]

#: discovery order of the built-in groups, as kube-apiserver lists them (roughly)
GROUP_ORDER = ("", "apps", "events.k8s.io", "coordination.k8s.io", "rbac.authorization.k8s.io",
               "networking.k8s.io", "policy", "admissionregistration.k8s.io", "apiextensions.k8s.io")


class Registry:
    def __init__(self, now: Callable[[], str]) -> None:
        self._lock = threading.Lock()
        builtins = [*core_resources(), *apps_resources(), *misc_resources(), *admissionregistration_resources(),
                    crd_resource(now)]
        self._by_gvr: dict[tuple[str, str, str], ServedResource] = {
            (r.group, r.version, r.resource): r for r in builtins}
        self._crd_of: dict[str, list[ServedResource]] = {}
        #: where a webhook clientConfig (url or Service) is called. The admitting engine installs its own, so CRD
        #: conversion webhooks resolve Services exactly as admission webhooks do.
        self.webhook_endpoint: Callable[[JSON], Endpoint] | None = None

    def lookup(self, group: str, version: str, resource: str) -> ServedResource | None:
        return self._by_gvr.get((group, version, resource))

    def by_api_version(self, api_version: str, resource: str) -> ServedResource | None:
        group, _, version = api_version.rpartition("/")
        return self._by_gvr.get((group, version, resource))

    def by_kind(self, api_version: str, kind: str) -> ServedResource | None:
        group, _, version = api_version.rpartition("/")
        for r in self._by_gvr.values():
            if r.group == group and r.version == version and r.kind == kind:
                return r
        return None

    def all(self) -> list[ServedResource]:
        return list(self._by_gvr.values())

    def versions_of(self, group: str, resource: str) -> list[ServedResource]:
        return [r for r in self._by_gvr.values() if r.group == group and r.resource == resource]

    def groups(self) -> dict[str, list[str]]:
        """group -> served versions (preferred first), groups in discovery order."""
        out: dict[str, list[str]] = {}
        for r in self._by_gvr.values():
            versions = out.setdefault(r.group, [])
            if r.version not in versions:
                versions.append(r.version)
        def order(g: str) -> tuple[int, str]:
            return (GROUP_ORDER.index(g), "") if g in GROUP_ORDER else (len(GROUP_ORDER), g)
        return {g: sorted(out[g], key=_version_priority) for g in sorted(out, key=order)}

    def set_crd(self, crd_name: str, crd: JSON) -> list[ServedResource]:
        """Serve (or re-serve, after an update) the resources of an established CRD."""
        # looked up at each conversion, not now: the engine may install its resolver later
        served = served_from_crd(crd, lambda config: self._endpoint(config))
        with self._lock:
            table = dict(self._by_gvr)
            for old in self._crd_of.get(crd_name, []):
                table.pop((old.group, old.version, old.resource), None)
            for r in served:
                table[(r.group, r.version, r.resource)] = r
            self._crd_of[crd_name] = served
            self._by_gvr = table
        return served

    def _endpoint(self, config: JSON) -> Endpoint:
        return (self.webhook_endpoint or url_endpoint)(config)

    def remove_crd(self, crd_name: str) -> None:
        with self._lock:
            table = dict(self._by_gvr)
            for old in self._crd_of.pop(crd_name, []):
                table.pop((old.group, old.version, old.resource), None)
            self._by_gvr = table

    def crd_resources(self, crd_name: str) -> list[ServedResource]:
        return list(self._crd_of.get(crd_name, []))


def _version_priority(version: str) -> tuple[int, int, int]:
    """Kubernetes version ordering: GA > beta > alpha, then by numbers (v2 > v1, v1beta2 > v1beta1);
    after k8s.io/apimachinery/pkg/version/helpers.go CompareKubeAwareVersionStrings."""
    m = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if not m:
        return (3, 0, 0)
    major = int(m.group(1))
    stage = {"alpha": 2, "beta": 1, None: 0}[m.group(2)]
    minor = int(m.group(3) or 0)
    return (stage, -major, -minor)
