"""The one place that knows how ChubaoFS 2.x and CubeFS 3.x export their metrics.

Recording rules turn what the daemons export into one set of ``chubaofs:*`` series; alerts and
dashboards use only those (and ``up``), so they are written once. Each expression covers every
supported release at once: where releases differ it takes the ``or`` of the alternatives, so a
cluster in the middle of a rolling upgrade (daemons of two releases side by side) is normalised
too, and a series is simply absent where a release has nothing to offer (``since`` says from
which release it has data).

Facts the expressions rest on (upstream files: master/monitor_metrics.go, datanode/metric.go,
metanode/metrics.go, util/exporter/*.go in chubaofs/chubaofs and cubefs/cubefs):

* Master gauges are refreshed every 60 s on the raft leader only; followers set the scalar ones
  to 0 and delete the labelled ones. So every cluster gauge is ``max`` across masters. A master
  publishes nothing of them before its first refresh (the exporter registers a gauge on its
  first Set), so a freshly started master adds no series at all.
* ``*_GB`` cluster gauges are integer GiB (``total / util.GB``, util.GB = 1 << 30): a cluster
  under 1 GiB reads 0. ``cfs_master_vol_{total,used}_GB`` hold **bytes** despite the name.
* ``cfs_master_disk_error{addr,path}``: ``path`` is the disk path up to 3.2.x and
  ``<addr>_<diskpath>`` from 3.3.0 (also ``disk_lost``, 3.5.2); the rules extract the disk path
  into ``disk`` either way.
* ``cfs_master_master_no_leader`` (3.3.0+) is 1 on a follower that knows no leader. Before 3.3.0
  there is no such gauge; then "no leader" is read as: data or meta node daemons are scraped, but
  no master publishes any data or meta node (only a leader counts them, and a cluster whose
  nodes are up has registered them). That needs the node daemons to export (``exporterPort``),
  which is why it is absent on a cluster whose nodes are not scraped.
* Per-volume inode and dentry counts come from the master's ``cfs_master_vol_meta_count``
  (cubefs 2.4.1+); the metanode's ``mpInodeCount`` is per partition and per replica, labelled
  ``partid`` only in 2.4.0, so 2.4.0 yields a cluster-wide inode count (replicas counted once,
  by partition id) and nothing per volume.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from rook_py.chubaofs.versions import OLDEST_SUPPORTED, Release, parse_release

#: Multiply integer GiB by this to get bytes.
GIB = 1 << 30


@dataclass(frozen=True)
class Signal:
    """One normalised series: how it is computed and from which release it has data."""

    record: str
    expr: str  # PromQL with $SEL (the cluster matcher) and $WINDOW (the rate window)
    since: Release
    sources: str  # upstream metric names, for the docs
    unit: str
    meaning: str
    caveat: str = ""
    caveat_before: Release | None = None  # the caveat holds only for releases below this one
    labels: tuple[str, ...] = field(default=("cluster",))


_r = parse_release


ALL = OLDEST_SUPPORTED


def _leader_gauge(record: str, metric: str, since: Release, unit: str, meaning: str, scale: str = "") -> Signal:
    return Signal(record, f"max by (cluster) (cfs_master_{metric}{{$SEL}}){scale}", since,
                  f"cfs_master_{metric}", unit, meaning)


def _leader_capacity(record: str, metric: str, meaning: str) -> Signal:
    # Only from the master that counts data nodes, i.e. the leader: a follower's reset 0 is not
    # "0 bytes used". Without this, a moment in which only followers are scraped (a leader
    # restarting, a new leader before its first refresh) records 0 and then the real value, and
    # predict_linear/deriv read that jump as growth.
    expr = (f"max by (cluster) (cfs_master_{metric}{{$SEL}}\n"
            f"  and on (instance) (cfs_master_dataNodes_count{{$SEL}} > 0)) * {GIB}")
    return Signal(record, expr, ALL, f"cfs_master_{metric}", "bytes", meaning + " (1 GiB resolution)")


def _disk_expr(metric: str) -> str:
    # 2.x: path="/data1"; 3.3.0+: path="10.0.0.5:17310_/data1". The second label_replace only
    # matches (and so only overwrites) the prefixed form.
    return (f'max by (cluster, addr, disk) (label_replace(label_replace(cfs_master_{metric}{{$SEL}} > 0, '
            f'"disk", "$1", "path", "(.*)"), "disk", "$1", "path", "[^/]*_(/.*)"))')


SIGNALS: tuple[Signal, ...] = (
    Signal(
        "chubaofs:master_no_leader",
        "max by (cluster) (cfs_master_master_no_leader{$SEL})\n"
        "or on (cluster)\n"
        "(\n"
        "  (max by (cluster) (cfs_master_dataNodes_count{$SEL}) + max by (cluster) (cfs_master_metaNodes_count{$SEL})) == bool 0\n"
        "  and on (cluster)\n"
        '  count by (cluster) (up{$SEL, job="chubaofs", role=~"dataNode|metanode"} == 1)\n'
        ")",
        ALL, "cfs_master_master_no_leader (3.3.0+); before: cfs_master_{data,meta}Nodes_count with up of the node daemons",
        "0/1", "1 while the masters have no raft leader",
        caveat="needs data or meta node daemons scraped (exporterPort set): before 3.3.0 the "
               "masters publish no leader state of their own",
        caveat_before=_r("3.3.0"),
    ),
    Signal("chubaofs:master_leader:info",
           "group by (cluster, instance) (cfs_master_dataNodes_count{$SEL} > 0 or cfs_master_metaNodes_count{$SEL} > 0)",
           ALL, "cfs_master_{data,meta}Nodes_count", "1",
           "the master that publishes the cluster gauges (the leader), once nodes have registered",
           labels=("cluster", "instance")),
    _leader_gauge("chubaofs:datanodes:count", "dataNodes_count", ALL, "count", "data nodes registered with the masters"),
    _leader_gauge("chubaofs:datanodes_inactive:count", "dataNodes_inactive", ALL, "count",
                  "data nodes without heartbeat"),
    _leader_gauge("chubaofs:metanodes:count", "metaNodes_count", ALL, "count", "meta nodes registered with the masters"),
    _leader_gauge("chubaofs:metanodes_inactive:count", "metaNodes_inactive", ALL, "count",
                  "meta nodes without heartbeat"),
    _leader_gauge("chubaofs:datanodes_not_writable:count", "dataNodes_not_writable", _r("3.2.1"), "count",
                  "data nodes that take no new writes"),
    _leader_gauge("chubaofs:metanodes_not_writable:count", "metaNodes_not_writable", _r("3.2.1"), "count",
                  "meta nodes that take no new writes"),
    _leader_gauge("chubaofs:masters_inactive:count", "masters_inactive", _r("3.5.2"), "count",
                  "masters the leader cannot reach"),
    _leader_gauge("chubaofs:volumes:count", "vol_count", ALL, "count", "volumes"),
    _leader_capacity("chubaofs:datanodes_capacity_total:bytes", "dataNodes_total_GB", "data node capacity"),
    _leader_capacity("chubaofs:datanodes_capacity_used:bytes", "dataNodes_used_GB", "data node capacity used"),
    _leader_capacity("chubaofs:datanodes_capacity_increased:bytes", "dataNodes_increased_GB", "data node usage increase since the previous master statistics"),
    _leader_capacity("chubaofs:metanodes_memory_total:bytes", "metaNodes_total_GB", "meta node memory"),
    _leader_capacity("chubaofs:metanodes_memory_used:bytes", "metaNodes_used_GB", "meta node memory used"),
    Signal(
        "chubaofs:datanodes_capacity_used:ratio",
        "max by (cluster) (cfs_master_dataNodes_used_GB{$SEL} and on (instance) (cfs_master_dataNodes_count{$SEL} > 0))\n"
        "  / (max by (cluster) (cfs_master_dataNodes_total_GB{$SEL}) > 0)",
        ALL, "cfs_master_dataNodes_{used,total}_GB", "ratio",
        "share of data node capacity used (absent while the capacity reads 0 GiB, under 1 GiB)",
    ),
    Signal("chubaofs:volume_capacity:bytes", "max by (cluster, volName) (cfs_master_vol_total_GB{$SEL})", ALL,
           "cfs_master_vol_total_GB (bytes)", "bytes", "volume capacity", labels=("cluster", "volName")),
    Signal("chubaofs:volume_used:bytes", "max by (cluster, volName) (cfs_master_vol_used_GB{$SEL})", ALL,
           "cfs_master_vol_used_GB (bytes)", "bytes", "volume space used", labels=("cluster", "volName")),
    Signal("chubaofs:volume_usage:ratio", "max by (cluster, volName) (cfs_master_vol_usage_ratio{$SEL})", ALL,
           "cfs_master_vol_usage_ratio", "ratio", "volume used / capacity", labels=("cluster", "volName")),
    Signal("chubaofs:volume_inodes:count", 'max by (cluster, volName) (cfs_master_vol_meta_count{$SEL, type="inode"})',
           _r("2.4.1"), 'cfs_master_vol_meta_count{type="inode"}', "count", "inodes per volume",
           labels=("cluster", "volName")),
    Signal("chubaofs:volume_dentries:count",
           'max by (cluster, volName) (cfs_master_vol_meta_count{$SEL, type="dentry"})',
           _r("2.4.1"), 'cfs_master_vol_meta_count{type="dentry"}', "count", "dentries per volume",
           labels=("cluster", "volName")),
    Signal(
        "chubaofs:inodes:count",
        'sum by (cluster) (max by (cluster, volName) (cfs_master_vol_meta_count{$SEL, type="inode"}))\n'
        "or on (cluster)\n"
        "sum by (cluster) (max by (cluster, partid) (cfs_metanode_mpInodeCount{$SEL, partid!=\"\"}))",
        _r("2.4.0"), 'cfs_master_vol_meta_count{type="inode"} (2.4.1+); cfs_metanode_mpInodeCount{partid} (2.4.0)',
        "count", "inodes in the cluster (each meta partition once, not per replica)",
    ),
    Signal("chubaofs:disk_error", _disk_expr("disk_error"), ALL, "cfs_master_disk_error", "0/1",
           "a data node disk the leader marks bad", labels=("cluster", "addr", "disk")),
    Signal("chubaofs:disk_lost", _disk_expr("disk_lost"), _r("3.5.2"), "cfs_master_disk_lost", "0/1",
           "a data node disk the leader reports lost", labels=("cluster", "addr", "disk")),
    Signal("chubaofs:datanode_inactive:info",
           "max by (cluster, addr) (cfs_master_inactive_dataNodes_info{$SEL} > 0)", _r("3.2.1"),
           "cfs_master_inactive_dataNodes_info", "0/1", "address of an inactive data node",
           labels=("cluster", "addr")),
    Signal("chubaofs:metanode_inactive:info",
           "max by (cluster, addr) (cfs_master_inactive_metaNodes_info{$SEL} > 0 or cfs_master_inactive_mataNodes_info{$SEL} > 0)",
           _r("3.2.1"), "cfs_master_inactive_mataNodes_info (sic, 3.2.1-3.5.1), cfs_master_inactive_metaNodes_info (3.5.2+)",
           "0/1", "address of an inactive meta node", labels=("cluster", "addr")),
    Signal("chubaofs:datanode_io:bytes_per_second",
           "sum by (cluster, instance, type) (rate(cfs_dataNode_dataPartitionIOBytes{$SEL}[$WINDOW]))", _r("2.4.0"),
           "cfs_dataNode_dataPartitionIOBytes", "bytes/s", "data partition I/O per data node and type",
           labels=("cluster", "instance", "type")),
    Signal("chubaofs:volume_io:bytes_per_second",
           'sum without (vol) (label_replace(sum by (cluster, vol, type) '
           '(rate(cfs_dataNode_dataPartitionIOBytes{$SEL}[$WINDOW])), "volName", "$1", "vol", "(.*)"))',
           _r("2.4.0"), "cfs_dataNode_dataPartitionIOBytes", "bytes/s", "data partition I/O per volume and type",
           labels=("cluster", "volName", "type")),
    Signal("chubaofs:datanode_disk_capacity:bytes",
           "max by (cluster, instance, type) (cfs_dataNode_capacity{$SEL})", _r("3.2.1"),
           "cfs_dataNode_capacity", "bytes", "each data node's disk space (type total, used, available)",
           labels=("cluster", "instance", "type")),
)

def caveat(signal: Signal, release: Release) -> str:
    """The signal's caveat on ``release`` ("" when none applies)."""
    if signal.caveat_before is not None and release >= signal.caveat_before:
        return ""
    return signal.caveat


BY_RECORD: dict[str, Signal] = {signal.record: signal for signal in SIGNALS}


def render(signal: Signal, cluster_matcher: str, window: str) -> str:
    return signal.expr.replace("$SEL", cluster_matcher).replace("$WINDOW", window)


_RECORD_NAME = re.compile(r"chubaofs:[a-z_:]+[a-z]")


def records_in(expr: str) -> list[Signal]:
    """The normalised series a PromQL expression reads, in order of appearance (KeyError for a
    ``chubaofs:*`` name no recording rule defines)."""
    return [BY_RECORD[name] for name in _RECORD_NAME.findall(expr)]
