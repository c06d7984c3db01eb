"""The agent's node metrics: exact names, labels and values from a fake sysfs and statvfs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from rook_py.chubaofs.agent.metrics import NodeCollector, exposition, make_registry, parse_ioerr

EXPECTED_SAMPLE_NAMES = {
    "rook_chubaofs_node_disk_present", "rook_chubaofs_node_disk_online", "rook_chubaofs_node_disk_size_bytes",
    "rook_chubaofs_node_disk_io_errors_total", "rook_chubaofs_node_path_capacity_bytes",
    "rook_chubaofs_node_path_used_bytes", "rook_chubaofs_node_path_available_bytes",
}


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")


def sysfs(root: Path) -> Path:
    block = root / "block"
    write(block / "sda" / "size", "1000")
    write(block / "sda" / "device" / "state", "running")
    write(block / "sda" / "device" / "ioerr_cnt", "0x1a")
    write(block / "sdb" / "size", "2000")
    write(block / "sdb" / "device" / "state", "offline")
    write(block / "sdb" / "device" / "ioerr_cnt", "0x0")
    write(block / "nvme0n1" / "size", "4000")
    write(block / "nvme0n1" / "device" / "state", "live")
    write(block / "vdc" / "size", "8")        # virtio: no state, no ioerr_cnt
    write(block / "loop0" / "size", "8")      # never reported
    return root


class StatVFS:
    f_frsize = 4096
    f_bsize = 4096
    f_blocks = 1000
    f_bfree = 400
    f_bavail = 300


def samples(collector: NodeCollector) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    body, content_type = exposition(make_registry(collector))
    assert content_type.startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            if s.name.endswith("_created"):
                continue
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def key(name: str, node: str = "n1", **labels: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return name, tuple(sorted({"node": node, **labels}.items()))


def test_exact_names_and_values(tmp_path: Path) -> None:
    def statvfs(path: str) -> Any:
        if path == "/broken":
            raise OSError("no such directory")
        return StatVFS()

    collector = NodeCollector("n1", sys_root=str(sysfs(tmp_path / "sys")), data_paths=["/var/lib/cfs", "/broken"],
                              statvfs=statvfs)
    collector.set_known_disks({"sdz": 5_000_000, "sda": 1})
    got = samples(collector)
    assert {name for name, _ in got} == EXPECTED_SAMPLE_NAMES
    p = "rook_chubaofs_node_disk_present"
    assert got[key(p, device="sda")] == 1 and got[key(p, device="sdz")] == 0
    assert key(p, device="loop0") not in got
    o = "rook_chubaofs_node_disk_online"
    assert got[key(o, device="sda")] == 1 and got[key(o, device="nvme0n1")] == 1
    assert got[key(o, device="sdb")] == 0 and got[key(o, device="sdz")] == 0
    assert got[key(o, device="vdc")] == 1  # present without a state file
    size = "rook_chubaofs_node_disk_size_bytes"
    assert got[key(size, device="sda")] == 1000 * 512
    assert got[key(size, device="sdz")] == 5_000_000  # vanished: the size discover recorded
    e = "rook_chubaofs_node_disk_io_errors_total"
    assert got[key(e, device="sda")] == 26 and got[key(e, device="sdb")] == 0
    assert key(e, device="vdc") not in got
    assert got[key("rook_chubaofs_node_path_capacity_bytes", path="/var/lib/cfs")] == 1000 * 4096
    assert got[key("rook_chubaofs_node_path_used_bytes", path="/var/lib/cfs")] == 600 * 4096
    assert got[key("rook_chubaofs_node_path_available_bytes", path="/var/lib/cfs")] == 300 * 4096
    assert key("rook_chubaofs_node_path_capacity_bytes", path="/broken") not in got


def test_real_statvfs_of_a_directory(tmp_path: Path) -> None:
    got = samples(NodeCollector("n1", sys_root=str(tmp_path), data_paths=[str(tmp_path)]))
    st = os.statvfs(tmp_path)
    assert got[key("rook_chubaofs_node_path_capacity_bytes", path=str(tmp_path))] == st.f_blocks * st.f_frsize


def test_counter_type_and_help_are_exposed(tmp_path: Path) -> None:
    body, _ = exposition(make_registry(NodeCollector("n1", sys_root=str(sysfs(tmp_path / "sys")))))
    text = body.decode()
    assert "# TYPE rook_chubaofs_node_disk_io_errors_total counter" in text
    assert "# TYPE rook_chubaofs_node_disk_online gauge" in text


def test_parse_ioerr() -> None:
    assert parse_ioerr("0x1f") == 31 and parse_ioerr("0x0") == 0 and parse_ioerr("zz") is None
