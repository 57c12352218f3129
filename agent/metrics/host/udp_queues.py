"""udp_queues: bytes waiting in UDP socket queues, summed from /proc/net/udp and udp6."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Metric

from agent.config import HostMetricsConfig
from agent.metrics import kernelfs
from agent.metrics.host.families import GaugeFamily
from agent.metrics.host.registry import NoDataError, ScrapeContext, register


def sum_queues(text: str) -> tuple[int, int]:
    """(tx, rx) totals; column 5 of each socket row is ``tx_queue:rx_queue`` in hex."""
    tx = rx = 0
    for line in text.splitlines()[1:]:
        fields = line.split(None, 5)
        if len(fields) < 5:
            continue
        tx_hex, _, rx_hex = fields[4].partition(":")
        tx += int(tx_hex, 16)
        rx += int(rx_hex, 16)
    return tx, rx


@register("udp_queues")
class UDPQueuesCollector:
    def __init__(self, cfg: HostMetricsConfig) -> None:
        pass

    def collect(self, ctx: ScrapeContext) -> Iterable[Metric]:
        family = GaugeFamily(
            "node_udp_queues",
            "Number of allocated memory in the kernel for UDP datagrams in bytes.",
            labels=["ip", "queue"],
        )
        for ip, name in (("v4", "udp"), ("v6", "udp6")):
            try:
                tx, rx = sum_queues(kernelfs.read_text(ctx.proc(f"net/{name}")))
            except FileNotFoundError:
                continue
            family.add_metric([ip, "tx"], tx)
            family.add_metric([ip, "rx"], rx)
        if not family.rows:
            raise NoDataError("no /proc/net/udp or udp6")
        return [family]
