"""The framework's Kubernetes client: config loading, discovery, verbs on plain-dict objects.

``from rook_py.framework.client import Client, load_config, ResourceInfo``; typed errors live
in ``rook_py.framework.client.errors``.
"""

from rook_py.framework.client.config import ConfigError, RestConfig, load_config
from rook_py.framework.client.discovery import ResourceInfo
from rook_py.framework.client.ratelimit import TokenBucket
from rook_py.framework.client.rest import Client
from rook_py.framework.client.watch import WatchStream

__all__ = [
           "Client",
           "ConfigError",
           "ResourceInfo",
           "RestConfig",
           "TokenBucket",
           "WatchStream",
           "load_config",
]
