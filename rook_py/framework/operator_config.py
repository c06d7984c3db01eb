"""The operator settings ConfigMap ``rook-<provider>-operator-config``, as Rook's
``rook-ceph-operator-config`` since Rook 1.5.

It lives in the operator's namespace; its keys are the settings' documented environment names
(``ROOK_LOG_LEVEL``, ``DISCOVER_TOLERATIONS``, ...; every env name of a setting works). A key
set there overrides the environment, which overrides the default; a command-line flag is not
overridden (``rook_py.framework.settings``). Rook reads it at start and on every change
(rook/rook ``pkg/operator/ceph/controller.go`` reconciles the log level and the discover
DaemonSet; ``predicate.go`` reloads the whole manager when ``ROOK_CURRENT_NAMESPACE_ONLY``
changes). Here, at every change:

* settings declared ``live`` are applied in place: the log level and format at once, then
  ``Provider.settings_changed`` (ChubaoFS updates its node DaemonSets: switches, interval,
  tolerations, affinity, ...);
* any other changed setting needs a fresh start: the operator logs which, stops its manager
  (which releases the Lease once in-flight reconciles drained) and exits 0, and Kubernetes starts
  the container again with the new settings;
* a value that does not parse, a key naming no setting and a key of a setting that cannot be
  set there are logged and ignored: the operator keeps what it would use without that key.

Deleting the ConfigMap (or a key) returns those settings to their environment values, so the
running operator always uses what a restart would.

The watch is a one-object informer (``fieldSelector=metadata.name=<name>``), which RBAC can
grant by ``resourceNames``, on every replica: a standby's log level follows too.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Mapping, Set
from dataclasses import dataclass
from typing import Any

from rook_py.framework.client import errors
from rook_py.framework.cmdline import FlagSet
from rook_py.framework.logging import get_logger, set_level
from rook_py.framework.provider import Provider
from rook_py.framework.settings import Declared, OperatorSettings, changed_fields, declared, overlay

JSON = dict[str, Any]
log = get_logger(__name__)
RETRY_PERIOD = 30.0


def configmap_name(provider: str) -> str:
    return f"rook-{provider}-operator-config"


@dataclass
class Applied:
    """Settings with a ConfigMap's data applied: ``settings`` as declared (the node daemons'
    image not resolved yet), ``keys`` the flags it set (name -> key), ``problems`` what it ignored."""

    settings: OperatorSettings
    keys: dict[str, str]
    problems: list[str]


class OperatorConfig:
    """The settings from flags, env and defaults (``base``), and how a ConfigMap's data changes them."""

    def __init__(self, provider: Provider, base: OperatorSettings, *, explicit: Set[str] = frozenset()) -> None:
        self.provider = provider
        self.base = base
        self.explicit = frozenset(explicit)
        self.name = configmap_name(provider.name)
        self.namespace = base.namespace
        self._known = {key for cls in self._classes() for d in declared(cls) for key in d.keys}

    def _classes(self) -> list[type[Any]]:
        own = self.provider.settings_type
        return [OperatorSettings] if own is None else [OperatorSettings, own]

    def apply(self, data: Mapping[str, str] | None) -> Applied:
        data = data or {}
        source = f"ConfigMap {self.name}"
        framework = overlay(self.base, data, explicit=self.explicit, source=source)
        settings, keys, problems = framework.value, dict(framework.applied), list(framework.problems)
        own = self.provider.settings_type
        if own is not None:
            provider = overlay(self.base.of(own), data, explicit=self.explicit, source=source)
            settings = dataclasses.replace(settings, provider_settings=provider.value)
            keys.update(provider.applied)
            problems += provider.problems
        problems += [f"{source} key {key}: no such setting; ignored" for key in sorted(data) if key not in self._known]
        return Applied(settings, keys, problems)

    def read(self, client: Any) -> dict[str, str] | None:
        """The ConfigMap's data, or None when there is none. Not being allowed to read it (or any
        other API error) is logged and counts as none: the settings from env still work."""
        try:
            configmap = client.get("v1", "ConfigMap", self.name, self.namespace)
        except errors.NotFound:
            return None
        except errors.ApiError as err:
            log.warning("cannot read the operator settings ConfigMap; using env and defaults",
                        configmap=self.name, namespace=self.namespace, error=str(err))
            return None
        return dict(configmap.get("data") or {})

    def changes(self, old: OperatorSettings, new: OperatorSettings) -> list[Declared]:
        out = changed_fields(old, new)
        own = self.provider.settings_type
        if own is not None:
            out += changed_fields(old.of(own), new.of(own))
        return out

    def log_applied(self, applied: Applied) -> None:
        for problem in applied.problems:
            log.warning("operator settings ConfigMap: value ignored", configmap=self.name, problem=problem)
        if applied.keys:
            by_flag = {d.flag.name: d for cls in self._classes() for d in declared(cls)}
            values = {key: shown(by_flag[name], applied.settings, self.provider) for name, key in applied.keys.items()}
            log.info("operator settings from ConfigMap", configmap=self.name, values=values)


