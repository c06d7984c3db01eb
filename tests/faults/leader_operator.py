"""A small operator process for F5 (``python -m tests.faults.leader_operator``).

For every ConfigMap in ``--namespace`` it keeps a Secret ``<name>-out`` (created once, owned by
the ConfigMap), with leader election on a Lease and short timings so a handover takes seconds.
Its client identifies itself as ``User-Agent: f5-<identity>``, which is how the test counts each
process's writes on the server. Reports JSON lines on stdout: ``standby`` once its caches synced,
``leader`` once elected, ``holding`` when a reconcile parks before its write (below), ``lost`` when the manager stopped with LeaderElectionLost (a failed
renewal, or a write refused by the leader-election write fence); it then exits with status 1.

A ConfigMap labelled ``f5/hold-for=<this identity>`` makes this process's reconcile of it wait
``--hold-seconds`` (on the monotonic clock) right before it creates the Secret: the test parks
every worker at a known point, before the write fence's check, then freezes the process.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import threading
import time
from typing import Any

from rook_py.framework import (
    ControllerBuilder,
    LeaderElectionLost,
    Manager,
    ManagerOptions,
    Request,
    Result,
)
from rook_py.framework.client import Client, load_config
from rook_py.framework.client.errors import AlreadyExists
from rook_py.framework.logging import configure_logging
from rook_py.framework.objects import set_controller_reference

LEASE = "f5-operator"
HOLD_LABEL = "f5/hold-for"


def say(event: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"fault": event, **fields}) + "\n")
    sys.stdout.flush()


class SecretPerConfigMap:
    def __init__(self, client: Client, reader: Any, identity: str = "", hold_seconds: float = 0.0) -> None:
        self.client, self.reader = client, reader
        self.identity, self.hold_seconds = identity, hold_seconds

    def reconcile(self, request: Request) -> Result | None:
        cm = self.reader.get("v1", "ConfigMap", request.name, request.namespace)
        name = f"{request.name}-out"
        if cm is None or self.reader.get("v1", "Secret", name, request.namespace) is not None:
            return None
        secret: dict[str, Any] = {"apiVersion": "v1", "kind": "Secret",
                                  "metadata": {"name": name, "namespace": request.namespace},
                                  "stringData": {"source": cm["metadata"]["uid"]}}
        set_controller_reference(cm, secret)
        if (cm["metadata"].get("labels") or {}).get(HOLD_LABEL) == self.identity:
            say("holding", name=request.name)
            # time.sleep waits for a monotonic deadline: after a freeze it returns at once.
            time.sleep(self.hold_seconds)
        # AlreadyExists: another leader made it before our cache saw it; nothing left to do.
        with contextlib.suppress(AlreadyExists):
            self.client.create(secret)
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--identity", required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--lease-duration", type=float, default=2.0)
    parser.add_argument("--renew-deadline", type=float, default=1.5)
    parser.add_argument("--retry-period", type=float, default=0.3)
    parser.add_argument("--hold-seconds", type=float, default=3.0)
    parser.add_argument("--probes", action="store_true",
                        help="serve /healthz and /metrics on free 127.0.0.1 ports (F8); "
                             "'standby' reports their addresses")
    parser.add_argument("--user-agent-prefix", default="f5")
    args = parser.parse_args(argv)
    configure_logging("warning", "json", stream=sys.stderr)
    client = Client(load_config(), user_agent=f"{args.user_agent_prefix}-{args.identity}")
    probes = "127.0.0.1:0" if args.probes else "0"
    manager = Manager(client, ManagerOptions(
        namespace=args.namespace, leader_election=True, leader_election_id=LEASE,
        leader_election_namespace=args.namespace, lease_duration=args.lease_duration,
        renew_deadline=args.renew_deadline, retry_period=args.retry_period, identity=args.identity,
        metrics_bind_address=probes, health_probe_bind_address=probes, graceful_shutdown_timeout=5.0))
    (ControllerBuilder(manager).named("f5").for_("v1", "ConfigMap").owns("v1", "Secret")
     .with_options(max_concurrent_reconciles=4)
     .complete(SecretPerConfigMap(client, manager.reader, args.identity, args.hold_seconds)))

    def announce() -> None:
        manager.serving.wait()
        if manager.cache.wait_for_cache_sync(30):
            say("standby", health=manager.health_address, metrics=manager.metrics_address)
        manager.elected.wait()
        say("leader")

    threading.Thread(target=announce, daemon=True).start()
    try:
        manager.start()
    except LeaderElectionLost as err:
        say("lost", error=str(err))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
