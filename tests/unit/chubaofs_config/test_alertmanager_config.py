"""render_default_alertmanager_config: route, inhibition, receivers."""

from __future__ import annotations

import pytest
import yaml

from rook_py.chubaofs.monitor.config.alertmanager import DEFAULT_RECEIVER, render_default_alertmanager_config


def test_default_route_groups_by_alert_and_cluster_into_a_silent_receiver() -> None:
    config = yaml.safe_load(render_default_alertmanager_config(cluster_name="prod"))
    assert config["route"]["receiver"] == DEFAULT_RECEIVER
    assert config["route"]["group_by"] == ["alertname", "cluster"]
    assert config["receivers"] == [{"name": DEFAULT_RECEIVER}]


def test_critical_inhibits_warning_of_the_same_alert_and_cluster() -> None:
    config = yaml.safe_load(render_default_alertmanager_config(cluster_name="prod"))
    first = config["inhibit_rules"][0]
    assert first == {"source_matchers": ['severity="critical"'], "target_matchers": ['severity="warning"'],
                     "equal": ["alertname", "cluster"]}


def test_webhooks_are_added_to_the_default_receiver() -> None:
    config = yaml.safe_load(render_default_alertmanager_config(cluster_name="prod", webhook_urls=["http://127.0.0.1:9/hook"]))
    assert config["receivers"] == [{"name": DEFAULT_RECEIVER, "webhook_configs": [
        {"url": "http://127.0.0.1:9/hook", "send_resolved": True}]}]


def test_webhook_must_be_a_url() -> None:
    with pytest.raises(ValueError, match="webhook"):
        render_default_alertmanager_config(cluster_name="prod", webhook_urls=["127.0.0.1:9"])


def test_deterministic() -> None:
    assert render_default_alertmanager_config(cluster_name="a") == render_default_alertmanager_config(cluster_name="a")
