"""rapl: Intel/AMD RAPL energy counters from /sys/class/powercap (energy_uj -> joules)."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Metric

from agent.config import HostMetricsConfig
from agent.metrics import kernelfs
from agent.metrics.host.families import CounterFamily
from agent.metrics.host.hwmon import clean_name
from agent.metrics.host.registry import NoDataError, ScrapeContext, register


@register("rapl")
class RaplCollector:
    def __init__(self, cfg: HostMetricsConfig) -> None:
        pass

    def collect(self, ctx: ScrapeContext) -> Iterable[Metric]:
        base = ctx.sys("class/powercap")
        entries = kernelfs.list_dir(base)
        if not entries:
            raise NoDataError("no /sys/class/powercap")
        families: dict[str, CounterFamily] = {}
        occurrences: dict[str, int] = {}
        for entry in entries:
            path = f"{base}/{entry}"
            name = kernelfs.try_value(f"{path}/name")
            if not name:
                continue  # the control type directory itself
            microjoules = kernelfs.try_int(f"{path}/energy_uj")
            if microjoules is None:
                continue  # energy_uj is root-only since CVE-2020-8694
            # "package-0" -> zone "package", index 0; other zones count occurrences.
            zone, dash, number = name.partition("-")
            if dash and number.isdigit():
                index = number
            else:
                zone = name
                index = str(occurrences.get(name, 0))
                occurrences[name] = int(index) + 1
            metric = f"node_rapl_{clean_name(zone)}_joules_total"
            family = families.get(metric)
            if family is None:
                family = families[metric] = CounterFamily(
                    metric, f"Current RAPL {zone} value in joules", labels=["index", "path"]
                )
            family.add_metric([index, path], microjoules / 1e6)
        return list(families.values())
