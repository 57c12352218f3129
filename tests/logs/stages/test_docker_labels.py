"""``nexo.logs.*`` container labels: rules an application team sets in its compose file."""

from __future__ import annotations

import logging

import pytest

from agent.config import LogsConfig, from_data
from agent.logs.model import LogTarget
from agent.logs.stages.assembly import TargetStages
from agent.logs.stages.base import StageContext
from agent.logs.stages.docker_labels import rules_from_labels
from tests.logs.stages.helpers import entry, lines


def target(labels: dict[str, str], name: str = "api") -> LogTarget:
    return LogTarget(
        key=f"docker:{name}",
        kind="docker",
        path=__import__("pathlib").Path("/nonexistent"),
        name=name,
        container_id=name * 4,
        docker_labels=tuple(labels.items()),
    )


def test_drop_and_sample_labels_become_stages_before_the_configured_ones() -> None:
    logs = from_data(
        LogsConfig,
        {"pipeline": {"stages": [{"replace": {"expression": "(secret)", "replace": "***"}}]}},
    )
    stages = TargetStages(logs, StageContext()).pipeline_for(
        target({"nexo.logs.drop": "GET /healthz", "nexo.logs.sample": "2", "other": "x"})
    )
    batch = [entry("GET /healthz"), entry("a secret"), entry("b"), entry("c secret")]
    assert lines(stages.process(batch)) == ["a ***", "c ***"]


def test_format_label_picks_the_parser() -> None:
    assert rules_from_labels({"nexo.logs.format": "json"}).format == "json"
    assert rules_from_labels({}).format is None


@pytest.mark.parametrize(
    ("label", "value", "why"),
    [
        ("nexo.logs.format", "yaml", "not one of"),
        ("nexo.logs.drop", "(", "invalid regular expression"),
        ("nexo.logs.sample", "often", "neither N"),
        ("nexo.logs.sample", "0", "greater than or equal to 1"),
        ("nexo.logs.redakt", "all", "unknown label"),
    ],
)
def test_an_invalid_label_is_named_and_the_container_ships_unmodified(
    label: str, value: str, why: str, caplog: pytest.LogCaptureFixture
) -> None:
    stages = TargetStages(LogsConfig(), StageContext())
    t = target(
        {label: value, "nexo.logs.drop": "x"} if label != "nexo.logs.drop" else {label: value}
    )
    with caplog.at_level(logging.WARNING):
        pipeline = stages.pipeline_for(t)
        stages.pipeline_for(t)  # a second reader of the same container: no second warning
    assert not pipeline  # no label rules at all, not half of them
    warnings = [r.getMessage() for r in caplog.records if label in r.getMessage()]
    assert len(warnings) == 1 and "container api" in warnings[0] and why in warnings[0]


def test_static_files_get_their_own_stages_after_the_global_ones() -> None:
    logs = from_data(
        LogsConfig,
        {
            "pipeline": {"stages": [{"drop": {"expression": "^#"}}]},
            "files": [
                {"paths": ["/a/*.log"]},
                {"paths": ["/b/*.log"], "stages": [{"sample": {"every": 2}}]},
            ],
        },
    )
    assembled = TargetStages(logs, StageContext())
    path = __import__("pathlib").Path("/b/x.log")
    b = LogTarget(key="file:/b/x.log", kind="file", path=path, name="/b/x.log", file_group=1)
    a = LogTarget(key="file:/a/x.log", kind="file", path=path, name="/a/x.log", file_group=0)
    batch = ["# c", "1", "2", "3"]
    assert lines(assembled.pipeline_for(b).process([entry(x) for x in batch])) == ["1", "3"]
    assert lines(assembled.pipeline_for(a).process([entry(x) for x in batch])) == ["1", "2", "3"]
