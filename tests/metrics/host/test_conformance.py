"""Conformance with the real node_exporter (Debian's prometheus-node-exporter) on this host.

node_exporter runs with the agent's default filters (node_exporter 1.12's defaults;
Debian patches its own) and the same textfile directory. node_exporter is scraped, then
the agent, then node_exporter again, all within a second. Every node_* family the real
exporter exposes must be in the agent's output with the same type, label names and label
sets, except for the differences listed (with reasons) below; values that cannot drift
must be equal, and every counter must lie between node_exporter's two readings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import aiohttp

from agent.metrics.host.textfile import parse_exposition
from tests.metrics.host.conftest import Exporter

# Families node_exporter serves that the agent does not, and why.
NOT_SERVED = {
    "node_exporter_build_info": "names the node_exporter build; the agent is not node_exporter",
}
NOT_SERVED_PREFIXES = {
    "go_": "Go runtime internals of the node_exporter process",
    "promhttp_": "node_exporter's HTTP handler internals",
}

# Label names node_exporter 1.12 has and Debian's 1.5.0 does not: the agent follows 1.12.
_DEVICE_ERROR = (
    "node_exporter 1.12 labels filesystem series with the statfs error text; it is empty "
    "when healthy, and Prometheus drops empty labels, so the stored series are unchanged"
)
NEWER_LABELS: dict[str, tuple[frozenset[str], str]] = {
    **{
        f"node_filesystem_{name}": (frozenset({"device_error"}), _DEVICE_ERROR)
        for name in (
            "avail_bytes",
            "device_error",
            "files",
            "files_free",
            "free_bytes",
            "readonly",
            "size_bytes",
        )
    },
    "node_network_info": (frozenset({"adminstate"}), "node_exporter 1.12 adds adminstate (IFF_UP)"),
    "node_disk_info": (frozenset({"rotational"}), "node_exporter 1.12 adds rotational from sysfs"),
}

# Families whose label sets may be a superset of node_exporter 1.5.0's.
MORE_LABEL_SETS = {
    "node_scrape_collector_duration_seconds": "collectors newer than 1.5.0 (kernel_hung, watchdog)",
    "node_scrape_collector_success": "collectors newer than 1.5.0 (kernel_hung, watchdog)",
}

# Values that cannot change between two reads a second apart.
STABLE = {
    "node_boot_time_seconds",
    "node_memory_MemTotal_bytes",
    "node_memory_SwapTotal_bytes",
    "node_memory_Hugepagesize_bytes",
    "node_filesystem_size_bytes",
    "node_filesystem_files",
    "node_filesystem_readonly",
    "node_filesystem_device_error",
    "node_entropy_pool_size_bits",
    "node_filefd_maximum",
    "node_network_mtu_bytes",
    "node_network_iface_id",
    "node_network_protocol_type",
    "node_network_transmit_queue_length",
    "node_nf_conntrack_entries_limit",
    "node_os_info",
    "node_os_version",
    "node_uname_info",
    "node_disk_info",
    "node_time_zone_offset_seconds",
    "node_textfile_scrape_error",
    "node_textfile_mtime_seconds",
    "nexo_conformance_info",
    "node_timex_tick_seconds",
    "node_timex_status",
}
# Counters of different processes, not of the host.
NOT_HOST_COUNTERS = {"process_cpu_seconds_total"}


@dataclass
class Family:
    type: str
    samples: dict[frozenset[tuple[str, str]], float]

    @property
    def label_names(self) -> set[str]:
        return {name for labels in self.samples for name, _ in labels}


def parse(text: str) -> dict[str, Family]:
    families: dict[str, Family] = {}
    for parsed in parse_exposition(text):
        family = families.setdefault(parsed.name, Family(parsed.type, {}))
        for _, labels, value in parsed.samples:
            family.samples[frozenset(labels.items())] = value
    return families


def project(labels: frozenset[tuple[str, str]], drop: frozenset[str]) -> frozenset[tuple[str, str]]:
    return frozenset((k, v) for k, v in labels if k not in drop)


async def scrape(session: aiohttp.ClientSession, url: str) -> dict[str, Family]:
    async with session.get(url) as response:
        assert response.status == 200
        return parse(await response.text())


def compare(
    before: dict[str, Family], ours: dict[str, Family], after: dict[str, Family]
) -> list[str]:
    problems: list[str] = []
    for name, theirs in sorted(before.items()):
        if name in NOT_SERVED or name.startswith(tuple(NOT_SERVED_PREFIXES)):
            continue
        mine = ours.get(name)
        if mine is None:
            problems.append(f"{name}: missing")
            continue
        if mine.type != theirs.type:
            problems.append(f"{name}: type {mine.type}, node_exporter says {theirs.type}")
        extra, _ = NEWER_LABELS.get(name, (frozenset(), ""))
        if mine.label_names - extra != theirs.label_names:
            problems.append(
                f"{name}: labels {sorted(mine.label_names)} vs {sorted(theirs.label_names)}"
            )
            continue
        projected = {project(labels, extra): value for labels, value in mine.samples.items()}
        their_sets, my_sets = set(theirs.samples), set(projected)
        if name in MORE_LABEL_SETS:
            if not their_sets <= my_sets:
                problems.append(
                    f"{name}: missing series {sorted(map(sorted, their_sets - my_sets))}"
                )
        elif their_sets != my_sets:
            only_theirs = sorted(map(sorted, their_sets - my_sets))
            only_mine = sorted(map(sorted, my_sets - their_sets))
            problems.append(f"{name}: only node_exporter {only_theirs}, only agent {only_mine}")
            continue
        later = after.get(name)
        for labels, value in theirs.samples.items():
            mine_value = projected.get(labels)
            if mine_value is None:
                continue
            if name in STABLE:
                if not math.isclose(mine_value, value, rel_tol=1e-9, abs_tol=1e-6):
                    problems.append(f"{name}{dict(labels)}: {mine_value} != {value}")
            elif theirs.type == "counter" and name not in NOT_HOST_COUNTERS and later is not None:
                upper = later.samples.get(labels, value)
                # Per-CPU idle/iowait may step back a tick in the kernel; node_exporter
                # clamps against its own history, the agent against its own.
                slack = 0.05 if name.startswith("node_cpu") else abs(value) * 1e-12
                if not value - slack <= mine_value <= upper + slack:
                    problems.append(
                        f"{name}{dict(labels)}: {mine_value} outside [{value}, {upper}]"
                    )
    return problems


async def test_agent_serves_every_node_exporter_family_with_same_types_labels_and_values(
    node_exporter: Exporter, agent: Exporter
) -> None:
    problems: list[str] = []
    async with aiohttp.ClientSession() as session:
        # Other tests on this machine start containers and mounts; a series appearing
        # between two reads is a race, not a difference, so take the best of 3 rounds.
        for _ in range(3):
            before = await scrape(session, node_exporter.url)
            ours = await scrape(session, agent.url)
            after = await scrape(session, node_exporter.url)
            problems = compare(before, ours, after)
            if not problems:
                break
    assert not problems, "\n".join(problems)
    # The comparison really covered the families dashboards depend on.
    for name in (
        "node_cpu_seconds_total",
        "node_memory_MemAvailable_bytes",
        "node_filesystem_avail_bytes",
        "node_disk_io_time_seconds_total",
        "node_network_receive_bytes_total",
        "node_load1",
        "node_netstat_Tcp_CurrEstab",
        "node_vmstat_pgmajfault",
        "node_uname_info",
        "node_textfile_scrape_error",
        "nexo_conformance_info",
        "process_max_fds",
    ):
        assert name in before and name in ours, name


async def test_collector_success_agrees_with_node_exporter_on_this_host(
    node_exporter: Exporter, agent: Exporter
) -> None:
    """A host without the hardware (no ZFS, InfiniBand, Fibre Channel, IPVS, tape drive,
    bcache) reports the same success per collector as node_exporter, so alerts on
    ``node_scrape_collector_success == 0`` fire (or not) alike."""
    async with aiohttp.ClientSession() as session:
        theirs = await scrape(session, node_exporter.url)
        ours = await scrape(session, agent.url)
    name = "node_scrape_collector_success"
    their_success = {dict(labels)["collector"]: v for labels, v in theirs[name].samples.items()}
    our_success = {dict(labels)["collector"]: v for labels, v in ours[name].samples.items()}
    differ = {
        collector: (our_success.get(collector), value)
        for collector, value in their_success.items()
        if our_success.get(collector) != value
    }
    assert not differ, f"collector: (agent, node_exporter) {differ}"
    assert {"bcache", "fibrechannel", "infiniband", "ipvs", "tapestats", "zfs"} <= set(our_success)
