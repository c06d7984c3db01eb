"""kubectl against an envtest Environment, exactly as against a cluster (issue 2, section 5).

Runs on either back end; what needs the simulated cluster (a Deployment becoming Available) is
marked ``emulator_only``. Every kubectl call has a timeout and its own discovery cache dir.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rook_py.envtest import Environment, emulator_only

KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed on this machine (looked in PATH)")

MANIFEST = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, listKind: WidgetList, shortNames: [wd]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
    - {name: Phase, type: string, jsonPath: .status.phase}
    - {name: Age, type: date, jsonPath: .metadata.creationTimestamp}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer, minimum: 1}
              color: {type: string, enum: [red, blue]}
          status:
            type: object
            properties:
              phase: {type: string}
---
apiVersion: v1
kind: Namespace
metadata:
  name: shop
  labels: {team: storage}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  labels: {app: web, tier: front}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: nginx
        image: nginx:1.25
        ports: [{containerPort: 80}]
---
apiVersion: example.com/v1
kind: Widget
metadata:
  name: blue-one
  namespace: shop
  labels: {color: blue}
spec:
  size: 3
  color: blue
"""


class Kubectl:
    def __init__(self, env: Environment, cache_dir: Path) -> None:
        self.env = env
        self.cache_dir = cache_dir

    def __call__(self, *args: str, stdin: str | None = None, timeout: float = 60, check: bool = True
                 ) -> subprocess.CompletedProcess[str]:
        assert KUBECTL is not None
        cmd = [KUBECTL, f"--kubeconfig={self.env.kubeconfig}", f"--cache-dir={self.cache_dir}", *args]
        result = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=timeout, check=False)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(args)} -> {result.returncode}\n{result.stdout}\n{result.stderr}")
        return result

    def env_run(self, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        """Run with extra environment variables (``EDITOR`` for ``kubectl edit``)."""
        import os

        assert KUBECTL is not None
        cmd = [KUBECTL, f"--kubeconfig={self.env.kubeconfig}", f"--cache-dir={self.cache_dir}", *args]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False,
                                env={**os.environ, **env})
        assert result.returncode == 0, f"{' '.join(args)} -> {result.returncode}\n{result.stdout}\n{result.stderr}"
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "-o", "json").stdout)

    def apply_manifest(self, manifest: str) -> subprocess.CompletedProcess[str]:
        """``apply -f`` a multi-document file; a custom resource in the same file as its CRD can
        miss its REST mapping on the first pass ("ensure CRDs are installed first"), exactly as on
        a cluster, so -- like users do -- wait for the CRD and apply once more."""
        first = self("apply", "-f", "-", stdin=manifest, check=False)
        if first.returncode == 0:
            return first
        assert "ensure CRDs are installed first" in first.stderr, first.stderr
        self("wait", "--for=condition=Established", "crd/widgets.example.com", "--timeout=30s")
        return self("apply", "-f", "-", stdin=manifest)


@pytest.fixture(scope="module")
def kubectl(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kubectl]:
    """One environment for the module (every kubectl run pays for discovery; tests use their own
    objects), on the back end the session selected, with the manifest applied once."""
    from rook_py.envtest.pytest_plugin import selected_backend

    with Environment(backend=selected_backend(request.config)) as env:
        k = Kubectl(env, tmp_path_factory.mktemp("kubectl-cache"))
        k.apply_manifest(MANIFEST)
        yield k


def test_apply_creates_every_document(kubectl: Kubectl) -> None:
    again = kubectl("apply", "-f", "-", stdin=MANIFEST)
    assert "widget.example.com/blue-one unchanged" in again.stdout
    assert "deployment.apps/web unchanged" in again.stdout
    assert "namespace/shop unchanged" in again.stdout
    names = kubectl("get", "crd/widgets.example.com", "ns/shop", "-o", "name").stdout.split()
    assert "customresourcedefinition.apiextensions.k8s.io/widgets.example.com" in names
    assert "namespace/shop" in names


def test_get_table_and_json(kubectl: Kubectl) -> None:
    table = kubectl("get", "deployments", "-n", "shop").stdout
    assert table.split("\n")[0].split()[:2] == ["NAME", "READY"]
    assert "web" in table
    dep = kubectl.json("get", "deployment", "web", "-n", "shop")
    assert dep["kind"] == "Deployment" and dep["apiVersion"] == "apps/v1"
    assert dep["spec"]["replicas"] == 2
    assert dep["metadata"]["generation"] == 1
    assert int(dep["metadata"]["resourceVersion"]) > 0
    # kubectl apply records the last-applied configuration, as against a cluster.
    assert "kubectl.kubernetes.io/last-applied-configuration" in dep["metadata"]["annotations"]
    listing = kubectl.json("get", "deployments", "-n", "shop")
    assert listing["kind"] == "List" and [i["metadata"]["name"] for i in listing["items"]] == ["web"]


