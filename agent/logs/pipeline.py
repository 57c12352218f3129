"""The Promtail replacement, wired: discovery -> readers -> shipper -> Loki -> positions.

One :class:`TargetReader` task per followed file; one :class:`Shipper` with one sender;
positions advance only when the shipper settles a batch. The pipeline also exports the
lag gauges none of the replaced agents have: bytes not yet acknowledged and the age of the
oldest unacknowledged entry, per container.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import orjson
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from agent.config import AgentConfig
from agent.dependencies import LOG_FILES, POSITIONS
from agent.logs.access import FileProblem, check_log_file
from agent.logs.discovery import (
    ContainerInventory,
    ContainerTargetFeed,
    InventoryEvent,
    StaticFileDiscovery,
    TargetEvent,
)
from agent.logs.loki import LokiPushClient
from agent.logs.model import LogTarget, PushBatch
from agent.logs.positions import PositionsStore
from agent.logs.reader import TargetReader
from agent.logs.shipper import Shipper
from agent.logs.stages.assembly import TargetStages
from agent.logs.stages.base import StageContext
from agent.logs.tail import PREOPENED, FileFollower, FollowOptions
from agent.metrics.self import AgentMetrics

if TYPE_CHECKING:
    from agent.logs.journal import JournalSource

log = logging.getLogger("agent.logs.pipeline")

STATIC_FILE_RECHECK_SECONDS = 0.5
# How often unreadable container logs are looked at again, gauges refreshed, and
# pre-opened descriptors swept.
HOUSEKEEPING_SECONDS = 2.0


class DryRunSink:
    """``--dry-run``: one JSON object per entry on stdout instead of a push; always settles."""

    aborted = False

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def request_stop(self) -> None:
        return None

    def seal(self, batch: PushBatch) -> PushBatch:
        return batch  # printed entry by entry: nothing to encode ahead

    async def send(self, batch: PushBatch) -> DryRunSink:
        out = sys.stdout.buffer
        for labels, entries in batch.streams.items():
            label_dict = labels.as_dict()
            for entry in entries:
                doc = {
                    "labels": label_dict,
                    "metadata": dict(entry.metadata),
                    "ts_ns": str(entry.ts_ns),
                    "line": entry.line,
                }
                out.write(orjson.dumps(doc) + b"\n")
        out.flush()
        return self


class LogPipeline:
    """Owns discovery, readers, the shipper and positions for the log half of the agent."""

    def __init__(
        self,
        config: AgentConfig,
        metrics: AgentMetrics,
        inventory: ContainerInventory,
        dry_run: bool = False,
    ) -> None:
        self.config = config
        self.logs = config.logs
        self.metrics = metrics
        self.dry_run = dry_run
        self.positions = PositionsStore(self.logs.positions_file)
        self.sink: Any = DryRunSink() if dry_run else LokiPushClient(self.logs.loki, metrics)
        self.shipper = Shipper(
            self.sink,
            self._commit,
            batch_size=self.logs.loki.batch_size,
            batch_wait=self.logs.loki.batch_wait,
            max_in_flight_bytes=self.logs.pipeline.max_in_flight_bytes,
            max_request_size=self.logs.loki.max_request_size,
        )
        self.inventory = inventory
        self.stages = TargetStages(self.logs, StageContext(metrics=metrics))
        self.feed: ContainerTargetFeed | None = None
        if self.logs.docker.enabled:
            self.feed = ContainerTargetFeed(
                self.inventory,
                config.docker,
                self.logs.pipeline,
                config.hostname,
                self._on_target,
                opt_out_label=self.logs.docker.opt_out_label,
            )
        self.static: StaticFileDiscovery | None = None
        if self.logs.files:
            self.static = StaticFileDiscovery(
                self.logs.files,
                config.hostname,
                self._on_target,
                pipeline=self.logs.pipeline,
                metrics=metrics,
            )
        self.journal: JournalSource | None = None
        self.readers: dict[str, TargetReader] = {}
        # Container targets whose file cannot be opened (said once each), and those that
        # never started (no file yet, nothing to say): looked at again by housekeeping.
        self.unreadable: dict[str, tuple[LogTarget, FileProblem]] = {}
        self._not_started: dict[str, LogTarget] = {}
        self._deps = metrics.dependencies
        self._positions_changed = asyncio.Event()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._background: list[asyncio.Task[Any]] = []
        self._stop = asyncio.Event()
        # Containers that existed when the agent first ran (no positions file yet): the
        # only ones initial_position applies to; any container seen later starts at 0.
        self._initial_ids: frozenset[str] = frozenset()
        self._started = False

    # -- lifecycle ---------------------------------------------------------------------
    async def start(self) -> None:
        self.positions.load()
        if self.positions.first_start:
            self._initial_ids = frozenset(self.inventory.containers)
        await self.sink.start()
        self.shipper.start()
        if self.feed is not None:
            # The app ran discovery's initial sync before this: the feed starts with every
            # container already known.
            self._spawn(self._watch_deaths(self.inventory.subscribe()), "death-watch")
            self._spawn(self.feed.run(self._stop), "target-feed")
        if self.static is not None:
            self.static.apply(await asyncio.to_thread(self.static.match))
            self._spawn(self.static.run(self._stop), "static-files")
        if self.logs.journal.enabled:
            self._start_journal()
        self._spawn(self._sync_positions(), "positions")
        self._spawn(self._housekeeping(), "housekeeping")
        self._started = True

    async def stop(self, deadline: float) -> None:
        """Stop reading, send what was read (until ``deadline``), save positions."""
        self._stop.set()
        for reader in self.readers.values():
            reader.stop()
        readers = set(self._tasks.values())
        if self.journal is not None:
            self.journal.stop()
            readers.add(self._journal_task)
        if readers:
            # Readers (and the journal) hand over what stages still hold before the drain.
            await asyncio.wait(readers, timeout=2.0)
        drained = await self.shipper.drain(deadline)
        for task in [*self._background, *self._tasks.values()]:
            task.cancel()
        for task in [*self._background, *self._tasks.values()]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for reader in self.readers.values():
            reader.follower.close()
        if not self.dry_run:
            self._save_positions()
        await self.sink.close()
        log.info("log pipeline stopped", extra={"all_sent": drained})

    def _spawn(self, coro: Any, name: str) -> None:
        self._background.append(asyncio.create_task(coro, name=name))

    # -- targets -----------------------------------------------------------------------
    def _on_target(self, event: TargetEvent) -> None:
        target = event.target
        reader = self.readers.get(target.key)
        if event.kind in ("added", "updated"):
            if reader is None:
                self._start_reader(target)
            else:
                reader.update_target(target)
        elif event.kind == "removed":
            self._not_started.pop(target.key, None)
            if self.unreadable.pop(target.key, None) is not None:
                self._file_checks_changed()
            if reader is not None:
                reader.finish()

    def _start_reader(self, target: LogTarget) -> None:
        if self._stop.is_set():
            return
        if target.kind == "docker" and not self._log_file_readable(target):
            return
        saved = self.positions.get(target.key)
        follower = FileFollower.open(
            target.path,
            saved.position if saved is not None else None,
            start_at_end=(
                saved is None
                and target.container_id in self._initial_ids
                and self.logs.docker.initial_position == "end"
            ),
            # A container seen for the first time is read from its beginning, which may
            # already lie in rotated files; static files keep Promtail's behaviour.
            read_rotated=target.kind == "docker",
            options=FollowOptions(rotated_file_bytes=target.max_size),
        )
        rules = self.stages.rules_for(target)
        reader = TargetReader(
            target,
            follower,
            self.shipper,
            self.logs.pipeline,
            self.metrics,
            stages=self.stages.pipeline_for(target, rules),
            parse_format=rules.format,
        )
        self.readers[target.key] = reader
        task = asyncio.create_task(self._run_reader(reader), name=f"reader:{target.name}")
        self._tasks[target.key] = task
        self._update_gauges()
        log.info(
            "following",
            extra={"target": target.name, "path": str(target.path), "resumed": saved is not None},
        )

    def _log_file_readable(self, target: LogTarget) -> bool:
        """Whether to start reading now; otherwise the target is parked and said why, once."""
        key = target.key
        self._not_started.pop(key, None)
        problem = check_log_file(target, self.config.docker.data_root)
        if problem is None:
            if self.unreadable.pop(key, None) is not None:
                log.info("log file readable now", extra={"target": target.name})
                self._file_checks_changed()
            return True
        if not target.started:
            self._not_started[key] = target  # created, never started: no file yet
            return False
        known = self.unreadable.get(key)
        self.unreadable[key] = (target, problem)
        if known is None or known[1].reason != problem.reason:
            log.warning(
                f"cannot read the logs of container {target.name}: {problem.reason}",
                extra={
                    "target": target.name,
                    "container_id": target.container_id,
                    "path": str(target.path),
                    "docker_path": target.docker_path,
                    "fix": problem.fix,
                },
            )
        self._file_checks_changed()
        return False

    def _file_checks_changed(self) -> None:
        self.metrics.unreadable_targets.set(len(self.unreadable))
        if not self.unreadable:
            self._deps.up(LOG_FILES)
            return
        kinds = {problem.kind for _, problem in self.unreadable.values()}
        kind = "permission_denied" if "permission_denied" in kinds else min(kinds)
        target, problem = next((t, p) for t, p in self.unreadable.values() if p.kind == kind)
        what = {
            "not_found": "container log files not found",
            "permission_denied": "permission denied on container log files",
        }.get(kind, "container log files unreadable")
        self._deps.down(LOG_FILES, f"{what} under {target.path.parent.parent}", problem.fix)

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(HOUSEKEEPING_SECONDS)
            for key, (target, _) in list(self.unreadable.items()):
                if key in self.unreadable and key not in self.readers:
                    self._start_reader(target)
            for key, target in list(self._not_started.items()):
                if key not in self.readers:
                    self._start_reader(target)
            self._update_gauges()
            PREOPENED.sweep()

    async def _run_reader(self, reader: TargetReader) -> None:
        key = reader.target.key
        try:
            await reader.run()
        except Exception:
            log.exception("reader crashed", extra={"target": reader.target.name})
        if self._stop.is_set():
            return
        # Finished (destroyed container, drained): forget it once its lines are settled.
        while self.shipper.holds(key) and not self._stop.is_set():  # noqa: ASYNC110
            await asyncio.sleep(0.2)
        reader.follower.close()
        self.readers.pop(key, None)
        self._tasks.pop(key, None)
        if not self._stop.is_set():
            self.positions.remove(key)
        self._update_gauges()
        log.info("forgot finished target", extra={"target": reader.target.name})
        await self._await_static_file_back(reader.target)

    async def _await_static_file_back(self, target: LogTarget) -> None:
        """A static file whose follower finished (path gone) while its glob still lists it.

        The glob only re-announces a file after one pass sees it missing, so a file deleted
        and re-created between two passes would never be followed again: watch the path
        until it comes back (a new file, read from 0) or the glob drops the target.
        """
        if target.kind != "file" or self.static is None:
            return
        key = target.key
        while not self._stop.is_set() and key not in self.readers:
            if key not in self.static.targets:
                return
            if target.path.exists():
                self._start_reader(target)
                return
            await asyncio.sleep(STATIC_FILE_RECHECK_SECONDS)

    async def _watch_deaths(self, queue: asyncio.Queue[InventoryEvent]) -> None:
        """A container that died cannot finish a half-written line: let its reader know."""
        while True:
            event = await queue.get()
            if event.kind in ("died", "removed"):
                reader = self.readers.get(f"docker:{event.container.id}")
                if reader is not None:
                    reader.writer_died()

    def _update_gauges(self) -> None:
        self.metrics.active_containers.set(
            sum(1 for r in self.readers.values() if r.target.kind == "docker")
        )
        self.metrics.active_files.set(sum(r.follower.open_files for r in self.readers.values()))

    # -- positions ---------------------------------------------------------------------
    def _start_journal(self) -> None:
        from agent.logs.journal import JournalSource, journal_target

        target = journal_target(self.logs.journal, self.config.hostname)
        saved = self.positions.get(target.key)
        self.journal = JournalSource(
            self.logs.journal,
            self.logs.pipeline,
            target,
            self.shipper,
            self.metrics,
            self.stages.pipeline_for(target),
            saved.cursor if saved is not None and saved.cursor else None,
        )
        self._journal_task = asyncio.create_task(self.journal.run(), name="journal")
        self._background.append(self._journal_task)

    def _commit(self, key: str, commit: Any) -> None:
        if self.journal is not None and key == self.journal.key:
            if commit is not None:
                path = str(self.logs.journal.path or "")
                self.positions.set_cursor(key, commit, path=path)
                self._positions_changed.set()
            return
        file_id, offset = commit
        reader = self.readers.get(key)
        path = str(reader.target.path) if reader is not None else str(file_id.path)
        self.positions.set(key, FileFollower.position_for(offset, file_id), path=path)
        self._positions_changed.set()

    async def _sync_positions(self) -> None:
        """Write positions promptly after acknowledgements, at most once per interval.

        A SIGKILL then re-sends about one interval of lines (plus what was in flight),
        never more; the write itself is atomic (see :mod:`agent.logs.positions`).
        """
        interval = self.logs.positions_sync_interval
        while True:
            await self._positions_changed.wait()
            self._positions_changed.clear()
            began = time.monotonic()
            if not self.dry_run and self.positions.dirty:
                await asyncio.to_thread(self._save_positions)
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - began)))

    def _save_positions(self) -> None:
        if self.positions.save():
            self._deps.up(POSITIONS)
            return
        self._deps.down(
            POSITIONS,
            f"cannot write {self.positions.path}: {self.positions.last_error}",
            "give the agent a writable directory for logs.positions_file (a volume in a "
            "container); until then a restart re-sends lines Loki already has",
        )

    # -- health ------------------------------------------------------------------------
    def readiness(self) -> tuple[bool, str]:
        if not self._started:
            return False, "starting"
        if self.unreadable and not any(r.target.kind == "docker" for r in self.readers.values()):
            target, problem = next(iter(self.unreadable.values()))
            return False, (
                f"no container log can be read ({len(self.unreadable)} unreadable); "
                f"{target.name}: {problem.reason}; fix: {problem.fix}"
            )
        return True, "ready"

    def lag_collector(self) -> Collector:
        return _LagCollector(self)


class _LagCollector(Collector):
    """Per-target lag, computed at scrape time from the readers and unsettled batches."""

    def __init__(self, pipeline: LogPipeline) -> None:
        self._pipeline = pipeline

    def collect(self) -> Iterator[Metric]:
        pipeline = self._pipeline
        unacked = GaugeMetricFamily(
            "nexo_agent_unacked_bytes",
            "Log bytes on disk or in flight that Loki has not acknowledged yet.",
            labels=["container"],
        )
        oldest = GaugeMetricFamily(
            "nexo_agent_oldest_unacked_entry_age_seconds",
            "Age of the oldest entry read but not yet acknowledged by Loki (0 = none).",
            labels=["container"],
        )
        in_flight = GaugeMetricFamily(
            "nexo_agent_in_flight_bytes",
            "Bytes read and held in memory until Loki acknowledges them.",
            value=pipeline.shipper.in_flight_bytes,
        )
        pending_bytes: dict[str, int] = {}
        oldest_ts: dict[str, int] = {}
        # The sender thread of control is the event loop; a copy avoids mutation races
        # with this scrape running in the server's worker thread.
        for batch in list(pipeline.shipper.unsettled()):
            for key, size in list(batch.target_bytes.items()):
                pending_bytes[key] = pending_bytes.get(key, 0) + size
            for key, ts in list(batch.oldest_ts.items()):
                if key not in oldest_ts or ts < oldest_ts[key]:
                    oldest_ts[key] = ts
        now_ns = time.time_ns()
        for key, reader in list(pipeline.readers.items()):
            name = reader.target.name
            try:
                on_disk = reader.follower.unread_bytes()
            except (OSError, ValueError):  # closed by the loop while this scrape ran
                on_disk = 0
            unacked.add_metric([name], float(on_disk + pending_bytes.get(key, 0)))
            oldest_ns = oldest_ts.get(key)
            age = max(0.0, (now_ns - oldest_ns) / 1e9) if oldest_ns else 0.0
            oldest.add_metric([name], age)
        yield unacked
        yield oldest
        yield in_flight
