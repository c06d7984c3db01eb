"""``rook chubaofs agent``: flags and the process around ``Agent`` (signals, clients)."""

from __future__ import annotations

import argparse
import signal
import threading
from types import FrameType
from typing import Any

from rook_py.chubaofs.agent.agent import Agent, AgentConfig
from rook_py.chubaofs.agent.metrics import NodeCollector
from rook_py.framework.cmdline import (
    COMMAND_PATH,
    HANDLER,
    LOGGING_FLAGS,
    Fatal,
    Flag,
    FlagSet,
    require_node_identity,
)
from rook_py.framework.httpserver import parse_bind_address
from rook_py.framework.logging import get_logger

log = get_logger(__name__)

AGENT_FLAGS: tuple[Flag, ...] = (
    Flag("kubeconfig", None, "kubeconfig file; default in-cluster", env=("KUBECONFIG",)),
    Flag("node-name", None, "this node's name (required; from spec.nodeName)", env=("NODE_NAME",)),
    Flag("namespace", None, "namespace of the discover ConfigMaps (required)", env=("POD_NAMESPACE",)),
    Flag("listen-address", ":9500", "address of /metrics"),
    Flag("advertise-address", None, "address registered in Consul (default: the pod IP)", env=("POD_IP",)),
    Flag("node-addresses", None, "this node's IPs, for stale ChubaoFS instances (default: host IP)",
         kind="list", env=("HOST_IP",)),
    Flag("monitor", None, "namespace/name of the ChubaoMonitor whose Consul to register in"),
    Flag("consul-addr", None, "Consul host:port, instead of the monitor's"),
    Flag("consul-token", None, "Consul ACL token", secret=True),
    Flag("cluster", "", "ChubaoFS cluster name tag (default: the monitor's spec.cluster.name)"),
    Flag("data-paths", [], "ChubaoFS data paths to report capacity of", kind="list"),
    Flag("deregister-stale-after", 0.0, "deregister cfs instances of this node unreachable this long; 0: off",
         kind="duration"),
    Flag("interval", 30.0, "refresh and registration interval", kind="duration"),
    Flag("sys-root", "/sys", "sysfs mount"),
    *LOGGING_FLAGS,
)


def agent_config(values: dict[str, Any]) -> AgentConfig:
    node, namespace = require_node_identity(values)
    try:
        bind = parse_bind_address(values["listen_address"])
    except ValueError as err:
        raise Fatal(f"--listen-address: {err}") from None
    if bind is None:
        raise Fatal("--listen-address: the agent must serve /metrics")
    if values["interval"] <= 0:
        raise Fatal("--interval must be > 0")
    advertise = values.get("advertise_address") or ""
    if (values.get("consul_addr") or values.get("monitor")) and not advertise:
        raise Fatal("no address to register in Consul: set POD_IP or --advertise-address")
    return AgentConfig(node=node, namespace=namespace, advertise_address=advertise, port=bind[1],
                       listen_address=values["listen_address"], cluster=values.get("cluster") or "",
                       consul_addr=values.get("consul_addr") or "", monitor=values.get("monitor") or "",
                       node_addresses=frozenset(values.get("node_addresses") or ()),
                       deregister_stale_after=float(values["deregister_stale_after"]),
                       interval=float(values["interval"]))


def run_agent_command(args: argparse.Namespace, values: dict[str, Any]) -> int:
    from rook_py.chubaofs.agent.consul import ConsulClient
    from rook_py.framework.client import Client, ConfigError, load_config

    config = agent_config(values)
    try:
        client = Client(load_config(values.get("kubeconfig")), user_agent="rook-chubaofs-agent")
    except ConfigError as err:
        raise Fatal(str(err)) from None
    token = values.get("consul_token") or None
    agent = Agent(config, NodeCollector(config.node, sys_root=values["sys_root"], data_paths=values["data_paths"]),
                  client, consul_factory=lambda address: ConsulClient(address, token=token))
    stop = threading.Event()

    def on_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    try:
        agent.run(stop)
    finally:
        client.close()
    return 0


def add_agent_command(subparsers: argparse._SubParsersAction[Any]) -> None:
    help_ = "node agent: disk and data-path metrics on :9500, Consul registration"
    parser: argparse.ArgumentParser = subparsers.add_parser("agent", help=help_, description=help_)
    FlagSet().add(parser, *AGENT_FLAGS)
    parser.set_defaults(**{HANDLER: run_agent_command, COMMAND_PATH: "rook chubaofs agent"})
