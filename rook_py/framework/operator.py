"""The generic ``rook <provider> operator`` command: from flags to a running Manager.

Start-up order (after Rook's ``cmd/rook/ceph/operator.go`` and controller-runtime's
``manager.New``), each step failing with a one-line ``Fatal`` reason rather than a traceback:

1. settings from flags/env (``OperatorSettings`` and the provider's ``settings_type``, declared in
   ``rook_py.framework.settings``; ``settings_from_values``); ``POD_NAMESPACE`` is
   required because the operator's Lease, its node daemons and their ConfigMaps live there;
2. a Client from ``--kubeconfig`` / ``$KUBECONFIG`` / in-cluster, with a User-Agent naming the
   operator (``rook-<provider>-operator/<version>``) so the API server's audit log (and the
   envtest request stats the RBAC test reads) can attribute every call;
3. the node daemons' image: ``--image``, else the image of container ``rook-<provider>-operator``
   of the operator's own Pod (``POD_NAME``), so upgrading the operator Deployment upgrades the
   DaemonSets it manages (Rook's ``k8sutil.GetContainerImage``); else a versioned default with a
   warning, which only makes sense outside a cluster;
4. the provider's CRDs: verified to be Established with their versions served and visible in
   discovery, or created/updated first with ``--install-crds``;
5. ``provider.pre_start`` (every replica, before leader election), a Manager from the settings,
   ``provider.setup``, ``manager.start``.

Between steps 2 and 3 the operator settings ConfigMap (``rook-<provider>-operator-config``) is
read and applied over flags/env; the manager then watches it, applying changes live or stopping
for a fresh start (``rook_py.framework.operator_config``).
"""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping, Set
from types import FrameType
from typing import Any

import rook_py
from rook_py.framework.client import errors
from rook_py.framework.cmdline import Fatal, Flag
from rook_py.framework.logging import get_logger, set_level
from rook_py.framework.objects import DEFAULT_FIELD_MANAGER
from rook_py.framework.provider import Provider
from rook_py.framework.settings import OperatorSettings, from_values
from rook_py.framework.settings import flags as settings_flags

JSON = dict[str, Any]
CRD_API_VERSION = "apiextensions.k8s.io/v1"
CRD_KIND = "CustomResourceDefinition"
DEFAULT_IMAGE_REPOSITORY = "rook-py"

log = get_logger(__name__)

#: The framework's flags of ``rook <provider> operator``, generated from ``OperatorSettings``.
OPERATOR_FLAGS: tuple[Flag, ...] = settings_flags(OperatorSettings)


def operator_flags(provider: Provider) -> tuple[Flag, ...]:
    """The flags of ``rook <provider> operator``: the framework's, then the provider's own."""
    own = settings_flags(provider.settings_type) if provider.settings_type is not None else ()
    clash = {f.name for f in own} & {f.name for f in OPERATOR_FLAGS}
    if clash:
        raise ValueError(f"provider {provider.name} redeclares framework flags: {', '.join(sorted(clash))}")
    return (*OPERATOR_FLAGS, *own)


def operator_container(provider: str) -> str:
    """The container name the operator Deployment must use (``rook-<provider>-operator``)."""
    return f"rook-{provider}-operator"


def user_agent(provider: str) -> str:
    return f"{operator_container(provider)}/{rook_py.__version__}"


def default_image() -> str:
    return f"{DEFAULT_IMAGE_REPOSITORY}:{rook_py.__version__}"


def settings_from_values(provider: str, values: Mapping[str, Any],
                         settings_type: type[Any] | None = None) -> OperatorSettings:
    """OperatorSettings from resolved flag values (``FlagSet.resolve`` over ``operator_flags``);
    ``settings_type`` is the provider's declared settings class, filled from the same values."""
    provider_settings = from_values(settings_type, values) if settings_type is not None else None
    settings = from_values(OperatorSettings, values, provider=provider, provider_settings=provider_settings)
    problems = settings.problems()
    if problems:
        raise Fatal(problems[0])
    return settings


# -- image --------------------------------------------------------------------------------------

def resolve_image(client: Any, settings: OperatorSettings) -> str:
    """The node daemons' image; see step 3 of the module docstring."""
    if settings.image:
        return settings.image
    container = operator_container(settings.provider)
    pod_name = settings.pod_name
    if not pod_name:
        image = default_image()
        log.warning("no --image and no POD_NAME: node daemons use the default image", image=image)
        return image
    try:
        pod = client.get("v1", "Pod", pod_name, settings.namespace)
    except errors.NotFound:
        raise Fatal(f"own pod {settings.namespace}/{pod_name} (POD_NAME) not found") from None
    for c in pod.get("spec", {}).get("containers") or []:
        if c.get("name") == container and c.get("image"):
            return str(c["image"])
    raise Fatal(f"own pod {settings.namespace}/{pod_name} has no container named {container!r} "
                f"to take the node daemons' image from; rename the container or pass --image")


# -- CRDs ---------------------------------------------------------------------------------------

