"""loadavg: the 1, 5 and 15 minute load averages from /proc/loadavg."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Metric

from agent.config import HostMetricsConfig
from agent.metrics import kernelfs
from agent.metrics.host.families import GaugeFamily
from agent.metrics.host.registry import ScrapeContext, register


@register("loadavg")
class LoadavgCollector:
    def __init__(self, cfg: HostMetricsConfig) -> None:
        pass

    def collect(self, ctx: ScrapeContext) -> Iterable[Metric]:
        fields = kernelfs.read_text(ctx.proc("loadavg")).split()
        families: list[Metric] = []
        for index, minutes in enumerate(("1", "5", "15")):
            family = GaugeFamily(f"node_load{minutes}", f"{minutes}m load average.")
            family.add_metric([], float(fields[index]))
            families.append(family)
        return families
