"""cpu: per-CPU time from /proc/stat, thermal throttles, isolated and online CPUs.

Matches node_exporter's cpu_linux.go: the ``cpu`` label is the N of the kernel's
``cpuN`` line (not a list index, so offline CPUs leave gaps), eight modes (guest time is
already inside user/nice and is reported separately), and every counter is clamped so it
never goes backwards: the kernel's per-CPU idle/iowait can step back a little, and a CPU
that went offline and came back restarts from zero (a hotplug, detected by idle dropping
by more than ``_JUMP_BACK_SECONDS``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from prometheus_client import Metric

from agent.config import HostMetricsConfig
from agent.metrics import kernelfs
from agent.metrics.host.families import CounterFamily, GaugeFamily
from agent.metrics.host.registry import ScrapeContext, register

_USER_HZ = float(os.sysconf("SC_CLK_TCK"))
_MODES = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
_IDLE = 3
_JUMP_BACK_SECONDS = 3.0


def parse_cpu_lines(stat: str) -> dict[str, list[float]]:
    """``cpuN`` lines of /proc/stat -> {"N": [user, nice, ..., guest, guest_nice] seconds}."""
    cpus: dict[str, list[float]] = {}
    hz = _USER_HZ
    for line in stat.splitlines():
        if not line.startswith("cpu") or line.startswith("cpu "):
            if cpus and not line.startswith("cpu"):
                break  # the cpu lines come first and together
            continue
        fields = line.split()
        values = [int(v) / hz for v in fields[1:11]]
        values.extend([0.0] * (10 - len(values)))
        cpus[fields[0][3:]] = values
    return cpus


@register("cpu")
class CPUCollector:
    def __init__(self, cfg: HostMetricsConfig) -> None:
        self._last: dict[str, list[float]] = {}

    def collect(self, ctx: ScrapeContext) -> Iterable[Metric]:
        current = parse_cpu_lines(ctx.read_shared(ctx.proc("stat")))
        seconds = CounterFamily(
            "node_cpu_seconds_total", "Seconds the CPUs spent in each mode.", labels=["cpu", "mode"]
        )
        guest = CounterFamily(
            "node_cpu_guest_seconds_total",
            "Seconds the CPUs spent in guests (VMs) for each mode.",
            labels=["cpu", "mode"],
        )
        last = self._last
        for cpu, new in current.items():
            old = last.get(cpu)
            if old is None or old[_IDLE] - new[_IDLE] >= _JUMP_BACK_SECONDS:
                kept = new
            else:
                kept = [n if n >= o else o for n, o in zip(new, old, strict=True)]
            last[cpu] = kept
            for mode, value in zip(_MODES, kept, strict=False):
                seconds.add_metric([cpu, mode], value)
            guest.add_metric([cpu, "user"], kept[8])
            guest.add_metric([cpu, "nice"], kept[9])
        if len(last) != len(current):
            for cpu in [c for c in last if c not in current]:
                del last[cpu]  # offline CPUs drop out, like node_exporter
        families: list[Metric] = [seconds, guest]
        families.extend(self._throttles(ctx))
        families.extend(self._isolated_and_online(ctx))
        return families

    def _throttles(self, ctx: ScrapeContext) -> list[Metric]:
        base = ctx.sys("devices/system/cpu")
        core_throttles: dict[tuple[str, str], int] = {}
        package_throttles: dict[str, int] = {}
        for entry in kernelfs.list_dir(base):
            if not entry.startswith("cpu") or not entry[3:].isdigit():
                continue
            cpu_dir = f"{base}/{entry}"
            core_count = kernelfs.try_int(f"{cpu_dir}/thermal_throttle/core_throttle_count")
            if core_count is None:
                continue
            package = kernelfs.try_value(f"{cpu_dir}/topology/physical_package_id")
            core = kernelfs.try_value(f"{cpu_dir}/topology/core_id")
            if package is None or core is None:
                continue
            # Hyperthread siblings share one core counter: report it once per core.
            core_throttles.setdefault((package, core), core_count)
            if package not in package_throttles:
                count = kernelfs.try_int(f"{cpu_dir}/thermal_throttle/package_throttle_count")
                if count is not None:
                    package_throttles[package] = count
        if not core_throttles and not package_throttles:
            return []
        cores = CounterFamily(
            "node_cpu_core_throttles_total",
            "Number of times this CPU core has been throttled.",
            labels=["core", "package"],
        )
        for (package, core), count in sorted(core_throttles.items()):
            cores.add_metric([core, package], count)
        packages = CounterFamily(
            "node_cpu_package_throttles_total",
            "Number of times this CPU package has been throttled.",
            labels=["package"],
        )
        for package, count in sorted(package_throttles.items()):
            packages.add_metric([package], count)
        return [cores, packages]

    def _isolated_and_online(self, ctx: ScrapeContext) -> list[Metric]:
        families: list[Metric] = []
        isolated = kernelfs.try_value(ctx.sys("devices/system/cpu/isolated"))
        if isolated:
            family = GaugeFamily(
                "node_cpu_isolated", "Whether each CPU is isolated.", labels=["cpu"]
            )
            for cpu in parse_cpu_list(isolated):
                family.add_metric([str(cpu)], 1)
            families.append(family)
        base = ctx.sys("devices/system/cpu")
        online = GaugeFamily(
            "node_cpu_online", "CPUs that are online and being scheduled.", labels=["cpu"]
        )
        for entry in kernelfs.list_dir(base):
            if entry.startswith("cpu") and entry[3:].isdigit():
                # cpu0 usually has no "online" file: it cannot be taken offline.
                state = kernelfs.try_value(f"{base}/{entry}/online")
                online.add_metric([entry[3:]], 0 if state == "0" else 1)
        if online.rows:
            families.append(online)
        return families


def parse_cpu_list(text: str) -> list[int]:
    """The kernel's CPU list format (``0-3,8,10-11``) -> [0, 1, 2, 3, 8, 10, 11]."""
    cpus: list[int] = []
    for part in text.strip().split(","):
        if not part:
            continue
        low, _, high = part.partition("-")
        cpus.extend(range(int(low), int(high or low) + 1))
    return cpus
