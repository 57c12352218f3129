"""``drop``, ``sample`` and ``replace``: the stateless stages that shrink or rewrite."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from agent.logs.stages import parse_stages
from agent.logs.stages.base import StageContext
from agent.metrics.self import AgentMetrics
from tests.logs.stages.helpers import entry, lines, pipeline


def test_drop_by_expression_counts_under_its_reason() -> None:
    metrics = AgentMetrics(CollectorRegistry())
    stages = pipeline(
        {"drop": {"expression": "GET /(healthz|ready)", "drop_counter_reason": "health"}},
        context=StageContext(metrics=metrics),
    )
    out = stages.process([entry("GET /healthz 200"), entry("GET /api 200"), entry("GET /ready")])
    assert lines(out) == ["GET /api 200"]
    assert metrics.stage_dropped.labels("drop", "health")._value.get() == 2


def test_drop_by_field_value_source_regex_age_and_length() -> None:
    old, new = 1_000_000_000_000_000_000, 1_700_000_000_000_000_000
    stages = pipeline(
        {"drop": {"source": "level", "value": "debug"}},
        {"drop": {"source": "url", "expression": "^/metrics"}},
        {"drop": {"older_than": "24h"}},
        {"drop": {"longer_than": "10B"}},
        context=StageContext(clock=lambda: 1_700_000_060.0),
    )
    batch = [
        entry("a", fields={"level": "debug"}),
        entry('{"url":"/metrics/x"}'),
        entry("b", ts_ns=old),
        entry("0123456789x"),
        entry("kept", ts_ns=new),
    ]
    assert lines(stages.process(batch)) == ["kept"]


def test_drop_needs_a_condition_and_value_needs_source() -> None:
    with pytest.raises(ValueError, match="at least one of"):
        parse_stages([{"drop": {}}])
    with pytest.raises(ValueError, match="value needs source"):
        parse_stages([{"drop": {"value": "x"}}])
    with pytest.raises(ValueError, match=r"\[0\]\.drop: expression: invalid regular expression"):
        parse_stages([{"drop": {"expression": "("}}])


def test_sample_every_n_is_per_stream_and_counted() -> None:
    metrics = AgentMetrics(CollectorRegistry())
    stages = pipeline({"sample": {"every": 3}}, context=StageContext(metrics=metrics))
    batch = [entry(f"o{i}") for i in range(7)] + [entry(f"e{i}", stream="stderr") for i in range(4)]
    assert lines(stages.process(batch)) == ["o0", "o3", "o6", "e0", "e3"]
    assert lines(stages.process([entry("o7"), entry("o8"), entry("o9")])) == ["o9"]
    assert metrics.stage_dropped.labels("sample", "sampled")._value.get() == 8


def test_sample_rate_keeps_about_that_share() -> None:
    stages = pipeline({"sample": {"rate": 0.1}})
    kept = stages.process([entry(str(i)) for i in range(20_000)])
    assert 1_600 < len(kept) < 2_400


def test_sample_wants_one_of_every_or_rate() -> None:
    for bad in ({}, {"every": 2, "rate": 0.5}, {"every": 0}, {"rate": 1.5}):
        with pytest.raises(ValueError):
            parse_stages([{"sample": bad}])


def test_replace_rewrites_each_capture_group_like_promtail() -> None:
    stages = pipeline(
        {"replace": {"expression": r"(?:password|token)=(\S+)", "replace": "***"}},
        {"replace": {"expression": r"user (?P<user>\w+)", "replace": "<{{ .Value }}@{{ .org }}>"}},
        {"replace": {"expression": r"\d{4}-\d{4}", "replace": "####"}},  # no group: the match
    )
    e = entry("login password=hunter2 token=abc user bob 1234-5678", fields={"org": "acme"})
    assert lines(stages.process([e])) == ["login password=*** token=*** user <bob@acme> ####"]
    assert e.fields["user"] == "<bob@acme>"  # named groups become fields, replaced


def test_replace_refuses_template_functions_it_cannot_run() -> None:
    with pytest.raises(ValueError, match="not supported"):
        parse_stages([{"replace": {"expression": "(x)", "replace": "{{ ToUpper .Value }}"}}])


def test_replace_on_a_field_changes_the_field_only() -> None:
    stages = pipeline({"replace": {"source": "ip", "expression": r"(\d+)$", "replace": "0"}})
    e = entry("client 10.1.2.3", fields={"ip": "10.1.2.3"})
    stages.process([e])
    assert e.fields["ip"] == "10.1.2.0" and e.line == "client 10.1.2.3"


def test_unknown_stage_and_unknown_option_are_named() -> None:
    with pytest.raises(ValueError, match="unknown stage 'dorp'; did you mean 'drop'"):
        parse_stages([{"dorp": {"expression": "x"}}])
    with pytest.raises(ValueError, match=r"\[0\]\.drop\.expresion: unknown option"):
        parse_stages([{"drop": {"expresion": "x"}}])
    with pytest.raises(ValueError, match="one key"):
        parse_stages([{"drop": {"expression": "x"}, "sample": {"every": 2}}])
