"""An in-process stand-in for Loki's push endpoint, strict where Loki is strict.

Every end-to-end test pushes here (or through here, to a real Loki: see
``tests/loki_backend.py``). It reproduces what a client can observe of Loki 3.x:

* request parsing as ``pkg/loghttp/push/push.go`` ``ParseLokiRequest``: Content-Encoding
  none/gzip/deflate (raw DEFLATE, Go's ``compress/flate``)/snappy (ignored), anything else
  400; Content-Type parsed like Go's ``mime.ParseMediaType`` (missing or malformed: 400),
  ``application/json`` = JSON, every other type = snappy *block* protobuf; unparsable
  stream labels reject the whole request;
* per-stream and per-entry validation as ``pkg/distributor/validator.go``, in its order,
  with partial acceptance: valid entries are stored and the answer is 400 with the errors;
* the ingester's per-stream rules (``pkg/ingester/stream.go``): an entry equal in timestamp
  and line to the stream's last appended entry is skipped silently; an entry more than
  ``max_chunk_age/2`` (1 h) behind the stream's newest one is ``too_far_behind``;
* a request whose validated bytes exceed the ingestion burst (6 MiB) is 429 as a whole;
* ``auth_enabled`` mode: no ``X-Scope-OrgID`` is 401; otherwise the tenant is ``fake``.

Fault injection (``fail_next``, ``fail_for``, ``respond_with``, ``delay``) answers before
any parsing and stores nothing. ``stop()``/``start()`` keep the port, so "Loki is down"
is a real refused connection.
"""

from __future__ import annotations

import asyncio
import collections
import gzip
import re
import ssl
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
import snappy
from aiohttp import web
from google.protobuf import (
    descriptor_pb2,
    descriptor_pool,
    message_factory,
    text_format,
    timestamp_pb2,
)

PUSH_PATH = "/loki/api/v1/push"
QUERY_RANGE_PATH = "/loki/api/v1/query_range"
NS = 1_000_000_000

# logproto push messages (grafana/loki pkg/push/push.proto), declared here independently
# of the agent's encoder so the receiver checks the agent instead of agreeing with it.
_PUSH_PROTO = """
name: "tests/loki_receiver_push.proto"
package: "logproto"
dependency: "google/protobuf/timestamp.proto"
syntax: "proto3"
message_type {
  name: "PushRequest"
  field { name: "streams" number: 1 label: LABEL_REPEATED type: TYPE_MESSAGE
          type_name: ".logproto.StreamAdapter" }
  field { name: "format" number: 2 label: LABEL_OPTIONAL type: TYPE_STRING }
}
message_type {
  name: "StreamAdapter"
  field { name: "labels" number: 1 label: LABEL_OPTIONAL type: TYPE_STRING }
  field { name: "entries" number: 2 label: LABEL_REPEATED type: TYPE_MESSAGE
          type_name: ".logproto.EntryAdapter" }
  field { name: "hash" number: 3 label: LABEL_OPTIONAL type: TYPE_UINT64 }
}
message_type {
  name: "EntryAdapter"
  field { name: "timestamp" number: 1 label: LABEL_OPTIONAL type: TYPE_MESSAGE
          type_name: ".google.protobuf.Timestamp" }
  field { name: "line" number: 2 label: LABEL_OPTIONAL type: TYPE_STRING }
  field { name: "structuredMetadata" number: 3 label: LABEL_REPEATED type: TYPE_MESSAGE
          type_name: ".logproto.LabelPairAdapter" }
  field { name: "parsed" number: 4 label: LABEL_REPEATED type: TYPE_MESSAGE
          type_name: ".logproto.LabelPairAdapter" }
}
message_type {
  name: "LabelPairAdapter"
  field { name: "name" number: 1 label: LABEL_OPTIONAL type: TYPE_STRING }
  field { name: "value" number: 2 label: LABEL_OPTIONAL type: TYPE_STRING }
}
"""


