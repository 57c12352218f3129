"""The agent's own counters, with Promtail-like meaning under the ``nexo_agent_`` prefix.

One :class:`AgentMetrics` object is created per agent on an explicit registry (never the
global default one) and handed to the components that count; gauges derived from pipeline
state (unacknowledged bytes, oldest unacknowledged entry) are computed at scrape time by
the pipeline's own collector, not stored here.
"""

from __future__ import annotations

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from agent import __version__
from agent.dependencies import DependencyStates
from agent.logs import speedups

# node_exporter and cAdvisor never emit ``_created`` series; dashboards do not expect them.
prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]

# Reasons an entry may be dropped, pre-declared so a zero shows before the first drop.
DROP_REASONS = (
    "ingester_error",  # a 4xx other than 429 (and Loki's 260) from Loki
    "rate_limited",  # 429 after the configured retries ran out
    "line_too_long",  # a line over max_line_size that could not be shipped
    "too_old",  # older than Loki's reject_old_samples_max_age
    "malformed_record",  # a json-file record that is not valid JSON
    "rotated_away",  # Docker rotated the file away before it could be read
    "retries_exhausted",  # a retryable error outlived max_retries
)


class AgentMetrics:
    """Counters and gauges the log pipeline updates on its hot path."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.dependencies = DependencyStates(registry)
        # "python" on a host where the C speedups could not be built: a slower agent says so
        self.build_info = Gauge(
            "nexo_agent_build_info",
            "Always 1: the agent's version and whether its C speedups are in use.",
            ["version", "speedups"],
            registry=registry,
        )
        self.build_info.labels(__version__, speedups.mode()).set(1)
        self.stage_dropped = Counter(
            "nexo_agent_stage_dropped_entries_total",
            "Entries a pipeline stage dropped (drop, sample, limit), by stage and reason.",
            ["stage", "reason"],
            registry=registry,
        )
        self.stage_changed = Counter(
            "nexo_agent_stage_changed_entries_total",
            "Entries a pipeline stage changed (redact, replace, multiline joins, "
            "timestamp, output...), by stage.",
            ["stage"],
            registry=registry,
        )
        self.read_bytes = Counter(
            "nexo_agent_read_bytes_total",
            "Bytes read from log files.",
            ["container"],
            registry=registry,
        )
        self.read_lines = Counter(
            "nexo_agent_read_lines_total",
            "Log lines read (after 16 KiB partial merge).",
            ["container"],
            registry=registry,
        )
        self.sent_entries = Counter(
            "nexo_agent_sent_entries_total",
            "Entries acknowledged by Loki.",
            registry=registry,
        )
        self.sent_bytes = Counter(
            "nexo_agent_sent_bytes_total",
            "Line bytes acknowledged by Loki.",
            registry=registry,
        )
        self.encoded_bytes = Counter(
            "nexo_agent_encoded_bytes_total",
            "Request body bytes sent to Loki (after compression).",
            registry=registry,
        )
        self.dropped_entries = Counter(
            "nexo_agent_dropped_entries_total",
            "Entries that will never reach Loki, by reason.",
            ["reason"],
            registry=registry,
        )
        self.dropped_bytes = Counter(
            "nexo_agent_dropped_bytes_total",
            "Bytes that will never reach Loki, by reason.",
            ["reason"],
            registry=registry,
        )
        for reason in DROP_REASONS:
            self.dropped_entries.labels(reason)
            self.dropped_bytes.labels(reason)
        self.truncated_lines = Counter(
            "nexo_agent_truncated_lines_total",
            "Lines cut to max_line_size before shipping.",
            registry=registry,
        )
        self.batch_retries = Counter(
            "nexo_agent_batch_retries_total",
            "Push attempts retried after 429, 5xx or a connection error.",
            registry=registry,
        )
        self.request_duration = Histogram(
            "nexo_agent_request_duration_seconds",
            "Duration of push requests to Loki, by HTTP status code ('error' for no answer).",
            ["status_code"],
            registry=registry,
        )
        self.active_containers = Gauge(
            "nexo_agent_active_containers",
            "Containers whose logs are being followed.",
            registry=registry,
        )
        self.unreadable_targets = Gauge(
            "nexo_agent_unreadable_targets",
            "Containers whose log file cannot be found or read (the agent's log says why "
            "and how to fix it, once per container).",
            registry=registry,
        )
        self.active_files = Gauge(
            "nexo_agent_files_active",
            "Log files currently open for reading.",
            registry=registry,
        )
        self.rotation_gaps = Counter(
            "nexo_agent_rotation_gaps_total",
            "Rotations after which an unread file may have been deleted unseen (amount "
            "unknown: Docker rotated faster than the file was read).",
            ["container"],
            registry=registry,
        )
        self.log_lines = Counter(
            "nexo_log_lines_total",
            "Lines shipped, by service and normalised level (for alerts without LogQL).",
            ["service", "level"],
            registry=registry,
        )
        self.discovery_errors = Counter(
            "nexo_agent_discovery_errors_total",
            "Errors talking to Docker or reading container metadata.",
            ["source"],
            registry=registry,
        )
        self.read_errors = Counter(
            "nexo_agent_read_errors_total",
            "Errors reading a log file (unreadable, vanished).",
            ["container"],
            registry=registry,
        )
