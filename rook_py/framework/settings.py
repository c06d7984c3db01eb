"""Typed operator settings: one declaration per setting, everything else generated from it.

A setting is a dataclass field declared with ``setting(default, help, kind=...)``. From that one
declaration come its command-line flag (``--lease-duration``), its environment fallback
(``ROOK_LEASE_DURATION`` plus any name Rook's manifests use, e.g. ``DISCOVER_TOLERATIONS``), its
default, its key in the operator settings ConfigMap, its line in ``docs/reference.md``
(``scripts/gen_reference.py``) and in ``manifests/common.yaml``, and its entry in the start-up log
(secrets masked). ``OperatorSettings`` holds the framework's settings; a provider declares its
own dataclass the same way and names it in ``Provider.settings_type``: its flags join
``rook <provider> operator`` and its values reach the provider as ``settings.of(ThatClass)``.

Precedence, highest first (Rook's ``k8sutil.GetOperatorSetting`` reads the ConfigMap, then the
environment, then the default; rook/rook pkg/operator/k8sutil/configmap.go):

    command-line flag  >  operator settings ConfigMap  >  $ROOK_<FLAG>  >  other env names  >  default

A flag on the command line is an explicit choice in the Deployment, so the ConfigMap does not
override it (the operator logs that the key is ignored). ``configmap=False`` marks the settings
needed to reach the ConfigMap at all (kubeconfig, namespace, own Pod); ``live=True`` marks those
the running operator applies without a restart when the ConfigMap changes
(``rook_py.framework.operator_config``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Set
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from rook_py.framework.cmdline import Fatal, Flag, env_name, parse_int

if TYPE_CHECKING:
    from rook_py.framework.manager import ManagerOptions

T = TypeVar("T")
_METADATA_KEY = "rook_py.setting"


@dataclass(frozen=True)
class _Spec:
    default: Any
    help: str
    kind: str
    name: str | None
    env: tuple[str, ...]
    key: str | None
    secret: bool
    choices: tuple[str, ...]
    parse: Callable[[str], Any] | None
    metavar: str | None
    configmap: bool
    live: bool


def setting(default: Any, help: str, *, kind: str = "str", name: str | None = None, env: tuple[str, ...] = (),
            key: str | None = None, secret: bool = False, choices: tuple[str, ...] = (),
            parse: Callable[[str], Any] | None = None, metavar: str | None = None,
            configmap: bool = True, live: bool = False) -> Any:
    """Declare a dataclass field as a setting.

    ``kind`` is a ``cmdline.Flag`` kind (str, int, float, bool, duration, list, log-level) or,
    with ``parse``, any name. ``name`` is the flag name (default: the field name with dashes).
    ``env`` are environment names read after ``ROOK_<FLAG>``; ``key`` is the name the ConfigMap
    and the docs use (default ``ROOK_<FLAG>``; every env name is accepted as a key too).
    """
    spec = _Spec(default, help, kind, name, tuple(env), key, secret, tuple(choices), parse, metavar,
                 configmap, live)
    metadata = {_METADATA_KEY: spec}
    if isinstance(default, (list, dict, set)):
        return field(default_factory=lambda: type(default)(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def at_least(minimum: int) -> Callable[[str], int]:
    """A ``parse`` for an integer setting with a lower bound (so a bad value is refused where it
    is read, flag, env or ConfigMap alike, naming its source)."""
    def parse(text: str) -> int:
        value = parse_int(text)
        if value < minimum:
            raise ValueError(f"{value} is less than {minimum}")
        return value

    return parse


@dataclass(frozen=True)
class Declared:
    """One setting as declared: the dataclass field it fills and everything generated from it."""

    field: str
    flag: Flag
    key: str
    configmap: bool
    live: bool

    @property
    def keys(self) -> tuple[str, ...]:
        """Every ConfigMap key naming this setting, the documented one first."""
        return (self.key, *(n for n in self.flag.env_names if n != self.key))


_DECLARED: dict[type[Any], tuple[Declared, ...]] = {}


def declared(cls: type[Any]) -> tuple[Declared, ...]:
    """The settings a dataclass declares, in declaration order."""
    cached = _DECLARED.get(cls)
    if cached is not None:
        return cached
    out = []
    for f in dataclasses.fields(cls):
        spec: _Spec | None = f.metadata.get(_METADATA_KEY)
        if spec is None:
            continue
        name = spec.name or f.name.replace("_", "-")
        flag = Flag(name, spec.default, spec.help, spec.kind, spec.secret, spec.env, spec.choices, spec.parse,
                    spec.metavar)
        out.append(Declared(f.name, flag, spec.key or env_name(name), spec.configmap, spec.live))
    _DECLARED[cls] = tuple(out)
    return _DECLARED[cls]


def flags(cls: type[Any]) -> tuple[Flag, ...]:
    return tuple(d.flag for d in declared(cls))


def from_values(cls: type[T], values: Mapping[str, Any], **fixed: Any) -> T:
    """An instance of ``cls`` from resolved flag values (by flag dest), plus ``fixed`` fields."""
    kwargs = {d.field: values[d.flag.dest] for d in declared(cls) if d.flag.dest in values}
    return cls(**kwargs, **fixed)




@dataclass
class Overlay:
    """What a settings ConfigMap changed: the new instance, the flags it set (name -> key) and problems."""

    value: Any
    applied: dict[str, str]
    problems: list[str]


def overlay(base: T, data: Mapping[str, str], *, explicit: Set[str] = frozenset(),
            source: str = "ConfigMap") -> Overlay:
    """``base`` with the settings ``data`` (a ConfigMap's data) names; ``explicit`` holds the flag
    dests given on the command line, which the data does not override.

    A value that does not parse is left out with a problem naming its key: bad input in the
    ConfigMap never stops the operator, it keeps the value it would have without that key.
    Keys naming no setting of ``base`` are left for the caller to report (it may hold several
    declarations).
    """
    changes: dict[str, Any] = {}
    applied: dict[str, str] = {}
    problems: list[str] = []
    for d in declared(type(base)):
        key = next((k for k in d.keys if data.get(k, "") != ""), None)
        if key is None:
            continue
        if not d.configmap:
            problems.append(f"{source} key {key}: {d.flag.name} cannot be set there (only by flag or env); ignored")
            continue
        if d.flag.dest in explicit:
            problems.append(f"{source} key {key}: ignored, --{d.flag.name} is given on the command line")
            continue
        try:
            changes[d.field] = d.flag.convert(data[key], f"{source} key {key}")
        except Fatal as err:
            problems.append(f"{err}; ignored")
            continue
        applied[d.flag.name] = key
    return Overlay(dataclasses.replace(base, **changes) if changes else base, applied, problems)  # type: ignore[type-var]


def changed_fields(old: Any, new: Any) -> list[Declared]:
    """The declared settings whose value differs between two instances of one class."""
    return [d for d in declared(type(new)) if getattr(old, d.field) != getattr(new, d.field)]


# -- the framework's settings -------------------------------------------------------------------

@dataclass
class OperatorSettings:
    """Everything ``rook <provider> operator`` knows from its flags, environment and ConfigMap.

    ``namespace`` is where the operator itself runs (its Lease, its node daemons, its settings
    ConfigMap). The caches watch one namespace, ``watch_namespace``, when it is set (tests,
    embedders) or ``current_namespace_only`` is; otherwise all (``cache_namespace``). ``provider_settings`` holds the provider's own declared settings
    (``Provider.settings_type``); read them with ``settings.of(ThatClass)``.
    """

    provider: str = ""
    kubeconfig: str | None = setting(
        None, "kubeconfig file; default $KUBECONFIG, ~/.kube/config, then in-cluster", env=("KUBECONFIG",),
        key="KUBECONFIG", configmap=False)
    context: str | None = setting(None, "kubeconfig context", configmap=False)
    namespace: str = setting("", "namespace the operator runs in (required)", env=("POD_NAMESPACE",),
                             key="POD_NAMESPACE", configmap=False)
    pod_name: str = setting("", "the operator's own Pod: its image for the node daemons, and its identity in "
                                "leader election", env=("POD_NAME",), key="POD_NAME", configmap=False)
    image: str = setting("", "image of the node daemons (default: the operator Pod's image)")
    install_crds: bool = setting(False, "create or update the CRDs instead of only verifying them", kind="bool")
    crd_timeout: float = setting(30.0, "how long to wait for CRDs to be established", kind="duration")
    leader_election: bool = setting(True, "elect a leader through a Lease before running controllers",
                                    kind="bool", name="leader-elect")
    leader_election_id: str = setting("", "Lease name (default rook-<provider>-operator-lock)")
    lease_duration: float = setting(15.0, "leader election lease duration", kind="duration")
    renew_deadline: float = setting(10.0, "leader election renew deadline", kind="duration")
    retry_period: float = setting(2.0, "leader election retry period", kind="duration")
    current_namespace_only: bool = setting(False, "watch only the operator's namespace", kind="bool")
    metrics_bind_address: str = setting(":8080", "metrics endpoint address; 0 disables")
    health_probe_bind_address: str = setting(":8081", "healthz/readyz endpoint address; 0 disables")
    graceful_shutdown_timeout: float = setting(30.0, "time in-flight reconciles get on shutdown", kind="duration")
    max_concurrent_reconciles: int = setting(1, "workers per controller", kind="int", parse=at_least(1))
    enable_webhooks: bool = setting(True, "serve the provider's admission webhooks (defaulting, validation) "
                                          "on every replica; the CRD's own rules hold either way", kind="bool")
    webhook_port: int = setting(9443, "HTTPS port of the webhook server", kind="int")
    webhook_cert_dir: str = setting("", "directory holding tls.crt and tls.key (cert-manager, a mounted Secret), "
                                        "re-read on change; empty: the operator keeps its own CA and serving "
                                        "certificate in a Secret and injects the CA bundle")
    webhook_url: str = setting("", "out of cluster: serve webhooks on this host and point the webhook "
                                   "configurations at this https URL (e.g. https://127.0.0.1:9443) instead "
                                   "of the in-cluster Service")
    kube_api_qps: float = setting(20.0, "client-side rate limit (queries per second); 0 disables", kind="float")
    kube_api_burst: int = setting(30, "client-side burst", kind="int", parse=at_least(1))
    cache_mutation_detector: bool = setting(False, "debug: fail when a controller changes a cached object in "
                                                   "place (costs a deep copy per cached write)", kind="bool")
    log_level: str = setting("info", "log level: critical, error, warning, notice, info, debug, trace "
                                     "(Rook's names, any case)", kind="log-level", live=True)
    log_format: str = setting("json", "log format", choices=("json", "console"), live=True)
    watch_namespace: str | None = None
    leader_election_namespace: str | None = None
    provider_settings: Any = None

    def of(self, cls: type[T]) -> T:
        """The provider's settings as ``cls`` (its declared defaults when none were given)."""
        if isinstance(self.provider_settings, cls):
            return self.provider_settings
        if self.provider_settings is not None:
            raise TypeError(f"provider settings are a {type(self.provider_settings).__name__}, not {cls.__name__}")
        return cls()

    def problems(self) -> list[str]:
        """What makes these settings unusable, as one-line reasons."""
        out = []
        if not self.namespace:
            out.append("POD_NAMESPACE is not set: the operator must know its namespace "
                       "(set it from the downward API, metadata.namespace, or pass --namespace)")
        if self.max_concurrent_reconciles < 1:
            out.append("--max-concurrent-reconciles must be >= 1")
        return out

    def cache_namespace(self) -> str | None:
        if self.watch_namespace:
            return self.watch_namespace
        return self.namespace if self.current_namespace_only else None

    def lease_name(self) -> str:
        return self.leader_election_id or f"rook-{self.provider}-operator-lock"

    def manager_options(self) -> ManagerOptions:
        """The Manager options these settings imply."""
        from rook_py.framework.manager import ManagerOptions

        return ManagerOptions(
            namespace=self.cache_namespace(),
            leader_election=self.leader_election,
            leader_election_id=self.lease_name(),
            leader_election_namespace=self.leader_election_namespace or self.namespace,
            lease_duration=self.lease_duration,
            renew_deadline=self.renew_deadline,
            retry_period=self.retry_period,
            metrics_bind_address=self.metrics_bind_address,
            health_probe_bind_address=self.health_probe_bind_address,
            graceful_shutdown_timeout=self.graceful_shutdown_timeout,
            identity=self.pod_name or None,
            detect_mutations=self.cache_mutation_detector,
        )
