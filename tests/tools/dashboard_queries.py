"""Pull the PromQL out of Grafana dashboard JSON and make it checkable by promtool."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

#: Example values for the dashboards' template variables and Grafana's built-in interval variables.
SAMPLE_VARIABLES = {
    "cluster": "prod",
    "role": "master",
    "instance": "10.0.0.1:17010",
    "vol": "logs",
    "node": "n1",
    "__rate_interval": "5m",
    "__interval": "1m",
    "__range": "1h",
}

_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")
_LABEL_VALUES = re.compile(r"^\s*label_values\((.*),\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*$", re.S)
_QUERY_RESULT = re.compile(r"^\s*query_result\((.*)\)\s*$", re.S)


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, including those nested in collapsed rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def panel_queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, expr) for every panel target."""
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            if target.get("expr"):
                yield f"panel {panel.get('title')!r} target {target.get('refId')}", target["expr"]


def variable_queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, query) for every query-type template variable."""
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") != "query":
            continue
        query = variable.get("query")
        if isinstance(query, dict):
            query = query.get("query")
        if query:
            yield f"variable ${variable['name']}", str(query)


def variables_used(expr: str) -> set[str]:
    return {a or b for a, b in _VARIABLE.findall(expr)}


def substitute(expr: str, values: dict[str, str] = SAMPLE_VARIABLES) -> str:
    """Replace $var / ${var} / ${var:fmt} with sample values (KeyError for unknown variables)."""
    return _VARIABLE.sub(lambda m: values[m.group(1) or m.group(2)], expr)


def to_promql(query: str) -> str:
    """A variable query reduced to the PromQL it runs: label_values(sel, l) -> sel."""
    match = _LABEL_VALUES.match(query)
    if match:
        return match.group(1)
    match = _QUERY_RESULT.match(query)
    if match:
        return match.group(1)
    return query


def all_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, PromQL with variables substituted) for panels and template variables."""
    result = [(where, substitute(expr)) for where, expr in panel_queries(dashboard)]
    result.extend((where, substitute(to_promql(query))) for where, query in variable_queries(dashboard))
    return result
