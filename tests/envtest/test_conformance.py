"""Differential checks: the same requests on either back end, held to what kube-apiserver v1.28 answers.

Every expectation here was recorded from the real kube-apiserver (``make test-real`` runs this
module against it, ``make test`` against the emulator), so a test passes on the real server by
construction and on the emulator only where it answers the same: status codes, reasons and
messages of errors, defaulting of built-in kinds, managedFields of a plain create, Table columns
and watch timeouts. Where the emulator still answers differently, the check sits inside
``emulator_differs(...)``: on the emulator it must still fail (so fixing the emulator flags the
marker for removal), on the real server it must pass. docs/architecture.md lists those
differences.
"""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from rook_py.envtest import Environment

JSON = dict[str, Any]
NS = "/api/v1/namespaces/default"
APPS = "/apis/apps/v1/namespaces/default"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"
MERGE = "application/merge-patch+json"


class Api:
    """Raw requests to an Environment (either back end): (HTTP code, parsed body, headers)."""

    def __init__(self, env: Environment) -> None:
        self.env = env
        ca_file = env.k8s_configuration().ssl_ca_cert   # the CA the kubeconfig names
        self.context = ssl.create_default_context(cafile=ca_file) if env.url.startswith("https") else None

    def __call__(self, method: str, path: str, body: Any = None, *, content_type: str = "application/json",
                 accept: str = "application/json", timeout: float = 20.0) -> tuple[int, Any, dict[str, str]]:
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.env.url + path, data=data, method=method)
        request.add_header("Accept", accept)
        request.add_header("Authorization", f"Bearer {self.env.token}")
        if data is not None:
            request.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(request, context=self.context, timeout=timeout) as response:
                code, raw, headers = response.status, response.read(), response.headers
        except urllib.error.HTTPError as exc:
            code, raw, headers = exc.code, exc.read(), exc.headers
        try:
            parsed: Any = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode(errors="replace")
        return code, parsed, {k.lower(): v for k, v in headers.items()}

    def ok(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        code, answer, _ = self(method, path, body, **kw)
        assert code < 300, (code, answer)
        return answer


@pytest.fixture
def api(envtest: Environment) -> Api:
    return Api(envtest)


@contextmanager
def emulator_differs(env: Environment, difference: str) -> Iterator[None]:
    """A check the emulator is known to fail (listed in docs/architecture.md): it must pass on the
    real server and still fail on the emulator, so the marker goes once the emulator is fixed."""
    if env.backend != "emulator":
        yield
        return
    try:
        yield
    except AssertionError:
        return
    raise AssertionError(f"the emulator now matches kube-apiserver ({difference}): drop emulator_differs "
                         "here and the entry in docs/architecture.md")


def status(code: int, reason: str, message: str, details: JSON | None = None) -> JSON:
    """A metav1.Status as kube-apiserver renders it (details only when it has them)."""
    out: JSON = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
                 "reason": reason, "code": code}
    if details is not None:
        out["details"] = details
    return out


def configmap(name: str, **extra: Any) -> JSON:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"a": "1"}, **extra}


# --- errors ---------------------------------------------------------------------------------------

