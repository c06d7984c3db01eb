"""The PromQL of every dashboard panel and template variable, checked by promtool.

Each expression (template variables substituted, label_values(...) reduced to its selector) is
wrapped into a recording rule of a temporary rule file; `promtool check rules` parses them all.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from rook_py.chubaofs.monitor.config.grafana import dashboards
from tests.tools.dashboard_queries import all_queries
from tests.tools.promtools import PROMTOOL, assert_tool_ok, requires_promtool, run_tool

DASHBOARDS = dashboards()


@requires_promtool
@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_dashboard_promql_parses(tmp_path: Path, name: str) -> None:
    assert PROMTOOL is not None
    queries = all_queries(json.loads(DASHBOARDS[name]))
    assert len(queries) >= 5
    rules = [{"record": f"dashboard:query_{i}:check", "expr": expr} for i, (_, expr) in enumerate(queries)]
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": name, "rules": rules}]}, sort_keys=False))
    result = run_tool([PROMTOOL, "check", "rules", str(path)])
    assert_tool_ok(result)
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


@requires_promtool
def test_promql_check_catches_a_broken_expression(tmp_path: Path) -> None:
    """The wrapping above would notice a broken panel query."""
    assert PROMTOOL is not None
    path = tmp_path / "broken.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "x", "rules": [
        {"record": "dashboard:broken:check", "expr": 'max(cfs_master_dataNodes_used_GB{cluster="prod"}'}]}]}))
    assert run_tool([PROMTOOL, "check", "rules", str(path)]).returncode != 0
