"""The ChubaoFS operator as a child process, for F4 (``python -m tests.faults.chubao_operator``).

The production wiring (``ChubaoFSProvider.setup`` on a ``Manager``) with two test-only choices:
hot reloads are answered by a no-op reloader (no Prometheus runs here) and there is no leader
election (one replica at a time; a SIGKILLed replica's Lease would only delay the next one).
Reports ``{"fault": "started"}`` once its controllers run.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from collections.abc import Sequence

from rook_py.chubaofs.provider import ChubaoFSProvider
from rook_py.chubaofs.settings import ChubaoFSSettings
from rook_py.framework import Manager, ManagerOptions
from rook_py.framework.client import Client, load_config
from rook_py.framework.logging import configure_logging
from rook_py.framework.provider import OperatorSettings


class NoReload:
    """Every reload counts as delivered."""

    def reload(self, base_urls: Sequence[str]) -> list[str]:
        return []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--user-agent", default="rook-chubaofs-operator")
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args(argv)
    configure_logging("warning", "json", stream=sys.stderr)
    client = Client(load_config(), user_agent=args.user_agent)
    manager = Manager(client, ManagerOptions(metrics_bind_address="0", health_probe_bind_address="0",
                                             graceful_shutdown_timeout=5.0))
    settings = OperatorSettings(provider="chubaofs", namespace="rook-system", metrics_bind_address="0",
                                max_concurrent_reconciles=args.workers,
                                provider_settings=ChubaoFSSettings(reload_settle=0.0))
    ChubaoFSProvider(reloader=NoReload()).setup(manager, settings)

    def announce() -> None:
        manager.elected.wait()
        sys.stdout.write(json.dumps({"fault": "started"}) + "\n")
        sys.stdout.flush()

    threading.Thread(target=announce, daemon=True).start()
    manager.start()
    return 0


if __name__ == "__main__":
    sys.exit(main())
