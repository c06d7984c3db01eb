"""Object builders: names, labels, owner references, security, and each component's shape."""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from rook_py.chubaofs.api import types as t
from rook_py.chubaofs.monitor import alertmanager, common, consul, grafana, prometheus
from rook_py.chubaofs.monitor.common import MonitorContext
from rook_py.chubaofs.monitor.component import Plan
from rook_py.chubaofs.monitor.controller import PLANNERS, render
from tests.unit.chubaofs.conftest import make_ctx
from tests.unit.chubaofs.fakes import FakeCluster

JSON = dict[str, Any]


def plans(ctx: MonitorContext, cluster: FakeCluster | None = None) -> dict[str, Plan]:
    rendered = render(ctx, ("op.rook.svc:8080",))
    reader = (cluster or FakeCluster()).reader
    return {component: PLANNERS[component](ctx, rendered, reader) for component in t.COMPONENTS}


def all_objects(ctx: MonitorContext) -> list[JSON]:
    """Every object of every component; Grafana's generated admin Secret comes last."""
    return [obj for plan in plans(ctx).values()
            for obj in (*plan.objects, plan.workload, *plan.create_only)]


def pod_specs(objects: list[JSON]) -> Iterator[tuple[str, JSON]]:
    for obj in objects:
        if obj["kind"] in ("StatefulSet", "Deployment"):
            yield obj["metadata"]["name"], obj["spec"]["template"]["spec"]


def container(obj: JSON) -> JSON:
    first: JSON = obj["spec"]["template"]["spec"]["containers"][0]
    return first


def test_every_object_is_owned_labelled_and_prefixed() -> None:
    ctx = make_ctx({"cluster": {"name": "cfs"}, "grafana": {"ingress": {"host": "g.example.com"}}})
    objects = all_objects(ctx)
    assert {o["kind"] for o in objects} == {"StatefulSet", "Deployment", "Service", "ConfigMap",
                                            "Secret", "PodDisruptionBudget", "Ingress"}
    for obj in objects:
        meta = obj["metadata"]
        assert meta["name"].startswith("mon-") and meta["namespace"] == "ns"
        assert meta["ownerReferences"] == [{"apiVersion": t.API_VERSION, "kind": t.KIND, "name": "mon",
                                            "uid": "uid-1", "controller": True,
                                            "blockOwnerDeletion": True}]
        labels = meta["labels"]
        assert labels["app.kubernetes.io/part-of"] == "chubaofs"
        assert labels["app.kubernetes.io/managed-by"] == "rook-chubaofs-operator"
        assert labels["app.kubernetes.io/instance"] == "mon"
        assert labels["app.kubernetes.io/component"] in t.COMPONENTS
        assert labels["app.kubernetes.io/name"] in common.APP_NAMES.values()
        assert common.is_owned_by(obj, ctx.monitor)
        assert len(meta["name"]) <= 63
    names = [(o["kind"], o["metadata"]["name"]) for o in objects]
    assert len(names) == len(set(names)), "duplicate object names"


def test_builders_are_deterministic() -> None:
    assert all_objects(make_ctx())[:-1] == all_objects(make_ctx())[:-1]  # the last has a random password


@pytest.mark.parametrize(("component", "uid"), [("consul", 100), ("prometheus", 65534),
                                                ("alertmanager", 65534), ("grafana", 472)])
