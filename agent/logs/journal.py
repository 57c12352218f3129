"""The systemd journal as a log source: ``journalctl --output=json --follow``, supervised.

Why journalctl and not a binding (Vector makes the same choice): it is on every systemd
host and reads every journal it can produce (format versions, zstd/lz4/xz compression,
rotated and archived files, machine-id subdirectories of a mounted ``/var/log/journal``),
and it skips a corrupted file with a warning while reading the rest. The Python binding
(``systemd-python``) must be compiled against libsystemd's headers, is not on PyPI as a
wheel, and would run journal reads, which can block on a slow disk, inside the agent's
event loop. A subprocess costs one fork at start and a JSON line per entry.

Position: the ``__CURSOR`` of the last entry Loki acknowledged is saved under
``journal:<path>`` in the positions file, like a file offset; the next start runs
``--after-cursor`` with it, so nothing is lost or repeated across restarts, crashes and
Loki outages. While Loki is down the in-flight bound stops reading: journalctl blocks on
its full pipe and the journal itself is the buffer. If journalctl exits it is restarted
(backoff 0.5 s to 30 s) after the last entry *read*, whose predecessors are already on
their way.

Labels: ``host``, ``unit`` (``_SYSTEMD_UNIT``), ``syslog_identifier``, ``transport``,
``service_name`` (the identifier, else the unit) and ``level``: the message's own level
when the built-in parsing finds one (a unit logging JSON), else ``PRIORITY`` mapped onto
the agent's level names. The message goes through the same parsing and stages as
container lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path
from typing import Any

import orjson

from agent.config import JournalConfig, PipelineConfig
from agent.logs.model import LogTarget, PushEntry, StreamLabels, StreamLabelsCache
from agent.logs.parse import parser_for
from agent.logs.shipper import Shipper
from agent.logs.stages.base import Entry, StagePipeline
from agent.metrics.self import AgentMetrics

log = logging.getLogger("agent.logs.journal")

JOURNAL = "journal"  # the dependency name in nexo_agent_dependency_up
# syslog priorities (0 emerg … 7 debug) onto the agent's level names
PRIORITY_LEVELS = {
    "0": "fatal",
    "1": "fatal",
    "2": "fatal",
    "3": "error",
    "4": "warn",
    "5": "info",
    "6": "info",
    "7": "debug",
}
READ_BYTES = 256 * 1024
IDLE_FLUSH_SECONDS = 0.5
RESTART_BACKOFF = (0.5, 30.0)
# A JSON line longer than this without a newline is not journalctl's: dropped, counted.
MAX_RECORD_BYTES = 64 * 1024 * 1024


def journal_target(cfg: JournalConfig, hostname: str) -> LogTarget:
    where = str(cfg.path) if cfg.path is not None else "system"
    labels = {"host": hostname, **cfg.labels}
    return LogTarget(
        key=f"journal:{where}",
        kind="journal",
        path=cfg.path or Path("/var/log/journal"),
        name="journal",
        labels=tuple(sorted(labels.items())),
    )


def journalctl_command(cfg: JournalConfig, cursor: str | None) -> list[str]:
    """The journalctl invocation: resume after ``cursor``, else ``initial_position``."""
    command = [cfg.journalctl, "--output=json", "--follow", "--all", "--no-pager"]
    if cfg.path is not None:
        command.append(f"--directory={cfg.path}")
    if cursor:
        command += [f"--after-cursor={cursor}", "--no-tail"]
    elif cfg.initial_position == "beginning":
        command.append("--no-tail")
    else:
        command.append("--lines=0")
    command += [f"--unit={unit}" for unit in cfg.units]
    command += cfg.matches
    return command


def message_text(value: Any) -> str | None:
    """MESSAGE as text: journalctl gives a byte array for non-UTF-8 or binary messages."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        if value and isinstance(value[0], list):  # a field logged twice: the last one
            value = value[-1]
        try:
            return bytes(value).decode("utf-8", "replace")
        except (TypeError, ValueError):
            return None
    return None


