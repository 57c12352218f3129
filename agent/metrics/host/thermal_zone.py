"""thermal_zone: thermal zone temperatures and cooling device states from /sys/class/thermal."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Metric

from agent.config import HostMetricsConfig
from agent.metrics import kernelfs
from agent.metrics.host.families import GaugeFamily
from agent.metrics.host.registry import ScrapeContext, register


@register("thermal_zone")
class ThermalZoneCollector:
    def __init__(self, cfg: HostMetricsConfig) -> None:
        pass

    def collect(self, ctx: ScrapeContext) -> Iterable[Metric]:
        base = ctx.sys("class/thermal")
        temp = GaugeFamily(
            "node_thermal_zone_temp", "Zone temperature in Celsius", labels=["zone", "type"]
        )
        cur_state = GaugeFamily(
            "node_cooling_device_cur_state",
            "Current throttle state of the cooling device",
            labels=["name", "type"],
        )
        max_state = GaugeFamily(
            "node_cooling_device_max_state",
            "Maximum throttle state of the cooling device",
            labels=["name", "type"],
        )
        for entry in kernelfs.list_dir(base):
            path = f"{base}/{entry}"
            if entry.startswith("thermal_zone"):
                # A zone whose sensor cannot be read right now is skipped, not fatal.
                millicelsius = kernelfs.try_int(f"{path}/temp")
                kind = kernelfs.try_value(f"{path}/type")
                if millicelsius is not None and kind is not None:
                    temp.add_metric([entry[len("thermal_zone") :], kind], millicelsius / 1000.0)
            elif entry.startswith("cooling_device"):
                kind = kernelfs.try_value(f"{path}/type")
                current = kernelfs.try_int(f"{path}/cur_state")
                maximum = kernelfs.try_int(f"{path}/max_state")
                name = entry[len("cooling_device") :]
                if kind is None or current is None or maximum is None:
                    continue
                cur_state.add_metric([name, kind], current)
                max_state.add_metric([name, kind], maximum)
        return [temp, cur_state, max_state]
