"""The Loki stand-in accepts and rejects what Loki 3.x does (protocols.md sections 1-2)."""

from __future__ import annotations

import asyncio
import gzip
import time
import zlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
import snappy

from tests.loki_backend import LokiBackend, unique_host
from tests.loki_receiver import (
    NS,
    LokiLimits,
    LokiReceiver,
    PushRequestMessage,
    parse_labels,
)

Entry = tuple[int, str, list[tuple[str, str]]]
PB = {"Content-Type": "application/x-protobuf"}
JSON = {"Content-Type": "application/json"}


def now_ns() -> int:
    return time.time_ns()


def pb_body(*streams: tuple[str, list[Entry]]) -> bytes:
    request = PushRequestMessage()
    for labels, entries in streams:
        stream = request.streams.add(labels=labels)
        for ts, line, metadata in entries:
            entry = stream.entries.add(line=line)
            entry.timestamp.seconds, entry.timestamp.nanos = divmod(ts, NS)
            for name, value in metadata:
                entry.structuredMetadata.add(name=name, value=value)
    return bytes(snappy.compress(request.SerializeToString()))


def json_body(*streams: tuple[dict[str, str], list[list[Any]]]) -> bytes:
    return orjson.dumps({"streams": [{"stream": s, "values": v} for s, v in streams]})


@pytest.fixture
async def receiver() -> AsyncIterator[LokiReceiver]:
    async with LokiReceiver() as r:
        yield r


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        yield session


async def post(
    http: aiohttp.ClientSession, receiver: LokiReceiver, body: bytes, headers: dict[str, str]
) -> tuple[int, str]:
    async with http.post(receiver.push_url, data=body, headers=headers) as response:
        return response.status, await response.text()


# --------------------------------------------------------------------- content negotiation


async def test_protobuf_snappy_block_is_accepted(receiver: LokiReceiver, http: Any) -> None:
    ts = now_ns()
    body = pb_body(('{app="a", host="h"}', [(ts, "one", [("requestId", "r1")])]))
    assert await post(http, receiver, body, PB) == (204, "")
    [entry] = receiver.entries()
    assert (entry.labels, entry.ts_ns, entry.line) == ({"app": "a", "host": "h"}, ts, "one")
    assert entry.metadata == {"requestId": "r1"}


async def test_snappy_framed_body_is_400(receiver: LokiReceiver, http: Any) -> None:
    import cramjam

    request = PushRequestMessage()
    request.streams.add(labels='{a="b"}').entries.add(line="x").timestamp.seconds = 1
    framed = bytes(cramjam.snappy.compress(request.SerializeToString()))
    status, _ = await post(http, receiver, framed, PB)
    assert status == 400
    assert receiver.entries() == []


async def test_any_other_content_type_means_protobuf(receiver: LokiReceiver, http: Any) -> None:
    body = pb_body(('{a="b"}', [(now_ns(), "x", [])]))
    assert (await post(http, receiver, body, {"Content-Type": "text/plain"}))[0] == 204


async def test_missing_content_type_is_400_like_go_mime(receiver: LokiReceiver, http: Any) -> None:
    # pkg/loghttp/push/push.go calls mime.ParseMediaType("") before choosing a decoder.
    body = pb_body(('{a="b"}', [(now_ns(), "x", [])]))
    async with http.post(receiver.push_url, data=body, skip_auto_headers=["Content-Type"]) as r:
        assert r.status == 400
        assert "no media type" in await r.text()


async def test_json_with_charset_parameter_is_json(receiver: LokiReceiver, http: Any) -> None:
    body = json_body(({"a": "b"}, [[str(now_ns()), "x", {"k": "v"}]]))
    headers = {"Content-Type": "application/json; charset=utf-8"}
    assert (await post(http, receiver, body, headers))[0] == 204
    assert receiver.entries()[0].metadata == {"k": "v"}


async def test_json_numeric_timestamp_is_400(receiver: LokiReceiver, http: Any) -> None:
    body = json_body(({"a": "b"}, [[now_ns(), "x"]]))
    assert (await post(http, receiver, body, JSON))[0] == 400
    assert receiver.entries() == []


