"""uname: ``node_uname_info``, the labels dashboards use to pick a host (nodename)."""

from __future__ import annotations

import os
from collections.abc import Iterable

from prometheus_client import Metric

from agent.config import HostMetricsConfig
from agent.metrics import kernelfs
from agent.metrics.host.families import GaugeFamily
from agent.metrics.host.registry import ScrapeContext, register


@register("uname")
class UnameCollector:
    def __init__(self, cfg: HostMetricsConfig) -> None:
        pass

    def collect(self, ctx: ScrapeContext) -> Iterable[Metric]:
        # uname(2) like node_exporter (the nodename of the agent's UTS namespace); Python's
        # os.uname() lacks the NIS domain name, which the kernel also exposes here.
        name = os.uname()
        domain = kernelfs.try_value(ctx.proc("sys/kernel/domainname")) or "(none)"
        family = GaugeFamily(
            "node_uname_info",
            "Labeled system information as provided by the uname system call.",
            labels=["sysname", "release", "version", "machine", "nodename", "domainname"],
        )
        family.add_metric(
            [name.sysname, name.release, name.version, name.machine, name.nodename, domain], 1
        )
        return [family]
