"""Request counts by (User-Agent, verb, API group, resource, subresource, object name, namespace,
HTTP code).

Tests use them to assert how a controller talks to the API: e.g. "the operator issued no update
when nothing changed", counted per client identity (``Client(user_agent=...)``), or "every call
the operator made is allowed by its RBAC", which needs the attributes an authorizer sees: the
group (the core group is ``""``), the object name, so ``resourceNames`` rules can be checked, and
the namespace, so a RoleBinding's rules can be held to their namespace.

The name is the one kube-apiserver's RequestInfo carries (upstream
``staging/src/k8s.io/apiserver/pkg/endpoints/request/requestinfo.go``): the path's name segment,
or, for a list or watch of a collection, the name an exact ``metadata.name`` field selector pins
(how a client watches one object; RBAC ``resourceNames`` rules then apply to it). Collections
(create, an unpinned list/watch, deletecollection) have the name ``""``. The namespace is the
path's, as RequestInfo has it (a Namespace object's own requests carry its name), and ``""`` for
cluster-scoped resources and lists or watches across all namespaces.

Invariants: one counter per distinct key, incremented exactly once per answered resource request;
``count`` and ``snapshot`` read a consistent copy, so readers never hold the lock while they filter
(every request records under that lock).
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any
from urllib.parse import parse_qs

from rook_py.framework.kube.selectors import parse_field_selector

#: (user_agent, verb, group, resource, subresource, name, namespace, code). A plain tuple, not a
#: NamedTuple: one is built per request, and a tuple display is the cheapest way to build one.
StatKey = tuple[str, str, str, str, str, str, str, int]
#: snapshot row fields, in key order
_FIELDS: tuple[str, ...] = ("userAgent", "verb", "group", "resource", "subresource", "name", "namespace",
                            "code")
#: the fields summed away unless a snapshot asks for them (unbounded: one per object or namespace)
_DETAIL = slice(5, 7)


def selector_name(raw_query: str) -> str:
    """The object name an exact ``metadata.name`` field selector in ``raw_query`` pins, or ``""``.

    Mirrors requestinfo.go: only a selector that requires ``metadata.name`` to equal one value
    counts (``metadata.name=x`` or ``==x``, possibly AND-ed with other terms), and only when the
    value is a valid path segment name (upstream ``path.IsValidPathSegmentName``); an unparsable
    query or selector names nothing (upstream logs it and leaves the name empty).
    """
    if "fieldSelector" not in raw_query:  # the common case, decided without parsing
        return ""
    values = parse_qs(raw_query).get("fieldSelector")
    if not values:
        return ""
    try:
        name = parse_field_selector(values[0]).requires_exact_match("metadata.name")
    except ValueError:
        return ""
    if not name or name in (".", "..") or "/" in name or "%" in name:
        return ""
    return name


class RequestStats:
    """Thread-safe request counters; ``count`` sums every key that matches the given filters."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[StatKey] = Counter()

    def record(self, user_agent: str, verb: str, resource: str, subresource: str, code: int, *,
               group: str = "", name: str = "", namespace: str = "") -> None:
        """Count one answered request. ``group`` is ``""`` for the core group (``/api/v1``);
        ``name`` is ``""`` for a request on a collection; ``namespace`` is ``""`` for a
        cluster-scoped or all-namespaces request."""
        key = (user_agent, verb, group, resource, subresource, name, namespace, code)
        with self._lock:
            self._counts[key] += 1

    def _items(self) -> list[tuple[StatKey, int]]:
        # Copying is C speed; filtering a copy keeps the lock (and so every request) free while a
        # test or benchmark scans many per-name keys.
        with self._lock:
            return list(self._counts.items())

    def count(self, *, user_agent: str | None = None, verb: str | None = None, group: str | None = None,
              resource: str | None = None, subresource: str | None = None, name: str | None = None,
              namespace: str | None = None, code: int | None = None) -> int:
        """Sum of matching requests; ``None`` matches anything. ``user_agent`` matches as a prefix
        (clients append versions); every other filter matches exactly (``group=""``: the core
        group, ``name=""``: requests on a collection)."""
        wanted = (verb, group, resource, subresource, name, namespace, code)
        return sum(n for key, n in self._items()
                   if (user_agent is None or key[0].startswith(user_agent))
                   and all(w is None or w == k for w, k in zip(wanted, key[1:], strict=True)))

    def snapshot(self, *, by_name: bool = False) -> list[dict[str, Any]]:
        """Rows ``{userAgent, verb, group, resource, subresource, code, count}``, sorted by key.

        Names and namespaces are summed away unless ``by_name`` (then each row also has ``name``
        and ``namespace``): both are unbounded, so such rows would grow with the cluster, the
        reason upstream's ``apiserver_request_total`` has neither label.
        """
        rows: Counter[tuple[str | int, ...]] = Counter()
        for key, n in self._items():
            rows[key if by_name else key[:_DETAIL.start] + key[_DETAIL.stop:]] += n
        fields = _FIELDS if by_name else _FIELDS[:_DETAIL.start] + _FIELDS[_DETAIL.stop:]
        return [{**dict(zip(fields, key, strict=True)), "count": n} for key, n in sorted(rows.items())]

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()
