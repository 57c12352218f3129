"""End to end: Loki answers 5xx, 429, nothing at all, or 400, while containers keep logging.

Retryable failures (5xx, 429, refused connections) must cost no line and no duplicate,
and while they last the agent must stop reading once ``max_in_flight_bytes`` are waiting
for Loki, so memory stays bounded and the log files are the buffer. A 400 is final: the
entries are counted as dropped, positions move past them, and nothing is retried.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.agent_process import (
    AgentProcess,
    delivery_of,
    log_path_of,
    numbered_lines,
    numbered_writer,
    saved_position,
    wait_until,
)
from tests.logs.test_e2e_delivery import e2e_config
from tests.loki_backend import LokiBackend, unique_host

MiB = 1024 * 1024


@pytest.mark.parametrize("outage", ["500", "429", "refused"])
async def test_loki_outage_then_recovery_loses_and_repeats_nothing(
    tmp_path: Path, loki: LokiBackend, run_container: Any, outage: str
) -> None:
    host = unique_host()
    prefix = f"e2e-out-{uuid.uuid4().hex[:8]}-"
    count = 1500  # ~3.5 s of writing at ~450 lines/s, most of it during the outage
    agent = AgentProcess(tmp_path, e2e_config(tmp_path, loki, host, prefix))
    agent.start()
    try:
        await agent.wait_healthy()
        if outage == "refused":
            await loki.receiver.stop()
        else:
            loki.receiver.fail_for(3.0, status=int(outage))
        writer = run_container(
            numbered_writer("outage", count, per_pause=10, pause_us=20_000),
            name=prefix + "writer",
        )
        await asyncio.sleep(3.0)
        if outage == "refused":
            await loki.receiver.start()
        await asyncio.to_thread(writer.wait, timeout=60)
        delivery = await delivery_of(loki, {"host": host}, numbered_lines("outage", count))
        retries = await agent.metric("nexo_agent_batch_retries_total")
        refused = await agent.metric(
            "nexo_agent_request_duration_seconds_count", status_code="error"
        )
    finally:
        agent.terminate()
    assert delivery.exactly_once, str(delivery)
    assert retries > 0
    if outage == "refused":
        assert refused > 0
    else:
        assert loki.receiver.status_counts[int(outage)] > 0


async def test_outage_pauses_reading_and_bounds_memory(
    tmp_path: Path, loki: LokiBackend, run_container: Any
) -> None:
    host = unique_host()
    prefix = f"e2e-out-{uuid.uuid4().hex[:8]}-"
    count, pad = 4000, 1000  # ~4 MiB written at once, 16 times the in-flight bound
    bound = 256 * 1024
    expected = [f"mem seq={i} " + "m" * pad for i in range(count)]
    script = (
        f'awk \'BEGIN {{ p = "m"; while (length(p) < {pad}) p = p p; p = substr(p, 1, {pad});'
        f' for (i = 0; i < {count}; i++) print "mem seq=" i " " p }}\'; sleep 3600'
    )
    agent = AgentProcess(
        tmp_path,
        e2e_config(
            tmp_path, loki, host, prefix, logs={"pipeline": {"max_in_flight_bytes": "256KiB"}}
        ),
    )
    agent.start()
    try:
        await agent.wait_healthy()
        loki.receiver.respond_with(503, "injected outage")
        writer = run_container(script, name=prefix + "writer")
        log_path = log_path_of(writer)
        await wait_until(lambda: log_path.stat().st_size >= count * pad, 30, "writer done")
        file_size = log_path.stat().st_size
        samples: list[dict[str, float]] = []
        for _ in range(15):  # 3 s into the outage
            samples.append(await agent.metrics())
            await asyncio.sleep(0.2)
        loki.receiver.respond_with(None)
        delivery = await delivery_of(loki, {"host": host}, expected)
    finally:
        agent.terminate()

    def read_bytes(sample: dict[str, float]) -> float:
        return sum(v for k, v in sample.items() if k.startswith("nexo_agent_read_bytes_total{"))

    in_flight = [s["nexo_agent_in_flight_bytes{}"] for s in samples]
    rss = [s["process_resident_memory_bytes{}"] for s in samples]
    # Reading stops at the first chunk that crosses the bound (reads are 256 KiB at most).
    assert 0 < max(in_flight) <= bound + 256 * 1024 + 64 * 1024, in_flight
    assert max(rss) < 200 * MiB, rss
    assert read_bytes(samples[-1]) < file_size / 2, (read_bytes(samples[-1]), file_size)
    assert read_bytes(samples[-1]) == read_bytes(samples[-6]), "still reading a second later"
    print(
        f"in flight <= {max(in_flight):.0f}, rss <= {max(rss) / MiB:.0f} MiB,",
        f"read {read_bytes(samples[-1]):.0f} of {file_size} bytes",
    )
    assert delivery.exactly_once, str(delivery)


async def test_http_400_drops_the_batch_once_and_moves_positions_on(
    tmp_path: Path, loki: LokiBackend, run_container: Any
) -> None:
    host = unique_host()
    prefix = f"e2e-out-{uuid.uuid4().hex[:8]}-"
    count = 500
    agent = AgentProcess(tmp_path, e2e_config(tmp_path, loki, host, prefix))
    agent.start()
    try:
        await agent.wait_healthy()
        loki.receiver.respond_with(400, "entry for stream has timestamp too old")
        writer = run_container(
            numbered_writer("refused", count, per_pause=50, pause_us=20_000, then="sleep 3600"),
            name=prefix + "writer",
        )
        log_path = log_path_of(writer)
        key = f"docker:{writer.id}"
        positions = tmp_path / "positions.json"

        dropped = await agent.wait_for_metric(
            "nexo_agent_dropped_entries_total", count, within=30, reason="ingester_error"
        )
        assert dropped == count

        def moved_past_everything() -> bool:
            try:
                return int(saved_position(positions, key)["offset"]) == log_path.stat().st_size
            except (FileNotFoundError, KeyError):
                return False

        await wait_until(moved_past_everything, 10, "positions past the refused lines")
        requests = loki.receiver.status_counts[400]
        await asyncio.sleep(2.0)  # a retry storm would show now
        assert loki.receiver.status_counts[400] == requests
        assert await agent.metric("nexo_agent_batch_retries_total") == 0
        assert (
            await agent.metric("nexo_agent_dropped_entries_total", reason="ingester_error") == count
        )
        await agent.wait_healthy()
    finally:
        agent.terminate()
    # One request per batch at most: a few dozen for 500 lines, never one per retry.
    assert 0 < requests <= 50
    assert await loki.fetch({"host": host}) == []


async def test_lag_gauges_show_an_outage_and_clear_after_it(
    tmp_path: Path, loki: LokiBackend, run_container: Any
) -> None:
    """The gauges none of the replaced agents have: unacknowledged bytes and the age of
    the oldest unacknowledged entry, per container; plus the log-derived line counter."""
    host = unique_host()
    prefix = f"e2e-lag-{uuid.uuid4().hex[:8]}-"
    name = prefix + "writer"
    count = 300
    agent = AgentProcess(tmp_path, e2e_config(tmp_path, loki, host, prefix))
    agent.start()
    try:
        await agent.wait_healthy()
        loki.receiver.fail_for(4.0, status=503)
        run_container(
            numbered_writer(
                "lag level=error", count, per_pause=50, pause_us=10_000, then="sleep 3600"
            ),
            name=name,
        )
        unacked = await agent.wait_for_metric(
            "nexo_agent_unacked_bytes", 1, within=10, container=name
        )
        await asyncio.sleep(1.5)
        age = await agent.metric("nexo_agent_oldest_unacked_entry_age_seconds", container=name)
        active = await agent.metric("nexo_agent_active_containers")
        delivery = await delivery_of(loki, {"host": host}, numbered_lines("lag level=error", count))
        await asyncio.sleep(1.0)  # one more settle + scrape after the last push
        unacked_after = await agent.metric("nexo_agent_unacked_bytes", container=name)
        age_after = await agent.metric(
            "nexo_agent_oldest_unacked_entry_age_seconds", container=name
        )
        errors = await agent.metric("nexo_log_lines_total", service=name, level="error")
    finally:
        agent.terminate()
    assert delivery.exactly_once, str(delivery)
    assert unacked > 0
    assert age >= 1.0  # the first lines have waited through the outage
    assert active >= 1
    assert unacked_after == 0 and age_after == 0
    assert errors == count
