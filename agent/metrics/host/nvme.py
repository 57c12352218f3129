"""nvme: controller identity from /sys/class/nvme/nvmeN (model, serial, firmware, state)."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Metric
from prometheus_client.core import GaugeMetricFamily

from agent.config import HostMetricsConfig
from agent.metrics import kernelfs
from agent.metrics.host.registry import NoDataError, ScrapeContext, register


@register("nvme")
class NVMeCollector:
    def __init__(self, cfg: HostMetricsConfig) -> None:
        pass

    def collect(self, ctx: ScrapeContext) -> Iterable[Metric]:
        base = ctx.sys("class/nvme")
        controllers = kernelfs.list_dir(base)
        if not controllers:
            raise NoDataError("no NVMe controllers")
        info = GaugeMetricFamily(
            "node_nvme_info",
            "Non-numeric data from /sys/class/nvme/<device>, value is always 1.",
            labels=["device", "firmware_revision", "model", "serial", "state", "cntlid"],
        )
        for device in controllers:
            path = f"{base}/{device}"
            info.add_metric(
                [
                    device,
                    kernelfs.try_value(f"{path}/firmware_rev") or "",
                    kernelfs.try_value(f"{path}/model") or "",
                    kernelfs.try_value(f"{path}/serial") or "",
                    kernelfs.try_value(f"{path}/state") or "",
                    kernelfs.try_value(f"{path}/cntlid") or "",
                ],
                1,
            )
        return [info]
