"""cpufreq: CPU frequency and governor from /sys/devices/system/cpu/cpuN/cpufreq (kHz)."""

from __future__ import annotations

import os
from collections.abc import Iterable

from prometheus_client import Metric

from agent.config import HostMetricsConfig
from agent.metrics import kernelfs
from agent.metrics.host.families import GaugeFamily
from agent.metrics.host.registry import ScrapeContext, register

# (file, metric, help); cpuinfo_cur_freq is readable by root only.
_FREQUENCIES = (
    ("cpuinfo_cur_freq", "node_cpu_frequency_hertz", "Current CPU thread frequency in hertz."),
    ("cpuinfo_min_freq", "node_cpu_frequency_min_hertz", "Minimum CPU thread frequency in hertz."),
    ("cpuinfo_max_freq", "node_cpu_frequency_max_hertz", "Maximum CPU thread frequency in hertz."),
    ("cpuinfo_avg_freq", "node_cpu_frequency_avg_hertz", "Average CPU thread frequency in hertz."),
    (
        "scaling_cur_freq",
        "node_cpu_scaling_frequency_hertz",
        "Current scaled CPU thread frequency in hertz.",
    ),
    (
        "scaling_min_freq",
        "node_cpu_scaling_frequency_min_hertz",
        "Minimum scaled CPU thread frequency in hertz.",
    ),
    (
        "scaling_max_freq",
        "node_cpu_scaling_frequency_max_hertz",
        "Maximum scaled CPU thread frequency in hertz.",
    ),
)


@register("cpufreq")
class CPUFreqCollector:
    def __init__(self, cfg: HostMetricsConfig) -> None:
        pass

    def collect(self, ctx: ScrapeContext) -> Iterable[Metric]:
        base = ctx.sys("devices/system/cpu")
        cpus = [e for e in kernelfs.list_dir(base) if e.startswith("cpu") and e[3:].isdigit()]
        families = [GaugeFamily(name, h, labels=["cpu"]) for _, name, h in _FREQUENCIES]
        governors = GaugeFamily(
            "node_cpu_scaling_governor",
            "Current enabled CPU frequency governor.",
            labels=["cpu", "governor"],
        )
        for entry in sorted(cpus, key=lambda e: int(e[3:])):
            directory = f"{base}/{entry}/cpufreq"
            if not os.path.isdir(directory):
                continue  # no cpufreq driver (most VMs): one stat instead of eight failed reads
            cpu = entry[3:]
            for family, (filename, _, _) in zip(families, _FREQUENCIES, strict=True):
                khz = kernelfs.try_int(f"{directory}/{filename}")
                if khz is not None:
                    family.add_metric([cpu], khz * 1000.0)
            governor = kernelfs.try_value(f"{directory}/scaling_governor")
            if governor:
                available = kernelfs.try_value(f"{directory}/scaling_available_governors") or ""
                for name in available.split(" "):
                    governors.add_metric([cpu, name], 1 if name == governor else 0)
        return [*families, governors]
