"""One target's reader: file chunks -> decoded, merged, parsed entries -> the shipper.

This is the per-line hot path, written for speed on purpose: one ``bytes.split`` per chunk,
label sets cached per (stream, level), no per-line objects beyond the entry itself. Every
entry carries the file position that is safe to commit once it is settled; a position
never passes the start of a 16 KiB partial that is still being merged, so a crash can
never lose the first half of a long line. A line whose chunks straddle a rotation is joined
across the two files: until it completes, the commit stays at its start in the old file
(which a restart finds again as ``.1`` or ``.1.gz``).
"""

from __future__ import annotations

import asyncio
import logging
import time

from agent.config import PipelineConfig
from agent.logs.dockerjson import CompleteLine, PartialLineBuffer
from agent.logs.line_groups import group_lines
from agent.logs.model import (
    MAX_LABELS,
    LogTarget,
    PushEntry,
    StreamLabels,
    StreamLabelsCache,
)
from agent.logs.parse import json_object, parse_json_object, parser_for
from agent.logs.shipper import Shipper
from agent.logs.stages.base import Entry, StagePipeline
from agent.logs.stages.grouping import group_entries
from agent.logs.stages.line_entries import line_entries
from agent.logs.tail import Chunk, FileFollower, FileIdentity, Lost, ReadFailed, Truncated
from agent.metrics.self import AgentMetrics

log = logging.getLogger("agent.logs.reader")

# Polling a file with nothing new backs off from this up to ``pipeline.read_interval``: a
# file that turns busy is read within 50 ms; a quiet or trickling one costs one look per
# interval, and its lines are handled together.
FIRST_IDLE_POLL_SECONDS = 0.05
BUSY_CHUNK_BYTES = 64 * 1024
ROTATION_CHECK_SECONDS = 0.5
# Follower loss reasons -> nexo_agent_dropped_entries_total reasons.
_LOSS_REASONS = {"unterminated": "malformed_record", "unreadable": "rotated_away"}


