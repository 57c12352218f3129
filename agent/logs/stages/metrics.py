"""``metrics``: counters, gauges and histograms computed from log entries, on ``/metrics``.

For numbers that are cheaper to alert on as a series than as a LogQL query over the
logs: requests by route, 5xx counts, response-time histograms. Promtail's ``metrics``
stage, with two differences: a metric's labels are the ones it lists (looked up as the
entry's label, else its field; missing ones are ""), not every label of the entry, and
each metric holds at most ``max_series`` label combinations, so one noisy field cannot
grow the agent's memory or Prometheus's series without bound.

.. code-block:: yaml

    - metrics:
        prefix: nexo_app_            # before every name below (default nexo_app_)
        max_series: 1000             # label combinations per metric; more are refused
        max_label_length: 1024       # characters of one label value; longer ones are refused
        max_idle: 24h                # optional: forget series not updated for this long
        metrics:
          http_requests_total:       # a counter is exposed as <prefix><name>_total
            type: counter            # counter | gauge | histogram (any case)
            description: "Requests by service and route"
            labels: [compose_service, route]    # or {route: url}: label <- field
            config:
              match_all: true        # count every entry (action inc)
          http_errors_total:
            type: counter
            labels: [compose_service]
            source: status           # the field (or label) to read
            config:
              value: "500"           # only entries whose status is exactly 500
          http_response_bytes_total:
            type: counter
            config: {match_all: true, action: add, count_entry_bytes: true}
          queue_depth:
            type: gauge
            source: depth
            config: {action: set}    # set | inc | dec | add | sub
          request_duration_seconds:
            type: histogram
            source: responseTime     # a number; anything else is skipped and counted
            scale: 0.001             # multiply by this first (milliseconds -> seconds)
            labels: [compose_service]
            config:
              buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]

A metric may also set its own ``prefix`` and ``max_idle`` (Promtail's per-metric
``prefix`` and ``max_idle_duration``). Every target's pipeline feeds the same series: a
name defined twice must be defined alike (type, description, labels, buckets, limits).
The stage never drops or changes entries. Observations refused by ``max_series`` count in
``nexo_agent_stage_metric_series_refused_total{metric}``, values that are not finite
numbers (or negative for a counter) in ``nexo_agent_stage_metric_invalid_values_total``,
and new series with a label value over ``max_label_length`` characters (a whole line caught
by a loose field, a URL with its query) in
``nexo_agent_stage_metric_label_too_long_total``: Prometheus's ``label_value_length_limit``
fails the whole scrape of a target that exposes one.
"""

from __future__ import annotations

import bisect
import itertools
import math
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from prometheus_client import CollectorRegistry, Metric
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.registry import Collector
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from agent.logs.stages.base import Entry, Stage, StageContext
from agent.logs.stages.options import Duration, StageConfig
from agent.metrics.server import go_float

# Label names, and metric names too: colons are valid in those but reserved for recording
# rules (promtool lints them).
_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_RESERVED_PREFIX = "nexo_agent_"  # the agent's own metrics
# prometheus_client's (and Go client's) default buckets, for a histogram that names none.
DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_SHARED_KEY = "metrics.collector"

LabelValues = tuple[str, ...]


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _known_options(model: type[BaseModel], data: Any) -> Any:
    # Said here rather than by extra="forbid": the stage's error names the stage's own
    # options, which would mislead about a nested metric's keys.
    if isinstance(data, dict):
        unknown = [k for k in data if k not in model.model_fields]
        if unknown:
            raise ValueError(
                f"unknown option {unknown[0]!r} (options: {', '.join(model.model_fields)})"
            )
    return data


def _text(value: Any) -> Any:
    # YAML reads `value: 500` as a number; the field it is compared with is text.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


