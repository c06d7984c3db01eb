"""The provider plugin contract: how a storage system plugs into the generic operator.

A provider is a package exposing a ``Provider`` subclass under the ``rook_py.providers`` entry
point group (``setup.cfg``: ``chubaofs = rook_py.chubaofs.provider:ChubaoFSProvider``). The framework
never imports a provider by name: ``load_providers()`` discovers them, and the generic CLI gives
each one ``rook <name> operator`` plus whatever subcommands it adds.

What ``rook <name> operator`` does with a provider, in order:

1. parse flags into an ``OperatorSettings`` and configure logging;
2. build a Client; verify that every CRD in ``provider.crds()`` is installed and served (or
   create/update them with ``--install-crds``); then call ``provider.pre_start(client, settings)``
   for provider start-up work (node-daemon DaemonSets, one-off migrations). It runs on every
   replica, before leader election: it must be idempotent and safe to run concurrently;
3. build a Manager from the settings and call ``provider.setup(manager, settings)``, in which the
   provider wires its controllers (``ControllerBuilder(manager)...complete(r)``), health checks
   and metrics. ``setup`` must not block nor start threads: the manager starts everything;
4. ``manager.start()``; the process exits non-zero when it raises (e.g. lost lease).
"""

from __future__ import annotations

import argparse
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from rook_py.framework.logging import get_logger

if TYPE_CHECKING:
    from rook_py.framework.manager import Manager, ManagerOptions

JSON = dict[str, Any]
ENTRY_POINT_GROUP = "rook_py.providers"
log = get_logger(__name__)


@dataclass
class OperatorSettings:
    """Everything ``rook <provider> operator`` knows from its flags and environment.

    ``namespace`` is where the operator itself runs (its Lease, its own objects);
    ``watch_namespace`` limits the caches to one namespace (``None``: all namespaces).
    ``extra`` carries provider-specific flags added through ``Provider.add_commands``.
    """

    provider: str = ""
    namespace: str = "rook-system"
    watch_namespace: str | None = None
    image: str = ""
    kubeconfig: str | None = None
    context: str | None = None
    leader_election: bool = True
    leader_election_id: str = ""
    leader_election_namespace: str | None = None
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    install_crds: bool = True
    metrics_bind_address: str = ":8080"
    health_probe_bind_address: str = ":8081"
    graceful_shutdown_timeout: float = 30.0
    max_concurrent_reconciles: int = 1
    log_level: str = "info"
    log_format: str = "json"
    identity: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def lease_name(self) -> str:
        return self.leader_election_id or f"rook-{self.provider}-operator-lock"

    def manager_options(self) -> ManagerOptions:
        """The Manager options these settings imply."""
        from rook_py.framework.manager import ManagerOptions

        return ManagerOptions(
            namespace=self.watch_namespace,
            leader_election=self.leader_election,
            leader_election_id=self.lease_name(),
            leader_election_namespace=self.leader_election_namespace or self.namespace,
            lease_duration=self.lease_duration,
            renew_deadline=self.renew_deadline,
            retry_period=self.retry_period,
            metrics_bind_address=self.metrics_bind_address,
            health_probe_bind_address=self.health_probe_bind_address,
            graceful_shutdown_timeout=self.graceful_shutdown_timeout,
            identity=self.identity or os.environ.get("POD_NAME") or None,
        )


class Provider(ABC):
    """A storage provider. Subclasses set ``name`` and implement ``crds`` and ``setup``.

    Instances are created once per process with no arguments; keep ``__init__`` cheap (the CLI
    loads every provider to list them).
    """

    #: CLI and entry-point name: lower-case, ``[a-z0-9-]+``.
    name: str = ""

    @abstractmethod
    def crds(self) -> list[JSON]:
        """The provider's CustomResourceDefinitions (apiextensions.k8s.io/v1 dicts)."""

    @abstractmethod
    def setup(self, manager: Manager, settings: OperatorSettings) -> None:
        """Wire controllers and checks into ``manager``; do not block, do not start threads."""

    def add_commands(self, subparsers: argparse._SubParsersAction[Any]) -> None:  # noqa: B027
        """Add provider-specific subcommands under ``rook <name>``; ``operator`` is the framework's."""

    def pre_start(self, client: Any, settings: OperatorSettings) -> None:  # noqa: B027
        """Runs before the manager on every replica; idempotent. Default: nothing."""


def load_providers() -> dict[str, Provider]:
    """Instantiate every provider registered under the ``rook_py.providers`` entry point group.

    A provider that fails to import is logged and skipped, so one broken plugin does not take
    the CLI down for the others. Two providers claiming one name is an error.
    """
    providers: dict[str, Provider] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            loaded = ep.load()
            provider = loaded() if isinstance(loaded, type) else loaded
        except Exception as err:
            log.error("cannot load provider", entry_point=ep.name, error=repr(err))
            continue
        if not isinstance(provider, Provider):
            log.error("entry point is not a Provider", entry_point=ep.name, type=type(provider).__name__)
            continue
        name = provider.name or ep.name
        if name in providers:
            raise ValueError(f"two providers are named {name!r}")
        providers[name] = provider
    return providers
