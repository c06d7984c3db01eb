"""Request counts from a real kube-apiserver's own ``/metrics`` (``apiserver_request_total``).

The emulator counts every request per User-Agent (``RequestStats``). A real kube-apiserver counts
them too, in the ``apiserver_request_total`` counter (upstream
``staging/src/k8s.io/apiserver/pkg/endpoints/metrics/metrics.go``), labelled by ``verb``,
``group``, ``version``, ``resource``, ``subresource``, ``scope``, ``component`` and ``code`` -- but
not by client: it has no User-Agent label. ``ApiserverRequestCounts`` reads that counter and
answers ``count``/``snapshot``/``reset`` with ``RequestStats``'s filters, so a test or a benchmark
asks both back ends the same question. On a real server:

* ``user_agent`` narrows nothing (documented, not refused: the caller keeps other clients quiet
  while it counts, or filters by resource). kube-apiserver's own loopback client also writes: it
  renews its identity Lease (``leases``) and retries the ``kubernetes`` Service's Endpoints
  (``endpoints``) every 10 s; :data:`SERVER_OWN_RESOURCES` names them so callers can leave them out;
* the metric's verbs are mapped back to request verbs (``POST`` -> ``create``, ``PUT`` ->
  ``update``, ``PATCH`` and ``APPLY`` -> ``patch``, ``LIST`` -> ``list``, ...);
* ``reset()`` takes a baseline and later answers count from it (a counter never goes down).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any, Protocol

JSON = dict[str, Any]

METRIC = "apiserver_request_total"
#: What kube-apiserver writes by itself, with no client at all (its identity Lease in kube-system
#: and the default/kubernetes Endpoints, which it re-tries every 10 s).
SERVER_OWN_RESOURCES = frozenset({"leases", "endpoints", "endpointslices"})
#: request verbs that change something (as ``RequestStats`` names them)
WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})

# upstream metrics.CleanVerb: the metric's verb for each request verb
_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "APPLY": "patch", "DELETE": "delete",
          "DELETECOLLECTION": "deletecollection", "GET": "get", "LIST": "list", "WATCH": "watch",
          "WATCHLIST": "watch", "CONNECT": "connect"}
_LINE = re.compile(r'^apiserver_request_total\{(?P<labels>[^}]*)\}\s+(?P<value>\S+)', re.MULTILINE)
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
#: (verb, group, resource, subresource, code) -- the fields RequestStats filters on, less the
#: User-Agent, the object name and the namespace, which this metric does not carry.
Key = tuple[str, str, str, str, int]
_FIELDS = ("verb", "group", "resource", "subresource", "code")


class TextSource(Protocol):
    def request(self, method: str, path: str) -> Any: ...


def parse_request_counts(text: str) -> Counter[Key]:
    """``apiserver_request_total`` samples of a Prometheus text exposition, by :data:`Key`.

    Only resource requests count (``component="apiserver"`` with a resource): ``/readyz``,
    ``/metrics`` and the like are not API calls of a client.
    """
    counts: Counter[Key] = Counter()
    for match in _LINE.finditer(text):
        labels = dict(_LABEL.findall(match.group("labels")))
        resource = labels.get("resource", "")
        if not resource:
            continue
        raw_verb = labels.get("verb", "")
        key = (_VERBS.get(raw_verb, raw_verb.lower()), labels.get("group", ""), resource,
               labels.get("subresource", ""), int(labels.get("code") or 0))
        counts[key] += int(float(match.group("value")))
    return counts


class ApiserverRequestCounts:
    """``RequestStats``-shaped counts read from a kube-apiserver's ``/metrics`` (see module doc)."""

    def __init__(self, http: TextSource) -> None:
        self._http = http
        self._baseline: Counter[Key] = Counter()

    def _current(self) -> Counter[Key]:
        body = self._http.request("GET", "/metrics")
        if not isinstance(body, str):
            raise ValueError(f"/metrics did not answer a Prometheus text exposition: {type(body).__name__}")
        counts = parse_request_counts(body)
        counts.subtract(self._baseline)
        return +counts  # drop zero (and, after a server restart, negative) entries

    def count(self, *, user_agent: str | None = None, verb: str | None = None, group: str | None = None,
              resource: str | None = None, subresource: str | None = None, code: int | None = None,
              exclude_resources: frozenset[str] = frozenset()) -> int:
        """Matching requests since the last ``reset()``; ``None`` matches anything, ``user_agent``
        is ignored (the metric has no client label); ``exclude_resources`` leaves out, e.g.,
        :data:`SERVER_OWN_RESOURCES`."""
        del user_agent
        total = 0
        for (key_verb, *rest), n in self._current().items():
            if rest[1] in exclude_resources:
                continue
            if verb not in (None, key_verb):
                continue
            if any(w is not None and w != k for w, k in zip((group, resource, subresource, code), rest, strict=True)):
                continue
            total += n
        return total

    def snapshot(self) -> list[JSON]:
        """Rows ``{verb, group, resource, subresource, code, count}`` since the last ``reset()``."""
        return [{**dict(zip(_FIELDS, key, strict=True)), "count": n} for key, n in sorted(self._current().items())]

    def writes(self, *, exclude_resources: frozenset[str] = SERVER_OWN_RESOURCES) -> int:
        """Write requests since the last ``reset()``, kube-apiserver's own left out by default."""
        return sum(self.count(verb=verb, exclude_resources=exclude_resources) for verb in WRITE_VERBS)

    def reset(self) -> None:
        self._baseline = Counter()
        self._baseline = self._current()
