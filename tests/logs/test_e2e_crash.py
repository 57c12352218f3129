"""End to end: the agent dies or is stopped mid-stream and starts again on its positions.

Positions record what Loki acknowledged, so ``kill -9`` can only make the agent send
again what Loki already had (at-least-once; Loki drops an exact same timestamp + line at
query time), never skip a line. A SIGTERM drains what was read and saves positions, so
after it not even a duplicate is allowed.
"""

from __future__ import annotations

import asyncio
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
