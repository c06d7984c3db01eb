"""The ChubaoMonitor API: CRD, structural schema, defaults and semantic validation."""

from __future__ import annotations

import re
from typing import Any

import pytest

from rook_py.chubaofs.api import types as t
from rook_py.chubaofs.api.crd import chubao_monitor_crd
from rook_py.chubaofs.api.defaults import with_defaults
from rook_py.chubaofs.api.schema import open_api_v3_schema, spec_schema
from rook_py.chubaofs.api.validation import (
    parse_byte_size,
    parse_duration,
    secret_value,
    validate,
)

JSON = dict[str, Any]


def _walk(node: JSON, path: str = "") -> list[tuple[str, JSON]]:
    found = [(path, node)]
    for name, child in (node.get("properties") or {}).items():
        found += _walk(child, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        found += _walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        found += _walk(node["additionalProperties"], f"{path}{{}}")
    return found


def test_crd_names_scope_subresource_and_columns() -> None:
    crd = chubao_monitor_crd()
    assert crd["metadata"]["name"] == "chubaomonitors.chubaofs.rook.io"
    spec = crd["spec"]
    assert spec["group"] == "chubaofs.rook.io" and spec["scope"] == "Namespaced"
    assert spec["names"]["kind"] == "ChubaoMonitor" and spec["names"]["shortNames"] == ["cfsmon"]
    (version,) = spec["versions"]
    assert version["name"] == "v1alpha1" and version["served"] and version["storage"]
    assert version["subresources"] == {"status": {}}
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert columns == ["Phase", "Prometheus", "Alertmanager", "Grafana", "Consul", "Age"]
    assert chubao_monitor_crd() == crd and chubao_monitor_crd() is not crd


def test_schema_is_structural_and_every_leaf_is_bounded() -> None:
    unbounded = []
    for path, node in _walk(open_api_v3_schema()):
        if path in (".apiVersion", ".kind", ".metadata"):
            continue
        if node.get("x-kubernetes-int-or-string"):
            assert node["anyOf"] == [{"type": "integer"}, {"type": "string"}]
            assert "pattern" in node, path
            continue
        assert "type" in node, f"{path} has no type"
        if node.get("x-kubernetes-preserve-unknown-fields"):
            continue
        if node["type"] == "string":
            if not ({"enum", "pattern", "format"} & set(node)) and "maxLength" not in node:
                unbounded.append(path)
        elif node["type"] == "integer":
            if "minimum" not in node:
                unbounded.append(path)
        elif node["type"] == "array" and "maxItems" not in node:
            unbounded.append(path)
    assert unbounded == []


def test_every_schema_default_satisfies_its_own_constraints() -> None:
    checked = 0
    for path, node in _walk(spec_schema()):
        if "default" not in node:
            continue
        value = node["default"]
        checked += 1
        if "pattern" in node and isinstance(value, str):
            assert re.match(node["pattern"], value), path
        if "enum" in node:
            assert value in node["enum"], path
        if "minimum" in node:
            assert node["minimum"] <= value <= node["maximum"], path
    assert checked > 20


@pytest.mark.parametrize(("pattern_path", "good", "bad"), [
    (".prometheus.retention", ["15d", "1y2w", "12h30m", "0"], ["15 days", "1d1y", "", "-5d"]),
    (".prometheus.retentionSize", ["512MB", "20GB", "0"], ["20G", "20 GB", "1.5GB"]),
    (".consul.externalAddress", ["consul.infra.svc:8500", "10.0.0.1:8500"],
     ["http://consul:8500", "consul"]),
    (".cluster.name", ["my-cluster", "cfs_1"], ["-bad", "a b"]),
    (".chubaofs.version", ["2.4.0", "v3.5.2", "3.10.0"], ["3.5", "latest", "3.5.2-rc1", ""]),
    (".chubaofs.upgradingFrom", ["2.4.0"], ["2.x"]),
])
def test_schema_patterns(pattern_path: str, good: list[str], bad: list[str]) -> None:
    node = dict(_walk(spec_schema()))[pattern_path]
    def accepted(value: str) -> bool:
        return len(value) >= node.get("minLength", 0) and re.match(node["pattern"], value) is not None

    assert [v for v in good if not accepted(v)] == []
    assert [v for v in bad if accepted(v)] == []


def test_with_defaults_fills_every_section_and_keeps_explicit_values() -> None:
    spec = {"cluster": {"name": "cfs"}, "grafana": {"enabled": False},
            "consul": {"replicas": 1, "storage": {"size": "5Gi"}}}
    defaulted = with_defaults(spec)
    assert spec == {"cluster": {"name": "cfs"}, "grafana": {"enabled": False},
                    "consul": {"replicas": 1, "storage": {"size": "5Gi"}}}, "input mutated"
    assert defaulted["grafana"]["enabled"] is False
    assert defaulted["consul"]["replicas"] == 1 and defaulted["consul"]["enabled"] is True
    assert defaulted["consul"]["storage"] == {"size": "5Gi"}
    assert defaulted["consul"]["image"] == t.DEFAULT_IMAGES["consul"]
    assert defaulted["prometheus"]["retention"] == "15d"
    assert defaulted["prometheus"]["storage"] == {"size": "20Gi"}
    assert defaulted["rules"]["thresholds"]["capacityWarningPercent"] == 80
    assert defaulted["cleanupPolicy"] == {"deleteData": False}
    assert defaulted["chubaofs"] == {"version": "3.5.2"}
    assert "storage" not in defaulted["alertmanager"]
    assert with_defaults(None)["prometheus"]["replicas"] == 1


def test_with_defaults_treats_null_as_missing() -> None:
    assert with_defaults({"cluster": {"name": "x"}, "prometheus": None})["prometheus"]["retention"] == "15d"


def test_parsers() -> None:
    assert parse_duration("1d12h") == 36 * 3600
    assert parse_duration("90s") == 90 and parse_duration("500ms") == 0.5
    assert parse_duration("0") == 0
    for bad in ("", "12", "1h1d", "5 m"):
        with pytest.raises(ValueError):
            parse_duration(bad)
    assert parse_byte_size("2GB") == 2 << 30
    with pytest.raises(ValueError):
        parse_byte_size("2G")


def test_secret_value_decodes_data_and_string_data() -> None:
    secret = {"data": {"a": "aGVsbG8="}, "stringData": {"b": "plain"}}
    assert secret_value(secret, "a") == "hello" and secret_value(secret, "b") == "plain"
    assert secret_value(secret, "c") is None
    assert secret_value({"data": {"a": "%%%"}}, "a") is None


def _problems(spec: JSON, secrets: dict[str, JSON] | None = None) -> list[str]:
    lookup = None if secrets is None else secrets.get
    return validate(with_defaults(spec), secrets=lookup)


def test_valid_default_spec_has_no_problems() -> None:
    assert _problems({"cluster": {"name": "cfs"}}) == []


@pytest.mark.parametrize(("spec", "expected"), [
    ({"consul": {"replicas": 2}}, "consul.replicas: 2 is not 1, 3 or 5"),
    ({"prometheus": {"retention": "two weeks"}}, "prometheus.retention: not a valid duration"),
    ({"prometheus": {"retentionSize": "5G"}}, "prometheus.retentionSize: not a valid size"),
    ({"prometheus": {"scrapeInterval": "0"}}, "prometheus.scrapeInterval: must be greater than zero"),
    ({"prometheus": {"externalLabels": {"bad-label": "x"}}}, "not a valid label name"),
    ({"prometheus": {"replicas": 2, "externalLabels": {"replica": "x"}}}, "'replica' is set"),
    ({"consul": {"enabled": False}}, "consul.enabled: false needs consul.externalAddress"),
    ({"consul": {"externalAddress": "http://c:8500"}}, "must be host:port, not a URL"),
    ({"rules": {"thresholds": {"capacityWarningPercent": 95}}}, "must be below capacityCriticalPercent"),
    ({"chubaofs": {"version": "1.5.1"}}, "chubaofs.version: ChubaoFS 1.5.1 is not supported"),
    ({"chubaofs": {"version": "4.0.0"}}, "chubaofs.version: CubeFS 4.0.0 is not supported"),
    ({"chubaofs": {"version": "three"}}, "chubaofs.version: not a release number"),
    ({"chubaofs": {"upgradingFrom": "1.0.0"}}, "chubaofs.upgradingFrom: ChubaoFS 1.0.0 is not supported"),
    ({"rules": {"extraRules": [{"rules": []}]}}, "rules.extraRules[0]: a rule group needs a name"),
    ({"prometheus": {"storage": {"size": "0"}}}, "prometheus.storage.size: must be greater than zero"),
    ({"grafana": {"resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}}},
     "grafana.resources.requests.cpu: must be less than or equal"),
])
def test_semantic_problems(spec: JSON, expected: str) -> None:
    problems = _problems({"cluster": {"name": "cfs"}, **spec})
    assert any(expected in p for p in problems), problems


def test_external_consul_makes_replicas_irrelevant() -> None:
    assert _problems({"cluster": {"name": "c"}, "consul": {"externalAddress": "c:8500", "replicas": 2}}) == []


def test_referenced_secrets_must_exist_with_their_keys() -> None:
    spec = {"cluster": {"name": "cfs"}, "alertmanager": {"configSecret": "am"},
            "grafana": {"adminSecret": "admin"}}
    problems = _problems(spec, secrets={})
    assert "alertmanager.configSecret: Secret 'am' not found" in problems
    assert "grafana.adminSecret: Secret 'admin' not found" in problems
    secrets = {"am": {"data": {"alertmanager.yml": "eA=="}}, "admin": {"data": {"admin-user": "eA=="}}}
    assert _problems(spec, secrets=secrets) == ["grafana.adminSecret: Secret 'admin' has no key admin-password"]
    # A disabled component's references are not checked.
    spec["grafana"]["enabled"] = False
    assert _problems(spec, secrets={"am": secrets["am"]}) == []