class JournalSource:
    """Follows the journal until stopped; entries go to the shipper with their cursor."""

    def __init__(
        self,
        cfg: JournalConfig,
        pipeline: PipelineConfig,
        target: LogTarget,
        shipper: Shipper,
        metrics: AgentMetrics,
        stages: StagePipeline | None,
        cursor: str | None,
    ) -> None:
        self.cfg = cfg
        self.target = target
        self.key = target.key
        self._pipeline = pipeline
        self._shipper = shipper
        self._metrics = metrics
        self._stages = stages if stages else None
        self._parse = parser_for(None) if pipeline.parse else None
        self._want = [
            k for k in ("accountId", "userId", "requestId") if k in pipeline.structured_metadata
        ]
        self._static = {**dict(target.labels), **pipeline.static_labels}
        self._labels: dict[tuple[str, str, str, str, str], dict[str, str]] = {}
        self._stream_labels = StreamLabelsCache(
            [*pipeline.labels, "unit", "syslog_identifier", "transport"],
            ("service_name", "journal"),
        )
        self._max_age_ns = int(pipeline.max_entry_age * 1e9)
        # The last entry read (restart point) and the one before each entry (resume point
        # of an entry a stage holds back).
        self.read_cursor = cursor
        self._seq = 0
        self._stop = asyncio.Event()
        self._process: asyncio.subprocess.Process | None = None
        self._read_lines = metrics.read_lines.labels(target.name)
        self._read_bytes = metrics.read_bytes.labels(target.name)
        self._said: set[str] = set()
        self.restarts = 0
        metrics.dependencies.declare(JOURNAL)

    def stop(self) -> None:
        self._stop.set()
        if self._process is not None and self._process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._process.terminate()

    async def run(self) -> None:
        deps = self._metrics.dependencies
        backoff = RESTART_BACKOFF[0]
        while not self._stop.is_set():
            command = journalctl_command(self.cfg, self.read_cursor)
            began = time.monotonic()
            try:
                process = await asyncio.create_subprocess_exec(
                    *command,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE,
                )
            except OSError as exc:
                deps.down(
                    JOURNAL,
                    f"cannot run {self.cfg.journalctl}: {exc}",
                    "install systemd's journalctl (Debian: systemd) or set "
                    "logs.journal.journalctl to its path",
                )
            else:
                self._process = process
                log.info("following the journal", extra={"command": " ".join(command)})
                stderr_task = asyncio.create_task(self._watch_stderr(process))
                try:
                    await self._follow(process)
                finally:
                    if process.returncode is None:
                        with contextlib.suppress(ProcessLookupError):
                            process.terminate()
                    with contextlib.suppress(TimeoutError, ProcessLookupError):
                        await asyncio.wait_for(process.wait(), 5)
                    if process.returncode is None:
                        with contextlib.suppress(ProcessLookupError):
                            process.kill()
                        await process.wait()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stderr_task, 1)
                    stderr_task.cancel()
                self._process = None
                if self._stop.is_set():
                    break
                last = (
                    stderr_task.result()
                    if stderr_task.done() and not stderr_task.cancelled()
                    else ""
                )
                deps.down(
                    JOURNAL,
                    f"journalctl exited with status {process.returncode}: {last or 'no message'}",
                    "check that logs.journal.path is a readable journal directory "
                    "(in a container: mount the host's /var/log/journal)",
                )
                self.restarts += 1
            if time.monotonic() - began > 60:
                backoff = RESTART_BACKOFF[0]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), backoff)
            backoff = min(backoff * 2, RESTART_BACKOFF[1])
        await self._flush_stages(final=True)

    async def _watch_stderr(self, process: asyncio.subprocess.Process) -> str:
        """journalctl's complaints (a corrupted file it skips...), each said once."""
        assert process.stderr is not None
        last = ""
        while True:
            raw = await process.stderr.readline()
            if not raw:
                return last
            text = raw.decode("utf-8", "replace").strip()
            if not text:
                continue
            last = text
            if text not in self._said and len(self._said) < 1000:
                self._said.add(text)
                log.warning(f"journalctl: {text}", extra={"source": self.key})

    async def _follow(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        stdout = process.stdout
        shipper = self._shipper
        rest = b""
        up = False
        while not self._stop.is_set():
            while not shipper.has_room():
                # Loki is slow or down: journalctl waits on its full pipe.
                await shipper.wait_for_room(1.0)
                if self._stop.is_set():
                    return
            stages = self._stages
            if stages is not None and stages.wants_pause():
                await asyncio.sleep(0.05)
                continue
            try:
                data = await asyncio.wait_for(stdout.read(READ_BYTES), IDLE_FLUSH_SECONDS)
            except TimeoutError:
                if not up:  # running and quiet: a journal with nothing new is fine
                    self._metrics.dependencies.up(JOURNAL)
                    up = True
                await self._flush_stages(final=False)
                continue
            if not data:
                return  # journalctl exited
            if not up:
                self._metrics.dependencies.up(JOURNAL)
                up = True
            self._read_bytes.inc(len(data))
            data = rest + data if rest else data
            end = data.rfind(b"\n")
            if end < 0:
                rest = data
                if len(rest) > MAX_RECORD_BYTES:
                    self._metrics.dropped_entries.labels("malformed_record").inc()
                    rest = b""
                continue
            rest = data[end + 1 :]
            self._ship(data[:end].split(b"\n"))
            await asyncio.sleep(0)

    async def _flush_stages(self, final: bool) -> None:
        if self._stages is not None:
            released = self._stages.flush(time.time(), final)
            if released:
                self._ship_entries(released, self.read_cursor)

    def _ship(self, raw_lines: list[bytes]) -> None:
        self._seq += 1
        seq = self._seq
        before = self.read_cursor
        parse = self._parse
        want = self._want
        entries: list[Entry] = []
        malformed = 0
        for raw in raw_lines:
            try:
                record = orjson.loads(raw)
                cursor = record["__CURSOR"]
                ts_ns = int(record["__REALTIME_TIMESTAMP"]) * 1000
            except (ValueError, KeyError, TypeError):
                malformed += 1
                continue
            text = message_text(record.get("MESSAGE"))
            if text is None:
                text = ""
            fields: dict[str, str] = {}
            metadata: dict[str, str] = {}
            level = "unknown"
            if parse is not None and text:
                parsed = parse(text)
                level = parsed[0]
                for name, value in zip(
                    ("accountId", "userId", "requestId"), parsed[1:4], strict=True
                ):
                    if value is not None:
                        fields[name] = value
                        if name in want:
                            metadata[name] = value
            if level == "unknown":
                level = PRIORITY_LEVELS.get(str(record.get("PRIORITY", "")), "unknown")
            fields["level"] = level
            labels = self._labels_of(record, level)
            entries.append(Entry(ts_ns, text, "", labels, fields, metadata, (seq, 0, before)))
            before = cursor
        if malformed:
            self._metrics.dropped_entries.labels("malformed_record").inc(malformed)
        self._read_lines.inc(len(raw_lines))
        if before is None:
            return
        self.read_cursor = before
        if self._stages is not None:
            entries = self._stages.process(entries)
        self._ship_entries(entries, before)

    def _labels_of(self, record: dict[str, Any], level: str) -> dict[str, str]:
        unit = _text(record.get("_SYSTEMD_UNIT"))
        identifier = _text(record.get("SYSLOG_IDENTIFIER"))
        transport = _text(record.get("_TRANSPORT"))
        service = identifier or unit.removesuffix(".service")
        key = (unit, identifier, transport, service, level)
        labels = self._labels.get(key)
        if labels is None:
            labels = dict(self._static)
            for name, value in (
                ("unit", unit),
                ("syslog_identifier", identifier),
                ("transport", transport),
                ("service_name", service),
                ("level", level),
            ):
                if value:
                    labels[name] = value
            if len(self._labels) > 10_000:  # units come and go: stay bounded
                self._labels.clear()
            self._labels[key] = labels
        return labels

    def _ship_entries(self, entries: list[Entry], commit: str | None) -> None:
        if self._stages is not None:
            held = self._stages.oldest_held()
            if held is not None:
                commit = held[2]
        groups: dict[StreamLabels, list[PushEntry]] = {}
        size = count = too_old = 0
        oldest = 0
        min_ts = time.time_ns() - self._max_age_ns
        levels: dict[tuple[str, str], int] = {}
        for e in entries:
            if e.ts_ns < min_ts:
                too_old += 1
                continue
            labels = self._stream_labels.of(e.labels)
            md = tuple(e.metadata.items())
            groups.setdefault(labels, []).append(PushEntry(e.ts_ns, e.line, md))
            size += len(e.line) + sum(len(k) + len(v) for k, v in md)
            if not count or e.ts_ns < oldest:
                oldest = e.ts_ns
            count += 1
            service = e.labels.get("service_name", "journal")
            level = e.labels.get("level") or e.fields.get("level") or "unknown"
            levels[(service, level)] = levels.get((service, level), 0) + 1
        if too_old:
            self._metrics.dropped_entries.labels("too_old").inc(too_old)
        if commit is not None or count:
            # ``None``: the entry a stage holds is the first this agent ever read; the
            # entries still go, and nothing is committed until a cursor is known.
            self._shipper.add_group(self.key, groups, count, size, oldest, commit)
        counter = self._metrics.log_lines
        for (service, level), n in levels.items():
            counter.labels(service, level).inc(n)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return message_text(value) or ""
    return ""
