"""meminfo: every /proc/meminfo line as ``node_memory_<Key>[_bytes]``.

Emits every key the kernel reports (node_exporter before 1.10 did; 1.10+ keeps a fixed
list that is a subset of this). ``Active(anon)`` becomes ``Active_anon``; values given in
kB are multiplied by 1024 and get ``_bytes``; unitless counts (``HugePages_Total``) do not.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Metric

from agent.config import HostMetricsConfig
from agent.metrics import kernelfs
from agent.metrics.host.families import GaugeFamily
from agent.metrics.host.registry import ScrapeContext, register


def parse_meminfo(text: str) -> dict[str, float]:
    """{"MemTotal_bytes": ..., "HugePages_Total": ...} in node_exporter's naming."""
    values: dict[str, float] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 2 or not parts[0].endswith(":"):
            continue
        key = parts[0][:-1]
        if "(" in key:
            key = key.replace("(", "_").replace(")", "")
        value = float(parts[1])
        if len(parts) == 3:  # the only unit the kernel uses here is kB
            value *= 1024.0
            key += "_bytes"
        values[key] = value
    return values


@register("meminfo")
class MeminfoCollector:
    def __init__(self, cfg: HostMetricsConfig) -> None:
        self._help: dict[str, str] = {}

    def collect(self, ctx: ScrapeContext) -> Iterable[Metric]:
        families: list[Metric] = []
        for key, value in parse_meminfo(kernelfs.read_text(ctx.proc("meminfo"))).items():
            family = GaugeFamily(
                "node_memory_" + key, f"Memory information field {key}.", value=value
            )
            families.append(family)
        return families
