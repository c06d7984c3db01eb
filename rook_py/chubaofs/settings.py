"""The ChubaoFS provider's own settings of ``rook chubaofs operator`` (``Provider.settings_type``).

Declared like the framework's (``rook_py.framework.settings``): each is a flag, reads
``ROOK_<FLAG>`` and the name Rook's manifests use for the same thing (``ROOK_ENABLE_DISCOVERY_DAEMON``,
``DISCOVER_TOLERATIONS``, ``DISCOVER_AGENT_NODE_AFFINITY``, ...; rook/rook
``pkg/operator/discover/discover.go``), may be set in the operator settings ConfigMap under that
name, and appears in the reference. The node-daemon settings are ``live``: a change in the
ConfigMap updates the DaemonSets in place (a rolling update), without restarting the operator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rook_py.chubaofs.monitor.reload import DEFAULT_SETTLE_SECONDS, DEFAULT_TIMEOUT
from rook_py.framework.daemons.daemonset import parse_labels, parse_node_affinity, parse_tolerations
from rook_py.framework.settings import setting

JSON = dict[str, Any]
DEFAULT_DISCOVER_INTERVAL = 3600.0

_TOLERATIONS = "a YAML list of Tolerations"
_AFFINITY = ("required node affinity: 'key=v1,v2; key2' (key In values; key Exists), or a NodeAffinity "
             "as YAML/JSON")
_LABELS = "extra pod labels 'k=v,k2=v2'"


def _placement(daemon: str, prefix: str, *, affinity_env: tuple[str, ...] = (),
               labels_env: tuple[str, ...] = ()) -> dict[str, Any]:
    """The four placement settings of one node daemon, under Rook's ``<PREFIX>_*`` names."""
    affinity_env = (*affinity_env, f"{prefix}_NODE_AFFINITY")
    labels_env = (*labels_env, f"{prefix}_POD_LABELS")
    return {
        "tolerations": setting([], f"{daemon}: {_TOLERATIONS}", parse=parse_tolerations, kind="tolerations",
                               metavar="YAML", env=(f"{prefix}_TOLERATIONS",), key=f"{prefix}_TOLERATIONS",
                               live=True),
        "node_affinity": setting(None, f"{daemon}: {_AFFINITY}", parse=parse_node_affinity, kind="node-affinity",
                                 metavar="AFFINITY", env=affinity_env, key=affinity_env[0], live=True),
        "priority_class_name": setting("", f"{daemon}: PriorityClass of its pods",
                                       env=(f"{prefix}_PRIORITY_CLASS_NAME",), key=f"{prefix}_PRIORITY_CLASS_NAME",
                                       live=True),
        "pod_labels": setting({}, f"{daemon}: {_LABELS}", parse=parse_labels, kind="labels", metavar="K=V,...",
                              env=labels_env, key=labels_env[0], live=True),
    }


_DISCOVER = _placement("rook-discover", "DISCOVER", affinity_env=("DISCOVER_AGENT_NODE_AFFINITY",),
                       labels_env=("DISCOVER_AGENT_POD_LABELS",))
_AGENT = _placement("rook-chubaofs-agent", "AGENT")


@dataclass
class ChubaoFSSettings:
    """Settings of ``rook chubaofs operator`` beyond the framework's ``OperatorSettings``."""

    reload_timeout: float = setting(DEFAULT_TIMEOUT, "timeout of one POST /-/reload to Prometheus or "
                                                     "Alertmanager", kind="duration")
    reload_settle: float = setting(DEFAULT_SETTLE_SECONDS, "how long a changed config is re-posted for "
                                   "reloads before it counts as loaded (the kubelet's ConfigMap sync delay)",
                                   kind="duration")
    operator_metrics_targets: list[str] = setting(
        [], "host:port of the operator's metrics for the generated Prometheus' operator job "
            "(default: the rook-chubaofs-operator Service; none when metrics are off)", kind="list")
    enable_discovery_daemon: bool = setting(True, "deploy the rook-discover DaemonSet (off removes it)",
                                            kind="bool", live=True)
    discover_devices_interval: float = setting(DEFAULT_DISCOVER_INTERVAL, "how often rook discover rescans "
                                               "devices", kind="duration", live=True)
    discover_tolerations: list[JSON] = _DISCOVER["tolerations"]
    discover_node_affinity: JSON | None = _DISCOVER["node_affinity"]
    discover_priority_class_name: str = _DISCOVER["priority_class_name"]
    discover_pod_labels: dict[str, str] = _DISCOVER["pod_labels"]
    enable_agent: bool = setting(True, "deploy the rook-chubaofs-agent DaemonSet (off removes it)", kind="bool",
                                 live=True)
    agent_tolerations: list[JSON] = _AGENT["tolerations"]
    agent_node_affinity: JSON | None = _AGENT["node_affinity"]
    agent_priority_class_name: str = _AGENT["priority_class_name"]
    agent_pod_labels: dict[str, str] = _AGENT["pod_labels"]
    agent_monitor: str = setting("", "namespace/name of the ChubaoMonitor whose Consul the agents register in",
                                 env=("AGENT_MONITOR",), key="AGENT_MONITOR", live=True)
    agent_consul_addr: str = setting("", "Consul host:port the agents register in, instead of the monitor's",
                                     env=("AGENT_CONSUL_ADDR",), key="AGENT_CONSUL_ADDR", live=True)
    agent_data_paths: list[str] = setting([], "ChubaoFS data directories whose capacity the agents report",
                                          kind="list", env=("AGENT_DATA_PATHS",), key="AGENT_DATA_PATHS",
                                          live=True)
    agent_deregister_stale_after: float = setting(
        0.0, "the agents deregister this node's ChubaoFS instances unreachable this long; 0: never",
        kind="duration", env=("AGENT_DEREGISTER_STALE_AFTER",), key="AGENT_DEREGISTER_STALE_AFTER", live=True)
