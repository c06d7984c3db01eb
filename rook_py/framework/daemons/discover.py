"""``rook discover``: publish a node's block devices in the ConfigMap ``local-device-<node>``.

After Rook's ``pkg/daemon/discover/discover.go``: a DaemonSet pod per node lists the node's
block devices every interval (and at once on SIGHUP) and writes them, as a JSON list under the
key ``devices``, to a ConfigMap in the operator's namespace labelled ``app: rook-discover`` and
``rook.io/node: <node>``. Consumers (the node agent, provisioning code) read that ConfigMap
instead of each needing host access.

Invariants:
* the ConfigMap is written only when the device list changed (compared as the canonical JSON of
  the list sorted by name), so a steady node costs one GET per interval and no writes;
* loop, ram, zram, rbd and nbd devices, and their partitions, are never listed: they are not
  local disks (Rook's ``sys.IgnoreDevice`` family of filters);
* the list comes from ``lsblk`` (JSON, sizes in bytes) and, where ``lsblk`` is missing or fails,
  from ``/sys/block``; the sysfs root and the mounts table are injectable for tests.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import signal
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from rook_py.framework.client import errors
from rook_py.framework.cmdline import LOGGING_FLAGS, Fatal, Flag, require_node_identity
from rook_py.framework.kube.selectors import fit_label_value
from rook_py.framework.logging import get_logger

JSON = dict[str, Any]
APP_LABEL = "rook-discover"
NODE_LABEL = "rook.io/node"
DEVICES_KEY = "devices"
CONFIGMAP_PREFIX = "local-device-"
MAX_NAME_LENGTH = 63
DEFAULT_INTERVAL = 3600.0
LSBLK_COLUMNS = "NAME,KNAME,SIZE,TYPE,ROTA,MODEL,SERIAL,WWN,FSTYPE,MOUNTPOINT,PKNAME"
IGNORED = re.compile(r"^(loop|ram|zram|rbd|nbd)\d*")
SECTOR_BYTES = 512  # /sys/block/*/size is in 512-byte sectors whatever the device's block size

log = get_logger(__name__)

DISCOVER_FLAGS: tuple[Flag, ...] = (
    Flag("kubeconfig", None, "kubeconfig file; default in-cluster", env=("KUBECONFIG",)),
    Flag("node-name", None, "this node's name (required; from the downward API)", env=("NODE_NAME",)),
    Flag("namespace", None, "namespace of the ConfigMaps (required)", env=("POD_NAMESPACE",)),
    Flag("discover-devices-interval", DEFAULT_INTERVAL, "time between scans", kind="duration"),
    Flag("sys-root", "/sys", "sysfs mount (fallback when lsblk is missing)"),
    Flag("lsblk", "lsblk", "lsblk binary; empty uses /sys only"),
    *LOGGING_FLAGS,
)


# -- device listing -----------------------------------------------------------------------------

def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip() in ("1", "true")


def _as_int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def is_ignored(name: str, type_: str | None = None) -> bool:
    return type_ == "loop" or bool(IGNORED.match(name))


def device(name: str, *, kname: str | None = None, size: int = 0, type_: str = "disk", rotational: bool = False,
           model: str | None = None, serial: str | None = None, wwn: str | None = None, fstype: str | None = None,
           mountpoint: str | None = None, parent: str | None = None) -> JSON:
    """One entry of the ``devices`` list (the stable schema consumers read)."""
    return {"name": name, "kname": kname or name, "size": size, "type": type_, "rotational": rotational,
            "model": model, "serial": serial, "wwn": wwn, "fstype": fstype, "mountpoint": mountpoint,
            "parent": parent}


def parse_lsblk(output: str) -> list[JSON]:
    """Devices from ``lsblk --json --bytes --list`` output; old lsblk versions print every value
    as a string (``"size": "1000"``, ``"rota": "1"``), newer ones as numbers and booleans."""
    out = []
    for entry in json.loads(output).get("blockdevices") or []:
        name = _text(entry.get("name"))
        if name is None:
            continue
        type_ = _text(entry.get("type")) or "disk"
        parent = _text(entry.get("pkname"))
        if is_ignored(name, type_) or (parent is not None and is_ignored(parent)):
            continue
        out.append(device(name, kname=_text(entry.get("kname")), size=_as_int(entry.get("size")), type_=type_,
                          rotational=_as_bool(entry.get("rota")), model=_text(entry.get("model")),
                          serial=_text(entry.get("serial")), wwn=_text(entry.get("wwn")),
                          fstype=_text(entry.get("fstype")), mountpoint=_text(entry.get("mountpoint")),
                          parent=parent))
    return out


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip() or None
    except OSError:
        return None


def read_mounts(path: str = "/proc/self/mounts") -> dict[str, tuple[str, str]]:
    """``/dev/<name>`` -> (mountpoint, fstype), first mount wins."""
    mounts: dict[str, tuple[str, str]] = {}
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                fields = line.split()
                if len(fields) >= 3 and fields[0].startswith("/dev/"):
                    mounts.setdefault(os.path.basename(fields[0]), (fields[1], fields[2]))
    except OSError:
        pass
    return mounts


def list_sysfs(sys_root: str = "/sys", mounts: Mapping[str, tuple[str, str]] | None = None) -> list[JSON]:
    """Devices from ``<sys_root>/block``: disks, and partitions (subfolders with a ``partition``
    file). sysfs has no filesystem type; unmounted devices report ``fstype`` None."""
    mounts = mounts or {}
    block = Path(sys_root) / "block"
    out: list[JSON] = []
    if not block.is_dir():
        return out
    for disk in sorted(block.iterdir(), key=lambda p: p.name):
        if is_ignored(disk.name):
            continue
        out.append(_sysfs_device(disk, disk.name, "disk", None, mounts))
        for part in sorted(disk.iterdir(), key=lambda p: p.name):
            if (part / "partition").exists():
                out.append(_sysfs_device(part, part.name, "part", disk.name, mounts))
    return out


def _sysfs_device(path: Path, name: str, type_: str, parent: str | None,
                  mounts: Mapping[str, tuple[str, str]]) -> JSON:
    disk = path.parent if parent else path
    mountpoint, fstype = mounts.get(name, (None, None))
    wwn = _read(disk / "wwid") or _read(disk / "device" / "wwid")
    return device(name, size=_as_int(_read(path / "size")) * SECTOR_BYTES, type_=type_,
                  rotational=_read(disk / "queue" / "rotational") == "1",
                  model=_read(disk / "device" / "model"), serial=_read(disk / "device" / "serial"),
                  wwn=wwn, fstype=fstype, mountpoint=mountpoint, parent=parent)


Runner = Callable[[Sequence[str]], str]


def run_command(cmd: Sequence[str]) -> str:
    return subprocess.run(list(cmd), check=True, capture_output=True, text=True, timeout=60).stdout


@dataclass
class DeviceLister:
    """``lsblk`` first, ``/sys/block`` when lsblk is missing or fails (minimal images, odd
    kernels); ``lsblk=""`` forces sysfs."""

    lsblk: str = "lsblk"
    sys_root: str = "/sys"
    mounts_file: str = "/proc/self/mounts"
    runner: Runner = run_command

    def __call__(self) -> list[JSON]:
        if self.lsblk:
            try:
                return parse_lsblk(self.runner([self.lsblk, "--all", "--bytes", "--json", "--list",
                                                "--output", LSBLK_COLUMNS]))
            except (OSError, subprocess.SubprocessError, ValueError) as err:
                log.info("lsblk unavailable; reading /sys/block", error=str(err))
        return list_sysfs(self.sys_root, read_mounts(self.mounts_file))


# -- ConfigMap ----------------------------------------------------------------------------------

def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def configmap_name(node: str) -> str:
    """``local-device-<node>``; the md5 of the node name when that would pass 63 characters
    (Rook's ``k8sutil.TruncateNodeName``), so every node maps to one stable, valid name."""
    name = CONFIGMAP_PREFIX + node
    return name if len(name) <= MAX_NAME_LENGTH else CONFIGMAP_PREFIX + _md5(node)


def node_label_value(node: str) -> str:
    """The ``rook.io/node`` label value: the node name, or its md5 when it cannot be one."""
    return fit_label_value(node)


def encode_devices(devices: list[JSON]) -> str:
    """Canonical JSON: sorted by name and key, so equal lists always encode identically."""
    return json.dumps(sorted(devices, key=lambda d: (str(d.get("name")), str(d.get("parent")))),
                      sort_keys=True, separators=(",", ":"))


def desired_configmap(node: str, namespace: str, devices: list[JSON]) -> JSON:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": configmap_name(node), "namespace": namespace,
                         "labels": {"app": APP_LABEL, NODE_LABEL: node_label_value(node)}},
            "data": {DEVICES_KEY: encode_devices(devices)}}


