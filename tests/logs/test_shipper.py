"""The shipper's queue: a sealed batch waits as its encoded body, and arrives whole, in order.

Against the in-process Loki receiver, through the real push client.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from agent.config import BackoffConfig, LokiClient
from agent.logs.loki import LokiPushClient
from agent.logs.model import PushEntry, StreamLabels
from agent.logs.shipper import Shipper
from agent.metrics.self import AgentMetrics
from tests.loki_receiver import LokiReceiver

LABELS = StreamLabels.of({"host": "h1", "container": "api"})


def chunk(first: int, n: int, pad: int = 200) -> tuple[dict[StreamLabels, list[PushEntry]], int]:
    """``n`` numbered entries of one stream and their size as the reader counts it."""
    now = time.time_ns()
    entries = [
        PushEntry(now + i, f"seq={i} " + "x" * pad, (("requestId", f"r{i}"),))
        for i in range(first, first + n)
    ]
    size = sum(len(e.line) + len("requestId") + len(e.metadata[0][1]) for e in entries)
    return {LABELS: entries}, size


@pytest.mark.parametrize("encoding", ["protobuf", "json"])
async def test_sealed_batches_wait_encoded_and_arrive_whole_in_order(encoding: str) -> None:
    commits: list[Any] = []
    async with LokiReceiver() as receiver:
        client = LokiPushClient(
            LokiClient(url=receiver.push_url, encoding=encoding, backoff=BackoffConfig()),
            AgentMetrics(CollectorRegistry()),
        )
        await client.start()
        try:
            shipper = Shipper(
                client,
                lambda key, commit: commits.append(commit),
                batch_size=16 * 1024,
                batch_wait=0.05,
                max_in_flight_bytes=1 << 30,
                max_request_size=6 * 1024,
            )
            for i in range(10):  # not started yet: every sealed batch stays queued
                groups, size = chunk(i * 50, 50)
                shipper.add_group("t", groups, 50, size, 0, i)
            sealed = shipper.unsettled()  # 2 chunks of ~11 KiB fill each 16 KiB batch
            assert [p.batch.entry_count for p in sealed] == [100] * 5
            for pending in sealed:
                assert pending.batch.streams == {}  # the entries are let go of
                assert len(pending.parts) > 1  # split under max_request_size
                for part in pending.parts:
                    assert part.streams == {} and part.encoded is not None
                    assert len(part.encoded.body) < 6 * 1024
                assert sum(p.entry_count for p in pending.parts) == pending.batch.entry_count
            shipper.start()
            assert await shipper.drain(time.monotonic() + 10)
        finally:
            await client.close()
        got = [e.line.split()[0] for e in receiver.entries()]
    assert got == [f"seq={i}" for i in range(500)]
    assert commits[-1] == 9
    assert shipper.in_flight_bytes == 0
