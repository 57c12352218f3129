"""``timestamp``: the entry's time taken from the line, within what Docker saw."""

from __future__ import annotations

import json
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from agent.logs.stages import parse_stages
from agent.logs.stages.base import Entry, StageContext
from agent.metrics.self import AgentMetrics
from tests.logs.stages.helpers import entry, pipeline

NS = 1_000_000_000
NOON = 1_714_564_800 * NS  # 2024-05-01T12:00:00Z
DOCKER = NOON + 2 * NS  # Docker's receive time, two seconds later


def taken(
    fields: dict[str, Any] | str, ts_ns: int = DOCKER, stream: str = "stdout", **options: Any
) -> int:
    """The entry's time after the stage, for a JSON line with ``fields`` (or a raw line)."""
    line = fields if isinstance(fields, str) else json.dumps(fields)
    e = entry(line, stream=stream, ts_ns=ts_ns)
    pipeline({"timestamp": options}).process([e])
    return e.ts_ns


# -- named formats --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fmt", "value", "expected"),
    [
        ("RFC3339", "2024-05-01T12:00:00Z", NOON),
        ("RFC3339", "2024-05-01T14:00:00.5+02:00", NOON + NS // 2),
        ("RFC3339Nano", "2024-05-01T12:00:00.123456789Z", NOON + 123_456_789),
        ("RFC3339Nano", "2024-05-01T12:00:00.1234567Z", NOON + 123_456_700),
        ("Unix", "1714564800", NOON),
        ("Unix", 1714564800.25, NOON + NS // 4),
        ("UnixMs", 1714564800123, NOON + 123_000_000),
        ("UnixUs", "1714564800123456", NOON + 123_456_000),
        ("UnixNs", 1714564800123456789, NOON + 123_456_789),
        ("pino", 1714564800123, NOON + 123_000_000),
        ("winston", "2024-05-01T12:00:00.123Z", NOON + 123_000_000),
        ("nestjs", "05/01/2024, 12:00:00 PM", NOON),
        ("nestjs", "05/01/2024, 12:00:01 AM", NOON - 12 * 3600 * NS + NS),
        ("nestjs", "05/01/2024, 13:00:00", NOON + 3600 * NS),
        ("rfc3339", "2024-05-01T12:00:00Z", NOON),  # names in any case
    ],
)
def test_named_formats(fmt: str, value: Any, expected: int) -> None:
    assert taken({"time": value}, format=fmt, max_skew=0) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1714564800, NOON),
        (1714564800.5, NOON + NS // 2),
        (1714564800123, NOON + 123_000_000),
        (1714564800123456, NOON + 123_456_000),
        (1714564800123456789, NOON + 123_456_789),
        ("1714564800123", NOON + 123_000_000),
        ("2024-05-01T12:00:00.123456789Z", NOON + 123_456_789),
        ("2024-05-01 12:00:00,5", NOON + NS // 2),
        ("2024-05-01T12:00:00+00:00", NOON),
    ],
)
def test_auto_reads_epoch_numbers_by_magnitude_and_iso_strings(value: Any, expected: int) -> None:
    assert taken({"time": value}) == expected


def test_auto_refuses_numbers_no_unit_makes_a_plausible_time() -> None:
    for value in (42, 50_000_000_000, "-1", "1e3"):
        assert taken({"time": value}, max_skew=0) == DOCKER


def test_nestjs_time_is_read_from_the_line_coloured_or_not() -> None:
    plain = "[Nest] 123  - 05/01/2024, 12:00:00 PM     LOG [RouterExplorer] Mapped {/, GET} route"
    coloured = (
        "\x1b[32m[Nest] 123  - \x1b[39m05/01/2024, 12:00:01 PM \x1b[32m    LOG\x1b[39m "
        "\x1b[33m[NestApplication] \x1b[39m\x1b[32mNest application successfully started"
    )
    nest_json = '{"level":"log","time":"05/01/2024, 12:00:02 PM","message":"json: true"}'
    stages = pipeline({"timestamp": {"format": "nestjs"}})
    batch = [entry(line, ts_ns=DOCKER) for line in (plain, coloured, "x", nest_json)]
    stages.process(batch)
    # without a time in the line, the usual fields are looked at
    assert [e.ts_ns for e in batch] == [NOON, NOON + NS, NOON + NS + 1, NOON + 2 * NS]


