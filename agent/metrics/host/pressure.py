"""pressure: pressure stall information (PSI) totals from /proc/pressure/*.

The ``total=`` field is cumulative stall time in microseconds. Kernels before 4.20, or
booted with ``psi=0``, have no PSI (absent files or EOPNOTSUPP): the collector then
reports no data, like node_exporter. ``irq`` exists from 6.1 with IRQ time accounting.
"""

from __future__ import annotations

import errno
from collections.abc import Iterable

from prometheus_client import Metric

from agent.config import HostMetricsConfig
from agent.metrics import kernelfs
from agent.metrics.host.families import CounterFamily
from agent.metrics.host.registry import NoDataError, ScrapeContext, register

# (resource, line, metric, help)
_SERIES = (
    (
        "cpu",
        "some",
        "node_pressure_cpu_waiting_seconds_total",
        "Total time in seconds that processes have waited for CPU time",
    ),
    (
        "io",
        "some",
        "node_pressure_io_waiting_seconds_total",
        "Total time in seconds that processes have waited due to IO congestion",
    ),
    (
        "io",
        "full",
        "node_pressure_io_stalled_seconds_total",
        "Total time in seconds no process could make progress due to IO congestion",
    ),
    (
        "memory",
        "some",
        "node_pressure_memory_waiting_seconds_total",
        "Total time in seconds that processes have waited for memory",
    ),
    (
        "memory",
        "full",
        "node_pressure_memory_stalled_seconds_total",
        "Total time in seconds no process could make progress due to memory congestion",
    ),
    (
        "irq",
        "full",
        "node_pressure_irq_stalled_seconds_total",
        "Total time in seconds no process could make progress due to IRQ congestion",
    ),
)


def parse_psi(text: str) -> dict[str, float]:
    """``some avg10=.. avg60=.. avg300=.. total=N`` -> {"some": N/1e6, "full": ...}."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        kind, _, rest = line.partition(" ")
        for field in rest.split():
            if field.startswith("total="):
                # node_exporter divides twice (us -> ms -> s); same float result.
                out[kind] = int(field[6:]) / 1000.0 / 1000.0
    return out


@register("pressure")
class PressureCollector:
    def __init__(self, cfg: HostMetricsConfig) -> None:
        pass

    def collect(self, ctx: ScrapeContext) -> Iterable[Metric]:
        parsed: dict[str, dict[str, float]] = {}
        for resource in ("cpu", "io", "memory", "irq"):
            try:
                parsed[resource] = parse_psi(kernelfs.read_text(ctx.proc(f"pressure/{resource}")))
            except OSError as exc:
                if exc.errno not in (errno.ENOENT, errno.EOPNOTSUPP):
                    raise
        if not parsed:
            raise NoDataError("no PSI: needs Linux >= 4.20 with CONFIG_PSI and psi not disabled")
        families: list[Metric] = []
        for resource, kind, name, help_text in _SERIES:
            value = parsed.get(resource, {}).get(kind)
            if value is not None:
                family = CounterFamily(name, help_text)
                family.add_metric([], value)
                families.append(family)
        return families
