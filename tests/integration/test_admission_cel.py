"""CRD validation rules (x-kubernetes-validations) on the emulator and on a real kube-apiserver."""

from __future__ import annotations

from typing import Any

import pytest

from rook_py.framework.client import errors

GROUP = "cel.example.io"
CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": f"clusters.{GROUP}"},
    "spec": {"group": GROUP, "scope": "Namespaced",
             "names": {"plural": "clusters", "kind": "Cluster", "singular": "cluster", "listKind": "ClusterList"},
             "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                 "type": "object", "properties": {"spec": {
                     "type": "object",
                     "x-kubernetes-validations": [
                         {"rule": "self.replicas % 2 == 1", "message": "must be odd"},
                         {"rule": "!has(self.warning) || !has(self.critical) || self.warning < self.critical",
                          "message": "warning must be below critical"},
                     ],
                     "properties": {
                         "replicas": {"type": "integer"},
                         "warning": {"type": "integer"}, "critical": {"type": "integer"},
                         # kube-apiserver's cost estimator refuses string(int) in a message
                         # expression (unbounded), so the dynamic message is on a bounded string
                         "storageClassName": {"type": "string", "maxLength": 63, "x-kubernetes-validations": [
                             {"rule": "self == oldSelf", "message": "is immutable",
                              "messageExpression": "'is immutable: was ' + oldSelf"}]},
                         "size": {"type": "integer", "x-kubernetes-validations": [
                             {"rule": "self >= oldSelf"}]},
                     }}}}}}]}}


def cluster(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/v1", "kind": "Cluster", "metadata": {"name": name, "namespace": "default"},
            "spec": spec}


@pytest.fixture
def client(envtest: Any) -> Any:
    envtest.install_crds([CRD])
    c = envtest.client()
    return c


def test_rules_refuse_creates_with_apiserver_wording(client: Any) -> None:
    client.create(cluster("good", replicas=3, warning=80, critical=90))
    with pytest.raises(errors.Invalid) as err:
        client.create(cluster("even", replicas=2))
    assert str(err.value) == 'Cluster.cel.example.io "even" is invalid: spec: Invalid value: "object": must be odd'
    with pytest.raises(errors.Invalid) as err:
        client.create(cluster("thresholds", replicas=1, warning=95, critical=90))
    assert str(err.value) == ('Cluster.cel.example.io "thresholds" is invalid: spec: Invalid value: "object": '
                              'warning must be below critical')


def test_transition_rules_need_the_old_object(client: Any) -> None:
    created = client.create(cluster("t", replicas=1, storageClassName="fast", size=10))
    changed = {**created, "spec": {**created["spec"], "storageClassName": "slow"}}
    with pytest.raises(errors.Invalid) as err:
        client.update(changed)
    assert str(err.value) == ('Cluster.cel.example.io "t" is invalid: spec.storageClassName: '
                              'Invalid value: "string": is immutable: was fast')
    shrunk = {**created, "spec": {**created["spec"], "size": 5}}
    with pytest.raises(errors.Invalid) as err:
        client.update(shrunk)
    assert str(err.value) == ('Cluster.cel.example.io "t" is invalid: spec.size: '
                              'Invalid value: "integer": failed rule: self >= oldSelf')
    grown = client.update({**created, "spec": {**created["spec"], "size": 20}})
    assert grown["spec"]["size"] == 20


def test_a_rule_that_does_not_compile_refuses_the_crd(envtest: Any) -> None:
    c = envtest.client()
    bad: dict[str, Any] = {**CRD, "metadata": {"name": f"bads.{GROUP}"},
                           "spec": {**CRD["spec"], "names": {"plural": "bads", "kind": "Bad"}}}
    bad["spec"]["versions"] = [{**CRD["spec"]["versions"][0], "schema": {"openAPIV3Schema": {
        "type": "object", "properties": {"spec": {"type": "object", "x-kubernetes-validations": [
            {"rule": "self.replicas >"}], "properties": {"replicas": {"type": "integer"}}}}}}}]
    with pytest.raises(errors.Invalid) as err:
        c.create(bad)
    # kube-apiserver names the path spec.validation... when every version shares one schema
    assert "openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule: Invalid value: " in str(err.value)
    assert "compilation failed" in str(err.value)


def test_rules_are_checked_against_schema_defaults(envtest: Any) -> None:
    c = envtest.client()
    crd: dict[str, Any] = {**CRD, "metadata": {"name": f"defs.{GROUP}"},
                           "spec": {**CRD["spec"], "names": {"plural": "defs", "kind": "Def"}}}
    crd["spec"]["versions"] = [{**CRD["spec"]["versions"][0], "schema": {"openAPIV3Schema": {
        "type": "object", "properties": {"spec": {"type": "object", "default": {}, "x-kubernetes-validations": [
            {"rule": "self.replicas % 2 == 1", "message": "must be odd"}],
            "properties": {"replicas": {"type": "integer", "default": 3}}}}}}}]
    with pytest.raises(errors.Invalid) as err:
        c.create(crd)
    assert ('openAPIV3Schema.properties[spec].default: Invalid value: "object": no such key: replicas '
            'evaluating rule: must be odd') in str(err.value)
