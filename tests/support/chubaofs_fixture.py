"""A ChubaoFS / CubeFS cluster as its daemons' /metrics show it, release by release.

`FixtureCluster(version)` models a small cluster (a leader and a follower master, two data
nodes, two meta nodes, two volumes) and renders, for each daemon, exactly the series that
release's exporter builds (names, labels, units), read from upstream source:

* util/exporter: names are ``cfs_<role>_<name>``; a Gauge/Counter exists only after its first
  Set/Add; an empty GaugeVec exports nothing; client_golang adds ``go_*`` / ``process_*``
  (the few process_* the dashboards read are rendered here); ``cfs_<role>_start_time`` is ms.
* master/monitor_metrics.go: gauges refreshed every 60 s on the raft leader; followers set the
  scalar ones to 0 and delete the labelled ones (2.2.0 zeroes ``disk_error`` without labels
  instead); ``*_GB`` cluster gauges are integer GiB, ``vol_{total,used}_GB`` are bytes;
  ``disk_error.path`` is ``<addr>_<path>`` from 3.3.0; ``vol_meta_count`` from 2.4.1;
  ``*_not_writable`` and ``inactive_{dataNodes,mataNodes}_info`` from 3.2.1 (``mata`` until
  3.5.1, ``meta`` from 3.5.2); ``master_no_leader`` from 3.3.0 (0 on the leader, 1 on a follower
  that knows no leader); ``disk_lost`` and ``masters_inactive`` from 3.5.2.
* datanode/metric.go: ``dataPartitionIOBytes{vol,type,disk}`` counter from 2.4.0;
  ``capacity{type}`` (bytes), ``dataPartitionCount``, ``connectionCnt``, ``totalDpSize`` from 3.2.1.
* metanode/metrics.go: ``mpInodeCount{partid}`` (2.4.0), ``{partid,vol}`` (3.1.0),
  ``mpDentryCount`` from 3.1.1, both ``{volName}`` summed per node from 3.5.2;
  ``meta_failed_partition`` and ``connectionCnt`` from 3.3.0.
* util/exporter/consul_register.go: service ``cfs``, ID ``cfs_<role>_<ip>_<port>``, tags
  ``app=cfs``, ``role=<role>``, ``cluster=<name>``; Meta none before 2.4.0, none for an empty
  consulMeta in 2.4.x, and from 3.0.0 a default claiming ``role=fuseclient`` plus ``cluster``,
  ``commit`` and ``metric_path``; no check.

Faults are switches on the model: `inactive_datanode`, `inactive_metanode`, `bad_disk`, `lost_disk` (3.5.2),
`volume_full`, `no_leader`, `refreshed=False` (masters before their first 60 s refresh),
`small` (under 1 GiB of capacity), `volumes_removed`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rook_py.chubaofs.versions import Release, parse_release

GIB = 1 << 30
START_MS = 1_700_000_000_000


def _r(text: str) -> Release:
    return parse_release(text)


@dataclass(frozen=True)
class Sample:
    name: str
    labels: tuple[tuple[str, str], ...]
    value: float
    kind: str = "gauge"

    def line(self) -> str:
        if not self.labels:
            return f"{self.name} {_fmt(self.value)}"
        inner = ",".join(f'{k}="{v}"' for k, v in self.labels)
        return f"{self.name}{{{inner}}} {_fmt(self.value)}"


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


@dataclass
class Daemon:
    """One ChubaoFS process: its role as upstream spells it and the data-plane address the
    masters know it by (``addr`` labels)."""

    name: str
    role: str  # master | dataNode | metanode
    addr: str
    healthy: bool = True  # False: /metrics fails (a dead target)


@dataclass
class Volume:
    total: int  # bytes
    used: int
    inodes: int
    dentries: int
    partitions: tuple[int, ...]  # meta partition ids


def _default_volumes() -> dict[str, Volume]:
    return {
        "logs": Volume(100 * GIB, 10 * GIB, 1200, 1150, (1, 2)),
        "images": Volume(200 * GIB, 70 * GIB, 300, 290, (3,)),
    }


@dataclass
class FixtureCluster:
    version: str
    cluster: str = "prod"
    leader: str | None = "master-1"
    refreshed: bool = True
    small: bool = False
    inactive_datanode: str | None = None
    inactive_metanode: str | None = None
    bad_disk: tuple[str, str] | None = None  # (data node name, disk path)
    lost_disk: tuple[str, str] | None = None
    volume_full: str | None = None
    volumes_removed: bool = False
    io_rate: float = 4096.0  # bytes/s each data node moves for each volume
    daemons: dict[str, Daemon] = field(default_factory=dict)
    volumes: dict[str, Volume] = field(default_factory=_default_volumes)

    def __post_init__(self) -> None:
        self.release = parse_release(self.version)
        if not self.daemons:
            for name, role, addr in (
                ("master-1", "master", "10.0.0.1:17010"),
                ("master-2", "master", "10.0.0.2:17010"),
                ("datanode-1", "dataNode", "10.0.1.1:17310"),
                ("datanode-2", "dataNode", "10.0.1.2:17310"),
                ("metanode-1", "metanode", "10.0.2.1:17210"),
                ("metanode-2", "metanode", "10.0.2.2:17210"),
            ):
                self.daemons[name] = Daemon(name, role, addr)

    def since(self, version: str) -> bool:
        return self.release >= _r(version)

    # --- what the daemons export -------------------------------------------------------------

    def samples(self, daemon_name: str, now: float) -> list[Sample]:
        """The series `daemon_name` exports at `now` (seconds since its start)."""
        daemon = self.daemons[daemon_name]
        out = [Sample(f"cfs_{daemon.role}_start_time", (), START_MS),
               Sample("process_start_time_seconds", (), START_MS / 1000),
               Sample("process_resident_memory_bytes", (), 64 * 1024 * 1024),
               Sample("process_cpu_seconds_total", (), 0.01 * now, "counter")]
        if daemon.role == "master":
            out += self._master(daemon)
        elif daemon.role == "dataNode":
            out += self._datanode(daemon, now)
        else:
            out += self._metanode(daemon)
        return out

    def exposition(self, daemon_name: str, now: float) -> str:
        lines: list[str] = []
        typed: set[str] = set()
        for sample in self.samples(daemon_name, now):
            if sample.name not in typed:
                typed.add(sample.name)
                lines.append(f"# TYPE {sample.name} {sample.kind}")
            lines.append(sample.line())
        return "\n".join(lines) + "\n"

    def _volumes(self) -> dict[str, Volume]:
        return {} if self.volumes_removed else self.volumes

    def _capacity_gb(self) -> tuple[int, int]:
        if self.small:
            return 0, 0  # 600 MiB total, 100 MiB used: integer GiB division makes both 0
        return 3000, 300

    def _master(self, daemon: Daemon) -> list[Sample]:
        if not self.refreshed:
            return []
        is_leader = daemon.name == self.leader
        out: list[Sample] = []
        data_nodes = [d for d in self.daemons.values() if d.role == "dataNode"]
        meta_nodes = [d for d in self.daemons.values() if d.role == "metanode"]
        total_gb, used_gb = self._capacity_gb()
        volumes = self._volumes()
        scalar = {
            "dataNodes_count": len(data_nodes),
            "metaNodes_count": len(meta_nodes),
            "vol_count": len(volumes),
            "dataNodes_total_GB": total_gb,
            "dataNodes_used_GB": used_gb,
            "dataNodes_increased_GB": 0 if self.small else 2,
            "metaNodes_total_GB": 0 if self.small else 64,
            "metaNodes_used_GB": 0 if self.small else 3,
            "metaNodes_increased_GB": 0,
            "dataNodes_inactive": 1 if self.inactive_datanode else 0,
            "metaNodes_inactive": 1 if self.inactive_metanode else 0,
        }
        if self.since("3.2.1"):
            scalar["dataNodes_not_writable"] = 1 if self.inactive_datanode else 0
            scalar["metaNodes_not_writable"] = 0
        if self.since("3.5.2"):
            scalar["masters_inactive"] = 0
        for name, value in scalar.items():
            out.append(Sample(f"cfs_master_{name}", (), value if is_leader else 0))
        if self.since("3.3.0"):
            # leader: resetFollowerMetrics sets 0; follower: 1 when it knows no leader.
            out.append(Sample("cfs_master_master_no_leader", (), 1 if self.leader is None else 0))
        if not is_leader:
            if not self.since("2.4.0"):
                out.append(Sample("cfs_master_disk_error", (), 0))  # 2.2.0: Set(0) on a label-less gauge
            return out
        for vol_name, vol in sorted(volumes.items()):
            used = vol.total * 95 // 100 if vol_name == self.volume_full else vol.used
            labels = (("volName", vol_name),)
            out.append(Sample("cfs_master_vol_total_GB", labels, vol.total))
            out.append(Sample("cfs_master_vol_used_GB", labels, used))
            out.append(Sample("cfs_master_vol_usage_ratio", labels, round(used / vol.total, 2)))
            if self.since("2.4.1"):
                for kind, value in (("inode", vol.inodes), ("dentry", vol.dentries), ("mp", len(vol.partitions)),
                                    ("dp", 10), ("freeList", 0)):
                    out.append(Sample("cfs_master_vol_meta_count", (("volName", vol_name), ("type", kind)), value))
        for fault, metric, since in ((self.bad_disk, "disk_error", "2.0.0"), (self.lost_disk, "disk_lost", "3.5.2")):
            if fault is None or not self.since(since):
                continue
            addr = self.daemons[fault[0]].addr
            path = f"{addr}_{fault[1]}" if self.since("3.3.0") else fault[1]
            out.append(Sample(f"cfs_master_{metric}", (("addr", addr), ("path", path)), 1))
        if self.since("3.2.1") and self.inactive_datanode:
            addr = self.daemons[self.inactive_datanode].addr
            out.append(Sample("cfs_master_inactive_dataNodes_info", (("clusterName", self.cluster), ("addr", addr)), 1))
        if self.since("3.2.1") and self.inactive_metanode:
            addr = self.daemons[self.inactive_metanode].addr
            name = "inactive_metaNodes_info" if self.since("3.5.2") else "inactive_mataNodes_info"
            out.append(Sample(f"cfs_master_{name}", (("clusterName", self.cluster), ("addr", addr)), 1))
        return out

    def _datanode(self, daemon: Daemon, now: float) -> list[Sample]:
        out: list[Sample] = []
        if self.since("2.4.0"):
            for vol_name in sorted(self._volumes()):
                for kind, share in (("read", 0.5), ("write", 0.3), ("randwrite", 0.2)):
                    labels = (("vol", vol_name), ("type", kind), ("disk", "/cfs/disk1"))
                    out.append(Sample("cfs_dataNode_dataPartitionIOBytes", labels, int(self.io_rate * share * now),
                                      "counter"))
        if self.since("3.2.1"):
            for kind, value in (("total", 1500 * GIB), ("used", 150 * GIB), ("available", 1350 * GIB)):
                out.append(Sample("cfs_dataNode_capacity", (("type", kind),), value))
            out += [Sample("cfs_dataNode_dataPartitionCount", (), 10), Sample("cfs_dataNode_connectionCnt", (), 4),
                    Sample("cfs_dataNode_totalDpSize", (), 1200 * GIB)]
        return out

    def _metanode(self, daemon: Daemon) -> list[Sample]:
        out: list[Sample] = []
        if not self.since("2.4.0"):
            return out
        # Every meta node holds a replica of every meta partition (3 replicas, 2 nodes here: all).
        per_volume: dict[str, tuple[int, int]] = {}
        for vol_name, vol in sorted(self._volumes().items()):
            share = len(vol.partitions)
            for index, partid in enumerate(vol.partitions):
                inodes = vol.inodes // share + (vol.inodes % share if index == 0 else 0)
                dentries = vol.dentries // share + (vol.dentries % share if index == 0 else 0)
                if self.since("3.5.2"):
                    old = per_volume.get(vol_name, (0, 0))
                    per_volume[vol_name] = (old[0] + inodes, old[1] + dentries)
                    continue
                labels: tuple[tuple[str, str], ...] = (("partid", str(partid)),)
                if self.since("3.1.0"):
                    labels += (("vol", vol_name),)
                out.append(Sample("cfs_metanode_mpInodeCount", labels, inodes))
                if self.since("3.1.1"):
                    out.append(Sample("cfs_metanode_mpDentryCount", labels, dentries))
        for vol_name, (inodes, dentries) in sorted(per_volume.items()):
            out.append(Sample("cfs_metanode_mpInodeCount", (("volName", vol_name),), inodes))
            out.append(Sample("cfs_metanode_mpDentryCount", (("volName", vol_name),), dentries))
        if self.since("3.3.0"):
            out += [Sample("cfs_metanode_meta_failed_partition", (), 0), Sample("cfs_metanode_connectionCnt", (), 3)]
        return out

    # --- how they register in Consul ---------------------------------------------------------

    def registration(self, daemon_name: str, ip: str, port: int) -> dict[str, Any]:
        """The body of PUT /v1/agent/service/register the daemon sends (consulMeta left empty)."""
        daemon = self.daemons[daemon_name]
        body: dict[str, Any] = {
            "Name": "cfs", "ID": f"cfs_{daemon.role}_{ip}_{port}", "Address": ip, "Port": port,
            "Tags": ["app=cfs", f"role={daemon.role}", f"cluster={self.cluster}"],
        }
        if self.since("3.0.0"):
            body["Meta"] = {"dataset": "custom", "category": "custom", "app": "cfs", "role": "fuseclient",
                            "metric_path": "/metrics", "cluster": self.cluster, "commit": "fixture"}
        return body


class MixedCluster:
    """A cluster in the middle of a rolling upgrade: the daemons named in `upgraded` run `new`'s
    release, the others `old`'s. Fault switches set with `set` apply to both halves."""

    def __init__(self, old: str, new: str, upgraded: set[str], cluster: str = "prod") -> None:
        self.old, self.new = FixtureCluster(old, cluster=cluster), FixtureCluster(new, cluster=cluster)
        self.new.daemons = self.old.daemons  # one set of daemons, one health state
        self.upgraded = upgraded
        self.cluster = cluster

    @property
    def daemons(self) -> dict[str, Daemon]:
        return self.old.daemons

    def set(self, **switches: Any) -> None:
        for half in (self.old, self.new):
            for name, value in switches.items():
                setattr(half, name, value)

    def samples(self, daemon_name: str, now: float) -> list[Sample]:
        return (self.new if daemon_name in self.upgraded else self.old).samples(daemon_name, now)
