"""tapestats: SCSI tape drive I/O statistics from /sys/class/scsi_tape/st<N>/stats.

Read like prometheus/procfs ``SCSITapeClass``: only ``st<N>`` entries count. The kernel
also lists the no-rewind and mode aliases of the same drive (``nst0``, ``st0a``,
``nst0l``...), which share its counters. As in procfs, any failure to read or parse a
stats file fails the scrape, and a drive without a ``stats`` directory (a kernel before
4.2, or a drive removed between listing and reading) makes the whole collector report
no data. Attribute semantics: https://docs.kernel.org/scsi/st.html (sysfs and statistics).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

from prometheus_client import Metric

from agent.config import HostMetricsConfig
from agent.metrics import kernelfs
from agent.metrics.host.families import CounterFamily, GaugeFamily
from agent.metrics.host.registry import NoDataError, ScrapeContext, register

# node_exporter's --collector.tapestats.ignored-devices (an unanchored search, like Go's
# MatchString); read when the collector is built. "^$" ignores nothing.
IGNORED_DEVICES = "^$"

_DRIVE = re.compile(r"st[0-9]+")
_NS = 0.000000001

# (stats file, family name, help, counter?, scale)
_STATS = (
    (
        "in_flight",
        "node_tape_io_now",
        "The number of I/Os currently outstanding to this device.",
        False,
        1.0,
    ),
    (
        "io_ns",
        "node_tape_io_time_seconds",
        "The amount of time spent waiting for all I/O to complete (including read and write). "
        "This includes tape movement commands such as seeking between file or set marks and "
        "implicit tape movement such as when rewind on close tape devices are used.",
        True,
        _NS,
    ),
    (
        "other_cnt",
        "node_tape_io_others",
        "The number of I/Os issued to the tape drive other than read or write commands. The "
        "time taken to complete these commands uses the following calculation "
        "io_time_seconds_total-read_time_seconds_total-write_time_seconds_total",
        True,
        1.0,
    ),
    (
        "read_byte_cnt",
        "node_tape_read_bytes",
        "The number of bytes read from the tape drive.",
        True,
        1.0,
    ),
    (
        "read_cnt",
        "node_tape_reads_completed",
        "The number of read requests issued to the tape drive.",
        True,
        1.0,
    ),
    (
        "read_ns",
        "node_tape_read_time_seconds",
        "The amount of time spent waiting for read requests to complete.",
        True,
        _NS,
    ),
    (
        "resid_cnt",
        "node_tape_residual",
        # Upstream's typo ("thean") kept: the help text is part of the exposition.
        "The number of times during a read or write we found the residual amount to be "
        "non-zero. This should mean that a program is issuing a read larger thean the block "
        "size on tape. For write not all data made it to tape.",
        True,
        1.0,
    ),
    (
        "write_byte_cnt",
        "node_tape_written_bytes",
        "The number of bytes written to the tape drive.",
        True,
        1.0,
    ),
    (
        "write_cnt",
        "node_tape_writes_completed",
        "The number of write requests issued to the tape drive.",
        True,
        1.0,
    ),
    (
        "write_ns",
        "node_tape_write_time_seconds",
        "The amount of time spent waiting for write requests to complete.",
        True,
        _NS,
    ),
)
_STAT_FILES = frozenset(stat for stat, *_ in _STATS)


def read_tape_stats(stats_dir: str, files: Iterable[str]) -> dict[str, int]:
    """The known counters of one drive; 0 for a counter the kernel does not provide."""
    counters = dict.fromkeys(_STAT_FILES, 0)
    for name in files:
        # procfs reads every file, known or not, so an unreadable one fails the scrape.
        value = kernelfs.read_value(f"{stats_dir}/{name}")
        if name in _STAT_FILES:
            counters[name] = kernelfs.parse_uint(value)
    return counters


@register("tapestats")
class TapestatsCollector:
    def __init__(self, cfg: HostMetricsConfig) -> None:
        self._ignored = re.compile(IGNORED_DEVICES)

    def collect(self, ctx: ScrapeContext) -> Iterable[Metric]:
        base = ctx.sys("class/scsi_tape")
        try:
            entries = sorted(os.listdir(base))
        except FileNotFoundError as exc:
            raise NoDataError("no SCSI tape class") from exc
        drives: list[tuple[str, dict[str, int]]] = []
        for name in entries:
            if _DRIVE.fullmatch(name) is None:
                continue
            stats_dir = f"{base}/{name}/stats"
            try:
                files = sorted(os.listdir(stats_dir))
            except FileNotFoundError as exc:
                # procfs returns this ENOENT unwrapped, and node_exporter takes it for
                # ErrNoData; a stats file vanishing later is an ordinary failure.
                raise NoDataError(f"{name}: no tape statistics") from exc
            counters = read_tape_stats(stats_dir, files)
            # Ignored drives are read first and can still fail the scrape, as upstream.
            if self._ignored.search(name) is None:
                drives.append((name, counters))
        families: list[Metric] = []
        for stat, name, help_text, counter, scale in _STATS:
            family = (CounterFamily if counter else GaugeFamily)(name, help_text, labels=["device"])
            for device, counters in drives:
                family.add_metric([device], counters[stat] * scale)
            families.append(family)
        return families
