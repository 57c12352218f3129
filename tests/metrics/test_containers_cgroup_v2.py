"""Container metrics on cgroup v2, against directory trees in the kernel's exact formats.

cgroup v2 cannot be mounted on the CI machines (they boot the v1+v2 hybrid layout), so
each test builds a cgroup2 tree under ``tmp_path`` whose files are written exactly as
Documentation/admin-guide/cgroup-v2.rst and Documentation/accounting/psi.rst show them,
for both Docker cgroup drivers, plus a fake ``/proc`` for the PID fallback, the network
namespace view and the partition table. The same collector code reads them as it reads
``/sys/fs/cgroup``; only the roots differ.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from agent.config import ContainerMetricsConfig
from agent.metrics.containers import ContainerCollector, build_container_collector
from agent.metrics.containers.collector import SPEC_REFRESH_INTERVAL
from agent.metrics.server import render_text

CID_SYSTEMD = "a" * 64
CID_CGROUPFS = "b" * 64
CID_CUSTOM = "c" * 64

CPU_STAT = """usage_usec 12345678
user_usec 10000000
system_usec 2345678
core_sched.force_idle_usec 0
nr_periods 500
nr_throttled 120
throttled_usec 3400000
nr_bursts 2
burst_usec 1500
"""
MEMORY_STAT = """anon 52428800
file 41943040
kernel 3145728
kernel_stack 65536
pagetables 262144
sec_pagetables 0
percpu 1024
sock 0
vmalloc 0
shmem 4096
zswap 0
zswapped 0
file_mapped 8388608
file_dirty 12288
file_writeback 4096
swapcached 0
anon_thp 0
file_thp 0
shmem_thp 0
inactive_anon 4194304
active_anon 48234496
inactive_file 20971520
active_file 20971520
unevictable 0
slab_reclaimable 1048576
slab_unreclaimable 524288
slab 1572864
workingset_refault_anon 3
workingset_refault_file 11
workingset_activate_anon 0
workingset_activate_file 5
workingset_restore_anon 0
workingset_restore_file 2
workingset_nodereclaim 0
pgdemote_kswapd 0
pgdemote_direct 0
pgdemote_khugepaged 0
pgscan 140
pgsteal 130
pgscan_kswapd 100
pgscan_direct 40
pgscan_khugepaged 0
pgsteal_kswapd 90
pgsteal_direct 40
pgsteal_khugepaged 0
pgfault 250000
pgmajfault 42
pgrefill 0
pgactivate 1000
pgdeactivate 10
pglazyfree 0
pglazyfreed 0
zswpin 0
zswpout 0
thp_fault_alloc 0
thp_collapse_alloc 0
"""
MEMORY_EVENTS = "low 0\nhigh 3\nmax 7\noom 2\noom_kill 1\noom_group_kill 0\n"
IO_STAT = (
    "8:0 rbytes=1048576 wbytes=2097152 rios=16 wios=32 dbytes=0 dios=0\n"
    "253:7 rbytes=4096 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n"
)
CPU_PRESSURE = (
    "some avg10=1.50 avg60=0.80 avg300=0.20 total=1234567\n"
    "full avg10=0.50 avg60=0.10 avg300=0.00 total=234567\n"
)
MEMORY_PRESSURE = (
    "some avg10=0.00 avg60=0.00 avg300=0.00 total=5000\n"
    "full avg10=0.00 avg60=0.00 avg300=0.00 total=3000\n"
)
IO_PRESSURE = (
    "some avg10=0.00 avg60=0.00 avg300=0.00 total=70000\n"
    "full avg10=0.00 avg60=0.00 avg300=0.00 total=60000\n"
)
NET_DEV = """Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:    9000      90    0    0    0     0          0         0     9000      90    0    0    0     0       0          0
  eth0: 123456789  98765    1    2    0     0          0        10 98765432   54321    3    4    0     0       0          0
