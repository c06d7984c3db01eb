"""``rook envtest serve``: the emulator plus the simulated cluster in the foreground.

Writes a kubeconfig (server URL and bearer token) once the server listens -- atomically, so a
process waiting for the file never reads half of it -- prints where it listens, and stops cleanly
on SIGINT or SIGTERM (or when ``stop`` is set, for callers that run it on a thread).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType
from typing import Any, TextIO


def serve(kubeconfig: str, nodes: int = 3, port: int = 0, host: str = "127.0.0.1", *,
          history_size: int = 10_000, simulate_cluster: bool = True, pod_ready_delay: float = 0.05,
          bookmark_interval: float = 60.0, resync_period: float = 5.0,
          token: str | None = None, stop: threading.Event | None = None, out: TextIO | None = None) -> int:
    """Run until SIGINT/SIGTERM (main thread) or ``stop`` is set; returns the exit code (0)."""
    from rook_py.envtest.apiserver.server import APIServer
    from rook_py.envtest.cluster import SimulatedCluster
    from rook_py.envtest.environment import register_pod_hooks

    out = out or sys.stdout
    stop = stop or threading.Event()
    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        def on_signal(signum: int, frame: FrameType | None) -> None:
            stop.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, on_signal)

    server = APIServer(host=host, port=port, token=token, history_size=history_size,
                       bookmark_interval=bookmark_interval)
    cluster = None
    try:
        server.start()
        if simulate_cluster:
            cluster = SimulatedCluster(server.local, nodes=nodes, pod_ready_delay=pod_ready_delay,
                                       resync_period=resync_period).start()
            register_pod_hooks(server, cluster)
        partial = f"{kubeconfig}.tmp-{os.getpid()}"
        server.write_kubeconfig(partial)
        os.replace(partial, kubeconfig)
        https_url = getattr(server, "https_url", None)
        if https_url:
            # Same port: TLS for kubectl (it only sends tokens over TLS), plain HTTP for raw clients.
            print(f"envtest API server listening on {https_url} (plain HTTP: {server.url})", file=out)
        else:
            print(f"envtest API server listening on {server.url}", file=out)
        print(f"kubeconfig written to {kubeconfig} (export KUBECONFIG={kubeconfig})", file=out)
        print(f"simulated nodes: {nodes if simulate_cluster else 0}; stop with Ctrl-C", file=out, flush=True)
        stop.wait()
        print("envtest API server stopping", file=out, flush=True)
    finally:
        if cluster is not None:
            cluster.stop()
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The serve flags; the ``rook envtest serve`` subcommand reuses this on its own subparser."""
    parser = parser or argparse.ArgumentParser(
        prog="python -m rook_py.envtest.serve",
        description="Run the envtest Kubernetes API emulator with a simulated cluster in the foreground.")
    parser.add_argument("--kubeconfig", required=True, help="where to write the kubeconfig")
    parser.add_argument("--nodes", type=int, default=3, help="simulated nodes (default 3)")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--host", default="127.0.0.1", help=argparse.SUPPRESS)
    parser.add_argument("--history-size", type=int, default=10_000, help="watch history window (events)")
    parser.add_argument("--pod-ready-delay", type=float, default=0.05, help="seconds before pods turn Ready")
    parser.add_argument("--bookmark-interval", type=float, default=60.0, help="seconds between watch BOOKMARKs")
    parser.add_argument("--resync-period", type=float, default=5.0, help="simulated cluster's resync period")
    parser.add_argument("--no-cluster", action="store_true", help="API server only: no nodes, kubelet or GC")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.nodes < 0:
        print("--nodes must be >= 0", file=sys.stderr)
        return 2
    return serve(args.kubeconfig, nodes=args.nodes, port=args.port, host=args.host,
                 history_size=args.history_size, simulate_cluster=not args.no_cluster,
                 pod_ready_delay=args.pod_ready_delay, bookmark_interval=args.bookmark_interval,
                 resync_period=args.resync_period)


if __name__ == "__main__":
    sys.exit(main())
