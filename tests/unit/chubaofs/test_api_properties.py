"""Properties of defaulting and validation over generated specs."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from rook_py.chubaofs.api.defaults import with_defaults
from rook_py.chubaofs.api.validation import validate

JSON = dict[str, Any]

durations = st.one_of(st.sampled_from(["15d", "30s", "1h30m", "0", "2w"]), st.text(max_size=6))
sizes = st.one_of(st.sampled_from(["1Gi", "500Mi", "0", "20G"]), st.text(max_size=6))
storage = st.fixed_dictionaries({"size": sizes}, optional={"storageClassName": st.sampled_from(["", "fast"])})
specs = st.fixed_dictionaries(
    {"cluster": st.fixed_dictionaries({"name": st.sampled_from(["cfs", "", "c-1"])})},
    optional={
        "consul": st.fixed_dictionaries({}, optional={
            "enabled": st.booleans(), "replicas": st.integers(-1, 7), "storage": storage,
            "externalAddress": st.sampled_from(["c:8500", "http://c:8500", ""])}),
        "prometheus": st.fixed_dictionaries({}, optional={
            "replicas": st.integers(1, 4), "retention": durations, "retentionSize": st.text(max_size=5),
            "scrapeInterval": durations, "storage": storage,
            "externalLabels": st.dictionaries(st.sampled_from(["env", "replica", "bad-key"]), st.text(max_size=3))}),
        "alertmanager": st.fixed_dictionaries({}, optional={
            "enabled": st.booleans(), "configSecret": st.sampled_from(["am", "missing"])}),
        "grafana": st.fixed_dictionaries({}, optional={
            "enabled": st.booleans(), "adminSecret": st.sampled_from(["admin", "missing"]),
            "resources": st.fixed_dictionaries({}, optional={
                "requests": st.dictionaries(st.sampled_from(["cpu", "memory"]), sizes),
                "limits": st.dictionaries(st.sampled_from(["cpu", "memory"]), sizes)})}),
        "rules": st.fixed_dictionaries({}, optional={
            "thresholds": st.fixed_dictionaries({}, optional={
                "capacityWarningPercent": st.integers(1, 100), "capacityCriticalPercent": st.integers(1, 100)}),
            "extraRules": st.lists(st.dictionaries(st.sampled_from(["name", "rules"]), st.just([])), max_size=2)}),
    })

SECRETS = {"am": {"data": {"alertmanager.yml": "eA=="}},
           "admin": {"data": {"admin-user": "eA==", "admin-password": "eA=="}}}


@settings(max_examples=100, deadline=None)
@given(specs)
def test_defaulting_is_idempotent_and_keeps_explicit_values(spec: JSON) -> None:
    original = copy.deepcopy(spec)
    once = with_defaults(spec)
    assert spec == original
    assert with_defaults(once) == once
    assert _contains(once, original)


def _contains(defaulted: Any, explicit: Any) -> bool:
    """Every explicit value survives defaulting (objects may gain keys, nothing else changes)."""
    if isinstance(explicit, dict):
        return isinstance(defaulted, dict) and all(
            k in defaulted and _contains(defaulted[k], v) for k, v in explicit.items())
    return bool(defaulted == explicit)


@settings(max_examples=100, deadline=None)
@given(specs)
def test_validation_never_raises_and_reports_fields(spec: JSON) -> None:
    problems = validate(with_defaults(spec), secrets=SECRETS.get)
    assert all(isinstance(p, str) and ": " in p for p in problems)