def test_pods_run_non_root_hardened(component: str, uid: int) -> None:
    ctx = make_ctx()
    (workload,) = [o for o in all_objects(ctx) if o["kind"] in ("StatefulSet", "Deployment")
                   and o["metadata"]["labels"]["app.kubernetes.io/component"] == component]
    pod = workload["spec"]["template"]["spec"]
    sec = pod["securityContext"]
    assert sec["runAsNonRoot"] is True and sec["runAsUser"] == uid
    assert sec["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    for c in pod["containers"]:
        csec = c["securityContext"]
        assert csec["capabilities"] == {"drop": ["ALL"]}
        assert csec["allowPrivilegeEscalation"] is False and csec["readOnlyRootFilesystem"] is True
        assert "readinessProbe" in c and "livenessProbe" in c
        assert c["resources"]["requests"]
        # Config must reach running pods: never mounted by subPath.
        assert all("subPath" not in m for m in c["volumeMounts"])
    # Every mount is backed by a declared volume or a claim template.
    volumes = {v["name"] for v in pod["volumes"]} | {
        tpl["metadata"]["name"] for tpl in workload["spec"].get("volumeClaimTemplates") or []}
    assert {m["name"] for c in pod["containers"] for m in c["volumeMounts"]} <= volumes
    assert workload["spec"]["selector"]["matchLabels"] == common.selector_labels(ctx, component)


def test_placement_pull_secrets_and_priority_are_applied_everywhere() -> None:
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [{"key": "x", "operator": "Exists"}]}]}}}
    ctx = make_ctx({"cluster": {"name": "cfs"},
                    "placement": {"nodeSelector": {"role": "monitor"}, "affinity": affinity,
                                  "tolerations": [{"key": "k", "operator": "Exists"}]},
                    "imagePullSecrets": [{"name": "regcred"}], "priorityClassName": "high"})
    specs = dict(pod_specs(all_objects(ctx)))
    assert len(specs) == 4
    for pod in specs.values():
        assert pod["nodeSelector"] == {"role": "monitor"} and pod["affinity"] == affinity
        assert pod["tolerations"] == [{"key": "k", "operator": "Exists"}]
        assert pod["imagePullSecrets"] == [{"name": "regcred"}]
        assert pod["priorityClassName"] == "high"
    default_pod = dict(pod_specs(all_objects(make_ctx())))["mon-prometheus"]
    assert "podAntiAffinity" in default_pod["affinity"] and "nodeSelector" not in default_pod


def test_consul_server_statefulset() -> None:
    ctx = make_ctx({"cluster": {"name": "cfs"}, "consul": {"replicas": 3}})
    sts = consul.statefulset(ctx)
    c = container(sts)
    args = c["args"]
    assert args[:2] == ["agent", "-server"] and "-bootstrap-expect=3" in args
    assert "-client=0.0.0.0" in args and "-ui" in args and "-dev" not in args
    joins = [a for a in args if a.startswith("-retry-join=")]
    assert joins == [f"-retry-join=mon-consul-{i}.mon-consul-headless.ns.svc" for i in range(3)]
    assert sts["spec"]["serviceName"] == "mon-consul-headless"
    assert sts["spec"]["podManagementPolicy"] == "Parallel"
    assert {"name": "data", "mountPath": "/consul/data"} in c["volumeMounts"]
    assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "1Gi"
    assert c["lifecycle"]["preStop"]["exec"]["command"][-1] == "consul leave"
    # Readiness needs a non-empty leader: an exec probe, since httpGet would pass on "".
    probe = c["readinessProbe"]["exec"]["command"]
    assert "/v1/status/leader" in probe[-1] and "grep" in probe[-1]
    assert "httpGet" not in c["readinessProbe"]
    headless, client = consul.services(ctx)
    assert headless["spec"]["clusterIP"] == "None" and headless["spec"]["publishNotReadyAddresses"]
    assert client["spec"]["ports"] == [{"name": "http", "port": 8500, "targetPort": 8500, "protocol": "TCP"}]
    pdb = consul.pod_disruption_budget(ctx)
    assert pdb is not None and pdb["spec"]["maxUnavailable"] == 1
    assert consul.pod_disruption_budget(make_ctx({"cluster": {"name": "c"}, "consul": {"replicas": 1}})) is None
    assert consul.client_address(ctx) == "mon-consul.ns.svc:8500"
    external = make_ctx({"cluster": {"name": "c"}, "consul": {"externalAddress": "c.infra:8500"}})
    assert consul.client_address(external) == "c.infra:8500" and not external.enabled("consul")


