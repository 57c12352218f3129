"""cAdvisor's ``container_*`` families for every running Docker container, built per scrape.

Names, types, help texts and labels follow cAdvisor (``lib/metrics/prometheus.go``):
identity labels ``id`` (cgroup path), ``name``, ``image`` and one ``container_label_<key>``
per Docker label, where every series carries the union of label names over all
containers (empty value when a container lacks the label), as cAdvisor does.

Differences, all on purpose:

- No explicit sample timestamps. cAdvisor stamps stats with its housekeeping time, which
  keeps a dead container's series alive for Prometheus' 5-minute lookback; here a
  container that is gone is simply absent from the next scrape and its series go stale.
- ``container_memory_failcnt`` is typed ``untyped``: it is a counter without ``_total``,
  which the Python client cannot render as a counter under its cAdvisor name.
- Pressure (PSI) is also read on the v1+v2 hybrid layout, from the cgroup2 mount.
- Only the families that the kernel provides for a container are emitted (cAdvisor pads
  e.g. v2-only memory counters with zeros on v1).
- Not produced: raw (non-Docker) cgroups, ``container_memory_kernel_usage``,
  ``container_health_state``, ``container_tasks_state`` and the load average (netlink),
  and the ``container_fs_*`` families cAdvisor fills from CFQ/BFQ-only blkio files or
  device-wide /proc/diskstats (merged, sectors, io time, inodes), which are not
  per-container numbers.

Reading is blocking file I/O; the metrics server renders the registry in a worker thread.
"""

from __future__ import annotations

import contextlib
import fnmatch
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from prometheus_client import Metric
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from agent.config import DEFAULT_DOCKER_ROOT, ContainerMetricsConfig
from agent.metrics.containers.cgroups import (
    CgroupHandle,
    CgroupLayout,
    CgroupReads,
    CgroupResolver,
    HeldFiles,
)
from agent.metrics.containers.devices import BlockDeviceNames
from agent.metrics.containers.exposition import ContainerFamily, IdentityLabels
from agent.metrics.containers.fsusage import LayerUsage, WritableLayerSampler
from agent.metrics.containers.network import InterfaceCounters, read_interfaces
from agent.metrics.containers.source import ContainerLike, ContainerSource, unix_seconds
from agent.metrics.containers.stats import (
    CgroupSample,
    DeviceOps,
    Pressure,
    read_spec_v1,
    read_spec_v2,
    read_v1,
    read_v2,
)

log = logging.getLogger(__name__)

_INVALID_LABEL_CHARS = re.compile(r"[^a-zA-Z0-9_]")
# Limits (spec files) are re-read at most this often: they change only with `docker
# update` (a restart gets a fresh read), and skipping 7 files per container per scrape is
# a third of the scrape's file reads. cAdvisor refreshes its spec every 5 s or so.
SPEC_REFRESH_INTERVAL = 60.0
_MAX_WARNED = 1000

