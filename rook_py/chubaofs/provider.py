"""The ChubaoFS provider: the ``ChubaoMonitor`` API and its controller.

Registered under the ``rook_py.providers`` entry point as ``chubaofs``; the generic
``rook chubaofs operator`` command loads it, installs :meth:`ChubaoFSProvider.crds`, and calls
:meth:`ChubaoFSProvider.setup` to wire the monitor controller into the manager.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rook_py.chubaofs.api import types as t
from rook_py.chubaofs.api.crd import chubao_monitor_crd
from rook_py.chubaofs.monitor.controller import MANAGED_KINDS, MonitorReconciler, secret_mapper
from rook_py.chubaofs.monitor.reload import HttpReloader, Reloader
from rook_py.chubaofs.settings import ChubaoFSSettings
from rook_py.framework.controller import ControllerBuilder
from rook_py.framework.provider import OperatorSettings, Provider, WebhookSpec

if TYPE_CHECKING:
    from rook_py.framework.manager import Manager

JSON = dict[str, Any]
CONTROLLER_NAME = "chubaomonitor"
# Name of the operator's own metrics Service (port 8080), scraped by the generated Prometheus.
OPERATOR_SERVICE = "rook-chubaofs-operator"


def operator_targets(settings: OperatorSettings) -> Sequence[str]:
    """host:port of the operator's metrics for Prometheus' operator job.

    ``--operator-metrics-targets`` overrides the default, the operator Service
    ``rook-chubaofs-operator`` in the operator's namespace; metrics off means no target.
    """
    override = settings.of(ChubaoFSSettings).operator_metrics_targets
    if override:
        return tuple(override)
    if settings.metrics_bind_address in ("0", ""):
        return ()
    return (f"{OPERATOR_SERVICE}.{settings.namespace}.svc:{t.OPERATOR_METRICS_PORT}",)


class ChubaoFSProvider(Provider):
    name = "chubaofs"
    settings_type = ChubaoFSSettings

    def __init__(self, reloader: Reloader | None = None) -> None:
        """``reloader`` replaces the HTTP reloader (tests, or an operator outside the cluster
        network); ``load_providers`` constructs the provider without arguments."""
        self._reloader = reloader

    def crds(self) -> list[JSON]:
        return [chubao_monitor_crd()]

    def webhooks(self, settings: OperatorSettings) -> WebhookSpec:
        from rook_py.chubaofs.api import webhooks as w

        return WebhookSpec(service=w.WEBHOOK_SERVICE, secret=w.WEBHOOK_SECRET,
                           validating_configurations=(w.VALIDATING_CONFIGURATION,),
                           mutating_configurations=(w.MUTATING_CONFIGURATION,))

    def setup(self, manager: Manager, settings: OperatorSettings) -> None:
        """Wire the ChubaoMonitor controller.

        It reconciles on any change of a ChubaoMonitor (status included: those passes are
        write-free), of an object it controls, and of a Secret a monitor references.
        """
        cfs = settings.of(ChubaoFSSettings)
        reconciler = MonitorReconciler(
            manager.client, manager.reader, manager.event_recorder("chubaofs-monitor-controller"),
            reloader=self._reloader or HttpReloader(timeout=cfs.reload_timeout),
            settle_seconds=cfs.reload_settle,
            operator_targets=operator_targets(settings),
        )
        builder = ControllerBuilder(manager).named(CONTROLLER_NAME).for_(t.API_VERSION, t.KIND)
        for api_version, kind in MANAGED_KINDS:
            if kind != "Secret":
                builder.owns(api_version, kind)
        # One Secret informer serves both: generated Secrets through their owner reference, the
        # user's referenced ones through the mapper.
        builder.owns("v1", "Secret")
        builder.watches("v1", "Secret", secret_mapper(manager.reader))
        builder.with_options(max_concurrent_reconciles=settings.max_concurrent_reconciles)
        builder.complete(reconciler)
        if manager.webhook_server is not None:
            from rook_py.chubaofs.api.webhooks import (
                MonitorDefaulter,
                MonitorValidator,
                default_client_secret_getter,
            )
            from rook_py.framework.webhook import WebhookBuilder

            (WebhookBuilder(manager).for_(t.API_VERSION, t.KIND)
             .with_defaulter(MonitorDefaulter())
             .with_validator(MonitorValidator(default_client_secret_getter(manager.client)))
             .complete())

    def pre_start(self, client: Any, settings: OperatorSettings) -> None:
        """Runs on every replica before the manager starts; idempotent.

        Ensures the node-daemon DaemonSets ``rook-discover`` and ``rook-chubaofs-agent`` (or removes
        them when switched off; see ``rook_py.chubaofs.operator``). CRD installation is the generic
        operator command's job (``settings.install_crds``). It is also how a live change of a
        node-daemon setting in the settings ConfigMap is applied (the default
        ``Provider.settings_changed``): the DaemonSets are updated in place.
        """
        from rook_py.chubaofs.operator import ensure_node_daemons

        ensure_node_daemons(client, settings)

    def add_commands(self, subparsers: argparse._SubParsersAction[Any]) -> None:
        """``rook chubaofs agent``: the node agent (metrics, Consul registration)."""
        from rook_py.chubaofs.agent.command import add_agent_command

        add_agent_command(subparsers)