def crd_problem(crd: JSON) -> str | None:
    """Why a live CRD is not usable yet, or None when it is Established and serves a version."""
    conditions = {c.get("type"): c for c in (crd.get("status") or {}).get("conditions") or []}
    established = conditions.get("Established")
    if not established or established.get("status") != "True":
        names = conditions.get("NamesAccepted")
        if names and names.get("status") == "False":
            return f"names not accepted: {names.get('message', '')}"
        return "not established yet"
    if not any(v.get("served") for v in crd.get("spec", {}).get("versions") or []):
        return "no version is served"
    return None


def _served_api_versions(crd: JSON) -> list[str]:
    group = crd["spec"]["group"]
    return [f"{group}/{v['name']}" for v in crd["spec"].get("versions") or [] if v.get("served")]


def ensure_crds(client: Any, crds: list[JSON], *, install: bool, field_manager: str = DEFAULT_FIELD_MANAGER, timeout: float = 30.0,
                poll: float = 0.2, clock: Callable[[], float] = time.monotonic,
                sleep: Callable[[float], None] = time.sleep) -> None:
    """Verify (or with ``install`` create/update) each CRD, then wait until it is usable.

    Usable means Established with a served version *and* present in discovery: a controller
    whose informer starts before discovery lists the resource fails its first list, so we do
    not hand over to the manager until a discovery lookup succeeds.
    """
    from rook_py.framework.objects import apply

    for desired in crds:
        name = desired["metadata"]["name"]
        if install:
            result = apply(client, {"apiVersion": CRD_API_VERSION, "kind": CRD_KIND, **desired},
                           field_manager=field_manager)
            log.info("CRD installed", crd=name, action=result.action)
        deadline = clock() + timeout
        while True:
            try:
                live = client.get(CRD_API_VERSION, CRD_KIND, name)
            except errors.NotFound:
                raise Fatal(f"CRD {name} is not installed: apply manifests/crds.yaml or run the "
                            f"operator with --install-crds") from None
            problem = crd_problem(live)
            if problem is None:
                problem = _discovery_problem(client, live)
            if problem is None:
                break
            if clock() >= deadline:
                raise Fatal(f"CRD {name} is not usable after {timeout:g}s: {problem}")
            sleep(poll)
        log.info("CRD ready", crd=name)


def _discovery_problem(client: Any, crd: JSON) -> str | None:
    kind = crd["spec"]["names"]["kind"]
    for api_version in _served_api_versions(crd):
        try:
            client.resource_for(api_version, kind)
        except (LookupError, errors.ApiError) as err:
            return f"{kind} in {api_version} not in discovery yet ({type(err).__name__})"
    return None


# -- run ----------------------------------------------------------------------------------------

def make_client(settings: OperatorSettings) -> Any:
    from rook_py.framework.client import Client, ConfigError, load_config

    try:
        config = load_config(settings.kubeconfig, settings.context)
    except ConfigError as err:
        raise Fatal(str(err)) from None
    qps = settings.kube_api_qps
    return Client(config, qps=qps if qps > 0 else None, burst=settings.kube_api_burst,
                  user_agent=user_agent(settings.provider))


def wait_for_api_server(client: Any, stop: threading.Event, *, backoff: Any = None,
                        log_every: float = 10.0) -> bool:
    """Wait until the API server answers ``GET /version``; False when ``stop`` was set first.

    A pod restarted while kube-apiserver is down (e.g. after losing its lease in an outage)
    waits here instead of exiting into the kubelet's crash-loop backoff (10 s, 20 s, 40 s, ...),
    which would keep it away long after the server is back. It polls on the reflector's
    connection backoff (an attempt at least every 0.8 s; a starting server's 503 Retry-After is
    not slept). Only "cannot reach" errors wait: any other answer means the server is there.
    """
    from rook_py.framework.cache.reflector import default_connect_backoff, is_unreachable

    backoff = backoff or default_connect_backoff()
    without_retries = getattr(client, "without_retries", None)
    waiting_since = time.monotonic()
    logged = waiting_since
    while not stop.is_set():
        try:
            if without_retries is not None:
                with without_retries():
                    client.request_json("GET", "/version")
            else:
                client.request_json("GET", "/version")
            if time.monotonic() - waiting_since >= backoff.initial:
                log.info("API server reachable", waited=round(time.monotonic() - waiting_since, 1))
            return True
        except errors.ApiError as err:
            if not is_unreachable(err):
                return True
            if time.monotonic() - logged >= log_every:
                logged = time.monotonic()
                log.warning("waiting for the API server", error=str(err),
                            waited=round(logged - waiting_since))
        stop.wait(backoff.next())
    return False