class MetricOptions(BaseModel):
    """Promtail's per-metric ``config``: which of these apply depends on the type."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    action: Annotated[
        Literal["inc", "add", "set", "dec", "sub"] | None, BeforeValidator(_lower)
    ] = None
    match_all: bool = False
    value: Annotated[str | None, BeforeValidator(_text)] = None
    count_entry_bytes: bool = False
    buckets: tuple[float, ...] | None = None

    @model_validator(mode="before")
    @classmethod
    def _known(cls, data: Any) -> Any:
        return _known_options(cls, data)

    @field_validator("buckets")
    @classmethod
    def _increasing(cls, buckets: tuple[float, ...] | None) -> tuple[float, ...] | None:
        if buckets is None:
            return None
        if buckets and buckets[-1] == math.inf:  # +Inf is always there; allow it spelled out
            buckets = buckets[:-1]
        if not buckets:
            raise ValueError("give at least one bucket bound")
        if not all(math.isfinite(b) for b in buckets):
            raise ValueError("bucket bounds must be finite numbers")
        if any(a >= b for a, b in itertools.pairwise(buckets)):
            raise ValueError(f"buckets must be in strictly increasing order: {list(buckets)}")
        return buckets


class MetricDefinition(BaseModel):
    """One metric: what it is (type, labels) and what feeds it (source, config)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Annotated[Literal["counter", "gauge", "histogram"], BeforeValidator(_lower)]
    description: str = ""
    labels: list[str] | dict[str, str | None] = Field(default_factory=list)
    source: str | None = None
    scale: float | None = None
    prefix: str | None = None
    max_idle: Duration | None = None
    config: MetricOptions = MetricOptions()

    @model_validator(mode="before")
    @classmethod
    def _known(cls, data: Any) -> Any:
        return _known_options(cls, data)

    @field_validator("labels")
    @classmethod
    def _label_names(cls, labels: list[str] | dict[str, str | None]) -> Any:
        names = list(labels)
        for name in names:
            if not isinstance(name, str) or not _NAME.fullmatch(name):
                raise ValueError(
                    f"{name!r} is not a valid Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)"
                )
            if name.startswith("__"):
                raise ValueError(f"label names starting with __ are reserved: {name!r}")
        if len(set(names)) != len(names):
            raise ValueError(f"a label is listed twice: {names}")
        return labels

    @model_validator(mode="after")
    def _options_fit_type(self) -> MetricDefinition:
        cfg = self.config
        kind = self.type
        if self.scale is not None and not math.isfinite(self.scale):
            raise ValueError("scale must be a finite number")
        if kind != "counter" and (cfg.match_all or cfg.count_entry_bytes):
            raise ValueError(f"match_all and count_entry_bytes are for counters, not a {kind}")
        if kind != "histogram" and cfg.buckets is not None:
            raise ValueError(f"buckets are for histograms, not a {kind}")
        reads_number = True
        if kind == "counter":
            action = cfg.action or "inc"
            if action not in ("inc", "add"):
                raise ValueError(f"a counter's action is inc or add, not {action!r}")
            if cfg.match_all and cfg.value is not None:
                raise ValueError("give match_all (count every entry) or value, not both")
            if cfg.count_entry_bytes and not (cfg.match_all and action == "add"):
                raise ValueError("count_entry_bytes needs match_all: true and action: add")
            if cfg.match_all and self.source is not None:
                raise ValueError("match_all counts every entry: source is not read")
            reads_number = action == "add" and not cfg.count_entry_bytes
        elif kind == "gauge":
            if cfg.action is None or cfg.action not in ("set", "inc", "dec", "add", "sub"):
                raise ValueError("a gauge needs config.action: set, inc, dec, add or sub")
            reads_number = cfg.action in ("set", "add", "sub")
        elif cfg.action is not None:
            raise ValueError("a histogram observes its source's value: no action")
        if self.source is None and not cfg.match_all:
            raise ValueError(
                "give source (the field or label to read)"
                + (", or config.match_all: true to count every entry" if kind == "counter" else "")
            )
        if self.scale is not None and not reads_number:
            raise ValueError("scale applies to values read from source (add, set, sub, histogram)")
        if kind == "histogram" and "le" in self.labels:
            raise ValueError("le is the bucket label of a histogram, not usable as a label")
        return self

    def label_sources(self) -> tuple[tuple[str, str], ...]:
        """(label name, where its value is read) pairs, in the order configured."""
        if isinstance(self.labels, dict):
            return tuple((name, src or name) for name, src in self.labels.items())
        return tuple((name, name) for name in self.labels)


