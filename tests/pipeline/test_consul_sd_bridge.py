"""The HTTP SD bridge reproduces consul_sd's target labels, and the swap keeps jobs intact."""

from __future__ import annotations

import json
import urllib.request

import yaml

from rook_py.chubaofs.monitor.config import render_prometheus_config
from tests.pipeline.consul_sd_bridge import ConsulSDBridge, consul_targets
from tests.support.consul_double import running_consul
from tests.tools.promtools import consul_sd_as_http_sd


def test_targets_carry_consul_sd_meta_labels() -> None:
    with running_consul() as consul:
        consul.register_service({"Name": "cfs", "ID": "cfs_master_10.0.0.1_17010", "Address": "10.0.0.1", "Port": 17010,
                                 "Tags": ["app=cfs", "role=master", "cluster=prod"], "Meta": {"commit": "abc"}})
        consul.register_service({"Name": "cfs", "ID": "no-address", "Port": 17210, "Tags": []})
        consul.register_service({"Name": "rook-chubaofs-agent", "ID": "agent", "Port": 9500,
                                 "Check": {"TTL": "1h"}})
        first, second = consul_targets(consul.url, "cfs")
        assert first["targets"] == ["10.0.0.1:17010"]
        labels = first["labels"]
        assert labels["__meta_consul_tags"] == ",app=cfs,role=master,cluster=prod,"
        assert labels["__meta_consul_service_id"] == "cfs_master_10.0.0.1_17010"
        assert labels["__meta_consul_health"] == "passing"
        assert labels["__meta_consul_dc"] == "dc1" and labels["__meta_consul_service"] == "cfs"
        assert labels["__meta_consul_service_metadata_commit"] == "abc"
        # Without a service address consul_sd falls back to the node address.
        assert second["targets"] == ["127.0.0.1:17210"] and second["labels"]["__meta_consul_tags"] == ",,"
        (agent,) = consul_targets(consul.url, "rook-chubaofs-agent")
        assert agent["labels"]["__meta_consul_health"] == "critical"  # a new check starts critical

        bridge = ConsulSDBridge(consul.url).start()
        try:
            with urllib.request.urlopen(bridge.url_for("cfs"), timeout=5) as response:
                assert json.load(response)[0]["targets"] == ["10.0.0.1:17010"]
        finally:
            bridge.stop()


def test_consul_sd_swap_keeps_relabeling() -> None:
    config = yaml.safe_load(render_prometheus_config(cluster_name="prod", consul_server="consul:8500"))
    swapped = consul_sd_as_http_sd(config, lambda server, service: f"http://{server}/sd/{service}")
    for original, new in zip(config["scrape_configs"], swapped["scrape_configs"], strict=True):
        assert "consul_sd_configs" not in new
        assert new.get("relabel_configs") == original.get("relabel_configs")
        if "consul_sd_configs" in original:
            services = [s for block in original["consul_sd_configs"] for s in block["services"]]
            assert new["http_sd_configs"] == [{"url": f"http://consul:8500/sd/{s}"} for s in services]
    assert "consul_sd_configs" in config["scrape_configs"][0]  # the input is not modified
