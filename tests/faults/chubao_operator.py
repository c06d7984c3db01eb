"""The ChubaoFS operator as a child process, for F4 (``python -m tests.faults.chubao_operator``).

The production wiring (``ChubaoFSProvider.setup`` on a ``Manager``) with two test-only choices:
hot reloads are answered by a no-op reloader (no Prometheus runs here) and, unless
``--leader-elect`` is given (F7), there is no leader election (one replica at a time; a SIGKILLed
replica's Lease would only delay the next one). Reports ``{"fault": "started"}`` once its
controllers run, and ``{"fault": "lost"}`` before exiting 1 when it lost its lease.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from collections.abc import Sequence

from rook_py.chubaofs.api import types as t
from rook_py.chubaofs.provider import ChubaoFSProvider
from rook_py.chubaofs.settings import ChubaoFSSettings
from rook_py.framework import LeaderElectionLost, Manager, ManagerOptions
from rook_py.framework.client import Client, errors, load_config
from rook_py.framework.logging import configure_logging
from rook_py.framework.provider import OperatorSettings
from tests.support import waiting


class NoReload:
    """Every reload counts as delivered."""

    def reload(self, base_urls: Sequence[str]) -> list[str]:
        return []


def wait_for_api(client: Client, timeout: float = 300.0) -> None:
    """Wait until the API server serves ChubaoMonitors. Setting up the controllers needs
    discovery, and F7 restarts this process (as the kubelet would) while kube-apiserver may be
    down: without this it would exit at once, again and again, the kubelet's crash loop."""
    def serving() -> bool:
        client.discovery.invalidate(t.API_VERSION)
        with client.without_retries():  # poll, rather than sleep a starting server's 5 s
            client.resource_for(t.API_VERSION, t.KIND)
        return True

    waiting.eventually(serving, timeout, interval=0.2, ignore=(errors.ApiError, LookupError),
                       what="the API server to serve ChubaoMonitors")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--user-agent", default="rook-chubaofs-operator")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--leader-elect", action="store_true")
    parser.add_argument("--identity", default=None)
    parser.add_argument("--lease-namespace", default="rook-system")
    parser.add_argument("--lease-duration", type=float, default=15.0)
    parser.add_argument("--renew-deadline", type=float, default=10.0)
    parser.add_argument("--retry-period", type=float, default=2.0)
    args = parser.parse_args(argv)
    configure_logging("warning", "json", stream=sys.stderr)
    client = Client(load_config(), user_agent=args.user_agent)
    wait_for_api(client)
    manager = Manager(client, ManagerOptions(
        metrics_bind_address="0", health_probe_bind_address="0", graceful_shutdown_timeout=5.0,
        leader_election=args.leader_elect, leader_election_id="rook-chubaofs-operator",
        leader_election_namespace=args.lease_namespace, identity=args.identity,
        lease_duration=args.lease_duration, renew_deadline=args.renew_deadline,
        retry_period=args.retry_period))
    settings = OperatorSettings(provider="chubaofs", namespace="rook-system", metrics_bind_address="0",
                                max_concurrent_reconciles=args.workers,
                                provider_settings=ChubaoFSSettings(reload_settle=0.0))
    ChubaoFSProvider(reloader=NoReload()).setup(manager, settings)

    def announce() -> None:
        manager.elected.wait()
        sys.stdout.write(json.dumps({"fault": "started"}) + "\n")
        sys.stdout.flush()

    threading.Thread(target=announce, daemon=True).start()
    try:
        manager.start()
    except LeaderElectionLost as err:
        sys.stdout.write(json.dumps({"fault": "lost", "error": str(err)}) + "\n")
        sys.stdout.flush()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