def test_not_found_conflict_and_invalid_answers(api: Api) -> None:
    def answer(method: str, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        code, body_, _ = api(method, path, body, **kw)
        return code, body_

    api.ok("POST", f"{NS}/configmaps", configmap("c1"))
    gone = {"name": "nope", "kind": "configmaps"}
    assert answer("GET", f"{NS}/configmaps/nope") == (404, status(404, "NotFound", 'configmaps "nope" not found',
                                                                 gone))
    assert answer("DELETE", f"{NS}/configmaps/nope") == (404, status(404, "NotFound",
                                                                    'configmaps "nope" not found', gone))
    assert answer("PATCH", f"{NS}/configmaps/nope", {"data": {}}, content_type=MERGE) == (
        404, status(404, "NotFound", 'configmaps "nope" not found', gone))
    assert answer("PUT", f"{NS}/configmaps/c9", configmap("c9")) == (
        404, status(404, "NotFound", 'configmaps "c9" not found', {"name": "c9", "kind": "configmaps"}))
    assert answer("POST", "/api/v1/namespaces/nope/configmaps", configmap("x")) == (
        404, status(404, "NotFound", 'namespaces "nope" not found', {"name": "nope", "kind": "namespaces"}))
    assert answer("POST", f"{NS}/configmaps", configmap("c1")) == (
        409, status(409, "AlreadyExists", 'configmaps "c1" already exists', {"name": "c1", "kind": "configmaps"}))
    stale = configmap("c1")
    stale["metadata"]["resourceVersion"] = "1"
    assert answer("PUT", f"{NS}/configmaps/c1", stale) == (409, status(
        409, "Conflict", 'Operation cannot be fulfilled on configmaps "c1": the object has been modified; please '
                         "apply your changes to the latest version and try again",
        {"name": "c1", "kind": "configmaps"}))
    assert answer("POST", f"{NS}/configmaps", {**configmap("x"), "metadata": {}}) == (422, status(
        422, "Invalid", 'ConfigMap "" is invalid: metadata.name: Required value: name or generateName is required',
        {"kind": "ConfigMap", "causes": [{"reason": "FieldValueRequired", "field": "metadata.name",
                                          "message": "Required value: name or generateName is required"}]}))
    subdomain = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
                 "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
                 "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
    code, body = answer("POST", f"{NS}/configmaps", configmap("Bad_Name"))
    assert (code, body["message"]) == (422, f'ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: '
                                            f'"Bad_Name": {subdomain}')
    code, body = answer("POST", f"{NS}/services", {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "1svc"},
                                                   "spec": {"ports": [{"port": 80}]}})
    assert code == 422 and body["details"]["causes"][0] == {
        "reason": "FieldValueInvalid", "field": "metadata.name",
        "message": "Invalid value: \"1svc\": a DNS-1035 label must consist of lower case alphanumeric characters "
                   "or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. "
                   "'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"}
    api.ok("POST", f"{NS}/configmaps", configmap("imm", immutable=True))
    assert answer("PATCH", f"{NS}/configmaps/imm", {"data": {"a": "2"}}, content_type=MERGE) == (422, status(
        422, "Invalid", 'ConfigMap "imm" is invalid: data: Forbidden: field is immutable when `immutable` is set',
        {"name": "imm", "kind": "ConfigMap", "causes": [
            {"reason": "FieldValueForbidden", "field": "data",
             "message": "Forbidden: field is immutable when `immutable` is set"}]}))


def test_bad_requests(api: Api, envtest: Environment) -> None:
    def answer(path: str, method: str = "GET", body: Any = None) -> tuple[int, Any]:
        code, body_, _ = api(method, path, body)
        return code, body_

    api.ok("POST", f"{NS}/configmaps", configmap("c1"))
    assert answer(f"{NS}/configmaps?labelSelector=a%3D%3D%3Db") == (400, status(
        400, "BadRequest", "unable to parse requirement: found '=', expected: identifier"))
    assert answer(f"{NS}/configmaps?fieldSelector=spec.nope%3Dx") == (400, status(
        400, "BadRequest", '"spec.nope" is not a known field selector: only "metadata.name", "metadata.namespace"'))
    assert answer(f"{NS}/pods?fieldSelector=spec.nope%3Dx") == (400, status(
        400, "BadRequest", "field label not supported: spec.nope"))
    code, body = answer(f"{NS}/configmaps?limit=1&continue=garbage")
    assert code == 400 and body["message"].startswith("invalid continue token: continue key is not valid: ")
    assert answer(f"{NS}/configmaps/c1", "PUT", configmap("c2")) == (400, status(
        400, "BadRequest", "the name of the object (c2) does not match the name on the URL (c1)"))
    wrong_namespace = configmap("c3")
    wrong_namespace["metadata"]["namespace"] = "other"
    assert answer(f"{NS}/configmaps", "POST", wrong_namespace) == (400, status(
        400, "BadRequest", "the namespace of the provided object does not match the namespace sent on the request"))
    with emulator_differs(envtest, "a generic 405 carries empty details"):
        assert answer(f"{NS}/configmaps", "PUT", configmap("c1")) == (405, status(
            405, "MethodNotAllowed", "the server does not allow this method on the requested resource", {}))
    with emulator_differs(envtest, "the wording of a body that is not JSON"):
        code, body, _ = api("POST", f"{NS}/configmaps", b"{not json")
        assert code == 400 and body["message"].startswith(
            "the object provided is unrecognized (must be of type ConfigMap): couldn't get version/kind; "
            "json parse error: ")
    with emulator_differs(envtest, "an unknown API group answers plain text"):
        assert answer("/apis/nope.example.com/v1/gizmos") == (404, "404 page not found\n")