def test_get_custom_resource_uses_printer_columns(kubectl: Kubectl) -> None:
    out = kubectl("get", "widgets", "-n", "shop").stdout.splitlines()
    assert out[0].split() == ["NAME", "SIZE", "PHASE", "AGE"]
    row = out[1].split()
    assert row[0] == "blue-one" and row[1] == "3"
    short = kubectl("get", "wd", "-n", "shop", "-o", "name").stdout.split()
    assert short == ["widget.example.com/blue-one"]


def _configmap(name: str, labels: dict[str, str]) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": name, "namespace": "shop", "labels": labels}, "data": {"k": "v"}})


def test_label_selectors(kubectl: Kubectl) -> None:
    # Built-in objects go through `apply` (JSON): kubectl's imperative `create configmap` sends
    # protobuf, which the emulator does not speak.
    for name, labels in (("a", {"env": "prod", "tier": "db"}), ("b", {"env": "dev", "tier": "db"}),
                         ("c", {"env": "dev"})):
        kubectl("apply", "-f", "-", stdin=_configmap(name, labels))

    def select(selector: str) -> list[str]:
        out = kubectl("get", "configmaps", "-n", "shop", "-l", selector, "-o", "name").stdout.split()
        return sorted(n.split("/", 1)[1] for n in out)

    assert select("env=dev") == ["b", "c"]
    assert select("env==prod") == ["a"]
    assert select("env!=prod,tier") == ["b"]
    assert select("env in (prod,staging)") == ["a"]
    assert select("tier notin (db),env") == ["c"]
    assert select("!tier,env") == ["c"]
    table = kubectl("get", "configmaps", "-n", "shop", "-l", "tier=db", "--show-labels").stdout
    assert "env=prod,tier=db" in table


def test_patch_merge_strategic_and_json(kubectl: Kubectl) -> None:
    widget = {"apiVersion": "example.com/v1", "kind": "Widget",
              "metadata": {"name": "patched", "namespace": "shop"}, "spec": {"size": 1, "color": "blue"}}
    kubectl("apply", "-f", "-", stdin=json.dumps(widget))
    kubectl("patch", "widget", "patched", "-n", "shop", "--type=merge", "-p", '{"spec":{"size":5}}')
    assert kubectl.json("get", "widget", "patched", "-n", "shop")["spec"]["size"] == 5
    kubectl("patch", "widget", "patched", "-n", "shop", "--type=json",
            "-p", '[{"op":"replace","path":"/spec/color","value":"red"}]')
    assert kubectl.json("get", "widget", "patched", "-n", "shop")["spec"] == {"size": 5, "color": "red"}
    # Strategic merge (kubectl's default for built-in kinds) merges containers by name.
    kubectl("patch", "deployment", "web", "-n", "shop",
            "-p", '{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"envoy:1"}]}}}}')
    containers = kubectl.json("get", "deployment", "web", "-n", "shop")["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["sidecar", "nginx"] or [c["name"] for c in containers] == [
        "nginx", "sidecar"]
    bad = kubectl("patch", "widget", "patched", "-n", "shop", "--type=merge", "-p", '{"spec":{"size":0}}',
                  check=False)
    assert bad.returncode != 0 and "Invalid" in bad.stderr + bad.stdout


def test_delete_then_not_found(kubectl: Kubectl) -> None:
    widget = {"apiVersion": "example.com/v1", "kind": "Widget",
              "metadata": {"name": "doomed", "namespace": "shop"}, "spec": {"size": 1}}
    kubectl("apply", "-f", "-", stdin=json.dumps(widget))
    out = kubectl("delete", "widget", "doomed", "-n", "shop").stdout
    assert 'widget.example.com "doomed" deleted' in out
    missing = kubectl("get", "widget", "doomed", "-n", "shop", check=False)
    assert missing.returncode == 1
    assert "NotFound" in missing.stderr and "doomed" in missing.stderr


def test_wait_for_crd_established(kubectl: Kubectl) -> None:
    out = kubectl("wait", "--for=condition=Established", "crd/widgets.example.com", "--timeout=30s").stdout
    assert "condition met" in out


