"""``rook <provider> operator`` set-up steps: settings, the daemons' image, CRD verification."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from rook_py.framework.client import errors
from rook_py.framework.cmdline import Fatal, FlagSet
from rook_py.framework.operator import (
    OPERATOR_FLAGS,
    crd_problem,
    default_image,
    ensure_crds,
    resolve_image,
    settings_from_values,
)
from rook_py.framework.provider import OperatorSettings

JSON = dict[str, Any]


def values(env: dict[str, str], *argv: str) -> dict[str, Any]:
    import argparse

    parser = argparse.ArgumentParser()
    fs = FlagSet().add(parser, *OPERATOR_FLAGS)
    return fs.resolve(parser.parse_args(list(argv)), env)


def test_settings_defaults_follow_the_issue() -> None:
    s = settings_from_values("chubaofs", values({"POD_NAMESPACE": "rook-chubaofs", "POD_NAME": "op-1"}))
    assert s.namespace == "rook-chubaofs" and s.watch_namespace is None
    assert s.leader_election is True and s.install_crds is False
    assert s.metrics_bind_address == ":8080" and s.health_probe_bind_address == ":8081"
    assert s.lease_name() == "rook-chubaofs-operator-lock"
    assert s.pod_name == "op-1" and s.crd_timeout == 30.0 and s.kube_api_qps == 20.0 and s.kube_api_burst == 30
    opts = s.manager_options()
    assert opts.leader_election_namespace == "rook-chubaofs" and opts.namespace is None
    assert opts.identity == "op-1"


def test_current_namespace_only_limits_the_caches() -> None:
    s = settings_from_values("chubaofs", values({"POD_NAMESPACE": "ns", "ROOK_CURRENT_NAMESPACE_ONLY": "true"}))
    assert s.cache_namespace() == "ns" and s.manager_options().namespace == "ns"


def test_flags_override_env() -> None:
    s = settings_from_values("chubaofs", values({"POD_NAMESPACE": "ns", "ROOK_LEADER_ELECT": "true"},
                                                "--no-leader-elect", "--lease-duration", "30s", "--image", "x:1"))
    assert s.leader_election is False and s.lease_duration == 30.0 and s.image == "x:1"


def test_pod_namespace_is_required() -> None:
    with pytest.raises(Fatal, match="POD_NAMESPACE is not set"):
        settings_from_values("chubaofs", values({}))


class FakeClient:
    """get/create/update/resource_for over a dict, enough for image and CRD steps."""

    def __init__(self, objects: dict[tuple[str, str], JSON] | None = None, served: set[tuple[str, str]] | None = None):
        self.objects = objects or {}
        self.served = served if served is not None else set()
        self.calls: list[tuple[str, str]] = []

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> JSON:
        self.calls.append(("get", kind))
        try:
            return copy.deepcopy(self.objects[(kind, name)])
        except KeyError:
            raise errors.NotFound(f"{kind} {name} not found") from None

    def create(self, obj: JSON, *, namespace: str | None = None) -> JSON:
        self.calls.append(("create", obj["kind"]))
        self.objects[(obj["kind"], obj["metadata"]["name"])] = obj
        return obj

    def update(self, obj: JSON) -> JSON:
        self.calls.append(("update", obj["kind"]))
        self.objects[(obj["kind"], obj["metadata"]["name"])] = obj
        return obj

    def apply(self, obj: JSON, *, field_manager: str, force: bool = False) -> JSON:
        """Server-side apply, simplified: a create or an update of the whole object."""
        if (obj["kind"], obj["metadata"]["name"]) in self.objects:
            return self.update(obj)
        return self.create(obj)

    def resource_for(self, api_version: str, kind: str) -> object:
        if (api_version, kind) not in self.served:
            raise errors.NotFound("no matches")
        return object()


def settings(**kw: Any) -> OperatorSettings:
    return OperatorSettings(provider="chubaofs", namespace="rook-chubaofs", **kw)


def pod(containers: list[JSON]) -> JSON:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "op-1"}, "spec": {"containers": containers}}


def test_image_comes_from_the_operator_container_of_the_own_pod() -> None:
    client = FakeClient({("Pod", "op-1"): pod([{"name": "sidecar", "image": "side:1"},
                                              {"name": "rook-chubaofs-operator", "image": "reg/rook-py:v2"}])})
    assert resolve_image(client, settings(pod_name="op-1")) == "reg/rook-py:v2"


def test_image_flag_overrides_and_skips_the_lookup() -> None:
    client = FakeClient()
    assert resolve_image(client, settings(image="mine:3", pod_name="op-1")) == "mine:3"
    assert client.calls == []


def test_image_defaults_outside_a_cluster() -> None:
    assert resolve_image(FakeClient(), settings()) == default_image()


def test_own_pod_errors_are_clear() -> None:
    with pytest.raises(Fatal, match=r"own pod rook-chubaofs/op-1 .* not found"):
        resolve_image(FakeClient(), settings(pod_name="op-1"))
    client = FakeClient({("Pod", "op-1"): pod([{"name": "other", "image": "x"}])})
    with pytest.raises(Fatal, match="no container named 'rook-chubaofs-operator'"):
        resolve_image(client, settings(pod_name="op-1"))


def crd(established: bool = True, served: bool = True) -> JSON:
    status = {"conditions": [{"type": "NamesAccepted", "status": "True"},
                             {"type": "Established", "status": "True" if established else "False"}]}
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "names": {"kind": "Widget", "plural": "widgets"},
                     "versions": [{"name": "v1", "served": served, "storage": True}]},
            "status": status}


def test_crd_problem() -> None:
    assert crd_problem(crd()) is None
    assert crd_problem(crd(established=False)) == "not established yet"
    assert crd_problem(crd(served=False)) == "no version is served"


def test_missing_crd_without_install_names_the_fix() -> None:
    with pytest.raises(Fatal, match=re.escape("CRD widgets.example.com is not installed: apply manifests/crds.yaml "
                                    "or run the operator with --install-crds")):
        ensure_crds(FakeClient(), [crd()], install=False)


def test_established_and_discovered_crd_passes_without_writes() -> None:
    client = FakeClient({("CustomResourceDefinition", "widgets.example.com"): crd()},
                        served={("example.com/v1", "Widget")})
    ensure_crds(client, [crd()], install=False)
    assert all(verb == "get" for verb, _ in client.calls)


def test_crd_not_in_discovery_times_out_with_the_reason() -> None:
    client = FakeClient({("CustomResourceDefinition", "widgets.example.com"): crd()})
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    with pytest.raises(Fatal, match=r"not usable after 1s: Widget in example.com/v1 not in discovery"):
        ensure_crds(client, [crd()], install=False, timeout=1.0, clock=lambda: now[0], sleep=sleep)


def test_install_creates_the_crd() -> None:
    client = FakeClient(served={("example.com/v1", "Widget")})
    desired = crd()
    desired.pop("status")

    def establish(obj: JSON, *, namespace: str | None = None) -> JSON:
        created = {**obj, "status": crd()["status"]}
        client.objects[("CustomResourceDefinition", obj["metadata"]["name"])] = created
        client.calls.append(("create", "CustomResourceDefinition"))
        return created

    client.create = establish  # type: ignore[method-assign]
    ensure_crds(client, [desired], install=True)
    assert ("create", "CustomResourceDefinition") in client.calls


def test_the_cache_mutation_detector_is_a_declared_setting() -> None:
    s = settings_from_values("chubaofs", values({"POD_NAMESPACE": "ns", "ROOK_CACHE_MUTATION_DETECTOR": "T"}))
    assert s.cache_mutation_detector is True and s.manager_options().detect_mutations is True
    assert settings_from_values("chubaofs", values({"POD_NAMESPACE": "ns"})).manager_options().detect_mutations is False


class ScriptedVersion:
    """request_json answers GET /version from a script of errors, then {}."""

    def __init__(self, *failures: Exception) -> None:
        self.failures = list(failures)
        self.calls = 0

    def request_json(self, method: str, path: str, **_: object) -> dict[str, str]:
        assert (method, path) == ("GET", "/version")
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return {"gitVersion": "v1.28.0"}


def test_start_up_waits_for_an_unreachable_api_server_instead_of_exiting() -> None:
    import threading

    from rook_py.framework.cache import Backoff
    from rook_py.framework.operator import wait_for_api_server

    fast = Backoff(initial=0.001, cap=0.002, jitter=0.0)
    client = ScriptedVersion(errors.TransportError("refused"), errors.ServiceUnavailable("starting"),
                             errors.TransportError("refused"))
    assert wait_for_api_server(client, threading.Event(), backoff=fast)
    assert client.calls == 4
    # Any answer other than "cannot reach" means the server is there: later steps report it.
    forbidden = ScriptedVersion(errors.Forbidden("no"))
    assert wait_for_api_server(forbidden, threading.Event(), backoff=fast) and forbidden.calls == 1
    stop = threading.Event()
    stop.set()
    assert not wait_for_api_server(ScriptedVersion(errors.TransportError("refused")), stop, backoff=fast)