def read_devices(configmap: JSON | None) -> list[JSON]:
    """The device list of a discover ConfigMap (empty when absent or unreadable)."""
    if not configmap:
        return []
    try:
        value = json.loads((configmap.get("data") or {}).get(DEVICES_KEY) or "[]")
    except ValueError:
        return []
    return [d for d in value if isinstance(d, dict)] if isinstance(value, list) else []


class DiscoverDaemon:
    """One node's discovery loop. ``scan_once`` is the unit of work; ``run`` loops it."""

    def __init__(self, client: Any, node: str, namespace: str, *, interval: float = DEFAULT_INTERVAL,
                 lister: Callable[[], list[JSON]] | None = None) -> None:
        if interval <= 0:
            raise ValueError("interval must be > 0")
        self.client = client
        self.node = node
        self.namespace = namespace
        self.interval = interval
        self.lister = lister or DeviceLister()
        self._stop = threading.Event()
        self._wake = threading.Event()

    def scan_once(self) -> str:
        """List devices and write the ConfigMap if they changed: "created"|"updated"|"unchanged"."""
        desired = desired_configmap(self.node, self.namespace, self.lister())
        name = desired["metadata"]["name"]
        try:
            live = self.client.get("v1", "ConfigMap", name, self.namespace)
        except errors.NotFound:
            try:
                self.client.create(desired, namespace=self.namespace)
                log.info("devices published", configmap=name, devices=len(read_devices(desired)))
                return "created"
            except errors.AlreadyExists:
                live = self.client.get("v1", "ConfigMap", name, self.namespace)
        labels = live.get("metadata", {}).get("labels") or {}
        wanted_labels = desired["metadata"]["labels"]
        if ((live.get("data") or {}).get(DEVICES_KEY) == desired["data"][DEVICES_KEY]
                and all(labels.get(k) == v for k, v in wanted_labels.items())):
            return "unchanged"
        live = {**live, "data": {**(live.get("data") or {}), **desired["data"]},
                "metadata": {**live["metadata"], "labels": {**labels, **wanted_labels}}}
        # A PUT with the live resourceVersion: a concurrent writer makes it fail with Conflict
        # and the next scan retries from a fresh read.
        self.client.update(live)
        log.info("devices changed", configmap=name, devices=len(read_devices(desired)))
        return "updated"

    def rescan(self) -> None:
        """Scan as soon as possible (what SIGHUP does)."""
        self._wake.set()

    def shutdown(self) -> None:
        """Make ``run`` return after the scan in progress (what SIGTERM does)."""
        self._stop.set()
        self._wake.set()

    def run(self, *, max_scans: int | None = None) -> None:
        """Scan now, then every ``interval`` or on ``rescan()``, until ``shutdown()`` (or ``max_scans``)."""
        scans = 0
        while not self._stop.is_set():
            try:
                self.scan_once()
            except (errors.ApiError, OSError) as err:
                log.error("device scan failed; retrying next interval", error=str(err))
            scans += 1
            if max_scans is not None and scans >= max_scans:
                return
            # One event for both wake-up reasons: a rescan request or shutdown. Cleared only
            # here, so a SIGHUP that arrives during a scan still causes one more scan.
            self._wake.wait(self.interval)
            self._wake.clear()


def run_discover_command(args: argparse.Namespace, values: dict[str, Any]) -> int:
    """Handler of ``rook discover``: SIGHUP rescans, SIGTERM/SIGINT stop."""
    from rook_py.framework.client import Client, ConfigError, load_config

    node, namespace = require_node_identity(values)
    try:
        config = load_config(values.get("kubeconfig"))
    except ConfigError as err:
        raise Fatal(str(err)) from None
    client = Client(config, user_agent="rook-discover")
    daemon = DiscoverDaemon(client, node, namespace, interval=float(values["discover_devices_interval"]),
                            lister=DeviceLister(lsblk=values.get("lsblk") or "", sys_root=values["sys_root"]))

    def on_stop(signum: int, frame: FrameType | None) -> None:
        daemon.shutdown()

    def on_hup(signum: int, frame: FrameType | None) -> None:
        daemon.rescan()

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGHUP, on_hup)
    log.info("discovering devices", node=node, namespace=namespace, interval=daemon.interval)
    try:
        daemon.run()
    finally:
        client.close()
    return 0
