"""btrfs: per-filesystem allocation and device errors from /sys/fs/btrfs/<uuid>.

node_exporter 1.12 reads allocation, commit stats and ``devices/`` from sysfs (procfs
``btrfs``), and per-device figures through ioctls (BTRFS_IOC_FS_INFO, DEV_INFO,
GET_DEV_STATS) on each mounted btrfs: with them it emits
``node_btrfs_device_errors_total{uuid,type,device,btrfs_dev_uuid}`` (type write, read,
flush, corruption, generation), ``node_btrfs_device_unused_bytes`` and labels
``device_size_bytes`` with ``btrfs_dev_uuid`` too.

This module reads sysfs only. The error counters come from
``devinfo/<devid>/error_stats`` (kernel 5.14+), which holds the same counters the ioctl
returns, and ``btrfs_dev_uuid`` from the udev database (``ID_FS_UUID_SUB`` of the member
device, empty without udev). sysfs does not say which block device a devid is, so the
counters are emitted only for single-device filesystems, where the one ``devices/`` entry
is that devid. Not collected (they need the ioctls on a mount point): errors of
multi-device filesystems, ``node_btrfs_device_unused_bytes``, and the ``btrfs_dev_uuid``
label on ``node_btrfs_device_size_bytes``, which keeps node_exporter's no-ioctl form
``{device,uuid}`` from the block device size.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Metric

from agent.config import HostMetricsConfig
from agent.metrics import kernelfs
from agent.metrics.host.diskstats import read_udev_properties
from agent.metrics.host.registry import LazyFamilies, ScrapeContext, register

# Order and names of node_exporter's ``type`` label; keys of the error_stats file
# (fs/btrfs/sysfs.c, btrfs_devinfo_error_stats_show).
_ERROR_TYPES = (
    ("write", "write_errs"),
    ("read", "read_errs"),
    ("flush", "flush_errs"),
    ("corruption", "corruption_errs"),
    ("generation", "generation_errs"),
)

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


@register("btrfs")
class BtrfsCollector:
    def __init__(self, cfg: HostMetricsConfig) -> None:
        pass

    def collect(self, ctx: ScrapeContext) -> Iterable[Metric]:
        base = ctx.sys("fs/btrfs")
        out = LazyFamilies("node_btrfs_")
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
            commits = self._key_values(f"{path}/commit_stats")
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
            devices = kernelfs.list_dir(f"{path}/devices")
            self._device_errors(ctx, out, path, uuid, devices)
            for device in devices:
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
    def _device_errors(
        ctx: ScrapeContext, out: LazyFamilies, path: str, uuid: str, devices: list[str]
    ) -> None:
        devids = kernelfs.list_dir(f"{path}/devinfo")
        if len(devices) != 1 or len(devids) != 1:
            return  # no devid -> block device mapping in sysfs (see module docstring)
        # "invalid" until the device's stats item has been read at mount.
        stats = BtrfsCollector._key_values(f"{path}/devinfo/{devids[0]}/error_stats")
        if not stats:
            return
        device = devices[0]
        dev_uuid = ""
        major_minor = kernelfs.try_value(f"{path}/devices/{device}/dev")
        if major_minor:
            udev = read_udev_properties(f"{ctx.udev_data}/b{major_minor}")
            dev_uuid = udev.get("ID_FS_UUID_SUB", "")
        for error_type, key in _ERROR_TYPES:
            out.add(
                "device_errors_total",
                "Errors reported for the device",
                {"uuid": uuid, "type": error_type, "device": device, "btrfs_dev_uuid": dev_uuid},
                stats.get(key, 0),
                counter=True,
            )

    @staticmethod
    def _key_values(path: str) -> dict[str, int]:
        """A ``key value`` per line sysfs file; lines whose value is not a number are skipped."""
        text = kernelfs.try_value(path)
        stats: dict[str, int] = {}
        for line in (text or "").splitlines():
            key, _, value = line.partition(" ")
            if value.strip().isdigit():
                stats[key] = int(value)
        return stats
