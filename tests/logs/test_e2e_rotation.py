"""End to end: Docker's own json-file rotation under load, with the real agent process.

Docker rotates (``max-size=10k``) about every 90 lines here, so a few thousand lines mean
dozens of rotations, with ``compress=true`` replacing each rotated file by a ``.gz``
while the agent may still be reading it. Every line is numbered, so "exactly once" is
checked line by line, losses and duplicates apart.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.agent_process import (
    AgentProcess,
    Delivery,
    delivery_of,
    inode_of,
    log_path_of,
    numbered_lines,
    numbered_writer,
    saved_position,
    wait_until,
)
from tests.logs.test_e2e_delivery import e2e_config
from tests.loki_backend import LokiBackend, unique_host


def rotating(max_file: int, compress: bool) -> dict[str, Any]:
    options = {"max-size": "10k", "max-file": str(max_file)}
    if compress:
        options["compress"] = "true"
    return {"type": "json-file", "config": options}


def lost_runs(delivery: Delivery) -> list[tuple[int, int]]:
    """The lost sequence numbers as (first, last) runs."""
    seqs = sorted(int(line.split("seq=")[1].split()[0]) for line in delivery.missing)
    runs: list[tuple[int, int]] = []
    for seq in seqs:
        if runs and runs[-1][1] == seq - 1:
            runs[-1] = (runs[-1][0], seq)
        else:
            runs.append((seq, seq))
    return runs


async def ship_rotating_writer(
    tmp_path: Path,
    loki: LokiBackend,
    run_container: Any,
    log_config: dict[str, Any],
    count: int,
    per_pause: int,
    pause_us: int,
) -> Delivery:
    """Run the agent and one numbered writer whose log Docker rotates; compare."""
    host = unique_host()
    prefix = f"e2e-rot-{uuid.uuid4().hex[:8]}-"
    agent = AgentProcess(tmp_path, e2e_config(tmp_path, loki, host, prefix))
    agent.start()
    try:
        await agent.wait_healthy()
        writer = run_container(
            numbered_writer("rot", count, per_pause=per_pause, pause_us=pause_us),
            name=prefix + "writer",
            log_config=log_config,
        )
        await asyncio.to_thread(writer.wait, timeout=120)
        return await delivery_of(loki, {"host": host}, numbered_lines("rot", count))
    finally:
        agent.terminate()


# ~450 lines/s: about five rotations a second, each file ~90 lines.
UNDER_LOAD = {"count": 2000, "per_pause": 10, "pause_us": 20_000}


@pytest.mark.parametrize("max_file", [2, 3])
async def test_compressed_rotation_under_load_delivers_every_line_exactly_once(
    tmp_path: Path, loki: LokiBackend, run_container: Any, max_file: int
) -> None:
    delivery = await ship_rotating_writer(
        tmp_path, loki, run_container, rotating(max_file, True), **UNDER_LOAD
    )
    assert delivery.exactly_once, str(delivery)


async def test_rotation_with_max_file_1_under_load_loses_only_whole_unseen_files(
    tmp_path: Path, loki: LokiBackend, run_container: Any
) -> None:
    delivery = await ship_rotating_writer(
        tmp_path, loki, run_container, rotating(1, False), **UNDER_LOAD
    )
    assert delivery.duplicates == 0, str(delivery)
    assert not delivery.unexpected, str(delivery)
    # max-file=1 keeps at most one rotated file (Docker 20.10 renames it to .1; newer
    # engines unlink it): the agent can only lose a file it never saw, so a loss is whole
    # files (~90 lines each), never a gap inside one. The follower cannot tell that such
    # a file existed, so it is not counted (agent/logs/tail.py, "Not handled").
    runs = lost_runs(delivery)
    assert all(last - first + 1 >= 80 for first, last in runs), runs


async def test_rotation_with_max_file_1_at_a_moderate_rate_loses_nothing(
    tmp_path: Path, loki: LokiBackend, run_container: Any
) -> None:
    # ~120 lines/s: a rotation every ~0.7 s, several of the agent's polls apart.
    delivery = await ship_rotating_writer(
        tmp_path, loki, run_container, rotating(1, False), count=600, per_pause=5, pause_us=40_000
    )
    assert delivery.exactly_once, str(delivery)


async def test_sigterm_during_compressed_rotation_resumes_without_loss_or_duplicates(
    tmp_path: Path, loki: LokiBackend, run_container: Any
) -> None:
    host = unique_host()
    prefix = f"e2e-rot-{uuid.uuid4().hex[:8]}-"
    # ~70 lines/s: a rotation about every 1.3 s. The restart waits for the saved file to
    # be rotated (and compressed); Docker deletes it two rotations later, time enough.
    count = 450
    cfg = e2e_config(tmp_path, loki, host, prefix)
    first = AgentProcess(tmp_path, cfg, name="first")
    first.start()
    second = AgentProcess(tmp_path, cfg, name="second")
    try:
        await first.wait_healthy()
        writer = run_container(
            numbered_writer("restart", count, per_pause=5, pause_us=70_000),
            name=prefix + "writer",
            log_config=rotating(3, True),
        )
        await loki.wait_for({"host": host}, count // 4, within=30)
        assert await asyncio.to_thread(first.terminate) == 0, first.stderr()
        stopped_at = len(await loki.fetch({"host": host}))
        # Start again only once the file the positions point into was rotated away (and
        # soon compressed): the restart must find its place in the rotated chain.
        saved = saved_position(tmp_path / "positions.json", f"docker:{writer.id}")
        log_path = log_path_of(writer)
        await wait_until(lambda: inode_of(log_path) not in (None, saved["inode"]), within=20)
        second.start()
        await second.wait_healthy()
        await asyncio.to_thread(writer.wait, timeout=120)
        delivery = await delivery_of(loki, {"host": host}, numbered_lines("restart", count))
        assert second.terminate() == 0, second.stderr()
    finally:
        first.close()
        second.close()
    assert 0 < stopped_at < count, "the restart did not happen mid-stream"
    assert delivery.exactly_once, str(delivery)
