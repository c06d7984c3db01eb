"""Where to reach the API server and how to authenticate: loaded through the official client.

The official ``kubernetes`` package (37.x) parses kubeconfig files (contexts, exec/auth-provider
plugins, client certificates, proxies, ``KUBECONFIG`` path lists) and the in-cluster service
account. We reuse that work verbatim and keep only its ``Configuration`` object: our own
``Client`` builds the urllib3 pool from it and never touches the generated model classes.

Precedence follows kubectl / controller-runtime's ``config.GetConfig``
(sigs.k8s.io/controller-runtime/pkg/client/config/config.go): an explicit path, then
``$KUBECONFIG``, then ``~/.kube/config``, then the in-cluster service account.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from typing import Any

from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

__all__ = ["ConfigError", "RestConfig", "load_config"]


class ConfigError(Exception):
    """No usable configuration: no kubeconfig found and not running inside a cluster."""


@dataclass(frozen=True)
class RestConfig:
    """A loaded connection configuration.

    ``configuration`` is a ``kubernetes.client.Configuration``; it carries TLS material, proxy
    settings, the bearer token (``api_key``) and, for exec/refreshing credentials, the
    ``refresh_api_key_hook`` that the client calls before every request. ``source`` says where
    it came from (for logs and error messages).
    """

    configuration: Any
    source: str

    @property
    def host(self) -> str:
        """The API server base URL without a trailing slash."""
        return str(self.configuration.host).rstrip("/")

    @classmethod
    def for_host(cls, host: str, *, token: str | None = None, verify_ssl: bool = True,
                 ca_cert: str | None = None) -> RestConfig:
        """A configuration for a known URL (tests, tools); ``token`` is sent as a bearer token."""
        cfg = k8s_client.Configuration(host=host)
        cfg.verify_ssl = verify_ssl
        if ca_cert:
            cfg.ssl_ca_cert = ca_cert
        if token:
            cfg.api_key["BearerToken"] = token
            cfg.api_key_prefix["BearerToken"] = "Bearer"
        return cls(configuration=cfg, source=f"host:{host}")

    def copy(self) -> RestConfig:
        """A deep copy, so a client may tune its transport without touching the caller's object."""
        return RestConfig(configuration=copy.deepcopy(self.configuration), source=self.source)


def _kubeconfig_candidates(kubeconfig: str | None) -> str | None:
    if kubeconfig:
        return kubeconfig
    # Read $KUBECONFIG at call time: the official package snapshots it at import time.
    env = os.environ.get("KUBECONFIG")
    if env:
        return env
    default = os.path.expanduser("~/.kube/config")
    return default if os.path.exists(default) else None


def load_config(kubeconfig: str | None = None, context: str | None = None) -> RestConfig:
    """Load a configuration: ``kubeconfig`` > ``$KUBECONFIG`` > ``~/.kube/config`` > in-cluster.

    An explicitly named file that cannot be loaded is an error (we never silently fall back to
    a different cluster). ``$KUBECONFIG`` may be a ``os.pathsep``-separated list; the official
    loader merges it.
    """
    path = _kubeconfig_candidates(kubeconfig)
    cfg = k8s_client.Configuration()
    if path is not None:
        try:
            # persist_config=False: never rewrite the user's kubeconfig from a controller.
            k8s_config.load_kube_config(config_file=path, context=context,
                                        client_configuration=cfg, persist_config=False)  # type: ignore[no-untyped-call]
        except (k8s_config.ConfigException, OSError) as exc:
            raise ConfigError(f"cannot load kubeconfig {path!r}: {exc}") from exc
        return RestConfig(configuration=cfg, source=f"kubeconfig:{path}")
    try:
        k8s_config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
    except k8s_config.ConfigException as exc:
        raise ConfigError(
            "no kubeconfig (--kubeconfig, $KUBECONFIG, ~/.kube/config) and not running in a "
            f"cluster: {exc}") from exc
    return RestConfig(configuration=cfg, source="in-cluster")