# --- defaulting of built-in kinds ------------------------------------------------------------------

POD_TEMPLATE = {"metadata": {"labels": {"app": "x"}},
                "spec": {"containers": [{"name": "c", "image": "busybox", "ports": [{"containerPort": 80}]}]}}
SELECTOR = {"matchLabels": {"app": "x"}}


def test_workload_defaults_and_created_status(api: Api, envtest: Environment) -> None:
    deployment = api.ok("POST", f"{APPS}/deployments", {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"selector": SELECTOR, "template": POD_TEMPLATE}})
    assert deployment["spec"]["replicas"] == 1 and deployment["spec"]["revisionHistoryLimit"] == 10
    assert deployment["spec"]["progressDeadlineSeconds"] == 600
    assert deployment["spec"]["strategy"] == {"type": "RollingUpdate",
                                              "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}
    with emulator_differs(envtest, "the zero-valued status of a created workload"):
        assert deployment.get("status") == {}
    pod_spec = deployment["spec"]["template"]["spec"]
    assert pod_spec["restartPolicy"] == "Always" and pod_spec["dnsPolicy"] == "ClusterFirst"
    assert pod_spec["terminationGracePeriodSeconds"] == 30 and pod_spec["schedulerName"] == "default-scheduler"
    assert pod_spec["securityContext"] == {}
    container = pod_spec["containers"][0]
    assert container["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert container["imagePullPolicy"] == "Always"   # no tag: :latest
    assert container["terminationMessagePath"] == "/dev/termination-log"
    assert container["terminationMessagePolicy"] == "File" and container["resources"] == {}

    statefulset = api.ok("POST", f"{APPS}/statefulsets", {
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "s"},
        "spec": {"serviceName": "s", "selector": SELECTOR, "template": POD_TEMPLATE, "volumeClaimTemplates": [
            {"metadata": {"name": "data"},
             "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}})
    spec = statefulset["spec"]
    assert spec["podManagementPolicy"] == "OrderedReady"
    assert spec["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    assert spec["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    claim = spec["volumeClaimTemplates"][0]
    assert (claim["apiVersion"], claim["kind"], claim["status"]) == ("v1", "PersistentVolumeClaim",
                                                                     {"phase": "Pending"})
    assert claim["spec"]["volumeMode"] == "Filesystem"
    with emulator_differs(envtest, "the zero-valued status of a created workload"):
        assert statefulset.get("status") == {"replicas": 0, "availableReplicas": 0}

    daemonset = api.ok("POST", f"{APPS}/daemonsets", {
        "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "ds"},
        "spec": {"selector": SELECTOR, "template": POD_TEMPLATE}})
    assert daemonset["metadata"]["annotations"] == {"deprecated.daemonset.template.generation": "1"}
    assert daemonset["spec"]["updateStrategy"] == {"type": "RollingUpdate",
                                                   "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}
    with emulator_differs(envtest, "the zero-valued status of a created workload"):
        assert daemonset.get("status") == {"currentNumberScheduled": 0, "numberMisscheduled": 0,
                                       "desiredNumberScheduled": 0, "numberReady": 0}
    relabelled = api.ok("PATCH", f"{APPS}/daemonsets/ds", {"metadata": {"labels": {"l": "1"}}}, content_type=MERGE)
    assert relabelled["metadata"]["annotations"]["deprecated.daemonset.template.generation"] == "1"
    retemplated = api.ok("PATCH", f"{APPS}/daemonsets/ds",
                         {"spec": {"template": {"metadata": {"annotations": {"t": "2"}}}}}, content_type=MERGE)
    assert retemplated["metadata"]["annotations"]["deprecated.daemonset.template.generation"] == "2"


def test_service_and_other_defaults(api: Api, envtest: Environment) -> None:
    service = api.ok("POST", f"{NS}/services", {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc"},
                                               "spec": {"selector": {"a": "b"}, "ports": [{"port": 80}]}})
    spec = service["spec"]
    assert spec["type"] == "ClusterIP" and spec["sessionAffinity"] == "None"
    assert spec["ports"] == [{"protocol": "TCP", "port": 80, "targetPort": 80}]
    assert spec["ipFamilies"] == ["IPv4"] and spec["ipFamilyPolicy"] == "SingleStack"
    assert spec["internalTrafficPolicy"] == "Cluster" and spec["clusterIPs"] == [spec["clusterIP"]]
    assert service["status"] == {"loadBalancer": {}}
    headless = api.ok("POST", f"{NS}/services", {"apiVersion": "v1", "kind": "Service",
                                                "metadata": {"name": "headless"},
                                                "spec": {"clusterIP": "None", "ports": [{"port": 80, "name": "w"}]}})
    assert headless["spec"]["clusterIPs"] == ["None"]
    ingress = api.ok("POST", "/apis/networking.k8s.io/v1/namespaces/default/ingresses", {
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "ing"},
        "spec": {"defaultBackend": {"service": {"name": "svc", "port": {"number": 80}}}}})
    with emulator_differs(envtest, "the zero-valued status of a created Ingress"):
        assert ingress.get("status") == {"loadBalancer": {}}
    pdb = api.ok("POST", "/apis/policy/v1/namespaces/default/poddisruptionbudgets", {
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "pdb"},
        "spec": {"maxUnavailable": 1, "selector": SELECTOR}})
    assert pdb["status"] == {"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0}
    secret = api.ok("POST", f"{NS}/secrets", {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
                                             "stringData": {"k": "v"}})
    assert secret["type"] == "Opaque" and secret["data"] == {"k": "dg=="} and "stringData" not in secret
    namespace = api.ok("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                     "metadata": {"name": "n1"}})
    assert namespace["metadata"]["labels"] == {"kubernetes.io/metadata.name": "n1"}
    assert namespace["spec"] == {"finalizers": ["kubernetes"]} and namespace["status"] == {"phase": "Active"}
    claim = api.ok("POST", f"{NS}/persistentvolumeclaims", {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "pvc"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
    assert claim["spec"]["volumeMode"] == "Filesystem" and claim["status"] == {"phase": "Pending"}
    with emulator_differs(envtest, "the StorageObjectInUseProtection admission plugin's PVC finalizer"):
        assert claim["metadata"].get("finalizers") == ["kubernetes.io/pvc-protection"]
    odd = api.ok("POST", f"{NS}/persistentvolumeclaims", {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "odd"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1.5Gi"}}}})
    assert odd["spec"]["resources"]["requests"]["storage"] == "1536Mi"  # stored in canonical form


# --- managedFields, field validation ---------------------------------------------------------------

def test_managed_fields_of_create_and_patch(api: Api) -> None:
    created = api.ok("POST", f"{NS}/configmaps?fieldManager=tester",
                     {**configmap("mf"), "metadata": {"name": "mf", "labels": {"x": "y"}}})
    entry = created["metadata"]["managedFields"]
    assert [{k: v for k, v in e.items() if k != "time"} for e in entry] == [{
        "manager": "tester", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV1",
        "fieldsV1": {"f:data": {".": {}, "f:a": {}}, "f:metadata": {"f:labels": {".": {}, "f:x": {}}}}}]
    patched = api.ok("PATCH", f"{NS}/configmaps/mf?fieldManager=other", {"data": {"b": "2"}}, content_type=MERGE)
    # Two Update entries written within one second: kube-apiserver orders them by manager name.
    assert [(e["manager"], e["fieldsV1"]) for e in patched["metadata"]["managedFields"]] == [
        ("other", {"f:data": {"f:b": {}}}),
        ("tester", {"f:data": {".": {}, "f:a": {}}, "f:metadata": {"f:labels": {".": {}, "f:x": {}}}})]


def test_field_validation_of_a_built_in_kind(api: Api) -> None:
    body = {**configmap("fv"), "bogus": 1}
    code, created, headers = api("POST", f"{NS}/configmaps", body)
    assert code == 201 and "bogus" not in created
    assert headers.get("warning") == '299 - "unknown field \\"bogus\\""'
    code, refused, _ = api("POST", f"{NS}/configmaps?fieldValidation=Strict", {**body, "metadata": {"name": "s"}})
    assert (code, refused["message"]) == (400, 'ConfigMap in version "v1" cannot be handled as a ConfigMap: '
                                               'strict decoding error: unknown field "bogus"')


# --- tables ------------------------------------------------------------------------------------------

def _columns(api: Api, path: str) -> list[tuple[str, str, int]]:
    table = api.ok("GET", path, accept=TABLE)
    return [(c["name"], c["type"], c["priority"]) for c in table["columnDefinitions"]]


def test_table_columns_of_built_in_kinds(api: Api) -> None:
    assert _columns(api, f"{NS}/configmaps") == [("Name", "string", 0), ("Data", "string", 0), ("Age", "string", 0)]
    assert _columns(api, f"{APPS}/deployments") == [
        ("Name", "string", 0), ("Ready", "string", 0), ("Up-to-date", "string", 0), ("Available", "string", 0),
        ("Age", "string", 0), ("Containers", "string", 1), ("Images", "string", 1), ("Selector", "string", 1)]
    assert _columns(api, "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings") == [
        ("Name", "string", 0), ("Role", "string", 0), ("Age", "string", 0), ("Users", "string", 1),
        ("Groups", "string", 1), ("ServiceAccounts", "string", 1)]
    assert _columns(api, "/apis/policy/v1/namespaces/default/poddisruptionbudgets") == [
        ("Name", "string", 0), ("Min Available", "string", 0), ("Max Unavailable", "string", 0),
        ("Allowed Disruptions", "integer", 0), ("Age", "string", 0)]
    api.ok("POST", f"{NS}/events", {
        "apiVersion": "v1", "kind": "Event", "metadata": {"name": "e1"}, "type": "Warning", "reason": "R",
        "message": "m", "count": 3, "source": {"component": "kubelet", "host": "node-1"},
        "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default", "fieldPath": "spec.containers{c}"}})
    events = api.ok("GET", f"{NS}/events", accept=TABLE)
    assert [c["name"] for c in events["columnDefinitions"]] == [
        "Last Seen", "Type", "Reason", "Object", "Subobject", "Source", "Message", "First Seen", "Count", "Name"]
    assert events["rows"][0]["cells"] == ["<unknown>", "Warning", "R", "pod/p", "spec.containers{c}",
                                          "kubelet, node-1", "m", "<unknown>", 3, "e1"]
    ingress = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "ing"},
               "spec": {"ingressClassName": "nginx", "tls": [{"hosts": ["a.example.com"]}],
                        "rules": [{"host": "a.example.com"}, {"host": "b.example.com"}]}}
    api.ok("POST", "/apis/networking.k8s.io/v1/namespaces/default/ingresses", ingress)
    rows = api.ok("GET", "/apis/networking.k8s.io/v1/namespaces/default/ingresses", accept=TABLE)["rows"]
    assert rows[0]["cells"][:5] == ["ing", "nginx", "a.example.com,b.example.com", "", "80, 443"]


# --- watches -----------------------------------------------------------------------------------------

def test_watch_ends_at_its_timeout_and_watch_list_is_off_in_1_28(api: Api, envtest: Environment) -> None:
    listing = api.ok("GET", f"{NS}/configmaps")
    started = time.monotonic()
    code, body, _ = api("GET", f"{NS}/configmaps?watch=1&allowWatchBookmarks=true&timeoutSeconds=2"
                               f"&resourceVersion={listing['metadata']['resourceVersion']}")
    # The server held the idle watch for its timeout (no event, no bookmark within 2 s), then ended
    # it: a watch it never ended would run into this request's 20 s read timeout instead.
    assert code == 200 and not body
    assert time.monotonic() - started >= 1.9
    with emulator_differs(envtest, "sendInitialEvents (the WatchList feature gate, off by default in 1.28)"):
        code, body, _ = api("GET", f"{NS}/configmaps?watch=1&sendInitialEvents=true&allowWatchBookmarks=true"
                                   "&resourceVersionMatch=NotOlderThan&timeoutSeconds=1")
        assert code == 422 and body["reason"] == "Invalid"


def test_list_resource_version_semantics(api: Api) -> None:
    """What client-go's reflector relies on (its relistResourceVersion): "0" is answered whole from
    the watch cache whatever the limit; a version with a limit is an exact read; without one, the
    current state not older than it; a version ahead of the server is refused, differently with
    and without a limit."""
    api.ok("POST", "/api/v1/namespaces", {"metadata": {"name": "rv-semantics"}})
    base = "/api/v1/namespaces/rv-semantics/configmaps"
    versions = [api.ok("POST", base, {"metadata": {"name": f"c{i}"}})["metadata"]["resourceVersion"]
                for i in range(4)]
    whole = api.ok("GET", f"{base}?resourceVersion=0&limit=2")
    assert len(whole["items"]) == 4 and "continue" not in whole["metadata"]
    exact = api.ok("GET", f"{base}?resourceVersion={versions[1]}&limit=3")
    assert [i["metadata"]["name"] for i in exact["items"]] == ["c0", "c1"]
    assert exact["metadata"]["resourceVersion"] == versions[1]
    newer = api.ok("GET", f"{base}?resourceVersion={versions[1]}")
    assert len(newer["items"]) == 4 and int(newer["metadata"]["resourceVersion"]) >= int(versions[-1])
    paged = api.ok("GET", f"{base}?limit=3")
    assert len(paged["items"]) == 3 and paged["metadata"]["remainingItemCount"] == 1
    ahead = int(versions[-1]) + 100_000
    code, body, _ = api("GET", f"{base}?resourceVersion={ahead}")
    assert code == 504 and body["message"].startswith(f"Timeout: Too large resource version: {ahead}, current: ")
    assert body["details"]["causes"] == [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}]
    code, body, _ = api("GET", f"{base}?resourceVersion={ahead}&limit=2")
    assert (code, body["message"]) == (500, "etcdserver: mvcc: required revision is a future revision")
    code, body, _ = api("GET", f"{base}?resourceVersion=abc&limit=3")
    assert (code, body["message"]) == (400, 'invalid resource version: resourceVersion: Invalid value: "abc": '
                                             'strconv.ParseUint: parsing "abc": invalid syntax')