class MetricsConfig(StageConfig):
    prefix: str = "nexo_app_"
    max_series: int = Field(default=1000, ge=1)
    max_label_length: int = Field(default=1024, ge=1)
    max_idle: Duration | None = None
    metrics: dict[str, MetricDefinition]

    @model_validator(mode="after")
    def _names(self) -> MetricsConfig:
        if not self.metrics:
            raise ValueError("metrics: define at least one metric")
        for name, metric in self.metrics.items():
            full = (metric.prefix if metric.prefix is not None else self.prefix) + name
            if not _NAME.fullmatch(full):
                raise ValueError(
                    f"metric {full!r} is not a valid Prometheus metric name "
                    "([a-zA-Z_][a-zA-Z0-9_]*; check the prefix and the name)"
                )
            if full.startswith(_RESERVED_PREFIX):
                raise ValueError(
                    f"metric {full!r}: the {_RESERVED_PREFIX} prefix is the agent's own"
                )
            if metric.type != "counter" and full.endswith("_total"):
                raise ValueError(f"metric {full!r}: only counters end in _total")
        return self


# -- shared state: one family per metric name, for every target's pipeline ----------------


@dataclass(frozen=True)
class FamilyShape:
    """What a family exposes; two stages feeding one name must agree on all of it."""

    kind: str
    name: str  # as prometheus_client takes it: a counter's without _total
    help: str
    label_names: tuple[str, ...]
    buckets: tuple[float, ...]
    max_series: int
    max_idle: float | None
    max_label_length: int = 1024

    @property
    def exposed(self) -> str:
        return self.name + "_total" if self.kind == "counter" else self.name

    def sample_names(self) -> set[str]:
        if self.kind == "histogram":
            return {self.name + "_bucket", self.name + "_sum", self.name + "_count"}
        return {self.exposed}

    def difference(self, other: FamilyShape) -> str | None:
        for attr in (
            "kind",
            "label_names",
            "buckets",
            "help",
            "max_series",
            "max_idle",
            "max_label_length",
        ):
            mine, theirs = getattr(self, attr), getattr(other, attr)
            if mine != theirs:
                return f"{attr} {theirs!r} here, {mine!r} elsewhere"
        return None


class LogMetricFamily:
    """One family's series: plain dicts keyed by label values, updated on the hot path.

    Counters and gauges keep a float per series; histograms a list of per-bucket counts
    (not cumulative; the last one is +Inf) followed by the sum.
    """

    def __init__(self, shape: FamilyShape) -> None:
        self.shape = shape
        self.values: dict[LabelValues, float] = {}
        self.histograms: dict[LabelValues, list[float]] = {}
        self.touched: dict[LabelValues, float] | None = {} if shape.max_idle is not None else None
        self.refused = 0
        self.invalid = 0
        self.too_long = 0

    def declare_unlabelled(self, now: float) -> None:
        # A counter or histogram without labels shows 0 before its first observation.
        if self.shape.label_names:
            return
        if self.shape.kind == "counter":
            self.values.setdefault((), 0.0)
        elif self.shape.kind == "histogram":
            self.histograms.setdefault((), [0.0] * (len(self.shape.buckets) + 2))
        else:
            return
        if self.touched is not None:
            self.touched[()] = now

    def forget_idle(self, now: float) -> None:
        touched, max_idle = self.touched, self.shape.max_idle
        if touched is None or max_idle is None:
            return
        cutoff = now - max_idle
        for key, at in list(touched.items()):
            if at < cutoff:
                # pop: the event loop may be updating the same dicts meanwhile
                self.values.pop(key, None)
                self.histograms.pop(key, None)
                touched.pop(key, None)

    def metric(self) -> Metric:
        shape = self.shape
        labels = list(shape.label_names)
        if shape.kind == "histogram":
            histogram = HistogramMetricFamily(shape.name, shape.help, labels=labels)
            bounds = [go_float(b) for b in shape.buckets] + ["+Inf"]
            for key, series in list(self.histograms.items()):
                counts = series[:]  # one copy: counts and sum from the same moment
                buckets: list[tuple[str, float]] = []
                total = 0.0
                for le, n in zip(bounds, counts, strict=False):
                    total += n
                    buckets.append((le, total))
                histogram.add_metric(list(key), buckets, counts[-1])
            return histogram
        family: CounterMetricFamily | GaugeMetricFamily
        if shape.kind == "counter":
            family = CounterMetricFamily(shape.name, shape.help, labels=labels)
        else:
            family = GaugeMetricFamily(shape.name, shape.help, labels=labels)
        for key, value in list(self.values.items()):
            family.add_metric(list(key), value)
        return family


