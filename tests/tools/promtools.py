"""Shared helpers for tests that drive the real Prometheus tool binaries.

Debian's prometheus package (bookworm, 2.42) is built without Consul service discovery ("Disable
Consul SD until its Debian package is back in shape", debian/changelog). Upstream builds, and the
images the operator deploys, have it. So a check of a generated prometheus.yml first asks the
local promtool whether it knows `consul_sd_configs`; when it does not, every consul_sd block is
swapped for an equivalent `http_sd_configs` block (same job, same relabeling, so the rules that
turn `__meta_consul_*` labels into target labels are still validated) and the test says so.
"""

from __future__ import annotations

import copy
import functools
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

PROMTOOL = shutil.which("promtool")
AMTOOL = shutil.which("amtool")
PROMETHEUS = shutil.which("prometheus")
ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")

_INSTALL_HINT = "install Debian's prometheus / prometheus-alertmanager packages (make tools)"
requires_promtool = pytest.mark.skipif(PROMTOOL is None, reason=f"promtool not found on PATH; {_INSTALL_HINT}")
requires_amtool = pytest.mark.skipif(AMTOOL is None, reason=f"amtool not found on PATH; {_INSTALL_HINT}")

TOOL_TIMEOUT = 60.0


def run_tool(argv: Sequence[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run a tool binary; output is captured and returned (never raises on a non-zero exit)."""
    return subprocess.run(list(argv), cwd=cwd, capture_output=True, text=True, timeout=TOOL_TIMEOUT, check=False)


def assert_tool_ok(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, f"{' '.join(result.args)} failed:\n{result.stdout}\n{result.stderr}"


@functools.cache
def promtool_has_consul_sd() -> bool:
    """True if the local promtool accepts `consul_sd_configs` (upstream builds do, Debian's do not)."""
    if PROMTOOL is None:
        return False
    probe = {"scrape_configs": [{"job_name": "probe", "consul_sd_configs": [{"server": "127.0.0.1:8500"}]}]}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "probe.yml"
        path.write_text(yaml.safe_dump(probe))
        return run_tool([PROMTOOL, "check", "config", str(path)]).returncode == 0


@functools.cache
def prometheus_has_consul_sd() -> bool:
    """Same question for the Prometheus server binary (it shares promtool's discovery build)."""
    return PROMETHEUS is not None and promtool_has_consul_sd()


def consul_sd_as_http_sd(config: dict[str, Any], url_for: Callable[[str, str], str]) -> dict[str, Any]:
    """Return a copy of `config` with each consul_sd block replaced by http_sd blocks.

    `url_for(server, service)` gives the HTTP SD URL for one Consul service. Everything else in
    the job (relabel_configs in particular) is left exactly as generated.
    """
    result = copy.deepcopy(config)
    for job in result.get("scrape_configs", []):
        blocks = job.pop("consul_sd_configs", None)
        if not blocks:
            continue
        http_blocks = job.setdefault("http_sd_configs", [])
        for block in blocks:
            for service in block.get("services", []):
                entry: dict[str, Any] = {"url": url_for(block["server"], service)}
                if "refresh_interval" in block:
                    entry["refresh_interval"] = block["refresh_interval"]
                http_blocks.append(entry)
    return result


def checkable_prometheus_config(text: str) -> tuple[str, str | None]:
    """The config text promtool can check here, and a note when consul_sd had to be swapped."""
    if promtool_has_consul_sd():
        return text, None
    config = yaml.safe_load(text)
    swapped = consul_sd_as_http_sd(config, lambda server, service: f"http://{server}/v1/health/service/{service}")
    note = "local promtool lacks consul_sd (Debian build); consul_sd_configs checked as http_sd_configs"
    return yaml.safe_dump(swapped, sort_keys=False), note
