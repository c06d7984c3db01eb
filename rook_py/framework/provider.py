"""The provider plugin contract: how a storage system plugs into the generic operator.

A provider is a package exposing a ``Provider`` subclass under the ``rook_py.providers`` entry
point group (``setup.cfg``: ``chubaofs = rook_py.chubaofs.provider:ChubaoFSProvider``). The framework
never imports a provider by name: ``load_providers()`` discovers them, and the generic CLI gives
each one ``rook <name> operator`` plus whatever subcommands it adds.

What ``rook <name> operator`` does with a provider, in order:

1. parse flags into an ``OperatorSettings`` (the provider's own declared settings,
   ``settings_type``, in ``settings.provider_settings``) and configure logging;
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
from abc import ABC, abstractmethod
from collections.abc import Set
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, ClassVar

from rook_py.framework.logging import get_logger
from rook_py.framework.settings import OperatorSettings

if TYPE_CHECKING:
    from rook_py.framework.manager import Manager

__all__ = ["ENTRY_POINT_GROUP", "OperatorSettings", "Provider", "load_providers"]

JSON = dict[str, Any]
ENTRY_POINT_GROUP = "rook_py.providers"
log = get_logger(__name__)


class Provider(ABC):
    """A storage provider. Subclasses set ``name`` and implement ``crds`` and ``setup``.

    Instances are created once per process with no arguments; keep ``__init__`` cheap (the CLI
    loads every provider to list them).
    """

    #: CLI and entry-point name: lower-case, ``[a-z0-9-]+``.
    name: str = ""
    #: The provider's own settings: a dataclass whose fields are declared with
    #: ``rook_py.framework.settings.setting``. Its flags join ``rook <name> operator`` (with env
    #: fallback, the settings ConfigMap, the reference and the start-up log, like the
    #: framework's); the values reach the provider as ``settings.of(settings_type)``.
    settings_type: ClassVar[type[Any] | None] = None

    @property
    def field_manager(self) -> str:
        """The server-side apply field manager of everything this provider's operator applies
        (its custom resources' objects, its CRDs, its node DaemonSets): ``rook-<name>``."""
        return f"rook-{self.name}"

    @abstractmethod
    def crds(self) -> list[JSON]:
        """The provider's CustomResourceDefinitions (apiextensions.k8s.io/v1 dicts)."""

    @abstractmethod
    def setup(self, manager: Manager, settings: OperatorSettings) -> None:
        """Wire controllers and checks into ``manager``; do not block, do not start threads."""

    def webhooks(self, settings: OperatorSettings) -> WebhookSpec | None:
        """The provider's webhook Service, certificate Secret and configurations, or None when
        it has no webhooks (default). With ``--enable-webhooks`` the generic operator then runs a
        webhook server (``manager.webhook_server``) in which ``setup`` registers its handlers."""
        return None

    def add_commands(self, subparsers: argparse._SubParsersAction[Any]) -> None:  # noqa: B027
        """Add provider-specific subcommands under ``rook <name>``; ``operator`` is the framework's."""

    def pre_start(self, client: Any, settings: OperatorSettings) -> None:  # noqa: B027
        """Runs before the manager on every replica; idempotent. Default: nothing."""

    def settings_changed(self, client: Any, settings: OperatorSettings, changed: Set[str]) -> None:
        """The settings ConfigMap changed only settings declared ``live`` (the framework's log level
        or format, which node daemons may inherit, or the provider's own): apply them without a
        restart. ``changed`` holds flag names; ``settings`` is the new whole. Runs on every
        replica, like ``pre_start``; raising logs the error, keeps the operator running and tries
        again later. Default: run ``pre_start`` again, which is idempotent by contract."""
        self.pre_start(client, settings)


@dataclass(frozen=True)
class WebhookSpec:
    """Names of what a provider's manifests create for its webhooks (all in the operator's
    namespace, or cluster-scoped): the Service in front of the webhook port, the Secret the
    self-managed certificate lives in, and the configurations (and multi-version CRDs) whose
    clientConfig gets the CA bundle."""

    service: str
    secret: str
    validating_configurations: tuple[str, ...] = ()
    mutating_configurations: tuple[str, ...] = ()
    conversion_crds: tuple[str, ...] = ()


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
