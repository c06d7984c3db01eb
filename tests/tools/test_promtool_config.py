"""`promtool check config` on generated prometheus.yml variants, `amtool check-config` on alertmanager.yml."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from rook_py.chubaofs.monitor.config import (
    render_alert_rules,
    render_default_alertmanager_config,
    render_prometheus_config,
)
from tests.tools.promtools import (
    AMTOOL,
    PROMTOOL,
    assert_tool_ok,
    checkable_prometheus_config,
    requires_amtool,
    requires_promtool,
    run_tool,
)

VARIANTS: dict[str, dict[str, Any]] = {
    "minimal": {},
    "alertmanagers": {"alertmanagers": ["mon-alertmanager-0.mon-alertmanager:9093", "mon-alertmanager-1.mon-alertmanager:9093"]},
    "operator-and-intervals": {
        "operator_targets": ["rook-chubaofs-operator.rook-chubaofs:8080"],
        "scrape_interval": "15s",
        "evaluation_interval": "1m",
    },
    "extra-scrape-configs": {
        "extra_scrape_configs": [
            {"job_name": "node-exporter", "static_configs": [{"targets": ["10.0.0.1:9100", "10.0.0.2:9100"]}]},
            {
                "job_name": "blackbox",
                "metrics_path": "/probe",
                "params": {"module": ["http_2xx"]},
                "static_configs": [{"targets": ["http://mon-grafana:3000/api/health"]}],
                "relabel_configs": [
                    {"source_labels": ["__address__"], "target_label": "__param_target"},
                    {"target_label": "__address__", "replacement": "blackbox:9115"},
                ],
            },
        ]
    },
    "remote-write": {
        "remote_write": [
            {"url": "http://thanos-receive.monitoring:19291/api/v1/receive", "queue_config": {"max_samples_per_send": 2000}},
            {"url": "https://mimir.example/api/v1/push", "write_relabel_configs": [{"source_labels": ["__name__"], "regex": "cfs_.*", "action": "keep"}]},
        ]
    },
    "ha-replica-label": {
        "replica_label": True,
        "alertmanagers": ["mon-alertmanager-0.mon-alertmanager:9093"],
        "external_labels": {"region": "eu-1", "tenant": "storage"},
    },
}


def _check_config(tmp_path: Path, text: str, rule_text: str | None = None) -> str:
    assert PROMTOOL is not None
    checkable, note = checkable_prometheus_config(text)
    if rule_text is not None:
        rules_dir = tmp_path / "rules"
        rules_dir.mkdir()
        (rules_dir / "chubaofs.yml").write_text(rule_text)
        config = yaml.safe_load(checkable)
        config["rule_files"] = [str(rules_dir / "*.yml")]
        checkable = yaml.safe_dump(config, sort_keys=False)
    path = tmp_path / "prometheus.yml"
    path.write_text(checkable)
    result = run_tool([PROMTOOL, "check", "config", str(path)])
    assert_tool_ok(result)
    return note or ""


@requires_promtool
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_promtool_accepts_generated_config(tmp_path: Path, variant: str) -> None:
    text = render_prometheus_config(cluster_name="prod", consul_server="mon-consul.rook-chubaofs:8500", **VARIANTS[variant])
    _check_config(tmp_path, text)


@requires_promtool
def test_promtool_checks_config_together_with_its_rule_file(tmp_path: Path) -> None:
    text = render_prometheus_config(cluster_name="prod", consul_server="consul:8500", alertmanagers=["am:9093"])
    result_note = _check_config(tmp_path, text, render_alert_rules(cluster_name="prod"))
    assert result_note == "" or "http_sd" in result_note


@requires_promtool
def test_promtool_rejects_a_broken_extra_scrape_config(tmp_path: Path) -> None:
    """The check above can fail: a bad regex passed through extra_scrape_configs is caught."""
    assert PROMTOOL is not None
    text = render_prometheus_config(
        cluster_name="prod",
        consul_server="consul:8500",
        extra_scrape_configs=[{"job_name": "bad", "relabel_configs": [{"source_labels": ["a"], "regex": "(unclosed"}],
                               "static_configs": [{"targets": ["x:1"]}]}],
    )
    checkable, _ = checkable_prometheus_config(text)
    path = tmp_path / "prometheus.yml"
    path.write_text(checkable)
    result = run_tool([PROMTOOL, "check", "config", str(path)])
    assert result.returncode != 0
    assert "unclosed" in (result.stdout + result.stderr) or "missing closing" in (result.stdout + result.stderr)


@requires_amtool
@pytest.mark.parametrize("webhooks", [(), ("http://127.0.0.1:5001/alerts", "https://hooks.example/chubaofs")])
def test_amtool_accepts_default_alertmanager_config(tmp_path: Path, webhooks: tuple[str, ...]) -> None:
    assert AMTOOL is not None
    path = tmp_path / "alertmanager.yml"
    path.write_text(render_default_alertmanager_config(cluster_name="prod", webhook_urls=webhooks))
    result = run_tool([AMTOOL, "check-config", str(path)])
    assert_tool_ok(result)
    assert "SUCCESS" in result.stdout
    assert "2 inhibit rules" in result.stdout


@requires_promtool
def test_promtool_check_rules_default_and_custom_thresholds(tmp_path: Path) -> None:
    assert PROMTOOL is not None
    extra = [{"name": "site.rules", "rules": [{"record": "cluster:cfs_master_vol_used_GB:sum",
                                                "expr": 'sum by (cluster) (max by (cluster, volName) (cfs_master_vol_used_GB{cluster="prod"}))'}]}]
    variants: dict[str, dict[str, Any]] = {
        "default": {},
        "custom": {"thresholds": {"capacityWarningPercent": 70, "capacityCriticalPercent": 85, "volumeUsagePercent": 95,
                                   "predictFullDays": 14, "targetDownMinutes": 10}},
        "extra": {"extra_rules": extra},
    }
    for name, kwargs in variants.items():
        path = tmp_path / f"{name}.yml"
        path.write_text(render_alert_rules(cluster_name="prod", **kwargs))
        result = run_tool([PROMTOOL, "check", "rules", str(path)])
        assert_tool_ok(result)
        assert "SUCCESS" in result.stdout