@emulator_only(reason="a Deployment becomes Available only with the controller-manager and kubelets")
def test_wait_for_deployment_available(kubectl: Kubectl) -> None:
    out = kubectl("wait", "--for=condition=Available", "deployment/web", "-n", "shop", "--timeout=60s").stdout
    assert "condition met" in out
    dep = kubectl.json("get", "deployment", "web", "-n", "shop")
    assert dep["status"]["readyReplicas"] == 2
    pods = kubectl("get", "pods", "-n", "shop", "-l", "app=web", "-o", "name").stdout.split()
    assert len(pods) == 2


def test_imperative_create_label_annotate(kubectl: Kubectl) -> None:
    # kubectl's generators send protobuf for these kinds; the emulator decodes them.
    kubectl("create", "namespace", "imperative")
    kubectl("create", "configmap", "settings", "-n", "imperative", "--from-literal=mode=fast")
    kubectl("create", "secret", "generic", "creds", "-n", "imperative", "--from-literal=password=s3cret")
    kubectl("label", "configmap", "settings", "-n", "imperative", "tier=cache")
    kubectl("annotate", "configmap", "settings", "-n", "imperative", "note=hello")
    cm = kubectl.json("get", "configmap", "settings", "-n", "imperative")
    assert cm["data"] == {"mode": "fast"}
    assert cm["metadata"]["labels"] == {"tier": "cache"}
    assert cm["metadata"]["annotations"]["note"] == "hello"
    secret = kubectl.json("get", "secret", "creds", "-n", "imperative")
    assert secret["type"] == "Opaque" and secret["data"] == {"password": "czNjcmV0"}


@emulator_only(reason="rollouts need the Deployment controller and kubelets")
def test_scale_rollout_status_and_undo(kubectl: Kubectl) -> None:
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "roll", "namespace": "shop"},
           "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "roll"}},
                    "template": {"metadata": {"labels": {"app": "roll"}},
                                 "spec": {"containers": [{"name": "c", "image": "app:1"}]}}}}
    kubectl("apply", "-f", "-", stdin=json.dumps(dep))
    kubectl("scale", "deployment", "roll", "-n", "shop", "--replicas=3")
    assert "successfully rolled out" in kubectl("rollout", "status", "deployment/roll", "-n", "shop",
                                                "--timeout=60s").stdout
    kubectl("set", "image", "deployment/roll", "-n", "shop", "c=app:2")
    kubectl("rollout", "status", "deployment/roll", "-n", "shop", "--timeout=60s")
    history = kubectl("rollout", "history", "deployment/roll", "-n", "shop").stdout
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["1", "2"]
    kubectl("rollout", "undo", "deployment/roll", "-n", "shop")
    kubectl("rollout", "status", "deployment/roll", "-n", "shop", "--timeout=60s")
    pods = kubectl.json("get", "pods", "-n", "shop", "-l", "app=roll")["items"]
    assert len(pods) == 3 and {p["spec"]["containers"][0]["image"] for p in pods} == {"app:1"}
    assert len(kubectl.json("get", "replicasets", "-n", "shop", "-l", "app=roll")["items"]) == 2


def test_get_watch_with_timeout_sees_new_objects(kubectl: Kubectl) -> None:
    assert KUBECTL is not None
    cmd = [KUBECTL, f"--kubeconfig={kubectl.env.kubeconfig}", f"--cache-dir={kubectl.cache_dir}", "get",
           "configmaps", "-n", "shop", "-w", "--request-timeout=1s", "-o", "name"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        time.sleep(0.3)  # let the watch open; objects created before it would show up as the initial list
        kubectl("apply", "-f", "-", stdin=_configmap("watched", {"w": "1"}))
        proc.wait(timeout=30)  # --request-timeout ends the watch on its own
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(5)
    assert "configmap/watched\n" in lines


# --- kubectl's defaults: OpenAPI, server-side field validation, protobuf (issue 13) ---------------

def test_explain_nested_fields_of_builtin_and_custom_kinds(kubectl: Kubectl) -> None:
    ports = kubectl("explain", "deployment.spec.template.spec.containers.ports").stdout
    assert "FIELD: ports <[]ContainerPort>" in ports and "containerPort\t<integer> -required-" in ports
    size = kubectl("explain", "widgets.spec.size").stdout
    assert "KIND:       Widget" in size and "FIELD: size <integer>" in size
    # kubectl's OpenAPI v2 path (the protobuf document) answers the same question
    v2 = kubectl("explain", "--output=plaintext-openapiv2", "deployment.spec.replicas").stdout
    assert "FIELD:    replicas <integer>" in v2


def test_strict_field_validation_is_kubectls_default(kubectl: Kubectl) -> None:
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "strict", "namespace": "shop"},
              "spec": {"size": 1, "bogus": 2}, "top": 1}
    strict = kubectl("create", "-f", "-", stdin=json.dumps(widget), check=False)
    assert strict.returncode == 1
    assert ('Widget in version "v1" cannot be handled as a Widget: strict decoding error: '
            'unknown field "spec.bogus", unknown field "top"') in strict.stderr
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "strict", "namespace": "shop"},
           "spec": {"selector": {"matchLabels": {"app": "s"}},
                    "template": {"metadata": {"labels": {"app": "s"}},
                                 "spec": {"containers": [{"name": "c", "image": "x", "bogus": 1}]}}}}
    strict = kubectl("create", "-f", "-", stdin=json.dumps(dep), check=False)
    assert 'unknown field "spec.template.spec.containers[0].bogus"' in strict.stderr
    warned = kubectl("create", "--validate=warn", "-f", "-", stdin=json.dumps(dep))
    assert 'Warning: unknown field "spec.template.spec.containers[0].bogus"' in warned.stderr
    stored = kubectl.json("get", "deployment", "strict", "-n", "shop")
    assert "bogus" not in stored["spec"]["template"]["spec"]["containers"][0]  # dropped, never stored