def test_prometheus_statefulset_and_config() -> None:
    ctx = make_ctx({"cluster": {"name": "cfs"},
                    "prometheus": {"retention": "30d", "retentionSize": "18GB"}})
    config = prometheus.render_config(ctx, ("op.rook.svc:8080",))
    sts = prometheus.statefulset(ctx)
    args = container(sts)["args"]
    for arg in ("--config.file=/etc/prometheus/config/prometheus.yml", "--storage.tsdb.path=/prometheus",
                "--storage.tsdb.retention.time=30d", "--storage.tsdb.retention.size=18GB",
                "--web.enable-lifecycle"):
        assert arg in args
    assert not any(a.startswith("--enable-feature") for a in args)
    assert container(sts)["readinessProbe"]["httpGet"]["path"] == "/-/ready"
    assert container(sts)["livenessProbe"]["httpGet"]["path"] == "/-/healthy"
    mounts = {m["name"]: m["mountPath"] for m in container(sts)["volumeMounts"]}
    assert mounts == {"config": "/etc/prometheus/config", "rules": "/etc/prometheus/rules",
                      "data": "/prometheus"}
    claim = sts["spec"]["volumeClaimTemplates"][0]
    assert claim["metadata"]["name"] == "data" and claim["spec"]["resources"]["requests"]["storage"] == "20Gi"
    assert sts["spec"]["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain",
                                                                   "whenScaled": "Retain"}
    # The pod template carries no config hash: config changes are hot-reloaded.
    assert "annotations" not in sts["spec"]["template"]["metadata"]
    maps = {m["metadata"]["name"]: m for m in prometheus.config_maps(ctx, config)}
    assert set(maps) == {"mon-prometheus-config", "mon-prometheus-rules"}
    yml = maps["mon-prometheus-config"]["data"]["prometheus.yml"]
    assert "mon-consul.ns.svc:8500" in yml and "mon-alertmanager-0.mon-alertmanager-headless.ns.svc:9093" in yml
    assert "op.rook.svc:8080" in yml and "/etc/prometheus/rules/*.yml" in yml
    assert "groups" in maps["mon-prometheus-rules"]["data"]["chubaofs.yml"]
    assert prometheus.pod_urls(ctx) == ["http://mon-prometheus-0.mon-prometheus-headless.ns.svc:9090"]


def test_prometheus_ha_replicas_get_a_replica_label() -> None:
    ctx = make_ctx({"cluster": {"name": "cfs"}, "prometheus": {"replicas": 2}})
    args = container(prometheus.statefulset(ctx))["args"]
    assert "--enable-feature=expand-external-labels" in args
    assert "POD_NAME" in prometheus.render_config(ctx).prometheus_yml
    assert len(prometheus.pod_urls(ctx)) == 2


def test_prometheus_config_hash_follows_config_and_rules() -> None:
    base = prometheus.render_config(make_ctx())
    other_interval = prometheus.render_config(make_ctx({"cluster": {"name": "cfs"},
                                                        "prometheus": {"scrapeInterval": "15s"}}))
    other_threshold = prometheus.render_config(make_ctx({"cluster": {"name": "cfs"}, "rules": {
        "thresholds": {"capacityWarningPercent": 70}}}))
    no_rules = prometheus.render_config(make_ctx({"cluster": {"name": "cfs"}, "rules": {"enabled": False}}))
    hashes = {base.hash, other_interval.hash, other_threshold.hash, no_rules.hash}
    assert len(hashes) == 4
    assert no_rules.rules_yml is None
    assert [m["metadata"]["name"] for m in prometheus.config_maps(make_ctx({"cluster": {"name": "c"}, "rules": {
        "enabled": False}}), no_rules)] == ["mon-prometheus-config"]


