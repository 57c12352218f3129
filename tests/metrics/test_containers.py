"""Container metrics against a real dockerd on cgroup v1 (these machines boot v1+v2 hybrid).

Every container here is real: started with Docker's own limit flags, made to burn CPU,
allocate memory, get OOM-killed, write to disk or pass frames over a veth pair, and each
family is checked against what the kernel says (the cgroup files, read independently
after the scrape) and against Docker's stats API (what ``docker stats`` renders) where
Docker reports the same quantity. Scrapes go through the text exposition and
prometheus_client's parser, so every test also proves the output parses.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from agent.config import ContainerMetricsConfig
from agent.metrics.containers import ContainerCollector, build_container_collector
from tests.conftest import require, require_binary

MiB = 1024 * 1024
CGROUP_V1 = Path("/sys/fs/cgroup")

pytestmark = pytest.mark.docker


@dataclass(frozen=True)
class InspectedContainer:
    """A ``ContainerLike`` built from ``docker inspect``, as the inventory would hold it."""

    id: str
    name: str
    image: str
    labels: Mapping[str, str]
    pid: int
    running: bool
    started_at: datetime | None
    created: datetime | None
    cgroup_parent: str


def docker_time(value: str) -> datetime | None:
    """RFC 3339 with nanoseconds (Docker) -> datetime; Go's zero time -> None."""
    if not value or value.startswith("0001-"):
        return None
    value = re.sub(r"(\.\d{6})\d+", r"\1", value)
    return datetime.fromisoformat(value)


def inspected(container: Any) -> InspectedContainer:
    a = container.client.api.inspect_container(container.id)
    return InspectedContainer(
        id=a["Id"],
        name=a["Name"],
        image=a["Config"]["Image"],
        labels=a["Config"]["Labels"] or {},
        pid=a["State"]["Pid"],
        running=a["State"]["Running"],
        started_at=docker_time(a["State"]["StartedAt"]),
        created=docker_time(a["Created"]),
        cgroup_parent=a["HostConfig"].get("CgroupParent") or "",
    )


class Inventory:
    """What discovery would list: a fixed snapshot, or re-inspected on every scrape."""

    def __init__(self, *containers: Any, live: bool = True) -> None:
        self.tracked = list(containers)
        self.live = live
        self.snapshot = {c.id: inspected(c) for c in containers}

    @property
    def containers(self) -> Mapping[str, InspectedContainer]:
        if not self.live:
            return self.snapshot
        found = {}
        for container in self.tracked:
            try:
                found[container.id] = inspected(container)
            except Exception:  # removed: discovery would have dropped it
                continue
        return found


