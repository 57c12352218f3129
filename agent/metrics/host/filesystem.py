"""filesystem: size, free space and inodes of every mounted filesystem.

Mounts come from the host's ``<procfs>/1/mountinfo`` (the agent's own mount namespace in
a container would only show the container's mounts), falling back to
``<procfs>/self/mountinfo`` where pid 1 is hidden. Labels, default excludes and the
error behaviour follow node_exporter 1.12: ``device_error`` holds the error text (empty
when healthy, so Prometheus stores the same series as before the label existed), a
failed or stuck mount reports only ``device_error`` and ``readonly``, and a mount whose
statfs hangs is reported as ``mountpoint timeout`` without a new statfs until the hung
call returns (see :mod:`agent.metrics.host.statfs`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from prometheus_client import Metric

from agent.config import HostMetricsConfig
from agent.metrics import kernelfs
from agent.metrics.host.families import GaugeFamily
from agent.metrics.host.filters import NameFilter
from agent.metrics.host.registry import ScrapeContext, register
from agent.metrics.host.statfs import TIMEOUT_ERROR, StatfsFunction, StatfsPool, StuckMounts

_STAT_WORKERS = 4  # node_exporter's --collector.filesystem.stat-workers default
_LABELS = ["device", "mountpoint", "fstype", "device_error"]
_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")


@dataclass(frozen=True)
class Mount:
    device: str
    mount_point: str
    fs_type: str
    options: str
    super_options: str
    major: str
    minor: str

    @property
    def read_only(self) -> bool:
        return "ro" in self.options.split(",") or "ro" in self.super_options.split(",")


def _unescape(field: str) -> str:
    # The kernel escapes space, tab, newline and backslash in mountinfo as \ooo.
    if "\\" not in field:
        return field
    return _OCTAL_ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), field)


def parse_mountinfo(text: str) -> list[Mount]:
    """proc(5): ``id parent maj:min root mountpoint opts [optional...] - type source superopts``."""
    mounts = []
    for line in text.splitlines():
        fields = line.split(" ")
        try:
            separator = fields.index("-", 6)
            major, _, minor = fields[2].partition(":")
            mounts.append(
                Mount(
                    device=_unescape(fields[separator + 2]),
                    mount_point=_unescape(fields[4]),
                    fs_type=fields[separator + 1],
                    options=fields[5],
                    super_options=fields[separator + 3] if len(fields) > separator + 3 else "",
                    major=major,
                    minor=minor,
                )
            )
        except (ValueError, IndexError):
            continue  # a truncated or foreign line: skip it, keep the rest
    return mounts


@register("filesystem")
class FilesystemCollector:
    def __init__(self, cfg: HostMetricsConfig, statfs: StatfsFunction | None = None) -> None:
        self._mount_filter = NameFilter(cfg.filesystem_mount_points_exclude)
        self._type_filter = NameFilter(cfg.filesystem_fs_types_exclude)
        self._timeout = cfg.filesystem_stat_timeout
        self._pool = StatfsPool(_STAT_WORKERS, statfs or os.statvfs)
        self._stuck = StuckMounts()

    def _mounts(self, ctx: ScrapeContext) -> list[Mount]:
        try:
            text = kernelfs.read_text(ctx.proc("1/mountinfo"))
        except OSError:
            text = kernelfs.read_text(ctx.proc("self/mountinfo"))
        mounts = parse_mountinfo(text)
        if ctx.rootfs != "/":
            prefix = ctx.rootfs
            for index, mount in enumerate(mounts):
                point = mount.mount_point
                if point == prefix or point.startswith(prefix + "/"):
                    stripped = point[len(prefix) :] or "/"
                    mounts[index] = replace(mount, mount_point=stripped)
        return mounts

    def collect(self, ctx: ScrapeContext) -> Iterable[Metric]:
        selected: list[Mount] = []
        seen: set[tuple[str, str, str]] = set()
        for mount in self._mounts(ctx):
            if self._mount_filter.ignored(mount.mount_point) or self._type_filter.ignored(
                mount.fs_type
            ):
                continue
            key = (mount.device, mount.mount_point, mount.fs_type)
            if key in seen:
                continue  # the same filesystem mounted twice at one place
            seen.add(key)
            selected.append(mount)

        to_stat = [i for i, mount in enumerate(selected) if mount.mount_point not in self._stuck]
        batch = self._pool.run(
            [ctx.root(selected[i].mount_point) for i in to_stat],
            [selected[i].mount_point for i in to_stat],
            self._timeout,
            self._stuck,
        )
        outcomes: dict[int, tuple[Any, str]] = {i: batch.outcome(n) for n, i in enumerate(to_stat)}
        families = _Families()
        for index, mount in enumerate(selected):
            # Mounts already stuck are not stat'ed again until their hung call returns.
            result, error = outcomes.get(index, (None, TIMEOUT_ERROR))
            families.add(mount, result, error)
        return families.all()


class _Families:
    def __init__(self) -> None:
        self.size = GaugeFamily(
            "node_filesystem_size_bytes", "Filesystem size in bytes.", labels=_LABELS
        )
        self.free = GaugeFamily(
            "node_filesystem_free_bytes", "Filesystem free space in bytes.", labels=_LABELS
        )
        self.avail = GaugeFamily(
            "node_filesystem_avail_bytes",
            "Filesystem space available to non-root users in bytes.",
            labels=_LABELS,
        )
        self.files = GaugeFamily(
            "node_filesystem_files", "Filesystem total file nodes.", labels=_LABELS
        )
        self.files_free = GaugeFamily(
            "node_filesystem_files_free", "Filesystem total free file nodes.", labels=_LABELS
        )
        self.readonly = GaugeFamily(
            "node_filesystem_readonly", "Filesystem read-only status.", labels=_LABELS
        )
        self.device_error = GaugeFamily(
            "node_filesystem_device_error",
            "Whether an error occurred while getting statistics for the given device.",
            labels=_LABELS,
        )
        self.mount_info = GaugeFamily(
            "node_filesystem_mount_info",
            "Filesystem mount information.",
            labels=["device", "major", "minor", "mountpoint"],
        )

    def add(self, mount: Mount, stat: Any, error: str) -> None:
        labels = [mount.device, mount.mount_point, mount.fs_type, error]
        self.mount_info.add_metric([mount.device, mount.major, mount.minor, mount.mount_point], 1)
        self.device_error.add_metric(labels, 1 if error else 0)
        self.readonly.add_metric(labels, 1 if mount.read_only else 0)
        if error:
            return
        block_size = float(stat.f_bsize)
        self.size.add_metric(labels, stat.f_blocks * block_size)
        self.free.add_metric(labels, stat.f_bfree * block_size)
        self.avail.add_metric(labels, stat.f_bavail * block_size)
        self.files.add_metric(labels, float(stat.f_files))
        self.files_free.add_metric(labels, float(stat.f_ffree))

    def all(self) -> list[Metric]:
        return [
            self.size,
            self.free,
            self.avail,
            self.files,
            self.files_free,
            self.readonly,
            self.device_error,
            self.mount_info,
        ]
