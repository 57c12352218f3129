"""sockstat: socket counts and memory from /proc/net/sockstat and sockstat6.

``mem`` is in pages and is also exported as ``mem_bytes``; FRAG's ``memory`` is already
in bytes and keeps its name, as in node_exporter.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable

from prometheus_client import Metric

from agent.config import HostMetricsConfig
from agent.metrics import kernelfs
from agent.metrics.host.families import GaugeFamily
from agent.metrics.host.registry import ScrapeContext, register

_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
_FIELDS = frozenset(("inuse", "orphan", "tw", "alloc", "mem", "memory"))


def parse_sockstat(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in text.splitlines():
        proto, _, rest = line.partition(":")
        parts = rest.split()
        if proto == "sockets":
            if len(parts) >= 2 and parts[0] == "used":
                out["sockets_used"] = float(parts[1])
            continue
        for name, value in zip(parts[::2], parts[1::2], strict=False):
            if name not in _FIELDS:
                continue
            out[f"{proto}_{name}"] = float(value)
            if name == "mem":
                out[f"{proto}_mem_bytes"] = float(value) * _PAGE_SIZE
    return out


@register("sockstat")
class SockstatCollector:
    def __init__(self, cfg: HostMetricsConfig) -> None:
        pass

    def collect(self, ctx: ScrapeContext) -> Iterable[Metric]:
        stats = parse_sockstat(kernelfs.read_text(ctx.proc("net/sockstat")))
        with contextlib.suppress(FileNotFoundError):  # IPv6 disabled
            stats.update(parse_sockstat(kernelfs.read_text(ctx.proc("net/sockstat6"))))
        return [
            GaugeFamily(
                "node_sockstat_" + key,
                f"Number of {key.replace('_', ' ')}.",
                value=value,
            )
            for key, value in stats.items()
        ]
