"""filefd: allocated and maximum file handles from /proc/sys/fs/file-nr."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Metric

from agent.config import HostMetricsConfig
from agent.metrics import kernelfs
from agent.metrics.host.families import GaugeFamily
from agent.metrics.host.registry import ScrapeContext, register


@register("filefd")
class FilefdCollector:
    def __init__(self, cfg: HostMetricsConfig) -> None:
        pass

    def collect(self, ctx: ScrapeContext) -> Iterable[Metric]:
        # "allocated  unused(always 0 since 2.6)  maximum"
        allocated, _, maximum = kernelfs.read_text(ctx.proc("sys/fs/file-nr")).split()[:3]
        return [
            GaugeFamily(
                "node_filefd_allocated",
                "File descriptor statistics: allocated.",
                value=float(allocated),
            ),
            GaugeFamily(
                "node_filefd_maximum", "File descriptor statistics: maximum.", value=float(maximum)
            ),
        ]
