"""Batching, the in-flight bound, one sender, and acknowledgement back to positions.

Readers add entries with the file position that becomes safe to commit once that entry is
settled. Batches are sent one at a time, in order, so a target's committed position only
ever moves forward and always points just past an entry Loki accepted (or rejected for
good). While Loki is slow or down, the bytes held here reach ``max_in_flight_bytes`` and
``wait_for_room`` parks every reader: memory stays bounded and the log files are the
buffer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from agent.logs.loki_encode import split_batch
from agent.logs.model import PushBatch, PushEntry, StreamLabels

log = logging.getLogger("agent.logs.shipper")


class BatchSink(Protocol):
    """A Loki client (or the dry-run printer): ``send`` returns a result with ``aborted``."""

    def seal(self, batch: PushBatch) -> PushBatch:
        """Prepare a batch that will wait its turn (encode it, drop the entries)."""
        ...

    async def send(self, batch: PushBatch) -> Any: ...

    def request_stop(self) -> None: ...


# Called with (target key, commit position) once a batch holding that target settles.
CommitCallback = Callable[[str, Any], None]


@dataclass(slots=True)
class PendingBatch:
    """A batch plus what settling it means for each target it carries."""

    batch: PushBatch = field(default_factory=PushBatch)
    created: float = field(default_factory=time.monotonic)
    # target key -> position to commit when this batch is settled
    commits: dict[str, Any] = field(default_factory=dict)
    # target key -> Docker timestamp (ns) of its oldest entry in this batch
    oldest_ts: dict[str, int] = field(default_factory=dict)
    # target key -> bytes of its entries in this batch
    target_bytes: dict[str, int] = field(default_factory=dict)
    # The requests to send (``batch`` split under max_request_size), sealed by the sink.
    parts: list[PushBatch] = field(default_factory=list)


class Shipper:
    """Collects entries into batches of at most ``batch_size`` bytes and ships them in order."""

    def __init__(
        self,
        sink: BatchSink,
        on_commit: CommitCallback,
        batch_size: int,
        batch_wait: float,
        max_in_flight_bytes: int,
        max_request_size: int,
    ) -> None:
        self._sink = sink
        self._on_commit = on_commit
        self._batch_size = batch_size
        self._batch_wait = batch_wait
        self._max_in_flight = max_in_flight_bytes
        self._max_request = max_request_size
        self._current = PendingBatch()
        self._queue: deque[PendingBatch] = deque()
        self._sending: PendingBatch | None = None
        self._in_flight_bytes = 0
        self._room = asyncio.Event()
        self._room.set()
        self._work = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    # -- reader side -------------------------------------------------------------------
    def has_room(self) -> bool:
        return self._in_flight_bytes < self._max_in_flight

    async def wait_for_room(self, timeout: float) -> bool:
        """Park the caller (up to ``timeout``) while too many bytes await acknowledgement."""
        if self._in_flight_bytes < self._max_in_flight:
            return True
        self._room.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._room.wait(), timeout)
        return self._in_flight_bytes < self._max_in_flight

    def add_group(
        self,
        key: str,
        groups: dict[StreamLabels, list[PushEntry]],
        count: int,
        size: int,
        oldest_ts: int,
        commit: Any,
    ) -> None:
        """Queue one chunk's entries; ``commit`` becomes ``key``'s position once settled.

        ``size`` is the line + structured-metadata bytes of the entries (what Loki's rate
        limiter charges), ``oldest_ts`` the smallest entry timestamp (for the lag gauge).
        """
        if not count:
            self.advance(key, commit)
            return
        pending = self._current
        batch = pending.batch
        if not batch.entry_count and not pending.commits:
            pending.created = time.monotonic()
            self._work.set()  # the sender starts the batch_wait clock
        streams = batch.streams
        for labels, entries in groups.items():
            existing = streams.get(labels)
            if existing is None:
                streams[labels] = entries
            else:
                existing.extend(entries)
        batch.entry_count += count
        batch.size_bytes += size
        pending.commits[key] = commit
        if key in pending.oldest_ts:
            pending.target_bytes[key] += size
            if oldest_ts < pending.oldest_ts[key]:
                pending.oldest_ts[key] = oldest_ts
        else:
            pending.oldest_ts[key] = oldest_ts
            pending.target_bytes[key] = size
        self._in_flight_bytes += size
        if batch.size_bytes >= self._batch_size:
            self._seal()

    def advance(self, key: str, commit: Any) -> None:
        """Move ``key``'s position without an entry (a dropped or empty stretch of file)."""
        if self._sending is None and not self._queue and not self._current.batch.entry_count:
            # Nothing unsettled anywhere: committing now cannot skip an unsent entry.
            self._current.commits.pop(key, None)
            self._on_commit(key, commit)
        else:
            if not self._current.commits and not self._current.batch.entry_count:
                self._current.created = time.monotonic()
                self._work.set()
            self._current.commits[key] = commit

    # -- introspection -----------------------------------------------------------------
    @property
    def in_flight_bytes(self) -> int:
        return self._in_flight_bytes

    def unsettled(self) -> list[PendingBatch]:
        """Every batch not yet settled, oldest first (for lag gauges)."""
        batches = list(self._queue)
        if self._sending is not None:
            batches.insert(0, self._sending)
        if self._current.batch.entry_count:
            batches.append(self._current)
        return batches

    def holds(self, key: str) -> bool:
        """Whether ``key`` still has entries or a position waiting to be settled."""
        batches = [*self._queue, self._current]
        if self._sending is not None:
            batches.append(self._sending)
        return any(key in p.commits for p in batches)

    # -- sender side -------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="shipper")

    def _seal(self) -> None:
        pending = self._current
        if pending.batch.entry_count or pending.commits:
            if pending.batch.entry_count:
                # Encoded now rather than when its turn comes: until then (up to
                # max_in_flight_bytes of batches, all of them while Loki is down) it waits
                # as a compressed body instead of ~3x its bytes in Python objects.
                seal = self._sink.seal
                pending.parts = [seal(part) for part in self._parts(pending.batch)]
                if pending.parts[0] is not pending.batch:  # split: the parts hold the entries
                    pending.batch.streams = {}
            self._queue.append(pending)
            self._current = PendingBatch()
            self._work.set()

    async def _run(self) -> None:
        while True:
            if not self._queue:
                timeout = None
                if self._current.batch.entry_count or self._current.commits:
                    age = time.monotonic() - self._current.created
                    timeout = max(0.0, self._batch_wait - age)
                    if timeout == 0.0:
                        self._seal()
                        continue
                elif self._closing:
                    return
                self._work.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._work.wait(), timeout)
                continue
            pending = self._queue.popleft()
            self._sending = pending
            # Loki refuses a request larger than its burst forever: parts never exceed it.
            if pending.batch.entry_count:
                for part in pending.parts:
                    result = await self._sink.send(part)
                    if getattr(result, "aborted", False):
                        # Shutdown interrupted a retry: nothing is committed, the data is
                        # still on disk and is read again at the next start.
                        self._sending = None
                        return
            self._settle(pending)
            self._sending = None

    def _parts(self, batch: PushBatch) -> list[PushBatch]:
        # Cheap bound first: the exact per-entry estimate is only worth it near the cap.
        bound = batch.size_bytes + 96 * batch.entry_count + 4096 * len(batch.streams)
        return [batch] if bound < self._max_request else split_batch(batch, self._max_request)

    def _settle(self, pending: PendingBatch) -> None:
        for key, commit in pending.commits.items():
            self._on_commit(key, commit)
        self._in_flight_bytes -= pending.batch.size_bytes
        if self._in_flight_bytes < self._max_in_flight:
            self._room.set()

    async def drain(self, deadline: float) -> bool:
        """Seal what is buffered and send it all, giving up at ``deadline`` (monotonic).

        Returns True when everything read was settled.
        """
        self._closing = True
        self._seal()
        self._work.set()
        task = self._task
        if task is None:
            return not self._queue
        remaining = max(0.0, deadline - time.monotonic())
        done, _ = await asyncio.wait({task}, timeout=remaining)
        if not done:
            self._sink.request_stop()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, 2.0)
            if not task.done():
                task.cancel()
            log.warning(
                "shutdown deadline reached with batches unsent; they are re-read at next start",
                extra={"unsent_bytes": self._in_flight_bytes},
            )
            return False
        return not self._queue and self._sending is None
