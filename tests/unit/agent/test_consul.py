"""The agent's Consul side against the Consul HTTP API double: registration and stale reaping."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rook_py.chubaofs.agent.consul import (
    AGENT_SERVICE,
    ConsulClient,
    ConsulError,
    Registrar,
    StaleReaper,
    registration,
)
from tests.support.consul_double import ConsulDouble, running_consul


@pytest.fixture
def consul() -> Iterator[ConsulDouble]:
    with running_consul(min_check_interval=0.05) as double:
        yield double


def test_registration_definition() -> None:
    d = registration("node-1", "prod", "10.0.0.7", 9500, check_interval=10)
    assert d["ID"] == "rook-chubaofs-agent-node-1" and d["Name"] == AGENT_SERVICE
    assert d["Tags"] == ["node=node-1", "cluster=prod"]
    assert d["Check"]["HTTP"] == "http://10.0.0.7:9500/metrics" and d["Check"]["Interval"] == "10s"


def test_register_and_deregister(consul: ConsulDouble) -> None:
    client = ConsulClient(consul.address)
    registrar = Registrar(client, registration("node-1", "prod", "127.0.0.1", 1, check_interval=0.05))
    assert registrar.deregister() is False  # never registered: nothing to do
    assert registrar.register() is True
    services = consul.services()
    assert services["rook-chubaofs-agent-node-1"]["Tags"] == ["node=node-1", "cluster=prod"]
    assert registrar.register() is True  # idempotent re-registration
    assert list(consul.services()) == ["rook-chubaofs-agent-node-1"]
    assert registrar.deregister() is True
    assert consul.services() == {}


def test_unreachable_consul_is_reported_not_raised() -> None:
    registrar = Registrar(ConsulClient("127.0.0.1:1", timeout=0.5), registration("n", "c", "127.0.0.1", 1))
    assert registrar.register() is False
    with pytest.raises(ConsulError):
        ConsulClient("127.0.0.1:1", timeout=0.5).services()


def cfs(consul: ConsulDouble, sid: str, address: str, port: int) -> None:
    consul.register_service({"Name": "cfs", "ID": sid, "Address": address, "Port": port,
                             "Tags": ["app=cfs", "role=dataNode", "cluster=prod"]})


def test_reaper_deregisters_only_dead_instances_of_this_node_after_grace(consul: ConsulDouble) -> None:
    cfs(consul, "cfs_dataNode_10.0.0.5_17320", "10.0.0.5", 17320)   # ours, dead
    cfs(consul, "cfs_metanode_10.0.0.5_17220", "10.0.0.5", 17220)   # ours, alive
    cfs(consul, "cfs_dataNode_10.0.0.6_17320", "10.0.0.6", 17320)   # another node's, dead
    consul.register_service({"Name": "other", "ID": "other-1", "Address": "10.0.0.5", "Port": 1})
    now = [100.0]
    alive = {"http://10.0.0.5:17220/metrics"}
    probed: list[str] = []

    def probe(url: str, timeout: float) -> bool:
        probed.append(url)
        return url in alive

    reaper = StaleReaper(ConsulClient(consul.address), frozenset({"10.0.0.5"}), grace=60.0, probe=probe,
                         clock=lambda: now[0])
    assert reaper.sweep() == []
    assert sorted(probed) == ["http://10.0.0.5:17220/metrics", "http://10.0.0.5:17320/metrics"]
    now[0] += 59
    assert reaper.sweep() == []
    now[0] += 1
    assert reaper.sweep() == ["cfs_dataNode_10.0.0.5_17320"]
    assert set(consul.services()) == {"cfs_metanode_10.0.0.5_17220", "cfs_dataNode_10.0.0.6_17320", "other-1"}


def test_recovery_resets_the_grace_period(consul: ConsulDouble) -> None:
    cfs(consul, "cfs_dataNode_10.0.0.5_17320", "10.0.0.5", 17320)
    now = [0.0]
    up = [False]
    reaper = StaleReaper(ConsulClient(consul.address), frozenset({"10.0.0.5"}), grace=10.0,
                         probe=lambda url, timeout: up[0], clock=lambda: now[0])
    reaper.sweep()
    now[0] = 9
    up[0] = True
    reaper.sweep()          # back: forgotten
    up[0] = False
    now[0] = 15
    assert reaper.sweep() == []   # down again since 15, not since 0
    now[0] = 25
    assert reaper.sweep() == ["cfs_dataNode_10.0.0.5_17320"]
