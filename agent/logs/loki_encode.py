"""Push-request bodies for Loki's ``POST /loki/api/v1/push``, and batch splitting.

Two wire forms, both exactly what Loki's ``ParseLokiRequest`` accepts:

* protobuf (default): ``logproto.PushRequest`` (``grafana/loki`` ``pkg/push/push.proto``),
  then snappy **block** compressed (``snappy.compress``; Loki reads it with
  ``util.RawSnappy``, so the framed format would be a 400).
* json: ``{"streams":[{"stream":{..},"values":[["<ns>", line, {metadata}]]}]}`` with the
  timestamp as a *string* (a JSON number is a 400), optionally gzip'ed.

Entries keep the order they are given in (file order); Loki accepts out-of-order entries
within its 1 h window.

Encoding is on the hot path, so the protobuf bytes are assembled by hand. The official
runtime's message classes (:data:`PushRequest`, :data:`EntryAdapter`) are still offered,
built on first use from a descriptor assembled here (no generated ``_pb2`` module whose
gencode version could disagree with the installed runtime), to decode bodies and to check
the hand-made bytes against.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from functools import cache
from typing import Any

import orjson
import snappy

from agent.logs.model import PushBatch, PushEntry, StreamLabels, render_labels
from agent.logs.speedups import native as _native

PROTOBUF_CONTENT_TYPE = "application/x-protobuf"
JSON_CONTENT_TYPE = "application/json"

_NS = 1_000_000_000


@cache
def _build_push_classes() -> tuple[Any, Any]:
    """PushRequest and EntryAdapter classes from a hand-built ``logproto`` descriptor."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, timestamp_pb2

    field = descriptor_pb2.FieldDescriptorProto
    proto = descriptor_pb2.FileDescriptorProto(
        name="nexo_agent/loki_push.proto",
        package="logproto",
        syntax="proto3",
        dependency=["google/protobuf/timestamp.proto"],
    )

    def message(name: str, *fields: tuple[str, int, int, int, str]) -> None:
        msg = proto.message_type.add(name=name)
        for fname, number, ftype, label, type_name in fields:
            f = msg.field.add(name=fname, number=number, type=ftype, label=label, json_name=fname)
            if type_name:
                f.type_name = type_name

    opt, rep = field.LABEL_OPTIONAL, field.LABEL_REPEATED
    string, uint64, msg = field.TYPE_STRING, field.TYPE_UINT64, field.TYPE_MESSAGE
    message(
        "PushRequest",
        ("streams", 1, msg, rep, ".logproto.StreamAdapter"),
        ("format", 2, string, opt, ""),
    )
    message(
        "StreamAdapter",
        ("labels", 1, string, opt, ""),
        ("entries", 2, msg, rep, ".logproto.EntryAdapter"),
        ("hash", 3, uint64, opt, ""),
    )
    message(
        "EntryAdapter",
        ("timestamp", 1, msg, opt, ".google.protobuf.Timestamp"),
        ("line", 2, string, opt, ""),
        ("structuredMetadata", 3, msg, rep, ".logproto.LabelPairAdapter"),
        ("parsed", 4, msg, rep, ".logproto.LabelPairAdapter"),
    )
    message("LabelPairAdapter", ("name", 1, string, opt, ""), ("value", 2, string, opt, ""))

    # A private pool: nothing else in the process can collide with the "logproto" names.
    pool = descriptor_pool.DescriptorPool()
    pool.Add(descriptor_pb2.FileDescriptorProto.FromString(timestamp_pb2.DESCRIPTOR.serialized_pb))
    pool.Add(proto)
    push_request = message_factory.GetMessageClass(
        pool.FindMessageTypeByName("logproto.PushRequest")
    )
    entry = message_factory.GetMessageClass(pool.FindMessageTypeByName("logproto.EntryAdapter"))
    return push_request, entry


def __getattr__(name: str) -> Any:
    # PushRequest / EntryAdapter: importing the runtime costs the agent ~50 ms at start.
    if name == "PushRequest":
        return _build_push_classes()[0]
    if name == "EntryAdapter":
        return _build_push_classes()[1]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True, slots=True)
class EncodedPush:
    """A ready-to-send request body and the headers that describe it."""

    body: bytes
    content_type: str
    content_encoding: str | None = None

    def headers(self) -> dict[str, str]:
        headers = {"Content-Type": self.content_type}
        if self.content_encoding:
            headers["Content-Encoding"] = self.content_encoding
        return headers


