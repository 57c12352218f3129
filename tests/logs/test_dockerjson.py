"""Docker json-file decoding and 16 KiB partial reassembly, pinned on real record bytes.

Records marked "Docker 20.10" were written by the real engine (20.10.24, json-file driver,
``docker run --network none nexo-test/busybox``) and pasted verbatim; the long-line layout
(16 384 + 16 384 + 7 232 + "\\n", one shared ``time``) was observed on the same engine, and
``test_real_docker_json_file_*`` checks it again against the live engine.
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agent.logs.dockerjson import (
    CompleteLine,
    DockerRecord,
    PartialLineBuffer,
    decode_record,
    parse_docker_time,
)


def utc_ns(y: int, mo: int, d: int, h: int, mi: int, s: int, frac_ns: int = 0) -> int:
    return calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0)) * 1_000_000_000 + frac_ns


# --- parse_docker_time -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # Docker 20.10 values: 9, 6 and 5 fraction digits (trailing zeros trimmed).
        ("2026-11-26T17:04:15.611942166Z", utc_ns(2026, 11, 26, 17, 4, 15, 611942166)),
        ("2026-11-26T17:04:19.794455Z", utc_ns(2026, 11, 26, 17, 4, 19, 794455000)),
        ("2026-11-26T17:04:19.79336Z", utc_ns(2026, 11, 26, 17, 4, 19, 793360000)),
        ("2026-11-26T17:04:19.123Z", utc_ns(2026, 11, 26, 17, 4, 19, 123000000)),
        ("2026-11-26T17:04:19.5Z", utc_ns(2026, 11, 26, 17, 4, 19, 500000000)),
        ("2026-11-26T17:04:19Z", utc_ns(2026, 11, 26, 17, 4, 19)),
        ("2026-11-26T17:04:19.000000001Z", utc_ns(2026, 11, 26, 17, 4, 19, 1)),
        ("1970-01-01T00:00:00Z", 0),
        ("2028-02-29T23:59:59.999999999Z", utc_ns(2028, 2, 29, 23, 59, 59, 999999999)),
        # Offsets: the same instant written in other zones.
        ("2026-11-26T19:04:19.5+02:00", utc_ns(2026, 11, 26, 17, 4, 19, 500000000)),
        ("2026-11-26T11:34:19-05:30", utc_ns(2026, 11, 26, 17, 4, 19)),
        ("2026-11-26T17:04:19.123456789+00:00", utc_ns(2026, 11, 26, 17, 4, 19, 123456789)),
        ("2026-11-26t17:04:19.25z", utc_ns(2026, 11, 26, 17, 4, 19, 250000000)),
        # More than 9 digits: truncated like Go's parser.
        ("2026-11-26T17:04:19.1234567899Z", utc_ns(2026, 11, 26, 17, 4, 19, 123456789)),
    ],
)
def test_docker_time_parses_to_exact_unix_nanoseconds(value: str, expected: int) -> None:
    assert parse_docker_time(value) == expected
    assert parse_docker_time(value) == expected  # second call goes through the cache


@pytest.mark.parametrize(
    "value",
    [
        "",
        "garbage",
        "2026-11-26T17:04:19",  # no zone
        "2026-11-26 17:04:19Z",
        "2026-11-26T17:04:19.Z",
        "2026-11-26T17:04:19.12a4Z",
        "2026-11-26T17:04:19.1_0Z",
        "2026-11-26T17:04:19.+1Z",
        "2026-11-26T17:04:19. 1Z",
        "2026-11-26T17:04:19.\u0663Z",  # ARABIC-INDIC DIGIT THREE
        "2026-11-26T17:04:19xZ",
        "2026-11-26T17:04:19.123ZZ",
        "2026-11-26T17:04:19.123+25:00",
        "2026-02-30T00:00:00Z",
        "2026-11-26T24:00:00Z",
        "2026-11-26T17:60:00Z",
        "2026-11-26T17:04:60Z",
        "0000-01-01T00:00:00Z",
    ],
)
def test_docker_time_rejects_garbage_even_after_its_second_is_cached(value: str) -> None:
    parse_docker_time("2026-11-26T17:04:19.5Z")  # warm the per-second cache
    with pytest.raises(ValueError):
        parse_docker_time(value)


# --- decode_record -----------------------------------------------------------------------

T1 = "2026-11-26T17:04:15.611947664Z"
T1_NS = utc_ns(2026, 11, 26, 17, 4, 15, 611947664)

DOCKER_RECORDS = [
    # (record bytes as Docker 20.10 wrote them, stream, decoded log)
    (
        r'{"log":"plain line\n","stream":"stdout","time":"2026-11-26T17:04:15.611942166Z"}',
        "stdout",
        "plain line\n",
    ),
    (
        r'{"log":"tab\u0009here \"quoted\" back\\slash \u003ctag\u003e \u0026 amp\n",'
        r'"stream":"stdout","time":"2026-11-26T17:04:15.611947664Z"}',
        "stdout",
        'tab\there "quoted" back\\slash <tag> & amp\n',
    ),
    (
        r'{"log":"ctl \u0001\u001b[31mred\u001b[0m\n","stream":"stdout",'
        r'"time":"2026-11-26T17:04:15.611950758Z"}',
        "stdout",
        "ctl \x01\x1b[31mred\x1b[0m\n",
    ),
    (
        r'{"log":"ls \u2028 ps \u2029 end\n","stream":"stdout",'
        r'"time":"2026-11-26T17:04:15.611952852Z"}',
        "stdout",
        "ls \u2028 ps \u2029 end\n",
    ),
    (  # the container wrote bytes ff fe: Docker already replaced them
        r'{"log":"bad utf8 \ufffd\ufffd end\n","stream":"stdout",'
        r'"time":"2026-11-26T17:04:15.611955425Z"}',
        "stdout",
        "bad utf8 \ufffd\ufffd end\n",
    ),
    (
        '{"log":"héllo ünïcode 日本 🎉\\n","stream":"stdout",'
        '"time":"2026-11-26T17:04:15.611957188Z"}',
        "stdout",
        "héllo ünïcode 日本 🎉\n",
    ),
    (
        r'{"log":"\n","stream":"stdout","time":"2026-11-26T17:04:15.611959021Z"}',
        "stdout",
        "\n",
    ),
    (
        r'{"log":"to stderr\n","stream":"stderr","time":"2026-11-26T17:04:15.611755007Z"}',
        "stderr",
        "to stderr\n",
    ),
    (
        r'{"log":"no newline at exit","stream":"stdout","time":"2026-11-26T17:04:15.637219053Z"}',
        "stdout",
        "no newline at exit",
    ),
]


@pytest.mark.parametrize(("raw", "stream", "log"), DOCKER_RECORDS)
def test_real_docker_records_decode_with_escapes_intact(raw: str, stream: str, log: str) -> None:
    rec = decode_record(raw.encode())
    assert rec is not None
    assert (rec.stream, rec.log, rec.attrs) == (stream, log, None)
    assert rec.ts_ns == parse_docker_time(raw.rsplit('"time":"', 1)[1][:-2])


def test_tty_record_with_attrs_keeps_attrs_and_crlf() -> None:
    # Docker 20.10, `docker run -t --label app=demo --log-opt labels=app --log-opt tag=…`.
    raw = (
        r'{"log":"tty line\r\n","stream":"stdout","attrs":{"app":"demo","tag":"pensive_murdock"},'
        r'"time":"2026-11-26T17:04:19.333444803Z"}'
    )
    rec = decode_record(raw.encode())
    assert rec == DockerRecord(
        utc_ns(2026, 11, 26, 17, 4, 19, 333444803),
        "stdout",
        "tty line\r\n",
        {"app": "demo", "tag": "pensive_murdock"},
    )


def test_invalid_utf8_in_the_file_is_shipped_with_replacement_characters() -> None:
    raw = b'{"log":"caf\xe9 \xff ok\\n","stream":"stdout","time":"' + T1.encode() + b'"}'
    rec = decode_record(raw)
    assert rec is not None
    assert rec.log == "caf\ufffd \ufffd ok\n"
    assert rec.ts_ns == T1_NS


def test_attrs_keep_only_string_values() -> None:
    raw = b'{"log":"x\\n","stream":"stdout","attrs":{"a":"1","b":2,"c":null},"time":"%s"}' % (
        T1.encode()
    )
    rec = decode_record(raw)
    assert rec is not None and rec.attrs == {"a": "1"}
    not_a_dict = b'{"log":"x\\n","stream":"stdout","attrs":"tag","time":"%s"}' % T1.encode()
    rec = decode_record(not_a_dict)
    assert rec is not None and rec.attrs is None


def test_megabyte_record_decodes_whole() -> None:
    log = "x" * (1 << 20)
    raw = b'{"log":"%s\\n","stream":"stdout","time":"%s"}' % (log.encode(), T1.encode())
    rec = decode_record(raw)
    assert rec is not None and rec.log == log + "\n"


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"{",
        b'{"log":"x\\n","stream":"stdout","time":"' + T1.encode(),  # torn write
        b'{"log":"x\\n","stream":"stdout","time":"2026-11-26T17:04:15Z"} trailing',
        b"[1,2]",
        b'"log"',
        b"42",
        b"null",
        b'{"stream":"stdout","time":"' + T1.encode() + b'"}',
        b'{"log":"x\\n","time":"' + T1.encode() + b'"}',
        b'{"log":"x\\n","stream":"stdout"}',
        b'{"log":1,"stream":"stdout","time":"' + T1.encode() + b'"}',
        b'{"log":null,"stream":"stdout","time":"' + T1.encode() + b'"}',
        b'{"log":"x\\n","stream":"stdin","time":"' + T1.encode() + b'"}',
        b'{"log":"x\\n","stream":["stdout"],"time":"' + T1.encode() + b'"}',
        b'{"log":"x\\n","stream":"stdout","time":1764176655}',
        b'{"log":"x\\n","stream":"stdout","time":"yesterday"}',
        b'{"log":"\\ud800\\n","stream":"stdout","time":"' + T1.encode() + b'"}',
        bytes(range(256)),
        b"\x00" * 64,
        b"\xff\xfe{not json",
        b'{"log":"' + b"\xff" * 10 + b"x" * (1 << 20),  # invalid UTF-8, then truncated JSON
        b"[" * 100_000,
        b'{"a":' * 100_000,
    ],
)
def test_malformed_records_decode_to_none_without_raising(raw: bytes) -> None:
    assert decode_record(raw) is None


# --- PartialLineBuffer -------------------------------------------------------------------


def record(log: str, stream: str = "stdout", time_: str = T1) -> bytes:
    """A record in Docker's own field order and escaping for the characters used here."""
    escaped = log.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    escaped = escaped.replace("\r", "\\r")
    return f'{{"log":"{escaped}","stream":"{stream}","time":"{time_}"}}'.encode()


