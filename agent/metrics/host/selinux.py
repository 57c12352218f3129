"""selinux: whether SELinux is on, and its configured and current mode."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Metric

from agent.config import HostMetricsConfig
from agent.metrics import kernelfs
from agent.metrics.host.families import GaugeFamily
from agent.metrics.host.registry import ScrapeContext, register

_MODES = {"enforcing": 1, "permissive": 0, "disabled": -1}


@register("selinux")
class SELinuxCollector:
    def __init__(self, cfg: HostMetricsConfig) -> None:
        pass

    def collect(self, ctx: ScrapeContext) -> Iterable[Metric]:
        enforce = kernelfs.try_value(ctx.sys("fs/selinux/enforce"))
        if enforce is None:
            # No selinuxfs: SELinux is off, and that is all node_exporter reports.
            return [
                GaugeFamily(
                    "node_selinux_enabled", "SELinux is enabled, 1 is true, 0 is false", value=0
                )
            ]
        config_mode = -1
        try:
            for line in kernelfs.read_text(ctx.root("/etc/selinux/config")).splitlines():
                key, _, value = line.strip().partition("=")
                if key == "SELINUX":
                    config_mode = _MODES.get(value.strip().lower(), -1)
        except OSError:
            pass
        return [
            GaugeFamily(
                "node_selinux_enabled", "SELinux is enabled, 1 is true, 0 is false", value=1
            ),
            GaugeFamily(
                "node_selinux_config_mode",
                "Configured SELinux enforcement mode",
                value=config_mode,
            ),
            GaugeFamily(
                "node_selinux_current_mode",
                "Current SELinux enforcement mode",
                value=1 if enforce == "1" else 0,
            ),
        ]