def _push_request_class() -> Any:
    pool = descriptor_pool.DescriptorPool()
    pool.Add(descriptor_pb2.FileDescriptorProto.FromString(timestamp_pb2.DESCRIPTOR.serialized_pb))
    pool.Add(text_format.Parse(_PUSH_PROTO, descriptor_pb2.FileDescriptorProto()))
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("logproto.PushRequest"))


PushRequestMessage = _push_request_class()
_SNAPPY_FRAMED_MAGIC = b"\xff\x06\x00\x00sNaPpY"


@dataclass(frozen=True, slots=True)
class LokiLimits:
    """Loki 3.x defaults (pkg/validation/limits.go, ingester max_chunk_age 2h)."""

    max_line_size: int = 256 * 1024
    max_label_names_per_series: int = 15
    max_label_name_length: int = 1024
    max_label_value_length: int = 2048
    reject_old_samples_max_age_ns: int = 7 * 86400 * NS
    creation_grace_period_ns: int = 10 * 60 * NS
    out_of_order_window_ns: int = 3600 * NS
    allow_structured_metadata: bool = True
    max_structured_metadata_size: int = 64 * 1024
    max_structured_metadata_entries: int = 128
    ingestion_burst_bytes: int = 6 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ReceivedEntry:
    """One stored log entry, as a query would return it."""

    labels: dict[str, str]
    ts_ns: int
    line: str
    metadata: dict[str, str] = field(default_factory=dict)
    tenant: str = "fake"


@dataclass(frozen=True, slots=True)
class Rejection:
    """An entry Loki would have discarded, with ``loki_discarded_samples_total``'s reason."""

    reason: str
    labels: str
    ts_ns: int
    line: str


@dataclass(slots=True)
class RecordedRequest:
    path: str
    headers: dict[str, str]
    body_size: int
    status: int = 0
    injected: bool = False


class RequestError(Exception):
    """The whole request is refused (nothing stored)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# ---------------------------------------------------------------------------- labels

_NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_WS = " \t\r\n"
_SIMPLE_ESCAPES = {
    "a": b"\a",
    "b": b"\b",
    "f": b"\f",
    "n": b"\n",
    "r": b"\r",
    "t": b"\t",
    "v": b"\v",
    "\\": b"\\",
    '"': b'"',
}


class LabelParseError(ValueError):
    pass


def _skip_ws(text: str, i: int) -> int:
    while i < len(text) and text[i] in _WS:
        i += 1
    return i


def _go_string(text: str, i: int) -> tuple[str, int]:
    """A Go string literal (interpreted ``"..."`` or raw ``` `...` ```) starting at ``i``."""
    if i >= len(text):
        raise LabelParseError("unexpected end of input, expected a string")
    quote = text[i]
    if quote == "`":
        end = text.find("`", i + 1)
        if end < 0:
            raise LabelParseError("raw string literal not terminated")
        return text[i + 1 : end].replace("\r", ""), end + 1
    if quote != '"':
        raise LabelParseError(f"unexpected {text[i]!r} at {i}, expected a string")
    out = bytearray()
    i += 1
    while True:
        if i >= len(text):
            raise LabelParseError("string literal not terminated")
        ch = text[i]
        if ch == '"':
            return out.decode("utf-8", "replace"), i + 1
        if ch == "\n":
            raise LabelParseError("newline in string literal")
        if ch != "\\":
            out += ch.encode()
            i += 1
            continue
        esc = text[i + 1 : i + 2]
        if esc in _SIMPLE_ESCAPES:
            out += _SIMPLE_ESCAPES[esc]
            i += 2
        elif esc in "01234567" and esc:
            digits = text[i + 1 : i + 4]
            if not re.fullmatch(r"[0-7]{3}", digits) or int(digits, 8) > 255:
                raise LabelParseError(f"invalid octal escape at {i}")
            out.append(int(digits, 8))
            i += 4
        elif esc in ("x", "u", "U"):
            width = {"x": 2, "u": 4, "U": 8}[esc]
            digits = text[i + 2 : i + 2 + width]
            if not re.fullmatch(rf"[0-9a-fA-F]{{{width}}}", digits):
                raise LabelParseError(f"invalid \\{esc} escape at {i}")
            value = int(digits, 16)
            if esc == "x":
                out.append(value)
            else:
                if value > 0x10FFFF or 0xD800 <= value <= 0xDFFF:
                    raise LabelParseError(f"invalid Unicode code point at {i}")
                out += chr(value).encode()
            i += 2 + width
        else:
            raise LabelParseError(f"unknown escape sequence at {i}")


def parse_labels(text: str) -> list[tuple[str, str]]:
    """Parse ``{name="value", ...}`` (LogQL stream selector with ``=`` matchers only).

    Pairs come back sorted by name, duplicates kept (Loki validates them afterwards).
    """
    i = _skip_ws(text, 0)
    if not text.startswith("{", i):
        raise LabelParseError("expected '{'")
    i = _skip_ws(text, i + 1)
    pairs: list[tuple[str, str]] = []
    if text.startswith("}", i):
        i += 1
    else:
        while True:
            match = _NAME_RE.match(text, i)
            if not match:
                raise LabelParseError(f"expected a label name at {i}")
            name = match.group()
            i = _skip_ws(text, match.end())
            if not text.startswith("=", i) or text.startswith("=~", i):
                raise LabelParseError(f"expected '=' after {name!r}")
            value, i = _go_string(text, _skip_ws(text, i + 1))
            pairs.append((name, value))
            i = _skip_ws(text, i)
            if text.startswith(",", i):
                i = _skip_ws(text, i + 1)
                continue
            if text.startswith("}", i):
                i += 1
                break
            raise LabelParseError(f"expected ',' or '}}' at {i}")
    if _skip_ws(text, i) != len(text):
        raise LabelParseError(f"unexpected trailing input at {i}")
    return sorted(pairs, key=lambda p: p[0])


def render_selector(labels: Iterable[tuple[str, str]]) -> str:
    """``{a="x", b="y"}``; a JSON string is a valid Go string literal."""
    return "{" + ", ".join(f"{k}={orjson.dumps(v).decode()}" for k, v in labels) + "}"


# ---------------------------------------------------------------------------- bodies


@dataclass(slots=True)
class ParsedStream:
    labels_text: str
    pairs: list[tuple[str, str]]
    entries: list[tuple[int, str, list[tuple[str, str]]]]


_MEDIA_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_MEDIA_RE = re.compile(rf"^{_MEDIA_TOKEN}/{_MEDIA_TOKEN}$")
_TS_RE = re.compile(r"^[+-]?[0-9]+$")


def parse_media_type(value: str | None) -> str:
    """The media type, lower-cased, or RequestError like Go's ``mime.ParseMediaType``."""
    media, _, params = (value or "").partition(";")
    media = media.strip().lower()
    if not media:
        raise RequestError(400, "mime: no media type")
    if not _MEDIA_RE.match(media):
        raise RequestError(400, "mime: expected token after slash")
    for param in filter(None, (p.strip() for p in params.split(";"))):
        if "=" not in param:
            raise RequestError(400, "mime: invalid media parameter")
    return media


def decode_body(body: bytes, content_encoding: str | None) -> bytes:
    """Undo ``Content-Encoding``; the protobuf payload stays snappy-compressed."""
    encoding = content_encoding or ""
    try:
        if encoding in ("", "snappy"):
            return body
        if encoding == "gzip":
            return gzip.decompress(body)
        if encoding == "deflate":
            return zlib.decompress(body, -15)
    except (OSError, EOFError, zlib.error) as exc:
        raise RequestError(400, f"{encoding}: {exc}") from exc
    raise RequestError(400, f'Content-Encoding "{encoding}" not supported')


def _string_map(value: Any, what: str) -> list[tuple[str, str]]:
    if not isinstance(value, dict):
        raise RequestError(400, f"{what}: expected an object of strings")
    for k, v in value.items():
        if not isinstance(v, str):
            raise RequestError(400, f"{what}: value of {k!r} is not a string")
    return list(value.items())


