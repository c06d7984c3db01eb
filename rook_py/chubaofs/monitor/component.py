"""What a monitor component module gives the controller: one ``plan(ctx, rendered, reader)``.

Each component (``consul``, ``alertmanager``, ``prometheus``, ``grafana``) is a module of pure
builders with one entry point of the :data:`Planner` shape, as a Rook provider is a folder of
builders its operator calls in turn. The controller renders the configuration of the whole
stack once per pass (:class:`Rendered`; a renderer's ``ValueError`` is an invalid spec, found
before anything is written), then loops over the components, asks each for its :class:`Plan`
and carries it out the same way for all of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rook_py.chubaofs.monitor.common import MonitorContext
from rook_py.framework.objects import ObjectReader

if TYPE_CHECKING:  # the component modules import this one for Plan
    from rook_py.chubaofs.monitor.grafana import GrafanaConfig
    from rook_py.chubaofs.monitor.prometheus import PrometheusConfig

JSON = dict[str, Any]


@dataclass(frozen=True)
class Rendered:
    """The stack's configuration, rendered once per pass before any write.

    ``alertmanager`` is the generated default configuration, ``None`` when the user names a
    ``configSecret`` (or Alertmanager is disabled).
    """

    prometheus: PrometheusConfig
    grafana: GrafanaConfig
    alertmanager: str | None


@dataclass(frozen=True)
class ConfigReload:
    """Configuration the pods re-read on ``POST /-/reload``: its digest and every pod to ask
    (see :mod:`rook_py.chubaofs.monitor.reload`)."""

    config_hash: str
    pod_urls: list[str]


@dataclass
class Plan:
    """One component's desired state for this pass.

    ``objects`` are applied in order before ``workload`` (configuration first, so a new pod never
    starts without it; then Services, PodDisruptionBudget, Ingress); ``workload`` (a Deployment
    or StatefulSet) is applied last, after its storage changes and configuration delivery.
    ``create_only`` objects are created when absent and never changed (a generated password).
    ``reload`` is set for hot-reloadable configuration; a component without it rolls its pods
    through a pod-template annotation instead, or has no configuration. ``endpoint`` is the URL
    reported in ``status.endpoints``; ``image`` what the component reports running before its
    workload exists.
    """

    objects: list[JSON]
    workload: JSON
    endpoint: str
    image: str
    create_only: list[JSON] = field(default_factory=list)
    reload: ConfigReload | None = None

    def wanted(self) -> set[tuple[str, str]]:
        """(kind, name) of every object the plan keeps; the component's other objects go."""
        return {(o["kind"], o["metadata"]["name"])
                for o in (*self.objects, self.workload, *self.create_only)}


# ``plan(ctx, rendered, reader)``: the reader is the controller's cache, for what a component
# takes from objects the operator does not own (the user's Alertmanager Secret).
Planner = Callable[[MonitorContext, Rendered, ObjectReader], Plan]
