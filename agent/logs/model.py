"""The few types every stage of the log pipeline agrees on.

Data flows one way: discovery yields :class:`LogTarget`; the tailer reads records from the
target's file; decoding and parsing turn them into :class:`PushEntry` values grouped by
:class:`StreamLabels`; the Loki client sends a :class:`PushBatch`; acknowledgements move
positions forward.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, NamedTuple

if TYPE_CHECKING:
    from agent.logs.loki_encode import EncodedPush


@dataclass(frozen=True, slots=True)
class StreamLabels:
    """A Loki stream's label set: sanitised names, sorted, at most 15 pairs.

    Frozen and hashable so it can key a batch's streams dict; ``rendered`` is the
    Prometheus/LogQL form that the protobuf push body carries.
    """

    pairs: tuple[tuple[str, str], ...]
    rendered: str = field(compare=False, hash=False, default="")

    @staticmethod
    def of(labels: dict[str, str]) -> StreamLabels:
        pairs = tuple(sorted((k, v) for k, v in labels.items() if v != ""))
        return StreamLabels(pairs, render_labels(pairs))

    def as_dict(self) -> dict[str, str]:
        return dict(self.pairs)


MAX_LABELS = 15  # Loki's max_label_names_per_series default


class StreamLabelsCache:
    """Label dicts (after stages) -> interned :class:`StreamLabels`, as Loki will take them:
    empty values dropped, at most :data:`MAX_LABELS` pairs (the ``wanted`` names first),
    never an empty set (``fallback`` then). Bounded: labels may come from fields."""

    def __init__(self, wanted: Sequence[str], fallback: tuple[str, str]) -> None:
        self.wanted = wanted
        self.fallback = fallback
        self._known: dict[tuple[tuple[str, str], ...], StreamLabels] = {}

    def clear(self) -> None:
        self._known.clear()

    def of(self, labels: dict[str, str]) -> StreamLabels:
        pairs = tuple(sorted((k, v) for k, v in labels.items() if v != ""))
        if not pairs:
            # Stages removed every label: Loki refuses an empty label set, so the stream
            # keeps a name, as Loki's own service_name default does.
            pairs = (self.fallback,)
        found = self._known.get(pairs)
        if found is None:
            if len(pairs) > MAX_LABELS:
                keep = [k for k in self.wanted if k in labels][:MAX_LABELS]
                keep += [k for k, _ in pairs if k not in keep][: MAX_LABELS - len(keep)]
                pairs = tuple(sorted((k, labels[k]) for k in keep))
            found = StreamLabels(pairs, render_labels(pairs))
            if len(self._known) > 10_000:
                self._known.clear()
            self._known[pairs] = found
        return found


def render_labels(pairs: tuple[tuple[str, str], ...]) -> str:
    """``{a="x", b="y"}`` with Go string-literal escaping, as Promtail's labelsMapToString."""
    inner = ", ".join(f'{k}="{_escape(v)}"' for k, v in pairs)
    return "{" + inner + "}"


def _escape(value: str) -> str:
    if not any(c in value for c in '\\"\n\r\t') and value.isprintable():
        return value
    out = []
    for ch in value:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif not ch.isprintable():
            out.append(f"\\u{ord(ch):04x}" if ord(ch) < 0x10000 else f"\\U{ord(ch):08x}")
        else:
            out.append(ch)
    return "".join(out)


class PushEntry(NamedTuple):
    """One log line as Loki stores it: exact ns timestamp, unchanged line, structured metadata."""

    ts_ns: int
    line: str
    metadata: tuple[tuple[str, str], ...] = ()


@dataclass(slots=True)
class PushBatch:
    """Entries grouped by stream, with the byte count Loki's rate limiter would charge."""

    streams: dict[StreamLabels, list[PushEntry]] = field(default_factory=dict)
    entry_count: int = 0
    # Line bytes + structured-metadata bytes (what Loki counts against ingestion_rate_mb).
    size_bytes: int = 0
    # The request body, once the sink encoded the batch ahead of sending (streams are then
    # emptied: a queued batch waits as compressed bytes, not as Python objects).
    encoded: EncodedPush | None = None

    def add(self, labels: StreamLabels, entry: PushEntry) -> None:
        entries = self.streams.get(labels)
        if entries is None:
            entries = self.streams[labels] = []
        entries.append(entry)
        self.entry_count += 1
        size = len(entry.line)
        for name, value in entry.metadata:
            size += len(name) + len(value)
        self.size_bytes += size


TargetKind = Literal["docker", "file", "journal"]


@dataclass(frozen=True, slots=True)
class LogTarget:
    """One file to follow and what to attach to its lines.

    ``key`` identifies the target in the positions file: ``docker:<container id>`` for a
    container's json-file log, ``file:<absolute path>`` for a static file target.
    ``labels`` are target-level Loki label candidates (host, container, compose_project, …)
    before per-line ones (stream, level) are added; ``metadata`` is per-target structured
    metadata (container_id). For containers, ``docker_path`` is the log path as Docker
    reports it (diagnostics: it differs from ``path`` when the data root is mounted
    elsewhere), ``max_size`` its ``max-size`` log option in bytes (0: none), and
    ``started`` whether it ever started (a created container has no log file yet).
    """

    key: str
    kind: TargetKind
    path: Path
    name: str
    labels: tuple[tuple[str, str], ...] = ()
    metadata: tuple[tuple[str, str], ...] = ()
    container_id: str = ""
    image: str = ""
    docker_labels: tuple[tuple[str, str], ...] = ()
    docker_path: str = ""
    max_size: int = 0
    started: bool = True
    # Static files: the index of their ``logs.files`` entry, whose own stages apply.
    file_group: int = -1