Series = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(collector: ContainerCollector) -> Series:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    series: Series = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            assert sample.timestamp is None  # no explicit timestamps, unlike cAdvisor
            series[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return series


def pick(series: Series, metric: str, **labels: str) -> dict[frozenset[tuple[str, str]], float]:
    return {
        key: value
        for (name, key), value in series.items()
        if name == metric and set(labels.items()) <= key
    }


def one(series: Series, metric: str, **labels: str) -> float:
    found = pick(series, metric, **labels)
    assert len(found) == 1, f"{metric}{labels}: {found}"
    return next(iter(found.values()))


def cgroup_file(controller: str, container: Any, name: str) -> str:
    return (CGROUP_V1 / controller / "docker" / container.id / name).read_text()


def keyed(text: str) -> dict[str, int]:
    fields = text.split()
    return {k: int(v) for k, v in zip(fields[::2], fields[1::2], strict=True)}


def wait_for_log(container: Any, marker: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while marker not in container.logs().decode(errors="replace"):
        assert time.monotonic() < deadline, f"{marker!r} never logged: {container.logs()!r}"
        time.sleep(0.1)


def docker_stats(container: Any) -> dict[str, Any]:
    """Docker's stats API, the data ``docker stats --no-stream`` renders."""
    stats: dict[str, Any] = container.stats(stream=False, one_shot=True)
    return stats


@pytest.fixture(scope="module", autouse=True)
def cgroup_v1_machine() -> None:
    require((CGROUP_V1 / "memory").is_dir(), "cgroup v1 memory controller at /sys/fs/cgroup")


@pytest.fixture
def collector_for() -> Iterator[Callable[..., ContainerCollector]]:
    built: list[ContainerCollector] = []

    def build(
        source: Inventory, data_root: str = "/var/lib/docker", **cfg: Any
    ) -> ContainerCollector:
        collector = build_container_collector(
            ContainerMetricsConfig(**cfg), source, data_root=data_root
        )
        built.append(collector)
        return collector

    yield build
    for collector in built:
        collector.close()


def test_cpu_burner_is_throttled_to_its_quota_and_agrees_with_cpuacct_and_docker(
    run_container: Callable[..., Any], collector_for: Callable[..., ContainerCollector]
) -> None:
    c = run_container(
        "yes > /dev/null & p=$!; sleep 1.5; kill $p; echo done; exec sleep 3600",
        nano_cpus=500_000_000,  # --cpus 0.5
    )
    wait_for_log(c, "done")
    time.sleep(0.2)  # let `yes` die
    s = scrape(collector_for(Inventory(c)))
    who = {"name": c.name, "id": f"/docker/{c.id}"}

    per_cpu = pick(s, "container_cpu_usage_seconds_total", **who)
    assert all(re.fullmatch(r"cpu\d\d", dict(k)["cpu"]) for k in per_cpu)
    used = sum(per_cpu.values())
    assert abs(used - int(cgroup_file("cpuacct", c, "cpuacct.usage")) / 1e9) < 0.005
    # 1.5 s of a busy loop under a 0.5 CPU quota: about 0.75 s, never much more.
    assert 0.2 < used < 0.75 + 0.1
    ticks = keyed(cgroup_file("cpuacct", c, "cpuacct.stat"))
    assert one(s, "container_cpu_user_seconds_total", **who) == ticks["user"] / 100
    assert one(s, "container_cpu_system_seconds_total", **who) == ticks["system"] / 100

    cfs = keyed(cgroup_file("cpu", c, "cpu.stat"))
    throttled = one(s, "container_cpu_cfs_throttled_periods_total", **who)
    assert throttled > 0
    assert throttled == cfs["nr_throttled"]
    assert one(s, "container_cpu_cfs_periods_total", **who) == cfs["nr_periods"] >= throttled
    assert one(s, "container_cpu_cfs_throttled_seconds_total", **who) == cfs["throttled_time"] / 1e9
    assert one(s, "container_cpu_cfs_throttled_seconds_total", **who) > 0
    assert one(s, "container_spec_cpu_quota", **who) == 50000
    assert one(s, "container_spec_cpu_period", **who) == 100000
    assert one(s, "container_spec_cpu_shares", **who) == 1024

    stats = docker_stats(c)["cpu_stats"]
    assert abs(stats["cpu_usage"]["total_usage"] / 1e9 - used) < 0.005
    assert stats["throttling_data"]["throttled_periods"] == throttled


def test_memory_and_pids_of_an_allocating_container_match_cgroup_files_and_docker_stats(
    run_container: Callable[..., Any], collector_for: Callable[..., ContainerCollector]
) -> None:
    # awk doubles a string to 16 MiB and keeps it while sleep runs as its child.
    c = run_container(
        """awk 'BEGIN { s = "x"; for (i = 0; i < 24; i++) s = s s;"""
        """ print "held " length(s); fflush(); system("sleep 3600") }'""",
        mem_limit="64m",
        pids_limit=20,
    )
    wait_for_log(c, "held 16777216")
    time.sleep(0.3)
    s = scrape(collector_for(Inventory(c)))
    stat = keyed(cgroup_file("memory", c, "memory.stat"))
    usage_file = int(cgroup_file("memory", c, "memory.usage_in_bytes"))
    who = {"name": c.name}

    usage = one(s, "container_memory_usage_bytes", **who)
    assert abs(usage - usage_file) <= MiB
    rss = one(s, "container_memory_rss", **who)
    assert rss >= 16 * MiB
    assert abs(rss - stat["total_rss"]) <= MiB
    inactive_file = one(s, "container_memory_total_inactive_file_bytes", **who)
    assert one(s, "container_memory_working_set_bytes", **who) == usage - inactive_file
    assert one(s, "container_memory_cache", **who) == pytest.approx(stat["total_cache"], abs=MiB)
    assert one(s, "container_memory_max_usage_bytes", **who) >= usage
    assert one(s, "container_memory_swap", **who) == stat["total_swap"]
    assert one(s, "container_memory_failcnt", **who) == 0
    faults = one(s, "container_memory_failures_total", failure_type="pgfault", scope="hierarchy")
    assert faults >= 16 * MiB / 4096  # every page of the string was touched once
    assert one(s, "container_spec_memory_limit_bytes", **who) == 64 * MiB
    memsw = int(cgroup_file("memory", c, "memory.memsw.limit_in_bytes"))
    assert one(s, "container_spec_memory_swap_limit_bytes", **who) == memsw
    assert one(s, "container_spec_memory_reservation_limit_bytes", **who) == 0  # unlimited
    threads = one(s, "container_threads", **who)
    assert threads == int(cgroup_file("pids", c, "pids.current")) >= 2
    assert one(s, "container_threads_max", **who) == 20

    api = docker_stats(c)
    assert abs(api["memory_stats"]["usage"] - usage) <= MiB
    assert api["memory_stats"]["limit"] == 64 * MiB
    assert api["pids_stats"]["current"] == threads
    # The CLI's MEM USAGE is usage minus inactive file: the working set.
    cli = subprocess.run(
        ["docker", "stats", "--no-stream", "--format", "{{.MemUsage}}|{{.PIDs}}", c.id],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.strip()
    mem, pids = cli.split("|")
    shown, limit = (part.strip() for part in mem.split("/"))
    assert limit == "64MiB"
    assert int(pids) == threads
    assert shown.endswith("MiB")
    working_set = one(s, "container_memory_working_set_bytes", **who)
    assert abs(float(shown[:-3]) * MiB - working_set) <= MiB


def test_oom_kill_inside_a_container_counts_oom_events_and_failcnt(
    run_container: Callable[..., Any], collector_for: Callable[..., ContainerCollector]
) -> None:
    # awk grows a string until the 16 MiB limit kills it; the shell survives, so the
    # container (and its cgroup) stay for the scrape. Swap is left at Docker's default
    # (2x): with --memory-swap equal to --memory the memsw counter hits its limit first
    # and the kernel counts the failures in memory.memsw.failcnt instead.
    c = run_container(
        """awk 'BEGIN { s = "x"; while (1) s = s s }'; echo survived; exec sleep 3600""",
        mem_limit="16m",
    )
    wait_for_log(c, "survived")
    s = scrape(collector_for(Inventory(c)))
    who = {"name": c.name}
    oom_kills = keyed(cgroup_file("memory", c, "memory.oom_control"))["oom_kill"]
    assert oom_kills >= 1
    assert one(s, "container_oom_events_total", **who) == oom_kills
    failcnt = int(cgroup_file("memory", c, "memory.failcnt"))
    assert failcnt > 0
    assert one(s, "container_memory_failcnt", **who) == failcnt
    peak = one(s, "container_memory_max_usage_bytes", **who)
    assert peak == int(cgroup_file("memory", c, "memory.max_usage_in_bytes"))
    assert peak > 12 * MiB
    assert one(s, "container_spec_memory_limit_bytes", **who) == 16 * MiB


def block_device_of(path: str) -> tuple[str, int, int]:
    """The whole disk holding ``path``: ("/dev/vda", 254, 0)."""
    dev = os.stat(path).st_dev
    sys_dir = Path(f"/sys/dev/block/{os.major(dev)}:{os.minor(dev)}")
    require(sys_dir.exists(), f"a block device under {path}")
    if (sys_dir / "partition").exists():
        sys_dir = sys_dir.resolve().parent
    uevent = dict(
        line.split("=", 1) for line in (sys_dir / "uevent").read_text().splitlines() if "=" in line
    )
    return f"/dev/{uevent['DEVNAME']}", int(uevent["MAJOR"]), int(uevent["MINOR"])


def test_disk_writer_moves_block_io_counters_by_what_it_wrote_and_read(
    run_container: Callable[..., Any],
    collector_for: Callable[..., ContainerCollector],
    docker_client: Any,
) -> None:
    """Direct I/O of 8 MiB each way shows up per device, as the kernel and Docker count it.

    Since Linux 6.9 the v1 blkio throttle layer initialises (and counts) only on devices
    that have a throttle rule, so without one every container, in ``docker stats`` too,
    shows 0 B of block I/O. The container gets a 1 GiB/s write limit on its disk, never
    reached, to switch counting on.
    """
    device, major, minor = block_device_of(docker_client.info()["DockerRootDir"])
    c = run_container(
        "dd if=/dev/zero of=/tmp/f bs=1M count=8 oflag=direct"
        " && dd if=/tmp/f of=/dev/null bs=1M iflag=direct && echo done; exec sleep 3600",
        device_write_bps=[{"Path": device, "Rate": 1 << 30}],
    )
    wait_for_log(c, "done")
    s = scrape(collector_for(Inventory(c)))
    on_disk = {"name": c.name, "device": device}
    blkio = {
        (line.split()[0], line.split()[1]): int(line.split()[2])
        for line in cgroup_file(
            "blkio", c, "blkio.throttle.io_service_bytes_recursive"
        ).splitlines()
        if len(line.split()) == 3
    }
    ios = {
        (line.split()[0], line.split()[1]): int(line.split()[2])
        for line in cgroup_file("blkio", c, "blkio.throttle.io_serviced_recursive").splitlines()
        if len(line.split()) == 3
    }
    dev = f"{major}:{minor}"

    written = one(s, "container_fs_writes_bytes_total", **on_disk)
    read = one(s, "container_fs_reads_bytes_total", **on_disk)
    assert written >= 8 * MiB
    assert read >= 8 * MiB
    assert written == blkio[(dev, "Write")]
    assert read == blkio[(dev, "Read")]
    assert one(s, "container_fs_writes_total", **on_disk) == ios[(dev, "Write")] >= 8
    assert one(s, "container_fs_reads_total", **on_disk) == ios[(dev, "Read")] >= 8
    detail = pick(s, "container_blkio_device_usage_total", major=str(major), minor=str(minor))
    by_op = {dict(k)["operation"]: v for k, v in detail.items()}
    assert by_op["Write"] == written
    assert by_op["Total"] == blkio[(dev, "Total")]

    api = docker_stats(c)["blkio_stats"]["io_service_bytes_recursive"]
    docker_bytes = {(e["major"], e["minor"], e["op"]): e["value"] for e in api}
    assert docker_bytes[(major, minor, "Write")] == written
    assert docker_bytes[(major, minor, "Read")] == read


SEND_FRAMES = """
import socket, sys
ifname, dst, count, size = sys.argv[1], bytes.fromhex(sys.argv[2]), *map(int, sys.argv[3:5])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((ifname, 0))
frame = dst + s.getsockname()[4] + b"\\x88\\xb5" + bytes(size - 14)
for _ in range(count):
    s.send(frame)
"""


def run(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True, timeout=30).stdout


def test_network_counters_follow_frames_over_a_veth_pair_in_the_container_namespace(
    run_container: Callable[..., Any], collector_for: Callable[..., ContainerCollector]
) -> None:
    """Exact per-interface counts from the container's own network namespace.

    The container starts with ``--network none``; the test creates a veth pair whose one
    end becomes ``eth0`` inside the container's namespace and whose other end lives in a
    network namespace the test creates (``ip netns add``), so neither end ever touches
    the host's namespace. Traffic is raw Ethernet frames (ethertype 0x88B5, reserved for
    local experiments) sent on AF_PACKET sockets: no IP address, no route, nothing that
    could leave the pair. IPv6 is disabled on both ends before they come up, so the
    kernel sends nothing of its own and the counts are exact.
    """
    ip, nsenter = require_binary("ip"), require_binary("nsenter")
    c = run_container("exec sleep 3600")
    pid = inspected(c).pid
    netns, peer = f"nexo-test-{uuid.uuid4().hex[:8]}", f"nxh{uuid.uuid4().hex[:6]}"
    in_container = [nsenter, "-t", str(pid), "-n"]
    in_test_ns = [ip, "netns", "exec", netns]
    run(ip, "netns", "add", netns)
    try:
        run(ip, "link", "add", peer, "netns", netns, "type", "veth", "peer", "name", "eth0",
            "netns", str(pid))  # fmt: skip
        if Path("/proc/sys/net/ipv6").exists():
            run(*in_container, "sh", "-c", "echo 1 > /proc/sys/net/ipv6/conf/eth0/disable_ipv6")
            run(*in_test_ns, "sh", "-c", f"echo 1 > /proc/sys/net/ipv6/conf/{peer}/disable_ipv6")
        run(*in_container, ip, "link", "set", "eth0", "up")
        run(*in_test_ns, ip, "link", "set", peer, "up")
        container_mac = json.loads(run(*in_container, ip, "-j", "link", "show", "eth0"))[0][
            "address"
        ]
        peer_mac = json.loads(run(*in_test_ns, ip, "-j", "link", "show", peer))[0]["address"]

        collector = collector_for(Inventory(c))
        before = scrape(collector)
        to_container, from_container = (25, 114), (7, 214)  # (frames, bytes per frame)
        run(*in_test_ns, sys.executable, "-c", SEND_FRAMES, peer, container_mac.replace(":", ""),
            *map(str, to_container))  # fmt: skip
        run(*in_container, sys.executable, "-c", SEND_FRAMES, "eth0", peer_mac.replace(":", ""),
            *map(str, from_container))  # fmt: skip
        after = scrape(collector)
        kernel = json.loads(run(*in_container, ip, "-j", "-s", "link", "show", "eth0"))[0][
            "stats64"
        ]
    finally:
        subprocess.run([ip, "netns", "del", netns], check=False, timeout=30)

    def delta(metric: str) -> float:
        return one(after, metric, interface="eth0") - one(before, metric, interface="eth0")

    assert delta("container_network_receive_packets_total") == to_container[0]
    assert delta("container_network_receive_bytes_total") == to_container[0] * to_container[1]
    assert delta("container_network_transmit_packets_total") == from_container[0]
    assert delta("container_network_transmit_bytes_total") == from_container[0] * from_container[1]
    # Nothing in the container handles ethertype 0x88B5, so the kernel counts every
    # received frame as dropped too (no protocol handler): the drop counter is exact.
    assert delta("container_network_receive_packets_dropped_total") == to_container[0]
    for metric in (
        "container_network_receive_errors_total",
        "container_network_transmit_errors_total",
        "container_network_transmit_packets_dropped_total",
    ):
        assert one(after, metric, interface="eth0") == 0
    # The same numbers as the kernel reports over netlink (ip -s), not only /proc.
    final = {name: one(after, f"container_network_{name}_total", interface="eth0") for name in (
        "receive_bytes", "receive_packets_dropped", "transmit_packets")}  # fmt: skip
    assert final["receive_bytes"] == kernel["rx"]["bytes"]
    assert final["receive_packets_dropped"] == kernel["rx"]["dropped"]
    assert final["transmit_packets"] == kernel["tx"]["packets"]
    # Loopback is skipped, like cAdvisor.
    assert {dict(k)["interface"] for k in pick(after, "container_network_receive_bytes_total")} == {
        "eth0"
    }


def test_removed_container_series_disappear_on_the_next_scrape_even_from_a_stale_listing(
    run_container: Callable[..., Any], collector_for: Callable[..., ContainerCollector]
) -> None:
    a = run_container("exec sleep 3600", labels={"com.example/team": "core", "tier": "web"})
    b = run_container("exec sleep 3600", labels={"org.label-schema.group": "monitoring"})
    live = Inventory(a, b)
    stale = Inventory(a, b, live=False)  # a listing taken before `a` exits
    live_collector, stale_collector = collector_for(live), collector_for(stale)
    first = scrape(live_collector)
    scrape(stale_collector)
    seen = {dict(k)["name"] for k in pick(first, "container_last_seen")}
    assert seen == {a.name, b.name}
    # Docker labels become sanitised container_label_* names, unioned over containers.
    labels_a = dict(next(iter(pick(first, "container_last_seen", name=a.name))))
    labels_b = dict(next(iter(pick(first, "container_last_seen", name=b.name))))
    assert labels_a["container_label_com_example_team"] == "core"
    assert labels_a["container_label_org_label_schema_group"] == ""
    assert labels_b["container_label_org_label_schema_group"] == "monitoring"
    assert set(labels_a) == set(labels_b)
    assert labels_a["image"] == "nexo-test/busybox:latest"
    assert labels_a["id"] == f"/docker/{a.id}"

    a.remove(force=True)
    for collector in (live_collector, stale_collector):
        s = scrape(collector)
        names = {dict(k).get("name") for k in pick(s, "container_last_seen")}
        assert names == {b.name}
        assert not [key for key in s if ("name", a.name) in key[1]]
        assert one(s, "container_scrape_error") == 0


def du_bytes(paths: list[str]) -> int:
    out = run("du", "-s", "-x", "-k", *paths)
    return sum(int(line.split()[0]) * 1024 for line in out.splitlines())


def test_writable_layer_usage_is_off_by_default_and_measured_in_the_background_when_on(
    run_container: Callable[..., Any],
    collector_for: Callable[..., ContainerCollector],
    docker_client: Any,
) -> None:
    c = run_container("dd if=/dev/zero of=/tmp/blob bs=1M count=4 && echo done; exec sleep 3600")
    wait_for_log(c, "done")
    default = scrape(collector_for(Inventory(c)))
    assert not pick(default, "container_fs_usage_bytes")
    assert not [t for t in threading.enumerate() if t.name == "nexo-fs-usage"]

    root = docker_client.info()["DockerRootDir"]
    collector = collector_for(Inventory(c), fs_usage=True, fs_usage_interval=1.0, data_root=root)
    deadline = time.monotonic() + 15
    while not pick(s := scrape(collector), "container_fs_usage_bytes"):
        assert time.monotonic() < deadline, "no container_fs_usage_bytes"
        time.sleep(0.2)
    used = one(s, "container_fs_usage_bytes", name=c.name)
    driver = docker_client.info()["Driver"]
    mount_id = Path(f"{root}/image/{driver}/layerdb/mounts/{c.id}/mount-id").read_text().strip()
    layer = next(
        p for p in (f"{root}/{driver}/{mount_id}/diff", f"{root}/{driver}/dir/{mount_id}")
        if Path(p).is_dir()
    )  # fmt: skip
    assert used >= 4 * MiB
    assert abs(used - du_bytes([layer, f"{root}/containers/{c.id}"])) <= 64 * 1024
    statvfs = os.statvfs(root)
    device = dict(next(iter(pick(s, "container_fs_usage_bytes"))))["device"]
    assert one(s, "container_fs_limit_bytes", device=device) == statvfs.f_blocks * statvfs.f_frsize


def write_files(directory: Path, files: Mapping[str, str]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)


def test_v1_systemd_driver_tree_with_combined_cpu_cpuacct_mount_and_hybrid_psi(
    tmp_path: Path,
) -> None:
    """dockerd here uses the cgroupfs driver; the v1 systemd layout is a fixture tree.

    Files are copied in format from this machine's kernel; ``cpu,cpuacct`` is one
    hierarchy with ``cpu`` and ``cpuacct`` symlinks, as systemd mounts it.
    """
    cid = "d" * 64
    scope = f"system.slice/docker-{cid}.scope"
    root = tmp_path / "cgroup"
    write_files(
        root / "cpu,cpuacct" / scope,
        {
            "cpuacct.usage_percpu": "38545058783 0 72407615649 \n",
            "cpuacct.stat": "user 7885\nsystem 3208\n",
            "cpu.stat": "nr_periods 40\nnr_throttled 12\nthrottled_time 900000000\n"
            "nr_bursts 0\nburst_time 0\n",
            "cpu.cfs_quota_us": "150000\n",
            "cpu.cfs_period_us": "100000\n",
            "cpu.shares": "512\n",
        },
    )
    (root / "cpu").symlink_to("cpu,cpuacct")
    (root / "cpuacct").symlink_to("cpu,cpuacct")
    write_files(
        root / "memory" / scope,
        {
            "memory.usage_in_bytes": "33554432\n",
            "memory.max_usage_in_bytes": "40000000\n",
            "memory.failcnt": "3\n",
            "memory.limit_in_bytes": "9223372036854771712\n",  # unlimited, page-rounded
            "memory.soft_limit_in_bytes": "16777216\n",
            "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
            "memory.stat": "cache 100\nrss 200\nmapped_file 300\npgfault 7\npgmajfault 1\n"
            "inactive_file 50\nactive_file 50\ntotal_cache 8388608\ntotal_rss 20971520\n"
            "total_mapped_file 1048576\ntotal_swap 0\ntotal_pgfault 9000\ntotal_pgmajfault 4\n"
            "total_inactive_file 4194304\ntotal_active_file 4194304\n",
        },
    )
    write_files(
        root / "blkio" / scope,
        {
            "blkio.throttle.io_service_bytes_recursive": "8:0 Read 4096\n8:0 Write 8192\n"
            "8:0 Sync 12288\n8:0 Async 0\n8:0 Discard 0\n8:0 Total 12288\nTotal 12288\n",
            "blkio.throttle.io_serviced_recursive": "8:0 Read 1\n8:0 Write 2\n8:0 Sync 3\n"
            "8:0 Async 0\n8:0 Discard 0\n8:0 Total 3\nTotal 3\n",
        },
    )
    write_files(root / "pids" / scope, {"pids.current": "3\n", "pids.max": "max\n"})
    write_files(root / "systemd" / scope, {"cgroup.procs": "1\n"})
    write_files(root / "unified", {"cgroup.controllers": ""})
    write_files(
        root / "unified" / scope,
        {"cpu.pressure": "some avg10=0.00 avg60=0.00 avg300=0.00 total=42\n"},
    )
    procfs = tmp_path / "proc"
    write_files(procfs, {"partitions": "major minor  #blocks  name\n\n   8        0  1000 sda\n"})

    container = InspectedContainer(cid, "/svc", "img:1", {}, 0, True, None, None, "")
    collector = build_container_collector(
        ContainerMetricsConfig(cgroupfs=root, procfs=procfs),
        type("Source", (), {"containers": {cid: container}})(),
    )
    s = scrape(collector)
    who = {"name": "svc", "id": f"/{scope}"}
    cpus = pick(s, "container_cpu_usage_seconds_total", **who)
    assert {dict(k)["cpu"]: v for k, v in cpus.items()} == {
        "cpu00": 38.545058783,
        "cpu02": 72.407615649,  # idle CPUs are left out, as cAdvisor does
    }
    assert one(s, "container_cpu_user_seconds_total", **who) == 78.85
    assert one(s, "container_cpu_cfs_throttled_seconds_total", **who) == 0.9
    assert one(s, "container_spec_cpu_quota", **who) == 150000
    assert one(s, "container_spec_cpu_shares", **who) == 512
    assert one(s, "container_memory_working_set_bytes", **who) == 33554432 - 4194304
    assert one(s, "container_memory_rss", **who) == 20971520  # total_rss, not rss
    assert one(s, "container_memory_failcnt", **who) == 3
    assert one(s, "container_oom_events_total", **who) == 2
    assert one(s, "container_spec_memory_limit_bytes", **who) == 0
    assert one(s, "container_spec_memory_reservation_limit_bytes", **who) == 16777216
    scopes = pick(s, "container_memory_failures_total", failure_type="pgfault")
    assert {dict(k)["scope"]: v for k, v in scopes.items()} == {"container": 7, "hierarchy": 9000}
    assert one(s, "container_fs_writes_bytes_total", device="/dev/sda") == 8192
    assert one(s, "container_fs_writes_total", device="/dev/sda") == 2
    assert one(s, "container_threads_max", **who) == 0
    assert one(s, "container_pressure_cpu_waiting_seconds_total", **who) == 0.000042
    assert not pick(s, "container_pressure_cpu_stalled_seconds_total")  # no "full" line
