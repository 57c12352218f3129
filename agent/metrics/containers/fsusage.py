"""Writable-layer disk usage (``container_fs_usage_bytes``): slow, so off by default.

Measuring it means walking every file a container wrote, which on a busy host takes
seconds of disk I/O; cAdvisor runs ``du`` and ``find`` per container in the background
for the same reason (``container/common/fsHandler``). Here one daemon thread runs
``nice du -s -x -k`` over each running container's writable layer and its
``<data_root>/containers/<id>`` directory (logs, config), one container at a time, every
``fs_usage_interval`` seconds; a scrape only reads the last results. ``du`` is a separate
process, so the walk costs the agent neither event-loop time nor the GIL.

The writable layer is found the way Docker itself records it: the graph driver's
``image/<driver>/layerdb/mounts/<id>/mount-id`` names the layer directory. Containers on
the containerd image store have no such record and get no usage series.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

log = logging.getLogger(__name__)

# Where each graph driver keeps a layer's files, relative to <data_root>/<driver>/.
_LAYER_DIRS = ("{}/diff", "dir/{}", "subvolumes/{}", "{}")
_DU_TIMEOUT = 300.0


@dataclass(frozen=True, slots=True)
class LayerUsage:
    device: str
    usage_bytes: int
    limit_bytes: int


def writable_layer_dirs(data_root: str, container_id: str) -> list[str]:
    """The container's writable layer directory and its Docker state directory."""
    dirs = []
    try:
        drivers = os.listdir(f"{data_root}/image")
    except OSError:
        drivers = []
    for driver in drivers:
        try:
            with open(f"{data_root}/image/{driver}/layerdb/mounts/{container_id}/mount-id") as f:
                mount_id = f.read().strip()
        except OSError:
            continue
        for pattern in _LAYER_DIRS:
            candidate = f"{data_root}/{driver}/{pattern.format(mount_id)}"
            if mount_id and os.path.isdir(candidate):
                dirs.append(candidate)
                break
        break
    state = f"{data_root}/containers/{container_id}"
    if os.path.isdir(state):
        dirs.append(state)
    return dirs


def mount_source(path: str, mountinfo: str = "/proc/self/mountinfo") -> str:
    """The device (mount source) of the filesystem holding ``path``, for the label."""
    best, source = -1, ""
    try:
        with open(mountinfo, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return ""
    real = os.path.realpath(path)
    for line in lines:
        before, _, after = line.partition(" - ")
        fields, tail = before.split(), after.split()
        if len(fields) < 5 or len(tail) < 2:
            continue
        mount_point = fields[4].replace("\\040", " ")
        inside = real == mount_point or real.startswith(mount_point.rstrip("/") + "/")
        if inside and len(mount_point) > best:
            best, source = len(mount_point), tail[1]
    return source


class WritableLayerSampler:
    """Background ``du`` of writable layers; ``usage()`` is the latest result per container."""

    def __init__(self, data_root: str | Callable[[], str], interval: float) -> None:
        # A callable is asked when sampling starts (the first scrape): by then discovery
        # knows Docker's own data root.
        self._root_of = data_root if callable(data_root) else (lambda: data_root)
        self._data_root = ""
        self._interval = max(interval, 1.0)
        self._wanted: frozenset[str] = frozenset()
        self._results: dict[str, LayerUsage] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._command: list[str] = []
        du = shutil.which("du")
        if du is None:
            log.warning("container_fs_usage_bytes disabled: no 'du' binary on PATH")
        else:
            nice = shutil.which("nice")
            self._command = [*([nice, "-n", "19"] if nice else []), du, "-s", "-x", "-k"]

    def want(self, container_ids: Iterable[str]) -> None:
        """The containers to measure from now on; results of others are dropped."""
        wanted = frozenset(container_ids)
        with self._lock:
            self._wanted = wanted
            for gone in self._results.keys() - wanted:
                del self._results[gone]
        if self._thread is None and self._command:
            self._thread = threading.Thread(target=self._run, name="nexo-fs-usage", daemon=True)
            self._thread.start()

    def usage(self) -> dict[str, LayerUsage]:
        with self._lock:
            return dict(self._results)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)

    def _run(self) -> None:
        self._data_root = self._root_of().rstrip("/") or "/"
        device = mount_source(self._data_root)
        while not self._stop.is_set():
            with self._lock:
                wanted = sorted(self._wanted)
            try:
                st = os.statvfs(self._data_root)
                limit = st.f_blocks * st.f_frsize
            except OSError:
                limit = 0
            for container_id in wanted:
                if self._stop.is_set():
                    return
                used = self._measure(container_id)
                with self._lock:
                    if used is not None and container_id in self._wanted:
                        self._results[container_id] = LayerUsage(device, used, limit)
            self._stop.wait(self._interval)

    def _measure(self, container_id: str) -> int | None:
        dirs = writable_layer_dirs(self._data_root, container_id)
        if not dirs:
            return None
        try:
            done = subprocess.run(
                [*self._command, *dirs],
                capture_output=True,
                timeout=_DU_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.warning("du of container %s failed: %s", container_id[:12], exc)
            return None
        # du exits 1 when a file vanished mid-walk; the sizes it printed are still good.
        total = 0
        for line in done.stdout.splitlines():
            size = line.split(maxsplit=1)[0] if line.strip() else b""
            if size.isdigit():
                total += int(size) * 1024
        return total if done.stdout else None