def _labels_string(labels: StreamLabels) -> str:
    return labels.rendered or render_labels(labels.pairs)


def encode_protobuf(batch: PushBatch) -> EncodedPush:
    """Snappy(block)-compressed ``logproto.PushRequest``, entries in the order given.

    The wire bytes are assembled by hand, by the C speedups when built
    (``agent/logs/speedups.py``) or in Python: the same bytes, field for field, as the
    official runtime's ``SerializeToString`` (tests pin both). The Python encoder costs
    about half the runtime's, because a batch repeats itself: the seconds of a timestamp,
    the high bits of its nanos, and most metadata pairs (``container_id`` on every entry
    of a target) are encoded once per batch.
    """
    raw = None
    if _native is not None:
        try:
            raw = _native.encode_push_request(
                [(_labels_string(labels), entries) for labels, entries in batch.streams.items()]
            )
        except TypeError:
            raw = None  # an entry not built by the reader (a list for a tuple): Python's turn
    if raw is None:
        raw = b"".join(_BatchEncoder().streams(batch))
    return EncodedPush(snappy.compress(raw), PROTOBUF_CONTENT_TYPE)


# Protobuf wire format (protobuf.dev/programming-guides/encoding): a field is a tag byte
# (number << 3 | wire type) then, for strings and messages, a varint length and the bytes.
# proto3 leaves zero and empty scalars out; an explicitly set sub-message is always written.
_MASK64 = (1 << 64) - 1
_VARINT_TABLE_SIZE = 1 << 14  # every length below 16 KiB is one list lookup


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_VARINT = [_varint(n) for n in range(_VARINT_TABLE_SIZE)]
# A low 7-bit group of a longer varint: continuation bit set.
_GROUP = [bytes((n | 0x80,)) for n in range(128)]


def _length(n: int) -> bytes:
    return _VARINT[n] if n < _VARINT_TABLE_SIZE else _varint(n)


def _string_field(tag: bytes, value: str) -> bytes:
    data = value.encode()
    return tag + _length(len(data)) + data if data else b""


class _BatchEncoder:
    """Per-batch caches of encoded pieces that repeat from entry to entry."""

    __slots__ = ("_high_nanos", "_names", "_pairs", "_seconds")

    def __init__(self) -> None:
        self._seconds: dict[int, bytes] = {}  # Timestamp.seconds field
        self._high_nanos: dict[int, bytes] = {}  # varint of nanos >> 14
        self._pairs: dict[tuple[str, str], bytes] = {}  # whole structuredMetadata field
        self._names: dict[str, bytes] = {}  # LabelPairAdapter.name field

    def streams(self, batch: PushBatch) -> list[bytes | bytearray]:
        out: list[bytes | bytearray] = []
        for labels, entries in batch.streams.items():
            body = self._stream(_labels_string(labels), entries)
            out.append(b"\x0a" + _length(len(body)))  # PushRequest.streams
            out.append(body)
        return out

    def _stream(self, labels: str, entries: list[PushEntry]) -> bytearray:
        buf = bytearray(_string_field(b"\x0a", labels))  # StreamAdapter.labels
        seconds_cache = self._seconds
        high_cache = self._high_nanos
        pairs = self._pairs
        small = _VARINT
        group = _GROUP
        ns = _NS
        for ts_ns, line, metadata in entries:
            # Timestamp{seconds = 1, nanos = 2}
            seconds, nanos = divmod(ts_ns, ns)
            ts = seconds_cache.get(seconds)
            if ts is None:
                ts = seconds_cache[seconds] = (
                    b"\x08" + _varint(seconds & _MASK64) if seconds else b""
                )
            if nanos >= _VARINT_TABLE_SIZE:
                high = high_cache.get(nanos >> 14)
                if high is None:
                    high = high_cache[nanos >> 14] = _varint(nanos >> 14)
                ts += b"\x10" + group[nanos & 0x7F] + group[nanos >> 7 & 0x7F] + high
            elif nanos:
                ts += b"\x10" + small[nanos]
            md = b""
            for pair in metadata:
                encoded = pairs.get(pair)
                if encoded is None:
                    encoded = pairs[pair] = self._pair(pair)
                md += encoded
            data = line.encode()
            n = len(data)
            # EntryAdapter{timestamp = 1, line = 2, structuredMetadata = 3}; ts is < 128 bytes.
            if n:
                line_len = small[n] if n < _VARINT_TABLE_SIZE else _varint(n)
                size = len(ts) + 3 + len(line_len) + n + len(md)
                buf += (
                    b"\x12"  # StreamAdapter.entries
                    + (small[size] if size < _VARINT_TABLE_SIZE else _varint(size))
                    + b"\x0a"
                    + small[len(ts)]
                    + ts
                    + b"\x12"
                    + line_len
                )
                buf += data
            else:
                buf += b"\x12" + _length(len(ts) + 2 + len(md)) + b"\x0a" + small[len(ts)] + ts
            buf += md
        return buf

    def _pair(self, pair: tuple[str, str]) -> bytes:
        name, value = pair
        name_field = self._names.get(name)
        if name_field is None:
            name_field = self._names[name] = _string_field(b"\x0a", name)
        # LabelPairAdapter{name = 1, value = 2}; most values are unique (request ids), so
        # this runs for about every other entry.
        data = value.encode()
        if not data:
            return b"\x1a" + _length(len(name_field)) + name_field
        value_len = _length(len(data))
        size = len(name_field) + 1 + len(value_len) + len(data)
        return b"\x1a" + _length(size) + name_field + b"\x12" + value_len + data


