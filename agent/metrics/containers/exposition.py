"""Container families that render their own text lines, sharing each container's labels.

A container's ~40 series all carry its identity labels (``id``, ``name``, ``image`` and
every ``container_label_*`` of the scrape's union); with 100 containers, sorting and
escaping those per sample was most of a scrape's CPU. Here they are rendered once per
container (and kept while the container's labels stay the same), and each series only
adds its own few labels (``cpu``, ``device``, ``interface``...) and its value.
"""

from __future__ import annotations

from prometheus_client.samples import Sample

from agent.metrics.server import RenderedFamily, escape_label_value, go_float

_TYPES = {"c": "counter", "g": "gauge", "u": "unknown"}


class IdentityLabels:
    """One container's identity labels, rendered in text format once per label layout.

    ``fragments(keys)`` is the label text with a hole before each value of ``keys`` (the
    series' own label names, sorted): the identity labels and the ``key="`` openings are
    merged in sorted name order, as every text-format encoder writes them.
    """

    __slots__ = ("_fragments", "labels", "text")

    def __init__(self, labels: dict[str, str]) -> None:
        self.labels = labels
        self.text = ",".join(f'{k}="{escape_label_value(labels[k])}"' for k in sorted(labels))
        self._fragments: dict[tuple[str, ...], tuple[str, ...]] = {}

    def fragments(self, keys: tuple[str, ...]) -> tuple[str, ...]:
        found = self._fragments.get(keys)
        if found is None:
            labels = self.labels
            found_list: list[str] = []
            current: list[str] = []
            for key in sorted({*labels, *keys}):
                if key in keys:
                    current.append(f'{key}="')
                    found_list.append(",".join(current))
                    current = ['"']
                else:
                    current.append(f'{key}="{escape_label_value(labels[key])}"')
            found_list.append(",".join(current))
            found = self._fragments[keys] = tuple(found_list)
        return found


class ContainerFamily(RenderedFamily):
    """A ``container_*`` family: one row per series, rendered or turned into samples on
    demand.

    ``keys`` are the series' own label names beyond the identity, sorted; ``add`` takes
    their values in that order. Values may be ``int`` (rendered exactly as their float).
    """

    def __init__(self, kind: str, name: str, documentation: str, keys: tuple[str, ...] = ()):
        if kind == "c":  # a counter family is named without _total, as CounterMetricFamily does
            name = name.removesuffix("_total")
        super().__init__(name, documentation, _TYPES[kind])
        assert list(keys) == sorted(keys), keys
        self.keys = keys
        self.sample_name = name + "_total" if kind == "c" else name
        self.rows: list[tuple[IdentityLabels, tuple[str, ...], float]] = []

    def add(self, identity: IdentityLabels, value: float, *own: str) -> None:
        self.rows.append((identity, own, value))

    def derived_samples(self) -> list[Sample]:
        name, keys = self.sample_name, self.keys
        return [
            Sample(name, {**identity.labels, **dict(zip(keys, own, strict=True))}, float(value))
            for identity, own, value in self.rows
        ]

    def sample_lines(self) -> list[str]:
        name, keys = self.sample_name, self.keys
        if not keys:
            return [f"{name}{{{i.text}}} {go_float(v)}\n" for i, _, v in self.rows]
        lines = []
        for identity, own, value in self.rows:
            pieces = identity.fragments(keys)
            text = pieces[0]
            for piece, label in zip(pieces[1:], own, strict=True):
                text = f"{text}{escape_label_value(label)}{piece}"
            lines.append(f"{name}{{{text}}} {go_float(value)}\n")
        return lines
