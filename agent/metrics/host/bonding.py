"""bonding: configured and active slaves per bonding master (/sys/class/net/*/bonding)."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Metric

from agent.config import HostMetricsConfig
from agent.metrics import kernelfs
from agent.metrics.host.families import GaugeFamily
from agent.metrics.host.registry import NoDataError, ScrapeContext, register


@register("bonding")
class BondingCollector:
    def __init__(self, cfg: HostMetricsConfig) -> None:
        pass

    def collect(self, ctx: ScrapeContext) -> Iterable[Metric]:
        base = ctx.sys("class/net")
        try:
            masters = kernelfs.read_text(f"{base}/bonding_masters").split()
        except FileNotFoundError as exc:
            raise NoDataError("bonding driver not loaded") from exc
        slaves_family = GaugeFamily(
            "node_bonding_slaves",
            "Number of configured slaves per bonding interface.",
            labels=["master"],
        )
        active_family = GaugeFamily(
            "node_bonding_active",
            "Number of active slaves per bonding interface.",
            labels=["master"],
        )
        for master in masters:
            slaves = (kernelfs.try_value(f"{base}/{master}/bonding/slaves") or "").split()
            active = 0
            for slave in slaves:
                status = kernelfs.try_value(
                    f"{base}/{master}/lower_{slave}/bonding_slave/mii_status"
                )
                if status is None:  # kernels before 4.13 have no lower_ links
                    status = kernelfs.try_value(f"{base}/{slave}/bonding_slave/mii_status")
                if status == "up":
                    active += 1
            slaves_family.add_metric([master], len(slaves))
            active_family.add_metric([master], active)
        return [slaves_family, active_family]