class TargetReader:
    """Follows one :class:`LogTarget` until it is finished and fully settled."""

    def __init__(
        self,
        target: LogTarget,
        follower: FileFollower,
        shipper: Shipper,
        pipeline: PipelineConfig,
        metrics: AgentMetrics,
        stages: StagePipeline | None = None,
        parse_format: str | None = None,
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
        wanted_metadata = set(pipeline.structured_metadata)
        self._want_ids = (
            "accountId" in wanted_metadata,
            "userId" in wanted_metadata,
            "requestId" in wanted_metadata,
        )
        self._target_metadata = tuple(
            (k, v) for k, v in target.metadata if k in pipeline.structured_metadata
        )
        self._target_metadata_size = sum(len(k) + len(v) for k, v in self._target_metadata)
        self._label_levels: dict[StreamLabels, str] = {}
        label_dict = dict(target.labels)
        self._service = label_dict.get("service_name") or label_dict.get("container") or target.name
        self._read_bytes = metrics.read_bytes.labels(target.name)
        self._read_lines = metrics.read_lines.labels(target.name)
        self._finish_requested = False
        self._stop_requested = False
        self._writer_died = False
        self._max_age_ns = int(pipeline.max_entry_age * 1e9)
        self._min_ts_ns = 0
        self._file_id: FileIdentity | None = None
        # Where a line begun before a rotation starts (old file, offset): the only safe
        # commit while its rest is merged from the next file.
        self._carried_from: tuple[FileIdentity, int] | None = None
        self._gaps_seen = 0
        self._end_offset = 0
        # With stages: entries carry where to read again from (``Entry.resume``), so a
        # stage holding entries back (multiline, limit) keeps the position behind them.
        self._stages = stages if stages else None
        self._parse = parser_for(parse_format) if pipeline.parse else None
        # With stages, a JSON line is decoded once: the built-in parsing and the stages'
        # fields share the object.
        self._reuse_json = pipeline.parse and parse_format in (None, "json")
        self._chunk_seq = 0
        self._last_commit: tuple[FileIdentity | None, int] = (None, 0)
        self._base_labels: dict[tuple[str, str], dict[str, str]] = {}
        self._stream_labels = StreamLabelsCache(pipeline.labels, ("service_name", self._service))

    def update_target(self, target: LogTarget) -> None:
        """A rename or label change: new lines get the new labels."""
        self.target = target
        self._label_cache.clear()
        self._label_levels.clear()
        self._base_labels.clear()
        self._stream_labels.clear()

    def finish(self) -> None:
        """The target is gone (container destroyed): drain to the end, then stop."""
        self._finish_requested = True

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
        idle_sleep = FIRST_IDLE_POLL_SECONDS
        max_idle_sleep = max(self._cfg.read_interval, FIRST_IDLE_POLL_SECONDS)
        rotations_seen = follower.stats.rotations
        while not self._stop_requested:
            while not shipper.has_room():
                # Loki is slow or down: hold still, but keep open any file Docker rotates
                # meanwhile, so it cannot be deleted before it is read.
                await shipper.wait_for_room(ROTATION_CHECK_SECONDS)
                follower.check_rotation()
                if self._stop_requested:
                    return
            stages = self._stages
            if stages is not None:
                released = stages.flush(time.time())
                if released:
                    self._ship_entries(released, self._last_commit)
                if stages.wants_pause():
                    # A lossless limit is over its rate: the file waits, not memory.
                    await asyncio.sleep(FIRST_IDLE_POLL_SECONDS)
                    follower.check_rotation()
                    continue
            try:
                chunk = follower.read_chunk()
            except Exception:  # the follower reports its own errors; never kill the loop
                log.exception("reading failed", extra={"target": self._key})
                chunk = None
            self._handle_events()
            if chunk is not None:
                self._process(chunk)
                rotated = follower.stats.rotations != rotations_seen
                if rotated or len(chunk.data) >= BUSY_CHUNK_BYTES:
                    # A busy file, or one that rotates (small max-size): look again soon,
                    # before Docker deletes what it rotated away. A trickle keeps its
                    # backed-off pace and is read in fewer, larger chunks.
                    idle_sleep = FIRST_IDLE_POLL_SECONDS
                    rotations_seen = follower.stats.rotations
                # Yield so other targets, the sender and the metrics server get their turn.
                await asyncio.sleep(0)
                continue
            if self._finish_requested or follower.finished:
                self.flush_partials()
                return
            if self._partials.pending_start_offset() is not None:
                stale = (
                    self._partials.flush_all()
                    if self._writer_died
                    else self._partials.flush_idle(idle_timeout)
                )
                if stale:
                    self._ship(stale, self._safe_commit())
            self._writer_died = False
            await asyncio.sleep(idle_sleep)
            idle_sleep = min(idle_sleep * 2, max_idle_sleep)

    def _handle_events(self) -> None:
        gaps = self.follower.stats.possible_gaps
        if gaps != self._gaps_seen:
            self._metrics.rotation_gaps.labels(self.target.name).inc(gaps - self._gaps_seen)
            self._gaps_seen = gaps
        events = self.follower.pop_events()
        if not events:
            return
        metrics = self._metrics
        for event in events:
            if isinstance(event, Lost):
                reason = _LOSS_REASONS.get(event.reason, event.reason)
                metrics.dropped_entries.labels(reason).inc(max(1, event.files))
                nbytes = event.bytes if event.bytes is not None else event.min_bytes
                if nbytes:
                    metrics.dropped_bytes.labels(reason).inc(nbytes)
                self._warn_lost(event.reason, event.path, event.bytes, event.min_bytes)
            elif isinstance(event, ReadFailed):
                metrics.read_errors.labels(self.target.name).inc()
                log.warning(
                    "cannot read log file; retrying",
                    extra={"target": self.target.name, "path": event.path, "error": event.message},
                )
            elif isinstance(event, Truncated):
                self._on_truncated(event)

    def _on_truncated(self, event: Truncated) -> None:
        """Docker truncates its only file when ``max-file=1`` (moby 20.10 reopens it with
        O_TRUNC once it reached max-size): whatever of it was still unread is gone."""
        unread = max(0, self.target.max_size - event.at_offset) if self.target.max_size else 0
        if not unread:
            log.info(
                "log file truncated; reading from the start", extra={"target": self.target.name}
            )
            return
        self._metrics.dropped_entries.labels("rotated_away").inc()
        self._metrics.dropped_bytes.labels("rotated_away").inc(unread)
        self._warn_lost("truncated", self.follower.path, None, unread)

    def _warn_lost(self, reason: str, path: str, nbytes: int | None, min_bytes: int) -> None:
        if nbytes is not None:
            amount = f"{nbytes} bytes"
        elif min_bytes:
            amount = f"at least {min_bytes} bytes"
        else:
            amount = "an unknown amount"
        hint = ""
        if reason in ("rotated_away", "truncated"):
            hint = (
                "; Docker rotated the log away before it was read (the agent was down or "
                "behind): give the container a larger max-size or max-file >= 2"
            )
        log.warning(
            f"log data lost for {self.target.name}: {amount} ({reason}){hint}",
            extra={
                "target": self.target.name,
                "reason": reason,
                "path": path,
                "bytes": nbytes,
                "min_bytes": min_bytes,
            },
        )

    # -- hot path ----------------------------------------------------------------------
    def _process(self, chunk: Chunk) -> None:
        data = chunk.data
        file_id = chunk.file_id
        self._read_bytes.inc(len(data))
        if file_id != self._file_id:
            if self._file_id is not None:
                self._carry_partials_over()
            self._file_id = file_id
        self._end_offset = chunk.end_offset
        if self._last_commit[0] is None:
            # The first chunk: an entry held back from it resumes where reading began.
            self._last_commit = (file_id, chunk.start_offset)
        self._min_ts_ns = time.time_ns() - self._max_age_ns
        if not self._docker:
            lines = self._plain_lines(data, chunk.start_offset)
        else:
            result = self._partials.feed_chunk(data, chunk.start_offset)
            lines = result.lines
            if result.malformed:
                self._metrics.dropped_entries.labels("malformed_record").inc(result.malformed)
        self._read_lines.inc(len(lines))
        self._ship(lines, self._safe_commit())

    def flush_partials(self) -> None:
        """Ship any half-merged line as it is (its writer is gone, or its file is done),
        and whatever stages still hold."""
        lines = self._partials.flush_all()
        if lines:
            self._ship(lines, self._safe_commit())
        if self._stages is not None:
            released = self._stages.flush(time.time(), final=True)
            if released:
                self._ship_entries(released, self._last_commit)

    def _carry_partials_over(self) -> None:
        """Docker rotated between two chunks of one line: keep merging into the next file."""
        start = self._partials.pending_start_offset()
        if start is None or not self._docker:
            return
        if self._carried_from is None or not self._partials.has_carried():
            assert self._file_id is not None
            self._carried_from = (self._file_id, start)
        self._partials.carry_over()

    def _safe_commit(self) -> tuple[FileIdentity | None, int]:
        """Past everything read so far, but never past a line still being merged."""
        if self._carried_from is not None:
            if self._partials.has_carried():
                return self._carried_from
            self._carried_from = None
        pending = self._partials.pending_start_offset()
        return (self._file_id, self._end_offset if pending is None else pending)

    def _plain_lines(self, data: bytes, start: int) -> list[CompleteLine]:
        ts_ns = time.time_ns()
        lines = data.split(b"\n")
        lines.pop()  # the follower hands out complete lines only: the tail is b""
        limit = self._cfg.max_line_size
        out = []
        end = start
        for raw in lines:
            end += len(raw) + 1
            cut = len(raw) > limit
            if cut:
                raw = raw[:limit]
            text = raw.decode("utf-8", "replace")
            if text.endswith("\r"):
                text = text[:-1]
            out.append(CompleteLine(ts_ns, "", text, cut, end, None))
        return out

    def _ship(self, lines: list[CompleteLine], commit: tuple[FileIdentity | None, int]) -> None:
        """Parse, label and hand one chunk's lines to the shipper in a single call.

        One shipper call per chunk keeps entries and the position that settles them in
        the same batch, so a crash re-sends nothing that Loki already has.
        """
        if self._stages is not None:
            self._ship_staged(lines, commit)
            return
        # Grouped by (stream, level): a tuple of two strings hashes in C, where the
        # StreamLabels they stand for would cost a Python-level __hash__ per line.
        want_account, want_user, want_request = self._want_ids
        by_key, size, count, oldest_ts, truncated, too_old = group_lines(
            lines,
            self._parse,
            self._target_metadata,
            self._target_metadata_size,
            want_account,
            want_user,
            want_request,
            "stream" in self._cfg.labels,  # else stdout and stderr share a stream
            self._min_ts_ns,
            PushEntry,
        )
        if truncated:
            self._metrics.truncated_lines.inc(truncated)
        if too_old:
            self._metrics.dropped_entries.labels("too_old").inc(too_old)
        if commit[0] is None:
            return
        cache = self._label_cache
        groups: dict[StreamLabels, list[PushEntry]] = {}
        for key, group in by_key.items():
            labels = cache.get(key)
            if labels is None:
                labels = self._build_labels(*key)
            existing = groups.get(labels)  # level is not a label: levels share a stream
            if existing is None:
                groups[labels] = group
            else:
                existing.extend(group)
        self._shipper.add_group(self._key, groups, count, size, oldest_ts, commit)
        if groups:
            counter = self._metrics.log_lines
            service = self._service
            levels = self._label_levels
            for labels, group in groups.items():
                counter.labels(service, levels[labels]).inc(len(group))

    # -- with stages: entries as objects, labels per entry ---------------------------------
    def _ship_staged(
        self, lines: list[CompleteLine], commit: tuple[FileIdentity | None, int]
    ) -> None:
        assert self._stages is not None
        self._chunk_seq += 1
        seq = self._chunk_seq
        file_id = self._file_id
        resume_file, resume_offset = self._last_commit
        if resume_file != file_id:
            resume_offset = 0 if resume_file is None else resume_offset
        want_account, want_user, want_request = self._want_ids
        entries, truncated = line_entries(
            lines,
            self._parse,
            parse_json_object,
            json_object,
            self._reuse_json,
            dict(self._target_metadata),
            want_account,
            want_user,
            want_request,
            "stream" in self._cfg.labels,
            self._base_labels,
            self._labels_for,
            Entry,
            seq,
            resume_offset,
            resume_file,
            file_id,
        )
        if truncated:
            self._metrics.truncated_lines.inc(truncated)
        out = self._stages.process(entries)
        self._last_commit = commit
        self._ship_entries(out, commit)

    def _ship_entries(self, entries: list[Entry], commit: tuple[FileIdentity | None, int]) -> None:
        """Group staged entries by their label sets and hand them on; the commit stays
        behind anything a stage still holds."""
        assert self._stages is not None
        held = self._stages.oldest_held()
        if held is not None:
            commit = (held[2], held[1])
        grouped, size, count, oldest_ts, too_old, levels = group_entries(
            entries, self._min_ts_ns, PushEntry
        )
        if too_old:
            self._metrics.dropped_entries.labels("too_old").inc(too_old)
        if commit[0] is None:
            return
        groups: dict[StreamLabels, list[PushEntry]] = {}
        stream_of = self._stream_labels.of
        for labels, pushed in grouped:
            stream = stream_of(labels)
            existing = groups.get(stream)
            if existing is None:
                groups[stream] = pushed
            else:
                existing.extend(pushed)
        self._shipper.add_group(self._key, groups, count, size, oldest_ts, commit)
        counter = self._metrics.log_lines
        for level, n in levels.items():
            counter.labels(self._service, level).inc(n)

    def _labels_for(self, stream: str, level: str) -> dict[str, str]:
        """The label dict entries of one (stream, level) share until a stage changes it."""
        labels = self._base_labels.get((stream, level))
        if labels is None:
            labels = self._base_labels[(stream, level)] = self._build_labels(
                stream, level
            ).as_dict()
        return labels

    def _build_labels(self, stream: str, level: str) -> StreamLabels:
        # Target labels were chosen and bounded by discovery; add the per-line ones.
        labels = dict(self.target.labels)
        wanted = self._cfg.labels
        if stream and "stream" in wanted:
            labels["stream"] = stream
        if "level" in wanted:
            labels["level"] = level
        if len(labels) > MAX_LABELS:
            keep = [k for k in wanted if k in labels][:MAX_LABELS]
            keep += [k for k in labels if k not in keep][: MAX_LABELS - len(keep)]
            labels = {k: labels[k] for k in keep}
        result = StreamLabels.of(labels)
        self._label_cache[(stream, level)] = result
        self._label_levels[result] = level
        return result
