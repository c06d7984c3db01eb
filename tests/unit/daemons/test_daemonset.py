"""Node-daemon DaemonSets: scheduling from Rook's settings, in-place updates, switches."""

from __future__ import annotations

from typing import Any

import pytest

from rook_py.chubaofs import operator as cfs
from rook_py.chubaofs.provider import ChubaoFSProvider
from rook_py.chubaofs.settings import ChubaoFSSettings
from rook_py.framework import cmdline
from rook_py.framework.client import errors
from rook_py.framework.cmdline import Fatal, FlagSet
from rook_py.framework.daemons.daemonset import (
    NodeDaemon,
    Scheduling,
    SchedulingError,
    ensure_daemonset,
    parse_labels,
    parse_node_affinity,
    parse_tolerations,
    remove_daemonset,
)
from rook_py.framework.operator import operator_flags, settings_from_values
from rook_py.framework.provider import OperatorSettings

NS = "rook-chubaofs"


def test_node_affinity_parsing_follows_rook() -> None:
    aff = parse_node_affinity("role=storage-node; storage=rook, ceph ;gpu")
    term = aff["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]  # type: ignore[index]
    assert term == [{"matchExpressions": [
        {"key": "role", "operator": "In", "values": ["storage-node"]},
        {"key": "storage", "operator": "In", "values": ["rook", "ceph"]},
        {"key": "gpu", "operator": "Exists"}]}]
    assert parse_node_affinity("") is None and parse_node_affinity(" ; ") is None


@pytest.mark.parametrize("text", ["=a", "role="])
def test_node_affinity_rejects(text: str) -> None:
    with pytest.raises(SchedulingError):
        parse_node_affinity(text, "X_NODE_AFFINITY")


def test_tolerations_are_a_yaml_list() -> None:
    text = "- key: storage-node\n  operator: Exists\n  effect: NoSchedule\n"
    assert parse_tolerations(text) == [{"key": "storage-node", "operator": "Exists", "effect": "NoSchedule"}]
    assert parse_tolerations("") == []
    with pytest.raises(SchedulingError, match="expected a YAML list"):
        parse_tolerations("key: x", "DISCOVER_TOLERATIONS")
    with pytest.raises(SchedulingError, match="invalid YAML"):
        parse_tolerations("- [", "DISCOVER_TOLERATIONS")


def test_pod_labels() -> None:
    assert parse_labels("a=1, b = 2,") == {"a": "1", "b": "2"}
    with pytest.raises(SchedulingError):
        parse_labels("novalue")


def test_node_affinity_may_be_a_whole_node_affinity_as_rook_accepts() -> None:
    yaml_text = ("requiredDuringSchedulingIgnoredDuringExecution:\n  nodeSelectorTerms:\n"
                 "  - matchExpressions: [{key: role, operator: NotIn, values: [gpu]}]\n")
    assert parse_node_affinity(yaml_text) == {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [{"key": "role", "operator": "NotIn", "values": ["gpu"]}]}]}}
    json_text = '{"preferredDuringSchedulingIgnoredDuringExecution": []}'
    assert parse_node_affinity(json_text) == {"preferredDuringSchedulingIgnoredDuringExecution": []}
    with pytest.raises(SchedulingError, match="not a NodeAffinity"):
        parse_node_affinity("role: storage")


def test_scheduling_settings_prefer_rooks_legacy_names() -> None:
    env = {"DISCOVER_AGENT_NODE_AFFINITY": "a=1", "DISCOVER_NODE_AFFINITY": "b=2",
           "DISCOVER_PRIORITY_CLASS_NAME": "high", "DISCOVER_POD_LABELS": "team=storage",
           "DISCOVER_TOLERATIONS": "- operator: Exists"}
    s = settings(env=env).of(ChubaoFSSettings)
    assert s.discover_node_affinity is not None
    assert s.discover_node_affinity["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0][
        "matchExpressions"][0]["key"] == "a"
    assert s.discover_priority_class_name == "high" and s.discover_pod_labels == {"team": "storage"}
    assert s.discover_tolerations == [{"operator": "Exists"}]
    # ROOK_<FLAG> wins over Rook's names, like every flag's env fallback.
    assert settings(env={**env, "ROOK_DISCOVER_PRIORITY_CLASS_NAME": "low"}).of(
        ChubaoFSSettings).discover_priority_class_name == "low"


def daemon(**kw: Any) -> NodeDaemon:
    return NodeDaemon(name="rook-discover", namespace=NS, image="rook-py:1", args=["discover"],
                      service_account="rook-discover", **kw)


def test_build_puts_labels_on_the_template_only() -> None:
    ds = daemon(scheduling=Scheduling(pod_labels={"team": "x"}, priority_class_name="p")).build()
    assert ds["spec"]["selector"] == {"matchLabels": {"app": "rook-discover"}}
    assert ds["spec"]["template"]["metadata"]["labels"] == {"team": "x", "app": "rook-discover"}
    assert ds["spec"]["updateStrategy"]["type"] == "RollingUpdate"
    assert ds["spec"]["template"]["spec"]["priorityClassName"] == "p"
    assert "tolerations" not in ds["spec"]["template"]["spec"]


def settings(image: str = "rook-py:1", env: dict[str, str] | None = None) -> OperatorSettings:
    """Settings as ``rook chubaofs operator`` resolves them from this environment."""
    parser = cmdline.ArgumentParser()
    flagset = FlagSet().add(parser, *operator_flags(ChubaoFSProvider()))
    values = flagset.resolve(parser.parse_args([]), {"POD_NAMESPACE": NS, "ROOK_IMAGE": image, **(env or {})})
    return settings_from_values("chubaofs", values, ChubaoFSSettings)