@pytest.mark.parametrize(
    "value",
    [["1", "x", {"k": {"nested": "no"}}], ["1", "x", {"k": 1}], ["1", "x", {}, "extra"], ["1"]],
    ids=["nested-metadata", "number-metadata", "four-elements", "one-element"],
)
async def test_json_malformed_entry_is_400(
    receiver: LokiReceiver, http: Any, value: list[Any]
) -> None:
    assert (await post(http, receiver, json_body(({"a": "b"}, [value])), JSON))[0] == 400


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_compressed_json_is_accepted(
    receiver: LokiReceiver, http: Any, encoding: str
) -> None:
    raw = json_body(({"a": "b"}, [[str(now_ns()), "x"]]))
    if encoding == "gzip":
        body = gzip.compress(raw)
    else:  # Go's compress/flate: raw DEFLATE without zlib header
        compressor = zlib.compressobj(wbits=-15)
        body = compressor.compress(raw) + compressor.flush()
    headers = {**JSON, "Content-Encoding": encoding}
    assert (await post(http, receiver, body, headers))[0] == 204
    assert receiver.lines() == ["x"]


async def test_gzip_around_snappy_protobuf_is_accepted(receiver: LokiReceiver, http: Any) -> None:
    body = gzip.compress(pb_body(('{a="b"}', [(now_ns(), "x", [])])))
    assert (await post(http, receiver, body, {**PB, "Content-Encoding": "gzip"}))[0] == 204


async def test_content_encoding_snappy_is_ignored(receiver: LokiReceiver, http: Any) -> None:
    body = pb_body(('{a="b"}', [(now_ns(), "x", [])]))
    assert (await post(http, receiver, body, {**PB, "Content-Encoding": "snappy"}))[0] == 204


async def test_unknown_content_encoding_is_400(receiver: LokiReceiver, http: Any) -> None:
    body = pb_body(('{a="b"}', [(now_ns(), "x", [])]))
    status, text = await post(http, receiver, body, {**PB, "Content-Encoding": "br"})
    assert status == 400
    assert 'Content-Encoding "br" not supported' in text


# --------------------------------------------------------------------- labels


def test_label_parser_reads_go_string_escapes() -> None:
    text = r'{b="q\"b\\s\n\t\x41\101\u00e9\U0001F600", a=`raw\n`}'
    assert parse_labels(text) == [("a", "raw\\n"), ("b", 'q"b\\s\n\tAAé😀')]


@pytest.mark.parametrize(
    "text",
    ['{a="x"', '{a="x",}', '{a=~"x"}', '{a!="x"}', '{1a="x"}', '{a="\\q"}', 'a="x"', '{a="x"} x'],
)
def test_label_parser_rejects_malformed_selectors(text: str) -> None:
    with pytest.raises(ValueError):
        parse_labels(text)


async def test_unparsable_labels_reject_the_whole_request(
    receiver: LokiReceiver, http: Any
) -> None:
    ts = now_ns()
    body = pb_body(('{good="x"}', [(ts, "kept?", [])]), ('{app.name="x"}', [(ts, "bad", [])]))
    status, text = await post(http, receiver, body, PB)
    assert status == 400
    assert "couldn't parse labels" in text
    assert receiver.entries() == []


def labels_text(n: int) -> str:
    return "{" + ", ".join(f'l{i:02d}="v"' for i in range(n)) + "}"


@pytest.mark.parametrize(
    ("labels", "reason"),
    [
        (labels_text(16), "max_label_names_per_series"),
        ('{a="x", a="y"}', "duplicate_label_names"),
        ("{" + "n" * 1025 + '="x"}', "label_name_too_long"),
        ('{a="' + "v" * 2049 + '"}', "label_value_too_long"),
        ("{}", "missing_labels"),
    ],
    ids=["16-labels", "duplicate-name", "name-1025", "value-2049", "no-labels"],
)
async def test_invalid_stream_is_rejected_others_kept(
    receiver: LokiReceiver, http: Any, labels: str, reason: str
) -> None:
    ts = now_ns()
    body = pb_body((labels, [(ts, "bad", [])]), ('{ok="1"}', [(ts, "good", [])]))
    assert (await post(http, receiver, body, PB))[0] == 400
    assert receiver.lines() == ["good"]
    assert receiver.reasons() == [reason]


async def test_limits_themselves_are_accepted(receiver: LokiReceiver, http: Any) -> None:
    ts = now_ns()
    body = pb_body(
        (labels_text(15), [(ts, "15 labels", [])]),
        (labels_text(15)[:-1] + ', service_name="s"}', [(ts, "15 + service_name", [])]),
        ("{" + "n" * 1024 + '="' + "v" * 2048 + '"}', [(ts, "longest name and value", [])]),
    )
    assert await post(http, receiver, body, PB) == (204, "")
    assert len(receiver.entries()) == 3


# --------------------------------------------------------------------- entries


