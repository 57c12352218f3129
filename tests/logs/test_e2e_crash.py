"""End to end: the agent dies or is stopped mid-stream and starts again on its positions.

Positions record what Loki acknowledged, so ``kill -9`` can only make the agent send
again what Loki already had (at-least-once; Loki drops an exact same timestamp + line at
query time), never skip a line. A SIGTERM drains what was read and saves positions, so
after it not even a duplicate is allowed.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.agent_process import (
    AgentProcess,
    Delivery,
    delivery_of,
    lines_before,
    log_path_of,
    numbered_lines,
    numbered_writer,
    saved_position,
)
from tests.logs.test_e2e_delivery import e2e_config
from tests.loki_backend import LokiBackend, unique_host

# ~450 lines/s for ~7 s: the agent is stopped while the writer is in full flow.
COUNT = 3000


@dataclass(frozen=True)
class Restart:
    delivery: Delivery
    delivered_before: int  # lines Loki had when the first agent was gone
    saved_lines: int  # lines before the position the first agent saved


async def stop_mid_stream_and_restart(
    tmp_path: Path, loki: LokiBackend, run_container: Any, stop: str
) -> Restart:
    """Stop (``kill`` or ``term``) the agent mid-stream, start another on its positions."""
    host = unique_host()
    prefix = f"e2e-crash-{uuid.uuid4().hex[:8]}-"
    tag = f"{stop}-test"
    cfg = e2e_config(tmp_path, loki, host, prefix)
    first = AgentProcess(tmp_path, cfg, name="first")
    second = AgentProcess(tmp_path, cfg, name="second")
    first.start()
    try:
        await first.wait_healthy()
        writer = run_container(
            numbered_writer(tag, COUNT, per_pause=10, pause_us=20_000), name=prefix + "writer"
        )
        # Past a positions sync (1 s in tests), so the restart resumes mid-file.
        await loki.wait_for({"host": host}, COUNT // 3, within=30)
        if stop == "kill":
            first.kill()
        else:
            assert await asyncio.to_thread(first.terminate) == 0, first.stderr()
        delivered_before = len(await loki.fetch({"host": host}))
        offset = saved_position(tmp_path / "positions.json", f"docker:{writer.id}")["offset"]
        saved_lines = lines_before(log_path_of(writer), offset)
        second.start()
        await second.wait_healthy()
        await asyncio.to_thread(writer.wait, timeout=120)
        delivery = await delivery_of(loki, {"host": host}, numbered_lines(tag, COUNT))
        assert second.terminate() == 0, second.stderr()
    finally:
        first.close()
        second.close()
    assert 0 < delivered_before < COUNT, "the agent was not stopped mid-stream"
    return Restart(delivery, delivered_before, saved_lines)


async def test_kill_9_mid_stream_loses_no_line_after_restart(
    tmp_path: Path, loki: LokiBackend, run_container: Any
) -> None:
    run = await stop_mid_stream_and_restart(tmp_path, loki, run_container, "kill")
    delivery = run.delivery
    print(f"kill -9: {delivery.duplicates} of {run.delivered_before} acknowledged lines sent again")
    assert delivery.lost == 0, str(delivery)
    assert not delivery.unexpected, str(delivery)
    # Positions never run ahead of Loki, and only what Loki had can come again.
    assert 0 < run.saved_lines <= run.delivered_before
    assert delivery.duplicates <= run.delivered_before - run.saved_lines, str(delivery)


async def test_sigterm_mid_stream_drains_and_resumes_exactly_once(
    tmp_path: Path, loki: LokiBackend, run_container: Any
) -> None:
    run = await stop_mid_stream_and_restart(tmp_path, loki, run_container, "term")
    # Everything read was sent before exit, and the saved position is exactly there.
    assert run.saved_lines == run.delivered_before
    assert run.delivery.exactly_once, str(run.delivery)


async def test_kill_9_storm_under_rotation_loses_nothing_and_repeats_about_a_second_per_kill(
    tmp_path: Path, loki: LokiBackend, run_container: Any
) -> None:
    """Issue 10's scenario, smaller: writers under a rotation storm (512k files, max-file 3,
    one compressed), the agent SIGKILLed every 1.5-3 s and started again on its positions.

    Nothing may be lost; what comes twice is what was acknowledged after the last positions
    write, which now follows each acknowledgement within ``positions_sync_interval`` (1 s):
    a few seconds of lines per kill at most, where a 5 s cadence re-sent everything since
    the previous start once kills came faster than it.
    """
    host = unique_host()
    prefix = f"e2e-storm-{uuid.uuid4().hex[:8]}-"
    writers, count, kills = 4, 12_000, 4
    cfg = e2e_config(tmp_path, loki, host, prefix)
    cfg["logs"]["loki"]["batch_wait"] = "1s"  # the production default
    rng = random.Random(10)
    agent = AgentProcess(tmp_path, cfg, name="storm")
    agent.start()
    started = time.monotonic()
    try:
        await agent.wait_healthy()
        for i in range(writers):
            options = {"max-size": "512k", "max-file": "3"}
            if i == 0:
                options["compress"] = "true"
            run_container(
                numbered_writer(f"storm{i}", count, pad=90, per_pause=15, pause_us=20_000),
                name=f"{prefix}{i}",
                log_config={"type": "json-file", "config": options},
            )
        for _ in range(kills):
            await asyncio.sleep(rng.uniform(1.5, 3.0))
            agent.kill()
            agent.start()
            await agent.wait_healthy()
        writing = time.monotonic() - started
        expected = [
            line for i in range(writers) for line in numbered_lines(f"storm{i}", count, pad=90)
        ]
        delivery = await delivery_of(loki, {"host": host}, expected, within=120)
        # in a thread: the in-process receiver shares this event loop and must keep
        # answering the agent's last pushes while it drains
        assert await asyncio.to_thread(agent.terminate) == 0, agent.stderr()
    finally:
        agent.close()
    print(f"kill -9 storm: {kills} kills, {delivery.duplicates} duplicates of {len(expected)}")
    assert delivery.lost == 0, str(delivery)
    assert not delivery.unexpected, str(delivery)
    rate = len(expected) / max(writing, 1.0)
    assert delivery.duplicates <= kills * 3.0 * rate, (delivery.duplicates, rate)


async def test_max_file_1_rotation_while_the_agent_is_down_is_counted_and_said_with_bytes(
    tmp_path: Path, loki: LokiBackend, run_container: Any
) -> None:
    """With max-file=1 Docker keeps no older file for long: what was unread when the agent
    stopped is gone after two rotations. Inherent, so it must be counted and said, once,
    with the bytes known lost (at least the rest of a file that had reached max-size)."""
    host = unique_host()
    prefix = f"e2e-mf1-{uuid.uuid4().hex[:8]}-"
    cfg = e2e_config(tmp_path, loki, host, prefix)
    first = AgentProcess(tmp_path, cfg, name="first")
    second = AgentProcess(tmp_path, cfg, name="second")
    count = 1200
    first.start()
    try:
        await first.wait_healthy()
        run_container(
            numbered_writer("mf1", count, per_pause=10, pause_us=100_000),
            name=prefix + "w",
            log_config={"type": "json-file", "config": {"max-size": "10k", "max-file": "1"}},
        )
        await loki.wait_for({"host": host}, 150, within=30)
        assert await asyncio.to_thread(first.terminate) == 0, first.stderr()
        await asyncio.sleep(5)  # several 10k rotations: the saved file is deleted
        second.start()
        await second.wait_healthy()
        expected = numbered_lines("mf1", count)
        await loki.wait_for({"host": host, "container": prefix + "w"}, 1, within=30)
        await wait_until_written(loki, host, expected[-1], within=60)
        await asyncio.sleep(1.0)
        delivery = Delivery.check((e.line for e in await loki.fetch({"host": host})), expected)
        dropped = await second.metric("nexo_agent_dropped_bytes_total", reason="rotated_away")
        log_text = second.log_path.read_text(errors="replace")
        assert second.terminate() == 0, second.stderr()
    finally:
        first.close()
        second.close()
    assert delivery.lost > 0 and not delivery.duplicated and not delivery.unexpected
    said = [line for line in log_text.splitlines() if "log data lost for" in line]
    assert len(said) == 1, said
    known = int(said[0].split("at least ", 1)[1].split(" bytes", 1)[0])
    record_bytes = len(expected[0]) + 90  # the JSON wrapper around each line, generously
    assert 0 < known <= delivery.lost * record_bytes
    assert dropped == known
    assert "max-file >= 2" in said[0]


async def wait_until_written(loki: LokiBackend, host: str, last: str, within: float) -> None:
    """Until the writer's last line arrived (the writer is done)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if any(e.line == last for e in await loki.fetch({"host": host})):
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"{last!r} never arrived")