def write_log(path: Path, records: list[bytes]) -> Path:
    path.write_bytes(b"".join(r + b"\n" for r in records))
    return path


def file_records(path: Path) -> list[tuple[bytes, int, int]]:
    """(record, start offset, end offset after its newline) for every line of a real file."""
    out = []
    offset = 0
    with path.open("rb") as f:
        for line in f:
            out.append((line.rstrip(b"\n"), offset, offset + len(line)))
            offset += len(line)
    return out


def feed_file(buffer: PartialLineBuffer, path: Path) -> list[CompleteLine]:
    lines = []
    for raw, start, end in file_records(path):
        rec = decode_record(raw)
        assert rec is not None
        line = buffer.feed(rec, start, end)
        if line is not None:
            lines.append(line)
    return lines


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_complete_record_becomes_a_line_without_its_newline(tmp_path: Path) -> None:
    path = write_log(tmp_path / "c-json.log", [record("hello\n"), record("\n", stream="stderr")])
    lines = feed_file(PartialLineBuffer(), path)
    first_len = len(record("hello\n")) + 1
    assert lines == [
        CompleteLine(T1_NS, "stdout", "hello", False, first_len),
        CompleteLine(T1_NS, "stderr", "", False, path.stat().st_size),
    ]


def test_tty_crlf_line_loses_both_line_end_characters(tmp_path: Path) -> None:
    path = write_log(tmp_path / "c-json.log", [record("tty line\r\n"), record("bare cr\r")])
    lines = feed_file(PartialLineBuffer(), path)
    assert [x.line for x in lines] == ["tty line"]
    buffer = PartialLineBuffer()
    for raw, start, end in file_records(path)[1:]:
        rec = decode_record(raw)
        assert rec is not None and buffer.feed(rec, start, end) is None
    assert [x.line for x in buffer.flush_all()] == ["bare cr\r"]  # no newline: kept as is


