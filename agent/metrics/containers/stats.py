"""Read one container's cgroup files into a :class:`CgroupSample`, as cAdvisor reads them.

v1 and v2 differ in files and units but map onto the same cAdvisor quantities
(``lib/container/libcontainer/handler.go``, ``lib/container/common/helpers.go``):

- CPU: v1 ``cpuacct.usage_percpu`` (ns) and ``cpuacct.stat`` (USER_HZ ticks); v2
  ``cpu.stat`` (us, no per-CPU split). CFS counters come from ``cpu.stat`` and are only
  meaningful, and only published, when a quota is set.
- Memory: v1 ``memory.stat`` ``total_*`` keys (hierarchical); v2 ``memory.stat`` keys
  (always hierarchical). Working set = usage - inactive file, clamped at 0.
- Limits above 2^62 (v1's "unlimited" is 2^63 rounded to a page, v2 writes ``max``) are
  reported as 0, like cAdvisor's ``specMemoryValue``.
- OOM kills: v1 ``memory.oom_control`` ``oom_kill`` (Linux 4.13+), v2 ``memory.events``
  ``oom_kill``. cAdvisor counts kernel log lines instead, which misses kills before it
  started; the kernel's counter is exact for the cgroup's lifetime.

Two deliberate differences: v2 has no ``memory.failcnt``, so the failure count is
``memory.events`` ``max`` (times usage hit the limit, the same event) where cAdvisor
reports 0; and the reservation on v2 is ``memory.low``, where Docker (runc) writes
``--memory-reservation``, not ``memory.min``, which Docker never sets.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from agent.metrics.containers.cgroups import CgroupReads

_UNLIMITED = 1 << 62
_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

DeviceOps = dict[tuple[int, int], dict[str, int]]
# The memory.stat keys used, under their v2 names; v1 spells some differently and, with
# use_hierarchy=1 (forced since Linux 5.16), has the container's totals as total_<key>.
_MEMORY_KEYS = (
    "anon",
    "file",
    "file_mapped",
    "active_file",
    "inactive_file",
    "active_anon",
    "inactive_anon",
    "file_dirty",
    "file_writeback",
    "pgscan",
    "pgsteal",
    "workingset_refault_anon",
    "workingset_refault_file",
    "pgfault",
    "pgmajfault",
    "swap",
)
_V1_NAMES = {"anon": "rss", "file": "cache", "file_mapped": "mapped_file"}
_V1_NAMES |= {"file_dirty": "dirty", "file_writeback": "writeback"}
_V2_MEMORY_KEYS = tuple((k.encode(), k) for k in _MEMORY_KEYS if k != "swap")
_V1_MEMORY_KEYS = tuple((f"total_{_V1_NAMES.get(k, k)}".encode(), k) for k in _MEMORY_KEYS)
_V1_LOCAL_MEMORY_KEYS = tuple((_V1_NAMES.get(k, k).encode(), k) for k in _MEMORY_KEYS)


@dataclass(slots=True)
class Pressure:
    """PSI ``total=`` of the ``some`` and (when the kernel has it) ``full`` lines, in us."""

    some_us: int
    full_us: int | None


@dataclass(slots=True)
class CgroupSpec:
    """The container's limits (cAdvisor's ``ContainerSpec``); ``None`` = not set/provided.

    Limits change only through ``docker update``, so callers may reuse a spec for a while
    instead of re-reading seven files per container on every scrape.
    """

    cpu_shares: int | None = None
    cpu_quota: int | None = None
    cpu_period: int | None = None
    mem_limit: float | None = None
    mem_swap_limit: float | None = None
    mem_reservation: float | None = None
    threads_max: int | None = None


@dataclass(slots=True)
class CgroupSample:
    """Everything read for one container in one scrape; ``None`` = not provided here."""

    spec: CgroupSpec

    cpu_usage_s: float | None = None
    cpu_per_cpu_s: list[float] | None = None
    cpu_user_s: float | None = None
    cpu_system_s: float | None = None
    cfs_periods: int | None = None
    cfs_throttled_periods: int | None = None
    cfs_throttled_s: float | None = None
    cfs_burst_periods: int | None = None
    cfs_burst_s: float | None = None
    mem_usage: int | None = None
    mem_max_usage: int | None = None
    mem_working_set: int | None = None
    mem_failcnt: int | None = None
    mem_stat: dict[str, int] | None = None
    mem_local_faults: tuple[int, int] | None = None
    mem_swap: int | None = None
    mem_events_high: int | None = None
    mem_events_max: int | None = None
    oom_kills: int | None = None
    io_bytes: DeviceOps | None = None
    io_ops: DeviceOps | None = None
    threads: int | None = None
    psi_cpu: Pressure | None = None
    psi_memory: Pressure | None = None
    psi_io: Pressure | None = None


def spec_memory(value: int) -> float:
    return 0.0 if value > _UNLIMITED else float(value)


def parse_flat_keyed(data: bytes) -> dict[bytes, bytes]:
    """``key value`` lines (memory.stat, cpu.stat, memory.events, oom_control)."""
    fields = iter(data.split())
    return dict(zip(fields, fields, strict=False))


def parse_limit(data: bytes) -> int:
    """A v2 limit file: a number or ``max`` (unlimited)."""
    value = data.strip()
    return 1 << 63 if value == b"max" else int(value)


def parse_blkio_v1(data: bytes) -> DeviceOps:
    """``MAJ:MIN Op value`` lines of blkio.*_recursive; the closing ``Total N`` is dropped."""
    devices: DeviceOps = {}
    for line in data.splitlines():
        f = line.split()
        if len(f) != 3:
            continue
        major, _, minor = f[0].partition(b":")
        ops = devices.setdefault((int(major), int(minor)), {})
        ops[f[1].decode()] = int(f[2])
    return devices


def parse_io_stat_v2(data: bytes) -> tuple[DeviceOps, DeviceOps]:
    """``MAJ:MIN rbytes=.. wbytes=.. rios=.. wios=.. dbytes=.. dios=..`` -> bytes, ops."""
    by_bytes: DeviceOps = {}
    by_ops: DeviceOps = {}
    for line in data.splitlines():
        f = line.split()
        if not f or b":" not in f[0]:
            continue
        major, _, minor = f[0].partition(b":")
        device = (int(major), int(minor))
        stats = dict(item.split(b"=", 1) for item in f[1:] if b"=" in item)
        by_bytes[device] = {
            "Read": int(stats.get(b"rbytes", 0)),
            "Write": int(stats.get(b"wbytes", 0)),
        }
        by_ops[device] = {"Read": int(stats.get(b"rios", 0)), "Write": int(stats.get(b"wios", 0))}
    return by_bytes, by_ops


def parse_pressure(data: bytes) -> Pressure | None:
    """``some avg10=.. avg60=.. avg300=.. total=N`` then, when the kernel has it, ``full``.

    The kernel always prints ``some`` first (kernel/sched/psi.c ``psi_show``).
    """
    parts = data.split(b"total=")
    if len(parts) < 2:
        return None
    some = int(parts[1].split(None, 1)[0])
    full = int(parts[2].split(None, 1)[0]) if len(parts) > 2 else None
    return Pressure(some, full)


def pick(raw: dict[bytes, bytes], keys: tuple[tuple[bytes, str], ...]) -> dict[str, int]:
    return {name: int(raw[key]) for key, name in keys if key in raw}


def read_spec_v1(reads: CgroupReads) -> CgroupSpec:
    get = reads.get
    spec = CgroupSpec()
    data = get("cpu.shares")
    if data is not None:
        spec.cpu_shares = int(data)
    data = get("cpu.cfs_period_us")
    if data is not None:
        spec.cpu_period = int(data)
    data = get("cpu.cfs_quota_us")
    if data is not None and int(data) > 0:  # -1 = no quota
        spec.cpu_quota = int(data)
    data = get("memory.limit_in_bytes")
    if data is not None:
        spec.mem_limit = spec_memory(int(data))
    data = get("memory.memsw.limit_in_bytes")
    if data is not None:
        spec.mem_swap_limit = spec_memory(int(data))
    data = get("memory.soft_limit_in_bytes")
    if data is not None:
        spec.mem_reservation = spec_memory(int(data))
    _read_pids_max(spec, reads)
    return spec


def read_spec_v2(reads: CgroupReads) -> CgroupSpec:
    get = reads.get
    spec = CgroupSpec()
    data = get("cpu.max")
    if data is not None:
        quota, _, period = data.strip().partition(b" ")
        if quota != b"max":
            spec.cpu_quota = int(quota)
        if period:
            spec.cpu_period = int(period)
    data = get("cpu.weight")
    if data is not None:
        weight = int(data)
        if 1 <= weight <= 10000:  # cAdvisor's convertCPUWeightToCPULimit
            spec.cpu_shares = 2 + ((weight - 1) * 262142) // 9999
    data = get("memory.max")
    if data is not None:
        spec.mem_limit = spec_memory(parse_limit(data))
    data = get("memory.swap.max")
    if data is not None:
        spec.mem_swap_limit = spec_memory(parse_limit(data))
    data = get("memory.low")
    if data is not None:
        spec.mem_reservation = spec_memory(parse_limit(data))
    _read_pids_max(spec, reads)
    return spec


def read_v1(reads: CgroupReads, spec: CgroupSpec, percpu: bool) -> CgroupSample:
    s = CgroupSample(spec)
    get = reads.get
    # CPU
    data = get("cpuacct.usage_percpu") if percpu else None
    if data is not None:
        per_cpu = [int(v) / 1e9 for v in data.split()]
        s.cpu_per_cpu_s = per_cpu
        s.cpu_usage_s = sum(per_cpu)
    else:
        data = get("cpuacct.usage")
        if data is not None:
            s.cpu_usage_s = int(data) / 1e9
    data = get("cpuacct.stat")
    if data is not None:
        ticks = parse_flat_keyed(data)
        s.cpu_user_s = int(ticks.get(b"user", 0)) / _CLK_TCK
        s.cpu_system_s = int(ticks.get(b"system", 0)) / _CLK_TCK
    data = get("cpu.stat") if spec.cpu_quota is not None else None
    if data is not None:
        cfs = parse_flat_keyed(data)
        s.cfs_periods = int(cfs.get(b"nr_periods", 0))
        s.cfs_throttled_periods = int(cfs.get(b"nr_throttled", 0))
        s.cfs_throttled_s = int(cfs.get(b"throttled_time", 0)) / 1e9
        if b"nr_bursts" in cfs:
            s.cfs_burst_periods = int(cfs[b"nr_bursts"])
            s.cfs_burst_s = int(cfs.get(b"burst_time", 0)) / 1e9
    # Memory
    data = get("memory.usage_in_bytes")
    if data is not None:
        s.mem_usage = int(data)
    data = get("memory.max_usage_in_bytes")
    if data is not None:
        s.mem_max_usage = int(data)
    data = get("memory.failcnt")
    if data is not None:
        s.mem_failcnt = int(data)
    data = get("memory.stat")
    if data is not None:
        raw = parse_flat_keyed(data)
        stat = pick(raw, _V1_MEMORY_KEYS) or pick(raw, _V1_LOCAL_MEMORY_KEYS)
        s.mem_stat = stat
        s.mem_local_faults = (int(raw.get(b"pgfault", 0)), int(raw.get(b"pgmajfault", 0)))
        if "swap" in stat:
            s.mem_swap = stat["swap"]
        if s.mem_usage is not None:
            s.mem_working_set = max(0, s.mem_usage - stat.get("inactive_file", 0))
    data = get("memory.oom_control")
    if data is not None:
        oom = parse_flat_keyed(data).get(b"oom_kill")
        if oom is not None:
            s.oom_kills = int(oom)
    # Block I/O: the throttle layer sees every bio, whatever the device's scheduler.
    data = get("blkio.throttle.io_service_bytes_recursive")
    if data is not None:
        s.io_bytes = parse_blkio_v1(data)
    # Both files are charged together: no device in one means none in the other.
    data = get("blkio.throttle.io_serviced_recursive") if s.io_bytes else None
    if data is not None:
        s.io_ops = parse_blkio_v1(data)
    _read_pids_and_pressure(s, reads)
    return s


def read_v2(reads: CgroupReads, spec: CgroupSpec) -> CgroupSample:
    s = CgroupSample(spec)
    get = reads.get
    data = get("cpu.stat")
    if data is not None:
        cpu = parse_flat_keyed(data)
        if b"usage_usec" in cpu:
            s.cpu_usage_s = int(cpu[b"usage_usec"]) / 1e6
            s.cpu_user_s = int(cpu.get(b"user_usec", 0)) / 1e6
            s.cpu_system_s = int(cpu.get(b"system_usec", 0)) / 1e6
        if spec.cpu_quota is not None and b"nr_periods" in cpu:
            s.cfs_periods = int(cpu[b"nr_periods"])
            s.cfs_throttled_periods = int(cpu.get(b"nr_throttled", 0))
            s.cfs_throttled_s = int(cpu.get(b"throttled_usec", 0)) / 1e6
            if b"nr_bursts" in cpu:
                s.cfs_burst_periods = int(cpu[b"nr_bursts"])
                s.cfs_burst_s = int(cpu.get(b"burst_usec", 0)) / 1e6
    data = get("memory.current")
    if data is not None:
        s.mem_usage = int(data)
    data = get("memory.peak")
    if data is not None:
        s.mem_max_usage = int(data)
    data = get("memory.stat")
    if data is not None:
        mem = pick(parse_flat_keyed(data), _V2_MEMORY_KEYS)
        s.mem_stat = mem
        s.mem_local_faults = (mem.get("pgfault", 0), mem.get("pgmajfault", 0))
        if s.mem_usage is not None:
            s.mem_working_set = max(0, s.mem_usage - mem.get("inactive_file", 0))
    data = get("memory.swap.current")
    if data is not None:
        s.mem_swap = int(data)
    data = get("memory.events")
    if data is not None:
        events = parse_flat_keyed(data)
        s.mem_events_high = int(events.get(b"high", 0))
        s.mem_events_max = int(events.get(b"max", 0))
        s.mem_failcnt = s.mem_events_max
        if b"oom_kill" in events:
            s.oom_kills = int(events[b"oom_kill"])
    data = get("io.stat")
    if data is not None:
        s.io_bytes, s.io_ops = parse_io_stat_v2(data)
    _read_pids_and_pressure(s, reads)
    return s


def _read_pids_max(spec: CgroupSpec, reads: CgroupReads) -> None:
    data = reads.get("pids.max")
    if data is not None:
        limit = data.strip()
        spec.threads_max = 0 if limit == b"max" else int(limit)  # cAdvisor: 0 = unlimited


def _read_pids_and_pressure(s: CgroupSample, reads: CgroupReads) -> None:
    get = reads.get
    data = get("pids.current")
    if data is not None:
        s.threads = int(data)
    data = get("cpu.pressure")
    if data is not None:
        s.psi_cpu = parse_pressure(data)
    data = get("memory.pressure")
    if data is not None:
        s.psi_memory = parse_pressure(data)
    data = get("io.pressure")
    if data is not None:
        s.psi_io = parse_pressure(data)
