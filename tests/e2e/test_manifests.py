"""manifests/: fresh, applicable with kubectl, and RBAC that is exactly what the operator uses."""

from __future__ import annotations

import importlib.util
import shutil
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import pytest
import yaml

from rook_py.chubaofs.api import types as t
from rook_py.chubaofs.provider import ChubaoFSProvider
from rook_py.chubaofs.settings import ChubaoFSSettings
from rook_py.framework.client import errors
from rook_py.framework.operator import run_operator, user_agent
from rook_py.framework.provider import OperatorSettings
from tests.support.waiting import eventually

JSON = dict[str, Any]
#: a label the operator puts on everything it applies (drifted by hand in the upgrade step)
DRIFT_LABEL = "app.kubernetes.io/managed-by"
T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "manifests"
NS = "rook-chubaofs"
OWNED_RESOURCES = [("apps/v1", "statefulsets"), ("apps/v1", "deployments"), ("v1", "services"), ("v1", "configmaps"),
                   ("v1", "secrets"), ("policy/v1", "poddisruptionbudgets"), ("networking.k8s.io/v1", "ingresses")]
KUBECTL = shutil.which("kubectl")


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_manifests", ROOT / "scripts" / "gen_manifests.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def docs(name: str) -> list[JSON]:
    return [d for d in yaml.safe_load_all((MANIFESTS / name).read_text()) if d]


def wait_for(what: str, fn: Callable[[], T | None], timeout: float = 30.0) -> T:
    """``eventually`` at this suite's pace; any API error (an injected fault included) means "not yet"."""
    return eventually(fn, timeout, interval=0.05, ignore=(errors.ApiError,), what=what)


# -- freshness and shape ------------------------------------------------------------------------

def test_committed_manifests_are_not_stale() -> None:
    stale = load_generator().stale()
    assert stale == [], f"stale generated files {stale}: run `make manifests` and commit the result"


def test_staleness_is_detected(tmp_path: Path) -> None:
    gen = load_generator()
    for rel, text in gen.render().items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    assert gen.stale(tmp_path) == []
    (tmp_path / "manifests" / "common.yaml").write_text("# edited by hand\n")
    (tmp_path / "Dockerfile").unlink()
    assert gen.stale(tmp_path) == ["manifests/common.yaml", "Dockerfile"]


def test_rbac_has_no_wildcards() -> None:
    for doc in docs("common.yaml"):
        for rule in doc.get("rules") or []:
            for field in ("apiGroups", "resources", "verbs", "resourceNames"):
                assert "*" not in (rule.get(field) or []), (doc["metadata"]["name"], rule)


def test_operator_deployment_contract() -> None:
    deployment, service, webhook_service, mutating, validating = docs("operator.yaml")
    assert deployment["kind"] == "Deployment" and deployment["spec"]["replicas"] == 1
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["name"] == "rook-chubaofs-operator" and container["args"] == ["chubaofs", "operator"]
    env = {e["name"]: e for e in container["env"]}
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert service["metadata"]["name"] == "rook-chubaofs-operator"
    assert service["spec"]["ports"][0] == {"name": "metrics", "port": 8080, "targetPort": "metrics",
                                           "protocol": "TCP"}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["webhook"] == 9443
    assert webhook_service["spec"]["ports"] == [{"name": "webhook", "port": 443, "targetPort": "webhook",
                                                 "protocol": "TCP"}]
    for config in (mutating, validating):
        (hook,) = config["webhooks"]
        assert hook["clientConfig"]["service"]["name"] == webhook_service["metadata"]["name"]
        assert hook["namespaceSelector"]["matchExpressions"][0]["values"] == [NS]


def test_dockerfile() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert "python:3.11-slim" in text and "USER 10001" in text
    assert text.rstrip().endswith('ENTRYPOINT ["rook"]')


def test_every_monitor_field_is_commented() -> None:
    for line in (MANIFESTS / "monitor.yaml").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#") and line.strip() not in ("spec:", "metadata:") \
                and not line.startswith("kind:"):
            assert "#" in line, f"monitor.yaml line without a comment: {line!r}"


# -- kubectl apply ------------------------------------------------------------------------------

