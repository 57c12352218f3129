"""watchdog: hardware watchdog state from /sys/class/watchdog/watchdogN."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Metric

from agent.config import HostMetricsConfig
from agent.metrics import kernelfs
from agent.metrics.host.families import GaugeFamily
from agent.metrics.host.registry import ScrapeContext, register

_NUMERIC = (
    (
        "bootstatus",
        "node_watchdog_bootstatus",
        "Value of /sys/class/watchdog/<watchdog>/bootstatus",
    ),
    (
        "fw_version",
        "node_watchdog_fw_version",
        "Value of /sys/class/watchdog/<watchdog>/fw_version",
    ),
    ("nowayout", "node_watchdog_nowayout", "Value of /sys/class/watchdog/<watchdog>/nowayout"),
    (
        "timeleft",
        "node_watchdog_timeleft_seconds",
        "Value of /sys/class/watchdog/<watchdog>/timeleft",
    ),
    ("timeout", "node_watchdog_timeout_seconds", "Value of /sys/class/watchdog/<watchdog>/timeout"),
    (
        "pretimeout",
        "node_watchdog_pretimeout_seconds",
        "Value of /sys/class/watchdog/<watchdog>/pretimeout",
    ),
    (
        "access_cs0",
        "node_watchdog_access_cs0",
        "Value of /sys/class/watchdog/<watchdog>/access_cs0",
    ),
)
_INFO = ("options", "identity", "state", "status", "pretimeout_governor")


@register("watchdog")
class WatchdogCollector:
    def __init__(self, cfg: HostMetricsConfig) -> None:
        pass

    def collect(self, ctx: ScrapeContext) -> Iterable[Metric]:
        base = ctx.sys("class/watchdog")
        numeric = [GaugeFamily(name, h, labels=["name"]) for _, name, h in _NUMERIC]
        info = GaugeFamily(
            "node_watchdog_info",
            "Info of /sys/class/watchdog/<watchdog>",
            labels=["name", *_INFO],
        )
        for watchdog in kernelfs.list_dir(base):
            path = f"{base}/{watchdog}"
            for family, (filename, _, _) in zip(numeric, _NUMERIC, strict=True):
                value = kernelfs.try_int(f"{path}/{filename}")
                if value is not None:
                    family.add_metric([watchdog], value)
            info.add_metric(
                [watchdog, *(kernelfs.try_value(f"{path}/{f}") or "" for f in _INFO)], 1
            )
        return [*numeric, info]
