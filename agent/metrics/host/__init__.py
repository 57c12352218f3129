"""Host metrics: a drop-in replacement for node_exporter's Linux collectors.

One module per node_exporter collector, each registering itself (name, default on/off)
in :mod:`agent.metrics.host.registry`; importing a module here is all it takes to add one.
:func:`build_host_collector` turns the config into one prometheus_client collector that
runs the enabled collectors at scrape time and reports their duration and success.
"""

from __future__ import annotations

import difflib

from agent.config import HostMetricsConfig
from agent.metrics.host import (  # noqa: F401  (each import registers a collector)
    arp,
    bcache,
    bonding,
    btrfs,
    conntrack,
    cpu,
    cpufreq,
    diskstats,
    dmi,
    edac,
    entropy,
    fibrechannel,
    filefd,
    filesystem,
    hwmon,
    infiniband,
    ipvs,
    kernel_hung,
    loadavg,
    mdadm,
    meminfo,
    netclass,
    netdev,
    netstat,
    nfs,
    nfsd,
    nvme,
    os_release,
    powersupplyclass,
    pressure,
    rapl,
    schedstat,
    selinux,
    sockstat,
    softnet,
    stat,
    tapestats,
    textfile,
    thermal_zone,
    time,
    timex,
    udp_queues,
    uname,
    vmstat,
    watchdog,
    xfs,
    zfs,
)
from agent.metrics.host.node import NodeCollector
from agent.metrics.host.process import AgentProcessCollector
from agent.metrics.host.registry import enabled_names, registrations

__all__ = ["AgentProcessCollector", "NodeCollector", "build_host_collector", "collector_names"]


def collector_names() -> list[str]:
    """Every collector this agent knows, enabled by default or not."""
    return list(registrations())


def build_host_collector(cfg: HostMetricsConfig) -> NodeCollector:
    """The collector to register on the agent's registry; raises ValueError on unknown names."""
    known = registrations()
    for name in cfg.collectors:
        if name not in known:
            close = difflib.get_close_matches(name, list(known), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"metrics.host.collectors: unknown collector {name!r}{hint}")
    return NodeCollector(cfg, [(name, known[name].factory(cfg)) for name in enabled_names(cfg)])
