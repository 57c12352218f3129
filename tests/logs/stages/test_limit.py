"""``limit``: a token bucket per stream that drops, or holds back losslessly."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from agent.logs.stages import parse_stages
from agent.logs.stages.base import Entry, StageContext, StagePipeline
from agent.metrics.self import AgentMetrics
from tests.logs.stages.helpers import entry, lines, pipeline


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def batch(prefix: str, n: int, stream: str = "stdout", seq: int = 1) -> list[Entry]:
    return [entry(f"{prefix}{i}", stream=stream, resume=(seq, i * 10, "f")) for i in range(n)]


def limited(
    options: dict[str, object], clock: Clock, metrics: AgentMetrics | None = None
) -> StagePipeline:
    return pipeline({"limit": options}, context=StageContext(metrics=metrics, clock=clock))


def test_entries_over_the_rate_are_dropped_and_counted() -> None:
    metrics = AgentMetrics(CollectorRegistry())
    clock = Clock()
    stages = limited({"rate": 10, "burst": 10}, clock, metrics)
    assert lines(stages.process(batch("a", 25))) == [f"a{i}" for i in range(10)]
    assert metrics.stage_dropped.labels("limit", "rate_limited")._value.get() == 15
    clock.now += 0.5  # five tokens back
    assert len(stages.process(batch("b", 8))) == 5
    assert metrics.stage_dropped.labels("limit", "rate_limited")._value.get() == 18
    assert stages.oldest_held() is None
    assert not stages.wants_pause()


def test_the_bucket_refills_to_burst_and_no_further() -> None:
    clock = Clock()
    stages = limited({"rate": 2, "burst": 3}, clock)
    assert len(stages.process(batch("a", 10))) == 3
    clock.now += 3600
    assert len(stages.process(batch("b", 10))) == 3
    clock.now += 1.0
    assert len(stages.process(batch("c", 10))) == 2


def test_burst_defaults_to_the_rate_and_at_least_one() -> None:
    clock = Clock()
    assert len(limited({"rate": 5}, clock).process(batch("a", 9))) == 5
    assert len(limited({"rate": 0.5}, clock).process(batch("a", 9))) == 1
    assert len(limited({"rate": 7.9}, clock).process(batch("a", 9))) == 7


def test_each_stream_has_its_own_bucket() -> None:
    clock = Clock()
    stages = limited({"rate": 2}, clock)
    mixed = [x for pair in zip(batch("o", 4), batch("e", 4, "stderr"), strict=True) for x in pair]
    assert lines(stages.process(mixed)) == ["o0", "e0", "o1", "e1"]


def test_lossless_holds_entries_in_order_and_pauses_reading_until_released() -> None:
    metrics = AgentMetrics(CollectorRegistry())
    clock = Clock()
    stages = limited({"rate": 2, "burst": 2, "drop": False}, clock, metrics)
    assert lines(stages.process(batch("a", 6))) == ["a0", "a1"]
    assert stages.wants_pause()
    assert stages.oldest_held() == (1, 20, "f")
    assert stages.held_bytes() == 4 * 2
    assert stages.flush(1000.2, final=False) == []  # not a whole token yet
    assert lines(stages.flush(1000.5, final=False)) == ["a2"]
    assert stages.oldest_held() == (1, 30, "f")
    # While entries wait, new ones queue behind them even with tokens to spare.
    clock.now = 1000.5
    assert stages.process(batch("b", 2, seq=2)) == []
    assert lines(stages.flush(1001.5, final=False)) == ["a3", "a4"]
    assert lines(stages.flush(1002.5, final=False)) == ["a5", "b0"]
    assert stages.wants_pause()
    assert lines(stages.flush(1003.0, final=False)) == ["b1"]
    assert not stages.wants_pause()
    assert stages.oldest_held() is None
    assert stages.held_bytes() == 0
    assert metrics.stage_dropped.labels("limit", "rate_limited")._value.get() == 0


def test_lossless_final_flush_releases_everything_interleaved_as_read() -> None:
    clock = Clock()
    stages = limited({"rate": 1, "drop": False}, clock)
    out = [entry("o0", resume=(1, 0, "f")), entry("e0", stream="stderr", resume=(1, 5, "f"))]
    held = [
        entry("o1", resume=(1, 10, "f")),
        entry("e1", stream="stderr", resume=(1, 15, "f")),
        entry("o2", resume=(1, 20, "f")),
        entry("e2", stream="stderr", resume=(1, 25, "f")),
    ]
    assert lines(stages.process(out + held)) == ["o0", "e0"]
    assert stages.oldest_held() == (1, 10, "f")
    assert lines(stages.flush(clock.now, final=True)) == ["o1", "e1", "o2", "e2"]
    assert not stages.wants_pause()


def test_a_wall_clock_step_back_gives_no_tokens_and_loses_none() -> None:
    clock = Clock(5000.0)
    stages = limited({"rate": 1, "drop": False}, clock)
    assert lines(stages.process(batch("a", 3))) == ["a0"]
    assert stages.flush(1000.0, final=False) == []  # an hour back
    assert lines(stages.flush(1001.0, final=False)) == ["a1"]


def test_limit_with_match_only_limits_what_it_selects() -> None:
    clock = Clock()
    stages = pipeline(
        {"limit": {"rate": 1, "match": '{level="debug"}'}},
        context=StageContext(clock=clock),
    )
    debug = [entry(f"d{i}", labels={"level": "debug"}) for i in range(3)]
    info = [entry(f"i{i}", labels={"level": "info"}) for i in range(3)]
    assert lines(stages.process(debug[:2] + info + debug[2:])) == ["d0", "i0", "i1", "i2"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, r"stages\[0\]\.limit\.rate: Field required"),
        ({"rate": 0}, r"limit\.rate: .*greater than 0"),
        ({"rate": "inf"}, r"limit\.rate: .*finite"),
        ({"rate": 5, "burst": 0}, r"limit\.burst: .*greater than or equal to 1"),
        ({"rate": 5, "by_label_name": "x"}, "unknown option"),
    ],
)
def test_bad_options_are_rejected_at_config_load(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_stages([{"limit": options}])
