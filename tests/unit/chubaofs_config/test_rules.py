"""render_alert_rules: every built-in alert present, labelled, annotated, thresholds applied."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from rook_py.chubaofs.monitor.config.rules import (
    BUILTIN_ALERTS,
    DEFAULT_THRESHOLDS,
    RECORDING_GROUP,
    rate_window,
    render_alert_rules,
    resolve_thresholds,
)


def alerts(**kwargs: Any) -> list[dict[str, Any]]:
    kwargs.setdefault("cluster_name", "prod")
    doc = yaml.safe_load(render_alert_rules(**kwargs))
    return [rule for group in doc["groups"] for rule in group["rules"] if "alert" in rule]


def by_name(rules: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [r for r in rules if r["alert"] == name]


def test_contract_defaults() -> None:
    assert DEFAULT_THRESHOLDS == {"capacityWarningPercent": 80, "capacityCriticalPercent": 90,
                                  "volumeUsagePercent": 90, "predictFullDays": 7, "targetDownMinutes": 5}


def test_every_builtin_alert_is_rendered_with_severity_summary_and_description() -> None:
    rules = alerts()
    assert {r["alert"] for r in rules} == set(BUILTIN_ALERTS)
    for rule in rules:
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert rule["annotations"]["summary"].strip(), rule["alert"]
        assert rule["annotations"]["description"].strip(), rule["alert"]


def test_every_expression_selects_the_monitored_cluster() -> None:
    for rule in alerts(cluster_name="blue"):
        assert 'cluster="blue"' in rule["expr"], rule["alert"]
        assert 'cluster="prod"' not in rule["expr"]


def recordings(**kwargs: Any) -> list[dict[str, Any]]:
    kwargs.setdefault("cluster_name", "prod")
    doc = yaml.safe_load(render_alert_rules(**kwargs))
    return [rule for group in doc["groups"] for rule in group["rules"] if "record" in rule]


def test_leader_only_gauges_are_aggregated_with_max() -> None:
    for rule in recordings():
        if "cfs_master_" in rule["expr"]:
            assert re.search(r"(max|group) by \(cluster", rule["expr"]), rule["record"]


def test_alerts_read_only_normalised_series() -> None:
    """Release-specific metric names live in the recording rules, never in an alert."""
    for rule in alerts():
        assert "cfs_" not in rule["expr"], rule["alert"]


def test_recording_rules_come_first_and_select_the_cluster() -> None:
    doc = yaml.safe_load(render_alert_rules(cluster_name="blue"))
    assert doc["groups"][0]["name"] == RECORDING_GROUP
    for rule in recordings(cluster_name="blue"):
        assert rule["record"].startswith("chubaofs:")
        assert 'cluster="blue"' in rule["expr"] and "$SEL" not in rule["expr"] and "$WINDOW" not in rule["expr"]


@pytest.mark.parametrize(("scrape", "window"), [("30s", "120s"), ("1s", "4s"), ("1m", "240s"), ("1m30s", "360s")])
def test_rate_window_is_four_scrape_intervals(scrape: str, window: str) -> None:
    assert rate_window(scrape) == window
    rates = [r["expr"] for r in recordings(scrape_interval=scrape) if "rate(" in r["expr"]]
    assert rates and all(f"[{window}]" in expr for expr in rates)


def test_capacity_alert_has_warning_and_critical_with_default_thresholds() -> None:
    warning, critical = by_name(alerts(), "ChubaoFSClusterCapacityHigh")
    assert warning["labels"]["severity"] == "warning" and critical["labels"]["severity"] == "critical"
    assert "> 80" in warning["expr"] and "<= 90" in warning["expr"]
    assert "> 90" in critical["expr"]


def test_thresholds_override_the_defaults() -> None:
    rules = alerts(thresholds={"capacityWarningPercent": 70, "capacityCriticalPercent": 85.5, "volumeUsagePercent": 95,
                               "predictFullDays": 14, "targetDownMinutes": 10})
    warning, critical = by_name(rules, "ChubaoFSClusterCapacityHigh")
    assert "> 70" in warning["expr"] and "<= 85.5" in warning["expr"] and "> 85.5" in critical["expr"]
    (volume,) = by_name(rules, "ChubaoFSVolumeUsageHigh")
    assert volume["expr"].endswith("> 0.95")
    (predict,) = by_name(rules, "ChubaoFSCapacityPredictedFull")
    assert str(14 * 86400) in predict["expr"] and "14 days" in predict["annotations"]["summary"]
    for name in ("ChubaoFSTargetDown", "ChubaoFSConsulDown", "ChubaoFSAgentDown"):
        (rule,) = by_name(rules, name)
        assert rule["for"] == "10m"


def test_prediction_extrapolates_the_series_aggregated_across_masters() -> None:
    (predict,) = by_name(alerts(), "ChubaoFSCapacityPredictedFull")
    assert predict["expr"].startswith('predict_linear(chubaofs:datanodes_capacity_used:bytes{cluster="prod"}[6h]')


@pytest.mark.parametrize(
    ("thresholds", "message"),
    [
        ({"nope": 1}, "unknown alert threshold"),
        ({"capacityWarningPercent": 0}, "outside"),
        ({"capacityCriticalPercent": 101}, "outside"),
        ({"predictFullDays": 0.5}, "outside"),
        ({"targetDownMinutes": "5"}, "must be a number"),
        ({"volumeUsagePercent": True}, "must be a number"),
        ({"capacityWarningPercent": 90, "capacityCriticalPercent": 90}, "lower than"),
    ],
)
def test_invalid_thresholds_are_refused(thresholds: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        render_alert_rules(cluster_name="prod", thresholds=thresholds)


def test_resolve_thresholds_merges_over_defaults() -> None:
    merged = resolve_thresholds({"volumeUsagePercent": 80})
    assert merged["volumeUsagePercent"] == 80 and merged["capacityWarningPercent"] == 80


def test_extra_rule_groups_are_appended_verbatim() -> None:
    extra = {"name": "team", "interval": "1m", "rules": [{"alert": "Custom", "expr": "vector(1)", "labels": {"severity": "info"}}]}
    doc = yaml.safe_load(render_alert_rules(cluster_name="prod", extra_rules=[extra]))
    assert doc["groups"][-1] == extra
    assert [g["name"] for g in doc["groups"][:-1]] == [RECORDING_GROUP, "chubaofs.cluster", "chubaofs.capacity", "chubaofs.targets", "chubaofs.nodes"]


@pytest.mark.parametrize(
    "extra",
    [[{"name": "chubaofs.cluster", "rules": []}], [{"name": "a", "rules": []}, {"name": "a", "rules": []}],
     [{"rules": []}], [{"name": "a"}], ["not-a-group"]],
)
def test_bad_extra_groups_are_refused(extra: list[Any]) -> None:
    with pytest.raises(ValueError, match="extra_rules"):
        render_alert_rules(cluster_name="prod", extra_rules=extra)


def test_rendering_is_deterministic() -> None:
    kwargs: dict[str, Any] = {"cluster_name": "prod", "thresholds": {"predictFullDays": 3}}
    assert render_alert_rules(**kwargs) == render_alert_rules(**kwargs)


def test_cluster_name_with_quotes_cannot_break_the_promql_string() -> None:
    # Quotes are legal in a cluster label value; the literal must stay one string.
    rule = recordings(cluster_name='we"ird')[0]
    assert 'cluster="we\\"ird"' in rule["expr"]