# (kind, name, help); kind c = counter, g = gauge, u = untyped. Emission order.
_FAMILIES: tuple[tuple[str, str, str], ...] = (
    ("g", "container_last_seen", "Last time a container was seen by the exporter"),
    (
        "g",
        "container_start_time_seconds",
        "Start time of the container since unix epoch in seconds.",
    ),
    (
        "g",
        "container_creation_time_seconds",
        "Container creation time since unix epoch in seconds.",
    ),
    ("c", "container_cpu_usage_seconds_total", "Cumulative cpu time consumed in seconds."),
    ("c", "container_cpu_user_seconds_total", "Cumulative user cpu time consumed in seconds."),
    ("c", "container_cpu_system_seconds_total", "Cumulative system cpu time consumed in seconds."),
    ("c", "container_cpu_cfs_periods_total", "Number of elapsed enforcement period intervals."),
    ("c", "container_cpu_cfs_throttled_periods_total", "Number of throttled period intervals."),
    (
        "c",
        "container_cpu_cfs_throttled_seconds_total",
        "Total time duration the container has been throttled.",
    ),
    ("c", "container_cpu_cfs_burst_periods_total", "Number of periods when burst occurs."),
    (
        "c",
        "container_cpu_cfs_burst_seconds_total",
        "Total time duration the container has been bursted.",
    ),
    ("g", "container_spec_cpu_shares", "CPU share of the container."),
    ("g", "container_spec_cpu_quota", "CPU quota of the container."),
    ("g", "container_spec_cpu_period", "CPU period of the container."),
    (
        "g",
        "container_memory_usage_bytes",
        "Current memory usage in bytes, including all memory regardless of when it was accessed",
    ),
    ("g", "container_memory_working_set_bytes", "Current working set in bytes."),
    ("g", "container_memory_max_usage_bytes", "Maximum memory usage recorded in bytes"),
    ("g", "container_memory_rss", "Size of RSS in bytes."),
    ("g", "container_memory_cache", "Number of bytes of page cache memory."),
    ("g", "container_memory_mapped_file", "Size of memory mapped files in bytes."),
    ("g", "container_memory_swap", "Container swap usage in bytes."),
    ("u", "container_memory_failcnt", "Number of memory usage hits limits"),
    (
        "c",
        "container_memory_failures_total",
        "Cumulative count of memory allocation failures.",
    ),
    ("g", "container_memory_total_active_file_bytes", "Current total active file in bytes."),
    ("g", "container_memory_total_inactive_file_bytes", "Current total inactive file in bytes."),
    ("g", "container_memory_total_active_anon_bytes", "Current total active anonymous in bytes."),
    (
        "g",
        "container_memory_total_inactive_anon_bytes",
        "Current total inactive anonymous in bytes.",
    ),
    (
        "g",
        "container_memory_file_dirty_bytes",
        "Number of bytes of file cache that has been modified but not yet written back to disk.",
    ),
    (
        "g",
        "container_memory_file_writeback_bytes",
        "Number of bytes of file cache that is currently being written back to disk.",
    ),
    (
        "c",
        "container_memory_pgscan_total",
        "Cumulative number of pages scanned by the page reclaim algorithm.",
    ),
    (
        "c",
        "container_memory_pgsteal_total",
        "Cumulative number of pages reclaimed by the page reclaim algorithm.",
    ),
    (
        "c",
        "container_memory_workingset_refault_anon_total",
        "Cumulative number of refaults of previously evicted anonymous pages.",
    ),
    (
        "c",
        "container_memory_workingset_refault_file_total",
        "Cumulative number of refaults of previously evicted file pages.",
    ),
    (
        "c",
        "container_memory_events_high_total",
        "Cumulative count of memory.high throttle events for the container",
    ),
    (
        "c",
        "container_memory_events_max_total",
        "Cumulative count of memory.max limit hit events for the container",
    ),
    (
        "c",
        "container_oom_events_total",
        "Count of out of memory events observed for the container",
    ),
    ("g", "container_spec_memory_limit_bytes", "Memory limit for the container."),
    ("g", "container_spec_memory_swap_limit_bytes", "Memory swap limit for the container."),
    (
        "g",
        "container_spec_memory_reservation_limit_bytes",
        "Memory reservation limit for the container.",
    ),
    ("c", "container_fs_reads_bytes_total", "Cumulative count of bytes read"),
    ("c", "container_fs_writes_bytes_total", "Cumulative count of bytes written"),
    ("c", "container_fs_reads_total", "Cumulative count of reads completed"),
    ("c", "container_fs_writes_total", "Cumulative count of writes completed"),
    ("c", "container_blkio_device_usage_total", "Blkio Device bytes usage"),
    (
        "g",
        "container_fs_usage_bytes",
        "Number of bytes that are consumed by the container on this filesystem.",
    ),
    (
        "g",
        "container_fs_limit_bytes",
        "Number of bytes that can be consumed by the container on this filesystem.",
    ),
    ("c", "container_network_receive_bytes_total", "Cumulative count of bytes received"),
    ("c", "container_network_receive_packets_total", "Cumulative count of packets received"),
    (
        "c",
        "container_network_receive_errors_total",
        "Cumulative count of errors encountered while receiving",
    ),
    (
        "c",
        "container_network_receive_packets_dropped_total",
        "Cumulative count of packets dropped while receiving",
    ),
    ("c", "container_network_transmit_bytes_total", "Cumulative count of bytes transmitted"),
    ("c", "container_network_transmit_packets_total", "Cumulative count of packets transmitted"),
    (
        "c",
        "container_network_transmit_errors_total",
        "Cumulative count of errors encountered while transmitting",
    ),
    (
        "c",
        "container_network_transmit_packets_dropped_total",
        "Cumulative count of packets dropped while transmitting",
    ),
    ("g", "container_threads", "Number of threads running inside the container"),
    (
        "g",
        "container_threads_max",
        "Maximum number of threads allowed inside the container, infinity if value is zero",
    ),
    (
        "c",
        "container_pressure_cpu_waiting_seconds_total",
        "Total time duration tasks in the container have waited due to CPU congestion.",
    ),
    (
        "c",
        "container_pressure_cpu_stalled_seconds_total",
        "Total time duration no tasks in the container could make progress due to CPU congestion.",
    ),
    (
        "c",
        "container_pressure_memory_waiting_seconds_total",
        "Total time duration tasks in the container have waited due to memory congestion.",
    ),
    (
        "c",
        "container_pressure_memory_stalled_seconds_total",
        "Total time duration no tasks in the container could make progress due to memory "
        "congestion.",
    ),
    (
        "c",
        "container_pressure_io_waiting_seconds_total",
        "Total time duration tasks in the container have waited due to IO congestion.",
    ),
    (
        "c",
        "container_pressure_io_stalled_seconds_total",
        "Total time duration no tasks in the container could make progress due to IO congestion.",
    ),
)

