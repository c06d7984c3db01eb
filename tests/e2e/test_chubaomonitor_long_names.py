"""ChubaoMonitor names as long as the API server accepts (253 characters), on both back ends: the
operator refuses them as InvalidSpec (owned objects could not carry them), and every label value
and selector it builds for them still fits Kubernetes' limits, so deleting one is prompt: its
cleanup never sends a selector the API server refuses (which used to cost four CleanupFailed
warnings and a CleanupAbandoned after ~16 s on kube-apiserver)."""

from __future__ import annotations

from typing import Any

import pytest

from rook_py.chubaofs.api import types as t
from rook_py.chubaofs.monitor import common
from rook_py.chubaofs.monitor.common import MonitorContext
from rook_py.framework.client.errors import NotFound
from rook_py.framework.kube.selectors import parse_selector, validate_label_value
from tests.e2e.test_chubaomonitor import NS, env, monitor_body, running_operator, status_of, wait_for

__all__ = ["env"]  # the fixture, shared with the main ChubaoMonitor suite

LONGEST = ("a" * 60 + ".") * 4 + "b" * 9  # 253 characters, a valid DNS subdomain with dots
NAMES = [LONGEST, "m" * 64]


def test_names_are_as_long_as_a_custom_resource_name_may_be() -> None:
    assert len(LONGEST) == 253 and len(NAMES[1]) == 64


@pytest.mark.parametrize("name", NAMES, ids=["253-chars", "64-chars"])
def test_every_label_value_and_selector_fits_for_any_accepted_name(name: str) -> None:
    ctx = MonitorContext(monitor_body(name), {})
    for component in t.COMPONENTS:
        for value in common.labels(ctx, component).values():
            assert validate_label_value(value) == []
        parse_selector(common.instance_selector(ctx, component))
    parse_selector(common.instance_selector(ctx))


def test_a_253_character_name_is_refused_and_deleted_promptly(env: Any) -> None:
    client = env.client()
    with running_operator(env):
        client.create(monitor_body(LONGEST))

        def invalid() -> bool:
            return any(c["type"] == "InvalidSpec" and c["status"] == "True"
                       for c in status_of(client, LONGEST).get("conditions") or [])

        wait_for("InvalidSpec", invalid)
        monitor = client.get(t.API_VERSION, t.KIND, LONGEST, NS)
        assert t.FINALIZER in monitor["metadata"].get("finalizers", [])
        client.delete(t.API_VERSION, t.KIND, LONGEST, NS)

        def gone() -> bool:
            try:
                client.get(t.API_VERSION, t.KIND, LONGEST, NS)
            except NotFound:
                return True
            return False

        # One cleanup pass, no retries: well under the first CleanupFailed requeue (2 s here).
        wait_for("the monitor to be deleted", gone, timeout=10.0)
        reasons = [e["reason"] for e in client.list("v1", "Event", NS)["items"]]
        assert "CleanupFailed" not in reasons and "CleanupAbandoned" not in reasons
