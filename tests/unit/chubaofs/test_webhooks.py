"""ChubaoMonitor admission handlers: the controller's validation at apply time, plus update rules."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from rook_py.chubaofs.api import types as t
from rook_py.chubaofs.api.defaults import with_defaults
from rook_py.chubaofs.api.validation import validate
from rook_py.chubaofs.api.webhooks import (
    CLUSTER_LABEL,
    MonitorDefaulter,
    MonitorValidator,
    webhook_configurations,
)
from rook_py.framework.webhook.admission import (
    AdmissionRequest,
    defaulting_handle,
    validating_handle,
)

JSON = dict[str, Any]


def review(operation: str, spec: JSON | None, old_spec: JSON | None = None, **meta: Any) -> AdmissionRequest:
    def obj(s: JSON | None) -> JSON | None:
        if s is None:
            return None
        return {"apiVersion": t.API_VERSION, "kind": t.KIND,
                "metadata": {"name": "mon", "namespace": "ns", **meta}, "spec": s}

    return AdmissionRequest.from_review({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "u", "operation": operation, "namespace": "ns", "name": "mon",
                    "kind": {"group": t.GROUP, "version": t.VERSION, "kind": t.KIND},
                    "object": obj(spec), "oldObject": obj(old_spec)}})


SECRETS: dict[tuple[str, str], JSON] = {}


def validator() -> Any:
    return validating_handle(MonitorValidator(lambda ns, name: SECRETS.get((ns, name))))


BASE: JSON = {"cluster": {"name": "cfs"}, "consul": {"replicas": 1}}


@pytest.mark.parametrize("spec", [
    BASE,
    {**BASE, "consul": {"replicas": 1, "storage": {"size": "0"}}},
    {**BASE, "consul": {"replicas": 1, "resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}}},
    {**BASE, "prometheus": {"scrapeInterval": "0s"}},
    {**BASE, "prometheus": {"storage": {"size": "0Gi"}}},
    {**BASE, "rules": {"extraRules": [{"rules": []}]}},
    {**BASE, "chubaofs": {"version": "0.1.0"}},
])
def test_the_webhook_refuses_exactly_what_the_controller_refuses(spec: JSON) -> None:
    problems = validate(with_defaults(spec))
    answer = validator()(review("CREATE", spec))["response"]
    assert answer["allowed"] is (not problems)
    if problems:
        status = answer["status"]
        assert status["code"] == 422 and status["reason"] == "Invalid"
        assert [c["field"] for c in status["details"]["causes"]] == [
            "spec." + p.split(":", 1)[0] for p in problems]


def test_denial_message_names_the_field_and_value() -> None:
    answer = validator()(review("CREATE", {**BASE, "consul": {"replicas": 1, "storage": {"size": "0"}}}))
    assert answer["response"]["status"]["message"] == (
        'ChubaoMonitor.chubaofs.rook.io "mon" is invalid: spec.consul.storage.size: Invalid value: "0": '
        "must be greater than zero")


def test_a_missing_secret_is_a_warning_not_a_denial() -> None:
    answer = validator()(review("CREATE", {**BASE, "grafana": {"adminSecret": "later"}}))["response"]
    assert answer["allowed"] is True
    assert answer["warnings"] == ["spec.grafana.adminSecret: Secret 'later' not found"]
    SECRETS[("ns", "later")] = {"data": {t.GRAFANA_ADMIN_USER_KEY: "YQ==", t.GRAFANA_ADMIN_PASSWORD_KEY: "Yg=="}}
    try:
        assert "warnings" not in validator()(review("CREATE", {**BASE, "grafana": {"adminSecret": "later"}}))[
            "response"]
    finally:
        SECRETS.clear()


def test_volumes_may_grow_but_not_shrink() -> None:
    old = {**BASE, "prometheus": {"storage": {"size": "20Gi"}}}
    grown = validator()(review("UPDATE", {**BASE, "prometheus": {"storage": {"size": "21474836481"}}}, old))
    assert grown["response"]["allowed"] is True
    same = validator()(review("UPDATE", {**BASE, "prometheus": {"storage": {"size": "20480Mi"}}}, old))
    assert same["response"]["allowed"] is True  # the same quantity, written differently
    shrunk = validator()(review("UPDATE", {**BASE, "prometheus": {"storage": {"size": "10Gi"}}}, old))["response"]
    assert shrunk["allowed"] is False
    assert shrunk["status"]["message"].startswith(
        'ChubaoMonitor.chubaofs.rook.io "mon" is invalid: spec.prometheus.storage.size: Forbidden: '
        "may not shrink from 20Gi to 10Gi: a PersistentVolumeClaim cannot shrink; keep 20Gi or more")
    # the default size counts as the old size when the old object did not say one
    defaulted = validator()(review("UPDATE", {**BASE, "consul": {"replicas": 1, "storage": {"size": "512Mi"}}},
                                   BASE))["response"]
    assert defaulted["allowed"] is False and "from 1Gi to 512Mi" in defaulted["status"]["message"]


def test_a_monitor_being_deleted_is_never_blocked() -> None:
    old = {**BASE, "prometheus": {"storage": {"size": "20Gi"}}}
    answer = validator()(review("UPDATE", {**BASE, "prometheus": {"storage": {"size": "1Gi"}}}, old,
                                deletionTimestamp="2026-01-01T00:00:00Z"))
    assert answer["response"]["allowed"] is True


def test_the_defaulter_labels_the_cluster_and_nothing_else() -> None:
    handle = defaulting_handle(MonitorDefaulter())
    answer = handle(review("CREATE", BASE))["response"]
    patch = json.loads(base64.b64decode(answer["patch"]))
    assert patch == [{"op": "add", "path": "/metadata/labels", "value": {CLUSTER_LABEL: "cfs"}}]
    renamed = handle(review("UPDATE", {**BASE, "cluster": {"name": "other"}}, BASE,
                            labels={CLUSTER_LABEL: "cfs", "team": "a"}))["response"]
    assert json.loads(base64.b64decode(renamed["patch"])) == [
        {"op": "replace", "path": "/metadata/labels/chubaofs.rook.io~1cluster", "value": "other"}]


def test_configurations_exclude_the_operator_namespace_and_never_see_deletes() -> None:
    for config in webhook_configurations("rook-chubaofs"):
        hook = config["webhooks"][0]
        assert hook["namespaceSelector"]["matchExpressions"][0]["values"] == ["rook-chubaofs"]
        assert hook["rules"][0]["operations"] == ["CREATE", "UPDATE"]
        assert hook["sideEffects"] == "None" and hook["failurePolicy"] == "Fail"
