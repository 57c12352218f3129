"""softnet: per-CPU network softirq counters from /proc/net/softnet_stat (hex columns).

Columns: processed, dropped, time_squeeze, five unused, cpu_collision, received_rps,
flow_limit_count (from 4.x), backlog length and the CPU id (from 5.10); before the id
column existed the row number is the CPU, as in node_exporter.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Metric

from agent.config import HostMetricsConfig
from agent.metrics import kernelfs
from agent.metrics.host.families import CounterFamily, GaugeFamily
from agent.metrics.host.registry import ScrapeContext, register

# (column, name, help, counter?, minimum row width)
_COLUMNS = (
    (0, "node_softnet_processed_total", "Number of processed packets", True, 9),
    (1, "node_softnet_dropped_total", "Number of dropped packets", True, 9),
    (
        2,
        "node_softnet_times_squeezed_total",
        "Number of times processing packets ran out of quota",
        True,
        9,
    ),
    (
        8,
        "node_softnet_cpu_collision_total",
        "Number of collision occur while obtaining device lock while transmitting",
        True,
        11,
    ),
    (9, "node_softnet_received_rps_total", "Number of times cpu woken up received_rps", True, 11),
    (
        10,
        "node_softnet_flow_limit_count_total",
        "Number of times flow limit has been reached",
        True,
        11,
    ),
    (11, "node_softnet_backlog_len", "Softnet backlog status", False, 13),
)


@register("softnet")
class SoftnetCollector:
    def __init__(self, cfg: HostMetricsConfig) -> None:
        pass

    def collect(self, ctx: ScrapeContext) -> Iterable[Metric]:
        families = [
            (CounterFamily if counter else GaugeFamily)(name, help_text, labels=["cpu"])
            for _, name, help_text, counter, _ in _COLUMNS
        ]
        for row, line in enumerate(kernelfs.read_text(ctx.proc("net/softnet_stat")).splitlines()):
            columns = line.split()
            width = len(columns)
            if width < 9:
                continue
            cpu = str(int(columns[12], 16)) if width >= 13 else str(row)
            for family, (column, _, _, _, min_width) in zip(families, _COLUMNS, strict=True):
                if width >= min_width:
                    family.add_metric([cpu], int(columns[column], 16))
        return list(families)
