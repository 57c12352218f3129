"""Docker json-file records -> (ts_ns, stream, line), with 16 KiB partial-chunk reassembly.

Format facts (moby ``daemon/logger/jsonfilelog``, ``daemon/logger/copier.go``): one JSON
object per line, ``{"log":…,"stream":…,"attrs":…,"time":…}``. ``log`` ends in ``"\\n"`` for
a complete line; a line longer than the copier's 16 KiB buffer (or cut by EOF) is written
as *partial* chunks without the ``"\\n"``, all carrying the first chunk's ``time``, and
stdout/stderr chunks interleave in one file. ``time`` is Go ``RFC3339Nano`` in UTC with
trailing fraction zeros trimmed.

This is a per-line hot path: the common case (a complete record, nothing pending) is taken
by the C scanner of ``_speedups.c`` when built, else costs one ``orjson.loads``, a cached
time parse and one tuple.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import NamedTuple

import orjson

from agent.logs.speedups import native as _native

DEFAULT_MAX_LINE_SIZE = 256 * 1024

_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
# _SCALE[f]: multiplier turning f fraction digits into nanoseconds.
_SCALE = (1_000_000_000, 100_000_000, 10_000_000, 1_000_000, 100_000, 10_000, 1_000, 100, 10, 1)
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:[Zz]|([+-])(\d{2}):(\d{2}))",
    re.ASCII,
)
# "YYYY-MM-DDTHH:MM:SS" (UTC) -> Unix ns of that second. Docker stamps lines with the read
# time, so a busy container's consecutive records share the key.
_second_ns: dict[str, int] = {}
_SECOND_CACHE_MAX = 4096


def parse_docker_time(value: str) -> int:
    """Exact Unix nanoseconds of an RFC 3339 time with 0-9 fraction digits (``Z`` or ±hh:mm).

    Fraction digits beyond 9 are truncated, as Go's parser does. Raises ``ValueError``
    for anything that is not such a time.
    """
    base = _second_ns.get(value[:19])
    if base is not None and value[-1] == "Z":
        frac = value[20:-1]
        # isascii() is O(1) and keeps int() from accepting "+1", "1_0" or non-ASCII digits.
        if value[19] == "." and len(frac) <= 9 and frac.isascii() and frac.isdigit():
            return base + int(frac) * _SCALE[len(frac)]
        if len(value) == 20:
            return base
    return _parse_general(value)


def _parse_general(value: str) -> int:
    m = _RFC3339.fullmatch(value)
    if m is None:
        raise ValueError(f"not an RFC 3339 time: {value[:64]!r}")
    year, month, day, hh, mm, ss, frac, sign, off_h, off_m = m.groups()
    try:
        days = date(int(year), int(month), int(day)).toordinal() - _EPOCH_ORDINAL
    except ValueError:
        raise ValueError(f"not an RFC 3339 time: {value[:64]!r}") from None
    hour, minute, second = int(hh), int(mm), int(ss)
    if hour > 23 or minute > 59 or second > 59:
        raise ValueError(f"not an RFC 3339 time: {value[:64]!r}")
    second_ns = (days * 86400 + hour * 3600 + minute * 60 + second) * 1_000_000_000
    frac_ns = int(frac[:9].ljust(9, "0")) if frac else 0
    if sign is None:
        if value[-1] == "Z":
            if len(_second_ns) >= _SECOND_CACHE_MAX:
                _second_ns.clear()
            _second_ns[value[:19]] = second_ns
        return second_ns + frac_ns
    oh, om = int(off_h), int(off_m)
    if oh > 23 or om > 59:
        raise ValueError(f"not an RFC 3339 time: {value[:64]!r}")
    offset_ns = (oh * 3600 + om * 60) * 1_000_000_000
    return second_ns - offset_ns + frac_ns if sign == "+" else second_ns + offset_ns + frac_ns


class DockerRecord(NamedTuple):
    """One decoded json-file record; ``log`` still carries its ``"\\n"`` when complete."""

    ts_ns: int
    stream: str
    log: str
    attrs: dict[str, str] | None = None


_loads = orjson.loads
_JSONDecodeError = orjson.JSONDecodeError
_new_tuple = tuple.__new__  # skips NamedTuple's Python-level __new__ on the hot path


def decode_record(raw: bytes) -> DockerRecord | None:
    """Decode one file line (without its ``"\\n"``); ``None`` means a malformed record.

    Invalid UTF-8 (which orjson rejects) is replaced by U+FFFD and the record kept, as
    Docker itself does when writing. Never raises.
    """
    try:
        obj = _loads(raw)
    except _JSONDecodeError:
        obj = _loads_lenient(raw)
    return _record_of(obj)


def _record_of(obj: object) -> DockerRecord | None:
    if type(obj) is not dict:
        return None
    log = obj.get("log")
    stream = obj.get("stream")
    ts = obj.get("time")
    if type(log) is not str or type(ts) is not str or (stream != "stdout" and stream != "stderr"):
        return None
    try:
        ts_ns = parse_docker_time(ts)
    except ValueError:
        return None
    attrs = obj.get("attrs")
    if attrs is not None:
        attrs = _string_attrs(attrs)
    return _new_tuple(DockerRecord, (ts_ns, stream, log, attrs))


def _loads_lenient(raw: bytes) -> object:
    try:
        text = bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        text = bytes(raw).decode("utf-8", "replace")
        try:
            return _loads(text)
        except _JSONDecodeError:
            return None
    return None  # valid UTF-8, so the JSON itself is broken


def _string_attrs(attrs: object) -> dict[str, str] | None:
    if type(attrs) is not dict:
        return None
    if all(type(v) is str for v in attrs.values()):
        return attrs
    return {k: v for k, v in attrs.items() if type(v) is str} or None


class CompleteLine(NamedTuple):
    """A whole logical line, ready for parsing and shipping.

    ``ts_ns`` is the first chunk's time; ``line`` has no trailing ``"\\n"``/``"\\r\\n"``;
    ``truncated`` says the line was cut to ``max_line_size`` UTF-8 bytes; ``end_offset``
    is the position safe to commit once the line is settled: just after its last record,
    or, when the other stream still has a line half-merged, that line's start.
    """

    ts_ns: int
    stream: str
    line: str
    truncated: bool
    end_offset: int
    attrs: dict[str, str] | None = None


class ChunkResult(NamedTuple):
    """What :meth:`PartialLineBuffer.feed_chunk` made of a block of file bytes."""

    lines: list[CompleteLine]
    # Records dropped as malformed (count them as reason="malformed_record").
    malformed: int
    # Bytes up to and including the last newline; the rest is an unfinished record to
    # prepend to the next read.
    consumed: int


@dataclass(slots=True)
class _Partial:
    ts_ns: int
    stream: str
    start_offset: int
    end_offset: int
    attrs: dict[str, str] | None
    last_fed: float
    chunks: list[str]
    kept_bytes: int = 0
    overflow: bool = False
    carried: bool = False  # began in a file that has since rotated away


class PartialLineBuffer:
    """Joins partial chunks per stream into whole lines, capped at ``max_line_size`` bytes.

    Offsets: ``feed`` takes the byte range of the record's line in the file. A position may
    only be committed below :meth:`pending_start_offset`, so a crash never loses the first
    half of a line; commit ``min(line.end_offset, pending_start_offset())`` (when not None).
    A process that exits mid-line leaves a partial with no final chunk: call
    :meth:`flush_idle` periodically and :meth:`flush_all` when the container dies or the
    file is abandoned.
    """

    __slots__ = ("_clock", "_limit", "_pending", "max_line_size")

    def __init__(
        self,
        max_line_size: int = DEFAULT_MAX_LINE_SIZE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_line_size < 1:
            raise ValueError("max_line_size must be positive")
        self.max_line_size = max_line_size
        # Below this many characters a line cannot exceed max_line_size UTF-8 bytes.
        self._limit = max_line_size // 4
        self._clock = clock
        self._pending: dict[str, _Partial] = {}

    def feed(self, rec: DockerRecord, start_offset: int, end_offset: int) -> CompleteLine | None:
        """Add one record; returns the line it completes, or ``None`` while a line is partial."""
        line = self._feed(rec, start_offset, end_offset)
        if line is not None and self._pending:
            # stdout and stderr interleave: never commit past a line still being merged.
            safe = min(p.start_offset for p in self._pending.values())
            if safe < line.end_offset:
                line = line._replace(end_offset=safe)
        return line

    def _feed(self, rec: DockerRecord, start_offset: int, end_offset: int) -> CompleteLine | None:
        log = rec.log
        if log[-1:] == "\n":
            partial = self._pending.pop(rec.stream, None) if self._pending else None
            if partial is None:  # fast path: a whole line in one record
                line = log[:-2] if log[-2:] == "\r\n" else log[:-1]
                if len(line) <= self._limit or (len(line) <= self.max_line_size and line.isascii()):
                    return _new_tuple(
                        CompleteLine, (rec.ts_ns, rec.stream, line, False, end_offset, rec.attrs)
                    )
                line, truncated = _cap(line, self.max_line_size)
                return CompleteLine(rec.ts_ns, rec.stream, line, truncated, end_offset, rec.attrs)
            self._add(partial, log[:-1])
            return self._finish(partial, end_offset, newline_seen=True)
        if not log:
            return None
        partial = self._pending.get(rec.stream)
        if partial is None:
            partial = self._pending[rec.stream] = _Partial(
                rec.ts_ns, rec.stream, start_offset, end_offset, rec.attrs, self._clock(), []
            )
        else:
            partial.end_offset = end_offset
            partial.last_fed = self._clock()
        self._add(partial, log)
        return None

    def feed_chunk(self, data: bytes, base_offset: int) -> ChunkResult:
        """Decode and feed every complete record in ``data``, read from ``base_offset``.

        Same result as :func:`decode_record` + :meth:`feed` per record. The common record
        (Docker's exact shape, a complete line, nothing pending) takes a fast path: the C
        scanner when built (``agent/logs/speedups.py``), else an inlined decode here.
        """
        if _native is None:
            return self._feed_chunk_python(data, base_offset)
        lines: list[CompleteLine] = []
        malformed = 0
        index = 0
        stop = data.rfind(b"\n") + 1
        scan = _native.scan_records
        while index < stop:
            if not self._pending:
                index = scan(data, index, base_offset, self._limit, CompleteLine, lines)
                if index >= stop:
                    break
            # a record the scanner left (unusual shape, partial, malformed) or one that
            # meets a half-merged line: the general rules below
            newline = data.index(b"\n", index)
            if not self._take(data[index:newline], base_offset + index, lines):
                malformed += 1
            index = newline + 1
        return _new_tuple(ChunkResult, (lines, malformed, stop))

    def _take(self, raw: bytes, start: int, lines: list[CompleteLine]) -> bool:
        """Decode and feed one record (``raw`` without its newline); False if malformed."""
        try:
            obj = _loads(raw)
        except _JSONDecodeError:
            obj = _loads_lenient(raw)
        return self._feed_decoded(obj, start, start + len(raw) + 1, lines)

    def _feed_decoded(self, obj: object, start: int, end: int, lines: list[CompleteLine]) -> bool:
        """:meth:`feed` a decoded record by the general rules; False if malformed."""
        rec = _record_of(obj)
        if rec is None:
            return False
        complete = self.feed(rec, start, end)
        if complete is not None:
            lines.append(complete)
        return True

    def _feed_chunk_python(self, data: bytes, base_offset: int) -> ChunkResult:
        """:meth:`feed_chunk` without the C scanner: the common record handled inline."""
        parts = data.split(b"\n")
        rest = parts.pop()
        lines: list[CompleteLine] = []
        append = lines.append
        malformed = 0
        pos = base_offset
        limit = self._limit
        pending = self._pending
        second_ns = _second_ns
        scale = _SCALE
        for raw in parts:
            end = pos + len(raw) + 1
            try:
                obj = _loads(raw)
            except _JSONDecodeError:
                obj = _loads_lenient(raw)
            if type(obj) is dict and not pending:
                log = obj.get("log")
                stream = obj.get("stream")
                ts = obj.get("time")
                if (
                    type(log) is str
                    and log[-1:] == "\n"
                    and len(log) <= limit
                    and type(ts) is str
                    and (stream == "stdout" or stream == "stderr")
                ):
                    # parse_docker_time's cached-second path, inlined.
                    frac = ts[20:-1]
                    second = second_ns.get(ts[:19])
                    if (
                        second is not None
                        and ts[-1] == "Z"
                        and ts[19] == "."
                        and len(frac) <= 9
                        and frac.isascii()
                        and frac.isdigit()
                    ):
                        ts_ns = second + int(frac) * scale[len(frac)]
                    else:
                        try:
                            ts_ns = parse_docker_time(ts)
                        except ValueError:
                            malformed += 1
                            pos = end
                            continue
                    attrs = obj.get("attrs")
                    if attrs is not None:
                        attrs = _string_attrs(attrs)
                    line = log[:-2] if log[-2:] == "\r\n" else log[:-1]
                    append(_new_tuple(CompleteLine, (ts_ns, stream, line, False, end, attrs)))
                    pos = end
                    continue
            if not self._feed_decoded(obj, pos, end, lines):
                malformed += 1
            pos = end
        return _new_tuple(ChunkResult, (lines, malformed, len(data) - len(rest)))

    def carry_over(self) -> bool:
        """The file rotated while lines were half-merged: their rest comes from the next file.

        Pending partials keep merging; their offsets restart at 0 (the next file's
        coordinates) and :meth:`has_carried` stays true until each one completes or is
        flushed. Returns whether anything was pending.
        """
        for partial in self._pending.values():
            partial.start_offset = 0
            partial.end_offset = 0
            partial.carried = True
        return bool(self._pending)

    def has_carried(self) -> bool:
        """Whether a line begun in a previous file is still being merged."""
        return any(p.carried for p in self._pending.values())

    def pending_start_offset(self) -> int | None:
        """Smallest file offset of an unfinished line, or ``None`` when nothing is pending."""
        if not self._pending:
            return None
        return min(p.start_offset for p in self._pending.values())

    def flush_idle(self, idle_seconds: float, now: float | None = None) -> list[CompleteLine]:
        """Emit partial lines that received no chunk for ``idle_seconds`` (clock time)."""
        if not self._pending:
            return []
        deadline = (self._clock() if now is None else now) - idle_seconds
        stale = [s for s, p in self._pending.items() if p.last_fed <= deadline]
        return self._emit(stale)

    def flush_all(self) -> list[CompleteLine]:
        """Emit every pending partial as a line (container died, file abandoned)."""
        return self._emit(list(self._pending))

    def _emit(self, streams: list[str]) -> list[CompleteLine]:
        parts = sorted((self._pending.pop(s) for s in streams), key=lambda p: p.start_offset)
        return [self._finish(p, p.end_offset, newline_seen=False) for p in parts]

    def _add(self, partial: _Partial, chunk: str) -> None:
        if partial.overflow:
            return  # the rest of an over-long line is consumed and discarded
        size = len(chunk) if chunk.isascii() else len(chunk.encode("utf-8"))
        # Keep one byte beyond the cap: it may be a "\r" that _finish strips.
        room = self.max_line_size + 1 - partial.kept_bytes
        if size <= room:
            partial.chunks.append(chunk)
            partial.kept_bytes += size
        else:
            partial.chunks.append(_cap(chunk, room)[0])
            partial.kept_bytes = self.max_line_size + 1
            partial.overflow = True

    def _finish(self, partial: _Partial, end_offset: int, newline_seen: bool) -> CompleteLine:
        line = "".join(partial.chunks)
        size = partial.kept_bytes
        if newline_seen and not partial.overflow and line[-1:] == "\r":
            line = line[:-1]
            size -= 1
        truncated = partial.overflow or size > self.max_line_size
        if truncated:
            line = _cap(line, self.max_line_size)[0]
        return CompleteLine(
            partial.ts_ns, partial.stream, line, truncated, end_offset, partial.attrs
        )


def _cap(text: str, max_bytes: int) -> tuple[str, bool]:
    """``text`` cut to at most ``max_bytes`` UTF-8 bytes on a character boundary."""
    data = text.encode("utf-8")
    if len(data) <= max_bytes:
        return text, False
    # "ignore" only drops the one character the cut split: the rest is valid UTF-8.
    return data[:max_bytes].decode("utf-8", "ignore"), True
