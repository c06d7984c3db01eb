"""The node agent end to end on envtest + the Consul double: discover ConfigMap -> metrics,
registration in the monitor's Consul with a live HTTP check, stale cfs reaping, deregistration."""

from __future__ import annotations

import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rook_py.chubaofs.agent.agent import Agent, AgentConfig, monitor_consul
from rook_py.chubaofs.agent.command import agent_config
from rook_py.chubaofs.agent.metrics import NodeCollector
from rook_py.chubaofs.api import types as t
from rook_py.chubaofs.api.crd import chubao_monitor_crd
from rook_py.framework.cmdline import Fatal
from rook_py.framework.daemons.discover import desired_configmap, device
from tests.support.consul_double import PASSING, ConsulDouble, running_consul
from tests.support.waiting import eventually

NS = "rook-chubaofs"


@pytest.fixture
def consul() -> Iterator[ConsulDouble]:
    with running_consul(min_check_interval=0.05) as double:
        yield double


def test_monitor_consul_address() -> None:
    mon = {"metadata": {"name": "mon", "namespace": "ns"}, "spec": {"cluster": {"name": "prod"}}}
    assert monitor_consul(mon).address == "mon-consul.ns.svc:8500" and monitor_consul(mon).cluster == "prod"
    mon["spec"]["consul"] = {"externalAddress": "consul.example:8500"}
    assert monitor_consul(mon).address == "consul.example:8500"


def test_agent_config_validation() -> None:
    base = {"node_name": "n", "namespace": NS, "listen_address": ":9500", "interval": 30.0,
            "deregister_stale_after": 0.0, "advertise_address": "10.0.0.1"}
    assert agent_config(base).port == 9500
    with pytest.raises(Fatal, match="NODE_NAME"):
        agent_config({**base, "node_name": None})
    with pytest.raises(Fatal, match="must serve /metrics"):
        agent_config({**base, "listen_address": "0"})
    with pytest.raises(Fatal, match="POD_IP"):
        agent_config({**base, "advertise_address": None, "monitor": "ns/mon"})


def test_agent_end_to_end(envtest: Any, consul: ConsulDouble, tmp_path: Path) -> None:
    admin = envtest.client()
    admin.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    envtest.install_crds([chubao_monitor_crd()])
    admin.create({"apiVersion": t.API_VERSION, "kind": t.KIND, "metadata": {"name": "mon", "namespace": NS},
                  "spec": {"cluster": {"name": "prod"}, "consul": {"externalAddress": consul.address}}})
    # discover saw sda and sdz; sdz has since vanished from sysfs.
    admin.create(desired_configmap("node-1", NS, [device("sda", size=512000), device("sdz", size=7),
                                                  device("sda1", type_="part", parent="sda")]))
    sys_root = tmp_path / "sys"
    (sys_root / "block" / "sda" / "device").mkdir(parents=True)
    (sys_root / "block" / "sda" / "size").write_text("1000\n")
    (sys_root / "block" / "sda" / "device" / "state").write_text("running\n")

    # A dead cfs instance on this node (nothing listens on port 1), and one on another node.
    consul.register_service({"Name": "cfs", "ID": "cfs_dataNode_127.0.0.1_1", "Address": "127.0.0.1", "Port": 1,
                             "Tags": ["app=cfs", "role=dataNode", "cluster=prod"]})
    consul.register_service({"Name": "cfs", "ID": "cfs_dataNode_10.0.0.9_1", "Address": "10.0.0.9", "Port": 1})

    config = AgentConfig(node="node-1", namespace=NS, advertise_address="127.0.0.1", port=0,
                         listen_address="127.0.0.1:0", monitor=f"{NS}/mon", node_addresses=frozenset({"127.0.0.1"}),
                         deregister_stale_after=0.3, interval=0.05, check_interval=0.05)
    agent = Agent(config, NodeCollector("node-1", sys_root=str(sys_root), data_paths=[str(tmp_path)]),
                  envtest.client(user_agent="rook-chubaofs-agent"))
    host, port = agent.start_server()
    stop = threading.Event()
    thread = threading.Thread(target=agent.run, args=(stop,), daemon=True)
    thread.start()
    try:
        sid = "rook-chubaofs-agent-node-1"
        service = eventually(lambda: consul.services().get(sid), what="registration")
        assert service["Tags"] == ["node=node-1", "cluster=prod"]
        assert service["Address"] == "127.0.0.1" and service["Port"] == port
        # The double runs the HTTP check against the agent's real /metrics.
        eventually(lambda: consul.checks().get(f"service:{sid}", {}).get("Status") == PASSING, what="passing check")
        body = urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5).read().decode()
        assert 'rook_chubaofs_node_disk_present{device="sdz",node="node-1"} 0.0' in body
        assert 'rook_chubaofs_node_disk_present{device="sda",node="node-1"} 1.0' in body
        assert 'rook_chubaofs_node_disk_size_bytes{device="sdz",node="node-1"} 7.0' in body
        assert 'device="sda1"' not in body  # partitions are not disks
        assert f'rook_chubaofs_node_path_capacity_bytes{{node="node-1",path="{tmp_path}"}}' in body
        eventually(lambda: "cfs_dataNode_127.0.0.1_1" not in consul.services(), what="stale cfs instance reaped")
        assert "cfs_dataNode_10.0.0.9_1" in consul.services()
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
    assert "rook-chubaofs-agent-node-1" not in consul.services()  # deregistered on stop


def test_agent_waits_for_its_monitor(envtest: Any, consul: ConsulDouble, tmp_path: Path) -> None:
    admin = envtest.client()
    admin.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    envtest.install_crds([chubao_monitor_crd()])
    config = AgentConfig(node="node-2", namespace=NS, advertise_address="127.0.0.1", port=9500,
                         listen_address="127.0.0.1:0", monitor=f"{NS}/later")
    agent = Agent(config, NodeCollector("node-2", sys_root=str(tmp_path)), envtest.client())
    agent.tick()   # no monitor, no discover ConfigMap: nothing registered, nothing raised
    assert agent.registrar is None and consul.services() == {}
    admin.create({"apiVersion": t.API_VERSION, "kind": t.KIND, "metadata": {"name": "later", "namespace": NS},
                  "spec": {"cluster": {"name": "c2"}, "consul": {"externalAddress": consul.address}}})
    agent.tick()
    assert consul.services()["rook-chubaofs-agent-node-2"]["Tags"] == ["node=node-2", "cluster=c2"]


def test_rook_chubaofs_agent_process_deregisters_on_sigterm(envtest: Any, consul: ConsulDouble,
                                                            tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys

    admin = envtest.client()
    admin.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    env = {**os.environ, "NODE_NAME": "node-3", "POD_NAMESPACE": NS, "KUBECONFIG": envtest.kubeconfig,
           "POD_IP": "127.0.0.1", "ROOK_LISTEN_ADDRESS": "127.0.0.1:0", "ROOK_CONSUL_ADDR": consul.address,
           "ROOK_CLUSTER": "prod", "ROOK_INTERVAL": "100ms", "ROOK_SYS_ROOT": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "rook_py.cli", "chubaofs", "agent"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        service = eventually(lambda: consul.services().get("rook-chubaofs-agent-node-3"), 20, what="registration")
        assert service["Tags"] == ["node=node-3", "cluster=prod"] and service["Port"] > 0
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        assert "rook-chubaofs-agent-node-3" not in consul.services()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
