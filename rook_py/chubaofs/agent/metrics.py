"""The node agent's metrics: disks and ChubaoFS data paths of one node, read at scrape time.

Metric names (a stable contract; dashboards and alert rules use them):

* ``rook_chubaofs_node_disk_present{node,device}``: 1 while ``/sys/block/<dev>`` exists. A disk
  listed in the node's discover ConfigMap that vanished from sysfs reports 0, which is how a
  pulled or dead disk shows up;
* ``rook_chubaofs_node_disk_online{node,device}``: 1 when ``/sys/block/<dev>/device/state`` is
  ``running`` (SCSI) or ``live`` (NVMe); a present device whose driver exposes no state file
  counts as online, an absent one as offline;
* ``rook_chubaofs_node_disk_size_bytes{node,device}``: ``size`` (512-byte sectors) x 512, or the
  size discover recorded when the device is gone;
* ``rook_chubaofs_node_disk_io_errors_total{node,device}``: ``device/ioerr_cnt`` (hexadecimal,
  SCSI only: other devices have no series rather than a misleading 0);
* ``rook_chubaofs_node_path_{capacity,used,available}_bytes{node,path}``: ``statvfs`` of each
  configured data path; ``available`` is what an unprivileged writer may still use (``f_bavail``),
  ``used`` is ``blocks - bfree``, as ``df`` computes them.

Values are read when Prometheus scrapes, so a scrape always reflects the node's current state
and an idle agent does no work.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from prometheus_client.core import CollectorRegistry, CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from rook_py.framework.daemons.discover import SECTOR_BYTES, is_ignored
from rook_py.framework.logging import get_logger

PREFIX = "rook_chubaofs_node_"
ONLINE_STATES = frozenset({"running", "live"})

log = get_logger(__name__)

StatVFS = Callable[[str], Any]


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None


def parse_ioerr(text: str) -> int | None:
    """``ioerr_cnt`` is printed by the kernel as ``0x%x``; tolerate decimal too."""
    try:
        return int(text, 0) if text.lower().startswith("0x") else int(text, 16)
    except ValueError:
        return None


class NodeCollector:
    """A prometheus_client collector for one node. ``set_known_disks`` is fed from the discover
    ConfigMap (name -> size in bytes); sysfs is read at every ``collect``."""

    def __init__(self, node: str, *, sys_root: str = "/sys", data_paths: Sequence[str] = (),
                 statvfs: StatVFS = os.statvfs) -> None:
        self.node = node
        self.sys_root = Path(sys_root)
        self.data_paths = list(data_paths)
        self._statvfs = statvfs
        self._lock = threading.Lock()
        self._known: dict[str, int] = {}

    def set_known_disks(self, disks: dict[str, int]) -> None:
        with self._lock:
            self._known = dict(disks)

    def known_disks(self) -> dict[str, int]:
        with self._lock:
            return dict(self._known)

    def _sysfs_disks(self) -> list[str]:
        block = self.sys_root / "block"
        try:
            return sorted(p.name for p in block.iterdir() if not is_ignored(p.name))
        except OSError:
            return []

    def collect(self) -> Iterator[Metric]:
        labels = ["node", "device"]
        present = GaugeMetricFamily(PREFIX + "disk_present", "1 while the disk is visible in /sys/block.", labels=labels)
        online = GaugeMetricFamily(PREFIX + "disk_online", "1 when the disk's device state is running or live.",
                                   labels=labels)
        size = GaugeMetricFamily(PREFIX + "disk_size_bytes", "Disk size in bytes.", labels=labels)
        # CounterMetricFamily appends the _total suffix to the exposed sample name.
        ioerr = CounterMetricFamily(PREFIX + "disk_io_errors", "I/O errors the kernel counted for the disk.",
                                    labels=labels)
        known = self.known_disks()
        for dev in sorted(set(known) | set(self._sysfs_disks())):
            base = self.sys_root / "block" / dev
            is_present = base.is_dir()
            state = _read(base / "device" / "state")
            is_online = is_present and (state is None or state in ONLINE_STATES)
            sectors = _read(base / "size") if is_present else None
            value = [self.node, dev]
            present.add_metric(value, 1.0 if is_present else 0.0)
            online.add_metric(value, 1.0 if is_online else 0.0)
            if sectors is not None and sectors.isdigit():
                size.add_metric(value, float(int(sectors) * SECTOR_BYTES))
            elif dev in known:
                size.add_metric(value, float(known[dev]))
            raw = _read(base / "device" / "ioerr_cnt") if is_present else None
            count = parse_ioerr(raw) if raw else None
            if count is not None:
                ioerr.add_metric(value, float(count))
        yield from (present, online, size, ioerr)
        yield from self._paths()

    def _paths(self) -> Iterable[Metric]:
        labels = ["node", "path"]
        capacity = GaugeMetricFamily(PREFIX + "path_capacity_bytes", "Size of the filesystem holding the path.",
                                     labels=labels)
        used = GaugeMetricFamily(PREFIX + "path_used_bytes", "Bytes used on the filesystem holding the path.",
                                 labels=labels)
        available = GaugeMetricFamily(PREFIX + "path_available_bytes",
                                      "Bytes still available to unprivileged writers.", labels=labels)
        for path in self.data_paths:
            try:
                st = self._statvfs(path)
            except OSError as err:
                # No series rather than zeros: "0 bytes free" would fire disk-full alerts.
                log.warning("statvfs failed", path=path, error=str(err))
                continue
            frsize = st.f_frsize or st.f_bsize
            capacity.add_metric([self.node, path], float(st.f_blocks * frsize))
            used.add_metric([self.node, path], float((st.f_blocks - st.f_bfree) * frsize))
            available.add_metric([self.node, path], float(st.f_bavail * frsize))
        return (capacity, used, available)


def make_registry(collector: NodeCollector) -> CollectorRegistry:
    """A registry holding only the node collector: the agent exposes node facts, nothing else."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry


def exposition(registry: CollectorRegistry) -> tuple[bytes, str]:
    return generate_latest(registry), CONTENT_TYPE_LATEST
