"""xfs: per-filesystem XFS statistics from /sys/fs/xfs/<device>/stats/stats."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Metric

from agent.config import HostMetricsConfig
from agent.metrics import kernelfs
from agent.metrics.host.families import CounterFamily
from agent.metrics.host.registry import ScrapeContext, register

# stats line key -> metric suffixes for its leading columns (prometheus/procfs xfs layout).
_LINES: dict[str, tuple[str, ...]] = {
    "extent_alloc": (
        "extent_allocation_extents_allocated_total",
        "extent_allocation_blocks_allocated_total",
        "extent_allocation_extents_freed_total",
        "extent_allocation_blocks_freed_total",
    ),
    "abt": (
        "allocation_btree_lookups_total",
        "allocation_btree_compares_total",
        "allocation_btree_records_inserted_total",
        "allocation_btree_records_deleted_total",
    ),
    "blk_map": (
        "block_mapping_reads_total",
        "block_mapping_writes_total",
        "block_mapping_unmaps_total",
        "block_mapping_extent_list_insertions_total",
        "block_mapping_extent_list_deletions_total",
        "block_mapping_extent_list_lookups_total",
        "block_mapping_extent_list_compares_total",
    ),
    "bmbt": (
        "block_map_btree_lookups_total",
        "block_map_btree_compares_total",
        "block_map_btree_records_inserted_total",
        "block_map_btree_records_deleted_total",
    ),
    "dir": (
        "directory_operation_lookup_total",
        "directory_operation_create_total",
        "directory_operation_remove_total",
        "directory_operation_getdents_total",
    ),
    "ig": (
        "inode_operation_attempts_total",
        "inode_operation_found_total",
        "inode_operation_recycled_total",
        "inode_operation_missed_total",
        "inode_operation_duplicates_total",
        "inode_operation_reclaims_total",
        "inode_operation_attribute_changes_total",
    ),
    "rw": ("read_calls_total", "write_calls_total"),
    "vnodes": (
        "vnode_active_total",
        "vnode_allocate_total",
        "vnode_get_total",
        "vnode_hold_total",
        "vnode_release_total",
        "vnode_reclaim_total",
        "vnode_remove_total",
    ),
}


@register("xfs")
class XFSCollector:
    def __init__(self, cfg: HostMetricsConfig) -> None:
        pass

    def collect(self, ctx: ScrapeContext) -> Iterable[Metric]:
        base = ctx.sys("fs/xfs")
        families: dict[str, CounterFamily] = {}
        for device in kernelfs.list_dir(base):
            try:
                text = kernelfs.read_text(f"{base}/{device}/stats/stats")
            except (FileNotFoundError, NotADirectoryError):
                continue  # /sys/fs/xfs/stats holds the global totals, not a device
            for line in text.splitlines():
                fields = line.split()
                suffixes = _LINES.get(fields[0]) if fields else None
                if not suffixes:
                    continue
                for suffix, value in zip(suffixes, fields[1:], strict=False):
                    name = f"node_xfs_{suffix}"
                    family = families.get(name)
                    if family is None:
                        family = families[name] = CounterFamily(
                            name, f"XFS statistic {suffix}.", labels=["device"]
                        )
                    family.add_metric([device], int(value))
        return list(families.values())