def run_operator(provider: Provider, settings: OperatorSettings, *, client: Any = None,
                 stop: threading.Event | None = None, explicit: Set[str] = frozenset()) -> int:
    """Run the operator until ``stop`` is set or a signal arrives; returns the exit status.

    ``settings`` come from flags, env and defaults; the settings ConfigMap is applied on top
    (``operator_config``), except to the flag dests in ``explicit`` (given on the command line).
    ``client`` replaces the one built from the settings (tests). Raises ``Fatal`` for set-up
    problems; whatever ``Manager.start`` raises (lost lease, failed runnable) propagates so the
    process exits non-zero and Kubernetes restarts it. Returns 0 when stopped, also when a
    ConfigMap change needs a fresh start (the manager released the Lease first).
    """
    from rook_py.framework.manager import Manager
    from rook_py.framework.operator_config import ConfigWatcher, OperatorConfig

    stop = stop or threading.Event()
    restore = _stop_on_signals(stop)
    own_client = client is None
    client = client if client is not None else make_client(settings)
    try:
        if not wait_for_api_server(client, stop):
            log.info("stopped while waiting for the API server")
            return 0
        config = OperatorConfig(provider, settings, explicit=explicit)
        applied = config.apply(config.read(client))
        config.log_applied(applied)
        if (applied.settings.log_level, applied.settings.log_format) != (settings.log_level, settings.log_format):
            set_level(applied.settings.log_level, applied.settings.log_format)
        if own_client and (applied.settings.kube_api_qps, applied.settings.kube_api_burst) != (
                settings.kube_api_qps, settings.kube_api_burst):
            client.close()
            client = make_client(applied.settings)
        settings = dataclasses.replace(applied.settings)
        log.info("operator starting", provider=provider.name, version=rook_py.__version__,
                 namespace=settings.namespace, watch_namespace=settings.cache_namespace() or "(all)")
        settings.image = resolve_image(client, settings)
        log.info("node daemon image", image=settings.image)
        ensure_crds(client, provider.crds(), install=settings.install_crds, field_manager=provider.field_manager,
                    timeout=settings.crd_timeout)
        provider.pre_start(client, settings)
        if stop.is_set():  # SIGTERM during set-up: nothing is running yet
            log.info("stopped during start-up")
            return 0
        try:
            manager = Manager(client, settings.manager_options())
        except ValueError as err:
            raise Fatal(f"invalid manager options: {err}") from None
        watcher = ConfigWatcher(config, client, applied, settings, on_restart=lambda changed: stop.set())
        manager.add(watcher)
        add_webhook_server(manager, provider, settings)
        provider.setup(manager, settings)
        manager.start(stop)
        if watcher.restart_requested:
            log.info("operator stopped to start again with new settings", settings=watcher.restart_requested)
        else:
            log.info("operator stopped")
        return 0
    finally:
        restore()
        if own_client:
            client.close()


def in_cluster(settings: OperatorSettings) -> bool:
    """The client comes from the Pod's service account (load_config's last resort)."""
    from rook_py.framework.manager import IN_CLUSTER_NAMESPACE_FILE

    return (not settings.kubeconfig and not os.environ.get("KUBECONFIG")
            and os.path.exists(IN_CLUSTER_NAMESPACE_FILE))


def add_webhook_server(manager: Any, provider: Provider, settings: OperatorSettings) -> None:
    """With ``--enable-webhooks`` and a provider that has webhooks: a webhook server on
    ``--webhook-port`` with certificates from ``--webhook-cert-dir`` or self-managed (CA bundle
    injected into the provider's configurations, pointed at ``--webhook-url`` when given)."""
    from rook_py.framework.webhook import CertDir, CertOptions, SelfManagedCerts, WebhookServer

    spec = provider.webhooks(settings)
    if not settings.enable_webhooks or spec is None:
        return
    if not settings.webhook_url and not in_cluster(settings):
        # The configurations name the in-cluster Service: an operator on a workstation (or in a
        # test) serving :9443 would never be called, and would only hold the port.
        log.info("webhooks not served: outside a cluster they need --webhook-url "
                 "(e.g. https://127.0.0.1:9443)")
        return
    if settings.webhook_url and not settings.webhook_url.startswith("https://"):
        raise Fatal(f"--webhook-url must be an https:// URL, got {settings.webhook_url!r}")
    certs: Any
    if settings.webhook_cert_dir:
        certs = CertDir(settings.webhook_cert_dir)
    else:
        certs = SelfManagedCerts(manager.client, CertOptions(
            namespace=settings.namespace, secret_name=spec.secret, service_name=spec.service,
            validating_configurations=spec.validating_configurations,
            mutating_configurations=spec.mutating_configurations, crds=spec.conversion_crds,
            webhook_url=settings.webhook_url or None))
        manager.add(certs)
    host = "127.0.0.1" if settings.webhook_url.startswith("https://127.") else ""
    manager.set_webhook_server(WebhookServer(certs, f"{host}:{settings.webhook_port}"))
    log.info("webhooks enabled", port=settings.webhook_port,
             certificates=settings.webhook_cert_dir or f"self-managed in Secret {spec.secret}",
             url=settings.webhook_url or f"Service {spec.service}")


def _stop_on_signals(stop: threading.Event) -> Callable[[], None]:
    """Until the Manager installs its own handlers, SIGTERM/SIGINT set ``stop``, so a pod
    deleted while the operator is still starting exits 0 instead of dying on the signal."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore
