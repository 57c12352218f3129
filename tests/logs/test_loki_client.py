"""LokiPushClient: the bytes it sends, and what it does with each answer Loki can give."""

from __future__ import annotations

import asyncio
import gzip
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import snappy
from prometheus_client import CollectorRegistry

from agent.config import BackoffConfig, BasicAuth, LokiClient, TLSConfig
from agent.logs.loki import LokiPushClient, SendResult
from agent.logs.loki_encode import encode_json, encode_protobuf, split_batch
from agent.logs.model import PushBatch, PushEntry, StreamLabels
from agent.metrics.self import AgentMetrics
from tests.conftest import require_binary
from tests.loki_receiver import NS, LokiReceiver, PushRequestMessage

FAST = BackoffConfig(min_period=0.01, max_period=0.05)
ONE_RETRY = BackoffConfig(min_period=0.01, max_period=0.05, max_retries=1)


def make_batch(n: int = 3, host: str = "h1", start_ns: int | None = None) -> PushBatch:
    start = time.time_ns() if start_ns is None else start_ns
    batch = PushBatch()
    labels = StreamLabels.of({"host": host, "container": "api"})
    for i in range(n):
        batch.add(labels, PushEntry(start + i, f"line {i}", (("requestId", f"r{i}"),)))
    return batch


def sample(metrics: AgentMetrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


# --------------------------------------------------------------------- encoding


def test_protobuf_body_is_snappy_block_logproto_in_given_order() -> None:
    base = 1_700_000_000 * NS
    batch = PushBatch()
    api = StreamLabels.of({"host": "h1", "app": 'say "hi"\\'})
    batch.add(api, PushEntry(base + 5, "second by time, first in file", (("userId", "u1"),)))
    batch.add(api, PushEntry(base + 1_999_999_999, "later"))
    batch.add(api, PushEntry(base, "earliest, last in file"))
    batch.add(StreamLabels.of({"host": "h2"}), PushEntry(base, "ünïcödé ✓"))

    encoded = encode_protobuf(batch)

    assert encoded.headers() == {"Content-Type": "application/x-protobuf"}
    request = PushRequestMessage.FromString(snappy.decompress(encoded.body))
    assert [s.labels for s in request.streams] == [
        '{app="say \\"hi\\"\\\\", host="h1"}',
        '{host="h2"}',
    ]
    decoded = [
        (
            e.timestamp.seconds,
            e.timestamp.nanos,
            e.line,
            [(p.name, p.value) for p in e.structuredMetadata],
        )
        for e in request.streams[0].entries
    ]
    assert decoded == [
        (1_700_000_000, 5, "second by time, first in file", [("userId", "u1")]),
        (1_700_000_001, 999_999_999, "later", []),
        (1_700_000_000, 0, "earliest, last in file", []),
    ]
    assert request.streams[1].entries[0].line == "ünïcödé ✓"
    assert request.format == ""


def test_json_body_has_string_ns_timestamps_and_optional_metadata() -> None:
    batch = PushBatch()
    batch.add(
        StreamLabels.of({"host": "h1"}), PushEntry(1_700_000_000_000_000_001, "a", (("k", "v"),))
    )
    batch.add(StreamLabels.of({"host": "h1"}), PushEntry(1_700_000_000_000_000_002, "b"))

    encoded = encode_json(batch)

    assert encoded.headers() == {"Content-Type": "application/json"}
    assert orjson.loads(encoded.body) == {
        "streams": [
            {
                "stream": {"host": "h1"},
                "values": [["1700000000000000001", "a", {"k": "v"}], ["1700000000000000002", "b"]],
            }
        ]
    }


def test_json_gzip_body_is_the_same_json_gzipped() -> None:
    batch = make_batch(50)
    zipped = encode_json(batch, gzip_level=1)
    assert zipped.headers() == {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    assert gzip.decompress(zipped.body) == encode_json(batch).body


def test_split_batch_keeps_every_part_under_the_cap_and_the_order() -> None:
    batch = PushBatch()
    for i in range(2000):
        labels = StreamLabels.of({"host": "h", "stream": "stdout" if i % 3 else "stderr"})
        batch.add(labels, PushEntry(1_700_000_000 * NS + i, f"{i:05d} " + "é" * (i % 200)))

    parts = split_batch(batch, 64 * 1024)

    assert len(parts) > 3
    for part in parts:
        raw = snappy.decompress(encode_protobuf(part).body)
        assert len(raw) <= 64 * 1024
    assert sum(p.entry_count for p in parts) == batch.entry_count
    assert sum(p.size_bytes for p in parts) == batch.size_bytes
    for labels, entries in batch.streams.items():
        assert [e for p in parts for e in p.streams.get(labels, [])] == entries
    assert split_batch(batch, 10 * 1024 * 1024) == [batch]


# --------------------------------------------------------------------- client against the receiver


@pytest.fixture
async def receiver() -> AsyncIterator[LokiReceiver]:
    async with LokiReceiver() as r:
        yield r


ClientFactory = Callable[..., Awaitable[LokiPushClient]]


@pytest.fixture
async def make_client() -> AsyncIterator[ClientFactory]:
    clients: list[LokiPushClient] = []

    async def make(url: str, **overrides: Any) -> LokiPushClient:
        overrides.setdefault("backoff", FAST)
        overrides.setdefault("timeout", 5.0)
        client = LokiPushClient(LokiClient(url=url, **overrides), AgentMetrics(CollectorRegistry()))
        await client.start()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


@pytest.mark.parametrize(
    ("encoding", "json_gzip"), [("protobuf", False), ("json", False), ("json", True)]
)
async def test_delivered_batch_is_stored_and_counted(
    receiver: LokiReceiver, make_client: ClientFactory, encoding: str, json_gzip: bool
) -> None:
    client = await make_client(receiver.push_url, encoding=encoding, json_gzip=json_gzip)
    batch = make_batch(3)

    result = await client.send(batch)

    assert result == SendResult(delivered=True, status=204, attempts=1)
    assert receiver.lines() == ["line 0", "line 1", "line 2"]
    assert receiver.entries()[1].metadata == {"requestId": "r1"}
    m = client.metrics
    assert sample(m, "nexo_agent_sent_entries_total") == 3
    assert sample(m, "nexo_agent_sent_bytes_total") == batch.size_bytes
    assert sample(m, "nexo_agent_encoded_bytes_total") == receiver.requests[0].body_size
    assert sample(m, "nexo_agent_request_duration_seconds_count", status_code="204") == 1


async def test_500_is_retried_until_loki_recovers_and_nothing_is_lost(
    receiver: LokiReceiver, make_client: ClientFactory
) -> None:
    client = await make_client(receiver.push_url)
    receiver.fail_next(3, status=500)

    result = await client.send(make_batch(5))

    assert result.delivered and result.attempts == 4
    assert receiver.lines() == [f"line {i}" for i in range(5)]
    assert sample(client.metrics, "nexo_agent_batch_retries_total") == 3
    assert (
        sample(client.metrics, "nexo_agent_request_duration_seconds_count", status_code="500") == 3
    )


async def test_429_is_retried(receiver: LokiReceiver, make_client: ClientFactory) -> None:
    client = await make_client(receiver.push_url)
    receiver.fail_for(0.2, status=429)

    result = await client.send(make_batch(2))

    assert result.delivered
    assert receiver.status_counts[429] >= 1
    assert receiver.lines() == ["line 0", "line 1"]


async def test_400_is_not_retried_and_the_batch_counts_as_dropped(
    receiver: LokiReceiver, make_client: ClientFactory
) -> None:
    client = await make_client(receiver.push_url)
    batch = make_batch(2)
    batch.add(
        StreamLabels.of({"host": "h1", "container": "api"}),
        PushEntry(time.time_ns(), "x" * 300_000),
    )

    result = await client.send(batch)

    # Loki stored the valid lines (partial acceptance); a retry would only duplicate them.
    assert result == SendResult(delivered=False, dropped=3, status=400, attempts=1)
    assert result.settled
    assert len(receiver.requests) == 1
    assert receiver.lines() == ["line 0", "line 1"]
    m = client.metrics
    assert sample(m, "nexo_agent_dropped_entries_total", reason="ingester_error") == 3
    assert sample(m, "nexo_agent_dropped_bytes_total", reason="ingester_error") == batch.size_bytes
    assert sample(m, "nexo_agent_batch_retries_total") == 0
    assert sample(m, "nexo_agent_sent_entries_total") == 0


async def test_260_blocked_tenant_is_not_success_and_is_retried(
    receiver: LokiReceiver, make_client: ClientFactory
) -> None:
    client = await make_client(receiver.push_url)
    receiver.fail_next(2, status=260)

    result = await client.send(make_batch(1))

    assert result.delivered and result.attempts == 3
    assert receiver.status_counts == {260: 2, 204: 1}
    assert sample(client.metrics, "nexo_agent_sent_entries_total") == 1


@pytest.mark.parametrize(("status", "reason"), [(503, "retries_exhausted"), (429, "rate_limited")])
async def test_exhausted_retries_drop_the_batch_with_a_reason(
    receiver: LokiReceiver, make_client: ClientFactory, status: int, reason: str
) -> None:
    backoff = BackoffConfig(min_period=0.01, max_period=0.02, max_retries=2)
    client = await make_client(receiver.push_url, backoff=backoff)
    receiver.respond_with(status)

    result = await client.send(make_batch(4))

    assert result == SendResult(delivered=False, dropped=4, status=status, attempts=3)
    assert sample(client.metrics, "nexo_agent_dropped_entries_total", reason=reason) == 4
    assert sample(client.metrics, "nexo_agent_batch_retries_total") == 2


async def test_connection_refused_is_retried_until_loki_comes_up(
    receiver: LokiReceiver, make_client: ClientFactory
) -> None:
    client = await make_client(receiver.push_url)
    await receiver.stop()
    sending = asyncio.create_task(client.send(make_batch(2)))
    await asyncio.sleep(0.3)
    assert not sending.done()

    await receiver.start()
    result = await asyncio.wait_for(sending, 5)

    assert result.delivered and result.attempts > 2
    assert receiver.lines() == ["line 0", "line 1"]
    assert (
        sample(client.metrics, "nexo_agent_request_duration_seconds_count", status_code="error")
        >= 2
    )


async def test_request_timeout_is_retried(
    receiver: LokiReceiver, make_client: ClientFactory
) -> None:
    client = await make_client(receiver.push_url, timeout=0.2)
    receiver.delay = 1.0
    sending = asyncio.create_task(client.send(make_batch(1)))
    await asyncio.sleep(0.5)
    receiver.delay = 0.0

    result = await asyncio.wait_for(sending, 5)

    assert result.delivered and result.attempts >= 2
    assert (
        sample(client.metrics, "nexo_agent_request_duration_seconds_count", status_code="error")
        >= 1
    )


async def test_shutdown_interrupts_the_backoff_and_returns_aborted(
    receiver: LokiReceiver, make_client: ClientFactory
) -> None:
    client = await make_client(
        receiver.push_url, backoff=BackoffConfig(min_period=60, max_period=60)
    )
    receiver.respond_with(503)
    sending = asyncio.create_task(client.send(make_batch(3)))
    await asyncio.wait_for(receiver.wait_for_requests(1), 5)

    started = time.monotonic()
    client.request_stop()
    result = await asyncio.wait_for(sending, 2)

    assert time.monotonic() - started < 0.5
    assert result.aborted and not result.settled and result.dropped == 0
    assert (
        sample(client.metrics, "nexo_agent_dropped_entries_total", reason="retries_exhausted") == 0
    )
    assert len(receiver.requests) == 1


async def test_send_after_stop_makes_one_last_attempt(
    receiver: LokiReceiver, make_client: ClientFactory
) -> None:
    client = await make_client(receiver.push_url)
    client.request_stop()
    assert (await client.send(make_batch(1))).delivered
    receiver.respond_with(500)
    result = await client.send(make_batch(1))
    assert result.aborted and len(receiver.requests) == 2


# --------------------------------------------------------------------- headers and auth


async def test_tenant_header_is_sent_only_when_configured(make_client: ClientFactory) -> None:
    async with LokiReceiver(auth_enabled=True) as receiver:
        anonymous = await make_client(receiver.push_url, backoff=ONE_RETRY)
        result = await anonymous.send(make_batch(1))
        assert (result.delivered, result.status) == (False, 401)
        assert "X-Scope-OrgID" not in receiver.requests[0].headers

        tenant = await make_client(receiver.push_url, tenant_id="team-a")
        assert (await tenant.send(make_batch(1))).delivered
        assert [e.tenant for e in receiver.entries()] == ["team-a"]


async def test_basic_auth_password_is_read_from_its_file(
    receiver: LokiReceiver, make_client: ClientFactory, tmp_path: Path
) -> None:
    secret = tmp_path / "password"
    secret.write_text("s3cret\n")
    receiver.required_authorization = "Basic bG9raTpzM2NyZXQ="  # loki:s3cret
    client = await make_client(
        receiver.push_url, basic_auth=BasicAuth(username="loki", password_file=secret)
    )
    assert (await client.send(make_batch(1))).delivered

    inline = await make_client(
        receiver.push_url, basic_auth=BasicAuth(username="loki", password="no"), backoff=ONE_RETRY
    )
    assert (await inline.send(make_batch(1))).status == 401


async def test_bearer_token_file_is_read_at_start_and_reread_when_rotated(
    receiver: LokiReceiver, make_client: ClientFactory, tmp_path: Path
) -> None:
    token = tmp_path / "token"
    token.write_text("first\n")
    client = await make_client(receiver.push_url, bearer_token_file=token)
    await client.send(make_batch(1))
    token.write_text("second-token\n")
    await client.send(make_batch(1, start_ns=time.time_ns() + 10))

    sent = [r.headers.get("Authorization") for r in receiver.requests]
    assert sent == ["Bearer first", "Bearer second-token"]


async def test_extra_headers_and_user_agent_are_sent(
    receiver: LokiReceiver, make_client: ClientFactory
) -> None:
    client = await make_client(
        receiver.push_url, headers={"X-Team": "logs", "Content-Type": "text/evil"}, bearer_token="t"
    )
    assert (await client.send(make_batch(1))).delivered
    headers = receiver.requests[0].headers
    assert headers["X-Team"] == "logs"
    assert headers["Authorization"] == "Bearer t"
    assert headers["Content-Type"] == "application/x-protobuf"  # never overridden
    assert headers["User-Agent"].startswith("nexo-agent/")


# --------------------------------------------------------------------- TLS


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A throwaway CA, a server cert for DNS name loki.test only, and a client cert."""
    require_binary("openssl")
    d = tmp_path_factory.mktemp("pki")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
             "-subj", "/CN=nexo test CA", cwd=d)  # fmt: skip
    for name, ext in (
        ("server", "subjectAltName=DNS:loki.test\nextendedKeyUsage=serverAuth\n"),
        ("client", "extendedKeyUsage=clientAuth\n"),
    ):
        (d / f"{name}.ext").write_text(ext)
        _openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", f"/CN=nexo {name}", cwd=d)  # fmt: skip
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                 "-CAcreateserial", "-out", f"{name}.crt", "-days", "2",
                 "-extfile", f"{name}.ext", cwd=d)  # fmt: skip
    yield d


def server_context(pki: Path, require_client_cert: bool) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki / "server.crt", pki / "server.key")
    if require_client_cert:
        context.load_verify_locations(pki / "ca.crt")
        context.verify_mode = ssl.CERT_REQUIRED
    return context


async def test_tls_with_private_ca_server_name_and_client_certificate(
    pki: Path, make_client: ClientFactory
) -> None:
    async with LokiReceiver(ssl_context=server_context(pki, require_client_cert=True)) as receiver:
        assert receiver.push_url.startswith("https://127.0.0.1:")
        tls = TLSConfig(
            ca_file=pki / "ca.crt",
            cert_file=pki / "client.crt",
            key_file=pki / "client.key",
            server_name="loki.test",
        )
        client = await make_client(receiver.push_url, tls=tls)
        assert (await client.send(make_batch(2))).delivered
        assert receiver.lines() == ["line 0", "line 1"]


@pytest.mark.parametrize(
    "tls",
    ["no-client-cert", "wrong-server-name", "unknown-ca"],
)
async def test_tls_failures_are_connection_errors_retried_then_dropped(
    pki: Path, make_client: ClientFactory, tls: str
) -> None:
    config = {
        "no-client-cert": TLSConfig(ca_file=pki / "ca.crt", server_name="loki.test"),
        "wrong-server-name": TLSConfig(
            ca_file=pki / "ca.crt", cert_file=pki / "client.crt", key_file=pki / "client.key"
        ),
        "unknown-ca": TLSConfig(
            cert_file=pki / "client.crt", key_file=pki / "client.key", server_name="loki.test"
        ),
    }[tls]
    async with LokiReceiver(ssl_context=server_context(pki, require_client_cert=True)) as receiver:
        backoff = BackoffConfig(min_period=0.01, max_period=0.02, max_retries=1)
        client = await make_client(receiver.push_url, tls=config, backoff=backoff)
        result = await client.send(make_batch(1))
        assert (result.delivered, result.dropped, result.status) == (False, 1, None)
        assert receiver.entries() == []


async def test_tls_insecure_skip_verify_accepts_an_unknown_server(
    pki: Path, make_client: ClientFactory
) -> None:
    async with LokiReceiver(ssl_context=server_context(pki, require_client_cert=False)) as receiver:
        client = await make_client(receiver.push_url, tls=TLSConfig(insecure_skip_verify=True))
        assert (await client.send(make_batch(1))).delivered