def _json_value(entry: PushEntry) -> list[Any]:
    ts_ns, line, metadata = entry
    if metadata:
        return [str(ts_ns), line, dict(metadata)]
    return [str(ts_ns), line]


def encode_json(batch: PushBatch, gzip_level: int | None = None) -> EncodedPush:
    """Loki's JSON push body; ``gzip_level`` set = gzip'ed with ``Content-Encoding: gzip``."""
    body = orjson.dumps(
        {
            "streams": [
                {"stream": labels.as_dict(), "values": [_json_value(e) for e in entries]}
                for labels, entries in batch.streams.items()
            ]
        }
    )
    if gzip_level is None:
        return EncodedPush(body, JSON_CONTENT_TYPE)
    return EncodedPush(
        gzip.compress(body, compresslevel=gzip_level, mtime=0), JSON_CONTENT_TYPE, "gzip"
    )


# Upper bounds of the protobuf framing around a stream and an entry (tags, lengths,
# Timestamp), so an estimate never undercounts the serialized size.
_STREAM_OVERHEAD = 16
_ENTRY_OVERHEAD = 32
_PAIR_OVERHEAD = 8


def _entry_size(entry: PushEntry) -> int:
    line = entry.line
    size = (len(line) if line.isascii() else len(line.encode())) + _ENTRY_OVERHEAD
    for name, value in entry.metadata:
        size += len(name.encode()) + len(value.encode()) + _PAIR_OVERHEAD
    return size


def split_batch(batch: PushBatch, max_bytes: int) -> list[PushBatch]:
    """Split ``batch`` so no part's uncompressed body exceeds ``max_bytes`` (estimated).

    The estimate is an upper bound of the protobuf size and close to the JSON size. Entry
    order within a stream is preserved across the parts; an entry larger than ``max_bytes``
    on its own travels alone. A batch that already fits is returned as is (no copy).
    """
    label_sizes = {labels: len(_labels_string(labels).encode()) for labels in batch.streams}
    total = sum(label_sizes.values()) + _STREAM_OVERHEAD * len(batch.streams)
    sizes: dict[StreamLabels, list[int]] = {}
    for labels, entries in batch.streams.items():
        sizes[labels] = entry_sizes = [_entry_size(e) for e in entries]
        total += sum(entry_sizes)
    if total <= max_bytes:
        return [batch]

    parts: list[PushBatch] = []
    current = PushBatch()
    current_size = 0
    for labels, entries in batch.streams.items():
        stream_cost = label_sizes[labels] + _STREAM_OVERHEAD
        for entry, size in zip(entries, sizes[labels], strict=True):
            cost = size if labels in current.streams else size + stream_cost
            if current.entry_count and current_size + cost > max_bytes:
                parts.append(current)
                current, current_size = PushBatch(), 0
                cost = size + stream_cost
            current.add(labels, entry)
            current_size += cost
    if current.entry_count:
        parts.append(current)
    return parts


def encode(batch: PushBatch, encoding: str, json_gzip: bool = False) -> EncodedPush:
    """The body for ``batch`` in the configured encoding (``protobuf`` or ``json``)."""
    if encoding == "json":
        return encode_json(batch, gzip_level=1 if json_gzip else None)
    return encode_protobuf(batch)
