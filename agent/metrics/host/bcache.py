"""bcache: cache sets and their backing and cache devices from /sys/fs/bcache/<uuid>.

Read like node_exporter with prometheus/procfs ``bcache.FS.StatsWithoutPriority``, its
default: ``--collector.bcache.priorityStats`` is off because reading ``priority_stats``
makes the kernel copy and sort the priority of every bucket in the cache (seconds per
scrape on big caches, node_exporter #1593), so ``node_bcache_priority_stats_*`` is not
served at all.

Upstream quirks kept on purpose, since dashboards are built on them:

- sizes come in bch_hprint's form (``20.4G``); procfs takes the digits after the point
  for hundreds of the 1024-remainder, as kernels up to 4.12 printed them, and divides
  them by 10.24: ``20.4G`` reads 20.39 GiB.
- ``internal/btree_read_average_duration_us`` is multiplied by 1e-9 as if it held
  nanoseconds: ``node_bcache_btree_read_average_duration_seconds`` reads 1000x low.
- ``node_bcache_cache_readaheads_total`` is left out while it is 0: Linux 5.13 removed
  ``cache_readaheads``, and an absent file reads 0 (node_exporter #2103).

An absent attribute reads 0, as in procfs. Any other read error, a missing
``writeback_rate_debug`` or a value that does not parse fails the whole scrape of this
collector (procfs returns one error for all cache sets). Files procfs parses but
node_exporter does not export (``stats_five_minute``, the set's ``stats_total``, the
``dirty`` and ``next io`` lines) are not read. With no cache set (no bcache module, or
nothing registered) the collector succeeds with no series, as node_exporter's does:
``node_scrape_collector_success{collector="bcache"}`` is 1 on such a host for both.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from fnmatch import fnmatchcase

from prometheus_client import Metric

from agent.config import HostMetricsConfig
from agent.metrics import kernelfs
from agent.metrics.host.registry import LazyFamilies, ScrapeContext, register

# bch_hprint's suffixes (drivers/md/bcache/util.c); procfs multiplies by 0 for others.
_MULTIPLIERS = {unit: 1 << (10 * power) for power, unit in enumerate("kMGTPEZY", start=1)}
# What Go's strconv.ParseFloat accepts among the forms bcache prints.
_DECIMAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")

# (file under the cache set, family suffix, help) of its gauges.
_CACHE_SET_GAUGES = (
    (
        "average_key_size",
        "average_key_size_sectors",
        "Average data per key in the btree (sectors).",
    ),
    (
        "btree_cache_size",
        "btree_cache_size_bytes",
        "Amount of memory currently used by the btree cache.",
    ),
    (
        "cache_available_percent",
        "cache_available_percent",
        "Percentage of cache device without dirty data, usable for writeback (may contain "
        "clean cached data).",
    ),
    ("congested", "congested", "Congestion."),
    (
        "root_usage_percent",
        "root_usage_percent",
        "Percentage of the root btree node in use (tree depth increases if too high).",
    ),
    ("tree_depth", "tree_depth", "Depth of the btree."),
    (
        "internal/active_journal_entries",
        "active_journal_entries",
        "Number of journal entries that are newer than the index.",
    ),
    ("internal/btree_nodes", "btree_nodes", "Total nodes in the btree."),
)

# (writeback_rate_debug key, family suffix, help) for each backing device.
_WRITEBACK_TERMS = (
    (
        "target",
        "dirty_target_bytes",
        "Current dirty data target threshold for this backing device in bytes.",
    ),
    ("rate", "writeback_rate", "Current writeback rate for this backing device in bytes."),
    (
        "proportional",
        "writeback_rate_proportional_term",
        "Current result of proportional controller, part of writeback rate",
    ),
    (
        "integral",
        "writeback_rate_integral_term",
        "Current result of integral controller, part of writeback rate",
    ),
    (
        "change",
        "writeback_change",
        "Last writeback rate change step for this backing device.",
    ),
)

# (file in stats_total, family suffix, help) for each backing device.
_PERIOD_STATS = (
    (
        "bypassed",
        "bypassed_bytes",
        "Amount of IO (both reads and writes) that has bypassed the cache.",
    ),
    ("cache_hits", "cache_hits", "Hits counted per individual IO as bcache sees them."),
    ("cache_misses", "cache_misses", "Misses counted per individual IO as bcache sees them."),
    ("cache_bypass_hits", "cache_bypass_hits", "Hits for IO intended to skip the cache."),
    ("cache_bypass_misses", "cache_bypass_misses", "Misses for IO intended to skip the cache."),
    (
        "cache_miss_collisions",
        "cache_miss_collisions",
        "Instances where data insertion from cache miss raced with write (data already present).",
    ),
)


def _parse_float(text: str) -> float:
    if not _DECIMAL.fullmatch(text):
        raise ValueError(f"invalid number {text!r}")
    return float(text)


def dehumanize(text: str) -> int:
    """A bcache figure, plain (``546``) or from bch_hprint (``1.1M``), as procfs reads it."""
    if not text:
        raise ValueError("zero-length reply")
    if text[-1] <= "9":
        return int(_parse_float(text))
    multiplier = _MULTIPLIERS.get(text[-1], 0)
    parts = text[:-1].split(".")
    mantissa = _parse_float(parts[0])
    if len(parts) > 1:
        mantissa += _parse_float(parts[1]) / 10.24
    return int(mantissa * multiplier)


def _dehumanize_signed(text: str) -> int:
    magnitude = dehumanize(text.removeprefix("-"))
    return -magnitude if text.startswith("-") else magnitude


def _read(path: str) -> int:
    """One attribute; 0 when it does not exist (procfs ignores ENOENT)."""
    try:
        raw = kernelfs.read_bytes(path)
    except FileNotFoundError:
        return 0
    try:
        return dehumanize(raw.decode("utf-8", "replace").removesuffix("\n"))
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def _writeback_rate_debug(path: str) -> dict[str, int]:
    """The ``rate``, ``target`` and controller terms of writeback_rate_debug.

    Lines look like ``rate:           1.1M/sec``; the figure is the last field.
    """
    values: dict[str, int] = {}
    for line in kernelfs.read_text(path).splitlines():
        key, sep, _ = line.partition(":")
        if not sep or key not in ("rate", "target", "proportional", "integral", "change"):
            continue
        figure = line.split()[-1]
        if key in ("rate", "change"):
            figure = figure.removesuffix("/sec")
        try:
            if key in ("rate", "target"):
                values[key] = dehumanize(figure)
            else:
                values[key] = _dehumanize_signed(figure)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None
    return values


@register("bcache")
class BcacheCollector:
    def __init__(self, cfg: HostMetricsConfig) -> None:
        pass

    def collect(self, ctx: ScrapeContext) -> Iterable[Metric]:
        base = ctx.sys("fs/bcache")
        # Cache sets are named by their UUID; /sys/fs/bcache also holds register files.
        cache_sets = [name for name in kernelfs.list_dir(base) if fnmatchcase(name, "*-*")]
        if not cache_sets:
            return []
        out = LazyFamilies("node_bcache_")
        for uuid in cache_sets:
            path = f"{base}/{uuid}"
            self._cache_set(out, path, uuid)
            # Links to each member's bcache directory under /sys/devices.
            members = kernelfs.list_dir(path)
            for name in members:
                if fnmatchcase(name, "bdev[0-9]*"):
                    self._backing_device(out, f"{path}/{name}", uuid, name)
            for name in members:
                if fnmatchcase(name, "cache[0-9]*"):
                    self._cache_device(out, f"{path}/{name}", uuid, name)
        return list(out.by_name.values())

    @staticmethod
    def _cache_set(out: LazyFamilies, path: str, uuid: str) -> None:
        labels = {"uuid": uuid}
        for file, suffix, help_text in _CACHE_SET_GAUGES:
            out.add(suffix, help_text, labels, _read(f"{path}/{file}"))
        out.add(
            "btree_read_average_duration_seconds",
            "Average btree read duration.",
            labels,
            _read(f"{path}/internal/btree_read_average_duration_us") * 1e-9,
        )
        out.add(
            "cache_read_races_total",
            "Counts instances where while data was being read from the cache, the bucket was "
            "reused and invalidated - i.e. where the pointer was stale after the read completed.",
            labels,
            _read(f"{path}/internal/cache_read_races"),
            counter=True,
        )

    @staticmethod
    def _backing_device(out: LazyFamilies, path: str, uuid: str, name: str) -> None:
        labels = {"uuid": uuid, "backing_device": name}
        dirty_data = _read(f"{path}/dirty_data")
        writeback = _writeback_rate_debug(f"{path}/writeback_rate_debug")
        out.add(
            "dirty_data_bytes",
            "Amount of dirty data for this backing device in the cache.",
            labels,
            dirty_data,
        )
        for key, suffix, help_text in _WRITEBACK_TERMS:
            out.add(suffix, help_text, labels, writeback.get(key, 0))
        for file, suffix, help_text in _PERIOD_STATS:
            out.add(
                f"{suffix}_total",
                help_text,
                labels,
                _read(f"{path}/stats_total/{file}"),
                counter=True,
            )
        readaheads = _read(f"{path}/stats_total/cache_readaheads")
        if readaheads:
            out.add(
                "cache_readaheads_total",
                "Count of times readahead occurred.",
                labels,
                readaheads,
                counter=True,
            )

    @staticmethod
    def _cache_device(out: LazyFamilies, path: str, uuid: str, name: str) -> None:
        labels = {"uuid": uuid, "cache_device": name}
        out.add(
            "io_errors",
            "Number of errors that have occurred, decayed by io_error_halflife.",
            labels,
            _read(f"{path}/io_errors"),
        )
        out.add(
            "metadata_written_bytes_total",
            "Sum of all non data writes (btree writes and all other metadata).",
            labels,
            _read(f"{path}/metadata_written"),
            counter=True,
        )
        out.add(
            "written_bytes_total",
            "Sum of all data that has been written to the cache.",
            labels,
            _read(f"{path}/written"),
            counter=True,
        )