@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed on this machine (looked in PATH)")
def test_every_manifest_applies_with_kubectl(envtest: Any, tmp_path: Path) -> None:
    def kubectl(*args: str) -> str:
        assert KUBECTL is not None
        result = subprocess.run([KUBECTL, f"--kubeconfig={envtest.kubeconfig}", f"--cache-dir={tmp_path}", *args],
                                capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stdout}\n{result.stderr}"
        return result.stdout

    for name in ("crds.yaml", "common.yaml", "operator.yaml"):
        kubectl("apply", "--validate=false", "-f", str(MANIFESTS / name))
    kubectl("wait", "--for=condition=Established", f"crd/{t.CRD_NAME}", "--timeout=30s")
    kubectl("apply", "--validate=false", "-f", str(MANIFESTS / "monitor.yaml"))
    client = envtest.client()
    assert client.get("apps/v1", "Deployment", "rook-chubaofs-operator", NS)
    assert client.get("rbac.authorization.k8s.io/v1", "ClusterRole", "rook-chubaofs-operator")
    monitor = client.get(t.API_VERSION, t.KIND, "chubaofs-monitor", NS)
    assert monitor["spec"]["cluster"]["name"] == "mycluster"
    # Applying again changes nothing (the files are idempotent).
    out = kubectl("apply", "--validate=false", "-f", str(MANIFESTS / "common.yaml"))
    assert "configured" not in out and "created" not in out


# -- RBAC recorded against real calls -----------------------------------------------------------

class NoReload:
    def reload(self, base_urls: Any) -> list[str]:
        return []


@dataclass(frozen=True)
class Call:
    """One API call as the RBAC authorizer sees it (upstream ``authorizer.Attributes``)."""

    group: str     # "" is the core group (/api/v1)
    resource: str  # resource[/subresource]
    verb: str
    name: str      # "" on a collection: create, an unpinned list/watch, deletecollection
    namespace: str = ""  # "" for a cluster-scoped resource, or a list/watch across namespaces

    def __str__(self) -> str:
        return (f"{self.verb} {self.resource}.{self.group or 'core'}" + (f" named {self.name!r}" if self.name else "")
                + (f" in {self.namespace}" if self.namespace else " cluster-wide"))


@dataclass(frozen=True)
class Rule:
    """One PolicyRule, matched as upstream ``RuleAllows`` matches a resource request
    (kubernetes/kubernetes plugin/pkg/auth/authorizer/rbac/rbac.go, helpers in
    pkg/apis/rbac/v1/evaluation_helpers.go): verb, group, resource (exact, ``*``, or ``*/sub``)
    and, when the rule lists resourceNames, the request's name. A collection request has no name,
    so resourceNames never allow a create or an unpinned list/watch/deletecollection.
    ``namespace`` is where a RoleBinding grants the rule (None: a ClusterRoleBinding, everywhere);
    a RoleBinding's rules never allow a cluster-scoped or all-namespaces request (rbac.go
    ``VisitRulesFor``: RoleBindings are consulted only for the request's own namespace)."""

    api_groups: frozenset[str]
    resources: frozenset[str]
    verbs: frozenset[str]
    resource_names: frozenset[str] = frozenset()
    namespace: str | None = None

    @classmethod
    def of(cls, doc: JSON, namespace: str | None = None) -> Rule:
        return cls(*(frozenset(doc.get(f) or ()) for f in ("apiGroups", "resources", "verbs", "resourceNames")),
                   namespace=namespace)

    def allows(self, call: Call) -> bool:
        subresource = call.resource.partition("/")[2]
        return ((self.namespace is None or call.namespace == self.namespace)
                and ("*" in self.verbs or call.verb in self.verbs)
                and ("*" in self.api_groups or call.group in self.api_groups)
                and any(r in ("*", call.resource) or (subresource and r == f"*/{subresource}")
                        for r in self.resources)
                and (not self.resource_names or call.name in self.resource_names))

    def grants(self) -> Iterator[Rule]:
        """The rule split into one rule per (group, resource, verb[, name]): each is a permission
        that has to be used for the rule to be least-privilege."""
        for group in sorted(self.api_groups):
            for resource in sorted(self.resources):
                for verb in sorted(self.verbs):
                    for names in [frozenset({n}) for n in sorted(self.resource_names)] or [frozenset()]:
                        yield Rule(frozenset({group}), frozenset({resource}), frozenset({verb}), names,
                                   self.namespace)

    def __str__(self) -> str:
        def join(values: frozenset[str]) -> str:
            return ",".join(sorted(v or "core" for v in values))

        names = f" resourceNames={sorted(self.resource_names)}" if self.resource_names else ""
        where = f" in {self.namespace}" if self.namespace is not None else ""
        return f"{join(self.verbs)} {join(self.resources)}.{join(self.api_groups)}{names}{where}"