def test_create_deployment_replace_edit_diff(kubectl: Kubectl, tmp_path: Path) -> None:
    kubectl("create", "deployment", "gen", "-n", "shop", "--image=nginx:1", "--port=80", "--replicas=2")
    kubectl("create", "service", "clusterip", "gen", "-n", "shop", "--tcp=80:8080")
    dep = kubectl.json("get", "deployment", "gen", "-n", "shop")
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert dep["spec"]["replicas"] == 2 and container["image"] == "nginx:1"
    assert container["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert kubectl.json("get", "service", "gen", "-n", "shop")["spec"]["ports"][0]["targetPort"] == 8080
    dep["spec"]["replicas"] = 3
    kubectl("replace", "-f", "-", stdin=json.dumps(dep))
    assert kubectl.json("get", "deployment", "gen", "-n", "shop")["spec"]["replicas"] == 3
    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\nsed -i 's/nginx:1/nginx:2/' \"$1\"\n")
    editor.chmod(0o755)
    edited = kubectl.env_run(["edit", "deployment", "gen", "-n", "shop"], {"EDITOR": str(editor)})
    assert "deployment.apps/gen edited" in edited.stdout
    image = kubectl.json("get", "deployment", "gen", "-n", "shop")["spec"]["template"]["spec"]["containers"][0]
    assert image["image"] == "nginx:2"
    current = kubectl.json("get", "deployment", "gen", "-n", "shop")
    current["spec"]["replicas"] = 4
    diff = kubectl("diff", "-f", "-", stdin=json.dumps(current), check=False)
    assert diff.returncode == 1, diff.stderr  # 1: differences found
    assert "-  replicas: 3" in diff.stdout and "+  replicas: 4" in diff.stdout


def test_server_side_apply_conflicts_force_and_managed_fields(kubectl: Kubectl) -> None:
    kubectl("create", "deployment", "ssa", "-n", "shop", "--image=nginx:1")
    manifest = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "ssa", "namespace": "shop"},
                "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "ssa"}},
                         "template": {"metadata": {"labels": {"app": "ssa"}},
                                      "spec": {"containers": [{"name": "nginx", "image": "nginx:2"}]}}}}
    conflict = kubectl("apply", "--server-side", "-f", "-", stdin=json.dumps(manifest), check=False)
    assert conflict.returncode == 1
    assert 'Apply failed with 2 conflicts: conflicts with "kubectl-create" using apps/v1:' in conflict.stderr
    assert '- .spec.template.spec.containers[name="nginx"].image' in conflict.stderr
    forced = kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", stdin=json.dumps(manifest))
    assert "deployment.apps/ssa serverside-applied" in forced.stdout
    shown = kubectl.json("get", "deployment", "ssa", "-n", "shop", "--show-managed-fields")
    entries = {(e["manager"], e["operation"]): e["fieldsV1"] for e in shown["metadata"]["managedFields"]}
    assert entries[("kubectl", "Apply")]["f:spec"]["f:replicas"] == {}
    assert "f:replicas" not in entries[("kubectl-create", "Update")].get("f:spec", {})
    assert shown["spec"]["replicas"] == 3
    assert "managedFields" not in kubectl.json("get", "deployment", "ssa", "-n", "shop")["metadata"]
    # diff against the server's dry run of the same apply: no difference
    same = kubectl("diff", "--server-side", "-f", "-", stdin=json.dumps(manifest), check=False)
    assert same.returncode == 0, same.stdout + same.stderr