class LogMetricsCollector(Collector):
    """The families every metrics stage feeds, and the agent's counters about them.

    One per agent (kept in ``StageContext.shared``), registered once on the agent's
    registry; each scrape builds the families from the dicts the stages update.
    """

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.families: dict[str, LogMetricFamily] = {}
        self._registries: list[CollectorRegistry] = []

    @classmethod
    def shared(cls, context: StageContext) -> LogMetricsCollector:
        collector = context.shared.get(_SHARED_KEY)
        if not isinstance(collector, LogMetricsCollector):
            collector = cls(context.clock or time.time)
            context.shared[_SHARED_KEY] = collector
        return collector

    def define(self, shapes: list[FamilyShape]) -> list[LogMetricFamily]:
        """The families for ``shapes``, created or shared; ValueError on a clash.

        All are checked before any is created, so a failed stage leaves nothing behind.
        """
        taken: dict[str, str] = {}
        for family in self.families.values():
            for sample in family.shape.sample_names():
                taken[sample] = family.shape.exposed
        for shape in shapes:
            existing = self.families.get(shape.name)
            if existing is not None:
                why = existing.shape.difference(shape)
                if why is not None:
                    raise ValueError(f"metric {shape.exposed!r} is defined differently: {why}")
                continue
            for sample in shape.sample_names():
                if sample in taken and taken[sample] != shape.exposed:
                    raise ValueError(
                        f"metric {shape.exposed!r} would expose {sample!r}, "
                        f"already exposed by {taken[sample]!r}"
                    )
                taken[sample] = shape.exposed
        now = self.clock()
        families: list[LogMetricFamily] = []
        for shape in shapes:
            known = self.families.get(shape.name)
            if known is None:
                known = LogMetricFamily(shape)
                known.declare_unlabelled(now)
                self.families[shape.name] = known
            families.append(known)
        return families

    def register_on(self, registry: CollectorRegistry) -> None:
        if not any(r is registry for r in self._registries):
            registry.register(self)
            self._registries.append(registry)

    def describe(self) -> Iterable[Metric]:
        # Names known up front (a second collector on one registry is an error); the
        # families themselves come and go with the stages, and describe() would run at
        # registration time under CollectorRegistry(auto_describe=True).
        return self._own_counters([])

    def collect(self) -> Iterator[Metric]:
        now = self.clock()
        families = list(self.families.values())
        for family in families:
            family.forget_idle(now)
            yield family.metric()
        yield from self._own_counters(families)

    @staticmethod
    def _own_counters(families: list[LogMetricFamily]) -> list[Metric]:
        refused = CounterMetricFamily(
            "nexo_agent_stage_metric_series_refused",
            "Observations a metrics stage did not record because the metric already had "
            "max_series label combinations, by metric.",
            labels=["metric"],
        )
        invalid = CounterMetricFamily(
            "nexo_agent_stage_metric_invalid_values",
            "Values a metrics stage skipped because they were not finite numbers "
            "(or were negative for a counter), by metric.",
            labels=["metric"],
        )
        too_long = CounterMetricFamily(
            "nexo_agent_stage_metric_label_too_long",
            "Observations a metrics stage did not record because a new series would have had "
            "a label value over max_label_length characters, by metric.",
            labels=["metric"],
        )
        for family in families:
            refused.add_metric([family.shape.exposed], family.refused)
            invalid.add_metric([family.shape.exposed], family.invalid)
            too_long.add_metric([family.shape.exposed], family.too_long)
        return [refused, invalid, too_long]


# -- the stage ------------------------------------------------------------------------------


def _label_values(entry: Entry, sources: tuple[str, ...]) -> LabelValues:
    labels = entry.labels
    out = []
    for source in sources:
        value = labels.get(source)
        if value is None:
            value = entry.field(source)
            if value is None:
                value = ""
        out.append(value)
    return tuple(out)


def _too_long(key: LabelValues, max_length: int) -> bool:
    """Whether a new series' label values include one Prometheus may refuse."""
    return any(len(value) > max_length for value in key)


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _byte_length(line: str) -> int:
    return len(line) if line.isascii() else len(line.encode("utf-8", "surrogatepass"))