def test_40000_byte_line_in_three_docker_chunks_is_one_line(tmp_path: Path) -> None:
    # Docker 20.10 layout: 16384 + 16384 + 7232 + "\n", all with the first chunk's time.
    t = "2026-11-26T17:13:15.254645562Z"
    payload = "".join(chr(ord("a") + i % 26) for i in range(40_000))
    chunks = [payload[:16384], payload[16384:32768], payload[32768:] + "\n"]
    path = write_log(tmp_path / "c-json.log", [record(c, time_=t) for c in chunks])
    assert [len(r) for r, _, _ in file_records(path)] == [16452, 16452, 7302]
    buffer = PartialLineBuffer()
    seen = []
    for raw, start, end in file_records(path):
        rec = decode_record(raw)
        assert rec is not None
        seen.append((buffer.feed(rec, start, end), buffer.pending_start_offset()))
    assert seen[0] == (None, 0)
    assert seen[1] == (None, 0)
    line, pending = seen[2]
    assert pending is None
    assert line == CompleteLine(
        utc_ns(2026, 11, 26, 17, 13, 15, 254645562), "stdout", payload, False, path.stat().st_size
    )


def test_merged_line_keeps_the_first_chunks_timestamp(tmp_path: Path) -> None:
    path = write_log(
        tmp_path / "c-json.log",
        [record("a" * 10, time_=T1), record("b\n", time_="2026-11-26T17:04:16.5Z")],
    )
    (line,) = feed_file(PartialLineBuffer(), path)
    assert (line.ts_ns, line.line) == (T1_NS, "a" * 10 + "b")


