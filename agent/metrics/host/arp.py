"""arp: ARP (IPv4 neighbour) entries per interface from /proc/net/arp.

The kernel's /proc/net/arp already skips NUD_NOARP entries, so the counts equal
node_exporter's default netlink query (AF_INET neighbours without NUD_NOARP).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from prometheus_client import Metric

from agent.config import HostMetricsConfig
from agent.metrics import kernelfs
from agent.metrics.host.families import GaugeFamily
from agent.metrics.host.registry import ScrapeContext, register


@register("arp")
class ArpCollector:
    def __init__(self, cfg: HostMetricsConfig) -> None:
        pass

    def collect(self, ctx: ScrapeContext) -> Iterable[Metric]:
        counts: Counter[str] = Counter()
        for line in kernelfs.read_text(ctx.proc("net/arp")).splitlines()[1:]:
            fields = line.split()
            if len(fields) >= 6:
                counts[fields[5]] += 1
        family = GaugeFamily("node_arp_entries", "ARP entries by device", labels=["device"])
        for device, count in sorted(counts.items()):
            family.add_metric([device], count)
        return [family]
