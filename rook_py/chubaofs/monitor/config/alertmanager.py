"""The default alertmanager.yml, used when a ChubaoMonitor names no ``configSecret``.

Without user-supplied receivers there is nowhere honest to send notifications, so the default
route ends in a receiver with no integrations: alerts are grouped, deduplicated and visible in the
Alertmanager UI/API, and nothing is sent. Users who want e-mail, Slack or PagerDuty provide their
own alertmanager.yml in a Secret. `webhook_urls` exists for deployments (and tests) that want a
plain webhook without writing a whole config.

Inhibition follows the built-in rules' conventions (rules.py): a critical alert silences the
warning of the same alert name and cluster, and a leaderless master silences the node-level
alerts that the (absent) leader would otherwise keep reporting.
"""

from __future__ import annotations

from collections.abc import Sequence

from rook_py.chubaofs.monitor.config._render import JSON, dump_yaml, require_cluster_name

DEFAULT_RECEIVER = "chubaofs-default"


def _require_url(url: str) -> str:
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"webhook url must be http(s)://..., got {url!r}")
    return url


def render_default_alertmanager_config(*, cluster_name: str, webhook_urls: Sequence[str] = ()) -> str:
    """Render alertmanager.yml for `cluster_name`. Pure and deterministic.

    `webhook_urls` (an extension of the contract, default empty) adds webhook_configs to the
    default receiver; with none, the receiver has no integrations and only collects alerts.
    """
    require_cluster_name(cluster_name)
    receiver: JSON = {"name": DEFAULT_RECEIVER}
    if webhook_urls:
        receiver["webhook_configs"] = [
            {"url": _require_url(url), "send_resolved": True} for url in webhook_urls
        ]
    document: JSON = {
        "global": {"resolve_timeout": "5m"},
        "route": {
            "receiver": DEFAULT_RECEIVER,
            "group_by": ["alertname", "cluster"],
            "group_wait": "30s",
            "group_interval": "5m",
            "repeat_interval": "4h",
        },
        "inhibit_rules": [
            {
                "source_matchers": ['severity="critical"'],
                "target_matchers": ['severity="warning"'],
                "equal": ["alertname", "cluster"],
            },
            {
                "source_matchers": ['alertname="ChubaoFSMasterNoLeader"'],
                "target_matchers": [
                    'alertname=~"ChubaoFS(MetaNodes|DataNodes)Inactive|ChubaoFSDataNodesNotWritable"'
                ],
                "equal": ["cluster"],
            },
        ],
        "receivers": [receiver],
    }
    return dump_yaml(document)
