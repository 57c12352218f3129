"""``process_*`` for the agent itself, with the names node_exporter's Go client exposes.

prometheus_client's ProcessCollector covers cpu_seconds_total, open_fds, max_fds,
virtual_memory_bytes, resident_memory_bytes and start_time_seconds; Node Exporter Full
also graphs ``process_virtual_memory_max_bytes`` (RLIMIT_AS), which only the Go client has.
"""

from __future__ import annotations

import resource
from collections.abc import Iterable

from prometheus_client import Metric, ProcessCollector

from agent.metrics.host.families import GaugeFamily

# Go reports an unlimited RLIMIT_AS as the unsigned RLIM_INFINITY.
_UNLIMITED = float(2**64 - 1)


class AgentProcessCollector(ProcessCollector):
    """Register on the agent's registry instead of ``prometheus_client.ProcessCollector``."""

    def __init__(self) -> None:
        super().__init__(registry=None)

    def collect(self) -> Iterable[Metric]:
        families = list(super().collect())
        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        families.append(
            GaugeFamily(
                "process_virtual_memory_max_bytes",
                "Maximum amount of virtual memory available in bytes.",
                value=_UNLIMITED if soft == resource.RLIM_INFINITY else float(soft),
            )
        )
        return families
