"""``metrics``: counters, gauges and histograms from log entries, served on ``/metrics``."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from agent.logs.stages import build_pipeline, parse_stages
from agent.logs.stages.base import StageContext, StagePipeline
from agent.metrics.self import AgentMetrics
from agent.metrics.server import render_text
from tests.logs.stages.helpers import entry

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def metrics_stage(metrics: dict[str, Any], context: StageContext, **options: Any) -> StagePipeline:
    return build_pipeline(parse_stages([{"metrics": {"metrics": metrics, **options}}]), context)


def scrape(registry: CollectorRegistry) -> tuple[Samples, dict[str, tuple[str, str]]]:
    """What /metrics serves, parsed back: samples, and each family's (type, help)."""
    text = render_text(registry).decode()
    samples: Samples = {}
    families: dict[str, tuple[str, str]] = {}
    for family in text_string_to_metric_families(text):
        families[family.name] = (family.type, family.documentation)
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples, families


def agent_context(clock: float | None = None) -> tuple[StageContext, CollectorRegistry]:
    registry = CollectorRegistry(auto_describe=True)  # as agent/app.py builds it
    context = StageContext(
        metrics=AgentMetrics(registry), clock=(lambda: clock) if clock is not None else None
    )
    return context, registry


def key(name: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return (name, frozenset(labels.items()))


def test_counter_counts_every_entry_by_labels_and_fields_and_passes_entries_through() -> None:
    context, registry = agent_context()
    stages = metrics_stage(
        {
            "http_requests_total": {
                "type": "Counter",  # Promtail's spelling
                "description": "Requests by service and route",
                "labels": ["compose_service", "route"],
                "config": {"action": "inc", "match_all": True},
            }
        },
        context,
    )
    api, web = {"compose_service": "api"}, {"compose_service": "web"}
    batch = [
        entry('{"route": "/a", "status": 200}', labels=api),
        entry('{"route": "/a", "status": 500}', labels=api),
        entry("route=/b status=200", labels=api),
        entry("no route here", labels=web),
    ]
    out = stages.process(batch)
    stages.process([entry('{"route": "/a"}', labels=api)])

    assert out == batch  # never drops or changes an entry
    samples, families = scrape(registry)
    name = "nexo_app_http_requests_total"
    assert samples[key(name, compose_service="api", route="/a")] == 3
    assert samples[key(name, compose_service="api", route="/b")] == 1
    assert samples[key(name, compose_service="web", route="")] == 1
    # the family is named without the suffix the name already had: no _total_total
    assert families["nexo_app_http_requests"] == ("counter", "Requests by service and route")


def test_counter_with_source_and_value_counts_only_matching_entries() -> None:
    context, registry = agent_context()
    stages = metrics_stage(
        {
            "server_errors": {"type": "counter", "source": "status", "config": {"value": 500}},
            "bytes_sent": {"type": "counter", "source": "size", "config": {"action": "add"}},
        },
        context,
        prefix="web_",
    )
    stages.process(
        [
            entry('{"status": 500, "size": 10}'),
            entry('{"status": 200, "size": 5.5}'),
            entry('{"status": "500", "size": -3}'),  # negative: a counter never goes down
            entry("no fields at all"),
        ]
    )
    samples, _ = scrape(registry)
    assert samples[key("web_server_errors_total")] == 2
    assert samples[key("web_bytes_sent_total")] == 15.5
    refused = "nexo_agent_stage_metric_invalid_values_total"
    assert samples[key(refused, metric="web_bytes_sent_total")] == 1


def test_counter_add_counts_entry_bytes_in_utf8() -> None:
    context, registry = agent_context()
    stages = metrics_stage(
        {
            "log_bytes_total": {
                "type": "counter",
                "labels": ["stream"],
                "config": {"match_all": True, "action": "add", "count_entry_bytes": True},
            }
        },
        context,
    )
    stages.process([entry("abc", fields={"stream": "out"}), entry("é€", fields={"stream": "out"})])
    samples, _ = scrape(registry)
    assert samples[key("nexo_app_log_bytes_total", stream="out")] == 3 + 2 + 3


def test_gauge_set_inc_dec_add_and_sub() -> None:
    context, registry = agent_context()
    stages = metrics_stage(
        {
            "queue_depth": {"type": "gauge", "source": "depth", "config": {"action": "set"}},
            "workers": {"type": "gauge", "source": "started", "config": {"action": "inc"}},
            "workers_gone": {"type": "gauge", "source": "stopped", "config": {"action": "dec"}},
            "balance": {"type": "gauge", "source": "credit", "config": {"action": "add"}},
            "spent": {"type": "gauge", "source": "debit", "config": {"action": "sub"}},
        },
        context,
    )
    stages.process(
        [
            entry('{"depth": 7, "started": "w1", "credit": 2.5}'),
            entry('{"depth": 3, "started": "w2", "debit": 1}'),
            entry('{"depth": "deep", "stopped": "w1", "credit": 1}'),
        ]
    )
    samples, families = scrape(registry)
    assert samples[key("nexo_app_queue_depth")] == 3  # the last number; "deep" skipped
    assert samples[key("nexo_app_workers")] == 2
    assert samples[key("nexo_app_workers_gone")] == -1
    assert samples[key("nexo_app_balance")] == 3.5
    assert samples[key("nexo_app_spent")] == -1
    assert families["nexo_app_queue_depth"][0] == "gauge"


def test_histogram_scales_milliseconds_into_buckets_and_skips_non_numbers() -> None:
    context, registry = agent_context()
    stages = metrics_stage(
        {
            "request_duration_seconds": {
                "type": "histogram",
                "description": "Response time",
                "source": "responseTime",
                "scale": 0.001,
                "labels": ["compose_service"],
                "config": {"buckets": [0.005, 0.01, 0.1, 1]},
            }
        },
        context,
    )
    api = {"compose_service": "api"}
    stages.process(
        [
            entry('{"responseTime": 5}', labels=api),  # exactly on a bound: le is inclusive
            entry('{"responseTime": 42}', labels=api),
            entry('{"responseTime": 2500}', labels=api),
            entry('{"responseTime": "slow"}', labels=api),
            entry('{"responseTime": "NaN"}', labels=api),
            entry("no time", labels=api),
        ]
    )
    samples, families = scrape(registry)
    name = "nexo_app_request_duration_seconds"
    buckets = {
        le: samples[key(f"{name}_bucket", compose_service="api", le=le)]
        for le in ("0.005", "0.01", "0.1", "1.0", "+Inf")
    }
    assert buckets == {"0.005": 1, "0.01": 1, "0.1": 2, "1.0": 2, "+Inf": 3}
    assert samples[key(f"{name}_count", compose_service="api")] == 3
    assert samples[key(f"{name}_sum", compose_service="api")] == pytest.approx(2.547)
    assert families[name] == ("histogram", "Response time")
    invalid = "nexo_agent_stage_metric_invalid_values_total"
    assert samples[key(invalid, metric=name)] == 2


def test_max_series_refuses_new_label_values_but_keeps_counting_known_ones() -> None:
    context, registry = agent_context()
    stages = metrics_stage(
        {"hits": {"type": "counter", "labels": ["user"], "config": {"match_all": True}}},
        context,
        max_series=2,
    )
    batch = [entry("x", fields={"user": u}) for u in ("a", "b", "c", "d", "a")]
    out = stages.process(batch)
    assert out == batch
    samples, _ = scrape(registry)
    series = {
        dict(labels)["user"]: v for (n, labels), v in samples.items() if n == "nexo_app_hits_total"
    }
    assert series == {"a": 2, "b": 1}
    refused = "nexo_agent_stage_metric_series_refused_total"
    assert samples[key(refused, metric="nexo_app_hits_total")] == 2


def test_a_label_value_over_max_label_length_is_refused_and_counted() -> None:
    """One huge value (a whole line caught by a loose field) must not reach /metrics:
    Prometheus's label_value_length_limit would fail the agent's whole scrape."""
    context, registry = agent_context()
    stages = metrics_stage(
        {"hits": {"type": "counter", "labels": ["route"], "config": {"match_all": True}}},
        context,
        max_label_length=8,
    )
    routes = ["/a", "/" + "x" * 8, "/" + "y" * 100_000, "/a", "/" + "x" * 7]
    stages.process([entry("x", fields={"route": r}) for r in routes])
    samples, _ = scrape(registry)
    series = {
        dict(labels)["route"]: v for (n, labels), v in samples.items() if n == "nexo_app_hits_total"
    }
    assert series == {"/a": 2, "/" + "x" * 7: 1}
    too_long = "nexo_agent_stage_metric_label_too_long_total"
    assert samples[key(too_long, metric="nexo_app_hits_total")] == 2


def test_idle_series_are_forgotten_at_scrape_time() -> None:
    now = [1000.0]
    registry = CollectorRegistry(auto_describe=True)
    context = StageContext(metrics=AgentMetrics(registry), clock=lambda: now[0])
    stages = metrics_stage(
        {"hits": {"type": "counter", "labels": ["user"], "config": {"match_all": True}}},
        context,
        max_idle="1m",
        max_series=1,
    )
    stages.process([entry("x", fields={"user": "old"})])
    now[0] += 30
    assert key("nexo_app_hits_total", user="old") in scrape(registry)[0]
    now[0] += 31
    stages.process([entry("x", fields={"user": "new"})])  # refused: "old" still counts
    now[0] += 30
    samples, _ = scrape(registry)
    assert key("nexo_app_hits_total", user="old") not in samples
    stages.process([entry("x", fields={"user": "new"})])  # room again
    assert scrape(registry)[0][key("nexo_app_hits_total", user="new")] == 1


def test_two_containers_feed_one_family_registered_once() -> None:
    context, registry = agent_context()
    shared_specs = parse_stages(
        [
            {
                "metrics": {
                    "metrics": {
                        "lines_total": {
                            "type": "counter",
                            "labels": ["container"],
                            "config": {"match_all": True},
                        },
                        "latency_seconds": {
                            "type": "histogram",
                            "source": "ms",
                            "scale": 0.001,
                            "config": {"buckets": [0.1, 1]},
                        },
                    }
                }
            }
        ]
    )
    pipelines = []
    for _container in ("api", "web"):
        # as TargetStages.pipeline_for builds each target's context
        target = StageContext(metrics=context.metrics, clock=context.clock, shared=context.shared)
        pipelines.append(build_pipeline(shared_specs, target))
    pipelines[0].process([entry('{"ms": 50}', labels={"container": "api"})] * 2)
    pipelines[1].process([entry('{"ms": 500}', labels={"container": "web"})])

    text = render_text(registry).decode()
    assert text.count("# TYPE nexo_app_lines_total counter") == 1
    assert text.count("# TYPE nexo_app_latency_seconds histogram") == 1
    samples, _ = scrape(registry)
    assert samples[key("nexo_app_lines_total", container="api")] == 2
    assert samples[key("nexo_app_lines_total", container="web")] == 1
    assert samples[key("nexo_app_latency_seconds_count")] == 3
    assert samples[key("nexo_app_latency_seconds_bucket", le="0.1")] == 2


def test_label_mapping_reads_another_field_and_unlabelled_counters_start_at_zero() -> None:
    context, registry = agent_context()
    stages = metrics_stage(
        {
            "requests": {
                "type": "counter",
                "labels": {"route": "http.path", "compose_service": None},
                "config": {"match_all": True},
            },
            "errors": {"type": "counter", "source": "level", "config": {"value": "error"}},
        },
        context,
    )
    assert scrape(registry)[0][key("nexo_app_errors_total")] == 0
    stages.process([entry("x", labels={"compose_service": "api"}, fields={"http.path": "/p"})])
    samples, _ = scrape(registry)
    assert samples[key("nexo_app_requests_total", route="/p", compose_service="api")] == 1


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_exposition_passes_promtool_check_metrics() -> None:
    context, registry = agent_context()
    stages = metrics_stage(
        {
            "requests_total": {
                "type": "counter",
                "labels": ["route"],
                "config": {"match_all": True},
            },
            "depth": {"type": "gauge", "source": "depth", "config": {"action": "set"}},
            "duration_seconds": {"type": "histogram", "source": "ms", "scale": 0.001},
        },
        context,
    )
    stages.process([entry('{"route": "/", "depth": 1, "ms": 3}')])
    text = render_text(registry).decode()
    ours = [
        block
        for block in text.split("# HELP ")
        if block.startswith(("nexo_app_", "nexo_agent_stage_metric_"))
    ]
    result = subprocess.run(
        ["promtool", "check", "metrics"],
        input="".join("# HELP " + b for b in ours),
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_same_metric_defined_differently_by_two_stages_is_an_error() -> None:
    context, _ = agent_context()
    first = {"metrics": {"metrics": {"hits": {"type": "counter", "config": {"match_all": True}}}}}
    metrics_stage(first["metrics"]["metrics"], context)
    again = {"hits_total": {"type": "counter", "labels": ["user"], "config": {"match_all": True}}}
    with pytest.raises(ValueError, match=r"'nexo_app_hits_total' is defined differently: label"):
        metrics_stage(again, context)
    other_type = {"hits": {"type": "gauge", "source": "n", "config": {"action": "set"}}}
    with pytest.raises(ValueError, match="defined differently: kind"):
        metrics_stage(other_type, context)
    clash = {
        "x": {"type": "histogram", "source": "n"},
        "x_count": {"type": "gauge", "source": "n", "config": {"action": "set"}},
    }
    with pytest.raises(ValueError, match="would expose 'nexo_app_x_count'"):
        metrics_stage(clash, context)


@pytest.mark.parametrize(
    ("options", "error"),
    [
        (
            {
                "metrics": {
                    "bad-name": {"type": "gauge", "source": "x", "config": {"action": "set"}}
                }
            },
            "not a valid Prometheus metric name",
        ),
        (
            {
                "prefix": "9x_",
                "metrics": {"ok": {"type": "counter", "config": {"match_all": True}}},
            },
            "not a valid Prometheus metric name",
        ),
        (
            {
                "prefix": "nexo_agent_",
                "metrics": {"x": {"type": "counter", "config": {"match_all": True}}},
            },
            "agent's own",
        ),
        (
            {"metrics": {"x": {"type": "summary", "source": "x"}}},
            r"metrics\.x\.type: Input should be 'counter', 'gauge' or 'histogram'",
        ),
        (
            {
                "metrics": {
                    "x": {"type": "histogram", "source": "x", "config": {"buckets": [1, 0.5]}}
                }
            },
            "strictly increasing",
        ),
        (
            {"metrics": {"x": {"type": "histogram", "source": "x", "labels": ["le"]}}},
            "le is the bucket label",
        ),
        (
            {
                "metrics": {
                    "x": {"type": "counter", "labels": ["a-b"], "config": {"match_all": True}}
                }
            },
            r"metrics\.x\.labels: .*not a valid Prometheus label name",
        ),
        (
            {
                "metrics": {
                    "x": {"type": "counter", "labels": ["__x"], "config": {"match_all": True}}
                }
            },
            "reserved",
        ),
        ({"metrics": {"x": {"type": "counter"}}}, "give source"),
        ({"metrics": {"x": {"type": "gauge", "source": "x"}}}, "a gauge needs config.action"),
        (
            {"metrics": {"x": {"type": "counter", "source": "x", "config": {"action": "set"}}}},
            "a counter's action is inc or add",
        ),
        (
            {"metrics": {"x": {"type": "counter", "config": {"match_all": True, "value": "1"}}}},
            "not both",
        ),
        (
            {
                "metrics": {
                    "x": {
                        "type": "counter",
                        "config": {"match_all": True, "count_entry_bytes": True},
                    }
                }
            },
            "count_entry_bytes needs match_all: true and action: add",
        ),
        (
            {"metrics": {"x_total": {"type": "gauge", "source": "x", "config": {"action": "set"}}}},
            "only counters end in _total",
        ),
        (
            {"metrics": {"x": {"type": "counter", "source": "x", "scale": 2}}},
            "scale applies to values read",
        ),
        (
            {"metrics": {"x": {"type": "counter", "config": {"match_all": True, "buckets": [1]}}}},
            "buckets are for histograms",
        ),
        (
            {"max_series": 0, "metrics": {"x": {"type": "counter", "config": {"match_all": True}}}},
            "max_series",
        ),
        ({"metrics": {}}, "define at least one metric"),
        (
            {"metrics": {"x": {"type": "counter", "config": {"match_all": True, "acton": "inc"}}}},
            r"metrics\.x\.config: unknown option 'acton' \(options: action, match_all",
        ),
    ],
)
def test_invalid_config_is_refused_at_load(options: dict[str, Any], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        parse_stages([{"metrics": options}])
