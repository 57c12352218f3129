"""The reader with stages: entries go through them, and a stage holding entries back keeps
the committed position behind the oldest entry it holds."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from agent.config import PipelineConfig
from agent.logs.model import LogTarget, PushBatch
from agent.logs.reader import TargetReader
from agent.logs.shipper import Shipper
from agent.logs.stages.base import Entry, Resume, Stage, StageContext, StagePipeline
from agent.logs.stages.options import StageConfig
from agent.logs.tail import FileFollower
from agent.metrics.self import AgentMetrics
from tests.logs.stages.helpers import pipeline


class HoldUntilReleased(Stage):
    """Holds every entry until ``release`` is set (what multiline and limit do for a while)."""

    type_name = "hold"

    def __init__(self) -> None:
        super().__init__(StageConfig(), StageContext())
        self.held: list[Entry] = []
        self.release = False

    def apply(self, entries: list[Entry]) -> list[Entry]:
        self.held.extend(entries)
        return []

    def flush(self, now: float, final: bool) -> list[Entry]:
        if not (self.release or final):
            return []
        out, self.held = self.held, []
        return out

    def oldest_held(self) -> Resume | None:
        return self.held[0].resume if self.held else None


class RecordingSink:
    def __init__(self) -> None:
        self.batches: list[PushBatch] = []

    def seal(self, batch: PushBatch) -> PushBatch:
        return batch

    async def send(self, batch: PushBatch) -> Any:
        self.batches.append(batch)
        return None

    def request_stop(self) -> None:
        pass


def docker_log(path: Path, lines: list[str]) -> list[int]:
    """Write json-file records; return the offset after each."""
    ends = []
    with path.open("ab") as f:
        for line in lines:
            f.write(
                json.dumps(
                    {
                        "log": line + "\n",
                        "stream": "stdout",
                        "time": "2026-12-02T10:00:00.000000001Z",
                    }
                ).encode()
                + b"\n"
            )
            ends.append(f.tell())
    return ends


async def run_reader(
    tmp_path: Path, stages: StagePipeline, lines: list[str], step: Any = None
) -> tuple[RecordingSink, list[int], list[int]]:
    path = tmp_path / "c-json.log"
    ends = docker_log(path, lines)
    commits: list[int] = []
    sink = RecordingSink()
    shipper = Shipper(sink, lambda key, c: commits.append(c[1]), 1 << 20, 0.05, 1 << 22, 1 << 22)
    shipper.start()
    target = LogTarget(
        key="docker:c", kind="docker", path=path, name="c", labels=(("container", "c"),)
    )
    reader = TargetReader(
        target,
        FileFollower.open(path),
        shipper,
        PipelineConfig(),
        AgentMetrics(CollectorRegistry()),
        stages=stages,
    )
    task = asyncio.create_task(reader.run())
    await asyncio.sleep(0.4)
    if step is not None:
        step()
        await asyncio.sleep(0.4)
    reader.stop()
    await task
    await shipper.drain(asyncio.get_running_loop().time() + 2)
    return sink, commits, ends


async def test_held_entries_keep_the_position_at_their_start(tmp_path: Path) -> None:
    hold = HoldUntilReleased()
    sink, commits, _ = await run_reader(tmp_path, StagePipeline([hold]), ["a", "b", "c"])
    assert not sink.batches or not any(b.entry_count for b in sink.batches)
    assert set(commits) <= {0}, commits  # never past the first held line


async def test_released_entries_ship_and_the_position_follows(tmp_path: Path) -> None:
    hold = HoldUntilReleased()

    def release() -> None:
        hold.release = True

    sink, commits, ends = await run_reader(
        tmp_path, StagePipeline([hold]), ["a", "b", "c"], step=release
    )
    shipped = [e.line for b in sink.batches for entries in b.streams.values() for e in entries]
    assert shipped == ["a", "b", "c"]
    assert commits and commits[-1] == ends[-1]


async def test_stages_drop_and_rewrite_before_shipping_with_changed_labels(tmp_path: Path) -> None:
    stages = pipeline(
        {"drop": {"expression": "healthz"}},
        {"replace": {"expression": "secret=(\\S+)", "replace": "***"}},
    )
    sink, commits, ends = await run_reader(
        tmp_path, stages, ["GET /healthz", "login secret=abc", "plain"]
    )
    shipped = [e.line for b in sink.batches for entries in b.streams.values() for e in entries]
    assert shipped == ["login secret=***", "plain"]
    assert commits[-1] == ends[-1]


class HoldLast(Stage):
    """Ships all but the newest entry (a multiline block still open)."""

    type_name = "hold_last"

    def __init__(self) -> None:
        super().__init__(StageConfig(), StageContext())
        self.held: list[Entry] = []

    def apply(self, entries: list[Entry]) -> list[Entry]:
        pending = self.held + entries
        self.held = pending[-1:]
        return pending[:-1]

    def oldest_held(self) -> Resume | None:
        return self.held[0].resume if self.held else None


async def test_the_first_chunk_ships_what_is_done_and_commits_up_to_the_held_entry(
    tmp_path: Path,
) -> None:
    sink, commits, ends = await run_reader(tmp_path, StagePipeline([HoldLast()]), ["a", "b", "c"])
    shipped = [e.line for b in sink.batches for entries in b.streams.values() for e in entries]
    assert shipped == ["a", "b"]
    assert commits[-1] == ends[1]  # the start of "c", still held
