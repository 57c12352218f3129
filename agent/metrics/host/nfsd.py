"""nfsd: NFS server statistics from /proc/net/rpc/nfsd (field layout as in prometheus/procfs)."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Metric

from agent.config import HostMetricsConfig
from agent.metrics import kernelfs
from agent.metrics.host.families import CounterFamily, GaugeFamily
from agent.metrics.host.nfs import V2_PROCEDURES, V3_PROCEDURES, add_requests, parse_rpc_lines
from agent.metrics.host.registry import NoDataError, ScrapeContext, register

# proc4ops positions after the leading count (0-2 are unused/future operations).
V4_OPERATIONS = (
    (3, "Access"),
    (4, "Close"),
    (5, "Commit"),
    (6, "Create"),
    (7, "DelegPurge"),
    (8, "DelegReturn"),
    (9, "GetAttr"),
    (10, "GetFH"),
    (11, "Link"),
    (12, "Lock"),
    (13, "Lockt"),
    (14, "Locku"),
    (15, "Lookup"),
    (16, "LookupRoot"),
    (17, "Nverify"),
    (18, "Open"),
    (19, "OpenAttr"),
    (20, "OpenConfirm"),
    (21, "OpenDgrd"),
    (22, "PutFH"),
    (23, "PutPubFH"),
    (24, "PutRootFH"),
    (25, "Read"),
    (26, "ReadDir"),
    (27, "ReadLink"),
    (28, "Remove"),
    (29, "Rename"),
    (30, "Renew"),
    (31, "RestoreFH"),
    (32, "SaveFH"),
    (33, "SecInfo"),
    (34, "SetAttr"),
    (35, "Verify"),
    (36, "Write"),
    (37, "RelLockOwner"),
)


def _counter(name: str, help_text: str, value: float) -> CounterFamily:
    family = CounterFamily(name, help_text)
    family.add_metric([], value)
    return family


@register("nfsd")
class NFSdCollector:
    def __init__(self, cfg: HostMetricsConfig) -> None:
        pass

    def collect(self, ctx: ScrapeContext) -> Iterable[Metric]:
        try:
            stats = parse_rpc_lines(kernelfs.read_text(ctx.proc("net/rpc/nfsd")))
        except FileNotFoundError as exc:
            raise NoDataError("no NFS server statistics (nfsd not running)") from exc
        out: list[Metric] = []
        rc = stats.get("rc")
        if rc and len(rc) >= 3:
            out.append(
                _counter(
                    "node_nfsd_reply_cache_hits_total",
                    "Total number of NFSd Reply Cache hits (client lost server response).",
                    rc[0],
                )
            )
            out.append(
                _counter(
                    "node_nfsd_reply_cache_misses_total",
                    "Total number of NFSd Reply Cache an operation that requires caching "
                    "(idempotent).",
                    rc[1],
                )
            )
            out.append(
                _counter(
                    "node_nfsd_reply_cache_nocache_total",
                    "Total number of NFSd Reply Cache non-idempotent operations (rename/delete/…).",
                    rc[2],
                )
            )
        fh = stats.get("fh")
        if fh:
            out.append(
                _counter(
                    "node_nfsd_file_handles_stale_total",
                    "Total number of NFSd stale file handles",
                    fh[0],
                )
            )
        io = stats.get("io")
        if io and len(io) >= 2:
            out.append(_counter("node_nfsd_disk_bytes_read_total", "Total NFSd bytes read.", io[0]))
            out.append(
                _counter("node_nfsd_disk_bytes_written_total", "Total NFSd bytes written.", io[1])
            )
        th = stats.get("th")
        if th:
            out.append(
                GaugeFamily(
                    "node_nfsd_server_threads",
                    "Total number of NFSd kernel threads that are running.",
                    value=th[0],
                )
            )
        ra = stats.get("ra")
        if ra and len(ra) >= 12:
            out.append(
                GaugeFamily(
                    "node_nfsd_read_ahead_cache_size_blocks",
                    "How large the read ahead cache is in blocks.",
                    value=ra[0],
                )
            )
            out.append(
                _counter(
                    "node_nfsd_read_ahead_cache_not_found_total",
                    "Total number of NFSd read ahead cache not found.",
                    ra[11],
                )
            )
        net = stats.get("net")
        if net and len(net) >= 4:
            packets = CounterFamily(
                "node_nfsd_packets_total",
                "Total NFSd network packets (sent+received) by protocol type.",
                labels=["proto"],
            )
            packets.add_metric(["udp"], net[1])
            packets.add_metric(["tcp"], net[2])
            out.append(packets)
            out.append(
                _counter(
                    "node_nfsd_connections_total", "Total number of NFSd TCP connections.", net[3]
                )
            )
        rpc = stats.get("rpc")
        if rpc and len(rpc) >= 5:
            errors = CounterFamily(
                "node_nfsd_rpc_errors_total",
                "Total number of NFSd RPC errors by error type.",
                labels=["error"],
            )
            errors.add_metric(["fmt"], rpc[2])
            errors.add_metric(["auth"], rpc[3])
            errors.add_metric(["cInt"], rpc[4])
            out.append(errors)
            out.append(
                _counter("node_nfsd_server_rpcs_total", "Total number of NFSd RPCs.", rpc[0])
            )
        requests = CounterFamily(
            "node_nfsd_requests_total",
            "Total number NFSd Requests by method and protocol.",
            labels=["proto", "method"],
        )
        add_requests(requests, "2", V2_PROCEDURES, stats.get("proc2"))
        add_requests(requests, "3", V3_PROCEDURES, stats.get("proc3"))
        ops = stats.get("proc4ops")
        if ops:
            values = ops[1:]
            for index, name in V4_OPERATIONS:
                requests.add_metric(["4", name], values[index] if index < len(values) else 0)
        out.append(requests)
        return out
