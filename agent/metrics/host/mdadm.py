"""mdadm: Linux software RAID from /proc/mdstat and /sys/block/md*/md (node_exporter 1.12).

``node_md_disks{state="failed"}``, ``node_md_degraded`` and ``node_md_disks_required``
drive the common "RAID degraded" alerts; a device that is syncing reports the synced
block count. /proc/mdstat is parsed like prometheus/procfs ``parseMDStat``;
``node_md_raid_disks`` and ``node_md_degraded`` come from sysfs like procfs ``Mdraids``.

Known differences from node_exporter, on purpose: an md array whose sysfs directory
lacks ``raid_disks`` (or ``degraded`` for a redundant level) loses only its own two
sysfs series, where node_exporter drops the sysfs families of every array and reports
the collector failed; and sysfs attributes node_exporter reads but never exports
(``uuid``, ``sync_completed``...) are not read, so their oddities (``sync_completed``
reading ``delayed``) cannot fail the scrape.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client import Metric

from agent.config import HostMetricsConfig
from agent.metrics import kernelfs
from agent.metrics.host.families import GaugeFamily
from agent.metrics.host.registry import NoDataError, ScrapeContext, register

_STATUS = re.compile(r"(\d+) blocks .*\[(\d+)/(\d+)\] \[([U_]+)\]")
_RECOVERY_BLOCKS = re.compile(r"\((\d+)/\d+\)")

# node_md_state's label for each activity state procfs reports. "reshaping" and states
# such as "broken" have no label: all five series read 0 for such a device.
_STATE_LABELS = (
    ("active", "active"),
    ("inactive", "inactive"),
    ("recovering", "recovering"),
    ("resync", "resyncing"),
    ("check", "checking"),
)
# Levels whose sysfs directory has ``degraded`` (md's redundancy attributes).
_REDUNDANT_LEVELS = frozenset({"raid1", "raid4", "raid5", "raid6", "raid10"})


@dataclass
class MDStat:
    name: str
    state: str
    active: int
    failed: int
    spare: int
    total: int
    blocks: int
    blocks_synced: int


def _status(device_line: str, status_line: str) -> tuple[int, int, int]:
    """(active, total, size) from the line after the device line."""
    fields = status_line.split()
    if not fields:
        raise ValueError(f"mdstat: no status line for {device_line!r}")
    size = int(fields[0])
    if "raid0" in device_line or "linear" in device_line:
        # Only member disks carry a [n] on the device line.
        total = device_line.count("[")
        return total, total, size
    if "inactive" in device_line:
        return 0, 0, size
    match = _STATUS.search(status_line)
    if not match:
        raise ValueError(f"mdstat: cannot parse status line {status_line!r}")
    return int(match.group(3)), int(match.group(2)), size


def parse_mdstat(text: str) -> list[MDStat]:
    lines = text.split("\n")
    stats: list[MDStat] = []
    for i, line in enumerate(lines):
        if not line.strip() or line[0] == " " or line.startswith(("Personalities", "unused")):
            continue
        fields = line.split()
        if len(fields) < 3 or len(lines) <= i + 3:
            raise ValueError(f"mdstat: truncated entry {line!r}")
        state = fields[2]  # active, inactive; "(auto-read-only)" comes after it
        active, total, size = _status(line, lines[i + 1])
        sync_line = lines[i + 3] if "bitmap" in lines[i + 2] else lines[i + 2]
        synced = size
        recovering = "recovery" in sync_line
        reshaping = "reshape" in sync_line
        resyncing = "resync" in sync_line
        checking = "check" in sync_line
        if recovering or reshaping or resyncing or checking:
            if recovering:
                state = "recovering"
            elif reshaping:
                state = "reshaping"
            elif checking:
                state = "checking"
            else:
                state = "resyncing"
            if "PENDING" in sync_line or "DELAYED" in sync_line:
                synced = 0  # "resync=PENDING" on an auto-read-only array
            else:
                match = _RECOVERY_BLOCKS.search(sync_line)
                if not match:
                    raise ValueError(f"mdstat: cannot parse sync line {sync_line!r}")
                synced = int(match.group(1))
        stats.append(
            MDStat(
                name=fields[0],
                state=state,
                active=active,
                failed=line.count("(F)"),
                spare=line.count("(S)"),
                total=total,
                blocks=size,
                blocks_synced=synced,
            )
        )
    return stats


@dataclass
class MDRaid:
    """One array's redundancy as md reports it in /sys/block/<md>/md."""

    device: str
    raid_disks: int
    degraded: int


def read_mdraids(sys_block: str) -> list[MDRaid]:
    """Arrays under ``/sys/block/md*/md``; ``degraded`` is 0 for levels without redundancy."""
    raids: list[MDRaid] = []
    for device in kernelfs.list_dir(sys_block):
        if not device.startswith("md"):
            continue
        md = f"{sys_block}/{device}/md"
        raid_disks = kernelfs.try_int(f"{md}/raid_disks")
        if raid_disks is None:
            continue  # not an md array, or one md is tearing down
        degraded = 0
        if kernelfs.try_value(f"{md}/level") in _REDUNDANT_LEVELS:
            value = kernelfs.try_int(f"{md}/degraded")
            if value is None:
                continue
            degraded = value
        raids.append(MDRaid(device, raid_disks, degraded))
    return raids


@register("mdadm")
class MdadmCollector:
    def __init__(self, cfg: HostMetricsConfig) -> None:
        pass

    def collect(self, ctx: ScrapeContext) -> Iterable[Metric]:
        try:
            text = kernelfs.read_text(ctx.proc("mdstat"))
        except FileNotFoundError as exc:
            raise NoDataError("no /proc/mdstat (md driver not loaded)") from exc
        disks = GaugeFamily(
            "node_md_disks",
            "Number of active/failed/spare disks of device.",
            labels=["device", "state"],
        )
        required = GaugeFamily(
            "node_md_disks_required", "Total number of disks of device.", labels=["device"]
        )
        state = GaugeFamily(
            "node_md_state", "Indicates the state of md-device.", labels=["device", "state"]
        )
        blocks = GaugeFamily(
            "node_md_blocks", "Total number of blocks on device.", labels=["device"]
        )
        synced = GaugeFamily(
            "node_md_blocks_synced",
            "Number of blocks synced on device.",
            labels=["device"],
        )
        for md in parse_mdstat(text):
            disks.add_metric([md.name, "active"], md.active)
            disks.add_metric([md.name, "failed"], md.failed)
            disks.add_metric([md.name, "spare"], md.spare)
            required.add_metric([md.name], md.total)
            for label, activity in _STATE_LABELS:
                state.add_metric([md.name, label], 1 if md.state == activity else 0)
            blocks.add_metric([md.name], md.blocks)
            synced.add_metric([md.name], md.blocks_synced)
        raid_disks = GaugeFamily(
            "node_md_raid_disks", "Number of raid disks on device.", labels=["device"]
        )
        degraded = GaugeFamily(
            "node_md_degraded", "Number of degraded disks on device.", labels=["device"]
        )
        for raid in read_mdraids(ctx.sys("block")):
            raid_disks.add_metric([raid.device], raid.raid_disks)
            degraded.add_metric([raid.device], raid.degraded)
        return [disks, required, state, blocks, synced, raid_disks, degraded]