FAMILY_NAMES = tuple(name for _, name, _ in _FAMILIES)

# memory.stat key (v2 names; v1 keys are mapped onto them) -> family.
_MEMORY_STAT_FAMILIES = (
    ("anon", "container_memory_rss"),
    ("file", "container_memory_cache"),
    ("file_mapped", "container_memory_mapped_file"),
    ("active_file", "container_memory_total_active_file_bytes"),
    ("inactive_file", "container_memory_total_inactive_file_bytes"),
    ("active_anon", "container_memory_total_active_anon_bytes"),
    ("inactive_anon", "container_memory_total_inactive_anon_bytes"),
    ("file_dirty", "container_memory_file_dirty_bytes"),
    ("file_writeback", "container_memory_file_writeback_bytes"),
    ("pgscan", "container_memory_pgscan_total"),
    ("pgsteal", "container_memory_pgsteal_total"),
    ("workingset_refault_anon", "container_memory_workingset_refault_anon_total"),
    ("workingset_refault_file", "container_memory_workingset_refault_file_total"),
)
# The series' own labels beyond the container's identity, for the families that have some.
_OWN_LABELS: dict[str, tuple[str, ...]] = {
    "container_cpu_usage_seconds_total": ("cpu",),
    "container_memory_failures_total": ("failure_type", "scope"),
    "container_blkio_device_usage_total": ("device", "major", "minor", "operation"),
    **dict.fromkeys(
        (
            "container_fs_reads_bytes_total",
            "container_fs_writes_bytes_total",
            "container_fs_reads_total",
            "container_fs_writes_total",
            "container_fs_usage_bytes",
            "container_fs_limit_bytes",
        ),
        ("device",),
    ),
    **dict.fromkeys(
        (n for n in FAMILY_NAMES if n.startswith("container_network_")), ("interface",)
    ),
}
_CPU_LABELS = tuple(f"cpu{i:02d}" for i in range(1024))


@dataclass(slots=True)
class _Observed:
    container: ContainerLike
    handle: CgroupHandle
    sample: CgroupSample
    interfaces: list[InterfaceCounters]