veth1a2b:    500       5    0    0    0     0          0         0      600       6    0    0    0     0       0          0
"""  # noqa: E501  (the kernel's exact layout)
PARTITIONS = (
    "major minor  #blocks  name\n\n   8        0  488386584 sda\n   8        1     524288 sda1\n"
)

# One limited container: every file of a cgroup with the cpu, memory, io and pids
# controllers enabled, on a kernel with PSI and memory.peak (6.x).
LIMITED = {
    "cgroup.controllers": "cpuset cpu io memory hugetlb pids rdma misc\n",
    "cgroup.events": "populated 1\nfrozen 0\n",
    "cgroup.procs": "4242\n4243\n",
    "cpu.stat": CPU_STAT,
    "cpu.max": "50000 100000\n",
    "cpu.weight": "100\n",
    "memory.current": "104857600\n",
    "memory.peak": "150000000\n",
    "memory.max": "268435456\n",
    "memory.low": "67108864\n",
    "memory.min": "0\n",
    "memory.high": "max\n",
    "memory.swap.current": "1048576\n",
    "memory.swap.max": "max\n",
    "memory.stat": MEMORY_STAT,
    "memory.events": MEMORY_EVENTS,
    "io.stat": IO_STAT,
    "pids.current": "5\n",
    "pids.max": "max\n",
    "cpu.pressure": CPU_PRESSURE,
    "memory.pressure": MEMORY_PRESSURE,
    "io.pressure": IO_PRESSURE,
}
# An unlimited container on an older kernel: no memory.peak, no PSI (psi=0), no io.
UNLIMITED = {
    "cgroup.controllers": "cpu memory pids\n",
    "cpu.stat": "usage_usec 500\nuser_usec 300\nsystem_usec 200\nnr_periods 0\n"
    "nr_throttled 0\nthrottled_usec 0\n",
    "cpu.max": "max 100000\n",
    "cpu.weight": "39\n",
    "memory.current": "4096\n",
    "memory.max": "max\n",
    "memory.low": "0\n",
    "memory.swap.current": "0\n",
    "memory.swap.max": "0\n",
    "memory.stat": "anon 4096\nfile 0\nfile_mapped 0\ninactive_file 8192\nactive_file 0\n"
    "pgfault 10\npgmajfault 0\n",
    "memory.events": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n",
    "pids.current": "1\n",
    "pids.max": "100\n",
}


@dataclass(frozen=True)
class FakeContainer:
    id: str
    name: str
    pid: int
    image: str = "registry.example/app:1.2"
    labels: Mapping[str, str] = field(default_factory=dict)
    running: bool = True
    started_at: int = 1_700_000_000_123_456_789  # ns, as the inventory keeps it
    created: int = 1_699_999_990_000_000_000
    cgroup_parent: str = ""


class Inventory:
    def __init__(self, containers: Iterable[FakeContainer] = ()) -> None:
        self.items = {c.id: c for c in containers}

    @property
    def containers(self) -> Mapping[str, FakeContainer]:
        return self.items


@dataclass
class Host:
    """A fake host: a cgroup2 mount and a /proc."""

    cgroupfs: Path
    procfs: Path

    def cgroup(self, relative: str, files: Mapping[str, str]) -> Path:
        directory = self.cgroupfs / relative.lstrip("/")
        directory.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (directory / name).write_text(text)
        return directory

    def process(self, pid: int, cgroup: str | None = None, net_dev: str = NET_DEV) -> None:
        proc = self.procfs / str(pid)
        (proc / "net").mkdir(parents=True, exist_ok=True)
        (proc / "net" / "dev").write_text(net_dev)
        if cgroup is not None:
            (proc / "cgroup").write_text(f"0::{cgroup}\n")

    def config(self, **overrides: object) -> ContainerMetricsConfig:
        return ContainerMetricsConfig(cgroupfs=self.cgroupfs, procfs=self.procfs, **overrides)


@pytest.fixture
def host(tmp_path: Path) -> Host:
    cgroupfs, procfs = tmp_path / "cgroup", tmp_path / "proc"
    cgroupfs.mkdir()
    procfs.mkdir()
    # The root of a cgroup2 mount: what tells v2 from v1.
    (cgroupfs / "cgroup.controllers").write_text("cpuset cpu io memory hugetlb pids rdma misc\n")
    (cgroupfs / "cgroup.subtree_control").write_text("cpuset cpu io memory pids\n")
    (procfs / "partitions").write_text(PARTITIONS)
    return Host(cgroupfs, procfs)


Series = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(collector: ContainerCollector) -> Series:
    """Render and parse the exposition text, as Prometheus would see it."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    text = generate_latest(registry).decode()
    series: Series = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            assert sample.timestamp is None
            series[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return series


def pick(series: Series, metric: str, **labels: str) -> dict[frozenset[tuple[str, str]], float]:
    return {
        key_labels: value
        for (name, key_labels), value in series.items()
        if name == metric and set(labels.items()) <= key_labels
    }


def one(series: Series, metric: str, **labels: str) -> float:
    found = pick(series, metric, **labels)
    assert len(found) == 1, f"{metric}{labels}: {found}"
    return next(iter(found.values()))


def test_systemd_driver_limited_container_reports_every_family_from_the_v2_files(
    host: Host,
) -> None:
    host.cgroup(f"system.slice/docker-{CID_SYSTEMD}.scope", LIMITED)
    host.process(4242)
    source = Inventory([FakeContainer(CID_SYSTEMD, "/web", 4242)])
    s = scrape(build_container_collector(host.config(percpu=True), source))
    who = {"name": "web", "id": f"/system.slice/docker-{CID_SYSTEMD}.scope"}

    # CPU: cpu.stat in microseconds; v2 has no per-CPU split, so cpu="total" only.
    assert pick(s, "container_cpu_usage_seconds_total", **who) == {
        frozenset({**who, "image": "registry.example/app:1.2", "cpu": "total"}.items()): 12.345678
    }
    assert one(s, "container_cpu_user_seconds_total", **who) == 10.0
    assert one(s, "container_cpu_system_seconds_total", **who) == 2.345678
    assert one(s, "container_cpu_cfs_periods_total", **who) == 500
    assert one(s, "container_cpu_cfs_throttled_periods_total", **who) == 120
    assert one(s, "container_cpu_cfs_throttled_seconds_total", **who) == 3.4
    assert one(s, "container_cpu_cfs_burst_periods_total", **who) == 2
    assert one(s, "container_cpu_cfs_burst_seconds_total", **who) == 0.0015
    assert one(s, "container_spec_cpu_quota", **who) == 50000
    assert one(s, "container_spec_cpu_period", **who) == 100000
    # cpu.weight 100 -> shares as cAdvisor converts it: 2 + (100-1)*262142/9999.
    assert one(s, "container_spec_cpu_shares", **who) == 2597

    # Memory
    assert one(s, "container_memory_usage_bytes", **who) == 104857600
    assert one(s, "container_memory_working_set_bytes", **who) == 104857600 - 20971520
    assert one(s, "container_memory_max_usage_bytes", **who) == 150000000
    assert one(s, "container_memory_rss", **who) == 52428800
    assert one(s, "container_memory_cache", **who) == 41943040
    assert one(s, "container_memory_mapped_file", **who) == 8388608
    assert one(s, "container_memory_swap", **who) == 1048576
    assert one(s, "container_memory_total_active_file_bytes", **who) == 20971520
    assert one(s, "container_memory_total_inactive_file_bytes", **who) == 20971520
    assert one(s, "container_memory_total_active_anon_bytes", **who) == 48234496
    assert one(s, "container_memory_total_inactive_anon_bytes", **who) == 4194304
    assert one(s, "container_memory_file_dirty_bytes", **who) == 12288
    assert one(s, "container_memory_file_writeback_bytes", **who) == 4096
    assert one(s, "container_memory_pgscan_total", **who) == 140
    assert one(s, "container_memory_pgsteal_total", **who) == 130
    assert one(s, "container_memory_workingset_refault_anon_total", **who) == 3
    assert one(s, "container_memory_workingset_refault_file_total", **who) == 11
    for scope in ("container", "hierarchy"):
        assert one(s, "container_memory_failures_total", failure_type="pgfault", scope=scope) == (
            250000
        )
        assert (
            one(s, "container_memory_failures_total", failure_type="pgmajfault", scope=scope) == 42
        )
    # v2 has no memory.failcnt: the limit-hit count is memory.events "max".
    assert one(s, "container_memory_failcnt", **who) == 7
    assert one(s, "container_memory_events_max_total", **who) == 7
    assert one(s, "container_memory_events_high_total", **who) == 3
    assert one(s, "container_oom_events_total", **who) == 1
    assert one(s, "container_spec_memory_limit_bytes", **who) == 268435456
    assert one(s, "container_spec_memory_swap_limit_bytes", **who) == 0  # "max"
    # Docker (runc) writes --memory-reservation to memory.low on v2.
    assert one(s, "container_spec_memory_reservation_limit_bytes", **who) == 67108864

    # Block I/O from io.stat, devices named from /proc/partitions (unknown: major:minor).
    assert one(s, "container_fs_reads_bytes_total", device="/dev/sda") == 1048576
    assert one(s, "container_fs_writes_bytes_total", device="/dev/sda") == 2097152
    assert one(s, "container_fs_reads_total", device="/dev/sda") == 16
    assert one(s, "container_fs_writes_total", device="/dev/sda") == 32
    assert one(s, "container_fs_reads_bytes_total", device="253:7") == 4096
    usage = pick(s, "container_blkio_device_usage_total", device="/dev/sda")
    assert {dict(k)["operation"]: v for k, v in usage.items()} == {
        "Read": 1048576,
        "Write": 2097152,
    }
    assert all(dict(k)["major"] == "8" and dict(k)["minor"] == "0" for k in usage)

    # Network from the container's netns view; lo and veth* are skipped like cAdvisor.
    assert {dict(k)["interface"] for k in pick(s, "container_network_receive_bytes_total")} == {
        "eth0"
    }
    assert one(s, "container_network_receive_bytes_total", interface="eth0") == 123456789
    assert one(s, "container_network_receive_packets_total", interface="eth0") == 98765
    assert one(s, "container_network_receive_errors_total", interface="eth0") == 1
    assert one(s, "container_network_receive_packets_dropped_total", interface="eth0") == 2
    assert one(s, "container_network_transmit_bytes_total", interface="eth0") == 98765432
    assert one(s, "container_network_transmit_packets_total", interface="eth0") == 54321
    assert one(s, "container_network_transmit_errors_total", interface="eth0") == 3
    assert one(s, "container_network_transmit_packets_dropped_total", interface="eth0") == 4

    # Pids, pressure (PSI totals are microseconds), identity and time.
    assert one(s, "container_threads", **who) == 5
    assert one(s, "container_threads_max", **who) == 0  # "max": cAdvisor's "infinity"
    assert one(s, "container_pressure_cpu_waiting_seconds_total", **who) == 1.234567
    assert one(s, "container_pressure_cpu_stalled_seconds_total", **who) == 0.234567
    assert one(s, "container_pressure_memory_waiting_seconds_total", **who) == 0.005
    assert one(s, "container_pressure_memory_stalled_seconds_total", **who) == 0.003
    assert one(s, "container_pressure_io_waiting_seconds_total", **who) == 0.07
    assert one(s, "container_pressure_io_stalled_seconds_total", **who) == 0.06
    assert one(s, "container_start_time_seconds", **who) == 1_700_000_000
    assert one(s, "container_creation_time_seconds", **who) == 1_699_999_990
    assert one(s, "container_last_seen", **who) > 1_700_000_000
    assert one(s, "container_scrape_error") == 0


def test_cgroupfs_driver_unlimited_container_omits_what_the_kernel_does_not_provide(
    host: Host,
) -> None:
    host.cgroup(f"docker/{CID_CGROUPFS}", UNLIMITED)
    host.process(77)
    source = Inventory([FakeContainer(CID_CGROUPFS, "batch", 77)])
    s = scrape(build_container_collector(host.config(), source))
    who = {"id": f"/docker/{CID_CGROUPFS}", "name": "batch"}

    assert one(s, "container_cpu_usage_seconds_total", cpu="total", **who) == 0.0005
    # No quota: no CFS counters and no quota spec (cAdvisor's condition), period stays.
    assert not pick(s, "container_cpu_cfs_periods_total")
    assert not pick(s, "container_spec_cpu_quota")
    assert one(s, "container_spec_cpu_period", **who) == 100000
    assert one(s, "container_spec_cpu_shares", **who) == 998  # Docker's default weight 39
    assert one(s, "container_spec_memory_limit_bytes", **who) == 0  # "max"
    assert one(s, "container_spec_memory_swap_limit_bytes", **who) == 0
    # inactive_file above usage: the working set is clamped at 0, not negative.
    assert one(s, "container_memory_working_set_bytes", **who) == 0
    assert one(s, "container_threads_max", **who) == 100
    for absent in (
        "container_memory_max_usage_bytes",  # no memory.peak before Linux 5.19
        "container_pressure_cpu_waiting_seconds_total",  # PSI off
        "container_fs_reads_bytes_total",  # io controller not enabled
    ):
        assert not pick(s, absent), absent
    assert one(s, "container_scrape_error") == 0


def test_custom_cgroup_parent_is_found_through_proc_pid_cgroup(host: Host) -> None:
    path = "/custom.slice/tenant-a/ctr-c"
    host.cgroup(path, UNLIMITED)
    host.process(555, cgroup=path)
    source = Inventory([FakeContainer(CID_CUSTOM, "odd", 555, cgroup_parent="tenant-a")])
    s = scrape(build_container_collector(host.config(), source))
    assert one(s, "container_memory_usage_bytes", name="odd") == 4096
    assert one(s, "container_last_seen", name="odd", id=path) > 0


def test_systemd_cgroup_parent_slice_is_expanded_like_systemd(host: Host) -> None:
    host.cgroup(f"/prod.slice/prod-web.slice/docker-{CID_SYSTEMD}.scope", UNLIMITED)
    source = Inventory([FakeContainer(CID_SYSTEMD, "sliced", 0, cgroup_parent="prod-web.slice")])
    s = scrape(build_container_collector(host.config(), source))
    assert one(s, "container_memory_usage_bytes", name="sliced") == 4096
    # PID 0 (not known yet): cgroup metrics still flow, network needs a process.
    assert not pick(s, "container_network_receive_bytes_total")


def test_container_without_a_cgroup_or_not_running_yields_no_series(host: Host) -> None:
    host.cgroup(f"docker/{CID_CGROUPFS}", UNLIMITED)
    source = Inventory(
        [
            FakeContainer(CID_SYSTEMD, "ghost", 99999),  # no cgroup dir, no /proc entry
            FakeContainer(CID_CGROUPFS, "stopped", 0, running=False),
        ]
    )
    s = scrape(build_container_collector(host.config(), source))
    assert set(s) == {("container_scrape_error", frozenset())}


def test_container_exiting_between_listing_and_reading_leaves_no_partial_series(
    host: Host,
) -> None:
    directory = host.cgroup(f"docker/{CID_CGROUPFS}", UNLIMITED)
    host.process(77)
    source = Inventory([FakeContainer(CID_CGROUPFS, "brief", 77)])
    collector = build_container_collector(host.config(), source)
    assert one(scrape(collector), "container_memory_usage_bytes", name="brief") == 4096

    # The cgroup is removed (rmdir takes its files with it) while the inventory still
    # lists the container as running with its cgroup path cached.
    for name in os.listdir(directory):
        (directory / name).unlink()
    directory.rmdir()
    s = scrape(collector)
    assert not [key for key in s if ("name", "brief") in key[1]]
    assert one(s, "container_scrape_error") == 0


def test_unreadable_cgroup_file_drops_only_its_families_and_flags_the_scrape(
    host: Host, caplog: pytest.LogCaptureFixture
) -> None:
    directory = host.cgroup(f"docker/{CID_CGROUPFS}", UNLIMITED)
    host.process(77)
    (directory / "memory.stat").unlink()
    # A write-only kernfs file refuses reads with EACCES even for root: a genuinely
    # unreadable cgroup file. Without one, a directory in its place (EISDIR) stands in.
    write_only = Path("/sys/fs/cgroup/memory/memory.force_empty")
    if write_only.exists():
        (directory / "memory.stat").symlink_to(write_only)
    else:
        (directory / "memory.stat").mkdir()
    collector = build_container_collector(
        host.config(), Inventory([FakeContainer(CID_CGROUPFS, "x", 77)])
    )
    with caplog.at_level(logging.WARNING):
        s = scrape(collector)
        scrape(collector)
    assert one(s, "container_scrape_error") == 1
    assert not pick(s, "container_memory_rss")
    assert one(s, "container_memory_usage_bytes", name="x") == 4096
    assert one(s, "container_cpu_usage_seconds_total", name="x") == 0.0005
    warnings = [r for r in caplog.records if "memory.stat" in r.getMessage()]
    assert len(warnings) == 1  # once, not once per scrape


def test_file_in_an_unknown_format_skips_that_container_not_the_page(host: Host) -> None:
    host.cgroup(f"docker/{CID_CGROUPFS}", {**UNLIMITED, "memory.current": "lots\n"})
    host.cgroup(f"system.slice/docker-{CID_SYSTEMD}.scope", UNLIMITED)
    source = Inventory(
        [FakeContainer(CID_CGROUPFS, "garbled", 0), FakeContainer(CID_SYSTEMD, "fine", 0)]
    )
    s = scrape(build_container_collector(host.config(), source))
    assert one(s, "container_scrape_error") == 1
    assert not pick(s, "container_last_seen", name="garbled")
    assert one(s, "container_memory_usage_bytes", name="fine") == 4096


def test_labels_are_sanitised_unioned_and_escaped_like_cadvisor(host: Host) -> None:
    host.cgroup(f"docker/{CID_CGROUPFS}", UNLIMITED)
    host.cgroup(f"system.slice/docker-{CID_SYSTEMD}.scope", UNLIMITED)
    labels = {
        "com.docker.compose.service": "api",
        "org.label-schema.group": "monitoring",
        "9lives": "cat",
        "quote": 'say "hi"\\ \n bye',
        "ünïcode.key": "välue",
        # Two keys that sanitise to one name: the first in key order wins.
        "dup.key": "first",
        "dup-key": "second",
    }
    source = Inventory(
        [
            FakeContainer(CID_CGROUPFS, "labelled", 0, labels=labels),
            FakeContainer(CID_SYSTEMD, "plain", 0),
        ]
    )
    s = scrape(build_container_collector(host.config(), source))
    labelled = dict(next(iter(pick(s, "container_last_seen", name="labelled"))))
    plain = dict(next(iter(pick(s, "container_last_seen", name="plain"))))
    assert labelled["container_label_com_docker_compose_service"] == "api"
    assert labelled["container_label_org_label_schema_group"] == "monitoring"
    assert labelled["container_label_9lives"] == "cat"
    assert labelled["container_label_quote"] == 'say "hi"\\ \n bye'
    assert labelled["container_label__n_code_key"] == "välue"
    assert labelled["container_label_dup_key"] == "second"  # "dup-key" < "dup.key"
    # Every series carries the union of label names; a container lacking one has "".
    assert set(plain) == set(labelled)
    assert plain["container_label_com_docker_compose_service"] == ""


def test_labels_allow_limits_exported_docker_labels(host: Host) -> None:
    host.cgroup(f"docker/{CID_CGROUPFS}", UNLIMITED)
    labels = {f"com.example.l{i:03d}": f"v{i}" for i in range(300)}
    labels["com.docker.compose.project"] = "shop"
    source = Inventory([FakeContainer(CID_CGROUPFS, "many", 0, labels=labels)])

    everything = scrape(build_container_collector(host.config(), source))
    names = dict(next(iter(pick(everything, "container_last_seen"))))
    assert len([n for n in names if n.startswith("container_label_")]) == 301
    assert names["container_label_com_example_l299"] == "v299"

    allowed = scrape(
        build_container_collector(host.config(labels_allow=["com.docker.compose.*"]), source)
    )
    names = dict(next(iter(pick(allowed, "container_last_seen"))))
    assert [n for n in names if n.startswith("container_label_")] == [
        "container_label_com_docker_compose_project"
    ]

    none = scrape(build_container_collector(host.config(labels_allow=[]), source))
    assert set(dict(next(iter(pick(none, "container_last_seen"))))) == {"id", "name", "image"}


def test_limits_are_reread_after_the_refresh_interval_and_on_restart(host: Host) -> None:
    directory = host.cgroup(f"docker/{CID_CGROUPFS}", LIMITED)
    now = [1_800_000_000.0]
    source = Inventory([FakeContainer(CID_CGROUPFS, "tuned", 10)])
    collector = ContainerCollector(host.config(), source, clock=lambda: now[0])
    assert one(scrape(collector), "container_spec_memory_limit_bytes") == 268435456

    (directory / "memory.max").write_text("536870912\n")  # docker update --memory 512m
    (directory / "memory.current").write_text("1\n")
    s = scrape(collector)
    assert one(s, "container_spec_memory_limit_bytes") == 268435456  # cached
    assert one(s, "container_memory_usage_bytes") == 1  # usage is always fresh

    now[0] += SPEC_REFRESH_INTERVAL
    assert one(scrape(collector), "container_spec_memory_limit_bytes") == 536870912

    (directory / "memory.max").write_text("max\n")
    source.items[CID_CGROUPFS] = FakeContainer(CID_CGROUPFS, "tuned", 11)  # restarted
    assert one(scrape(collector), "container_spec_memory_limit_bytes") == 0


def test_files_stay_open_between_scrapes_within_the_budget_and_are_given_back(
    host: Host,
) -> None:
    first = host.cgroup(f"docker/{CID_CGROUPFS}", UNLIMITED)
    host.cgroup(f"system.slice/docker-{CID_SYSTEMD}.scope", UNLIMITED)
    source = Inventory(
        [FakeContainer(CID_CGROUPFS, "one", 5), FakeContainer(CID_SYSTEMD, "two", 6)]
    )
    collector = ContainerCollector(host.config(), source)
    held = collector.held_files
    held.limit = len(UNLIMITED) + 3  # all of one container's files, a few of the other's
    s = scrape(collector)
    assert held.held == held.limit
    assert one(s, "container_memory_usage_bytes", name="one") == 4096
    assert one(s, "container_memory_usage_bytes", name="two") == 4096

    # Rewritten in place, as the kernel regenerates them: a held file reads the new value,
    # and so does one read past the budget.
    (first / "memory.current").write_text("8192\n")
    for directory in (first, host.cgroupfs / f"system.slice/docker-{CID_SYSTEMD}.scope"):
        (directory / "memory.stat").write_text(
            UNLIMITED["memory.stat"].replace("pgfault 10", "pgfault 11")
        )
    s = scrape(collector)
    assert one(s, "container_memory_usage_bytes", name="one") == 8192
    assert {
        v
        for v in pick(
            s, "container_memory_failures_total", failure_type="pgfault", scope="container"
        ).values()
    } == {11}
    assert held.held == held.limit

    del source.items[CID_CGROUPFS]
    scrape(collector)
    assert held.held == len(collector._resolver._cache[CID_SYSTEMD].fds) <= held.limit
    collector.close()
    assert held.held == 0


def test_without_a_budget_every_read_opens_the_file(host: Host) -> None:
    host.cgroup(f"docker/{CID_CGROUPFS}", UNLIMITED)
    collector = ContainerCollector(host.config(), Inventory([FakeContainer(CID_CGROUPFS, "x", 5)]))
    collector.held_files.limit = 0
    assert one(scrape(collector), "container_memory_usage_bytes") == 4096
    assert collector.held_files.held == 0


def test_listing_failure_is_reported_as_scrape_error(host: Host) -> None:
    class Broken:
        @property
        def containers(self) -> Mapping[str, FakeContainer]:
            raise RuntimeError("inventory is gone")

    s = scrape(build_container_collector(host.config(), Broken()))
    assert s == {("container_scrape_error", frozenset()): 1.0}


def test_rendered_text_is_byte_identical_to_generate_latest_with_escaped_labels(
    host: Host,
) -> None:
    # The families render their own lines for /metrics; every label layout (cpu, device,
    # interface, failure_type+scope, device+major+minor+operation) and escaped label
    # values must come out as prometheus_client's encoder writes them from the samples.
    host.cgroup(f"system.slice/docker-{CID_SYSTEMD}.scope", LIMITED)
    host.cgroup(f"docker/{CID_CGROUPFS}", UNLIMITED)
    host.process(4242)
    labels = {"quote": 'say "hi"\\ \n bye', "a{b}": "}{", "zz": "last"}
    source = Inventory(
        [
            FakeContainer(CID_SYSTEMD, "/web", 4242, labels=labels),
            FakeContainer(CID_CGROUPFS, "plain", 0),
        ]
    )
    registry = CollectorRegistry(auto_describe=False)
    registry.register(build_container_collector(host.config(percpu=True), source))
    frozen = list(registry.collect())
    assert {m.name for m in frozen} >= {
        "container_cpu_usage_seconds",
        "container_memory_failures",
        "container_blkio_device_usage",
        "container_network_receive_bytes",
    }

    class Frozen:
        def collect(self) -> list[Metric]:
            return frozen

    text = render_text(Frozen())
    assert text == generate_latest(Frozen())
    assert b'container_label_quote="say \\"hi\\"\\\\ \\n bye"' in text
    # A second scrape reuses each container's rendered labels and still agrees.
    assert render_text(registry) == generate_latest(registry)