def rules_for(service_account: str) -> list[Rule]:
    """Every rule common.yaml binds to the service account; a RoleBinding's only in its namespace."""
    roles = {(d["kind"], d["metadata"]["name"]): d for d in docs("common.yaml") if d["kind"] in ("Role", "ClusterRole")}
    out: list[Rule] = []
    for d in docs("common.yaml"):
        if d["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        if not any(s["kind"] == "ServiceAccount" and s["name"] == service_account and s.get("namespace") == NS
                   for s in d["subjects"]):
            continue
        scope = d["metadata"]["namespace"] if d["kind"] == "RoleBinding" else None
        out += [Rule.of(rule, scope) for rule in roles[(d["roleRef"]["kind"], d["roleRef"]["name"])]["rules"]]
    return out


def calls_by(envtest: Any, account: str) -> set[Call]:
    """The calls the emulator answered for User-Agents starting with ``account``."""
    return {Call(row["group"], row["resource"] + (f"/{row['subresource']}" if row["subresource"] else ""),
                 row["verb"], row["name"], row["namespace"])
            for row in envtest.stats.snapshot(by_name=True) if row["userAgent"].startswith(account)}


def assert_rbac_is_exact(service_account: str, calls: set[Call]) -> None:
    """Every call is allowed by some rule, and every permission a rule spells out allowed some call."""
    rules = rules_for(service_account)
    assert rules, f"common.yaml binds no rules to {service_account}"
    denied = sorted(str(c) for c in calls if not any(rule.allows(c) for rule in rules))
    assert denied == [], f"{service_account}: calls common.yaml does not allow: {denied}"
    unused = sorted({str(g) for rule in rules for g in rule.grants() if not any(g.allows(c) for c in calls)}
                    - NOT_REACHED_BY_THIS_RUN)
    assert unused == [], f"{service_account}: granted but never used: {unused}"


#: grants for paths the install/upgrade/uninstall run cannot reach in minutes: renewing the
#: self-managed webhook certificate (an update of its Secret, days before it expires)
NOT_REACHED_BY_THIS_RUN = frozenset({"update secrets.core resourceNames=['rook-chubaofs-webhook-cert'] in rook-chubaofs"})


