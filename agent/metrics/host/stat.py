"""stat: kernel-wide counters from /proc/stat (interrupts, context switches, forks, boot time)."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Metric

from agent.config import HostMetricsConfig
from agent.metrics.host.families import CounterFamily, GaugeFamily
from agent.metrics.host.registry import ScrapeContext, register


@register("stat")
class StatCollector:
    def __init__(self, cfg: HostMetricsConfig) -> None:
        pass

    def collect(self, ctx: ScrapeContext) -> Iterable[Metric]:
        values: dict[str, int] = {}
        for line in ctx.read_shared(ctx.proc("stat")).splitlines():
            key, _, rest = line.partition(" ")
            if key in _WANTED:
                # "intr" is followed by per-IRQ counts; only the total is exported.
                values[key] = int(rest.split(None, 1)[0])
        families: list[Metric] = []
        for key, name, help_text, kind in _FAMILIES:
            if key in values:
                family = kind(name, help_text)
                family.add_metric([], values[key])
                families.append(family)
        return families


_FAMILIES: tuple[tuple[str, str, str, type[GaugeFamily] | type[CounterFamily]], ...] = (
    ("intr", "node_intr_total", "Total number of interrupts serviced.", CounterFamily),
    (
        "ctxt",
        "node_context_switches_total",
        "Total number of context switches.",
        CounterFamily,
    ),
    ("processes", "node_forks_total", "Total number of forks.", CounterFamily),
    ("btime", "node_boot_time_seconds", "Node boot time, in unixtime.", GaugeFamily),
    (
        "procs_running",
        "node_procs_running",
        "Number of processes in runnable state.",
        GaugeFamily,
    ),
    (
        "procs_blocked",
        "node_procs_blocked",
        "Number of processes blocked waiting for I/O to complete.",
        GaugeFamily,
    ),
)
_WANTED = frozenset(key for key, *_ in _FAMILIES)