def test_chubaofs_daemonsets() -> None:
    env = {"AGENT_DATA_PATHS": "/var/lib/cfs/data1,/var/lib/cfs/data2", "AGENT_MONITOR": "rook-chubaofs/mon",
           "ROOK_DISCOVER_DEVICES_INTERVAL": "5m", "AGENT_NODE_AFFINITY": "role=storage"}
    disc = cfs.discover_daemonset(settings(env=env))
    pod = disc["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["args"] == ["discover"] and container["image"] == "rook-py:1"
    assert {"name": "ROOK_DISCOVER_DEVICES_INTERVAL", "value": "5m0s"} in container["env"]
    assert all(m["readOnly"] for m in container["volumeMounts"])
    assert {m["mountPath"] for m in container["volumeMounts"]} == {"/dev", "/sys", "/run/udev"}
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert "privileged" not in container["securityContext"]
    assert pod["serviceAccountName"] == "rook-discover"
    agent = cfs.agent_daemonset(settings(env=env))
    apod = agent["spec"]["template"]["spec"]
    ac = apod["containers"][0]
    assert ac["args"] == ["chubaofs", "agent"] and ac["ports"][0]["containerPort"] == 9500
    assert {"name": "ROOK_DATA_PATHS", "value": "/var/lib/cfs/data1,/var/lib/cfs/data2"} in ac["env"]
    assert {"name": "ROOK_MONITOR", "value": "rook-chubaofs/mon"} in ac["env"]
    assert {m["mountPath"] for m in ac["volumeMounts"]} == {"/sys", "/var/lib/cfs/data1", "/var/lib/cfs/data2"}
    assert apod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert "affinity" not in pod  # AGENT_* does not leak into the discover DaemonSet


def test_bad_env_is_fatal_with_the_variable_name() -> None:
    with pytest.raises(Fatal, match="DISCOVER_TOLERATIONS"):
        settings(env={"DISCOVER_TOLERATIONS": "nope: 1"})
    with pytest.raises(Fatal, match="ROOK_DISCOVER_DEVICES_INTERVAL"):
        settings(env={"ROOK_DISCOVER_DEVICES_INTERVAL": "soon"})
    with pytest.raises(Fatal, match="ROOK_ENABLE_AGENT"):
        settings(env={"ROOK_ENABLE_AGENT": "sometimes"})


UA = "rook-daemonset-test"


def test_create_update_in_place_and_switch_off(envtest: Any) -> None:
    admin = envtest.client()
    admin.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    client = envtest.client(user_agent=UA)
    assert cfs.ensure_node_daemons(client, settings()) == {"rook-discover": "created",
                                                                "rook-chubaofs-agent": "created"}
    first = admin.get("apps/v1", "DaemonSet", "rook-discover", NS)
    assert cfs.ensure_node_daemons(client, settings()) == {"rook-discover": "unchanged",
                                                                "rook-chubaofs-agent": "unchanged"}
    # An operator upgrade changes the image: updated in place (same uid), never recreated.
    actions = cfs.ensure_node_daemons(client, settings("rook-py:2", {"DISCOVER_TOLERATIONS": "- operator: Exists"}))
    assert actions == {"rook-discover": "updated", "rook-chubaofs-agent": "updated"}
    second = admin.get("apps/v1", "DaemonSet", "rook-discover", NS)
    assert second["metadata"]["uid"] == first["metadata"]["uid"]
    assert second["spec"]["template"]["spec"]["containers"][0]["image"] == "rook-py:2"
    assert second["spec"]["template"]["spec"]["tolerations"] == [{"operator": "Exists"}]
    assert envtest.request_counts.count(user_agent=UA, verb="delete", resource="daemonsets") == 0
    # Dropping the toleration removes it again (the last-applied record owns it).
    cfs.ensure_node_daemons(client, settings("rook-py:2"))
    assert "tolerations" not in admin.get("apps/v1", "DaemonSet", "rook-discover", NS)["spec"]["template"]["spec"]
    # Switches off: removed; already gone is fine.
    off = {"ROOK_ENABLE_DISCOVERY_DAEMON": "false", "ROOK_ENABLE_AGENT": "false"}
    assert cfs.ensure_node_daemons(client, settings("rook-py:2", off)) == {"rook-discover": "removed",
                                                                            "rook-chubaofs-agent": "removed"}
    assert cfs.ensure_node_daemons(client, settings("rook-py:2", off)) == {"rook-discover": "absent",
                                                                            "rook-chubaofs-agent": "absent"}
    with pytest.raises(errors.NotFound):
        admin.get("apps/v1", "DaemonSet", "rook-chubaofs-agent", NS)


def test_missing_namespace_is_a_clear_fatal(envtest: Any) -> None:
    with pytest.raises(Fatal, match=r"apply manifests/common\.yaml first"):
        cfs.ensure_node_daemons(envtest.client(), settings())


def test_ensure_and_remove_generic(envtest: Any) -> None:
    admin = envtest.client()
    admin.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    assert ensure_daemonset(admin, daemon().build()).action == "created"
    assert remove_daemonset(admin, "rook-discover", NS) is True
    assert remove_daemonset(admin, "rook-discover", NS) is False
