"""btrfs: per-filesystem allocation from /sys/fs/btrfs/<uuid> (the sysfs half of node_exporter's
btrfs collector; the ioctl-based ``node_btrfs_device_*_errors_total`` are not collected)."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Metric
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from agent.config import HostMetricsConfig
from agent.metrics import kernelfs
from agent.metrics.host.registry import ScrapeContext, register

# Copies kept of each block per RAID profile (prometheus/procfs calcRatio).
_RATIO = {
    "single": 1.0,
    "raid0": 1.0,
    "dup": 2.0,
    "raid1": 2.0,
    "raid10": 2.0,
    "raid1c3": 3.0,
    "raid1c4": 4.0,
}


class _Families:
    def __init__(self) -> None:
        self.by_name: dict[str, GaugeMetricFamily | CounterMetricFamily] = {}

    def add(
        self,
        suffix: str,
        help_text: str,
        labels: dict[str, str],
        value: float,
        counter: bool = False,
    ) -> None:
        name = f"node_btrfs_{suffix}"
        family = self.by_name.get(name)
        if family is None:
            family = self.by_name[name] = (CounterMetricFamily if counter else GaugeMetricFamily)(
                name, help_text, labels=list(labels)
            )
        family.add_metric(list(labels.values()), value)


@register("btrfs")
class BtrfsCollector:
    def __init__(self, cfg: HostMetricsConfig) -> None:
        pass

    def collect(self, ctx: ScrapeContext) -> Iterable[Metric]:
        base = ctx.sys("fs/btrfs")
        out = _Families()
        for uuid in kernelfs.list_dir(base):
            path = f"{base}/{uuid}"
            allocation = f"{path}/allocation"
            global_rsv = kernelfs.try_int(f"{allocation}/global_rsv_size")
            if global_rsv is None:
                continue  # "features" and other non-filesystem entries
            out.add(
                "info",
                "Filesystem information",
                {"label": kernelfs.try_value(f"{path}/label") or "", "uuid": uuid},
                1,
            )
            out.add("global_rsv_size_bytes", "Size of global reserve.", {"uuid": uuid}, global_rsv)
            commits = self._commit_stats(f"{path}/commit_stats")
            if commits:
                out.add(
                    "commits_total",
                    "The total number of commits that have occurred.",
                    {"uuid": uuid},
                    commits.get("commits", 0),
                    counter=True,
                )
                out.add(
                    "last_commit_seconds",
                    "Duration of the most recent commit, in seconds.",
                    {"uuid": uuid},
                    commits.get("last_commit_ms", 0) / 1000,
                )
                out.add(
                    "max_commit_seconds",
                    "Duration of the slowest commit, in seconds.",
                    {"uuid": uuid},
                    commits.get("max_commit_ms", 0) / 1000,
                )
                out.add(
                    "commit_seconds_total",
                    "Sum of the duration of all commits, in seconds.",
                    {"uuid": uuid},
                    commits.get("total_commit_ms", 0) / 1000,
                    counter=True,
                )
            for device in kernelfs.list_dir(f"{path}/devices"):
                sectors = kernelfs.try_int(f"{path}/devices/{device}/size")
                if sectors is not None:
                    out.add(
                        "device_size_bytes",
                        "Size of a device that is part of the filesystem.",
                        {"device": device, "uuid": uuid},
                        sectors * 512,
                    )
            for group in ("data", "metadata", "system"):
                group_dir = f"{allocation}/{group}"
                reserved = kernelfs.try_int(f"{group_dir}/bytes_reserved")
                if reserved is None:
                    continue
                out.add(
                    "reserved_bytes",
                    "Amount of space reserved for a data type",
                    {"block_group_type": group, "uuid": uuid},
                    reserved,
                )
                for mode in kernelfs.list_dir(group_dir):
                    total = kernelfs.try_int(f"{group_dir}/{mode}/total_bytes")
                    used = kernelfs.try_int(f"{group_dir}/{mode}/used_bytes")
                    if total is None or used is None:
                        continue
                    labels = {"block_group_type": group, "mode": mode, "uuid": uuid}
                    out.add(
                        "used_bytes", "Amount of used space by a layout/data type", labels, used
                    )
                    out.add(
                        "size_bytes",
                        "Amount of space allocated for a layout/data type",
                        labels,
                        total,
                    )
                    out.add(
                        "allocation_ratio",
                        "Data allocation ratio for a layout/data type",
                        labels,
                        _RATIO.get(mode, 0.0),
                    )
        return list(out.by_name.values())

    @staticmethod
    def _commit_stats(path: str) -> dict[str, int]:
        text = kernelfs.try_value(path)
        stats: dict[str, int] = {}
        for line in (text or "").splitlines():
            key, _, value = line.partition(" ")
            if value.strip().isdigit():
                stats[key] = int(value)
        return stats