def parse_json_push(payload: bytes) -> list[ParsedStream]:
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise RequestError(400, f"invalid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise RequestError(400, "expected a JSON object")
    streams = doc.get("streams") or []
    if not isinstance(streams, list):
        raise RequestError(400, "streams: expected an array")
    out = []
    for stream in streams:
        if not isinstance(stream, dict):
            raise RequestError(400, "stream: expected an object")
        pairs = _string_map(stream.get("stream") or {}, "stream")
        entries: list[tuple[int, str, list[tuple[str, str]]]] = []
        for value in stream.get("values") or []:
            if not isinstance(value, list) or not 2 <= len(value) <= 3:
                raise RequestError(400, "array must contains 2 values")
            ts, line = value[0], value[1]
            # pkg/loghttp/entry.go: the timestamp must be a JSON string holding an int.
            if not isinstance(ts, str) or not _TS_RE.match(ts):
                raise RequestError(400, f"timestamp must be a string of nanoseconds, got {ts!r}")
            if not isinstance(line, str):
                raise RequestError(400, "line must be a string")
            metadata = _string_map(value[2], "structured metadata") if len(value) == 3 else []
            entries.append((int(ts), line, metadata))
        for name, _ in pairs:
            if not _NAME_RE.fullmatch(name):
                raise RequestError(400, f"couldn't parse labels: invalid label name {name!r}")
        pairs.sort(key=lambda p: p[0])
        out.append(ParsedStream(render_selector(pairs), pairs, entries))
    return out


def parse_protobuf_push(payload: bytes) -> tuple[list[ParsedStream], int]:
    # Loki reads snappy *block* format only (util.RawSnappy); a framed stream is corrupt input.
    if payload.startswith(_SNAPPY_FRAMED_MAGIC):
        raise RequestError(400, "snappy: corrupt input (framed format; Loki wants block)")
    try:
        raw = snappy.decompress(payload)
    except Exception as exc:  # python-snappy raises library-specific errors
        raise RequestError(400, f"snappy: corrupt input: {exc}") from exc
    try:
        request = PushRequestMessage.FromString(raw)
    except Exception as exc:
        raise RequestError(400, f"proto: cannot parse PushRequest: {exc}") from exc
    out = []
    for stream in request.streams:
        try:
            pairs = parse_labels(stream.labels)
        except LabelParseError as exc:
            raise RequestError(400, f"couldn't parse labels: {exc}") from exc
        entries = [
            (
                e.timestamp.seconds * NS + e.timestamp.nanos,
                e.line,
                [(p.name, p.value) for p in e.structuredMetadata],
            )
            for e in stream.entries
        ]
        out.append(ParsedStream(stream.labels, pairs, entries))
    return out, len(raw)


def parse_push(body: bytes, headers: Any) -> tuple[list[ParsedStream], int]:
    """Streams of one push request and its uncompressed size; RequestError if refused whole.

    The order of checks is Loki's: Content-Encoding, then Content-Type, then the body.
    """
    payload = decode_body(body, headers.get("Content-Encoding"))
    if parse_media_type(headers.get("Content-Type")) == "application/json":
        return parse_json_push(payload), len(payload)
    return parse_protobuf_push(payload)


# ---------------------------------------------------------------------------- validation


def _ts_text(ts_ns: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts_ns // NS))


def validate_labels(pairs: list[tuple[str, str]], text: str, limits: LokiLimits) -> tuple[str, str]:
    """(reason, message) for a stream Loki would reject, or ("", "")."""
    if not pairs:
        return "missing_labels", "error at least one label pair is required per stream"
    count = len(pairs) - (1 if any(n == "service_name" for n, _ in pairs) else 0)
    if count > limits.max_label_names_per_series:
        return (
            "max_label_names_per_series",
            f"entry for stream '{text}' has {count} label names; "
            f"limit {limits.max_label_names_per_series}",
        )
    last = None
    for name, value in pairs:
        if len(name) > limits.max_label_name_length:
            return "label_name_too_long", f"stream '{text}' has label name too long: '{name}'"
        if len(value.encode()) > limits.max_label_value_length:
            return "label_value_too_long", f"stream '{text}' has label value too long: '{value}'"
        if name == last:
            return "duplicate_label_names", f"stream '{text}' has duplicate label name: '{name}'"
        last = name
    return "", ""


def validate_entry(
    ts_ns: int,
    line: str,
    metadata: list[tuple[str, str]],
    text: str,
    now_ns: int,
    limits: LokiLimits,
) -> tuple[str, str]:
    """(reason, message) for an entry Loki's distributor would reject, or ("", "")."""
    if ts_ns < now_ns - limits.reject_old_samples_max_age_ns:
        return (
            "greater_than_max_sample_age",
            f"entry for stream '{text}' has timestamp too old: {_ts_text(ts_ns)}",
        )
    if ts_ns > now_ns + limits.creation_grace_period_ns:
        return (
            "too_far_in_future",
            f"entry for stream '{text}' has timestamp too new: {_ts_text(ts_ns)}",
        )
    line_size = len(line.encode())
    if limits.max_line_size and line_size > limits.max_line_size:
        return (
            "line_too_long",
            f"Max entry size '{limits.max_line_size}' bytes exceeded for stream '{text}' "
            f"while adding an entry with length '{line_size}' bytes",
        )
    if metadata:
        if not limits.allow_structured_metadata:
            return (
                "disallowed_structured_metadata",
                f"stream '{text}' includes structured metadata, but this feature is disallowed",
            )
        size = sum(len(n.encode()) + len(v.encode()) for n, v in metadata)
        if size > limits.max_structured_metadata_size:
            return (
                "structured_metadata_too_large",
                f"stream '{text}' has structured metadata too large: '{size}' bytes, "
                f"limit: '{limits.max_structured_metadata_size}' bytes",
            )
        if len(metadata) > limits.max_structured_metadata_entries:
            return (
                "structured_metadata_too_many",
                f"stream '{text}' has too many structured metadata labels: '{len(metadata)}', "
                f"limit: '{limits.max_structured_metadata_entries}'",
            )
    return "", ""


@dataclass(slots=True)
class _StreamState:
    """Per-stream ingester state: the last appended entry and the newest timestamp."""

    last_ts: int | None = None
    last_line: str = ""
    highest_ts: int | None = None


@dataclass(slots=True)
class _Plan:
    """The outcome of one request before it is committed to the store."""

    entries: list[ReceivedEntry] = field(default_factory=list)
    states: dict[tuple[str, tuple[tuple[str, str], ...]], _StreamState] = field(
        default_factory=dict
    )
    rejections: list[Rejection] = field(default_factory=list)
    validation_errors: list[str] = field(default_factory=list)
    ingester_errors: list[str] = field(default_factory=list)
    duplicates: int = 0
    status: int = 204
    message: str = ""


# ---------------------------------------------------------------------------- receiver


@dataclass(slots=True)
class _Fault:
    status: int
    body: str
    remaining: int = 0  # for fail_next
    until: float = 0.0  # monotonic deadline for fail_for


class LokiReceiver:
    """Loki's push endpoint on 127.0.0.1 (ephemeral port, kept across stop/start).

    ``upstream_url`` set = proxy mode: requests that parse are also forwarded byte for byte
    to that real Loki push URL (with ``upstream_tenant`` as ``X-Scope-OrgID`` when the
    request has none) and its answer is returned; the local store then records what this
    receiver accepted, but the real Loki is the truth for queries.
    """

    def __init__(
        self,
        *,
        limits: LokiLimits | None = None,
        auth_enabled: bool = False,
        ssl_context: ssl.SSLContext | None = None,
        upstream_url: str | None = None,
        upstream_tenant: str | None = None,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.limits = limits or LokiLimits()
        self.auth_enabled = auth_enabled
        self.ssl_context = ssl_context
        self.upstream_url = upstream_url
        self.upstream_tenant = upstream_tenant
        self.clock_ns = clock_ns
        self.port = 0
        self.delay = 0.0
        self.required_authorization: str | None = None
        self.requests: list[RecordedRequest] = []
        self.status_counts: collections.Counter[int] = collections.Counter()
        self.rejections: list[Rejection] = []
        self.duplicates_skipped = 0
        self.max_body_size = 0  # bytes on the wire
        self.max_decoded_size = 0  # after Content-Encoding and snappy
        self.discrepancies: list[str] = []  # proxy mode: local verdict != real Loki's
        self._entries: list[ReceivedEntry] = []
        self._streams: dict[tuple[str, tuple[tuple[str, str], ...]], _StreamState] = {}
        self._faults: list[_Fault] = []
        self._persistent: _Fault | None = None
        self._runner: web.AppRunner | None = None
        self._upstream: aiohttp.ClientSession | None = None
        self._request_seen = asyncio.Condition()

    # -- lifecycle

    @property
    def base_url(self) -> str:
        scheme = "https" if self.ssl_context else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def push_url(self) -> str:
        return self.base_url + PUSH_PATH

    @property
    def running(self) -> bool:
        return self._runner is not None

    async def start(self) -> None:
        """Listen (again) on 127.0.0.1; the first start picks the port, later ones reuse it."""
        if self._runner is not None:
            return
        app = web.Application(client_max_size=512 * 1024 * 1024)
        app.router.add_post(PUSH_PATH, self._handle_push)
        app.router.add_get("/ready", self._handle_ready)
        app.router.add_get(QUERY_RANGE_PATH, self._handle_query_range)
        runner = web.AppRunner(app, auto_decompress=False, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(
            runner,
            "127.0.0.1",
            self.port,
            ssl_context=self.ssl_context,
            reuse_address=True,
        )
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self.port = runner.addresses[0][1]
        self._runner = runner
        if self.upstream_url and self._upstream is None:
            self._upstream = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=30), auto_decompress=False
            )

    async def stop(self) -> None:
        """Stop listening (connections are refused) but keep the port and the stored data."""
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def close(self) -> None:
        await self.stop()
        if self._upstream is not None:
            await self._upstream.close()
            self._upstream = None

    async def __aenter__(self) -> LokiReceiver:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- fault injection

    def fail_next(self, n: int, status: int = 500, body: str = "injected failure") -> None:
        """Answer the next ``n`` push requests with ``status`` (nothing stored)."""
        self._faults.append(_Fault(status, body, remaining=n))

    def fail_for(self, seconds: float, status: int = 429, body: str = "injected failure") -> None:
        """Answer every push request with ``status`` for the next ``seconds``."""
        self._faults.append(_Fault(status, body, until=time.monotonic() + seconds))

    def respond_with(self, status: int | None, body: str = "") -> None:
        """Answer every push request with ``status`` until called with ``None``."""
        self._persistent = None if status is None else _Fault(status, body)

    def reset_faults(self) -> None:
        self._faults.clear()
        self._persistent = None
        self.delay = 0.0

    def _injected(self) -> _Fault | None:
        if self._persistent is not None:
            return self._persistent
        now = time.monotonic()
        self._faults = [f for f in self._faults if f.remaining > 0 or f.until > now]
        for fault in self._faults:
            if fault.remaining > 0:
                fault.remaining -= 1
                return fault
            if fault.until > now:
                return fault
        return None

    # -- stored data

    def entries(
        self, selector: dict[str, str] | None = None, tenant: str | None = None
    ) -> list[ReceivedEntry]:
        """Stored entries (arrival order) whose labels include ``selector``."""
        items = selector.items() if selector else ()
        return [
            e
            for e in self._entries
            if (tenant is None or e.tenant == tenant)
            and all(e.labels.get(k) == v for k, v in items)
        ]

    async def wait_for_requests(self, count: int) -> None:
        """Return once ``count`` push requests have arrived (answered or not)."""
        async with self._request_seen:
            await self._request_seen.wait_for(lambda: len(self.requests) >= count)

    def lines(self, selector: dict[str, str] | None = None) -> list[str]:
        return [e.line for e in self.entries(selector)]

    def reasons(self) -> list[str]:
        return [r.reason for r in self.rejections]

    def clear(self) -> None:
        """Forget stored entries, stream state and counters (not the faults)."""
        self._entries.clear()
        self._streams.clear()
        self.requests.clear()
        self.status_counts.clear()
        self.rejections.clear()
        self.discrepancies.clear()
        self.duplicates_skipped = self.max_body_size = self.max_decoded_size = 0

    # -- handlers

    async def _handle_ready(self, request: web.Request) -> web.Response:
        return web.Response(text="ready")

    async def _handle_query_range(self, request: web.Request) -> web.Response:
        """A minimal ``query_range``: a selector of ``=`` matchers, no pipeline.

        Enough to exercise a query client (paging by ``limit``, ``direction``, the
        ``categorize-labels`` encoding) without a real Loki.
        """
        q = request.query
        try:
            selector = dict(parse_labels(q["query"]))
            now = self.clock_ns()
            start = int(q.get("start", now - 3600 * NS))
            end = int(q.get("end", now))
            limit = int(q.get("limit", 100))
        except (KeyError, ValueError) as exc:
            return web.Response(status=400, text=f"bad query: {exc}")
        tenant = request.headers.get("X-Scope-OrgID", "") if self.auth_enabled else "fake"
        if self.auth_enabled and not tenant:
            return web.Response(status=401, text="no org id")
        backward = q.get("direction", "backward") == "backward"
        found = [e for e in self.entries(selector, tenant) if start <= e.ts_ns < end]
        found.sort(key=lambda e: e.ts_ns, reverse=backward)
        categorize = "categorize-labels" in request.headers.get(
            "X-Loki-Response-Encoding-Flags", ""
        )
        streams: dict[tuple[tuple[str, str], ...], list[list[Any]]] = {}
        for e in found[:limit]:
            if categorize:
                key = tuple(sorted(e.labels.items()))
                value: list[Any] = [str(e.ts_ns), e.line, {"structuredMetadata": e.metadata}]
            else:  # without the flag Loki folds structured metadata into the stream labels
                key = tuple(sorted({**e.labels, **e.metadata}.items()))
                value = [str(e.ts_ns), e.line]
            streams.setdefault(key, []).append(value)
        data: dict[str, Any] = {
            "resultType": "streams",
            "result": [{"stream": dict(k), "values": v} for k, v in streams.items()],
        }
        if categorize:
            data["encodingFlags"] = ["categorize-labels"]
        body = orjson.dumps({"status": "success", "data": data})
        return web.Response(body=body, content_type="application/json")

    async def _handle_push(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        record = RecordedRequest(request.path, dict(request.headers), len(body))
        self.requests.append(record)
        async with self._request_seen:
            self._request_seen.notify_all()
        self.max_body_size = max(self.max_body_size, len(body))
        if self.delay:
            await asyncio.sleep(self.delay)
        fault = self._injected()
        if fault is not None:
            record.injected = True
            return self._answer(record, fault.status, fault.body)
        required = self.required_authorization
        if required is not None and request.headers.get("Authorization") != required:
            return self._answer(record, 401, "Unauthorized")
        tenant = "fake"
        if self.auth_enabled:
            tenant = request.headers.get("X-Scope-OrgID", "")
            if not tenant:
                return self._answer(record, 401, "no org id")
        try:
            streams, decoded_size = parse_push(body, request.headers)
        except RequestError as exc:
            return self._answer(record, exc.status, exc.message)
        self.max_decoded_size = max(self.max_decoded_size, decoded_size)
        plan = self._plan(tenant, streams)
        if self._upstream is not None and self.upstream_url:
            status, text = await self._forward(request, body)
            if status != plan.status:
                self.discrepancies.append(f"local {plan.status} {plan.message!r}, Loki {status}")
            if (200 <= status < 300 and status != 260) or status == 400:
                self._commit(plan)
            return self._answer(record, status, text)
        if plan.status != 429:
            self._commit(plan)
        return self._answer(record, plan.status, plan.message)

    def _answer(self, record: RecordedRequest, status: int, text: str) -> web.Response:
        record.status = status
        self.status_counts[status] += 1
        if status == 204:
            return web.Response(status=204)
        return web.Response(status=status, text=text + "\n" if text else "")

    async def _forward(self, request: web.Request, body: bytes) -> tuple[int, str]:
        assert self._upstream is not None and self.upstream_url
        skip = {"host", "content-length", "connection", "transfer-encoding"}
        headers = {k: v for k, v in request.headers.items() if k.lower() not in skip}
        if self.upstream_tenant and "X-Scope-OrgID" not in request.headers:
            headers["X-Scope-OrgID"] = self.upstream_tenant
        try:
            async with self._upstream.post(self.upstream_url, data=body, headers=headers) as r:
                return r.status, (await r.read()).decode("utf-8", "replace").strip()
        except (aiohttp.ClientError, TimeoutError) as exc:
            return 502, f"proxy: real Loki unreachable: {exc}"

    def _plan(self, tenant: str, streams: list[ParsedStream]) -> _Plan:
        """Validate like the distributor, then append like the ingester, without committing."""
        limits, now = self.limits, self.clock_ns()
        plan = _Plan()
        accepted: dict[tuple[tuple[str, str], ...], list[tuple[int, str, list[Any]]]] = {}
        validated_bytes = 0
        for stream in streams:
            text = render_selector(stream.pairs)
            reason, message = validate_labels(stream.pairs, text, limits)
            if reason:
                plan.rejections.extend(
                    Rejection(reason, text, ts, ln) for ts, ln, _ in stream.entries
                )
                plan.validation_errors.append(message)
                continue
            key = tuple(stream.pairs)
            for ts_ns, line, metadata in stream.entries:
                reason, message = validate_entry(ts_ns, line, metadata, text, now, limits)
                if reason:
                    plan.rejections.append(Rejection(reason, text, ts_ns, line))
                    plan.validation_errors.append(message)
                    continue
                validated_bytes += len(line.encode()) + sum(
                    len(n.encode()) + len(v.encode()) for n, v in metadata
                )
                accepted.setdefault(key, []).append((ts_ns, line, metadata))
        if validated_bytes > limits.ingestion_burst_bytes:
            plan.status = 429
            plan.message = (
                f"Ingestion rate limit exceeded for user {tenant} while attempting to ingest "
                f"{sum(len(v) for v in accepted.values())} lines totaling {validated_bytes} "
                "bytes, reduce log volume or contact your Loki administrator"
            )
            return plan
        for key, entries in accepted.items():
            state_key = (tenant, key)
            committed = self._streams.get(state_key) or _StreamState()
            state = _StreamState(committed.last_ts, committed.last_line, committed.highest_ts)
            plan.states[state_key] = state
            labels = dict(key)
            text = render_selector(key)
            ignored: list[str] = []
            for ts_ns, line, metadata in entries:
                if ts_ns == state.last_ts and line == state.last_line:
                    plan.duplicates += 1
                    continue
                if (
                    state.highest_ts is not None
                    and ts_ns < state.highest_ts - limits.out_of_order_window_ns
                ):
                    cutoff = state.highest_ts - limits.out_of_order_window_ns
                    plan.rejections.append(Rejection("too_far_behind", text, ts_ns, line))
                    ignored.append(
                        f"entry too far behind, entry timestamp is: {_ts_text(ts_ns)}, "
                        f"oldest acceptable timestamp is: {_ts_text(cutoff)}"
                    )
                    continue
                state.last_ts, state.last_line = ts_ns, line
                if state.highest_ts is None or ts_ns > state.highest_ts:
                    state.highest_ts = ts_ns
                plan.entries.append(ReceivedEntry(labels, ts_ns, line, dict(metadata), tenant))
            if ignored:
                plan.ingester_errors.append(
                    "\n".join(ignored[:10])
                    + f"\nuser '{tenant}', total ignored: {len(ignored)} out of {len(entries)}"
                    f" for stream: {text}"
                )
        errors = plan.ingester_errors or plan.validation_errors
        if errors:
            plan.status, plan.message = 400, "\n".join(errors)
        return plan

    def _commit(self, plan: _Plan) -> None:
        self._entries.extend(plan.entries)
        self._streams.update(plan.states)
        self.rejections.extend(plan.rejections)
        self.duplicates_skipped += plan.duplicates
