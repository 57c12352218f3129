"""The hand-assembled protobuf push body against the official protobuf runtime."""

from __future__ import annotations

from typing import Any

import pytest
import snappy

from agent.logs.loki_encode import PushRequest, encode_protobuf
from agent.logs.model import PushBatch, PushEntry, StreamLabels, render_labels

NS = 1_000_000_000


def runtime_bytes(batch: PushBatch) -> bytes:
    """What ``SerializeToString`` of the same request, built field by field, gives."""
    request = PushRequest()
    for labels, entries in batch.streams.items():
        stream = request.streams.add(labels=render_labels(labels.pairs))
        for ts_ns, line, metadata in entries:
            entry = stream.entries.add(line=line)
            entry.timestamp.seconds = ts_ns // NS
            entry.timestamp.nanos = ts_ns % NS
            for name, value in metadata:
                entry.structuredMetadata.add(name=name, value=value)
    raw: bytes = request.SerializeToString()
    return raw


def body(batch: PushBatch) -> bytes:
    raw: bytes = snappy.decompress(encode_protobuf(batch).body)
    return raw


TIMESTAMPS = [
    0,
    1,
    127,
    128,
    16_383,
    16_384,
    (1 << 28) - 1,
    1 << 28,
    NS - 1,
    NS,
    1_764_174_000 * NS + 999_999_999,
    1_764_174_000 * NS + 123_456,
    -1,
    -NS - 5,
]
LINES = ["", "x", "a" * 127, "b" * 128, "é" * 9000, "ünïcödé ✓ \x00 \t"]
METADATA: list[tuple[tuple[str, str], ...]] = [
    (),
    (("container_id", "f" * 64),),
    (("container_id", "f" * 64), ("requestId", "req-1"), ("userId", "ユーザー1")),
    (("k", ""),),
    (("", "v"),),
    (("", ""),),
    (("name", "v" * 20_000),),
]


def test_protobuf_body_is_byte_identical_to_the_official_runtime() -> None:
    batch = PushBatch()
    streams = [
        StreamLabels.of({"host": "h1", "level": "info"}),
        StreamLabels.of({"app": 'say "hi"\\', "host": "h2"}),
        StreamLabels(()),
    ]
    i = 0
    for ts in TIMESTAMPS:
        for line in LINES:
            for metadata in METADATA:
                batch.add(streams[i % len(streams)], PushEntry(ts, line, metadata))
                i += 1
    assert body(batch) == runtime_bytes(batch)


def test_repeated_metadata_and_seconds_decode_per_entry() -> None:
    # Cached pieces (a second's varint, a metadata pair) must not leak between entries.
    base = 1_764_174_000 * NS
    batch = PushBatch()
    labels = StreamLabels.of({"host": "h"})
    expected: list[Any] = []
    for i in range(3000):
        ts = base + i * 997_003
        metadata = (("container_id", "c" * 64), ("requestId", f"r-{i % 7}"))[: 1 + i % 2]
        batch.add(labels, PushEntry(ts, f"line {i}", metadata))
        expected.append((ts // NS, ts % NS, f"line {i}", [list(p) for p in metadata]))

    request = PushRequest.FromString(body(batch))

    decoded = [
        (
            e.timestamp.seconds,
            e.timestamp.nanos,
            e.line,
            [[p.name, p.value] for p in e.structuredMetadata],
        )
        for e in request.streams[0].entries
    ]
    assert decoded == expected
    assert body(batch) == runtime_bytes(batch)


@pytest.mark.parametrize("entries", [0, 1, 50_000])
def test_batches_of_any_size_match_the_runtime(entries: int) -> None:
    batch = PushBatch()
    for i in range(entries):
        labels = StreamLabels.of({"host": "h", "stream": "stderr" if i % 3 else "stdout"})
        batch.add(labels, PushEntry(1_700_000_000 * NS + i * 1_013, f"{i:06d} " + "é" * (i % 300)))
    assert body(batch) == runtime_bytes(batch)
