"""rook-py's generic operator framework (client-go / controller-runtime for Python).

The common names are importable from here, e.g. ``from rook_py.framework import Manager``.
They load lazily (PEP 562), so ``import rook_py.framework`` stays cheap for the CLI and for
tools that only need one submodule.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    "Manager": "rook_py.framework.manager",
    "ManagerOptions": "rook_py.framework.manager",
    "GracefulShutdownTimeout": "rook_py.framework.manager",
    "LeaderElectionLost": "rook_py.framework.leaderelection",
    "EventRecorder": "rook_py.framework.events",
    "Provider": "rook_py.framework.provider",
    "OperatorSettings": "rook_py.framework.settings",
    "load_providers": "rook_py.framework.provider",
    "ControllerBuilder": "rook_py.framework.controller",
    "Controller": "rook_py.framework.controller",
    "Request": "rook_py.framework.controller",
    "Result": "rook_py.framework.controller",
    "Reconciler": "rook_py.framework.controller",
    "TerminalError": "rook_py.framework.controller",
    "configure_logging": "rook_py.framework.logging",
    "get_logger": "rook_py.framework.logging",
}

__all__ = [
    "Controller",
    "ControllerBuilder",
    "EventRecorder",
    "GracefulShutdownTimeout",
    "LeaderElectionLost",
    "Manager",
    "ManagerOptions",
    "OperatorSettings",
    "Provider",
    "Reconciler",
    "Request",
    "Result",
    "TerminalError",
    "configure_logging",
    "get_logger",
    "load_providers",
]

if TYPE_CHECKING:
    from rook_py.framework.controller import (
        Controller,
        ControllerBuilder,
        Reconciler,
        Request,
        Result,
        TerminalError,
    )
    from rook_py.framework.events import EventRecorder
    from rook_py.framework.leaderelection import LeaderElectionLost
    from rook_py.framework.logging import configure_logging, get_logger
    from rook_py.framework.manager import GracefulShutdownTimeout, Manager, ManagerOptions
    from rook_py.framework.provider import Provider, load_providers
    from rook_py.framework.settings import OperatorSettings


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