class _Feed:
    """How one stage's metric reads entries into its (shared) family."""

    def __init__(self, definition: MetricDefinition, family: LogMetricFamily) -> None:
        cfg = definition.config
        action = cfg.action or "inc"
        self.family = family
        self.histogram = definition.type == "histogram"
        self.counter = definition.type == "counter"
        self.match_all = cfg.match_all
        self.count_bytes = cfg.count_entry_bytes
        self.source = definition.source or ""
        self.want = cfg.value
        self.reads_number = self.histogram or action in ("add", "set", "sub")
        self.scale = definition.scale
        self.setting = action == "set"
        self.sign = -1.0 if action in ("dec", "sub") else 1.0
        self.sources = tuple(src for _, src in definition.label_sources())

    def feed(self, entries: list[Entry], now: float) -> None:
        family = self.family
        values = family.values
        histograms = family.histograms
        touched = family.touched
        limit = family.shape.max_series
        max_length = family.shape.max_label_length
        bounds = family.shape.buckets
        n_slots = len(bounds) + 2
        histogram, counter, setting, sign = self.histogram, self.counter, self.setting, self.sign
        match_all, count_bytes = self.match_all, self.count_bytes
        source, want, reads_number, scale = self.source, self.want, self.reads_number, self.scale
        sources = self.sources
        refused = invalid = too_long = 0
        amount = 1.0
        for e in entries:
            if match_all:
                if count_bytes:
                    amount = float(_byte_length(e.line))
            else:
                text = e.labels.get(source)
                if text is None:
                    text = e.field(source)
                    if text is None:
                        continue
                if want is not None and text != want:
                    continue
                if reads_number:
                    number = _number(text)
                    if number is None:
                        invalid += 1
                        continue
                    amount = number * scale if scale is not None else number
                    if counter and amount < 0:
                        invalid += 1
                        continue
            key = _label_values(e, sources) if sources else ()
            if histogram:
                series = histograms.get(key)
                if series is None:
                    if len(histograms) >= limit:
                        refused += 1
                        continue
                    if _too_long(key, max_length):
                        too_long += 1
                        continue
                    series = [0.0] * n_slots
                    histograms[key] = series
                # bucket i counts values <= bounds[i]; index len(bounds) is +Inf
                series[bisect.bisect_left(bounds, amount)] += 1
                series[-1] += amount
            else:
                current = values.get(key)
                if current is None:
                    if len(values) >= limit:
                        refused += 1
                        continue
                    if _too_long(key, max_length):
                        too_long += 1
                        continue
                    current = 0.0
                values[key] = amount if setting else current + sign * amount
            if touched is not None:
                touched[key] = now
        if refused:
            family.refused += refused
        if invalid:
            family.invalid += invalid
        if too_long:
            family.too_long += too_long


class Metrics(Stage):
    type_name = "metrics"
    config_class = MetricsConfig

    def __init__(self, config: StageConfig, context: StageContext) -> None:
        super().__init__(config, context)
        assert isinstance(config, MetricsConfig)
        self.clock = context.clock or time.time
        shapes = [_shape(name, metric, config) for name, metric in config.metrics.items()]
        collector = LogMetricsCollector.shared(context)
        families = collector.define(shapes)
        self.feeds = [
            _Feed(metric, family)
            for metric, family in zip(config.metrics.values(), families, strict=True)
        ]
        self.track_time = any(f.family.touched is not None for f in self.feeds)
        if context.metrics is not None:
            collector.register_on(context.metrics.registry)

    def apply(self, entries: list[Entry]) -> list[Entry]:
        now = self.clock() if self.track_time else 0.0
        for feed in self.feeds:
            feed.feed(entries, now)
        return entries


def _shape(name: str, metric: MetricDefinition, config: MetricsConfig) -> FamilyShape:
    full = (metric.prefix if metric.prefix is not None else config.prefix) + name
    if metric.type == "counter":
        full = full.removesuffix("_total")
    return FamilyShape(
        kind=metric.type,
        name=full,
        help=metric.description or f"The {metric.type} {name} from log entries (metrics stage).",
        label_names=tuple(label for label, _ in metric.label_sources()),
        buckets=(metric.config.buckets or DEFAULT_BUCKETS) if metric.type == "histogram" else (),
        max_series=config.max_series,
        max_label_length=config.max_label_length,
        max_idle=metric.max_idle if metric.max_idle is not None else config.max_idle,
    )


STAGE = Metrics