class ContainerCollector(Collector):
    """cAdvisor-compatible families for the containers ``source`` knows, read at scrape time."""

    def __init__(
        self,
        cfg: ContainerMetricsConfig,
        source: ContainerSource,
        clock: Callable[[], float] = time.time,
        data_root: str | Callable[[], str] = str(DEFAULT_DOCKER_ROOT),
    ) -> None:
        self._cfg = cfg
        self._source = source
        self._clock = clock
        self._procfs = str(cfg.procfs).rstrip("/") or "/"
        self.layout = CgroupLayout.detect(str(cfg.cgroupfs))
        self._resolver = CgroupResolver(self.layout, self._procfs)
        self._devices = BlockDeviceNames(self._procfs)
        self._allow = None if cfg.labels_allow is None else tuple(cfg.labels_allow)
        self._label_names: dict[str, str] = {}  # Docker label key -> exported name ("" = not)
        self._identities: dict[str, IdentityLabels] = {}  # by container ID, last scrape's
        self._warned: set[str] = set()
        self._lock = threading.Lock()
        self._fs_usage = (
            WritableLayerSampler(data_root, cfg.fs_usage_interval) if cfg.fs_usage else None
        )
        if self.layout.version == 0:
            log.warning("no cgroup filesystem under %s: no container metrics", cfg.cgroupfs)

    @property
    def held_files(self) -> HeldFiles:
        """The budget of cgroup files held open between scrapes (benchmarks set it)."""
        return self._resolver.held

    def describe(self) -> list[Metric]:
        # Registering must not trigger a scrape; the families are dynamic anyway.
        return []

    def close(self) -> None:
        """Stop the background disk-usage sampler, if any, and close held cgroup files."""
        if self._fs_usage is not None:
            self._fs_usage.close()
        with self._lock:
            self._resolver.close()

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            families, error = self._scrape()
        for family in families:
            if family.rows:
                yield family
        yield GaugeMetricFamily(
            "container_scrape_error",
            "1 if there was an error while getting container metrics, 0 otherwise",
            value=1.0 if error else 0.0,
        )

    # -- one scrape -------------------------------------------------------------------

    def _scrape(self) -> tuple[list[ContainerFamily], bool]:
        now = self._clock()
        error = False
        try:
            listed = _snapshot(self._source)
        except Exception:
            log.exception("cannot list containers for container metrics")
            listed, error = [], True
        observed: list[_Observed] = []
        if self.layout.version:
            for container in listed:
                if not container.running:
                    continue
                try:
                    found, failed = self._observe(container, now)
                except (ValueError, IndexError) as exc:
                    # A file in a format this code does not know: skip the container,
                    # never the whole /metrics page.
                    self._warn_once(
                        container.id, f"cannot parse cgroup files of {container.id[:12]}: {exc!r}"
                    )
                    error = True
                    continue
                error |= failed
                if found is not None:
                    observed.append(found)
            self._resolver.retain({o.container.id for o in observed})
        usage: dict[str, LayerUsage] = {}
        if self._fs_usage is not None:
            self._fs_usage.want(o.container.id for o in observed)
            usage = self._fs_usage.usage()
        return self._families(observed, usage, now), error

    def _observe(self, container: ContainerLike, now: float) -> tuple[_Observed | None, bool]:
        handle = self._resolver.resolve(container.id, container.pid, container.cgroup_parent)
        if handle is None:
            return None, False
        reads = CgroupReads(handle)
        v2 = self.layout.version == 2
        spec = handle.spec
        if spec is None or now - handle.spec_read_at >= SPEC_REFRESH_INTERVAL:
            spec = read_spec_v2(reads) if v2 else read_spec_v1(reads)
            handle.spec, handle.spec_read_at = spec, now
        sample = read_v2(reads, spec) if v2 else read_v1(reads, spec, self._cfg.percpu)
        if reads.vanished():
            # Exited between listing and reading: publish nothing rather than a torso.
            self._resolver.forget(container.id)
            return None, False
        for path, exc in reads.errors:
            self._warn_once(path, f"cannot read {path}: {exc}")
        interfaces: list[InterfaceCounters] = []
        if container.pid > 0:
            # OSError: the process is gone; the cgroup check above already passed.
            with contextlib.suppress(OSError, ValueError):
                interfaces = read_interfaces(self._procfs, container.pid)
        return _Observed(container, handle, sample, interfaces), bool(reads.errors)

    def _warn_once(self, key: str, message: str) -> None:
        if key in self._warned:
            return
        if len(self._warned) >= _MAX_WARNED:
            self._warned.clear()
        self._warned.add(key)
        log.warning("%s", message)

    # -- labels -----------------------------------------------------------------------

    def _exported_name(self, key: str) -> str:
        name = self._label_names.get(key)
        if name is None:
            allowed = self._allow is None or any(fnmatch.fnmatchcase(key, p) for p in self._allow)
            name = "container_label_" + _INVALID_LABEL_CHARS.sub("_", key) if allowed else ""
            if len(self._label_names) >= 100_000:
                self._label_names.clear()
            self._label_names[key] = name
        return name

    def _identity(self, observed: Sequence[_Observed]) -> list[IdentityLabels]:
        """One label set per container, all with the same names (cAdvisor's union).

        A container's rendered labels are reused while they stay the same.
        """
        own: list[dict[str, str]] = []
        names: set[str] = set()
        for o in observed:
            c = o.container
            labels = {"id": o.handle.cgroup, "name": c.name.lstrip("/"), "image": c.image}
            docker_labels = c.labels or {}
            for key in sorted(docker_labels):
                exported = self._exported_name(key)
                # Two keys sanitising to one name (a.b, a-b): the first in key order wins.
                if exported and exported not in labels:
                    labels[exported] = docker_labels[key]
            names.update(labels)
            own.append(labels)
        template = dict.fromkeys(sorted(names), "")
        previous, self._identities = self._identities, {}
        result = []
        for o, labels in zip(observed, own, strict=True):
            full = dict(template)
            full.update(labels)
            identity = previous.get(o.container.id)
            if identity is None or identity.labels != full:
                identity = IdentityLabels(full)
            self._identities[o.container.id] = identity
            result.append(identity)
        return result

    # -- families ---------------------------------------------------------------------

    def _families(
        self, observed: list[_Observed], usage: Mapping[str, LayerUsage], now: float
    ) -> list[ContainerFamily]:
        fams = {
            name: ContainerFamily(kind, name, doc, _OWN_LABELS.get(name, ()))
            for kind, name, doc in _FAMILIES
        }
        last_seen = int(now)
        for o, labels in zip(observed, self._identity(observed), strict=True):
            s = o.sample
            c = o.container
            fams["container_last_seen"].add(labels, last_seen)
            started = unix_seconds(c.started_at)
            if started is not None:
                fams["container_start_time_seconds"].add(labels, int(started))
            created = unix_seconds(getattr(c, "created", None))
            if created is not None:
                fams["container_creation_time_seconds"].add(labels, int(created))
            _add_cpu(fams, labels, s)
            _add_memory(fams, labels, s)
            self._add_io(fams, labels, s)
            layer = usage.get(c.id)
            if layer is not None:
                fams["container_fs_usage_bytes"].add(labels, layer.usage_bytes, layer.device)
                fams["container_fs_limit_bytes"].add(labels, layer.limit_bytes, layer.device)
            _add_network(fams, labels, o.interfaces)
            _add_optional(fams, labels, "container_threads", s.threads)
            _add_optional(fams, labels, "container_threads_max", s.spec.threads_max)
            _add_pressure(fams, labels, "cpu", s.psi_cpu)
            _add_pressure(fams, labels, "memory", s.psi_memory)
            _add_pressure(fams, labels, "io", s.psi_io)
        return list(fams.values())

    def _add_io(
        self, fams: dict[str, ContainerFamily], labels: IdentityLabels, s: CgroupSample
    ) -> None:
        _add_device_ops(
            fams, labels, s.io_bytes, self._devices, "container_fs_reads_bytes_total",
            "container_fs_writes_bytes_total", usage="container_blkio_device_usage_total",
        )  # fmt: skip
        _add_device_ops(
            fams, labels, s.io_ops, self._devices, "container_fs_reads_total",
            "container_fs_writes_total", usage=None,
        )  # fmt: skip


