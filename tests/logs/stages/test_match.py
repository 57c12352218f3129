"""``match`` selectors: LogQL's label matchers and line filters, on labels and fields."""

from __future__ import annotations

import time

import pytest

from agent.logs.stages.base import Entry
from agent.logs.stages.match import Selector
from tests.logs.stages.helpers import entry, lines, pipeline


def test_label_matchers_compare_labels_then_fields_and_regexes_are_anchored() -> None:
    e = entry("GET /healthz 200", labels={"compose_service": "api"}, fields={"level": "info"})
    assert Selector.parse('{compose_service="api", level=~"info|debug"}').matches(e)
    assert not Selector.parse('{level=~"inf"}').matches(e)  # anchored, as in LogQL
    assert Selector.parse('{compose_service!="web", level!~"error"}').matches(e)
    assert Selector.parse('{missing=""}').matches(e)  # absent compares as empty


def test_fields_of_the_line_itself_are_found_when_asked_for() -> None:
    e = entry('{"route":"/api/users","status":503}')
    assert Selector.parse('{route="/api/users", status=~"5.."}').matches(e)
    e = entry("method=GET route=/login status=200")
    assert Selector.parse('{route="/login"}').matches(e)


def test_line_filters_follow_the_braces_or_stand_alone() -> None:
    e = entry("GET /healthz 200")
    assert Selector.parse('{} |= "healthz" != "POST"').matches(e)
    assert Selector.parse('|~ "GET /health\\\\w+"').matches(e)
    assert not Selector.parse('!~ "health"').matches(e)
    assert Selector.parse("|= `/healthz`").matches(e)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ('{a="x"', "expected ',' or '}'"),
        ('{a=~"("}', "missing )"),
        ("foo", "expected one of"),
        ("{}", "selects every entry"),
        ('{1a="x"}', "expected a label or field name"),
        ('{a="x} |= "y"', "expected"),
        ('|~ "(?<!x)y"', "invalid"),  # RE2 has no lookbehind, as in Promtail
    ],
)
def test_bad_selectors_say_what_is_wrong(text: str, why: str) -> None:
    with pytest.raises(ValueError, match="match") as info:
        Selector.parse(text)
    assert why in str(info.value)


def test_a_stage_with_match_applies_to_selected_entries_and_keeps_the_order() -> None:
    stages = pipeline(
        {"replace": {"match": '{stream="stderr"}', "expression": "x", "replace": "y"}}
    )
    batch = [entry("x1"), entry("x2", stream="stderr"), entry("x3"), entry("x4", stream="stderr")]
    for e in batch:
        e.set_label("stream", e.stream)
    assert lines(stages.process(batch)) == ["x1", "y2", "x3", "y4"]


def test_catastrophic_regex_input_is_linear_time() -> None:
    selector = Selector.parse('|~ "(a+)+$" ')
    line = "a" * 100_000 + "!"
    start = time.monotonic()
    # Python's re would backtrack for ages here; RE2 answers in one pass.
    assert not selector.matches(entry(line))
    assert time.monotonic() - start < 1.0


def test_a_field_is_found_even_when_the_line_spells_its_key_with_escapes() -> None:
    """Entry.field skips parsing a line that does not show the key; JSON escapes are
    the one way a key can be there without showing, so such lines are parsed."""
    escaped = Entry(0, '{"ti\\u006de":"1700000000","msg":"a"}', "stdout", {}, {}, {})
    assert escaped.field("time") == "1700000000"
    plain = Entry(0, "msg=hello level=info", "stdout", {}, {}, {})
    assert plain.field("time") is None and not plain.parsed  # nothing parsed for it
    assert plain.field("msg") == "hello"


def test_a_plain_contains_selector_is_tested_inline_and_selects_the_same() -> None:
    assert Selector.parse('|= "HTTP/1.1"').contains == "HTTP/1.1"
    for text in ('|= "a" |= "b"', '!= "a"', '|~ "a"', '{job="x"} |= "a"'):
        assert Selector.parse(text).contains is None, text
    stage = pipeline({"replace": {"match": '|= "GET"', "expression": "(secret)", "replace": "***"}})
    got = stage.process([entry("GET secret"), entry("POST secret"), entry("GET /secret")])
    assert [e.line for e in got] == ["GET ***", "POST secret", "GET /***"]
