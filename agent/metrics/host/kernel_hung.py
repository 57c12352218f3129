"""kernel_hung: tasks the hung-task detector has reported since boot (Linux 6.11+)."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Metric

from agent.config import HostMetricsConfig
from agent.metrics import kernelfs
from agent.metrics.host.families import CounterFamily
from agent.metrics.host.registry import NoDataError, ScrapeContext, register


@register("kernel_hung")
class KernelHungCollector:
    def __init__(self, cfg: HostMetricsConfig) -> None:
        pass

    def collect(self, ctx: ScrapeContext) -> Iterable[Metric]:
        try:
            count = kernelfs.read_int(ctx.proc("sys/kernel/hung_task_detect_count"))
        except FileNotFoundError as exc:
            raise NoDataError("kernel has no hung_task_detect_count") from exc
        family = CounterFamily(
            "node_kernel_hung_tasks_total",
            "Total number of tasks that have been detected as hung since system boot.",
        )
        family.add_metric([], count)
        return [family]
