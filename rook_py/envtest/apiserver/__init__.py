"""The envtest API-server emulator: a Kubernetes API server in Python over real HTTP(S).

``APIServer`` is the entry point (see docs/architecture.md, envtest); ``LocalAPI`` is its
in-process face for the cluster simulator; ``Faults`` and ``RequestStats`` are test hooks.
"""

from .faults import Faults
from .local import LocalAPI
from .registry.base import ServedResource
from .server import APIServer
from .stats import RequestStats

__all__ = ["APIServer", "Faults", "LocalAPI", "RequestStats", "ServedResource"]