def test_rule_matching_follows_upstream_rbac() -> None:
    named = Rule.of({"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "list"],
                     "resourceNames": ["lock"]})
    assert named.allows(Call("coordination.k8s.io", "leases", "get", "lock"))
    assert not named.allows(Call("coordination.k8s.io", "leases", "get", "other"))
    # resourceNames never allow a request on the collection, which has no name
    assert not named.allows(Call("coordination.k8s.io", "leases", "create", ""))
    assert not named.allows(Call("coordination.k8s.io", "leases", "list", ""))
    # ...but a list pinned to one name by a field selector carries that name (requestinfo.go)
    assert named.allows(Call("coordination.k8s.io", "leases", "list", "lock"))
    events = Rule.of({"apiGroups": [""], "resources": ["events"], "verbs": ["create"]})
    assert events.allows(Call("", "events", "create", ""))
    assert not events.allows(Call("events.k8s.io", "events", "create", ""))  # same resource, other group
    assert not events.allows(Call("", "events/status", "create", ""))  # a subresource is its own resource
    status = Rule.of({"apiGroups": ["*"], "resources": ["*/status"], "verbs": ["*"]})
    assert status.allows(Call("apps", "deployments/status", "update", "d"))
    assert not status.allows(Call("apps", "deployments", "update", "d"))
    assert [str(g) for g in named.grants()] == [f"{v} leases.coordination.k8s.io resourceNames=['lock']"
                                                for v in ("create", "get", "list")]
    assert [str(g) for g in events.grants()] == ["create events.core"]
    # A RoleBinding grants its rules in its own namespace only, never cluster-wide.
    local = Rule.of({"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}, "rook")
    assert local.allows(Call("", "configmaps", "get", "x", "rook"))
    assert not local.allows(Call("", "configmaps", "get", "x", "other"))
    assert not local.allows(Call("", "configmaps", "list", "", ""))  # a list across all namespaces
    assert Rule.of({"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}).allows(
        Call("", "configmaps", "list", "", ""))
    assert [str(g) for g in local.grants()] == ["get configmaps.core in rook", "list configmaps.core in rook"]


@pytest.fixture
def installed(envtest: Any) -> Iterator[Any]:
    """crds.yaml and common.yaml applied as the cluster admin (what `kubectl apply` does)."""
    admin = envtest.client()
    envtest.install_crds(docs("crds.yaml"))
    for doc in docs("common.yaml"):
        admin.create(doc)
    yield admin


@pytest.mark.emulator_only(reason="per-client request statistics (User-Agent, verb, resource, name, namespace)")
def test_rbac_is_exactly_what_the_operator_uses(envtest: Any, installed: Any) -> None:
    admin = installed
    envtest.stats.reset()

    def run(image: str, **node_daemons: bool) -> tuple[threading.Event, threading.Thread]:
        settings = OperatorSettings(provider="chubaofs", namespace=NS, image=image, install_crds=False,
                                    lease_duration=2.0, renew_deadline=1.0, retry_period=0.2,
                                    metrics_bind_address="0", health_probe_bind_address="0",
                                    graceful_shutdown_timeout=5.0,
                                    pod_name="rook-chubaofs-operator-0",
                                    webhook_url=f"https://127.0.0.1:{webhook_port}", webhook_port=webhook_port,
                                    provider_settings=ChubaoFSSettings(reload_settle=0.0, **node_daemons))
        stop = threading.Event()
        client = envtest.client(user_agent=user_agent("chubaofs"))
        thread = threading.Thread(target=run_operator, args=(ChubaoFSProvider(reloader=NoReload()), settings),
                                  kwargs={"client": client, "stop": stop}, daemon=True)
        thread.start()
        return stop, thread

    def finish(stop: threading.Event, thread: threading.Thread) -> None:
        stop.set()
        thread.join(30)
        assert not thread.is_alive()

    def phase(generation: int | None = None) -> Callable[[], bool]:
        def check() -> bool:
            status = admin.get(t.API_VERSION, t.KIND, "chubaofs-monitor", NS).get("status") or {}
            return status.get("phase") == t.PHASE_READY and (
                generation is None or status.get("observedGeneration") == generation)
        return check

    # Its webhook configurations (the operator injects its CA bundle and, out of cluster, its URL).
    for doc in docs("operator.yaml"):
        if doc["kind"].endswith("WebhookConfiguration"):
            admin.create(doc)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        webhook_port = probe.getsockname()[1]

    # The operator's own Pod (image lookup through POD_NAME).
    admin.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "rook-chubaofs-operator-0", "namespace": NS},
                  "spec": {"containers": [{"name": "rook-chubaofs-operator", "image": "rook-py:1"}]}})

    # Install: the example monitor, plus an Ingress so every owned kind exists once.
    stop, thread = run("")
    monitor = docs("monitor.yaml")[0]
    monitor["spec"]["grafana"]["ingress"] = {"host": "grafana.example.com"}
    admin.create(monitor)
    wait_for("monitor Ready", phase(), 60)
    finish(stop, thread)

    # Upgrade: a new operator image (DaemonSets roll), a bigger Prometheus volume (PVC patch),
    # Grafana and Alertmanager turned off (owned objects deleted).
    stop, thread = run("rook-py:2")
    wait_for("daemonsets rolled", lambda: admin.get("apps/v1", "DaemonSet", "rook-discover", NS)["spec"][
        "template"]["spec"]["containers"][0]["image"] == "rook-py:2")
    # Every owned kind drifts once (a label the operator applies is removed behind its back,
    # through the in-process API so no fault hits the admin) and the operator's first write
    # meets a conflict: the apply is sent again, as after any race.
    local = envtest.server.local
    for api_version, resource in OWNED_RESOURCES:
        obj = local.list(api_version, resource, NS, label_selector="app.kubernetes.io/instance=chubaofs-monitor")["items"][0]
        envtest.faults.fail_next(1, 409, verb="patch", resource=resource)
        labels = dict(obj["metadata"].get("labels") or {})
        labels.pop(DRIFT_LABEL)
        obj["metadata"]["labels"] = labels
        local.update(api_version, resource, obj)
        name = obj["metadata"]["name"]
        wait_for(f"{resource}/{name} restored", lambda: DRIFT_LABEL in (
            local.get(api_version, resource, name, NS)["metadata"].get("labels") or {}))  # noqa: B023
    live = admin.get(t.API_VERSION, t.KIND, "chubaofs-monitor", NS)
    live["spec"]["prometheus"]["storage"]["size"] = "30Gi"
    live["spec"]["grafana"]["enabled"] = False
    live["spec"]["alertmanager"]["enabled"] = False
    updated = admin.update(live)
    wait_for("upgrade settled", phase(updated["metadata"]["generation"]), 60)

    # Uninstall: delete the monitor with data, then the node daemons go with their switches.
    live = admin.get(t.API_VERSION, t.KIND, "chubaofs-monitor", NS)
    live["spec"]["cleanupPolicy"] = {"deleteData": True, "confirmation": t.DESTROY_DATA_CONFIRMATION}
    admin.update(live)
    admin.delete(t.API_VERSION, t.KIND, "chubaofs-monitor", NS)

    def gone() -> bool:
        try:
            admin.get(t.API_VERSION, t.KIND, "chubaofs-monitor", NS)
        except errors.NotFound:
            return True
        return False

    wait_for("monitor deleted", gone, 60)
    finish(stop, thread)
    stop, thread = run("rook-py:2", enable_agent=False, enable_discovery_daemon=False)
    wait_for("daemonsets removed", lambda: not admin.list("apps/v1", "DaemonSet", NS)["items"])
    finish(stop, thread)

    assert_rbac_is_exact("rook-chubaofs-operator", calls_by(envtest, user_agent("chubaofs")))