@pytest.mark.parametrize(
    ("offset_s", "line_size", "metadata_count", "metadata_value", "reason"),
    [
        (-8 * 86400, 1, 0, 0, "greater_than_max_sample_age"),
        (11 * 60, 1, 0, 0, "too_far_in_future"),
        (0, 262_145, 0, 0, "line_too_long"),
        (0, 1, 129, 1, "structured_metadata_too_many"),
        (0, 1, 1, 65_536, "structured_metadata_too_large"),
        (-6 * 86400, 262_144, 128, 1, ""),
        (9 * 60, 1, 1, 65_000, ""),
    ],
    ids=[
        "8-days-old",
        "11-min-ahead",
        "line-262145",
        "129-metadata",
        "metadata-64KiB+",
        "6-days-old-max-line-128-metadata",
        "9-min-ahead",
    ],
)
async def test_entry_rules(
    receiver: LokiReceiver,
    http: Any,
    offset_s: int,
    line_size: int,
    metadata_count: int,
    metadata_value: int,
    reason: str,
) -> None:
    ts = now_ns() + offset_s * NS
    metadata = [(f"k{i}", "v" * metadata_value) for i in range(metadata_count)]
    body = pb_body(('{a="b"}', [(ts, "x" * line_size, metadata), (now_ns(), "valid", [])]))
    status, _ = await post(http, receiver, body, PB)
    if reason:
        assert status == 400
        assert receiver.reasons() == [reason]
        assert receiver.lines() == ["valid"]  # partial acceptance
    else:
        assert status == 204
        assert len(receiver.lines()) == 2


async def test_partial_acceptance_stores_valid_entries_and_answers_400(
    receiver: LokiReceiver, http: Any
) -> None:
    ts = now_ns()
    entries: list[Entry] = [
        (ts, "first", []),
        (ts + 1, "y" * 300_000, []),
        (ts + 2, "third", []),
    ]
    status, text = await post(http, receiver, pb_body(('{a="b"}', entries)), PB)
    assert status == 400
    assert "Max entry size '262144' bytes exceeded" in text
    assert receiver.lines() == ["first", "third"]


async def test_entry_over_an_hour_behind_the_stream_newest_is_too_far_behind(
    receiver: LokiReceiver, http: Any
) -> None:
    now = now_ns()
    first = pb_body(
        ('{a="b"}', [(now, "newest", [])]), ('{other="s"}', [(now - 7200 * NS, "o", [])])
    )
    assert (await post(http, receiver, first, PB))[0] == 204
    later = pb_body(
        (
            '{a="b"}',
            [(now - 61 * 60 * NS, "61 min behind", []), (now - 59 * 60 * NS, "59 min behind", [])],
        ),
        ('{other="s"}', [(now - 7100 * NS, "other stream has its own window", [])]),
    )
    status, text = await post(http, receiver, later, PB)
    assert status == 400
    assert "entry too far behind" in text
    assert "total ignored: 1 out of 2" in text
    assert receiver.reasons() == ["too_far_behind"]
    assert receiver.lines({"a": "b"}) == ["newest", "59 min behind"]
    assert receiver.lines({"other": "s"}) == ["o", "other stream has its own window"]


async def test_out_of_order_within_the_window_is_accepted(
    receiver: LokiReceiver, http: Any
) -> None:
    now = now_ns()
    entries: list[Entry] = [(now, "b", []), (now - 10 * NS, "a", []), (now + 1, "c", [])]
    assert (await post(http, receiver, pb_body(('{a="b"}', entries)), PB))[0] == 204
    assert receiver.lines() == ["b", "a", "c"]


async def test_exact_duplicate_of_last_entry_is_skipped_silently(
    receiver: LokiReceiver, http: Any
) -> None:
    ts = now_ns()
    body = pb_body(('{a="b"}', [(ts, "same", []), (ts, "same", []), (ts, "other line", [])]))
    assert (await post(http, receiver, body, PB))[0] == 204
    # The check is against the stream's *last appended* entry, across requests too.
    again = pb_body(('{a="b"}', [(ts, "other line", []), (ts, "same", [])]))
    assert (await post(http, receiver, again, PB))[0] == 204
    assert receiver.lines() == ["same", "other line", "same"]
    assert receiver.duplicates_skipped == 2


async def test_request_over_the_ingestion_burst_is_429_as_a_whole(http: Any) -> None:
    async with LokiReceiver(limits=LokiLimits(ingestion_burst_bytes=1000)) as receiver:
        ts = now_ns()
        body = pb_body(('{a="b"}', [(ts, "x" * 600, []), (ts + 1, "y" * 600, [])]))
        status, text = await post(http, receiver, body, PB)
        assert status == 429
        assert "Ingestion rate limit exceeded" in text
        assert receiver.entries() == []


# --------------------------------------------------------------------- tenants, faults, restart


