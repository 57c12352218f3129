"""conntrack: netfilter connection tracking table usage and per-CPU statistics.

Without the nf_conntrack module loaded there are no files and no data, as in node_exporter.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Metric

from agent.config import HostMetricsConfig
from agent.metrics import kernelfs
from agent.metrics.host.families import GaugeFamily
from agent.metrics.host.registry import NoDataError, ScrapeContext, register

_STATS = (
    ("found", "Number of searched entries which were successful."),
    ("invalid", "Number of packets seen which can not be tracked."),
    ("ignore", "Number of packets seen which are already connected to a conntrack entry."),
    ("insert", "Number of entries inserted into the list."),
    ("insert_failed", "Number of entries for which list insertion was attempted but failed."),
    ("drop", "Number of packets dropped due to conntrack failure."),
    (
        "early_drop",
        "Number of dropped conntrack entries to make room for new ones, "
        "if maximum table size was reached.",
    ),
    (
        "search_restart",
        "Number of conntrack table lookups which had to be restarted due to hashtable resizes.",
    ),
)


def sum_conntrack_stat(text: str) -> dict[str, int]:
    """/proc/net/stat/nf_conntrack: a header row, then one row of hex counters per CPU."""
    lines = text.splitlines()
    if not lines:
        return {}
    header = lines[0].split()
    totals = dict.fromkeys(header, 0)
    for line in lines[1:]:
        for name, value in zip(header, line.split(), strict=False):
            totals[name] += int(value, 16)
    return totals


@register("conntrack")
class ConntrackCollector:
    def __init__(self, cfg: HostMetricsConfig) -> None:
        pass

    def collect(self, ctx: ScrapeContext) -> Iterable[Metric]:
        try:
            count = kernelfs.read_int(ctx.proc("sys/net/netfilter/nf_conntrack_count"))
            limit = kernelfs.read_int(ctx.proc("sys/net/netfilter/nf_conntrack_max"))
        except FileNotFoundError as exc:
            raise NoDataError("nf_conntrack is not loaded") from exc
        families: list[Metric] = [
            GaugeFamily(
                "node_nf_conntrack_entries",
                "Number of currently allocated flow entries for connection tracking.",
                value=count,
            ),
            GaugeFamily(
                "node_nf_conntrack_entries_limit",
                "Maximum size of connection tracking table.",
                value=limit,
            ),
        ]
        try:
            totals = sum_conntrack_stat(kernelfs.read_text(ctx.proc("net/stat/nf_conntrack")))
        except FileNotFoundError:
            return families
        for name, help_text in _STATS:
            if name in totals:
                families.append(
                    GaugeFamily(f"node_nf_conntrack_stat_{name}", help_text, value=totals[name])
                )
        return families
