"""``json``, ``logfmt`` and ``regex``: the stages that take fields out of a line."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from agent.logs.stages import parse_stages
from agent.logs.stages.base import StageContext
from agent.logs.stages.json_fields import compile_path
from agent.metrics.self import AgentMetrics
from tests.logs.stages.helpers import entry, lines, pipeline

# -- json -------------------------------------------------------------------------------------


def test_json_paths_reach_nested_objects_arrays_and_quoted_keys() -> None:
    stages = pipeline(
        {
            "json": {
                "expressions": {
                    "user": "context.user.id",
                    "first": "tags[0]",
                    "last": "tags[-1]",
                    "deep": "items[1].name",
                    "route": '"http.route"',
                    "inner": 'ctx."a.b".c',
                    "status": None,
                    "obj": "context.user",
                    "flag": "ok",
                    "nothing": "gone",
                    "missing": "context.nope.deeper",
                    "past_end": "tags[5]",
                    "not_a_list": "context[0]",
                }
            }
        }
    )
    line = (
        '{"context":{"user":{"id":"u-1","n":2}},"tags":["a","b","c"],'
        '"items":[{"name":"x"},{"name":"y"}],"http.route":"/v1/:id",'
        '"ctx":{"a.b":{"c":3}},"status":200,"ok":true,"gone":null}'
    )
    (out,) = stages.process([entry(line, fields={"level": "info"})])
    assert out.fields == {
        "level": "info",
        "user": "u-1",
        "first": "a",
        "last": "c",
        "deep": "y",
        "route": "/v1/:id",
        "inner": "3",
        "status": "200",
        "obj": '{"id":"u-1","n":2}',
        "flag": "true",
        "nothing": "",
    }
    assert out.line == line


def test_json_without_expressions_takes_every_top_level_key_over_built_in_fields() -> None:
    stages = pipeline({"json": {}})
    (out,) = stages.process(
        [entry('  {"level":"WARN","n":1.5,"a":[1,2],"msg":"hi"}', fields={"level": "warn"})]
    )
    assert out.fields == {"level": "WARN", "n": "1.5", "a": "[1,2]", "msg": "hi"}


def test_json_reads_a_field_as_source_and_skips_entries_without_it() -> None:
    stages = pipeline(
        {"regex": {"expression": r"payload=(?P<payload>\{.*\})$"}},
        {"json": {"source": "payload", "expressions": {"id": "id"}}},
    )
    out = stages.process([entry('got payload={"id":"p-7"}'), entry("no payload here")])
    assert out[0].fields["id"] == "p-7"
    assert "id" not in out[1].fields
    assert lines(out) == ['got payload={"id":"p-7"}', "no payload here"]


def test_json_malformed_lines_pass_unchanged_by_default() -> None:
    stages = pipeline({"json": {"expressions": {"a": "a"}}})
    lone_surrogate = '{"a": "\\udc80"}'
    texts = ['{"a": 1', "plain text", "[1,2]", lone_surrogate, '{"a":"ok"}']
    out = stages.process([entry(text) for text in texts])
    assert lines(out) == texts
    assert [e.fields.get("a") for e in out] == [None, None, None, None, "ok"]


def test_json_drop_malformed_drops_and_counts_them() -> None:
    metrics = AgentMetrics(CollectorRegistry())
    stages = pipeline(
        {"json": {"drop_malformed": True, "expressions": {"a": ""}}},
        context=StageContext(metrics=metrics),
    )
    batch = [entry('{"a": 1'), entry("plain"), entry('"str"'), entry('{"a":"ok"}')]
    assert lines(stages.process(batch)) == ['{"a":"ok"}']
    assert metrics.stage_dropped.labels("json", "malformed_json")._value.get() == 3


def test_json_path_subset_is_checked_at_config_load() -> None:
    assert compile_path('a.b[0]."my.key"[-2]') == ("a", "b", 0, "my.key", -2)
    assert compile_path("[1].x") == (1, "x")
    for bad in ("a[*]", "a..b", "a.", ".a", "a | b", "length(a)", "a.[0]", "a b"):
        with pytest.raises(ValueError, match="unsupported path"):
            compile_path(bad)
    with pytest.raises(ValueError, match=r"stages\[0\]\.json\.expressions: x: unsupported path"):
        parse_stages([{"json": {"expressions": {"x": "items[?a > 1]"}}}])
    with pytest.raises(ValueError, match="empty source"):
        parse_stages([{"json": {"source": ""}}])


def test_json_empty_path_uses_the_field_name_even_if_not_an_identifier() -> None:
    stages = pipeline({"json": {"expressions": {"http-status": ""}}})
    (out,) = stages.process([entry('{"http-status": 404}')])
    assert out.fields["http-status"] == "404"


# -- logfmt -----------------------------------------------------------------------------------


def test_logfmt_takes_every_pair_with_its_quoting_resolved() -> None:
    stages = pipeline({"logfmt": {}})
    line = 'ts=2024 msg="say \\"hi\\"\\n\\u00e9" path=/a/b q=\'single quoted\' empty="" x=1 x=2'
    (out,) = stages.process([entry(line)])
    assert out.fields == {
        "ts": "2024",
        "msg": 'say "hi"\né',
        "path": "/a/b",
        "q": "single quoted",
        "empty": "",
        "x": "2",  # the last value of a repeated key, as Promtail's decoder gives
    }


def test_logfmt_mapping_renames_and_ignores_other_keys() -> None:
    stages = pipeline(
        {"logfmt": {"mapping": {"status": None, "duration": "dur", "took": "dur", "x": ""}}}
    )
    (out,) = stages.process([entry('status=503 dur=1.2s other=no x="a b"', fields={"k": "v"})])
    assert out.fields == {"k": "v", "status": "503", "duration": "1.2s", "took": "1.2s", "x": "a b"}


def test_logfmt_reads_a_source_field_and_leaves_lines_without_pairs() -> None:
    stages = pipeline({"logfmt": {"source": "inner"}})
    with_source = entry("x", fields={"inner": "a=1 b=two"})
    without = entry("plain words", fields={"level": "info"})
    out = stages.process([with_source, without])
    assert with_source.fields == {"inner": "a=1 b=two", "a": "1", "b": "two"}
    assert without.fields == {"level": "info"}
    assert lines(out) == ["x", "plain words"]


def test_logfmt_bad_escapes_fall_back_to_quote_and_backslash_only() -> None:
    stages = pipeline({"logfmt": {}})
    (out,) = stages.process([entry('msg="tab\there \\q \\"x\\""')])
    assert out.fields["msg"] == 'tab\there \\q "x"'


# -- regex ------------------------------------------------------------------------------------


def test_regex_named_groups_become_fields() -> None:
    stages = pipeline(
        {"regex": {"expression": r'^(?P<ip>\S+) - - \[[^\]]*\] "(?P<method>\S+) (?P<path>\S+)'}}
    )
    hit = entry('10.0.0.1 - - [01/Jan/2024:00:00:00 +0000] "GET /api HTTP/1.1" 200')
    miss = entry("something else", fields={"level": "info"})
    stages.process([hit, miss])
    assert hit.fields == {"ip": "10.0.0.1", "method": "GET", "path": "/api"}
    assert miss.fields == {"level": "info"}


def test_regex_unmatched_optional_group_leaves_its_field() -> None:
    stages = pipeline({"regex": {"expression": r"(?P<code>\d{3})(?: (?P<level>[a-z]+))?"}})
    (out,) = stages.process([entry("500", fields={"level": "error"})])
    assert out.fields == {"level": "error", "code": "500"}


def test_regex_matches_a_source_field() -> None:
    stages = pipeline({"regex": {"source": "url", "expression": r"^/v(?P<version>\d+)/"}})
    (out,) = stages.process([entry('{"url": "/v2/users"}')])
    assert out.fields["version"] == "2"


def test_regex_invalid_or_without_named_group_is_a_config_error() -> None:
    with pytest.raises(ValueError, match=r"stages\[0\]\.regex: expression: invalid regular"):
        parse_stages([{"regex": {"expression": "(unclosed"}}])
    with pytest.raises(ValueError, match="has no named group"):
        parse_stages([{"regex": {"expression": r"(\d+) ms"}}])
    with pytest.raises(ValueError, match=r"regex\.expression: Field required"):
        parse_stages([{"regex": {}}])


def test_extraction_with_match_only_touches_selected_entries() -> None:
    stages = pipeline({"json": {"match": '{app="api"}'}})
    api = entry('{"a":"1"}', labels={"app": "api"})
    web = entry('{"a":"2"}', labels={"app": "web"})
    stages.process([api, web])
    assert api.fields == {"a": "1"}
    assert web.fields == {}