# -- Go layouts ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("layout", "value", "expected"),
    [
        ("2006-01-02 15:04:05.000", "2024-05-01 12:00:00.123", NOON + 123_000_000),
        ("2006-01-02 15:04:05", "2024-05-01 12:00:00.25", NOON + NS // 4),  # Go's extra fraction
        ("2006-01-02 15:04:05.999999999", "2024-05-01 12:00:00", NOON),
        ("02/Jan/2006:15:04:05 -0700", "01/May/2024:14:00:00 +0200", NOON),
        ("2006-01-02T15:04:05Z07:00", "2024-05-01T12:00:00Z", NOON),
        ("2006-01-02T15:04:05Z07:00", "2024-05-01T11:00:00-01:00", NOON),
        ("2006-01-02 15:04:05 MST", "2024-05-01 12:00:00 UTC", NOON),
        ("Jan _2, 2006 3:04:05 PM", "May  1, 2024 12:00:00 PM", NOON),
        ("Monday, 2 January 2006 15h04", "Wednesday, 1 May 2024 12h00", NOON),
        ("RFC1123Z", "Wed, 01 May 2024 13:00:00 +0100", NOON),
        ("RFC1123", "Wed, 01 May 2024 12:00:00 GMT", NOON),
        ("Stamp", "May  1 12:00:00", NOON),  # no year: the entry's year
    ],
)
def test_go_layouts(layout: str, value: str, expected: int) -> None:
    assert taken({"time": value}, format=layout) == expected


def test_go_layout_fast_path_agrees_across_a_minute() -> None:
    stages = pipeline({"timestamp": {"format": "2006-01-02 15:04:05.000", "max_skew": 0}})
    values = [
        "2024-05-01 12:00:00.000",
        "2024-05-01 12:00:59.999",
        "2024-05-01 12:00:07.500",
        "2024-05-01 9:00:07.500",  # not the layout's width (Go takes a 1-digit hour): regex
        "2024-05-01 12:00:07.5",  # .000 wants three digits, as in Go: not a time
    ]
    batch = [entry(json.dumps({"time": v}), ts_ns=DOCKER) for v in values]
    stages.process(batch)
    nine = NOON - 3 * 3600 * NS
    assert [e.ts_ns for e in batch] == [
        NOON,
        NOON + 59_999_000_000,
        NOON + 7_500_000_000,
        nine + 7_500_000_000,
        nine + 7_500_000_001,  # fudged
    ]


def test_yearless_layout_read_in_january_belongs_to_last_year() -> None:
    new_year = 1_704_067_200 * NS  # 2024-01-01T00:00:00Z
    assert taken({"time": "Dec 31 23:59:58"}, ts_ns=new_year, format="Stamp", max_skew="1h") == (
        new_year - 2 * NS
    )


def test_location_applies_to_times_without_a_zone_including_dst() -> None:
    summer = taken({"time": "2024-05-01 14:00:00"}, location="Europe/Berlin")
    assert summer == NOON  # CEST, UTC+2
    winter_docker = 1_704_110_400 * NS  # 2024-01-01T12:00:00Z
    winter = taken(
        {"time": "01/01/2024 13:00"},
        ts_ns=winter_docker,
        format="01/02/2006 15:04",
        location="Europe/Berlin",
    )
    assert winter == winter_docker  # CET, UTC+1
    # A written zone wins over the location; the location's own abbreviation is its offset.
    assert taken({"time": "2024-05-01T12:00:00Z"}, location="Europe/Berlin") == NOON
    cest = "Wed, 01 May 2024 14:00:00 CEST"
    assert taken({"time": cest}, format="RFC1123", location="Europe/Berlin") == NOON


# -- sources, fallbacks, failures -------------------------------------------------------------
def test_default_sources_are_tried_in_order_and_source_picks_one() -> None:
    assert taken({"ts": "2024-05-01T12:00:00Z", "@timestamp": "2024-05-01T12:00:01Z"}) == NOON
    assert taken({"@timestamp": "2024-05-01T12:00:01Z"}) == NOON + NS
    assert taken({"when": "2024-05-01T12:00:01Z"}, source="when") == NOON + NS
    assert taken("time=2024-05-01T12:00:01Z level=info msg=x") == NOON + NS


