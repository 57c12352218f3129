"""Where a container's cgroup lives, on cgroup v1, v2 and the v1+v2 "hybrid" layout.

Docker names the cgroup after the full container ID (moby ``daemon/oci_linux.go``):

==========  ==================  ===========================================
version     driver              container directory (relative to the mount)
==========  ==================  ===========================================
v1          cgroupfs            ``<controller>/docker/<id>``
v1          systemd             ``<controller>/system.slice/docker-<id>.scope``
v2          cgroupfs            ``docker/<id>``
v2          systemd             ``system.slice/docker-<id>.scope``
==========  ==================  ===========================================

``--cgroup-parent``, rootless Docker and nesting change the prefix, so when none of the
usual paths exists the path is taken from ``/proc/<pid>/cgroup`` (``0::<path>`` on v2,
``N:<controllers>:<path>`` on v1). That file shows paths relative to the *reader's*
cgroup namespace: an agent in a container needs ``--cgroupns=host`` and the host's
``/sys/fs/cgroup`` (and ``/proc``, for the PID fallback and network counters).

The resolved path is cached per container and recomputed when its PID changes (a
restart can move it); the file paths a scrape reads are precomputed once, and files the
kernel does not provide (no swap accounting, no PSI, a controller not enabled) are
remembered so later scrapes do not ask again. The files stay open between scrapes (read
again with ``pread`` at offset 0, a quarter of the cost of ``open``/``read``/``close``),
within a share of the open-file limit (:class:`HeldFiles`); past it they are opened per
read as before.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import resource
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from agent.metrics.kernelfs import open_for_pread, pread_whole, read_bytes

if TYPE_CHECKING:
    from agent.metrics.containers.stats import CgroupSpec

log = logging.getLogger(__name__)


# A read failing with these means "the kernel has no such file here", not an error.
_ABSENT_ERRNOS = frozenset({errno.ENOENT, errno.ENODEV, errno.EOPNOTSUPP, errno.ENOTDIR})

_V1_FILES = {
    "cpuacct": ("cpuacct.usage_percpu", "cpuacct.usage", "cpuacct.stat"),
    "cpu": ("cpu.stat", "cpu.cfs_quota_us", "cpu.cfs_period_us", "cpu.shares"),
    "memory": (
        "memory.usage_in_bytes",
        "memory.max_usage_in_bytes",
        "memory.failcnt",
        "memory.stat",
        "memory.oom_control",
        "memory.limit_in_bytes",
        "memory.memsw.limit_in_bytes",
        "memory.soft_limit_in_bytes",
    ),
    "blkio": (
        "blkio.throttle.io_service_bytes_recursive",
        "blkio.throttle.io_serviced_recursive",
    ),
    "pids": ("pids.current", "pids.max"),
}
_V2_FILES = (
    "cpu.stat",
    "cpu.max",
    "cpu.weight",
    "memory.current",
    "memory.peak",
    "memory.max",
    "memory.low",
    "memory.swap.current",
    "memory.swap.max",
    "memory.stat",
    "memory.events",
    "io.stat",
    "pids.current",
    "pids.max",
)
_PSI_FILES = ("cpu.pressure", "memory.pressure", "io.pressure")


@dataclass(frozen=True)
class CgroupLayout:
    """The cgroup filesystem as mounted under ``root``.

    ``version`` is 2 for the unified hierarchy, 1 for per-controller hierarchies and 0
    when nothing is mounted there. On v1, ``unified`` is the hybrid layout's cgroup2 mount
    (systemd's ``/sys/fs/cgroup/unified``), read only for pressure (PSI) files.
    """

    root: str
    version: int
    controllers: dict[str, str] = field(default_factory=dict)
    unified: str | None = None

    @classmethod
    def detect(cls, root: str) -> CgroupLayout:
        root = root.rstrip("/") or "/"
        if os.path.exists(f"{root}/cgroup.controllers"):
            return cls(root, 2, unified=root)
        controllers: dict[str, str] = {}
        unified = None
        try:
            entries = sorted(os.scandir(root), key=lambda e: e.name)
        except OSError:
            entries = []
        for entry in entries:
            if not entry.is_dir():
                continue
            if os.path.exists(f"{entry.path}/cgroup.controllers"):
                unified = entry.path
                continue
            # "cpu,cpuacct" mounts serve both; a "cpu" symlink to it changes nothing.
            for name in entry.name.split(","):
                controllers.setdefault(name, entry.path)
        if not controllers:
            return cls(root, 0)
        return cls(root, 1, controllers, unified)

    @property
    def reference(self) -> str | None:
        """The hierarchy whose directory decides whether a container's cgroup exists."""
        if self.version == 2:
            return self.root
        for name in ("memory", "cpu", "pids", "cpuacct", "blkio"):
            if name in self.controllers:
                return self.controllers[name]
        return None


def systemd_slice_path(slice_name: str) -> str:
    """``a-b.slice`` -> ``/a.slice/a-b.slice`` (systemd nests slices by dash prefix)."""
    stem = slice_name.removesuffix(".slice")
    if stem in ("", "-"):
        return ""
    parts = stem.split("-")
    return "".join("/" + "-".join(parts[: i + 1]) + ".slice" for i in range(len(parts)))


def candidate_paths(container_id: str, cgroup_parent: str | None) -> list[str]:
    """Where Docker puts the cgroup for this parent, both drivers, most likely first."""
    parent = (cgroup_parent or "").strip()
    found: list[str] = []
    if parent.endswith(".slice"):
        found.append(f"{systemd_slice_path(parent)}/docker-{container_id}.scope")
    elif parent:
        found.append(f"/{parent.strip('/')}/{container_id}")
    found += [f"/docker/{container_id}", f"/system.slice/docker-{container_id}.scope"]
    return found


def path_from_proc(procfs: str, pid: int, layout: CgroupLayout) -> str | None:
    """The process's cgroup path from ``/proc/<pid>/cgroup`` for this layout."""
    try:
        data = read_bytes(f"{procfs}/{pid}/cgroup").decode("utf-8", "replace")
    except OSError:
        return None
    by_controller: dict[str, str] = {}
    for line in data.splitlines():
        hierarchy, _, rest = line.partition(":")
        names, _, path = rest.partition(":")
        if hierarchy == "0" and not names:
            by_controller[""] = path
        for name in names.split(","):
            by_controller.setdefault(name, path)
    if layout.version == 2:
        return by_controller.get("")
    for name in ("memory", "cpu", "pids", "cpuacct", "blkio"):
        if name in by_controller:
            return by_controller[name]
    return None


# The share of RLIMIT_NOFILE that cgroup files may hold open, and a ceiling: log files,
# sockets and the rest of the agent need the remainder.
_HELD_SHARE = 4
_HELD_CEILING = 16384


class HeldFiles:
    """A budget of cgroup files kept open across scrapes, shared by all containers.

    At the usual limits (``ulimit -n`` 1024 soft) that is 256 files, about 20 containers on
    cgroup v1; the agent raises its soft limit to the hard one at start, as Go programs
    (node_exporter, cAdvisor) do, which leaves room for hundreds.
    """

    def __init__(self, limit: int | None = None) -> None:
        if limit is None:
            soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
            unlimited = soft == resource.RLIM_INFINITY
            limit = _HELD_CEILING if unlimited else min(soft // _HELD_SHARE, _HELD_CEILING)
        self.limit = limit
        self.held = 0

    def open(self, path: str) -> int | None:
        """An fd held against the budget, or None when the budget is spent."""
        if self.held >= self.limit:
            return None
        fd = open_for_pread(path)
        self.held += 1
        return fd

    def close(self, fd: int) -> None:
        self.held -= 1
        with contextlib.suppress(OSError):
            os.close(fd)


class CgroupHandle:
    """One container's cgroup: its ``id`` label, the full path of every file read, the
    files held open (``fds``) and its last-read limits (``spec``, from ``spec_read_at``)."""

    __slots__ = (
        "absent",
        "anchor",
        "cgroup",
        "fds",
        "files",
        "held",
        "pid",
        "spec",
        "spec_read_at",
        "version",
    )

    def __init__(
        self, layout: CgroupLayout, cgroup: str, pid: int, held: HeldFiles | None = None
    ) -> None:
        self.cgroup = cgroup
        self.pid = pid
        self.version = layout.version
        self.held = held if held is not None else HeldFiles(0)
        self.fds: dict[str, int] = {}
        self.files: dict[str, str] = {}
        self.absent: set[str] = set()
        self.spec: CgroupSpec | None = None
        self.spec_read_at = 0.0
        if layout.version == 2:
            base = layout.root + cgroup
            for name in _V2_FILES + _PSI_FILES:
                self.files[name] = f"{base}/{name}"
            self.anchor = base
            return
        for controller, names in _V1_FILES.items():
            mount = layout.controllers.get(controller)
            if mount is not None:
                for name in names:
                    self.files[name] = f"{mount}{cgroup}/{name}"
        if layout.unified is not None:
            for name in _PSI_FILES:
                self.files[name] = f"{layout.unified}{cgroup}/{name}"
        self.anchor = f"{layout.reference}{cgroup}"

    def read(self, name: str, path: str) -> bytes:
        """The file's content now: through its held fd, opening (and holding) it if the
        budget allows. A held fd that fails is closed, so the next scrape opens afresh."""
        fd = self.fds.get(name)
        if fd is None:
            fd = self.held.open(path)
            if fd is None:
                return read_bytes(path)
            self.fds[name] = fd
        try:
            return pread_whole(fd)
        except OSError:
            del self.fds[name]
            self.held.close(fd)
            raise

    def close(self) -> None:
        """Give back every held fd (the container is gone or its cgroup moved)."""
        for fd in self.fds.values():
            self.held.close(fd)
        self.fds.clear()


class CgroupReads:
    """Reads one container's files for one scrape, sorting failures into three kinds.

    A file the kernel does not provide is remembered in ``handle.absent``; any other
    error (EACCES, EIO) is kept in ``errors`` for the caller to report; and when the
    cgroup directory itself is gone the container exited mid-scrape (``vanished``), in
    which case nothing read for it should be published.
    """

    __slots__ = ("_maybe_absent", "errors", "handle")

    def __init__(self, handle: CgroupHandle) -> None:
        self.handle = handle
        self.errors: list[tuple[str, OSError]] = []
        self._maybe_absent: list[str] = []

    def get(self, name: str) -> bytes | None:
        handle = self.handle
        if name in handle.absent:
            return None
        path = handle.files.get(name)
        if path is None:
            return None
        try:
            return handle.read(name, path)
        except OSError as exc:
            if exc.errno in _ABSENT_ERRNOS:
                self._maybe_absent.append(name)
            else:
                self.errors.append((path, exc))
            return None

    def vanished(self) -> bool:
        """Settle this scrape's missing files; True when the whole cgroup is gone.

        Held files of a removed cgroup fail with ENODEV, but a filesystem that keeps
        unlinked files readable would serve the dead cgroup's last numbers: with files
        held, the directory is checked every scrape (one ``stat``, 3 µs).
        """
        if not self._maybe_absent and not self.handle.fds:
            return False
        if not os.path.isdir(self.handle.anchor):
            return True
        self.handle.absent.update(self._maybe_absent)
        return False


class CgroupResolver:
    """Container ID -> :class:`CgroupHandle`, cached until the container's PID changes."""

    def __init__(self, layout: CgroupLayout, procfs: str, held: HeldFiles | None = None) -> None:
        self.layout = layout
        self.procfs = procfs
        self.held = held if held is not None else HeldFiles()
        self._cache: dict[str, CgroupHandle] = {}

    def resolve(
        self, container_id: str, pid: int, cgroup_parent: str | None
    ) -> CgroupHandle | None:
        handle = self._cache.get(container_id)
        if handle is not None:
            if handle.pid == pid:
                return handle
            handle.close()
        reference = self.layout.reference
        if reference is None:
            return None
        cgroup = None
        for candidate in candidate_paths(container_id, cgroup_parent):
            if os.path.isdir(reference + candidate):
                cgroup = candidate
                break
        if cgroup is None and pid > 0:
            from_proc = path_from_proc(self.procfs, pid, self.layout)
            if from_proc and os.path.isdir(reference + from_proc.rstrip("/")):
                cgroup = from_proc.rstrip("/")
        if not cgroup:
            self._cache.pop(container_id, None)
            return None
        handle = CgroupHandle(self.layout, cgroup, pid, self.held)
        self._cache[container_id] = handle
        return handle

    def forget(self, container_id: str) -> None:
        handle = self._cache.pop(container_id, None)
        if handle is not None:
            handle.close()

    def retain(self, container_ids: set[str]) -> None:
        """Drop cached handles of containers no longer listed."""
        for gone in self._cache.keys() - container_ids:
            self._cache.pop(gone).close()

    def close(self) -> None:
        for handle in self._cache.values():
            handle.close()
        self._cache.clear()
