"""statfs(2) off the scrape thread, with node_exporter's stuck-mount memory.

A statfs on a dead NFS/CIFS/FUSE mount blocks in the kernel, uninterruptibly, for as long
as the server is gone. node_exporter answers with stat workers, a mount timeout and a
"stuck" list: a mount whose statfs outlived the timeout is reported as a device error and
not stat'ed again until that call finally returns. Here the same, tuned for Python where
a thread hand-off costs more than the statfs itself: one worker stats every mount of a
scrape in turn, more workers join only while a call is slow, and a worker blocked in the
kernel is abandoned (daemon thread, it cannot be cancelled) and replaced.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

StatfsFunction = Callable[[str], Any]  # os.statvfs or a stand-in with the same fields

TIMEOUT_ERROR = "mountpoint timeout"  # node_exporter's device_error text
_SLOW_CALL = 0.05  # a statfs this slow gets other workers to carry on with the rest


class _Pending:
    pass


_PENDING = _Pending()


class StuckMounts:
    """Mount points whose statfs outlived the timeout and has not returned yet."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stuck: set[str] = set()

    def __contains__(self, mount_point: object) -> bool:
        with self._lock:
            return mount_point in self._stuck

    def add(self, mount_point: str) -> None:
        with self._lock:
            self._stuck.add(mount_point)

    def discard(self, mount_point: str) -> None:
        with self._lock:
            self._stuck.discard(mount_point)


class StatfsBatch:
    """The statfs calls of one scrape; any number of workers may take items from it."""

    def __init__(
        self, paths: Sequence[str], keys: Sequence[str], statfs: StatfsFunction, stuck: StuckMounts
    ) -> None:
        self._paths = paths
        self._keys = keys  # mount points, for the stuck list
        self._statfs = statfs
        self._stuck = stuck
        self._lock = threading.Lock()
        self._next = 0
        self._remaining = len(paths)
        self._closed = False
        self.results: list[Any] = [_PENDING] * len(paths)
        self._started: list[float | None] = [None] * len(paths)
        self._abandoned = [False] * len(paths)
        self.done = threading.Event()
        if not paths:
            self.done.set()

    def work(self) -> None:
        while True:
            with self._lock:
                index = self._next
                if self._closed or index >= len(self._paths):
                    return
                self._next += 1
                self._started[index] = time.monotonic()
            try:
                result: Any = self._statfs(self._paths[index])
            except Exception as exc:
                result = exc
            with self._lock:
                self.results[index] = result
                self._remaining -= 1
                if self._abandoned[index]:
                    self._stuck.discard(self._keys[index])  # it answered after all
                if self._remaining == 0:
                    self.done.set()

    def unstarted(self) -> bool:
        with self._lock:
            return not self._closed and self._next < len(self._paths)

    def slowest_call(self, now: float) -> float:
        """How long the oldest call still in the kernel has been running."""
        with self._lock:
            running = [
                now - started
                for started, result in zip(self._started, self.results, strict=True)
                if started is not None and result is _PENDING
            ]
        return max(running, default=0.0)

    def close(self) -> None:
        """Stop handing out items; calls still running are marked stuck."""
        with self._lock:
            self._closed = True
            for index, result in enumerate(self.results):
                if result is _PENDING and self._started[index] is not None:
                    self._abandoned[index] = True
                    self._stuck.add(self._keys[index])

    def outcome(self, index: int) -> tuple[Any, str]:
        """(statvfs result or None, device_error text) for one item after ``close``."""
        result = self.results[index]
        if result is _PENDING:
            return None, TIMEOUT_ERROR
        if isinstance(result, Exception):
            return None, go_error_text(result)
        return result, ""


def go_error_text(exc: BaseException) -> str:
    """Go's syscall errors read "permission denied"; keep node_exporter's label values."""
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror
        return text[:1].lower() + text[1:]
    return str(exc) or type(exc).__name__


class StatfsPool:
    """Daemon workers that run batches; a worker stuck in the kernel is replaced."""

    def __init__(self, workers: int = 4, statfs: StatfsFunction = os.statvfs) -> None:
        self.statfs = statfs
        self._max_workers = workers
        self._tasks: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0
        self._alive = 0

    def run(
        self, paths: Sequence[str], keys: Sequence[str], timeout: float, stuck: StuckMounts
    ) -> StatfsBatch:
        """Stat every path, waiting at most ``timeout``; the batch holds the outcomes."""
        batch = StatfsBatch(paths, keys, self.statfs, stuck)
        if not paths:
            return batch
        deadline = time.monotonic() + timeout
        self._submit(batch.work)
        helpers = 1
        while not batch.done.wait(min(_SLOW_CALL, max(0.0, deadline - time.monotonic()))):
            now = time.monotonic()
            if now >= deadline:
                break
            if (
                helpers < self._max_workers
                and batch.unstarted()
                and batch.slowest_call(now) >= _SLOW_CALL
            ):
                self._submit(batch.work)
                helpers += 1
        # A worker left in the kernel is never idle again until its call returns, so the
        # next scrape simply starts a fresh one.
        batch.close()
        return batch

    def _submit(self, task: Callable[[], None]) -> None:
        with self._lock:
            if self._idle == 0:
                self._alive += 1
                threading.Thread(target=self._work, name="statfs", daemon=True).start()
            else:
                self._idle -= 1
        self._tasks.put(task)

    def _work(self) -> None:
        while True:
            task = self._tasks.get()
            task()
            with self._lock:
                if self._idle >= self._max_workers:
                    self._alive -= 1
                    return
                self._idle += 1