def test_fallback_formats_are_tried_in_order() -> None:
    options = {"format": "RFC3339", "fallback_formats": ["UnixMs", "2006-01-02 15:04:05"]}
    assert taken({"time": 1714564800123}, **options) == NOON + 123_000_000
    assert taken({"time": "2024-05-01 12:00:01"}, **options) == NOON + NS
    assert taken({"time": "2024-05-01T12:00:02Z"}, **options) == NOON + 2 * NS


def test_missing_or_garbage_time_keeps_dockers() -> None:
    for fields in ({}, {"time": ""}, {"time": "soon"}, {"time": "2024-13-45T99:00:00Z"}):
        assert taken(fields) == DOCKER
    assert taken("not json at all") == DOCKER
    assert taken({"time": "2024-02-30 12:00:00"}, format="2006-01-02 15:04:05") == DOCKER


def test_fudge_follows_the_last_time_taken_and_skip_keeps_the_entry_time() -> None:
    lines = ['{"time":"2024-05-01T12:00:00Z"}', "    at Object.<anonymous> (x.js:1:1)", "  at y"]
    fudged = [entry(line, ts_ns=DOCKER) for line in lines]
    pipeline({"timestamp": {}}).process(fudged)
    assert [e.ts_ns for e in fudged] == [NOON, NOON + 1, NOON + 2]
    skipped = [entry(line, ts_ns=DOCKER) for line in lines]
    pipeline({"timestamp": {"action_on_failure": "skip"}}).process(skipped)
    assert [e.ts_ns for e in skipped] == [NOON, DOCKER, DOCKER]


def test_times_beyond_max_skew_of_dockers_are_not_believed() -> None:
    two_hours_late = {"time": "2024-05-01T14:00:02Z"}
    two_hours_early = {"time": "2024-05-01T10:00:02Z"}
    assert taken(two_hours_late) == DOCKER  # default 1h
    assert taken(two_hours_early) == DOCKER
    assert taken(two_hours_early, max_skew="3h") == DOCKER - 2 * 3600 * NS
    assert taken(two_hours_late, max_skew=0) == DOCKER + 2 * 3600 * NS


def test_file_entries_keep_old_times_but_not_future_ones() -> None:
    read_at = NOON + 3 * 86400 * NS  # the file is read three days later
    assert taken({"time": "2024-05-01T12:00:00Z"}, ts_ns=read_at, stream="") == NOON
    future = {"time": "2024-05-04T14:00:00Z"}  # two hours after it was read
    assert taken(future, ts_ns=read_at, stream="") == read_at


def test_taken_times_are_counted() -> None:
    metrics = AgentMetrics(CollectorRegistry())
    stages = pipeline({"timestamp": {}}, context=StageContext(metrics=metrics))
    batch = [
        entry('{"time":"2024-05-01T12:00:00Z"}', ts_ns=DOCKER),
        entry('{"time":"x"}', ts_ns=DOCKER),
        entry('{"time":1714564801}', ts_ns=DOCKER),
    ]
    stages.process(batch)
    assert metrics.stage_changed.labels("timestamp")._value.get() == 2


def test_bad_options_are_rejected_with_the_reason() -> None:
    with pytest.raises(ValueError, match="Did you mean 'RFC3339Nano'"):
        parse_stages([{"timestamp": {"format": "RFC3339Nanos"}}])
    with pytest.raises(ValueError, match=r"fallback_formats\[1\]: format 'nope'"):
        parse_stages([{"timestamp": {"fallback_formats": ["Unix", "nope"]}}])
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        parse_stages([{"timestamp": {"location": "Mars/Olympus"}}])
    with pytest.raises(ValueError, match="action_on_failure"):
        parse_stages([{"timestamp": {"action_on_failure": "drop"}}])


def test_unparsed_entries_without_previous_time_are_untouched() -> None:
    e = Entry(DOCKER, "no time here", "stderr", {}, {}, {})
    pipeline({"timestamp": {}}).process([e])
    assert e.ts_ns == DOCKER
