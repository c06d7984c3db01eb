"""envtest: a local Kubernetes API for tests, benchmarks and demos (controller-runtime's envtest, in Python).

``Environment`` starts either a real control plane (``$KUBEBUILDER_ASSETS``) or the built-in emulator
with a simulated cluster; the pytest plugin gives each test a fresh one as the ``envtest`` fixture.
``emulator_only`` marks tests that need the emulator (fault injection, simulated kubelet,
controller-manager behaviour) so they skip on a real control plane, with the reason they give::

    from rook_py.envtest import emulator_only

    @emulator_only(reason="a kubelet: pods run and crash only on the simulated one")
    def test_pod_crash_is_reported(envtest): ...

    pytestmark = emulator_only(reason="fault injection")          # or a whole module

Nodes are a count or explicit ``NodeSpec(name, labels, taints, unschedulable)`` values.

The names are resolved on first use: pytest imports this package for every run (the plugin lives
here), and a test session that never starts an environment should not pay for, or depend on, the
emulator and simulator modules.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rook_py.envtest.cluster.nodes import NodeSpec
    from rook_py.envtest.environment import Environment, EnvtestStartError, resolve_backend

__all__ = ["Environment", "EnvtestStartError", "NodeSpec", "emulator_only", "resolve_backend"]

_LAZY = {
    "Environment": "rook_py.envtest.environment",
    "EnvtestStartError": "rook_py.envtest.environment",
    "resolve_backend": "rook_py.envtest.environment",
    "NodeSpec": "rook_py.envtest.cluster.nodes",
}


def __getattr__(name: str) -> Any:
    if name == "emulator_only":
        import pytest  # a test-time dependency: only needed by whoever asks for the marker

        return pytest.mark.emulator_only
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value
