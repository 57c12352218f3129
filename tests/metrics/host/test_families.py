"""The host collectors' families render what prometheus_client's would, byte for byte."""

from __future__ import annotations

import math
from collections.abc import Iterable

import pytest
from prometheus_client import CollectorRegistry, Metric
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, UnknownMetricFamily
from prometheus_client.exposition import generate_latest

from agent.metrics.host.families import CounterFamily, GaugeFamily, UntypedFamily, has_samples
from agent.metrics.server import render_text

ROWS: list[tuple[list[str], float]] = [
    (["eth0", "up", "a"], 1),
    (["lo", 'say "hi"\\there\nnext', ""], 2.5),
    (["wlan0", "down", "b"], 12_345_678_901),
    (["x", "y", "z"], math.inf),
    (["p", "q", "r"], -math.inf),
    (["nan", "nan", "nan"], math.nan),
    (["big", "big", "big"], 1.5e300),
]
# Not in sorted order: the text format sorts label names.
LABELS = ["interface", "operstate", "address"]


class _Families:
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return self.families


def _both(ours: list[Metric], theirs: list[Metric]) -> tuple[bytes, bytes]:
    a, b = CollectorRegistry(auto_describe=False), CollectorRegistry(auto_describe=False)
    a.register(_Families(ours))
    b.register(_Families(theirs))
    return render_text(a), generate_latest(b)


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (CounterFamily, CounterMetricFamily),
        (GaugeFamily, GaugeMetricFamily),
        (UntypedFamily, UnknownMetricFamily),
    ],
)
def test_each_kind_renders_as_prometheus_client_does(ours: type, theirs: type) -> None:
    name = "node_network_thing_total" if ours is CounterFamily else "node_network_thing"
    mine = ours(name, 'Help with "quotes", a \\ and a\nnewline.', labels=LABELS)
    reference = theirs(name, 'Help with "quotes", a \\ and a\nnewline.', labels=LABELS)
    one = ours("node_one", "One label.", labels=["cpu"])
    one_ref = theirs("node_one", "One label.", labels=["cpu"])
    plain = ours("node_plain", "No labels.", value=7)
    plain_ref = theirs("node_plain", "No labels.", value=7)
    for values, value in ROWS:
        mine.add_metric(values, value)
        reference.add_metric(values, value)
        one.add_metric(values[:1], value)
        one_ref.add_metric(values[:1], value)
    text, expected = _both([mine, one, plain], [reference, one_ref, plain_ref])
    assert text == expected
    # Every other consumer reads the same samples.
    assert [(s.name, s.labels) for s in mine.samples] == [
        (s.name, s.labels) for s in reference.samples
    ]
    assert mine.name == reference.name and mine.type == reference.type


def test_empty_families_are_told_apart_without_building_samples() -> None:
    empty = GaugeFamily("node_empty", "Nothing.", labels=["a"])
    assert not has_samples(empty)
    empty.add_metric(["x"], 1)
    assert has_samples(empty)
    assert has_samples(GaugeMetricFamily("node_g", "g", value=1))
    assert not has_samples(GaugeMetricFamily("node_g", "g", labels=["a"]))


def test_bad_names_and_label_counts_are_errors_not_bad_output() -> None:
    with pytest.raises(ValueError, match="invalid metric name"):
        GaugeFamily("node-bad", "dash")
    family = GaugeFamily("node_ok", "ok", labels=["a", "b"])
    with pytest.raises(ValueError, match="label values"):
        family.add_metric(["only one"], 1)
    with pytest.raises(ValueError, match="at most one"):
        GaugeFamily("node_ok", "ok", value=1, labels=["a"])
    bad_label = GaugeFamily("node_ok", "ok", labels=["bad-label"])
    bad_label.add_metric(["v"], 1)
    with pytest.raises(ValueError, match="invalid label name"):
        bad_label.sample_lines()
