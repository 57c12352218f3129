"""nfs: NFS client RPC statistics from /proc/net/rpc/nfs.

``method`` labels are prometheus/procfs's field names (node_exporter reflects over those
structs), in the kernel's procedure order; missing trailing procedures read as 0.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from prometheus_client import Metric

from agent.config import HostMetricsConfig
from agent.metrics import kernelfs
from agent.metrics.host.families import CounterFamily
from agent.metrics.host.registry import NoDataError, ScrapeContext, register

V2_PROCEDURES = (
    "Null",
    "GetAttr",
    "SetAttr",
    "Root",
    "Lookup",
    "ReadLink",
    "Read",
    "WrCache",
    "Write",
    "Create",
    "Remove",
    "Rename",
    "Link",
    "SymLink",
    "MkDir",
    "RmDir",
    "ReadDir",
    "FsStat",
)
V3_PROCEDURES = (
    "Null",
    "GetAttr",
    "SetAttr",
    "Lookup",
    "Access",
    "ReadLink",
    "Read",
    "Write",
    "Create",
    "MkDir",
    "SymLink",
    "MkNod",
    "Remove",
    "RmDir",
    "Rename",
    "Link",
    "ReadDir",
    "ReadDirPlus",
    "FsStat",
    "FsInfo",
    "PathConf",
    "Commit",
)
CLIENT_V4_PROCEDURES = (
    "Null",
    "Read",
    "Write",
    "Commit",
    "Open",
    "OpenConfirm",
    "OpenNoattr",
    "OpenDowngrade",
    "Close",
    "Setattr",
    "FsInfo",
    "Renew",
    "SetClientID",
    "SetClientIDConfirm",
    "Lock",
    "Lockt",
    "Locku",
    "Access",
    "Getattr",
    "Lookup",
    "LookupRoot",
    "Remove",
    "Rename",
    "Link",
    "Symlink",
    "Create",
    "Pathconf",
    "StatFs",
    "ReadLink",
    "ReadDir",
    "ServerCaps",
    "DelegReturn",
    "GetACL",
    "SetACL",
    "FsLocations",
    "ReleaseLockowner",
    "Secinfo",
    "FsidPresent",
    "ExchangeID",
    "CreateSession",
    "DestroySession",
    "Sequence",
    "GetLeaseTime",
    "ReclaimComplete",
    "LayoutGet",
    "GetDeviceInfo",
    "LayoutCommit",
    "LayoutReturn",
    "SecinfoNoName",
    "TestStateID",
    "FreeStateID",
    "GetDeviceList",
    "BindConnToSession",
    "DestroyClientID",
    "Seek",
    "Allocate",
    "DeAllocate",
    "LayoutStats",
    "Clone",
)


def parse_rpc_lines(text: str) -> dict[str, list[float]]:
    """``key n1 n2 ...`` lines -> {key: [n1, n2, ...]} (procN lines keep their leading count)."""
    lines: dict[str, list[float]] = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 2:
            try:
                lines[fields[0]] = [float(v) for v in fields[1:]]  # "th" has fractions
            except ValueError:
                continue
    return lines


def add_requests(
    family: CounterFamily, proto: str, names: Sequence[str], counted: list[float] | None
) -> None:
    if not counted:
        return
    values = counted[1:]  # the first number is the count of procedures that follow
    for index, name in enumerate(names):
        family.add_metric([proto, name], values[index] if index < len(values) else 0)


@register("nfs")
class NFSCollector:
    def __init__(self, cfg: HostMetricsConfig) -> None:
        pass

    def collect(self, ctx: ScrapeContext) -> Iterable[Metric]:
        try:
            stats = parse_rpc_lines(kernelfs.read_text(ctx.proc("net/rpc/nfs")))
        except FileNotFoundError as exc:
            raise NoDataError("no NFS client statistics (nfs module not loaded)") from exc
        families: list[Metric] = []
        net = stats.get("net")
        if net and len(net) >= 4:
            packets = CounterFamily(
                "node_nfs_packets_total",
                "Total NFSd network packets (sent+received) by protocol type.",
                labels=["protocol"],
            )
            packets.add_metric(["udp"], net[1])
            packets.add_metric(["tcp"], net[2])
            connections = CounterFamily(
                "node_nfs_connections_total", "Total number of NFSd TCP connections."
            )
            connections.add_metric([], net[3])
            families += [packets, connections]
        rpc = stats.get("rpc")
        if rpc and len(rpc) >= 3:
            for name, help_text, value in (
                ("node_nfs_rpcs_total", "Total number of RPCs performed.", rpc[0]),
                (
                    "node_nfs_rpc_retransmissions_total",
                    "Number of RPC transmissions performed.",
                    rpc[1],
                ),
                (
                    "node_nfs_rpc_authentication_refreshes_total",
                    "Number of RPC authentication refreshes performed.",
                    rpc[2],
                ),
            ):
                family = CounterFamily(name, help_text)
                family.add_metric([], value)
                families.append(family)
        requests = CounterFamily(
            "node_nfs_requests_total",
            "Number of NFS procedures invoked.",
            labels=["proto", "method"],
        )
        add_requests(requests, "2", V2_PROCEDURES, stats.get("proc2"))
        add_requests(requests, "3", V3_PROCEDURES, stats.get("proc3"))
        add_requests(requests, "4", CLIENT_V4_PROCEDURES, stats.get("proc4"))
        families.append(requests)
        return families
