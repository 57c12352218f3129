"""mdadm: Linux software RAID state from /proc/mdstat (parsed like prometheus/procfs).

``node_md_disks{state="failed"}`` and ``node_md_disks_required`` drive the common "RAID
degraded" alerts; a device that is syncing reports the synced block count.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client import Metric
from prometheus_client.core import GaugeMetricFamily

from agent.config import HostMetricsConfig
from agent.metrics import kernelfs
from agent.metrics.host.registry import NoDataError, ScrapeContext, register

_STATUS = re.compile(r"(\d+) blocks .*\[(\d+)/(\d+)\] \[([U_]+)\]")
_RECOVERY_BLOCKS = re.compile(r"\((\d+)/\d+\)")


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
        state = fields[2]
        active, total, size = _status(line, lines[i + 1])
        sync_line = lines[i + 3] if "bitmap" in lines[i + 2] else lines[i + 2]
        synced = size
        recovering = "recovery" in sync_line
        resyncing = "resync" in sync_line
        checking = "check" in sync_line
        if recovering or resyncing or checking:
            state = "recovering" if recovering else "checking" if checking else "resyncing"
            if "PENDING" in sync_line or "DELAYED" in sync_line:
                synced = 0
            else:
                match = _RECOVERY_BLOCKS.search(sync_line)
                if match:
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


@register("mdadm")
class MdadmCollector:
    def __init__(self, cfg: HostMetricsConfig) -> None:
        pass

    def collect(self, ctx: ScrapeContext) -> Iterable[Metric]:
        try:
            text = kernelfs.read_text(ctx.proc("mdstat"))
        except FileNotFoundError as exc:
            raise NoDataError("no /proc/mdstat (md driver not loaded)") from exc
        disks = GaugeMetricFamily(
            "node_md_disks",
            "Number of active/failed/spare disks of device.",
            labels=["device", "state"],
        )
        required = GaugeMetricFamily(
            "node_md_disks_required", "Total number of disks of device.", labels=["device"]
        )
        state = GaugeMetricFamily(
            "node_md_state", "Indicates the state of md-device.", labels=["device", "state"]
        )
        blocks = GaugeMetricFamily(
            "node_md_blocks", "Total number of blocks on device.", labels=["device"]
        )
        synced = GaugeMetricFamily(
            "node_md_blocks_synced",
            "Number of blocks synced on device.",
            labels=["device"],
        )
        for md in parse_mdstat(text):
            disks.add_metric([md.name, "active"], md.active)
            disks.add_metric([md.name, "failed"], md.failed)
            disks.add_metric([md.name, "spare"], md.spare)
            required.add_metric([md.name], md.total)
            for label, activity in (
                ("active", "active"),
                ("inactive", "inactive"),
                ("recovering", "recovering"),
                ("resync", "resyncing"),
                ("check", "checking"),
            ):
                state.add_metric([md.name, label], 1 if md.state == activity else 0)
            blocks.add_metric([md.name], md.blocks)
            synced.add_metric([md.name], md.blocks_synced)
        return [disks, required, state, blocks, synced]
