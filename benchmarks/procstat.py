"""What one process costs, read from ``/proc`` the way ``top`` and ``ps`` do.

CPU is ``utime + stime`` of ``/proc/<pid>/stat``: for a thread-group leader the kernel sums
every thread of the process (the agent's docker-events and ``to_thread`` workers included);
for windows of milliseconds, the threads' nanosecond ``schedstat`` instead.
Memory is ``VmRSS`` (now) and ``VmHWM`` (the kernel's own peak, so a spike between two
samples is not missed) from ``/proc/<pid>/status``.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
MIB = 1024 * 1024


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the whole process (all threads), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def thread_cpu_seconds(pid: int) -> float:
    """On-CPU time of the process's threads alive now, from the scheduler's nanosecond
    accounting (``/proc/PID/task/*/schedstat``): for windows of a few milliseconds, where
    ``cpu_seconds``' 10 ms clock ticks are too coarse. A thread that exits inside the
    window takes its time with it; servers keep theirs. Falls back to ``cpu_seconds``
    where the kernel has no schedstat."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            total += int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[0])
        except FileNotFoundError:
            if not Path(f"/proc/{pid}/task/{tid}").exists():
                continue  # the thread exited meanwhile
            return cpu_seconds(pid)  # no schedstat in this kernel
        except (ProcessLookupError, ValueError, IndexError):
            continue
    return total / 1e9


def _status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1])
    return 0


def rss_bytes(pid: int) -> int:
    return _status_kib(pid, "VmRSS:") * 1024


def peak_rss_bytes(pid: int) -> int:
    return _status_kib(pid, "VmHWM:") * 1024


@dataclass(frozen=True, slots=True)
class Sample:
    t: float  # seconds since the sampler started
    cpu_seconds: float
    rss_bytes: int


class ProcessSampler:
    """Samples one process's CPU time and RSS every ``interval`` seconds in a thread.

    ``window()`` gives CPU cores used (CPU seconds per wall second) between two moments, so
    a scenario can leave the agent's start-up out of its figures.
    """

    def __init__(self, pid: int, interval: float = 1.0) -> None:
        self.pid = pid
        self.interval = interval
        self.samples: list[Sample] = []
        self._origin = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="proc-sampler", daemon=True)

    def __enter__(self) -> ProcessSampler:
        self._origin = time.monotonic()
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def now(self) -> float:
        return time.monotonic() - self._origin

    def sample(self) -> Sample:
        """Take one sample now (also used to mark the edges of a measuring window)."""
        s = Sample(self.now(), cpu_seconds(self.pid), rss_bytes(self.pid))
        self.samples.append(s)
        return s

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.sample()
            except OSError:  # the process has exited
                return

    def peak_rss(self) -> int:
        try:
            return peak_rss_bytes(self.pid)
        except OSError:
            return max((s.rss_bytes for s in self.samples), default=0)


def cores_between(start: Sample, end: Sample) -> float:
    """CPU cores used on average between two samples (1.0 = one core fully busy)."""
    wall = end.t - start.t
    return (end.cpu_seconds - start.cpu_seconds) / wall if wall > 0 else 0.0
