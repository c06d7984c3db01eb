"""Environment (both back ends), the real control plane's process handling, serve, remote control, plugin."""

from __future__ import annotations

import ast
import base64
import json
import signal
import ssl
import subprocess
import sys
import textwrap
import threading
import urllib.request
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml

from rook_py.envtest import Environment, EnvtestStartError, resolve_backend
from rook_py.envtest.realcluster import (
    ControlPlaneError,
    apiserver_args,
    etcd_args,
    find_binaries,
    localhost_certificates,
)
from rook_py.envtest.serve import serve
from rook_py.framework.client import errors
from tests.envtest import fake_binaries
from tests.envtest.cluster_support import eventually

REPO = Path(__file__).resolve().parents[2]

CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {"group": "example.com", "scope": "Namespaced",
             "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
             "versions": [{"name": "v1", "served": True, "storage": True,
                           "schema": {"openAPIV3Schema": {"type": "object",
                                                          "x-kubernetes-preserve-unknown-fields": True}}}]},
}


def _core(env: Environment) -> Any:
    return kubernetes.client.CoreV1Api(kubernetes.client.ApiClient(env.k8s_configuration()))


@pytest.fixture
def assets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "assets").mkdir()
    folder = fake_binaries.install(tmp_path / "assets")
    record = tmp_path / "record"
    record.mkdir()
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(folder))
    monkeypatch.setenv("FAKE_RECORD_DIR", str(record))
    return record


# --- backend selection ----------------------------------------------------------------------------

def test_backend_resolution(tmp_path: Path) -> None:
    assert resolve_backend(None, {}) == "emulator"
    assert resolve_backend("auto", {"KUBEBUILDER_ASSETS": str(tmp_path)}) == "emulator"  # empty folder
    fake_binaries.install(tmp_path)
    assert resolve_backend(None, {"KUBEBUILDER_ASSETS": str(tmp_path)}) == "real"
    assert resolve_backend("emulator", {"KUBEBUILDER_ASSETS": str(tmp_path)}) == "emulator"
    with pytest.raises(EnvtestStartError, match="KUBEBUILDER_ASSETS"):
        resolve_backend("real", {})
    with pytest.raises(ValueError, match="unknown envtest backend"):
        resolve_backend("kind", {})
    assert find_binaries({"KUBEBUILDER_ASSETS": str(tmp_path)}) is not None


# --- emulator, in process -------------------------------------------------------------------------

def test_in_process_environment_serves_official_client_and_cleans_up() -> None:
    with Environment(backend="emulator", nodes=2) as env:
        assert env.backend == "emulator"
        assert env.url.startswith(("http://127.0.0.1:", "https://127.0.0.1:"))
        config = yaml.safe_load(Path(env.kubeconfig).read_text())
        assert config["users"][0]["user"]["token"] == env.token
        assert env.cluster is not None
        nodes = eventually(lambda: sorted(n.metadata.name for n in _core(env).list_node().items) or None)
        assert nodes == ["envtest-worker", "envtest-worker2"]
        configuration = env.k8s_configuration()
        assert configuration.host == env.url
        folder = Path(env.kubeconfig).parent
    assert not folder.exists()
    assert env.cluster is None and env.server is None


def test_framework_client_from_environment() -> None:
    with Environment(backend="emulator", nodes=1) as env:
        c = env.client(user_agent="envtest-test")
        assert c.get("v1", "Namespace", "default")["metadata"]["name"] == "default"
        eventually(lambda: [n["metadata"]["name"] for n in c.list("v1", "Node")["items"]] == ["envtest-worker"],
                   what="node through the framework client")
        assert env.stats.count(user_agent="envtest-test", verb="get", resource="namespaces") == 1


def test_explicit_node_specs() -> None:
    from rook_py.envtest import NodeSpec

    nodes = [NodeSpec("storage-0", labels={"rook.io/storage": "true"}),
             NodeSpec("infra-0", taints=[{"key": "infra", "effect": "NoSchedule"}], unschedulable=True)]
    with Environment(backend="emulator", nodes=nodes) as env:
        got = eventually(lambda: {n.metadata.name: n for n in _core(env).list_node().items} or None)
        assert got["storage-0"].metadata.labels["rook.io/storage"] == "true"
        assert got["infra-0"].spec.unschedulable is True
        assert got["infra-0"].spec.taints[0].key == "infra"


def test_without_simulated_cluster_there_are_no_nodes() -> None:
    with Environment(backend="emulator", simulate_cluster=False) as env:
        assert env.cluster is None
        assert _core(env).list_node().items == []
        with pytest.raises(RuntimeError, match="without the simulated cluster"):
            env.set_pod_mode("default", "x", "ready")