def shown(d: Declared, settings: OperatorSettings, provider: Provider) -> Any:
    """A setting's value for the log (secrets masked, durations as Go writes them)."""
    own = provider.settings_type
    holder = settings if own is None or d in declared(OperatorSettings) else settings.of(own)
    return FlagSet([d.flag]).masked({d.flag.dest: getattr(holder, d.field)})[d.flag.name]


class ConfigWatcher:
    """A Manager runnable on every replica: watches the ConfigMap and applies changes (module
    docstring). ``on_restart`` is called once, with the changed flag names, when a change needs
    a fresh start."""

    def __init__(self, config: OperatorConfig, client: Any, applied: Applied, running: OperatorSettings,
                 on_restart: Callable[[list[str]], None]) -> None:
        self.config = config
        self.client = client
        self.applied = applied
        self.running = running
        self.on_restart = on_restart
        self.restart_requested: list[str] = []
        self._lock = threading.Lock()

    def need_leader_election(self) -> bool:
        return False

    def start(self, stop: threading.Event) -> None:
        from rook_py.framework.cache.informer import ResourceEventHandlerFuncs, SharedIndexInformer
        from rook_py.framework.cache.reflector import ClientListerWatcher

        lister_watcher = ClientListerWatcher(self.client, "v1", "ConfigMap", namespace=self.config.namespace,
                                             field_selector=f"metadata.name={self.config.name}")
        # The resync re-offers the same data: a live change whose application failed (an API
        # error while updating a DaemonSet) is tried again instead of waiting for the next edit.
        informer = SharedIndexInformer(lister_watcher, name=f"configmap {self.config.name}",
                                       resync_period=RETRY_PERIOD)
        informer.add_event_handler(ResourceEventHandlerFuncs(
            add_func=lambda obj, initial: self.on_data(obj.get("data")),
            update_func=lambda old, new: self.on_data(new.get("data")),
            delete_func=lambda obj: self.on_data(None)))
        informer.run(stop)

    def on_data(self, data: Mapping[str, str] | None) -> None:
        """Apply one state of the ConfigMap; never raises (a handler error would only be logged
        by the informer, but the reason belongs in our log line)."""
        try:
            with self._lock:
                self._on_data(data)
        except Exception as err:
            log.error("cannot apply the operator settings ConfigMap", configmap=self.config.name,
                      error=f"{type(err).__name__}: {err}")

    def _on_data(self, data: Mapping[str, str] | None) -> None:
        if self.restart_requested:
            return
        config = self.config
        log.debug("operator settings ConfigMap seen", configmap=config.name, keys=sorted(data or ()))
        applied = config.apply(data)
        changed = config.changes(self.applied.settings, applied.settings)
        if applied.problems != self.applied.problems:
            config.log_applied(applied)
        if not changed:
            self.applied = applied
            return
        provider = config.provider
        values = {d.key: shown(d, applied.settings, provider) for d in changed}
        restart = [d for d in changed if not d.live]
        if restart:
            self.restart_requested = [d.flag.name for d in restart]
            log.warning("operator settings changed that take effect only on a fresh start; restarting",
                        configmap=config.name, restart_for=sorted(d.key for d in restart), values=values)
            self.on_restart(self.restart_requested)
            return
        running = dataclasses.replace(applied.settings, image=self.running.image)
        names = {d.flag.name for d in changed}
        if names & {"log-level", "log-format"}:
            set_level(running.log_level, running.log_format)
        provider.settings_changed(self.client, running, names)
        # Recorded only once applied: after a failure the next event or resync tries again.
        self.applied, self.running = applied, running
        log.info("operator settings applied live", configmap=config.name, values=values)
