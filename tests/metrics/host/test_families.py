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


def test_c_sample_lines_and_go_float_are_pythons() -> None:
    """The C exposition (built in CI; NEXO_AGENT_PURE_PYTHON turns it off) writes what the
    Python code writes, on random rows: odd label values, every kind of number."""
    import os
    import random

    from agent.metrics import server

    if os.environ.get("NEXO_AGENT_PURE_PYTHON", "") not in ("", "0"):
        assert server.native_exposition is None
        return
    assert server.native_exposition is not None, "agent/metrics/_exposition.c is not built"
    rng = random.Random(11)
    pieces = ["eth0", "", '"', "\\", "\n", "é", "日本", "\U0001f600", "a b", "\\n", "x" * 300]
    specials = [0, -0.0, 1, -1, 2**53 - 1, 2**53, 2**53 + 1, -(2**53) + 1, 10**6, 10**6 - 1]
    specials += [2**64, -(2**70), True, False, math.inf, -math.inf, math.nan, 1e16, 1e-7]

    def number() -> float:
        kind = rng.randrange(4)
        if kind == 0:
            return rng.choice(specials)
        if kind == 1:
            return rng.randrange(-(10**18), 10**18) // 10 ** rng.randrange(18)
        if kind == 2:
            return rng.uniform(-1, 1) * 10 ** rng.randrange(-12, 25)
        return float(rng.randrange(10**9)) * 10 ** rng.randrange(0, 10)

    for _ in range(2000):
        value = number()
        assert server.go_float(value) == server.python_go_float(value), value
    for width in (0, 1, 2, 3, 5):
        names = rng.sample(["device", "mode", "cpu", "address", "z", "a_b"], width)
        family = GaugeFamily("node_random", "Random rows.", labels=names)
        for _ in range(200):
            labels = ["".join(rng.choices(pieces, k=rng.randrange(4))) for _ in names]
            family.add_metric(labels if rng.random() < 0.5 else tuple(labels), number())
        assert "".join(family.sample_lines()) == "".join(family.python_sample_lines())
    empty = CounterFamily("node_empty", "No rows.", labels=["a"])
    assert empty.sample_lines() == empty.python_sample_lines() == []
    with pytest.raises(TypeError):
        bad = GaugeFamily("node_bad", "A label value that is no str.", labels=["a"])
        bad.add_metric([5], 1)  # type: ignore[list-item]
        bad.sample_lines()