def test_faults_and_stats_in_process() -> None:
    with Environment(backend="emulator", simulate_cluster=False) as env:
        env.faults.fail_next(1, 503, verb="get", resource="namespaces")
        with pytest.raises(kubernetes.client.ApiException) as info:
            _core(env).read_namespace("default")
        assert info.value.status == 503
        assert _core(env).read_namespace("default").metadata.name == "default"
        assert env.stats.count(verb="get", resource="namespaces", code=200) >= 1


def test_install_crds_waits_for_established_and_is_idempotent() -> None:
    with Environment(simulate_cluster=False, crds=[CRD]) as env:
        again = env.install_crds([CRD])
        conds = {c["type"]: c["status"] for c in again[0]["status"]["conditions"]}
        assert conds["Established"] == "True"
        custom = kubernetes.client.CustomObjectsApi(kubernetes.client.ApiClient(env.k8s_configuration()))
        custom.create_namespaced_custom_object("example.com", "v1", "default", "widgets",
                                               {"apiVersion": "example.com/v1", "kind": "Widget",
                                                "metadata": {"name": "w"}, "spec": {"size": 1}})
        assert custom.get_namespaced_custom_object("example.com", "v1", "default", "widgets", "w")["spec"] == {"size": 1}


def test_pod_hooks_over_http_control_endpoint() -> None:
    with Environment(backend="emulator", nodes=1, pod_ready_delay=0.01) as env:
        core = _core(env)
        core.create_namespaced_pod("default", {"metadata": {"name": "p"},
                                               "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
        eventually(lambda: _is_ready(core.read_namespaced_pod("p", "default")), what="ready")
        env.http.request("POST", "/envtest/v1/pods/default/p/notready", {})
        eventually(lambda: not _is_ready(core.read_namespaced_pod("p", "default")), what="not ready")
        with pytest.raises(errors.BadRequest):
            env.http.request("POST", "/envtest/v1/pods/default/p/exploded", {})
        with pytest.raises(errors.NotFound):
            env.http.request("POST", "/envtest/v1/pods/default/ghost/ready", {})
        env.http.request("POST", "/envtest/v1/nodes/envtest-worker/notready", {})
        eventually(lambda: not _is_ready(core.read_namespaced_pod("p", "default")), what="node down")
        with pytest.raises(errors.NotFound):
            env.http.request("POST", "/envtest/v1/nodes/no-such-node/ready", {})


def _is_ready(pod: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in (pod.status.conditions or []))


# --- emulator in a subprocess, and serve ----------------------------------------------------------

def test_subprocess_emulator_with_remote_faults_stats_and_pod_hooks() -> None:
    with Environment(backend="emulator", nodes=1, in_process=False, pod_ready_delay=0.01, bookmark_interval=0.2) as env:
        assert env.server is None and env.cluster is None
        core = _core(env)
        core.create_namespaced_pod("default", {"metadata": {"name": "r"},
                                               "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
        eventually(lambda: _is_ready(core.read_namespaced_pod("r", "default")), what="ready in subprocess")
        env.set_pod_mode("default", "r", "crashloop")
        eventually(lambda: (core.read_namespaced_pod("r", "default").status.container_statuses[0].restart_count
                            or 0) >= 1, what="crash loop")
        env.set_node_ready("envtest-worker", False)
        eventually(lambda: any(c.type == "Ready" and c.status == "Unknown"
                               for c in core.read_node("envtest-worker").status.conditions), what="node down")
        env.set_node_ready("envtest-worker", True)
        env.stats.reset()
        env.faults.fail_next(1, 500, verb="list", resource="pods")
        with pytest.raises(kubernetes.client.ApiException) as info:
            core.list_namespaced_pod("default")
        assert info.value.status == 500
        core.list_namespaced_pod("default")
        assert env.stats.count(verb="list", resource="pods") == 2
        assert env.stats.count(verb="list", resource="pods", code=500) == 1
        assert isinstance(env.faults.compact(), int)
        env.faults.reset()
        # The subprocess got the bookmark interval: an idle watch sees a BOOKMARK within a second.
        events = env.http.request("GET", "/api/v1/namespaces/default/configmaps",
                                  query={"watch": "true", "allowWatchBookmarks": "true",
                                         "resourceVersion": core.list_namespaced_config_map("default")
                                         .metadata.resource_version, "timeoutSeconds": "1"})
        assert "BOOKMARK" in str(events)
        proc = env._proc
        assert proc is not None
    assert proc.poll() == 0  # SIGTERM -> clean exit


def test_serve_in_a_thread_writes_kubeconfig_and_stops(tmp_path: Path) -> None:
    import io

    kubeconfig = tmp_path / "kc"
    stop = threading.Event()
    out = io.StringIO()
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(serve(str(kubeconfig), nodes=1, stop=stop, out=out)))
    thread.start()
    try:
        eventually(kubeconfig.exists, what="kubeconfig")
        config = kubernetes.client.Configuration()
        kubernetes.config.load_kube_config(config_file=str(kubeconfig), client_configuration=config)
        core = kubernetes.client.CoreV1Api(kubernetes.client.ApiClient(config))
        eventually(lambda: [n.metadata.name for n in core.list_node().items] == ["envtest-worker"], what="node")
    finally:
        stop.set()
        thread.join(10)
    assert result == [0]
    assert "listening on http" in out.getvalue() and str(kubeconfig) in out.getvalue()
    assert "stopping" in out.getvalue()


def test_serve_module_stops_cleanly_on_sigint(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    proc = subprocess.Popen([sys.executable, "-m", "rook_py.envtest.serve", "--kubeconfig",
                             str(kubeconfig), "--nodes", "2", "--no-cluster"], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        eventually(kubeconfig.exists, what="kubeconfig from subprocess")
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out
    assert "listening on" in out and "stopping" in out


# --- real back end, with stand-in binaries --------------------------------------------------------

def test_real_backend_lifecycle_with_stand_in_binaries(assets: Path) -> None:
    with Environment() as env:
        assert env.backend == "real"
        assert env.url.startswith("https://127.0.0.1:")
        assert env.cluster is None
        config = yaml.safe_load(Path(env.kubeconfig).read_text())
        cluster = config["clusters"][0]["cluster"]
        assert cluster["server"] == env.url
        ca = base64.b64decode(cluster["certificate-authority-data"])
        assert b"BEGIN CERTIFICATE" in ca
        assert config["users"][0]["user"]["token"] == env.token
        # TLS verifies against the generated CA, and the token is what the server checks.
        context = ssl.create_default_context(cadata=ca.decode())
        req = urllib.request.Request(env.url + "/readyz", headers={"Authorization": f"Bearer {env.token}"})
        with urllib.request.urlopen(req, context=context, timeout=5) as resp:
            assert resp.read() == b"ok"
        # The official client loads the same kubeconfig (CA file + token).
        version = kubernetes.client.VersionApi(kubernetes.client.ApiClient(env.k8s_configuration())).get_code()
        assert version.git_version == "v1.99.0-fake"
        with pytest.raises(RuntimeError, match="needs the envtest emulator"):
            _ = env.faults
        etcd = json.loads((assets / "etcd.json").read_text())
        apiserver = json.loads((assets / "kube-apiserver.json").read_text())
        flags = dict(a[2:].split("=", 1) for a in apiserver["args"])
        assert flags["authorization-mode"] == "AlwaysAllow"
        assert flags["bind-address"] == "127.0.0.1"
        assert flags["secure-port"] == env.url.rsplit(":", 1)[1]
        assert flags["service-account-issuer"] == env.url + "/"
        etcd_flags = dict(a[2:].split("=", 1) for a in etcd["args"])
        assert flags["etcd-servers"] == etcd_flags["listen-client-urls"]
        assert etcd_flags["unsafe-no-fsync"] == "true"
        data_dir = Path(etcd_flags["data-dir"])
        assert data_dir.is_dir()
    assert not fake_binaries.pid_alive(apiserver["pid"])
    assert not fake_binaries.pid_alive(etcd["pid"])
    assert not data_dir.exists()


def test_real_backend_reports_a_binary_that_fails(assets: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_KUBE_APISERVER_FAIL", "1")
    with pytest.raises(ControlPlaneError, match="refusing to start"):
        Environment(backend="real").start()
    etcd = json.loads((assets / "etcd.json").read_text())
    assert eventually(lambda: not fake_binaries.pid_alive(etcd["pid"]), what="etcd stopped after failure")


def test_flag_construction(tmp_path: Path) -> None:
    args = etcd_args(data_dir=tmp_path, client_port=1111, peer_port=2222, unsafe_no_fsync=False)
    assert args == [f"--data-dir={tmp_path}", "--listen-client-urls=http://127.0.0.1:1111",
                    "--advertise-client-urls=http://127.0.0.1:1111", "--listen-peer-urls=http://127.0.0.1:2222"]
    certs = localhost_certificates()
    flags = apiserver_args(etcd_url="http://127.0.0.1:1111", port=6443, cert_dir=tmp_path, certs=certs,
                           token_file=tmp_path / "t.csv")
    assert "--token-auth-file=" + str(tmp_path / "t.csv") in flags
    assert "--disable-admission-plugins=ServiceAccount" in flags
    assert f"--service-account-key-file={certs.sa_public_key}" in flags
    assert f"--service-account-signing-key-file={certs.sa_private_key}" in flags
    # The serving certificate chains to the CA and names 127.0.0.1.
    verify = subprocess.run(["openssl", "verify", "-CAfile", str(certs.ca_cert), str(certs.serving_cert)],
                            capture_output=True, text=True, check=False)
    assert verify.returncode == 0, verify.stderr
    text = subprocess.run(["openssl", "x509", "-noout", "-text", "-in", str(certs.serving_cert)],
                          capture_output=True, text=True, check=True).stdout
    assert "IP Address:127.0.0.1" in text and "DNS:localhost" in text
    assert "PUBLIC KEY" in certs.sa_public_key.read_text()
    assert oct(certs.serving_key.stat().st_mode & 0o777) == "0o600"


# --- pytest plugin ----------------------------------------------------------------------------------

pytest_plugins = ["pytester"]

_PLUGIN_TESTS = textwrap.dedent('''
    from rook_py.envtest import emulator_only

    @emulator_only(reason="a kubelet to run pods")
    def test_needs_emulator():
        pass

    def test_fixture(envtest):
        assert envtest.backend == "emulator"
        assert envtest.url and envtest.cluster is not None
''')


def test_plugin_fixture_and_marker_on_the_emulator(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_sample=_PLUGIN_TESTS)
    result = pytester.runpytest_inprocess("--envtest-backend=emulator", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_plugin_skips_emulator_only_on_a_real_control_plane(pytester: pytest.Pytester, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    fake_binaries.install(tmp_path)
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(tmp_path))
    monkeypatch.delenv("ROOK_ENVTEST_BACKEND", raising=False)
    pytester.makepyfile(test_sample=_PLUGIN_TESTS)
    result = pytester.runpytest_inprocess("-rs", "-k", "needs_emulator", "-p", "no:cacheprovider")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["envtest backend: real"])
    result.stdout.fnmatch_lines(
        ["*needs the envtest emulator: a kubelet to run pods; running against the real control plane*"])


def test_every_emulator_only_marker_says_what_a_real_control_plane_lacks() -> None:
    """A bare marker would skip on a real control plane without saying why; each must give a reason."""
    bare = []
    for path in sorted((REPO / "tests").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and _names_marker(node.func):
                reason = [k.value for k in node.keywords if k.arg == "reason"] or node.args[:1]
                if not (reason and isinstance(reason[0], ast.Constant) and str(reason[0].value).strip()):
                    bare.append(f"{path.relative_to(REPO)}:{node.lineno}")
            elif isinstance(node, (ast.FunctionDef, ast.Assign)):
                targets = node.decorator_list if isinstance(node, ast.FunctionDef) else [node.value]
                bare += [f"{path.relative_to(REPO)}:{t.lineno}" for t in targets if _names_marker(t)]
    assert not bare, f"emulator_only without reason=...: {bare}"


def _names_marker(node: ast.expr) -> bool:
    """``emulator_only`` or ``pytest.mark.emulator_only`` (not called)."""
    return (isinstance(node, ast.Name) and node.id == "emulator_only") or (
        isinstance(node, ast.Attribute) and node.attr == "emulator_only")


def test_plugin_backend_option_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    from rook_py.envtest import pytest_plugin

    class Config:
        def __init__(self, value: str | None) -> None:
            self.value = value

        def getoption(self, name: str, default: Any = None) -> Any:
            assert name == "--envtest-backend"
            return self.value

    monkeypatch.delenv("ROOK_ENVTEST_BACKEND", raising=False)
    assert pytest_plugin.requested_backend(Config(None)) is None  # type: ignore[arg-type]
    assert pytest_plugin.requested_backend(Config("auto")) is None  # type: ignore[arg-type]
    monkeypatch.setenv("ROOK_ENVTEST_BACKEND", "emulator")
    assert pytest_plugin.requested_backend(Config(None)) == "emulator"  # type: ignore[arg-type]
    assert pytest_plugin.requested_backend(Config("real")) == "real"  # type: ignore[arg-type]  # flag wins
    monkeypatch.setenv("ROOK_ENVTEST_BACKEND", "minikube")
    with pytest.raises(pytest.UsageError, match="ROOK_ENVTEST_BACKEND"):
        pytest_plugin.requested_backend(Config(None))  # type: ignore[arg-type]


def test_in_process_start_spawns_nothing_and_leaks_no_threads() -> None:
    before = set(threading.enumerate())
    with Environment(backend="emulator", nodes=1) as env:
        assert env._proc is None and env._real is None  # no subprocess, no control plane
        assert any(t.name.startswith("envtest-cluster") for t in threading.enumerate())

    def settled() -> bool:
        return not [t for t in set(threading.enumerate()) - before
                    if t.is_alive() and (not t.daemon or t.name.startswith("envtest-cluster"))]

    assert eventually(settled, what="simulator threads joined")
