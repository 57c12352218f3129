"""Building stages the way the agent does, and entries to feed them."""

from __future__ import annotations

from typing import Any

from agent.logs.stages import build_pipeline, parse_stages
from agent.logs.stages.base import Entry, StageContext, StagePipeline


def pipeline(*stages: dict[str, Any], context: StageContext | None = None) -> StagePipeline:
    return build_pipeline(parse_stages(list(stages)), context or StageContext())


def entry(
    line: str,
    stream: str = "stdout",
    labels: dict[str, str] | None = None,
    fields: dict[str, str] | None = None,
    ts_ns: int = 1_700_000_000_000_000_000,
    resume: tuple[int, int, Any] = (0, 0, None),
) -> Entry:
    return Entry(ts_ns, line, stream, labels or {}, fields or {}, {}, resume)


def lines(entries: list[Entry]) -> list[str]:
    return [e.line for e in entries]