def test_interleaved_stdout_and_stderr_partials_reassemble_per_stream(tmp_path: Path) -> None:
    out, err = "o" * 20_000, "e" * 20_000
    path = write_log(
        tmp_path / "c-json.log",
        [
            record(out[:16384]),
            record(err[:16384], stream="stderr"),
            record(out[16384:] + "\n"),
            record(err[16384:] + "\n", stream="stderr"),
        ],
    )
    recs = file_records(path)
    buffer = PartialLineBuffer()
    results = []
    for raw, start, end in recs:
        rec = decode_record(raw)
        assert rec is not None
        results.append((buffer.feed(rec, start, end), buffer.pending_start_offset()))
    assert [r[1] for r in results] == [0, 0, recs[1][1], None]
    assert results[0][0] is None and results[1][0] is None
    stdout_line, stderr_line = results[2][0], results[3][0]
    # Committing past the stderr line still being merged could lose its first half.
    assert stdout_line == CompleteLine(T1_NS, "stdout", out, False, recs[1][1])
    assert stderr_line == CompleteLine(T1_NS, "stderr", err, False, recs[3][2])


def test_complete_line_on_other_stream_passes_while_a_partial_is_pending(tmp_path: Path) -> None:
    path = write_log(
        tmp_path / "c-json.log",
        [record("part-"), record("whole\n", stream="stderr"), record("rest\n")],
    )
    recs = file_records(path)
    buffer = PartialLineBuffer()
    lines = feed_file(buffer, path)
    assert [(x.stream, x.line, x.end_offset) for x in lines] == [
        ("stderr", "whole", recs[0][1]),  # safe offset: the pending stdout line's start
        ("stdout", "part-rest", recs[2][2]),
    ]


def test_pending_start_offset_is_the_oldest_unfinished_line(tmp_path: Path) -> None:
    path = write_log(
        tmp_path / "c-json.log",
        [record("done\n"), record("a1"), record("b1", stream="stderr"), record("a2\n")],
    )
    recs = file_records(path)
    buffer = PartialLineBuffer()
    offsets = []
    for raw, start, end in recs:
        rec = decode_record(raw)
        assert rec is not None
        buffer.feed(rec, start, end)
        offsets.append(buffer.pending_start_offset())
    # Never past the first byte of a line whose first half we hold only in memory.
    assert offsets == [None, recs[1][1], recs[1][1], recs[2][1]]
    buffer.flush_all()
    assert buffer.pending_start_offset() is None


def test_line_over_max_line_size_is_cut_and_flagged_and_its_rest_consumed(
    tmp_path: Path,
) -> None:
    path = write_log(
        tmp_path / "c-json.log",
        [record("a" * 60), record("b" * 60), record("c" * 60 + "\n"), record("next\n")],
    )
    lines = feed_file(PartialLineBuffer(max_line_size=100), path)
    assert [(x.line, x.truncated) for x in lines] == [
        ("a" * 60 + "b" * 40, True),
        ("next", False),
    ]
    assert lines[0].end_offset == file_records(path)[2][2]


