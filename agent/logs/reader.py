"""One target's reader: file chunks -> decoded, merged, parsed entries -> the shipper.

This is the per-line hot path, written for speed on purpose: one ``bytes.split`` per chunk,
label sets cached per (stream, level), no per-line objects beyond the entry itself. Every
entry carries the file position that is safe to commit once it is settled; a position
never passes the start of a 16 KiB partial that is still being merged, so a crash can
never lose the first half of a long line.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from agent.config import PipelineConfig
from agent.logs.dockerjson import PartialLineBuffer
from agent.logs.model import LogTarget, PushEntry, StreamLabels
from agent.logs.parse import parse_line
from agent.logs.shipper import Shipper
from agent.logs.tail import Chunk, FileFollower, FileIdentity, Lost, ReadFailed, Truncated
from agent.metrics.self import AgentMetrics

log = logging.getLogger("agent.logs.reader")

MAX_LABELS = 15  # Loki's max_label_names_per_series default
IDLE_POLL_SECONDS = 0.1
ROTATION_CHECK_SECONDS = 0.5
# Follower loss reasons -> nexo_agent_dropped_entries_total reasons.
_LOSS_REASONS = {"unterminated": "malformed_record", "unreadable": "rotated_away"}
# Per-line label names the reader adds on top of the target's labels.
LINE_LABELS = ("stream", "level")
METADATA_FIELDS = ("accountId", "userId", "requestId")


class TargetReader:
    """Follows one :class:`LogTarget` until it is finished and fully settled."""

    def __init__(
        self,
        target: LogTarget,
        follower: FileFollower,
        shipper: Shipper,
        pipeline: PipelineConfig,
        metrics: AgentMetrics,
    ) -> None:
        self.target = target
        self.follower = follower
        self._shipper = shipper
        self._cfg = pipeline
        self._metrics = metrics
        self._key = target.key
        self._docker = target.kind == "docker"
        self._partials = PartialLineBuffer(pipeline.max_line_size)
        self._label_cache: dict[tuple[str, str], StreamLabels] = {}
        self._wanted_labels = set(pipeline.labels) | set(pipeline.static_labels)
        self._metadata_fields = [f for f in METADATA_FIELDS if f in pipeline.structured_metadata]
        self._target_metadata = tuple(
            (k, v) for k, v in target.metadata if k in pipeline.structured_metadata
        )
        label_dict = dict(target.labels)
        self._service = label_dict.get("service_name") or label_dict.get("container") or target.name
        self._read_bytes = metrics.read_bytes.labels(target.name)
        self._read_lines = metrics.read_lines.labels(target.name)
        self._level_counts: dict[str, int] = {}
        self._finish_requested = False
        self._stop_requested = False
        self._writer_died = False
        self.last_read = time.monotonic()
        self._max_age_ns = int(pipeline.max_entry_age * 1e9)
        self._min_ts_ns = 0
        self._file_id: FileIdentity | None = None
        self._end_offset = 0

    def update_target(self, target: LogTarget) -> None:
        """A rename or label change: new lines get the new labels."""
        self.target = target
        self._label_cache.clear()

    def finish(self) -> None:
        """The target is gone (container destroyed): drain to the end, then stop."""
        self._finish_requested = True

    def flush_partials(self) -> None:
        """Ship any half-merged line as it is (its writer is gone, or its file is done)."""
        file_id = self._file_id
        for line in self._partials.flush_all():
            if line.truncated:
                self._metrics.truncated_lines.inc()
            self._emit(line.ts_ns, line.stream, line.line, line.end_offset, file_id)

    def writer_died(self) -> None:
        """The container exited: a partial left at the end of its log will never finish."""
        self._writer_died = True

    def stop(self) -> None:
        self._stop_requested = True

    # -- main loop ---------------------------------------------------------------------
    async def run(self) -> None:
        shipper = self._shipper
        follower = self.follower
        idle_timeout = self._cfg.partial_flush_timeout
        while not self._stop_requested:
            while not shipper.has_room():
                # Loki is slow or down: hold still, but keep open any file Docker rotates
                # meanwhile, so it cannot be deleted before it is read.
                await shipper.wait_for_room(ROTATION_CHECK_SECONDS)
                follower.check_rotation()
                if self._stop_requested:
                    return
            try:
                chunk = follower.read_chunk()
            except Exception:  # the follower reports its own errors; never kill the loop
                log.exception("reading failed", extra={"target": self._key})
                chunk = None
            self._handle_events()
            if chunk is not None:
                self.last_read = time.monotonic()
                self._process(chunk)
                # Yield so other targets, the sender and the metrics server get their turn.
                await asyncio.sleep(0)
                continue
            if self._finish_requested or follower.finished:
                self.flush_partials()
                self._shipper.advance(self._key, (self._file_id, self._end_offset))
                return
            if self._partials.pending_start_offset() is not None:
                stale = (
                    self._partials.flush_all()
                    if self._writer_died
                    else self._partials.flush_idle(idle_timeout)
                )
                for line in stale:
                    if line.truncated:
                        self._metrics.truncated_lines.inc()
                    self._emit(line.ts_ns, line.stream, line.line, line.end_offset, self._file_id)
                self._advance_safe()
            self._writer_died = False
            await asyncio.sleep(IDLE_POLL_SECONDS)

    def _handle_events(self) -> None:
        events = self.follower.pop_events()
        if not events:
            return
        metrics = self._metrics
        for event in events:
            if isinstance(event, Lost):
                reason = _LOSS_REASONS.get(event.reason, event.reason)
                metrics.dropped_entries.labels(reason).inc(max(1, event.files))
                if event.bytes:
                    metrics.dropped_bytes.labels(reason).inc(event.bytes)
                log.warning(
                    "log data lost",
                    extra={
                        "target": self.target.name,
                        "reason": event.reason,
                        "path": event.path,
                        "bytes": event.bytes,
                    },
                )
            elif isinstance(event, ReadFailed):
                metrics.read_errors.labels(self.target.name).inc()
                log.warning(
                    "cannot read log file; retrying",
                    extra={"target": self.target.name, "path": event.path, "error": event.message},
                )
            elif isinstance(event, Truncated):
                log.info(
                    "log file truncated; reading from the start", extra={"target": self.target.name}
                )

    # -- hot path ----------------------------------------------------------------------
    def _process(self, chunk: Chunk) -> None:
        data = chunk.data
        file_id = chunk.file_id
        self._read_bytes.inc(len(data))
        if file_id != self._file_id:
            if self._file_id is not None:
                # Offsets are per file: a line split across a rotation is shipped in two.
                self.flush_partials()
            self._file_id = file_id
        self._end_offset = chunk.end_offset
        self._min_ts_ns = time.time_ns() - self._max_age_ns
        if not self._docker:
            self._process_plain(data, chunk.start_offset, file_id)
        else:
            result = self._partials.feed_chunk(data, chunk.start_offset)
            self._read_lines.inc(len(result.lines))
            if result.malformed:
                self._metrics.dropped_entries.labels("malformed_record").inc(result.malformed)
            emit = self._emit
            truncated = 0
            for line in result.lines:
                if line.truncated:
                    truncated += 1
                emit(line.ts_ns, line.stream, line.line, line.end_offset, file_id)
            if truncated:
                self._metrics.truncated_lines.inc(truncated)
        self._advance_safe()
        self._flush_counts()

    def _advance_safe(self) -> None:
        """Commit past dropped records too, but never past a line still being merged."""
        pending = self._partials.pending_start_offset()
        offset = self._end_offset if pending is None else pending
        if self._file_id is not None:
            self._shipper.advance(self._key, (self._file_id, offset))

    def _process_plain(self, data: bytes, offset: int, file_id: FileIdentity) -> None:
        ts_ns = time.time_ns()
        lines = data.split(b"\n")
        lines.pop()  # the follower hands out complete lines only: the tail is b""
        self._read_lines.inc(len(lines))
        limit = self._cfg.max_line_size
        for raw in lines:
            offset += len(raw) + 1
            if len(raw) > limit:
                raw = raw[:limit]
                self._metrics.truncated_lines.inc()
            text = raw.decode("utf-8", "replace")
            if text.endswith("\r"):
                text = text[:-1]
            self._emit(ts_ns, "", text, offset, file_id)

    def _emit(self, ts_ns: int, stream: str, text: str, end_offset: int, file_id: Any) -> None:
        fields = parse_line(text) if self._cfg.parse else None
        level = fields.level if fields is not None else "unknown"
        key = (stream, level)
        labels = self._label_cache.get(key)
        if labels is None:
            labels = self._build_labels(stream, level)
        metadata = self._target_metadata
        if fields is not None and (fields.account_id or fields.user_id or fields.request_id):
            extra = []
            for name, value in zip(
                METADATA_FIELDS,
                (fields.account_id, fields.user_id, fields.request_id),
                strict=True,
            ):
                if value and name in self._metadata_fields:
                    extra.append((name, value))
            metadata = (*metadata, *extra)
        counts = self._level_counts
        counts[level] = counts.get(level, 0) + 1
        if ts_ns < self._min_ts_ns:
            # Loki refuses it (reject_old_samples_max_age): a certain 400, so drop it here.
            self._metrics.dropped_entries.labels("too_old").inc()
            return
        self._shipper.add(
            self._key, labels, PushEntry(ts_ns, text, metadata), (file_id, end_offset)
        )

    def _build_labels(self, stream: str, level: str) -> StreamLabels:
        wanted = self._wanted_labels
        labels = {k: v for k, v in self.target.labels if k in wanted or k.startswith("docker_")}
        labels.update(self._cfg.static_labels)
        if stream and "stream" in wanted:
            labels["stream"] = stream
        if "level" in wanted:
            labels["level"] = level
        if len(labels) > MAX_LABELS:
            keep = [k for k in self._cfg.labels if k in labels][:MAX_LABELS]
            keep += [k for k in labels if k not in keep][: MAX_LABELS - len(keep)]
            labels = {k: labels[k] for k in keep}
        result = StreamLabels.of(labels)
        self._label_cache[(stream, level)] = result
        return result

    def _flush_counts(self) -> None:
        if self._level_counts:
            counter = self._metrics.log_lines
            for level, n in self._level_counts.items():
                counter.labels(self._service, level).inc(n)
            self._level_counts.clear()