async def test_auth_enabled_requires_the_tenant_header(http: Any) -> None:
    async with LokiReceiver(auth_enabled=True) as receiver:
        body = pb_body(('{a="b"}', [(now_ns(), "x", [])]))
        status, text = await post(http, receiver, body, PB)
        assert (status, text.strip()) == (401, "no org id")
        assert (await post(http, receiver, body, {**PB, "X-Scope-OrgID": "team-a"}))[0] == 204
        assert [e.tenant for e in receiver.entries()] == ["team-a"]


async def test_fault_injection_answers_before_storing(receiver: LokiReceiver, http: Any) -> None:
    ts = now_ns()

    def body(i: int) -> bytes:
        return pb_body(('{a="b"}', [(ts + i, f"line {i}", [])]))

    receiver.fail_next(2, status=500)
    statuses = [(await post(http, receiver, body(i), PB))[0] for i in range(3)]
    assert statuses == [500, 500, 204]
    receiver.respond_with(260)
    assert (await post(http, receiver, body(3), PB))[0] == 260
    receiver.respond_with(None)
    receiver.fail_for(0.3, status=429)
    assert (await post(http, receiver, body(4), PB))[0] == 429
    await asyncio.sleep(0.35)
    assert (await post(http, receiver, body(5), PB))[0] == 204
    assert receiver.lines() == ["line 2", "line 5"]
    assert receiver.status_counts == {500: 2, 204: 2, 260: 1, 429: 1}


async def test_stop_refuses_connections_and_start_keeps_the_port(
    receiver: LokiReceiver, http: Any
) -> None:
    url = receiver.push_url
    await receiver.stop()
    with pytest.raises(aiohttp.ClientConnectionError):
        await post(http, receiver, pb_body(('{a="b"}', [(now_ns(), "x", [])])), PB)
    await receiver.start()
    assert receiver.push_url == url
    assert (await post(http, receiver, pb_body(('{a="b"}', [(now_ns(), "x", [])])), PB))[0] == 204


async def test_max_body_sizes_are_recorded(receiver: LokiReceiver, http: Any) -> None:
    raw = json_body(({"a": "b"}, [[str(now_ns()), "z" * 10_000]]))
    await post(http, receiver, gzip.compress(raw), {**JSON, "Content-Encoding": "gzip"})
    assert receiver.max_decoded_size == len(raw)
    assert 0 < receiver.max_body_size < len(raw)


# --------------------------------------------------------------------- the e2e backend


async def test_backend_fetch_filters_by_selector_and_time(http: Any) -> None:
    backend = await LokiBackend.start()
    try:
        host, now = unique_host(), now_ns()
        body = pb_body(
            (f'{{host="{host}", stream="stdout"}}', [(now + 2, "b", []), (now, "a", [("k", "v")])]),
            ('{host="someone-else"}', [(now, "not mine", [])]),
        )
        assert (await post(http, backend.receiver, body, PB))[0] == 204
        found = await backend.fetch({"host": host})
        assert [(e.line, e.metadata) for e in found] == [("a", {"k": "v"}), ("b", {})]
        assert found[0].labels == {"host": host, "stream": "stdout"}
        assert [e.line for e in await backend.fetch({"host": host}, start_ns=now + 1)] == ["b"]
        assert await backend.fetch({"host": host}, end_ns=now) == []
    finally:
        await backend.close()


async def test_backend_proxy_forwards_to_real_loki_and_fetches_with_paging(http: Any) -> None:
    # A second receiver stands in for the real Loki: it answers push and query_range.
    async with LokiReceiver() as real:
        backend = await LokiBackend.start(real_url=real.base_url)
        backend.query_limit = 3
        try:
            host, now = unique_host(), now_ns()
            entries: list[Entry] = [(now + i // 2, f"line {i}", [("n", str(i))]) for i in range(10)]
            body = pb_body((f'{{host="{host}"}}', entries))
            assert (await post(http, backend.receiver, body, PB))[0] == 204
            assert real.requests[0].body_size == len(body)  # forwarded byte for byte

            found = await backend.fetch({"host": host})
            assert [(e.line, e.metadata["n"]) for e in found] == [
                (f"line {i}", str(i)) for i in range(10)
            ]

            backend.receiver.fail_next(1, status=503)
            assert (await post(http, backend.receiver, body, PB))[0] == 503
            assert len(real.requests) == 1  # injected faults never reach the real Loki

            too_long = pb_body((f'{{host="{host}"}}', [(now + 99, "x" * 300_000, [])]))
            assert (await post(http, backend.receiver, too_long, PB))[0] == 400
            assert backend.receiver.discrepancies == []
        finally:
            await backend.close()