def _snapshot(source: ContainerSource) -> list[ContainerLike]:
    """A stable list of the source's containers; the inventory mutates on the event loop.

    ``list(mapping.values())`` runs in C without releasing the GIL, so it cannot observe
    a half-applied change; a resize racing an older interpreter is retried once.
    """
    for attempt in range(2):
        try:
            return list(source.containers.values())
        except RuntimeError:
            if attempt:
                raise
    return []


def _add_optional(
    fams: dict[str, ContainerFamily], labels: IdentityLabels, name: str, value: float | None
) -> None:
    if value is not None:
        fams[name].add(labels, value)


def _add_cpu(fams: dict[str, ContainerFamily], labels: IdentityLabels, s: CgroupSample) -> None:
    usage = fams["container_cpu_usage_seconds_total"]
    if s.cpu_per_cpu_s:
        for i, value in enumerate(s.cpu_per_cpu_s):
            if value > 0:  # cAdvisor lists only CPUs the container ran on
                cpu = _CPU_LABELS[i] if i < len(_CPU_LABELS) else f"cpu{i:02d}"
                usage.add(labels, value, cpu)
    elif s.cpu_usage_s:
        usage.add(labels, s.cpu_usage_s, "total")
    _add_optional(fams, labels, "container_cpu_user_seconds_total", s.cpu_user_s)
    _add_optional(fams, labels, "container_cpu_system_seconds_total", s.cpu_system_s)
    _add_optional(fams, labels, "container_cpu_cfs_periods_total", s.cfs_periods)
    _add_optional(
        fams, labels, "container_cpu_cfs_throttled_periods_total", s.cfs_throttled_periods
    )
    _add_optional(fams, labels, "container_cpu_cfs_throttled_seconds_total", s.cfs_throttled_s)
    _add_optional(fams, labels, "container_cpu_cfs_burst_periods_total", s.cfs_burst_periods)
    _add_optional(fams, labels, "container_cpu_cfs_burst_seconds_total", s.cfs_burst_s)
    _add_optional(fams, labels, "container_spec_cpu_shares", s.spec.cpu_shares)
    _add_optional(fams, labels, "container_spec_cpu_quota", s.spec.cpu_quota)
    _add_optional(fams, labels, "container_spec_cpu_period", s.spec.cpu_period)


