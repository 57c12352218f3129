"""entropy: the kernel entropy pool (/proc/sys/kernel/random)."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Metric

from agent.config import HostMetricsConfig
from agent.metrics import kernelfs
from agent.metrics.host.families import GaugeFamily
from agent.metrics.host.registry import ScrapeContext, register


@register("entropy")
class EntropyCollector:
    def __init__(self, cfg: HostMetricsConfig) -> None:
        pass

    def collect(self, ctx: ScrapeContext) -> Iterable[Metric]:
        available = kernelfs.read_int(ctx.proc("sys/kernel/random/entropy_avail"))
        pool_size = kernelfs.read_int(ctx.proc("sys/kernel/random/poolsize"))
        return [
            GaugeFamily(
                "node_entropy_available_bits", "Bits of available entropy.", value=available
            ),
            GaugeFamily("node_entropy_pool_size_bits", "Bits of entropy pool.", value=pool_size),
        ]
