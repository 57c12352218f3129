"""``labels``, ``structured_metadata``, ``label_drop``, ``label_allow``, ``static_labels`` and
``output``: the stages that decide what an entry is shipped as."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from agent.logs.stages import parse_stages
from agent.logs.stages.base import StageContext
from agent.metrics.self import AgentMetrics
from tests.logs.stages.helpers import entry, lines, pipeline

# -- labels -----------------------------------------------------------------------------------


def test_labels_from_fields_leave_the_shared_dict_alone_and_share_the_new_one() -> None:
    shared = {"app": "api", "level": "info"}
    stages = pipeline({"labels": {"values": {"status": None, "method": "verb"}}})
    batch = [
        entry("a", labels=shared, fields={"status": "200", "verb": "GET"}),
        entry("b", labels=shared, fields={"status": "500", "verb": "GET"}),
        entry("c", labels=shared, fields={"status": "200", "verb": "GET"}),
        entry("d", labels=shared, fields={"status": "200", "verb": "GET"}),
    ]
    out = stages.process(batch)
    assert shared == {"app": "api", "level": "info"}
    assert out[0].labels == {"app": "api", "level": "info", "status": "200", "method": "GET"}
    assert out[1].labels["status"] == "500"
    # Same values from the same dict: the same new dict, so the reader groups them at once.
    assert out[0].labels is out[2].labels is out[3].labels
    assert out[1].labels is not out[0].labels
    # ... across batches too.
    (later,) = stages.process([entry("e", labels=shared, fields={"status": "200", "verb": "GET"})])
    assert later.labels is out[0].labels


def test_labels_skip_missing_empty_and_overlong_values() -> None:
    shared = {"app": "api"}
    stages = pipeline({"labels": {"values": {"status": "", "user": ""}}})
    batch = [
        entry("no fields", labels=shared),
        entry("empty", labels=shared, fields={"status": ""}),
        entry("long", labels=shared, fields={"status": "x" * 1025, "user": "u1"}),
        entry("exactly 1024", labels=shared, fields={"status": "y" * 1024}),
    ]
    out = stages.process(batch)
    assert out[0].labels is shared
    assert out[1].labels is shared
    assert out[2].labels == {"app": "api", "user": "u1"}
    assert out[3].labels["status"] == "y" * 1024


def test_labels_already_equal_keep_the_same_dict_and_count_only_changes() -> None:
    metrics = AgentMetrics(CollectorRegistry())
    shared = {"level": "error"}
    context = StageContext(metrics=metrics)
    stages = pipeline({"labels": {"values": {"level": None}}}, context=context)
    out = stages.process(
        [
            entry("same", labels=shared, fields={"level": "error"}),
            entry("other", labels=shared, fields={"level": "warn"}),
        ]
    )
    assert out[0].labels is shared
    assert out[1].labels == {"level": "warn"}
    assert metrics.stage_changed.labels("labels")._value.get() == 1


def test_labels_read_the_lines_own_fields_when_no_stage_extracted_them() -> None:
    stages = pipeline({"labels": {"values": {"service": "svc"}}})
    (out,) = stages.process([entry("svc=billing took=3ms", labels={"app": "x"})])
    assert out.labels == {"app": "x", "service": "billing"}


def test_invalid_label_names_are_a_config_error() -> None:
    for bad in ("http-status", "1st", "a.b", ""):
        with pytest.raises(ValueError, match=r"stages\[0\]\.labels\.values: invalid name"):
            parse_stages([{"labels": {"values": {bad: "x"}}}])
    with pytest.raises(ValueError, match="invalid name"):
        parse_stages([{"structured_metadata": {"values": {"trace-id": None}}}])
    with pytest.raises(ValueError, match="invalid name"):
        parse_stages([{"static_labels": {"values": {"a b": "x"}}}])
    with pytest.raises(ValueError, match="at least one"):
        parse_stages([{"labels": {"values": {}}}])


# -- structured_metadata ----------------------------------------------------------------------


def test_structured_metadata_from_fields_copies_the_shared_dict() -> None:
    shared_md = {"container_id": "abc"}
    stages = pipeline({"structured_metadata": {"values": {"trace_id": None, "route": "path"}}})
    a = entry("a", fields={"trace_id": "t1", "path": "/x"})
    b = entry("b", fields={"other": "1"})
    a.metadata = b.metadata = shared_md
    stages.process([a, b])
    assert shared_md == {"container_id": "abc"}
    assert a.metadata == {"container_id": "abc", "trace_id": "t1", "route": "/x"}
    assert b.metadata is shared_md
    assert a.labels == {}


# -- label_drop / label_allow / static_labels -------------------------------------------------


def test_label_drop_removes_names_without_touching_the_shared_dict() -> None:
    shared = {"app": "api", "stream": "stdout", "filename": "/x"}
    stages = pipeline({"label_drop": {"names": ["stream", "filename", "absent"]}})
    out = stages.process([entry("a", labels=shared), entry("b", labels=shared)])
    assert shared == {"app": "api", "stream": "stdout", "filename": "/x"}
    assert out[0].labels == {"app": "api"}
    assert out[0].labels is out[1].labels
    untouched = {"app": "web"}
    (kept,) = stages.process([entry("c", labels=untouched)])
    assert kept.labels is untouched


def test_label_allow_keeps_only_the_names_given() -> None:
    shared = {"app": "api", "stream": "stdout", "level": "info"}
    stages = pipeline({"label_allow": {"names": ["app", "level"]}})
    out = stages.process([entry("a", labels=shared)])
    assert out[0].labels == {"app": "api", "level": "info"}
    assert shared == {"app": "api", "stream": "stdout", "level": "info"}
    with pytest.raises(ValueError, match=r"label_allow\.names"):
        parse_stages([{"label_allow": {"names": []}}])


def test_static_labels_add_fixed_values_and_take_yaml_scalars_as_text() -> None:
    shared = {"app": "api", "team": "old"}
    stages = pipeline({"static_labels": {"values": {"team": "payments", "tier": 1, "pci": True}}})
    out = stages.process([entry("a", labels=shared), entry("b", labels=shared)])
    assert out[0].labels == {"app": "api", "team": "payments", "tier": "1", "pci": "true"}
    assert out[0].labels is out[1].labels
    assert shared == {"app": "api", "team": "old"}
    with pytest.raises(ValueError, match="team: empty value"):
        parse_stages([{"static_labels": {"values": {"team": ""}}}])
    with pytest.raises(ValueError, match="longer than 1024"):
        parse_stages([{"static_labels": {"values": {"team": "x" * 1025}}}])


# -- output -----------------------------------------------------------------------------------


def test_output_replaces_the_line_with_the_field_when_present() -> None:
    metrics = AgentMetrics(CollectorRegistry())
    stages = pipeline({"output": {"source": "msg"}}, context=StageContext(metrics=metrics))
    out = stages.process(
        [
            entry('{"msg":"user logged in","level":"info"}'),
            entry("no msg field"),
            entry("x", fields={"msg": ""}),
        ]
    )
    assert lines(out) == ["user logged in", "no msg field", "x"]
    assert metrics.stage_changed.labels("output")._value.get() == 1
    with pytest.raises(ValueError, match=r"output\.source: Field required"):
        parse_stages([{"output": {}}])


# -- together ---------------------------------------------------------------------------------


def test_json_to_labels_metadata_and_output_pipeline() -> None:
    metrics = AgentMetrics(CollectorRegistry())
    stages = pipeline(
        {"json": {"expressions": {"status": "res.status", "msg": "", "trace": "ctx.trace"}}},
        {"labels": {"values": {"status": None}}},
        {"structured_metadata": {"values": {"trace_id": "trace"}}},
        {"label_drop": {"names": ["stream"]}},
        {"static_labels": {"values": {"env": "prod"}}},
        {"output": {"source": "msg"}},
        context=StageContext(metrics=metrics),
    )
    base = {"app": "api", "stream": "stdout"}
    batch = [
        entry('{"msg":"ok","res":{"status":200},"ctx":{"trace":"t1"}}', labels=base),
        entry('{"msg":"boom","res":{"status":500},"ctx":{"trace":"t2"}}', labels=base),
        entry('{"msg":"ok again","res":{"status":200},"ctx":{"trace":"t3"}}', labels=base),
        entry("not json at all", labels=base),
    ]
    out = stages.process(batch)
    assert lines(out) == ["ok", "boom", "ok again", "not json at all"]
    assert [e.labels for e in out] == [
        {"app": "api", "status": "200", "env": "prod"},
        {"app": "api", "status": "500", "env": "prod"},
        {"app": "api", "status": "200", "env": "prod"},
        {"app": "api", "env": "prod"},
    ]
    assert out[0].labels is out[2].labels
    assert [e.metadata.get("trace_id") for e in out] == ["t1", "t2", "t3", None]
    assert base == {"app": "api", "stream": "stdout"}
    assert metrics.stage_changed.labels("output")._value.get() == 3


def test_match_limits_a_stage_to_the_selected_entries() -> None:
    stages = pipeline(
        {"json": {}},
        {"labels": {"match": '{app="api"}', "values": {"status": None}}},
        {"output": {"match": '{app="api"} |= "debug"', "source": "msg"}},
    )
    api = {"app": "api"}
    web = {"app": "web"}
    batch = [
        entry('{"status":"200","msg":"debug: hi"}', labels=api),
        entry('{"status":"200","msg":"debug: hi"}', labels=web),
        entry('{"status":"404","msg":"gone"}', labels=api),
    ]
    out = stages.process(batch)
    assert [e.labels for e in out] == [
        {"app": "api", "status": "200"},
        {"app": "web"},
        {"app": "api", "status": "404"},
    ]
    assert lines(out) == [
        "debug: hi",
        '{"status":"200","msg":"debug: hi"}',
        '{"status":"404","msg":"gone"}',
    ]
