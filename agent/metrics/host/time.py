"""time: the host clock, local time zone and clock sources."""

from __future__ import annotations

import time
from collections.abc import Iterable

from prometheus_client import Metric

from agent.config import HostMetricsConfig
from agent.metrics import kernelfs
from agent.metrics.host.families import GaugeFamily
from agent.metrics.host.registry import ScrapeContext, register


@register("time")
class TimeCollector:
    def __init__(self, cfg: HostMetricsConfig) -> None:
        pass

    def collect(self, ctx: ScrapeContext) -> Iterable[Metric]:
        now = time.time()
        local = time.localtime(now)
        zone = GaugeFamily(
            "node_time_zone_offset_seconds",
            "System time zone offset in seconds.",
            labels=["time_zone"],
        )
        zone.add_metric([local.tm_zone], local.tm_gmtoff)
        families: list[Metric] = [
            GaugeFamily(
                "node_time_seconds", "System time in seconds since epoch (1970).", value=now
            ),
            zone,
        ]
        available = GaugeFamily(
            "node_time_clocksource_available_info",
            "Available clocksources read from '/sys/devices/system/clocksource'.",
            labels=["device", "clocksource"],
        )
        current = GaugeFamily(
            "node_time_clocksource_current_info",
            "Current clocksource read from '/sys/devices/system/clocksource'.",
            labels=["device", "clocksource"],
        )
        base = ctx.sys("devices/system/clocksource")
        for entry in kernelfs.list_dir(base):
            if not entry.startswith("clocksource"):
                continue
            device = entry[len("clocksource") :]
            for name in (kernelfs.try_value(f"{base}/{entry}/available_clocksource") or "").split():
                available.add_metric([device, name], 1)
            active = kernelfs.try_value(f"{base}/{entry}/current_clocksource")
            if active:
                current.add_metric([device, active], 1)
        families.extend((available, current))
        return families
