"""Counter, gauge and untyped families for the host collectors, rendered without samples.

Drop-in for prometheus_client's ``CounterFamily``, ``GaugeFamily`` and
``UntypedFamily`` (same constructor and ``add_metric``), but a row is kept as its
label values and value, and written straight to text by :meth:`sample_lines`: a host
scrape builds ~290 families and ~500 series, and creating a ``Sample`` with a label dict
per series, then sorting and escaping each dict again at render time, cost as much CPU as
reading /proc and /sys (issue 11). ``samples`` is still there, built on demand, for every
other consumer (``generate_latest``, tests).
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import Metric
from prometheus_client.samples import Sample

from agent.metrics.server import (
    RenderedFamily,
    escape_label_value,
    go_float,
    is_legacy_name,
    native_exposition,
)

# Label name tuple -> (sorted positions, the ``name="`` openings in that order).
_LAYOUTS: dict[tuple[str, ...], tuple[tuple[int, ...], tuple[str, ...]]] = {}


def _checked(name: str, what: str) -> str:
    if not is_legacy_name(name, label=what == "label"):
        raise ValueError(f"invalid {what} name: {name!r}")
    return name


def _layout(labels: tuple[str, ...]) -> tuple[tuple[int, ...], tuple[str, ...]]:
    found = _LAYOUTS.get(labels)
    if found is None:
        for label in labels:
            _checked(label, "label")
        order = tuple(sorted(range(len(labels)), key=labels.__getitem__))
        openings = tuple(("," if i else "") + f'{labels[j]}="' for i, j in enumerate(order))
        found = _LAYOUTS[labels] = (order, openings)
    return found


class _HostFamily(RenderedFamily):
    """Rows of label values and a value; the type comes from the subclass."""

    kind = "gauge"
    suffix = ""

    def __init__(
        self,
        name: str,
        documentation: str,
        value: float | None = None,
        labels: Sequence[str] | None = None,
    ) -> None:
        if self.suffix:
            name = name.removesuffix(self.suffix)
        # Metric.__init__'s checks, with each name's regex match remembered.
        self.name = _checked(name, "metric")
        self.documentation = documentation
        self.unit = ""
        self.type = self.kind
        if labels is not None and value is not None:
            raise ValueError("Can only specify at most one of value and labels.")
        self.labelnames = tuple(labels or ())
        self.sample_name = name + self.suffix
        self.rows: list[tuple[Sequence[str], float]] = []
        if value is not None:
            self.rows.append(((), value))

    def add_metric(self, labels: Sequence[str], value: float) -> None:
        if len(labels) != len(self.labelnames):
            raise ValueError(f"{self.name}: {len(labels)} label values for {self.labelnames}")
        self.rows.append((labels, value))

    def derived_samples(self) -> list[Sample]:
        name, names = self.sample_name, self.labelnames
        return [
            Sample(name, dict(zip(names, values, strict=True)), value)
            for values, value in self.rows
        ]

    def sample_lines(self) -> list[str]:
        name, rows = self.sample_name, self.rows
        if native_exposition is not None:  # the same lines, as one string, in C
            if not rows:
                return []
            order, openings = _layout(self.labelnames) if self.labelnames else ((), ())
            return [native_exposition.render_rows(name, order, openings, rows)]
        return self.python_sample_lines()

    def python_sample_lines(self) -> list[str]:
        name, rows = self.sample_name, self.rows
        if not self.labelnames:
            return [f"{name} {go_float(value)}\n" for _, value in rows]
        order, openings = _layout(self.labelnames)
        escape = escape_label_value
        if len(order) == 1:  # most host families: cpu, device, interface...
            opening = openings[0]
            return [f'{name}{{{opening}{escape(v[0])}"}} {go_float(value)}\n' for v, value in rows]
        pairs = tuple(zip(order, openings, strict=True))
        lines: list[str] = []
        for values, value in rows:
            text = "".join([f'{opening}{escape(values[i])}"' for i, opening in pairs])
            lines.append(f"{name}{{{text}}} {go_float(value)}\n")
        return lines


def has_samples(family: Metric) -> bool:
    """Whether a family has a series, without building the samples of a host family."""
    return bool(family.rows if isinstance(family, _HostFamily) else family.samples)


class CounterFamily(_HostFamily):
    """``CounterFamily``: the name without ``_total``, each sample with it."""

    kind = "counter"
    suffix = "_total"


class GaugeFamily(_HostFamily):
    """``GaugeFamily``."""

    kind = "gauge"


class UntypedFamily(_HostFamily):
    """``UntypedFamily``: exposed as ``untyped`` in text format 0.0.4."""

    kind = "unknown"