def test_cap_counts_utf8_bytes_and_cuts_on_a_character_boundary(tmp_path: Path) -> None:
    # "é" is 2 bytes, "日" 3, "🎉" 4: a cap of 100 bytes falls inside a character.
    text = "é日🎉" * 30
    path = write_log(tmp_path / "c-json.log", [record(text[:50]), record(text[50:] + "\n")])
    (line,) = feed_file(PartialLineBuffer(max_line_size=100), path)
    assert line.truncated
    data = line.line.encode("utf-8")
    assert 97 <= len(data) <= 100
    assert text.startswith(line.line)


def test_single_record_over_the_cap_is_cut_on_the_fast_path(tmp_path: Path) -> None:
    path = write_log(tmp_path / "c-json.log", [record("ü" * 80 + "\n"), record("ok\n")])
    lines = feed_file(PartialLineBuffer(max_line_size=101), path)
    assert [(x.line, x.truncated) for x in lines] == [("ü" * 50, True), ("ok", False)]


def test_line_exactly_at_the_cap_is_not_truncated_even_with_crlf(tmp_path: Path) -> None:
    path = write_log(
        tmp_path / "c-json.log",
        [record("a" * 60), record("b" * 40 + "\r"), record("\n"), record("c" * 100 + "\r\n")],
    )
    lines = feed_file(PartialLineBuffer(max_line_size=100), path)
    assert [(x.line, x.truncated) for x in lines] == [
        ("a" * 60 + "b" * 40, False),
        ("c" * 100, False),
    ]


