"""The generic ``rook <provider> operator`` command: from flags to a running Manager.

Start-up order (after Rook's ``cmd/rook/ceph/operator.go`` and controller-runtime's
``manager.New``), each step failing with a one-line ``Fatal`` reason rather than a traceback:

1. settings from flags/env (``OPERATOR_FLAGS``, ``settings_from_values``); ``POD_NAMESPACE`` is
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
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Mapping
from types import FrameType
from typing import Any

import rook_py
from rook_py.framework.client import errors
from rook_py.framework.cmdline import LOGGING_FLAGS, Fatal, Flag
from rook_py.framework.logging import get_logger
from rook_py.framework.provider import OperatorSettings, Provider

JSON = dict[str, Any]
CRD_API_VERSION = "apiextensions.k8s.io/v1"
CRD_KIND = "CustomResourceDefinition"
DEFAULT_IMAGE_REPOSITORY = "rook-py"

log = get_logger(__name__)

OPERATOR_FLAGS: tuple[Flag, ...] = (
    Flag("kubeconfig", None, "kubeconfig file; default $KUBECONFIG, ~/.kube/config, then in-cluster",
         env=("KUBECONFIG",)),
    Flag("context", None, "kubeconfig context"),
    Flag("namespace", None, "namespace the operator runs in (required)", env=("POD_NAMESPACE",)),
    Flag("pod-name", None, "the operator's own Pod, to find its image", env=("POD_NAME",)),
    Flag("image", None, "image of the node daemons (default: the operator Pod's image)"),
    Flag("install-crds", False, "create or update the CRDs instead of only verifying them", kind="bool"),
    Flag("crd-timeout", 30.0, "how long to wait for CRDs to be established", kind="duration"),
    Flag("leader-elect", True, "elect a leader through a Lease before running controllers", kind="bool"),
    Flag("leader-election-id", "", "Lease name (default rook-<provider>-operator-lock)"),
    Flag("lease-duration", 15.0, "leader election lease duration", kind="duration"),
    Flag("renew-deadline", 10.0, "leader election renew deadline", kind="duration"),
    Flag("retry-period", 2.0, "leader election retry period", kind="duration"),
    Flag("current-namespace-only", False, "watch only the operator's namespace", kind="bool"),
    Flag("metrics-bind-address", ":8080", "metrics endpoint address; 0 disables"),
    Flag("health-probe-bind-address", ":8081", "healthz/readyz endpoint address; 0 disables"),
    Flag("graceful-shutdown-timeout", 30.0, "time in-flight reconciles get on shutdown", kind="duration"),
    Flag("max-concurrent-reconciles", 1, "workers per controller", kind="int"),
    Flag("kube-api-qps", 20.0, "client-side rate limit (queries per second); 0 disables", kind="float"),
    Flag("kube-api-burst", 30, "client-side burst", kind="int"),
    *LOGGING_FLAGS,
)


def operator_container(provider: str) -> str:
    """The container name the operator Deployment must use (``rook-<provider>-operator``)."""
    return f"rook-{provider}-operator"


def user_agent(provider: str) -> str:
    return f"{operator_container(provider)}/{rook_py.__version__}"


def default_image() -> str:
    return f"{DEFAULT_IMAGE_REPOSITORY}:{rook_py.__version__}"


def settings_from_values(provider: str, values: Mapping[str, Any]) -> OperatorSettings:
    """OperatorSettings from resolved flag values (``FlagSet.resolve`` over ``OPERATOR_FLAGS``)."""
    namespace = values.get("namespace")
    if not namespace:
        raise Fatal("POD_NAMESPACE is not set: the operator must know its namespace "
                    "(set it from the downward API, metadata.namespace, or pass --namespace)")
    if values["max_concurrent_reconciles"] < 1:
        raise Fatal("--max-concurrent-reconciles must be >= 1")
    return OperatorSettings(
        provider=provider,
        namespace=str(namespace),
        watch_namespace=str(namespace) if values["current_namespace_only"] else None,
        image=values.get("image") or "",
        kubeconfig=values.get("kubeconfig"),
        context=values.get("context"),
        leader_election=bool(values["leader_elect"]),
        leader_election_id=values.get("leader_election_id") or "",
        lease_duration=float(values["lease_duration"]),
        renew_deadline=float(values["renew_deadline"]),
        retry_period=float(values["retry_period"]),
        install_crds=bool(values["install_crds"]),
        metrics_bind_address=str(values["metrics_bind_address"]),
        health_probe_bind_address=str(values["health_probe_bind_address"]),
        graceful_shutdown_timeout=float(values["graceful_shutdown_timeout"]),
        max_concurrent_reconciles=int(values["max_concurrent_reconciles"]),
        log_level=str(values.get("log_level") or "info"),
        log_format=str(values.get("log_format") or "json"),
        identity=values.get("pod_name") or None,
        extra={"pod_name": values.get("pod_name") or "", "crd_timeout": float(values["crd_timeout"]),
               "kube_api_qps": float(values["kube_api_qps"]), "kube_api_burst": int(values["kube_api_burst"])},
    )


# -- image --------------------------------------------------------------------------------------

def resolve_image(client: Any, settings: OperatorSettings, pod_name: str | None) -> str:
    """The node daemons' image; see step 3 of the module docstring."""
    if settings.image:
        return settings.image
    container = operator_container(settings.provider)
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


def ensure_crds(client: Any, crds: list[JSON], *, install: bool, timeout: float = 30.0,
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
            result = apply(client, {"apiVersion": CRD_API_VERSION, "kind": CRD_KIND, **desired})
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
    qps = float(settings.extra.get("kube_api_qps", 20.0))
    return Client(config, qps=qps if qps > 0 else None, burst=int(settings.extra.get("kube_api_burst", 30)),
                  user_agent=user_agent(settings.provider))


def run_operator(provider: Provider, settings: OperatorSettings, *, client: Any = None,
                 stop: threading.Event | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Run the operator until ``stop`` is set or a signal arrives; returns the exit status.

    ``client`` replaces the one built from the settings (tests). Raises ``Fatal`` for set-up
    problems; whatever ``Manager.start`` raises (lost lease, failed runnable) propagates so the
    process exits non-zero and Kubernetes restarts it.
    """
    from rook_py.framework.manager import Manager

    env = os.environ if environ is None else environ
    stop = stop or threading.Event()
    restore = _stop_on_signals(stop)
    own_client = client is None
    client = client if client is not None else make_client(settings)
    try:
        log.info("operator starting", provider=provider.name, version=rook_py.__version__,
                 namespace=settings.namespace, watch_namespace=settings.watch_namespace or "(all)")
        pod_name = settings.extra.get("pod_name") or env.get("POD_NAME")
        settings.image = resolve_image(client, settings, pod_name)
        log.info("node daemon image", image=settings.image)
        ensure_crds(client, provider.crds(), install=settings.install_crds,
                    timeout=float(settings.extra.get("crd_timeout", 30.0)))
        provider.pre_start(client, settings)
        if stop.is_set():  # SIGTERM during set-up: nothing is running yet
            log.info("stopped during start-up")
            return 0
        try:
            manager = Manager(client, settings.manager_options())
        except ValueError as err:
            raise Fatal(f"invalid manager options: {err}") from None
        provider.setup(manager, settings)
        manager.start(stop)
        log.info("operator stopped")
        return 0
    finally:
        restore()
        if own_client:
            client.close()


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
