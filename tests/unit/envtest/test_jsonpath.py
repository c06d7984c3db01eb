"""The JSONPath subset CRD printer columns use."""

from __future__ import annotations

from typing import Any

import pytest

from rook_py.envtest.apiserver.jsonpath import compile_path, evaluate

OBJ: dict[str, Any] = {
    "metadata": {
        "name": "c1",
        "annotations": {"example.com/owner": "team-a", "plain": "p"},
        "creationTimestamp": "2024-01-01T00:00:00Z",
    },
    "spec": {
        "replicas": 3,
        "paused": False,
        "ports": [{"port": 80, "name": "http"}, {"port": 443, "name": "https"}],
    },
    "status": {
        "conditions": [
            {"type": "Progressing", "status": "True", "weight": 1},
            {"type": "Ready", "status": "False", "weight": 5},
        ],
        "empty": [],
        "nothing": None,
    },
}


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        (".metadata.name", ["c1"]),
        ("{.metadata.name}", ["c1"]),
        ("$.metadata.name", ["c1"]),
        ("{$.spec.replicas}", [3]),
        (".spec.paused", [False]),
        (".spec.ports[0].port", [80]),
        (".spec.ports[-1].name", ["https"]),
        (".spec.ports[*].port", [80, 443]),
        (".spec.ports[0:1].name", ["http"]),
        (".spec.ports.*.name", ["http", "https"]),
        ('.status.conditions[?(@.type=="Ready")].status', ["False"]),
        (".status.conditions[?(@.type=='Ready')].status", ["False"]),
        (".status.conditions[?(@.type != 'Ready')].type", ["Progressing"]),
        (".status.conditions[?(@.weight > 2)].type", ["Ready"]),
        (".status.conditions[?(@.weight <= 2)].type", ["Progressing"]),
        (".status.conditions[?(@.weight)].type", ["Progressing", "Ready"]),
        (".metadata.annotations['example.com/owner']", ["team-a"]),
        ('.metadata.annotations["plain"]', ["p"]),
        (".metadata.annotations['plain','example.com/owner']", ["p", "team-a"]),
        ("..port", [80, 443]),
        (".status.nothing", [None]),
        (".status.empty[*]", []),
        (".missing.field", []),
        (".spec.ports[5].port", []),
        (".spec.replicas.deeper", []),
        ('.status.conditions[?(@.type=="Unknown")].status', []),
    ],
)
def test_evaluate(expr: str, expected: list[Any]) -> None:
    assert evaluate(expr, OBJ) == expected


@pytest.mark.parametrize(
    "expr", ["", "{}", "spec[", ".spec[?(@.a==)]", "metadata name", ".a[1:2:0]", ".a[bad]"]
)
def test_syntax_errors(expr: str) -> None:
    with pytest.raises(ValueError):
        compile_path(expr)


def test_compiled_path_is_reusable() -> None:
    path = compile_path('.status.conditions[?(@.type=="Ready")].status')
    assert path.evaluate(OBJ) == ["False"]
    assert path.evaluate({"status": {"conditions": [{"type": "Ready", "status": "True"}]}}) == ["True"]
    assert path.evaluate({}) == []


def test_filter_type_strictness() -> None:
    obj = {"items": [{"v": 1}, {"v": "1"}, {"v": True}]}
    assert evaluate(".items[?(@.v==1)].v", obj) == [1]
    assert evaluate(".items[?(@.v=='1')].v", obj) == ["1"]
    assert evaluate(".items[?(@.v==true)].v", obj) == [True]