def _add_memory(fams: dict[str, ContainerFamily], labels: IdentityLabels, s: CgroupSample) -> None:
    _add_optional(fams, labels, "container_memory_usage_bytes", s.mem_usage)
    _add_optional(fams, labels, "container_memory_working_set_bytes", s.mem_working_set)
    _add_optional(fams, labels, "container_memory_max_usage_bytes", s.mem_max_usage)
    _add_optional(fams, labels, "container_memory_swap", s.mem_swap)
    _add_optional(fams, labels, "container_memory_failcnt", s.mem_failcnt)
    stat = s.mem_stat
    if stat is not None:
        for key, name in _MEMORY_STAT_FAMILIES:
            value = stat.get(key)
            if value is not None:
                fams[name].add(labels, value)
        failures = fams["container_memory_failures_total"]
        local = s.mem_local_faults or (0, 0)
        failures.add(labels, local[0], "pgfault", "container")
        failures.add(labels, local[1], "pgmajfault", "container")
        failures.add(labels, stat.get("pgfault", 0), "pgfault", "hierarchy")
        failures.add(labels, stat.get("pgmajfault", 0), "pgmajfault", "hierarchy")
    _add_optional(fams, labels, "container_memory_events_high_total", s.mem_events_high)
    _add_optional(fams, labels, "container_memory_events_max_total", s.mem_events_max)
    _add_optional(fams, labels, "container_oom_events_total", s.oom_kills)
    _add_optional(fams, labels, "container_spec_memory_limit_bytes", s.spec.mem_limit)
    _add_optional(fams, labels, "container_spec_memory_swap_limit_bytes", s.spec.mem_swap_limit)
    _add_optional(
        fams, labels, "container_spec_memory_reservation_limit_bytes", s.spec.mem_reservation
    )


def _add_device_ops(
    fams: dict[str, ContainerFamily],
    labels: IdentityLabels,
    devices: DeviceOps | None,
    names: BlockDeviceNames,
    reads: str,
    writes: str,
    usage: str | None,
) -> None:
    if not devices:
        return
    for (major, minor), ops in devices.items():
        device = names.name(major, minor)
        fams[reads].add(labels, ops.get("Read", 0), device)
        fams[writes].add(labels, ops.get("Write", 0), device)
        if usage is not None:
            family = fams[usage]
            major_text, minor_text = str(major), str(minor)
            for op, value in ops.items():
                family.add(labels, value, device, major_text, minor_text, op)


def _add_network(
    fams: dict[str, ContainerFamily], labels: IdentityLabels, interfaces: list[InterfaceCounters]
) -> None:
    for i in interfaces:
        name = i.interface
        fams["container_network_receive_bytes_total"].add(labels, i.rx_bytes, name)
        fams["container_network_receive_packets_total"].add(labels, i.rx_packets, name)
        fams["container_network_receive_errors_total"].add(labels, i.rx_errors, name)
        fams["container_network_receive_packets_dropped_total"].add(labels, i.rx_dropped, name)
        fams["container_network_transmit_bytes_total"].add(labels, i.tx_bytes, name)
        fams["container_network_transmit_packets_total"].add(labels, i.tx_packets, name)
        fams["container_network_transmit_errors_total"].add(labels, i.tx_errors, name)
        fams["container_network_transmit_packets_dropped_total"].add(labels, i.tx_dropped, name)


def _add_pressure(
    fams: dict[str, ContainerFamily],
    labels: IdentityLabels,
    resource: str,
    pressure: Pressure | None,
) -> None:
    if pressure is None:
        return
    fams[f"container_pressure_{resource}_waiting_seconds_total"].add(labels, pressure.some_us / 1e6)
    if pressure.full_us is not None:
        fams[f"container_pressure_{resource}_stalled_seconds_total"].add(
            labels, pressure.full_us / 1e6
        )


def build_container_collector(
    cfg: ContainerMetricsConfig,
    source: ContainerSource,
    data_root: str | Callable[[], str] = str(DEFAULT_DOCKER_ROOT),
) -> ContainerCollector:
    """The collector to register on the agent's registry when ``cfg.enabled``.

    ``source`` is the log pipeline's ``ContainerInventory`` (or anything with a
    ``containers`` mapping of ``ContainerLike``). ``close()`` on shutdown stops the
    writable-layer sampler thread that ``cfg.fs_usage`` starts on the first scrape.
    """
    return ContainerCollector(cfg, source, data_root=data_root)
