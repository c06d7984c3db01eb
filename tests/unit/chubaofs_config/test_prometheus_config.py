"""render_prometheus_config: structure, relabeling semantics, validation, determinism."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from rook_py.chubaofs.monitor.config.prometheus import (
    JOB_AGENT,
    JOB_CHUBAOFS,
    JOB_CONSUL,
    JOB_OPERATOR,
    render_prometheus_config,
)


def render(**kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("cluster_name", "prod")
    kwargs.setdefault("consul_server", "mon-consul.ns:8500")
    config: dict[str, Any] = yaml.safe_load(render_prometheus_config(**kwargs))
    return config


def job(config: dict[str, Any], name: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [j for j in config["scrape_configs"] if j["job_name"] == name]
    assert len(found) == 1
    return found[0]


def apply_relabel(rules: list[dict[str, Any]], labels: dict[str, str]) -> dict[str, str] | None:
    """A small model of Prometheus relabeling (replace/keep/labeldrop) with anchored regexes."""
    labels = dict(labels)
    for rule in rules:
        value = ";".join(labels.get(s, "") for s in rule.get("source_labels", []))
        regex = re.compile(f"^(?:{rule.get('regex', '(.*)')})$")
        action = rule.get("action", "replace")
        match = regex.match(value)
        if action == "keep":
            if not match:
                return None
        elif action == "replace" and match:
            labels[rule["target_label"]] = match.expand(rule.get("replacement", "$1").replace("$", "\\"))
    return labels


def consul_meta(tags: list[str], health: str = "passing") -> dict[str, str]:
    # Prometheus surrounds the joined tags with the separator (discovery/consul/consul.go).
    return {"__meta_consul_tags": "," + ",".join(tags) + ",", "__meta_consul_health": health,
            "__meta_consul_service_id": "cfs_dataNode_10.0.0.5_17320"}


def test_output_is_deterministic_and_independent_of_input_mutation() -> None:
    extra = [{"job_name": "x", "static_configs": [{"targets": ["a:1"]}]}]
    first = render_prometheus_config(cluster_name="prod", consul_server="c:8500", extra_scrape_configs=extra,
                                     external_labels={"b": "2", "a": "1"})
    extra[0]["job_name"] = "mutated"
    second = render_prometheus_config(cluster_name="prod", consul_server="c:8500",
                                      extra_scrape_configs=[{"job_name": "x", "static_configs": [{"targets": ["a:1"]}]}],
                                      external_labels={"a": "1", "b": "2"})
    assert first == second


def test_global_section_and_defaults() -> None:
    config = render()
    assert config["global"] == {"scrape_interval": "30s", "evaluation_interval": "30s",
                                "external_labels": {"cluster": "prod"}}
    assert config["rule_files"] == ["/etc/prometheus/rules/*.yml"]
    assert "alerting" not in config and "remote_write" not in config
    assert [j["job_name"] for j in config["scrape_configs"]] == [JOB_CHUBAOFS, JOB_AGENT, JOB_CONSUL]


def test_chubaofs_job_discovers_cfs_service_in_consul() -> None:
    chubaofs = job(render(), JOB_CHUBAOFS)
    assert chubaofs["consul_sd_configs"] == [{"server": "mon-consul.ns:8500", "services": ["cfs"]}]
    assert chubaofs["metrics_path"] == "/metrics"


@pytest.mark.parametrize(
    "tags",
    [
        ["app=cfs", "role=dataNode", "cluster=prod"],
        ["cluster=prod", "app=cfs", "role=dataNode"],  # any tag order works
        ["role=dataNode", "extra=1", "cluster=prod", "app=cfs"],
    ],
)
def test_chubaofs_relabeling_lifts_tags_wherever_they_are(tags: list[str]) -> None:
    rules = job(render(), JOB_CHUBAOFS)["relabel_configs"]
    labels = apply_relabel(rules, consul_meta(tags))
    assert labels is not None
    assert (labels["app"], labels["role"], labels["cluster"]) == ("cfs", "dataNode", "prod")
    assert labels["consul_service_id"] == "cfs_dataNode_10.0.0.5_17320"


@pytest.mark.parametrize("tags", [["app=cfs", "role=master", "cluster=staging"], ["app=cfs", "role=master"],
                                  ["app=cfs", "role=master", "cluster=prod-2"], ["cluster=prodx"]])
def test_chubaofs_relabeling_drops_other_clusters(tags: list[str]) -> None:
    assert apply_relabel(job(render(), JOB_CHUBAOFS)["relabel_configs"], consul_meta(tags)) is None


def test_cluster_name_is_matched_literally() -> None:
    rules = job(render(cluster_name="a.b"), JOB_CHUBAOFS)["relabel_configs"]
    assert apply_relabel(rules, consul_meta(["cluster=a.b"])) is not None
    assert apply_relabel(rules, consul_meta(["cluster=aXb"])) is None


def test_agent_job_keeps_only_passing_instances_and_labels_node() -> None:
    agent = job(render(agent_service="my-agent"), JOB_AGENT)
    assert agent["consul_sd_configs"] == [{"server": "mon-consul.ns:8500", "services": ["my-agent"]}]
    assert agent["honor_labels"] is True
    rules = agent["relabel_configs"]
    labels = apply_relabel(rules, consul_meta(["node=worker-1", "cluster=prod"]))
    assert labels is not None and labels["node"] == "worker-1" and labels["cluster"] == "prod"
    assert apply_relabel(rules, consul_meta(["node=worker-1", "cluster=prod"], health="critical")) is None
    assert apply_relabel(rules, consul_meta(["node=worker-1", "cluster=prod"], health="warning")) is None
    assert apply_relabel(rules, consul_meta(["node=worker-1", "cluster=other"])) is None


def test_consul_and_operator_jobs() -> None:
    config = render(operator_targets=["op.ns:8080"])
    consul = job(config, JOB_CONSUL)
    assert consul["metrics_path"] == "/v1/agent/metrics"
    assert consul["params"] == {"format": ["prometheus"]}
    assert consul["static_configs"] == [{"targets": ["mon-consul.ns:8500"], "labels": {"cluster": "prod"}}]
    assert job(config, JOB_OPERATOR)["static_configs"] == [{"targets": ["op.ns:8080"]}]


def test_consul_metrics_job_can_be_left_out() -> None:
    assert JOB_CONSUL not in [j["job_name"] for j in render(consul_metrics=False)["scrape_configs"]]


def test_alerting_targets_alertmanagers() -> None:
    config = render(alertmanagers=["am-0.am:9093", "am-1.am:9093"])
    assert config["alerting"] == {"alertmanagers": [{"api_version": "v2", "static_configs": [
        {"targets": ["am-0.am:9093", "am-1.am:9093"]}]}]}


def test_replica_label_for_ha_pairs() -> None:
    config = render(replica_label=True, alertmanagers=["am:9093"], external_labels={"region": "eu"})
    assert config["global"]["external_labels"] == {"cluster": "prod", "region": "eu", "replica": "${POD_NAME}"}
    # Alertmanager must see identical alerts from both replicas to deduplicate them.
    assert config["alerting"]["alert_relabel_configs"] == [{"regex": "replica", "action": "labeldrop"}]


def test_user_external_labels_can_override_cluster_but_not_replica() -> None:
    assert render(external_labels={"cluster": "eu-prod"})["global"]["external_labels"] == {"cluster": "eu-prod"}
    with pytest.raises(ValueError, match="reserved"):
        render(replica_label=True, external_labels={"replica": "x"})
    with pytest.raises(ValueError, match="label name"):
        render(external_labels={"bad-name": "x"})


def test_extra_scrape_configs_and_remote_write_pass_through() -> None:
    extra = {"job_name": "node", "static_configs": [{"targets": ["n:9100"]}], "scrape_interval": "1m"}
    remote = {"url": "http://thanos:19291/api/v1/receive", "queue_config": {"capacity": 10000}}
    config = render(extra_scrape_configs=[extra], remote_write=[remote])
    assert config["scrape_configs"][-1] == extra
    assert config["remote_write"] == [remote]


@pytest.mark.parametrize("name", [JOB_CHUBAOFS, JOB_AGENT, JOB_CONSUL, JOB_OPERATOR])
def test_extra_scrape_configs_cannot_shadow_builtin_jobs(name: str) -> None:
    with pytest.raises(ValueError, match="already used"):
        render(extra_scrape_configs=[{"job_name": name}])


def test_extra_scrape_configs_must_be_unique_and_named() -> None:
    with pytest.raises(ValueError, match="already used"):
        render(extra_scrape_configs=[{"job_name": "a"}, {"job_name": "a"}])
    with pytest.raises(ValueError, match="job_name"):
        render(extra_scrape_configs=[{"static_configs": []}])
    with pytest.raises(ValueError, match="url"):
        render(remote_write=[{"name": "no-url"}])


@pytest.mark.parametrize("server", ["http://consul:8500", "consul", "consul:0", "consul:99999", "", "consul:85a"])
def test_consul_server_must_be_host_port(server: str) -> None:
    with pytest.raises(ValueError, match="host:port"):
        render(consul_server=server)


def test_ipv6_and_ip_hosts_are_accepted() -> None:
    assert job(render(consul_server="[fd00::1]:8500"), JOB_CHUBAOFS)["consul_sd_configs"][0]["server"] == "[fd00::1]:8500"
    assert render(alertmanagers=["10.0.0.9:9093"])["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["10.0.0.9:9093"]


@pytest.mark.parametrize("bad", ["30", "0s", "thirty", "-5s", "1.5m"])
def test_intervals_must_be_prometheus_durations(bad: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        render(scrape_interval=bad)
    with pytest.raises(ValueError, match="duration"):
        render(evaluation_interval=bad)


@pytest.mark.parametrize("name", ["", "a,b", "a=b", "a b"])
def test_cluster_name_validation(name: str) -> None:
    with pytest.raises(ValueError, match="cluster_name"):
        render(cluster_name=name)
