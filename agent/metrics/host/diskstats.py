"""diskstats: block device I/O counters from /proc/diskstats, identity from udev and sysfs.

Column meanings are the kernel's Documentation/admin-guide/iostats.rst: sectors are
always 512 bytes, times are milliseconds; discard columns exist from 4.18, flush columns
from 5.5, and a family is only emitted when the kernel has its column.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Metric

from agent.config import HostMetricsConfig
from agent.metrics import kernelfs
from agent.metrics.host.families import CounterFamily, GaugeFamily
from agent.metrics.host.filters import NameFilter
from agent.metrics.host.registry import ScrapeContext, register

_SECTOR = 512.0
_MS = 0.001

# (column after the device name, name, help, scale, counter?)
_COLUMNS: tuple[tuple[int, str, str, float, bool], ...] = (
    (
        0,
        "node_disk_reads_completed_total",
        "The total number of reads completed successfully.",
        1.0,
        True,
    ),
    (1, "node_disk_reads_merged_total", "The total number of reads merged.", 1.0, True),
    (
        2,
        "node_disk_read_bytes_total",
        "The total number of bytes read successfully.",
        _SECTOR,
        True,
    ),
    (
        3,
        "node_disk_read_time_seconds_total",
        "The total number of seconds spent by all reads.",
        _MS,
        True,
    ),
    (
        4,
        "node_disk_writes_completed_total",
        "The total number of writes completed successfully.",
        1.0,
        True,
    ),
    (5, "node_disk_writes_merged_total", "The number of writes merged.", 1.0, True),
    (
        6,
        "node_disk_written_bytes_total",
        "The total number of bytes written successfully.",
        _SECTOR,
        True,
    ),
    (
        7,
        "node_disk_write_time_seconds_total",
        "This is the total number of seconds spent by all writes.",
        _MS,
        True,
    ),
    (8, "node_disk_io_now", "The number of I/Os currently in progress.", 1.0, False),
    (9, "node_disk_io_time_seconds_total", "Total seconds spent doing I/Os.", _MS, True),
    (
        10,
        "node_disk_io_time_weighted_seconds_total",
        "The weighted # of seconds spent doing I/Os.",
        _MS,
        True,
    ),
    (
        11,
        "node_disk_discards_completed_total",
        "The total number of discards completed successfully.",
        1.0,
        True,
    ),
    (12, "node_disk_discards_merged_total", "The total number of discards merged.", 1.0, True),
    (
        13,
        "node_disk_discarded_sectors_total",
        "The total number of sectors discarded successfully.",
        1.0,
        True,
    ),
    (
        14,
        "node_disk_discard_time_seconds_total",
        "This is the total number of seconds spent by all discards.",
        _MS,
        True,
    ),
    (
        15,
        "node_disk_flush_requests_total",
        "The total number of flush requests completed successfully",
        1.0,
        True,
    ),
    (
        16,
        "node_disk_flush_requests_time_seconds_total",
        "This is the total number of seconds spent by all flush requests.",
        _MS,
        True,
    ),
)

_INFO_LABELS = [
    "device",
    "major",
    "minor",
    "path",
    "wwn",
    "model",
    "serial",
    "revision",
    "rotational",
]


def read_udev_properties(path: str) -> dict[str, str]:
    """``E:KEY=value`` lines of a udev database entry (``/run/udev/data/b<maj>:<min>``)."""
    try:
        text = kernelfs.read_text(path)
    except OSError:
        return {}
    properties: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("E:"):
            key, _, value = line[2:].partition("=")
            properties[key] = value
    return properties


@register("diskstats")
class DiskstatsCollector:
    def __init__(self, cfg: HostMetricsConfig) -> None:
        self._filter = NameFilter(cfg.diskstats_device_exclude)
        self._rotational: dict[tuple[str, str, str], str] = {}

    def collect(self, ctx: ScrapeContext) -> Iterable[Metric]:
        counters = {
            column: (CounterFamily if counter else GaugeFamily)(name, help_text, labels=["device"])
            for column, name, help_text, _, counter in _COLUMNS
        }
        info = GaugeFamily(
            "node_disk_info", "Info of /sys/block/<block_device>.", labels=_INFO_LABELS
        )
        fs_info = GaugeFamily(
            "node_disk_filesystem_info",
            "Info about disk filesystem.",
            labels=["device", "type", "usage", "uuid", "version"],
        )
        dm_info = GaugeFamily(
            "node_disk_device_mapper_info",
            "Info about disk device mapper.",
            labels=["device", "name", "uuid", "vg_name", "lv_name", "lv_layer"],
        )
        ata = {
            "ID_ATA_ROTATION_RATE_RPM": GaugeFamily(
                "node_disk_ata_rotation_rate_rpm",
                "ATA disk rotation rate in RPMs (0 for SSDs).",
                labels=["device"],
            ),
            "ID_ATA_WRITE_CACHE": GaugeFamily(
                "node_disk_ata_write_cache", "ATA disk has a write cache.", labels=["device"]
            ),
            "ID_ATA_WRITE_CACHE_ENABLED": GaugeFamily(
                "node_disk_ata_write_cache_enabled",
                "ATA disk has its write cache enabled.",
                labels=["device"],
            ),
        }
        for line in kernelfs.read_text(ctx.proc("diskstats")).splitlines():
            fields = line.split()
            if len(fields) < 7:
                continue
            major, minor, device = fields[0], fields[1], fields[2]
            if self._filter.ignored(device):
                continue
            values = fields[3:]
            if len(values) == 4:
                # Pre-2.6.25 partition lines: reads, sectors read, writes, sectors written.
                values = [values[0], "0", values[1], "0", values[2], "0", values[3], "0"]
            for column, _, _, scale, _ in _COLUMNS:
                if column < len(values):
                    counters[column].add_metric([device], int(values[column]) * scale)

            udev = read_udev_properties(f"{ctx.udev_data}/b{major}:{minor}")
            serial = udev.get("SCSI_IDENT_SERIAL") or udev.get("ID_SERIAL_SHORT", "")
            info.add_metric(
                [
                    device,
                    major,
                    minor,
                    udev.get("ID_PATH", ""),
                    udev.get("ID_WWN", ""),
                    udev.get("ID_MODEL", ""),
                    serial,
                    udev.get("ID_REVISION", ""),
                    self._rotational_of(ctx, device, major, minor),
                ],
                1,
            )
            if "ID_FS_TYPE" in udev:
                fs_info.add_metric(
                    [
                        device,
                        udev["ID_FS_TYPE"],
                        udev.get("ID_FS_USAGE", ""),
                        udev.get("ID_FS_UUID", ""),
                        udev.get("ID_FS_VERSION", ""),
                    ],
                    1,
                )
            if "DM_NAME" in udev:
                dm_info.add_metric(
                    [
                        device,
                        udev["DM_NAME"],
                        udev.get("DM_UUID", ""),
                        udev.get("DM_VG_NAME", ""),
                        udev.get("DM_LV_NAME", ""),
                        udev.get("DM_LV_LAYER", ""),
                    ],
                    1,
                )
            for key, family in ata.items():
                value = udev.get(key)
                if value is not None and value.isdigit():
                    family.add_metric([device], float(value))
        families: list[Metric] = [f for f in counters.values() if f.rows]
        families.append(info)
        families.extend(f for f in (fs_info, dm_info, *ata.values()) if f.rows)
        return families

    def _rotational_of(self, ctx: ScrapeContext, device: str, major: str, minor: str) -> str:
        # A queue property of the hardware: read once per device.
        key = (device, major, minor)
        value = self._rotational.get(key)
        if value is None:
            value = kernelfs.try_value(ctx.sys(f"block/{device}/queue/rotational")) or ""
            if len(self._rotational) > 1024:
                self._rotational.clear()
            self._rotational[key] = value
        return value
