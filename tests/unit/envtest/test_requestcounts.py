"""Request counts read from kube-apiserver's apiserver_request_total (requestcounts.py)."""

from __future__ import annotations

from typing import Any

import pytest

from rook_py.envtest.requestcounts import SERVER_OWN_RESOURCES, ApiserverRequestCounts, parse_request_counts

# Lines as kube-apiserver v1.28 writes them (labels in its order; one help/type header).
EXPOSITION = """\
# HELP apiserver_request_total [STABLE] Counter of apiserver requests broken out for each verb, ...
# TYPE apiserver_request_total counter
apiserver_request_total{code="200",component="",dry_run="",group="",resource="",scope="",subresource="/readyz",verb="GET",version=""} 2
apiserver_request_total{code="201",component="apiserver",dry_run="",group="",resource="configmaps",scope="resource",subresource="",verb="POST",version="v1"} 3
apiserver_request_total{code="200",component="apiserver",dry_run="",group="apps",resource="deployments",scope="resource",subresource="status",verb="APPLY",version="v1"} 1
apiserver_request_total{code="200",component="apiserver",dry_run="",group="apps",resource="deployments",scope="resource",subresource="",verb="PATCH",version="v1"} 4
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="configmaps",scope="namespace",subresource="",verb="LIST",version="v1"} 7
apiserver_request_total{code="200",component="apiserver",dry_run="",group="coordination.k8s.io",resource="leases",scope="resource",subresource="",verb="PUT",version="v1"} 9
apiserver_request_total{code="422",component="apiserver",dry_run="",group="",resource="endpoints",scope="resource",subresource="",verb="POST",version="v1"} 5
apiserver_request_duration_seconds_bucket{verb="POST",le="0.1"} 99
"""


class Text:
    """Serves /metrics texts in turn, as successive scrapes of one server."""

    def __init__(self, *texts: str) -> None:
        self.texts = list(texts)

    def request(self, method: str, path: str) -> Any:
        assert (method, path) == ("GET", "/metrics")
        return self.texts.pop(0) if len(self.texts) > 1 else self.texts[0]


def test_parse_maps_metric_verbs_to_request_verbs_and_skips_non_resource_paths() -> None:
    counts = parse_request_counts(EXPOSITION)
    assert counts[("create", "", "configmaps", "", 201)] == 3
    assert counts[("patch", "apps", "deployments", "status", 200)] == 1   # APPLY is a patch
    assert counts[("patch", "apps", "deployments", "", 200)] == 4
    assert counts[("list", "", "configmaps", "", 200)] == 7
    assert not any(key[2] == "" for key in counts)                      # /readyz is no API call
    assert sum(counts.values()) == 3 + 1 + 4 + 7 + 9 + 5


def test_counts_filter_like_request_stats_and_reset_takes_a_baseline() -> None:
    later = EXPOSITION.replace('verb="POST",version="v1"} 3', 'verb="POST",version="v1"} 5')
    counts = ApiserverRequestCounts(Text(*[EXPOSITION] * 4, later))   # 3 counts and the reset, then later
    assert counts.count(verb="patch", group="apps") == 5
    assert counts.count(resource="deployments", subresource="status") == 1
    assert counts.count(user_agent="anyone", verb="list") == 7        # no client label: ignored
    counts.reset()
    assert counts.count(verb="create", resource="configmaps") == 2     # 5 now, 3 at the reset
    assert counts.snapshot() == [{"verb": "create", "group": "", "resource": "configmaps", "subresource": "",
                                  "code": 201, "count": 2}]


def test_writes_leave_the_servers_own_out() -> None:
    counts = ApiserverRequestCounts(Text(EXPOSITION))
    assert {"leases", "endpoints"} <= SERVER_OWN_RESOURCES
    assert counts.writes() == 3 + 1 + 4
    assert counts.writes(exclude_resources=frozenset()) == 3 + 1 + 4 + 9 + 5


def test_a_non_text_answer_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="Prometheus text"):
        ApiserverRequestCounts(Text({"kind": "Status"})).count()  # type: ignore[arg-type]