def test_alertmanager_single_and_mesh() -> None:
    single = make_ctx()
    args = container(alertmanager.statefulset(single))["args"]
    assert "--cluster.listen-address=" in args and not any(a.startswith("--cluster.peer") for a in args)
    mesh = make_ctx({"cluster": {"name": "cfs"}, "alertmanager": {"replicas": 3}})
    args = container(alertmanager.statefulset(mesh))["args"]
    assert "--cluster.listen-address=0.0.0.0:9094" in args
    peers = [a for a in args if a.startswith("--cluster.peer=")]
    assert peers == [f"--cluster.peer=mon-alertmanager-{i}.mon-alertmanager-headless.ns.svc:9094"
                     for i in range(3)]
    headless = alertmanager.services(mesh)[0]
    assert {p["port"] for p in headless["spec"]["ports"]} == {9093, 9094}
    assert alertmanager.targets(mesh)[2] == "mon-alertmanager-2.mon-alertmanager-headless.ns.svc:9093"
    # No storage: an emptyDir; with storage: a claim template.
    assert "volumeClaimTemplates" not in alertmanager.statefulset(single)["spec"]
    stored = make_ctx({"cluster": {"name": "c"}, "alertmanager": {"storage": {"size": "2Gi"}}})
    assert alertmanager.statefulset(stored)["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"


def test_alertmanager_config_source() -> None:
    ctx = make_ctx()
    rendered = dataclasses.replace(render(ctx), alertmanager="route: {}\n")
    plan = alertmanager.plan(ctx, rendered, FakeCluster().reader)
    secret = plan.objects[0]
    assert secret["kind"] == "Secret" and secret["metadata"]["name"] == "mon-alertmanager-config"
    assert base64.b64decode(secret["data"]["alertmanager.yml"]).decode() == "route: {}\n"
    assert plan.reload is not None and plan.reload.config_hash == common.config_hash("route: {}\n")

    user = make_ctx({"cluster": {"name": "c"}, "alertmanager": {"configSecret": "my-am"}})
    user_rendered = render(user)
    assert user_rendered.alertmanager is None
    cluster = FakeCluster()
    missing = alertmanager.plan(user, user_rendered, cluster.reader)
    assert all(o["kind"] != "Secret" for o in missing.objects)
    assert missing.reload is not None and missing.reload.config_hash == common.config_hash("")
    # The user's Secret is read through the reader: its content is what the pods reload.
    cluster.create({"apiVersion": "v1", "kind": "Secret",
                    "metadata": {"name": "my-am", "namespace": "ns"},
                    "data": {"alertmanager.yml": base64.b64encode(b"route: {receiver: x}\n").decode()}})
    found = alertmanager.plan(user, user_rendered, cluster.reader)
    assert found.reload is not None
    assert found.reload.config_hash == common.config_hash("route: {receiver: x}\n")
    assert found.reload.pod_urls == ["http://mon-alertmanager-0.mon-alertmanager-headless.ns.svc:9093"]
    volume = found.workload["spec"]["template"]["spec"]["volumes"][0]
    assert volume == {"name": "config", "secret": {"secretName": "my-am"}}


def test_every_plan_sets_its_workload_apart_and_names_what_it_keeps() -> None:
    ctx = make_ctx({"cluster": {"name": "cfs"}, "grafana": {"ingress": {"host": "g.example.com"}}})
    found = plans(ctx)
    assert list(found) == list(t.COMPONENTS)
    for component, plan in found.items():
        assert plan.workload["kind"] in ("StatefulSet", "Deployment")
        assert plan.workload["metadata"]["labels"]["app.kubernetes.io/component"] == component
        assert all(o["kind"] not in ("StatefulSet", "Deployment") for o in plan.objects)
        assert plan.wanted() == {(o["kind"], o["metadata"]["name"])
                                 for o in (*plan.objects, plan.workload, *plan.create_only)}
        assert plan.image == ctx.component(component)["image"]
        assert plan.endpoint.startswith("http://mon-")
    # Consul's and Grafana's configuration is not hot-reloaded; Grafana's generated admin
    # Secret is created once, and not at all when the user names one.
    assert found[t.CONSUL].reload is None and found[t.GRAFANA].reload is None
    assert [o["metadata"]["name"] for o in found[t.GRAFANA].create_only] == ["mon-grafana-admin"]
    own_admin = make_ctx({"cluster": {"name": "c"}, "grafana": {"adminSecret": "mine"}})
    assert plans(own_admin)[t.GRAFANA].create_only == []
    prom = found[t.PROMETHEUS]
    assert prom.reload is not None and prom.reload.config_hash == render(ctx, ("op.rook.svc:8080",)).prometheus.hash
    assert [o["kind"] for o in found[t.CONSUL].objects] == ["Service", "Service", "PodDisruptionBudget"]
    assert [o["kind"] for o in found[t.GRAFANA].objects] == ["ConfigMap"] * 3 + ["Service", "Ingress"]


def test_grafana_credentials_provisioning_and_kind() -> None:
    ctx = make_ctx()
    config = grafana.render_config(ctx)
    deploy = grafana.workload(ctx, config)
    assert deploy["kind"] == "Deployment"
    env = {e["name"]: e for e in container(deploy)["env"]}
    assert env["GF_SECURITY_ADMIN_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "mon-grafana-admin", "key": "admin-password"}
    assert "value" not in env["GF_SECURITY_ADMIN_PASSWORD"]
    mounts = {m["mountPath"] for m in container(deploy)["volumeMounts"]}
    assert {"/etc/grafana/provisioning/datasources", "/etc/grafana/provisioning/dashboards",
            grafana.DASHBOARDS_DIR} <= mounts
    annotations = deploy["spec"]["template"]["metadata"]["annotations"]
    assert annotations[common.ANNOTATION_CONFIG_HASH] == config.startup_hash
    maps = {m["metadata"]["name"]: m["data"] for m in grafana.config_maps(ctx, config)}
    assert "http://mon-prometheus.ns.svc:9090" in maps["mon-grafana-datasources"]["chubaofs.yaml"]
    assert grafana.DASHBOARDS_DIR in maps["mon-grafana-dashboard-provider"]["chubaofs.yaml"]
    assert len(maps["mon-grafana-dashboards"]) >= 3
    stored = make_ctx({"cluster": {"name": "c"}, "grafana": {"storage": {"size": "1Gi"},
                                                             "adminSecret": "mine"}})
    sts = grafana.workload(stored, grafana.render_config(stored))
    assert sts["kind"] == "StatefulSet" and sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    env = {e["name"]: e for e in container(sts)["env"]}
    assert env["GF_SECURITY_ADMIN_USER"]["valueFrom"]["secretKeyRef"]["name"] == "mine"


def test_generated_grafana_password_is_random() -> None:
    ctx = make_ctx()
    one, two = grafana.generated_admin_secret(ctx), grafana.generated_admin_secret(ctx)
    p1 = base64.b64decode(one["data"]["admin-password"]).decode()
    p2 = base64.b64decode(two["data"]["admin-password"]).decode()
    assert p1 != p2 and len(p1) >= 24
    assert base64.b64decode(one["data"]["admin-user"]).decode() == "admin"


def test_grafana_ingress() -> None:
    assert grafana.ingress(make_ctx()) is None
    ctx = make_ctx({"cluster": {"name": "c"}, "grafana": {"ingress": {
        "host": "grafana.example.com", "className": "nginx", "tlsSecret": "tls"}}})
    ing = grafana.ingress(ctx)
    assert ing is not None
    assert ing["spec"]["ingressClassName"] == "nginx"
    assert ing["spec"]["tls"] == [{"hosts": ["grafana.example.com"], "secretName": "tls"}]
    backend = ing["spec"]["rules"][0]["http"]["paths"][0]["backend"]
    assert backend == {"service": {"name": "mon-grafana", "port": {"number": 3000}}}
    env = {e["name"]: e.get("value") for e in container(grafana.workload(ctx, grafana.render_config(ctx)))["env"]}
    assert env["GF_SERVER_ROOT_URL"] == "https://grafana.example.com/"


def test_resources_come_from_the_spec() -> None:
    ctx = make_ctx({"cluster": {"name": "c"}, "prometheus": {"resources": {
        "requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"memory": "4Gi"}}}})
    assert container(prometheus.statefulset(ctx))["resources"] == {
        "requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"memory": "4Gi"}}
