"""prometheus.yml for a ChubaoMonitor.

Jobs (names are part of the contract with the alert rules and dashboards, see JOB_* below):

* ``chubaofs``: every ChubaoFS daemon. Daemons register themselves in Consul as service ``cfs``
  with tags ``app=<app>``, ``role=<role>``, ``cluster=<name>`` (cubefs/cubefs
  util/exporter/consul_register.go). Relabeling lifts those tags into the ``app``, ``role`` and
  ``cluster`` target labels and keeps only the monitored cluster, so one Consul can serve several
  ChubaoFS clusters.
* ``rook-chubaofs-agent``: the node agent (disk health, path capacity). It registers with an HTTP
  check, so only instances whose checks pass are scraped; ``node`` and ``cluster`` come from tags.
* ``rook-chubaofs-operator``: the operator's own ``/metrics`` (static targets).
* ``consul``: Consul's own telemetry at ``/v1/agent/metrics?format=prometheus``. Consul serves it
  only when ``telemetry.prometheus_retention_time`` is set on the agent (otherwise it answers 415
  and the target is down), so the job can be left out with ``consul_metrics=False`` for a Consul
  the operator does not configure itself.

Tag regexes: Prometheus joins ``__meta_consul_tags`` with the separator *and* surrounds the
result with it (prometheus/prometheus discovery/consul/consul.go, "so that regular expressions in
relabeling rules don't have to consider tag positions"). So ``.*,role=([^,]*),.*`` finds the
``role`` tag wherever it sits; the community charts instead picked the N-th tag, which broke as
soon as a daemon registered its tags in another order.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from rook_py.chubaofs.monitor.config._render import (
    JSON,
    dump_yaml,
    re2_literal,
    require_cluster_name,
    require_duration,
    require_host_port,
    require_label_name,
)

JOB_CHUBAOFS = "chubaofs"
JOB_AGENT = "rook-chubaofs-agent"
JOB_OPERATOR = "rook-chubaofs-operator"
JOB_CONSUL = "consul"

#: Consul service name every ChubaoFS daemon registers under (util/exporter/consul_register.go).
CHUBAOFS_SERVICE = "cfs"

#: Labels lifted from the daemons' Consul tags. Order is fixed so output stays byte-identical.
CHUBAOFS_TAG_LABELS = ("app", "role", "cluster")
#: Labels lifted from the node agent's Consul tags.
AGENT_TAG_LABELS = ("node", "cluster")

#: External label set when replica_label=True. Prometheus expands ``${POD_NAME}`` only when run
#: with --enable-feature=expand-external-labels and POD_NAME in its environment (downward API).
REPLICA_LABEL = "replica"
REPLICA_VALUE = "${POD_NAME}"

_RESERVED_JOBS = frozenset({JOB_CHUBAOFS, JOB_AGENT, JOB_OPERATOR, JOB_CONSUL})


def _tag_to_label(label: str) -> JSON:
    """A relabel rule copying the value of Consul tag ``<label>=<value>`` into ``label``.

    When the tag is absent the regex does not match and the label is left unset (action replace
    only writes on a match), which the cluster ``keep`` rule then uses to drop foreign targets.
    """
    return {
        "source_labels": ["__meta_consul_tags"],
        "regex": f".*,{label}=([^,]*),.*",
        "target_label": label,
        "replacement": "$1",
        "action": "replace",
    }


def _keep_cluster(cluster_name: str) -> JSON:
    return {
        "source_labels": ["cluster"],
        "regex": re2_literal(cluster_name),
        "action": "keep",
    }


def _chubaofs_job(cluster_name: str, consul_server: str) -> JSON:
    relabel: list[JSON] = [_tag_to_label(label) for label in CHUBAOFS_TAG_LABELS]
    relabel.append(_keep_cluster(cluster_name))
    # The Consul service ID (cfs_<role>_<ip>_<port>) is what an operator has to deregister when a
    # daemon is gone for good (ChubaoFS never deregisters), so keep it on every series.
    relabel.append(
        {
            "source_labels": ["__meta_consul_service_id"],
            "target_label": "consul_service_id",
            "action": "replace",
        }
    )
    return {
        "job_name": JOB_CHUBAOFS,
        "metrics_path": "/metrics",
        "scheme": "http",
        "consul_sd_configs": [{"server": consul_server, "services": [CHUBAOFS_SERVICE]}],
        "relabel_configs": relabel,
    }


def _agent_job(cluster_name: str, consul_server: str, agent_service: str) -> JSON:
    relabel: list[JSON] = [
        # Consul SD returns unhealthy instances too; an agent failing its own /metrics check is
        # not scraped (the ChubaoFSAgentDown alert notices it disappearing instead).
        {"source_labels": ["__meta_consul_health"], "regex": "passing", "action": "keep"},
    ]
    relabel.extend(_tag_to_label(label) for label in AGENT_TAG_LABELS)
    relabel.append(_keep_cluster(cluster_name))
    return {
        "job_name": JOB_AGENT,
        "metrics_path": "/metrics",
        "scheme": "http",
        # The agent labels its own series with `node`; it is authoritative for that label, so do
        # not let the target label push it aside into `exported_node`.
        "honor_labels": True,
        "consul_sd_configs": [{"server": consul_server, "services": [agent_service]}],
        "relabel_configs": relabel,
    }


def _operator_job(targets: Sequence[str]) -> JSON:
    return {
        "job_name": JOB_OPERATOR,
        "metrics_path": "/metrics",
        "scheme": "http",
        "static_configs": [{"targets": list(targets)}],
    }


def _consul_job(cluster_name: str, consul_server: str) -> JSON:
    return {
        "job_name": JOB_CONSUL,
        "metrics_path": "/v1/agent/metrics",
        "params": {"format": ["prometheus"]},
        "scheme": "http",
        # The static target carries the cluster label so rules can select it like the rest.
        "static_configs": [{"targets": [consul_server], "labels": {"cluster": cluster_name}}],
    }


def _external_labels(
    cluster_name: str, external_labels: Mapping[str, str] | None, replica_label: bool
) -> dict[str, str]:
    labels: dict[str, str] = {"cluster": cluster_name}
    for name in sorted(external_labels or {}):
        labels[require_label_name(name, "external_labels")] = str((external_labels or {})[name])
    if replica_label:
        if REPLICA_LABEL in (external_labels or {}):
            raise ValueError(f"external label {REPLICA_LABEL!r} is reserved when replica_label=True")
        labels[REPLICA_LABEL] = REPLICA_VALUE
    return labels


def _extra_scrape_configs(extra: Sequence[Any], taken: set[str]) -> list[JSON]:
    result: list[JSON] = []
    for index, item in enumerate(extra):
        if not isinstance(item, Mapping) or not isinstance(item.get("job_name"), str) or not item["job_name"]:
            raise ValueError(f"extra_scrape_configs[{index}] must be a mapping with a job_name")
        name = item["job_name"]
        if name in taken:
            raise ValueError(f"extra_scrape_configs[{index}]: job_name {name!r} is already used")
        taken.add(name)
        result.append(copy.deepcopy(dict(item)))
    return result


def render_prometheus_config(
    *,
    cluster_name: str,
    consul_server: str,
    scrape_interval: str = "30s",
    evaluation_interval: str | None = None,
    external_labels: Mapping[str, str] | None = None,
    alertmanagers: Sequence[str] = (),
    rule_files: Sequence[str] = ("/etc/prometheus/rules/*.yml",),
    operator_targets: Sequence[str] = (),
    agent_service: str = "rook-chubaofs-agent",
    extra_scrape_configs: Sequence[JSON] = (),
    remote_write: Sequence[JSON] = (),
    replica_label: bool = False,
    consul_metrics: bool = True,
) -> str:
    """Render prometheus.yml. Pure and deterministic: equal arguments give byte-identical text.

    `consul_server` and each of `alertmanagers` / `operator_targets` are ``host:port`` (never a
    URL). `extra_scrape_configs` and `remote_write` are passed through verbatim after the
    built-in jobs; an extra job reusing a built-in job name is refused (ValueError), as are
    malformed addresses and durations. `consul_metrics=False` (an extension of the contract)
    leaves out the job scraping Consul's own telemetry.
    """
    require_cluster_name(cluster_name)
    require_host_port(consul_server, "consul_server")
    require_duration(scrape_interval, "scrape_interval")
    evaluation = require_duration(evaluation_interval or scrape_interval, "evaluation_interval")
    for target in alertmanagers:
        require_host_port(target, "alertmanagers")
    for target in operator_targets:
        require_host_port(target, "operator_targets")
    if not agent_service:
        raise ValueError("agent_service must not be empty")
    for index, item in enumerate(remote_write):
        if not isinstance(item, Mapping) or not isinstance(item.get("url"), str):
            raise ValueError(f"remote_write[{index}] must be a mapping with a url")

    document: JSON = {
        "global": {
            "scrape_interval": scrape_interval,
            "evaluation_interval": evaluation,
            "external_labels": _external_labels(cluster_name, external_labels, replica_label),
        },
        "rule_files": list(rule_files),
    }
    if alertmanagers:
        document["alerting"] = {
            "alertmanagers": [{"api_version": "v2", "static_configs": [{"targets": list(alertmanagers)}]}]
        }
        if replica_label:
            # HA replicas send identical alerts; dropping the replica label lets Alertmanager
            # deduplicate them into one notification.
            document["alerting"]["alert_relabel_configs"] = [{"regex": REPLICA_LABEL, "action": "labeldrop"}]

    scrape_configs: list[JSON] = [
        _chubaofs_job(cluster_name, consul_server),
        _agent_job(cluster_name, consul_server, agent_service),
    ]
    if operator_targets:
        scrape_configs.append(_operator_job(operator_targets))
    if consul_metrics:
        scrape_configs.append(_consul_job(cluster_name, consul_server))
    scrape_configs.extend(_extra_scrape_configs(extra_scrape_configs, set(_RESERVED_JOBS)))
    document["scrape_configs"] = scrape_configs

    if remote_write:
        document["remote_write"] = [copy.deepcopy(dict(item)) for item in remote_write]
    return dump_yaml(document)