@pytest.mark.emulator_only(reason="per-client request statistics (User-Agent, verb, resource, name, namespace)")
def test_rbac_of_the_node_daemons_is_exactly_what_they_use(envtest: Any, installed: Any, tmp_path: Path) -> None:
    """rook discover and rook chubaofs agent, each with the User-Agent its command sets."""
    from rook_py.chubaofs.agent.agent import Agent, AgentConfig
    from rook_py.chubaofs.agent.metrics import NodeCollector
    from rook_py.framework.daemons.discover import DiscoverDaemon, device

    admin = installed
    admin.create({"apiVersion": t.API_VERSION, "kind": t.KIND, "metadata": {"name": "m", "namespace": NS},
                  "spec": {"cluster": {"name": "c"}, "consul": {"externalAddress": "127.0.0.1:1"}}})
    envtest.stats.reset()
    names = ["sda"]
    daemon = DiscoverDaemon(envtest.client(user_agent="rook-discover"), "node-1", NS,
                            lister=lambda: [device(n) for n in names])
    assert daemon.scan_once() == "created"
    names.append("sdb")
    assert daemon.scan_once() == "updated"
    agent = Agent(AgentConfig(node="node-1", namespace=NS, advertise_address="127.0.0.1", monitor=f"{NS}/m"),
                  NodeCollector("node-1", sys_root=str(tmp_path)), envtest.client(user_agent="rook-chubaofs-agent"))
    agent.tick()
    assert set(agent.collector.known_disks()) == {"sda", "sdb"}
    for account in ("rook-discover", "rook-chubaofs-agent"):
        assert_rbac_is_exact(account, calls_by(envtest, account))
