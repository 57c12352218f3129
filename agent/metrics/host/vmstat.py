"""vmstat: /proc/vmstat fields as untyped ``node_vmstat_<field>``, default field filter only."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Metric

from agent.config import HostMetricsConfig
from agent.metrics import kernelfs
from agent.metrics.host.families import UntypedFamily
from agent.metrics.host.filters import NameFilter
from agent.metrics.host.registry import ScrapeContext, register

DEFAULT_FIELDS = r"^(oom_kill|pgpg|pswp|pg.*fault).*"


@register("vmstat")
class VmstatCollector:
    def __init__(self, cfg: HostMetricsConfig) -> None:
        self._fields = NameFilter(include=DEFAULT_FIELDS)

    def collect(self, ctx: ScrapeContext) -> Iterable[Metric]:
        families: list[Metric] = []
        ignored = self._fields.ignored
        for line in kernelfs.read_text(ctx.proc("vmstat")).splitlines():
            key, _, value = line.partition(" ")
            if not value or ignored(key):
                continue
            families.append(
                UntypedFamily(
                    "node_vmstat_" + key,
                    f"/proc/vmstat information field {key}.",
                    value=float(value),
                )
            )
        return families
