"""schedstat: per-CPU scheduler time from /proc/schedstat (needs CONFIG_SCHEDSTATS)."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Metric

from agent.config import HostMetricsConfig
from agent.metrics import kernelfs
from agent.metrics.host.families import CounterFamily
from agent.metrics.host.registry import NoDataError, ScrapeContext, register


@register("schedstat")
class SchedstatCollector:
    def __init__(self, cfg: HostMetricsConfig) -> None:
        pass

    def collect(self, ctx: ScrapeContext) -> Iterable[Metric]:
        try:
            text = kernelfs.read_text(ctx.proc("schedstat"))
        except FileNotFoundError as exc:
            raise NoDataError("kernel without CONFIG_SCHEDSTATS") from exc
        running = CounterFamily(
            "node_schedstat_running_seconds_total",
            "Number of seconds CPU spent running a process.",
            labels=["cpu"],
        )
        waiting = CounterFamily(
            "node_schedstat_waiting_seconds_total",
            "Number of seconds spent by processing waiting for this CPU.",
            labels=["cpu"],
        )
        timeslices = CounterFamily(
            "node_schedstat_timeslices_total",
            "Number of timeslices executed by CPU.",
            labels=["cpu"],
        )
        for line in text.splitlines():
            # "cpuN <6 legacy fields> <running ns> <waiting ns> <timeslices>"
            fields = line.split()
            if len(fields) < 10 or not fields[0].startswith("cpu"):
                continue
            cpu = fields[0][3:]
            running.add_metric([cpu], int(fields[7]) / 1e9)
            waiting.add_metric([cpu], int(fields[8]) / 1e9)
            timeslices.add_metric([cpu], int(fields[9]))
        return [running, waiting, timeslices]
