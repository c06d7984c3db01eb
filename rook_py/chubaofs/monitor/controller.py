"""The ChubaoMonitor controller: one reconcile installs, upgrades, repairs or removes the stack.

Read it top to bottom like kubernetes/sample-controller's syncHandler:

1. fetch the ChubaoMonitor from the cache (gone: forget it);
2. being deleted: remove owned objects (and data only when the cleanup policy confirms it), then
   the finalizer, always, after at most ``cleanup_attempts`` tries;
3. make sure our finalizer is present;
4. default and validate the spec and render the configuration; a problem sets InvalidSpec and
   an Event and changes nothing else (the status still records the generation as processed and
   reports the running stack's health, read from the cache);
5. per component, in install order (Consul, Alertmanager, Prometheus, Grafana), the same steps
   for all: remove it when disabled (PVCs stay; it reports disabled once its workload and
   Services are gone); otherwise ask its module for a plan (``plan(ctx, rendered, reader)``,
   see :mod:`.component`), apply the plan's config, Services and other objects, let the
   storage transitions (:mod:`.storage`) expand volumes, recreate the StatefulSet around its
   running pods or refuse data-loss changes, deliver config changes by hot reload, apply the
   workload, and prune what the plan no longer wants;
6. write the status last, through the status subresource, only when it changed.

Writes happen only for differences (``objects.apply``), so a steady-state pass makes none.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rook_py.chubaofs.api import types as t
from rook_py.chubaofs.api.defaults import with_defaults
from rook_py.chubaofs.api.validation import validate
from rook_py.chubaofs.monitor import alertmanager, common, consul, grafana, prometheus
from rook_py.chubaofs.monitor.common import MonitorContext, describe
from rook_py.chubaofs.monitor.component import ConfigReload, Plan, Planner, Rendered
from rook_py.chubaofs.monitor.reload import DEFAULT_SETTLE_SECONDS, ConfigDelivery, HttpReloader, Reloader
from rook_py.chubaofs.monitor.status import (
    Outcome,
    awaiting_removal,
    compute_status,
    disabled_status,
    disabling_status,
    recreating,
    workload_status,
)
from rook_py.chubaofs.monitor.storage import StorageTransitions
from rook_py.chubaofs.monitor.writer import NORMAL, WARNING, Writer
from rook_py.framework import objects
from rook_py.framework.client.errors import ApiError
from rook_py.framework.controller import Request, Result
from rook_py.framework.logging import get_logger

JSON = dict[str, Any]
log = get_logger(__name__)

# The kinds the operator creates for a ChubaoMonitor, in the order cleanup deletes them
# (workloads first so no pod keeps writing while its Services and config go away).
MANAGED_KINDS: tuple[tuple[str, str], ...] = (
    ("apps/v1", "StatefulSet"), ("apps/v1", "Deployment"), ("policy/v1", "PodDisruptionBudget"),
    ("networking.k8s.io/v1", "Ingress"), ("v1", "Service"), ("v1", "ConfigMap"), ("v1", "Secret"),
)
WORKLOAD_KINDS = ("StatefulSet", "Deployment")
# What runs a component or routes traffic to it: a disabled component is not "disabled" while
# any of these still exists. ConfigMaps and Secrets going a moment later serve nobody.
SERVING_KINDS = (*WORKLOAD_KINDS, "Service", "Ingress")
# Owned names derive from the monitor's name. The tightest limit: a StatefulSet pod's
# controller-revision-hash label "<name>-alertmanager-<10-char hash>" must fit in 63 characters.
MAX_NAME_LENGTH = 39
# Service names are DNS-1035 labels (a letter first), stricter than custom-resource names.
NAME_RE = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")

# How often a pass re-checks whether a replaced workload is gone (its deletion also triggers a
# reconcile through the owned-object watch; this bounds a missed or coalesced event).
REPLACE_POLL_SECONDS = 1.0

# Each component's builders, by component; the loop visits them in install order
# (``t.COMPONENTS``: Consul, where the others register, first; Grafana last).
PLANNERS: dict[str, Planner] = {
    t.CONSUL: consul.plan,
    t.ALERTMANAGER: alertmanager.plan,
    t.PROMETHEUS: prometheus.plan,
    t.GRAFANA: grafana.plan,
}


def render(ctx: MonitorContext, operator_targets: Sequence[str] = ()) -> Rendered:
    """The stack's configuration for this pass; ``ValueError`` for what a renderer refuses.
    Prometheus and Grafana are rendered even when disabled, so a spec is judged the same way
    whichever components it enables."""
    am_default = None
    if ctx.enabled(t.ALERTMANAGER) and not ctx.component(t.ALERTMANAGER).get("configSecret"):
        am_default = alertmanager.default_config(ctx)
    return Rendered(prometheus.render_config(ctx, operator_targets), grafana.render_config(ctx),
                    am_default)


@dataclass
class WorkloadState:
    """What one pass made of a component's workload.

    ``live`` is the workload as applied, ``None`` while it is absent or being replaced;
    ``waiting_on`` names replaced workloads that still exist; ``recreating`` says the
    StatefulSet was deleted with its pods orphaned and is being created again (grown volume
    templates). Either of the last two holds the component not ready and asks for a requeue.
    """

    live: JSON | None
    requeue: float | None = None
    waiting_on: list[str] = field(default_factory=list)
    recreating: bool = False


def _key(obj: JSON) -> tuple[str, str]:
    return obj["kind"], obj["metadata"]["name"]


class MonitorReconciler:
    """Reconciles one ChubaoMonitor per call; safe for concurrent workers on different keys."""

    def __init__(self, client: Any, reader: Any, recorder: Any, *,
                 reloader: Reloader | None = None,
                 settle_seconds: float = DEFAULT_SETTLE_SECONDS,
                 operator_targets: Sequence[str] = (),
                 cleanup_attempts: int = 5,
                 cleanup_backoff: float = 2.0) -> None:
        self._client = client
        self._reader = reader
        self._writer = Writer(client, reader, recorder)
        self._storage = StorageTransitions(self._writer)
        self._delivery = ConfigDelivery(reloader or HttpReloader(), settle_seconds=settle_seconds)
        self._operator_targets = tuple(operator_targets)
        self._cleanup_attempts = cleanup_attempts
        self._cleanup_backoff = cleanup_backoff
        self._cleanup_failures: dict[str, int] = {}
        self._lock = threading.Lock()

    # --- the loop --------------------------------------------------------------------------------

    def reconcile(self, request: Request) -> Result | None:
        monitor = self._reader.get(t.API_VERSION, t.KIND, request.name, request.namespace)
        if monitor is None:
            self._forget(f"{request.namespace}/{request.name}/")
            return None
        if monitor["metadata"].get("deletionTimestamp"):
            return self._finalize(monitor)
        if t.FINALIZER not in (monitor["metadata"].get("finalizers") or []):
            objects.add_finalizer(self._client, monitor, t.FINALIZER)

        ctx = MonitorContext(monitor, with_defaults(monitor.get("spec")))
        problems = self._validate(ctx)
        rendered = None
        if not problems:
            try:
                rendered = render(ctx, self._operator_targets)
            except ValueError as err:
                problems.append(str(err))
        if problems or rendered is None:
            self._report_invalid(ctx, problems)
            return None

        outcome = Outcome()
        requeue: list[float] = []
        owned = self._owned_objects(ctx)
        try:
            for component in t.COMPONENTS:
                after = self._reconcile_component(ctx, component, rendered,
                                                  owned.get(component, []), outcome)
                if after is not None:
                    requeue.append(after)
        except ApiError as err:
            outcome.error = f"{type(err).__name__}: {err.message}"
            self._writer.event(monitor, WARNING, "ReconcileError", outcome.error)
            self._write_status_best_effort(monitor, outcome)
            raise
        self._write_status(monitor, outcome)
        return Result(requeue_after=min(requeue)) if requeue else None

    # --- validation and rendering ----------------------------------------------------------------

    def _validate(self, ctx: MonitorContext) -> list[str]:
        problems = []
        if len(ctx.name) > MAX_NAME_LENGTH:
            problems.append(f"metadata.name: at most {MAX_NAME_LENGTH} characters, so that the "
                            "names of owned objects and their pods' labels stay valid")
        if not NAME_RE.match(ctx.name):
            problems.append("metadata.name: must start with a letter and contain only lower-case "
                            "letters, digits and '-' (it prefixes Service names)")

        def lookup(name: str) -> JSON | None:
            secret: JSON | None = self._reader.get("v1", "Secret", name, ctx.namespace)
            return secret

        return problems + validate(ctx.spec, secrets=lookup)

    def _report_invalid(self, ctx: MonitorContext, problems: list[str]) -> None:
        """InvalidSpec + one Warning Event per distinct message; no owned object is touched."""
        message = "; ".join(problems)
        current = objects.get_condition(ctx.monitor.get("status") or {}, t.COND_INVALID_SPEC)
        if not current or current.get("status") != "True" or current.get("message") != message:
            self._writer.event(ctx.monitor, WARNING, "InvalidSpec", message)
        log.info("invalid spec", problems=problems)
        self._write_status(ctx.monitor, Outcome(invalid=problems, components=self._observe(ctx)))

    def _observe(self, ctx: MonitorContext) -> dict[str, JSON]:
        """The health of the stack as it runs, from the cache only (an invalid spec is not acted
        on, so there is no plan to compare with). Components without a workload keep their last
        report unless that report said something ran (then it is gone)."""
        if len(ctx.name) > MAX_NAME_LENGTH or not NAME_RE.match(ctx.name):
            return {}  # no owned object can carry such a name in its labels: nothing to observe
        previous = (ctx.monitor.get("status") or {}).get("components") or {}
        owned = self._owned_objects(ctx)
        found: dict[str, JSON] = {}
        for component in t.COMPONENTS:
            before = previous.get(component) or {}
            workloads = [o for o in owned.get(component, []) if o["kind"] in WORKLOAD_KINDS]
            live = [o for o in workloads if not o["metadata"].get("deletionTimestamp")]
            if live:
                found[component] = awaiting_removal(
                    workload_status(live[0], str(before.get("image") or "")),
                    [describe(o) for o in workloads if o is not live[0]])
            elif before.get("replicas") or workloads:
                found[component] = awaiting_removal(
                    workload_status(None, str(before.get("image") or "")),
                    [describe(o) for o in workloads])
            elif before:
                found[component] = before
        return found

    # --- one component ---------------------------------------------------------------------------

    def _reconcile_component(self, ctx: MonitorContext, component: str, rendered: Rendered,
                             owned: list[JSON], outcome: Outcome) -> float | None:
        """Carry out the component's plan (or remove it) and report on it; the requeue it needs.

        ``owned`` is the component's objects as the cache listed them at the start of the pass.
        """
        if not ctx.enabled(component):
            return self._disable(ctx, component, owned, outcome)

        plan = PLANNERS[component](ctx, rendered, self._reader)
        for obj in plan.create_only:
            self._writer.create_if_absent(ctx, obj)
        for obj in plan.objects:
            self._writer.apply(ctx, obj)
        state = self._reconcile_workload(ctx, component, plan, outcome)
        self._prune(ctx, owned, keep=plan.wanted())

        # A workload of the component under another kind or name (Grafana's Deployment after
        # storage was added) is being replaced: just pruned, or already terminating. The cache
        # listed it at the start of this pass, so it may still exist; hold readiness until a
        # later pass no longer sees it.
        leftovers = state.waiting_on + [
            describe(o) for o in owned
            if o["kind"] in WORKLOAD_KINDS and _key(o) != _key(plan.workload)]
        report = awaiting_removal(workload_status(state.live, plan.image), leftovers)
        if state.recreating:
            report = recreating(report, describe(plan.workload))
        outcome.components[component] = report
        outcome.endpoints[component] = plan.endpoint
        requeue = state.requeue
        if leftovers or state.recreating:
            outcome.transitions.add(component)
            requeue = min(requeue, REPLACE_POLL_SECONDS) if requeue is not None else REPLACE_POLL_SECONDS
        return requeue

    def _disable(self, ctx: MonitorContext, component: str, owned: list[JSON],
                 outcome: Outcome) -> float | None:
        """Remove a disabled component (its PVCs stay: they are not owned objects) and report it
        disabled only once nothing of it runs or routes traffic any more.

        ``owned`` is the cache's view at the start of the pass, so what this pass deletes is
        still listed: the first pass after disabling always reports "Disabling", and the owned
        objects' delete events (or the requeue, should an event be missed or coalesced) bring
        the pass that sees them gone.
        """
        self._prune(ctx, owned, keep=set())
        lingering = [describe(o) for o in sorted(owned, key=lambda o: _kind_order(o["kind"]))
                     if o["kind"] in SERVING_KINDS]
        external = ctx.component(component).get("externalAddress")
        if external:
            outcome.endpoints[component] = f"http://{external}"
        if lingering:
            outcome.components[component] = disabling_status(lingering)
            outcome.transitions.add(component)
            return REPLACE_POLL_SECONDS
        outcome.components[component] = disabled_status(
            f"using the external Consul at {external}" if external else "disabled")
        return None

    def _reconcile_workload(self, ctx: MonitorContext, component: str, plan: Plan,
                            outcome: Outcome) -> WorkloadState:
        """Apply the workload once its storage changes allow, delivering configuration changes."""
        desired = plan.workload
        key = self._state_key(ctx, component)
        live = self._reader.get(desired["apiVersion"], desired["kind"], desired["metadata"]["name"],
                                ctx.namespace)
        storage = self._storage.prepare(ctx, component, key, live, desired,
                                        refuse=functools.partial(self._refuse, ctx, outcome))
        if storage.held:
            return WorkloadState(None, REPLACE_POLL_SECONDS, list(storage.waiting_on),
                                 storage.recreating)
        requeue = None
        if plan.reload is not None:
            # Between the orphaning delete and the create, the deleted set stands for the pods
            # that still run: it carries what they loaded and their template's config hash.
            running = live if live is not None else storage.orphaned
            requeue = self._deliver_config(ctx, component, key, plan.reload, running, desired)
        applied = self._writer.apply(ctx, desired)
        if storage.orphaned is not None:
            self._storage.recreated(key)
        return WorkloadState(applied, requeue)

    def _deliver_config(self, ctx: MonitorContext, component: str, key: str,
                        reload: ConfigReload, running: JSON | None, desired: JSON) -> float | None:
        """Hot-reload changed configuration into the ``running`` workload's pods, or roll them
        when a reload fails, and record on ``desired`` what they have loaded. Returns the
        requeue that waits for the kubelet to project the change."""
        delivery = self._delivery.deliver(key, running, reload.config_hash, reload.pod_urls)
        if delivery.loaded_hash is not None:
            desired["metadata"].setdefault("annotations", {})[
                common.ANNOTATION_LOADED_CONFIG_HASH] = delivery.loaded_hash
        if delivery.template_hash is not None:
            desired["spec"]["template"]["metadata"].setdefault("annotations", {})[
                common.ANNOTATION_CONFIG_HASH] = delivery.template_hash
        if delivery.fell_back:
            self._writer.event(ctx.monitor, WARNING, "ReloadFailed",
                               f"{component}: hot reload failed ({'; '.join(delivery.failures)}); "
                               "rolling the pods to load the new configuration")
        elif delivery.reloaded and delivery.requeue_after is None:
            self._writer.event(ctx.monitor, NORMAL, "ConfigReloaded",
                               f"{component}: configuration {reload.config_hash} reloaded")
        return delivery.requeue_after

    def _refuse(self, ctx: MonitorContext, outcome: Outcome, messages: list[str]) -> None:
        """Record refused changes (InvalidSpec, Degraded) with one Warning Event per new message."""
        current = objects.get_condition(ctx.monitor.get("status") or {}, t.COND_INVALID_SPEC) or {}
        for message in messages:
            if message not in (current.get("message") or ""):
                self._writer.event(ctx.monitor, WARNING, "ChangeRefused", message)
        outcome.refused.extend(messages)

    # --- owned objects and per-component state ---------------------------------------------------

    @staticmethod
    def _state_key(ctx: MonitorContext, component: str) -> str:
        """The key of a component's in-memory state (config delivery, storage transitions)."""
        return f"{ctx.namespace}/{ctx.name}/{component}"

    def _prune(self, ctx: MonitorContext, owned: Iterable[JSON], keep: set[tuple[str, str]]) -> None:
        """Delete what is no longer wanted. Workloads go in the foreground: the API keeps them,
        with a deletionTimestamp, until the garbage collector has deleted their pods, so "the
        workload still exists" honestly means "its pods may still run" for readiness."""
        for obj in owned:
            if _key(obj) not in keep and not obj["metadata"].get("deletionTimestamp"):
                self._writer.delete(ctx, obj, propagation="Foreground"
                                    if obj["kind"] in WORKLOAD_KINDS else "Background")

    def _forget(self, key_prefix: str) -> None:
        """Drop the in-memory state of a monitor that is gone (keys start with ns/name/)."""
        self._delivery.forget(key_prefix)
        self._storage.forget(key_prefix)

    def _owned_objects(self, ctx: MonitorContext) -> dict[str, list[JSON]]:
        """Objects this very ChubaoMonitor controls, by component (from the cache)."""
        found: dict[str, list[JSON]] = {}
        for api_version, kind in MANAGED_KINDS:
            for obj in self._reader.list(api_version, kind, ctx.namespace,
                                         label_selector=common.instance_selector(ctx)) or []:
                if not common.is_owned_by(obj, ctx.monitor):
                    continue
                component = (obj["metadata"].get("labels") or {}).get(common.LABEL_COMPONENT)
                if component in t.COMPONENTS:
                    obj = {"apiVersion": api_version, "kind": kind, **obj}
                    found.setdefault(component, []).append(obj)
        return found

    # --- status ----------------------------------------------------------------------------------

    def _write_status(self, monitor: JSON, outcome: Outcome) -> None:
        new_status = compute_status(monitor, outcome)
        if new_status != (monitor.get("status") or {}):
            objects.update_status(self._client, monitor, new_status)

    def _write_status_best_effort(self, monitor: JSON, outcome: Outcome) -> None:
        previous = (monitor.get("status") or {}).get("components") or {}
        for component in t.COMPONENTS:
            if component not in outcome.components and component in previous:
                outcome.components[component] = previous[component]
        try:
            self._write_status(monitor, outcome)
        except ApiError as err:
            log.warning("cannot record the reconcile error in status", error=str(err))

    # --- deletion --------------------------------------------------------------------------------

    def _finalize(self, monitor: JSON) -> Result | None:
        if t.FINALIZER not in (monitor["metadata"].get("finalizers") or []):
            return None
        uid = str(monitor["metadata"].get("uid"))
        ctx = MonitorContext(monitor, with_defaults(monitor.get("spec")))
        try:
            self._write_status(monitor, Outcome(deleting=True))
            self._cleanup(ctx)
        except ApiError as err:
            with self._lock:
                attempts = self._cleanup_failures[uid] = self._cleanup_failures.get(uid, 0) + 1
            if attempts < self._cleanup_attempts:
                self._writer.event(monitor, WARNING, "CleanupFailed",
                                   f"cleanup attempt {attempts}/{self._cleanup_attempts} failed: "
                                   f"{err.message}; retrying")
                return Result(requeue_after=self._cleanup_backoff * attempts)
            self._writer.event(monitor, WARNING, "CleanupAbandoned",
                               f"cleanup failed {attempts} times ({err.message}); removing the finalizer "
                               "anyway so deletion does not hang; garbage collection removes owned objects")
        with self._lock:
            self._cleanup_failures.pop(uid, None)
        objects.remove_finalizer(self._client, monitor, t.FINALIZER)
        self._forget(f"{ctx.namespace}/{ctx.name}/")
        return None

    def _cleanup(self, ctx: MonitorContext) -> None:
        for component_objects in self._owned_objects(ctx).values():
            for obj in sorted(component_objects, key=lambda o: _kind_order(o["kind"])):
                if not obj["metadata"].get("deletionTimestamp"):
                    self._writer.delete(ctx, obj, why="the ChubaoMonitor is being deleted")
        policy = ctx.spec.get("cleanupPolicy") or {}
        claims = self._client.list("v1", "PersistentVolumeClaim", ctx.namespace,
                                   label_selector=common.instance_selector(ctx)).get("items") or []
        if not claims:
            return
        names = ", ".join(sorted(c["metadata"]["name"] for c in claims))
        if policy.get("deleteData") and policy.get("confirmation") == t.DESTROY_DATA_CONFIRMATION:
            for claim in claims:
                self._writer.delete(ctx, {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                                          **claim}, why="cleanupPolicy confirmed data deletion")
            self._writer.event(ctx.monitor, WARNING, "DataDeleted", f"deleted PersistentVolumeClaims {names}")
        else:
            self._writer.event(ctx.monitor, NORMAL, "DataRetained",
                               f"kept PersistentVolumeClaims {names} (cleanupPolicy does not confirm "
                               "data deletion)")


def _kind_order(kind: str) -> int:
    return [k for _, k in MANAGED_KINDS].index(kind)


def secret_mapper(reader: Any) -> Callable[[JSON], list[Request]]:
    """Map a Secret to the ChubaoMonitors that reference it (alertmanager.configSecret,
    grafana.adminSecret), so a user's edit is delivered and a missing Secret, once created,
    clears InvalidSpec. Reads only the cache."""
    def mapper(secret: JSON) -> list[Request]:
        meta = secret.get("metadata") or {}
        namespace, name = meta.get("namespace"), meta.get("name")
        requests = []
        for monitor in reader.list(t.API_VERSION, t.KIND, namespace) or []:
            spec = monitor.get("spec") or {}
            if name in ((spec.get("alertmanager") or {}).get("configSecret"),
                        (spec.get("grafana") or {}).get("adminSecret")):
                requests.append(Request(namespace, monitor["metadata"]["name"]))
        return requests
    return mapper