def test_flush_idle_emits_partials_after_the_idle_time_since_their_last_chunk(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    buffer = PartialLineBuffer(clock=clock)
    path = write_log(
        tmp_path / "c-json.log",
        [record("progress 1 "), record("progress 2"), record("err tail", stream="stderr")],
    )
    recs = file_records(path)
    for i, (raw, start, end) in enumerate(recs):
        clock.now = 1000.0 + 4 * i  # chunks at t=1000, 1004, 1008
        rec = decode_record(raw)
        assert rec is not None and buffer.feed(rec, start, end) is None
    assert buffer.flush_idle(5.0, now=1008.9) == []  # stdout last fed at 1004
    (stdout_line,) = buffer.flush_idle(5.0, now=1009.0)
    assert stdout_line == CompleteLine(T1_NS, "stdout", "progress 1 progress 2", False, recs[1][2])
    assert buffer.pending_start_offset() == recs[2][1]
    clock.now = 1013.0
    (stderr_line,) = buffer.flush_idle(5.0)
    assert (stderr_line.stream, stderr_line.line) == ("stderr", "err tail")
    assert buffer.pending_start_offset() is None


def test_flush_all_emits_every_partial_in_file_order(tmp_path: Path) -> None:
    path = write_log(
        tmp_path / "c-json.log",
        [record("first", stream="stderr"), record("second"), record("x" * 50)],
    )
    buffer = PartialLineBuffer(max_line_size=30)
    assert feed_file(buffer, path) == []
    lines = buffer.flush_all()
    assert [(x.stream, x.line, x.truncated) for x in lines] == [
        ("stderr", "first", False),
        ("stdout", ("second" + "x" * 50)[:30], True),
    ]
    assert buffer.flush_all() == []


def test_empty_partial_record_changes_nothing(tmp_path: Path) -> None:
    path = write_log(tmp_path / "c-json.log", [record("")])
    buffer = PartialLineBuffer()
    assert feed_file(buffer, path) == []
    assert buffer.pending_start_offset() is None


# --- feed_chunk: the batch path must equal record-by-record decoding -------------------------


def mixed_log(path: Path) -> Path:
    junk = [b"{", b"not json", bytes(range(1, 10)), b'{"log":"x","stream":"stdin","time":"1"}']
    records = [raw.encode() for raw, _, _ in DOCKER_RECORDS[:-1]]
    return write_log(
        path,
        [
            records[0],
            record("p1-" + "x" * 100),
            junk[0],
            record("q1-", stream="stderr"),
            records[1],
            record("p2\n"),
            junk[1],
            record("ü" * 300 + "\r\n"),
            junk[2],
            record("q2\r\n", stream="stderr"),
            *records[2:],
            b'{"log":"inv\xffalid\\n","stream":"stdout","time":"' + T1.encode() + b'"}',
            b'{"log":"tty\\r\\n","stream":"stdout","attrs":{"tag":"t"},"time":"'
            + T1.encode()
            + b'"}',
            junk[3],
            record("tail without newline"),
        ],
    )


def reference_lines(path: Path, max_line_size: int) -> tuple[list[CompleteLine], int]:
    buffer = PartialLineBuffer(max_line_size=max_line_size)
    lines, malformed = [], 0
    for raw, start, end in file_records(path):
        rec = decode_record(raw)
        if rec is None:
            malformed += 1
            continue
        line = buffer.feed(rec, start, end)
        if line is not None:
            lines.append(line)
    return lines + buffer.flush_all(), malformed


@pytest.mark.parametrize("block_size", [1, 7, 100, 4096, 1 << 20])
def test_feed_chunk_equals_record_by_record_decoding(tmp_path: Path, block_size: int) -> None:
    path = mixed_log(tmp_path / "c-json.log")
    expected, expected_malformed = reference_lines(path, max_line_size=400)
    buffer = PartialLineBuffer(max_line_size=400)
    lines: list[CompleteLine] = []
    malformed = 0
    carry = b""
    offset = 0  # file offset of carry[0]
    with path.open("rb") as f:
        while block := f.read(block_size):
            data = carry + block
            result = buffer.feed_chunk(data, offset)
            lines += result.lines
            malformed += result.malformed
            carry = data[result.consumed :]
            offset += result.consumed
    assert carry == b""
    assert lines + buffer.flush_all() == expected
    assert malformed == expected_malformed == 4
    assert any(x.truncated for x in expected)
    assert any(x.attrs == {"tag": "t"} for x in expected)


def test_feed_chunk_leaves_an_unterminated_record_unconsumed() -> None:
    whole = record("a\n") + b"\n"
    result = PartialLineBuffer().feed_chunk(whole + b'{"log":"b', 500)
    assert result.consumed == len(whole)
    assert result.malformed == 0
    assert [(x.line, x.end_offset) for x in result.lines] == [("a", 500 + len(whole))]


# --- the live engine ---------------------------------------------------------------------


def test_real_docker_json_file_reassembles_long_line_and_escapes(
    run_container: Callable[..., Any],
) -> None:
    script = (
        "head -c 40000 /dev/zero | tr '\\0' a; echo; "
        "printf 'q\"b\\\\s<t>&\\t\\r\\n'; printf 'to err\\n' >&2; printf 'no newline'"
    )
    container = run_container(script)
    assert container.wait(timeout=30)["StatusCode"] == 0
    container.reload()
    path = Path(container.attrs["LogPath"])
    deadline = time.monotonic() + 10
    while path.read_bytes().count(b"\n") < 6 and time.monotonic() < deadline:
        time.sleep(0.05)  # the daemon's copier may lag the container's exit
    data = path.read_bytes()
    records = [decode_record(r) for r in data.split(b"\n")[:-1]]
    chunks = [r for r in records if r is not None and r.log.startswith("aaa")]
    assert [len(r.log) for r in chunks] == [16384, 16384, 7233]
    assert len({r.ts_ns for r in chunks}) == 1
    buffer = PartialLineBuffer()
    result = buffer.feed_chunk(data, 0)
    assert result.malformed == 0 and result.consumed == len(data)
    lines = sorted(result.lines + buffer.flush_all(), key=lambda x: (x.stream, x.end_offset))
    assert [(x.stream, x.line) for x in lines] == [
        ("stderr", "to err"),
        ("stdout", "a" * 40_000),
        ("stdout", 'q"b\\s<t>&\t'),
        ("stdout", "no newline"),
    ]
    assert not any(x.truncated for x in lines)


def test_partial_carried_over_a_rotation_completes_from_the_next_file() -> None:
    head = record("h" * 16384, time_=T1) + b"\n"
    tail = record("t" * 100 + "\n", time_=T1) + b"\n"
    after = record("next line\n") + b"\n"
    buffer = PartialLineBuffer()
    assert buffer.feed_chunk(head, 4096).lines == []
    assert buffer.pending_start_offset() == 4096 and not buffer.has_carried()
    assert buffer.carry_over()  # the old file is drained; the rest is in the new one
    assert buffer.has_carried()
    lines = buffer.feed_chunk(tail + after, 0).lines
    assert (lines[0].ts_ns, lines[0].line) == (T1_NS, "h" * 16384 + "t" * 100)
    assert lines[1].line == "next line"
    assert not buffer.has_carried() and buffer.pending_start_offset() is None


def test_carry_over_with_nothing_pending_changes_nothing() -> None:
    buffer = PartialLineBuffer()
    assert not buffer.carry_over()
    assert not buffer.has_carried()
