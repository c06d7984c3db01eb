"""``rook discover``: device listing (lsblk and /sys/block), the ConfigMap, the scan loop."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from rook_py.framework.daemons import discover as d
from tests.support.waiting import eventually

JSON = dict[str, Any]

LSBLK_NEW = json.dumps({"blockdevices": [
    {"name": "sda", "kname": "sda", "size": 500107862016, "type": "disk", "rota": True, "model": "ST500 ",
     "serial": "Z1", "wwn": "0x5000c500", "fstype": None, "mountpoint": None, "pkname": None},
    {"name": "sda1", "kname": "sda1", "size": 1048576, "type": "part", "rota": True, "model": None,
     "serial": None, "wwn": "0x5000c500", "fstype": "ext4", "mountpoint": "/data", "pkname": "sda"},
    {"name": "loop0", "kname": "loop0", "size": 4096, "type": "loop", "rota": False, "pkname": None},
    {"name": "nbd0", "kname": "nbd0", "size": 0, "type": "disk", "rota": False, "pkname": None},
    {"name": "nbd0p1", "kname": "nbd0p1", "size": 0, "type": "part", "rota": False, "pkname": "nbd0"},
    {"name": "zram0", "kname": "zram0", "size": 8, "type": "disk", "rota": False, "pkname": None},
]})
# util-linux < 2.33 prints every value as a string.
LSBLK_OLD = json.dumps({"blockdevices": [
    {"name": "vdb", "kname": "vdb", "size": "10737418240", "type": "disk", "rota": "1", "model": None,
     "serial": "", "wwn": None, "fstype": None, "mountpoint": None, "pkname": None},
    {"name": "rbd0", "kname": "rbd0", "size": "1", "type": "disk", "rota": "0", "pkname": None},
    {"name": "ram0", "kname": "ram0", "size": "1", "type": "disk", "rota": "0", "pkname": None},
]})


def test_parse_lsblk_keeps_disks_and_partitions_and_drops_virtual_devices() -> None:
    devices = d.parse_lsblk(LSBLK_NEW)
    assert [x["name"] for x in devices] == ["sda", "sda1"]
    sda, sda1 = devices
    assert sda == {"name": "sda", "kname": "sda", "size": 500107862016, "type": "disk", "rotational": True,
                   "model": "ST500", "serial": "Z1", "wwn": "0x5000c500", "fstype": None, "mountpoint": None,
                   "parent": None}
    assert sda1["parent"] == "sda" and sda1["fstype"] == "ext4" and sda1["mountpoint"] == "/data"


def test_parse_lsblk_old_string_output() -> None:
    (vdb,) = d.parse_lsblk(LSBLK_OLD)
    assert vdb["size"] == 10737418240 and vdb["rotational"] is True and vdb["serial"] is None


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")


def fake_sysfs(root: Path) -> Path:
    block = root / "block"
    write(block / "sdb" / "size", "2048")
    write(block / "sdb" / "queue" / "rotational", "0")
    write(block / "sdb" / "device" / "model", "Samsung SSD")
    write(block / "sdb" / "device" / "serial", "S3Z")
    write(block / "sdb" / "device" / "wwid", "naa.5002538")
    write(block / "sdb" / "sdb1" / "partition", "1")
    write(block / "sdb" / "sdb1" / "size", "1024")
    write(block / "loop3" / "size", "8")
    write(block / "nbd1" / "size", "8")
    return root


def test_sysfs_fallback(tmp_path: Path) -> None:
    root = fake_sysfs(tmp_path / "sys")
    mounts = tmp_path / "mounts"
    mounts.write_text("/dev/sdb1 /var/lib/cfs ext4 rw 0 0\nproc /proc proc rw 0 0\n")
    devices = d.list_sysfs(str(root), d.read_mounts(str(mounts)))
    assert [x["name"] for x in devices] == ["sdb", "sdb1"]
    sdb, sdb1 = devices
    assert sdb["size"] == 2048 * 512 and sdb["rotational"] is False and sdb["model"] == "Samsung SSD"
    assert sdb["serial"] == "S3Z" and sdb["wwn"] == "naa.5002538" and sdb["type"] == "disk"
    assert sdb1 == {**sdb1, "type": "part", "parent": "sdb", "size": 1024 * 512, "mountpoint": "/var/lib/cfs",
                    "fstype": "ext4"}


def test_lister_falls_back_to_sysfs_when_lsblk_is_missing(tmp_path: Path) -> None:
    root = fake_sysfs(tmp_path / "sys")
    lister = d.DeviceLister(lsblk="/nonexistent/lsblk", sys_root=str(root), mounts_file=str(tmp_path / "none"))
    assert [x["name"] for x in lister()] == ["sdb", "sdb1"]

    def failing(cmd: Any) -> str:
        raise subprocess.CalledProcessError(1, cmd)

    lister = d.DeviceLister(sys_root=str(root), mounts_file=str(tmp_path / "none"), runner=failing)
    assert [x["name"] for x in lister()] == ["sdb", "sdb1"]


def test_lister_runs_lsblk_with_json_bytes_list() -> None:
    seen: list[list[str]] = []

    def runner(cmd: Any) -> str:
        seen.append(list(cmd))
        return LSBLK_NEW

    assert len(d.DeviceLister(runner=runner)()) == 2
    assert seen[0][:5] == ["lsblk", "--all", "--bytes", "--json", "--list"]
    assert seen[0][-1] == d.LSBLK_COLUMNS


def test_configmap_name_hashes_long_node_names() -> None:
    assert d.configmap_name("node-1") == "local-device-node-1"
    longest = "n" * (63 - len("local-device-"))
    assert d.configmap_name(longest) == "local-device-" + longest
    too_long = longest + "x"
    assert d.configmap_name(too_long) == "local-device-" + hashlib.md5(too_long.encode()).hexdigest()
    assert len(d.configmap_name(too_long)) <= 63


def test_encoding_is_order_independent() -> None:
    a, b = d.device("sdb"), d.device("sda")
    assert d.encode_devices([a, b]) == d.encode_devices([b, a])


class Devices:
    """A settable device list standing in for lsblk."""

    def __init__(self, *names: str) -> None:
        self.names = list(names)
        self.calls = 0

    def __call__(self) -> list[JSON]:
        self.calls += 1
        return [d.device(n, size=1000) for n in self.names]


UA = "rook-discover-test"


def test_configmap_written_only_when_devices_change(envtest: Any) -> None:
    admin = envtest.client()
    admin.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "rook-chubaofs"}})
    client = envtest.client(user_agent=UA)
    envtest.request_counts.reset()   # a real API server made ConfigMaps of its own at start
    devices = Devices("sda", "sdb")
    daemon = d.DiscoverDaemon(client, "node-1", "rook-chubaofs", lister=devices)
    assert daemon.scan_once() == "created"
    cm = admin.get("v1", "ConfigMap", "local-device-node-1", "rook-chubaofs")
    assert cm["metadata"]["labels"] == {"app": "rook-discover", "rook.io/node": "node-1"}
    assert [x["name"] for x in d.read_devices(cm)] == ["sda", "sdb"]
    assert daemon.scan_once() == "unchanged"
    assert daemon.scan_once() == "unchanged"
    assert envtest.request_counts.count(user_agent=UA, verb="update", resource="configmaps") == 0
    assert envtest.request_counts.count(user_agent=UA, verb="create", resource="configmaps") == 1
    devices.names = ["sda"]
    assert daemon.scan_once() == "updated"
    cm = admin.get("v1", "ConfigMap", "local-device-node-1", "rook-chubaofs")
    assert [x["name"] for x in d.read_devices(cm)] == ["sda"]
    assert envtest.request_counts.count(user_agent=UA, verb="update", resource="configmaps") == 1


def test_rescan_wakes_the_loop_and_shutdown_stops_it(mocker: Any) -> None:
    client = mocker.Mock()
    client.get.return_value = d.desired_configmap("n", "ns", [])
    devices = Devices()
    client.get.return_value = d.desired_configmap("n", "ns", devices())
    devices.calls = 0
    daemon = d.DiscoverDaemon(client, "n", "ns", interval=3600, lister=devices)
    thread = threading.Thread(target=daemon.run, daemon=True)
    thread.start()
    eventually(lambda: devices.calls >= 1, 10, interval=0.01, what="the first scan")
    daemon.rescan()
    eventually(lambda: devices.calls >= 2, 10, interval=0.01, what="the rescan")
    assert devices.calls == 2  # the interval is an hour: only rescan() explains the second scan
    daemon.shutdown()
    thread.join(10)
    assert not thread.is_alive()
    client.update.assert_not_called()


def test_scan_errors_do_not_stop_the_loop(mocker: Any) -> None:
    from rook_py.framework.client import errors

    client = mocker.Mock()
    client.get.side_effect = errors.ServiceUnavailable("down")
    daemon = d.DiscoverDaemon(client, "n", "ns", interval=0.01, lister=Devices("sda"))
    daemon.run(max_scans=3)
    assert client.get.call_count == 3


def test_rook_discover_process_rescans_on_sighup_and_exits_on_sigterm(envtest: Any, tmp_path: Path) -> None:
    """The real command in a subprocess: devices from a fake sysfs (no lsblk), SIGHUP rescans."""
    admin = envtest.client()
    admin.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "rook-chubaofs"}})
    root = fake_sysfs(tmp_path / "sys")
    env = {**os.environ, "NODE_NAME": "node-2", "POD_NAMESPACE": "rook-chubaofs", "KUBECONFIG": envtest.kubeconfig,
           "ROOK_DISCOVER_DEVICES_INTERVAL": "1h", "ROOK_LSBLK": "/nonexistent/lsblk", "ROOK_SYS_ROOT": str(root)}
    env.pop("ROOK_LOG_FORMAT", None)
    proc = subprocess.Popen([sys.executable, "-m", "rook_py.cli", "discover"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        def devices() -> list[str] | None:
            try:
                cm = admin.get("v1", "ConfigMap", "local-device-node-2", "rook-chubaofs")
            except Exception:
                return None
            return [x["name"] for x in d.read_devices(cm)]

        eventually(lambda: devices() == ["sdb", "sdb1"], 20, interval=0.05, what="the first device report")
        write(root / "block" / "sdc" / "size", "10")
        proc.send_signal(signal.SIGHUP)
        eventually(lambda: devices() == ["sdb", "sdb1", "sdc"], 20, interval=0.05, what="sdc after SIGHUP")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def test_long_node_names_get_a_valid_label_value() -> None:
    node = "a" * 60 + ".example.com"
    cm = d.desired_configmap(node, "ns", [])
    assert cm["metadata"]["labels"]["rook.io/node"] == hashlib.md5(node.encode()).hexdigest()
    assert d.desired_configmap("node-1", "ns", [])["metadata"]["labels"]["rook.io/node"] == "node-1"
