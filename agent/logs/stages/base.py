"""What every stage agrees on: the entry it works on, its interface and its counters.

Stages run after the built-in parsing, on one read chunk's entries at a time (a list, so
a stage loops in one call instead of being called per line), in the order configured.
An :class:`Entry` carries what Promtail calls the extracted map (``fields``), the labels
and structured metadata it will be shipped with, and ``resume``: where reading would have
to start again for this entry to be read anew. A stage that holds entries back
(multiline, limit) reports the oldest ``resume`` it holds, so the position never passes an
entry that has not been shipped and acknowledged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import orjson

from agent.logs.parse import find_pairs

if TYPE_CHECKING:
    from agent.logs.stages.match import Selector
    from agent.logs.stages.options import StageConfig
    from agent.metrics.self import AgentMetrics

# (read sequence, offset, file identity): where to read again from for an entry to be read
# anew. The sequence number of the chunk orders positions across rotated files.
Resume = tuple[int, int, Any]
NO_RESUME: Resume = (0, 0, None)


def field_text(value: object) -> str:
    """A JSON value as the string the extracted map holds (Promtail's conversion)."""
    if type(value) is str:
        return value
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return ""
    if isinstance(value, int | float):
        return str(value)
    return orjson.dumps(value).decode()


def line_raw_fields(line: str) -> dict[str, Any]:
    """The fields a line carries on its face, values not yet converted to text: a JSON
    object's top-level keys, else its ``key=value`` pairs (logfmt, or pairs inside NestJS
    and free text)."""
    stripped = line.lstrip() if line[:1] in (" ", "\t") else line
    if stripped[:1] == "{":
        try:
            obj = orjson.loads(stripped)
        except orjson.JSONDecodeError:
            obj = None
        if type(obj) is dict:
            return obj
    if "=" not in line:
        return {}
    found: dict[str, Any] = {}
    for key, double_quoted, single_quoted, bare in find_pairs(line):
        if key in found:
            continue
        if double_quoted and "\\" in double_quoted:
            double_quoted = double_quoted.replace('\\"', '"').replace("\\\\", "\\")
        found[key] = double_quoted or single_quoted or bare
    return found


def line_fields(line: str) -> dict[str, str]:
    """:func:`line_raw_fields` with every value as text."""
    return {str(k): field_text(v) for k, v in line_raw_fields(line).items()}


_MISSING = object()


class Entry:
    """One log entry on its way through the stages.

    ``labels`` may be shared between entries of one stream: a stage that changes them
    assigns a new dict (``set_label``), never edits the shared one. ``fields`` starts
    with what the built-in parsing found (``level``, ids); :meth:`field` adds the line's
    own JSON or ``key=value`` fields the first time a stage asks for one it lacks.
    """

    __slots__ = (
        "fields",
        "labels",
        "line",
        "metadata",
        "parsed",
        "raw",
        "resume",
        "stream",
        "ts_ns",
    )

    def __init__(
        self,
        ts_ns: int,
        line: str,
        stream: str,
        labels: dict[str, str],
        fields: dict[str, str],
        metadata: dict[str, str],
        resume: Resume = NO_RESUME,
    ) -> None:
        self.ts_ns = ts_ns
        self.line = line
        self.stream = stream
        self.labels = labels
        self.fields = fields
        self.metadata = metadata
        self.resume = resume
        self.parsed = False
        # The line's own fields, parsed on first need and converted to text one by one as
        # they are asked for: a stage wanting ``time`` pays for one value, not twenty.
        self.raw: dict[str, Any] | None = None

    def field(self, name: str) -> str | None:
        value = self.fields.get(name)
        if value is None:
            if not self.parsed:
                line = self.line
                if name not in line and "\\" not in line:
                    # A key the text does not show (nor could spell with JSON escapes)
                    # is not among the line's fields: no need to parse them yet.
                    return None
                self.parsed = True
                self.raw = line_raw_fields(line)
            raw = self.raw
            if raw:
                found = raw.get(name, _MISSING)
                if found is not _MISSING:
                    value = found if type(found) is str else field_text(found)
                    self.fields[name] = value
        return value

    def all_fields(self) -> dict[str, str]:
        self.parse_line_fields()
        return self.fields

    def parse_line_fields(self) -> None:
        """Merge all of the line's own fields under what stages already extracted."""
        if not self.parsed:
            self.parsed = True
            self.raw = line_raw_fields(self.line)
        raw = self.raw
        if raw:
            fields = self.fields
            for k, v in raw.items():
                if k not in fields:
                    fields[str(k)] = v if type(v) is str else field_text(v)
            self.raw = None

    def value(self, name: str) -> str | None:
        """A label's value, else a field's: what a ``match`` selector compares."""
        value = self.labels.get(name)
        return value if value is not None else self.field(name)

    def set_label(self, name: str, value: str) -> None:
        labels = dict(self.labels)
        labels[name] = value
        self.labels = labels

    def drop_label(self, name: str) -> None:
        if name in self.labels:
            labels = dict(self.labels)
            del labels[name]
            self.labels = labels

    @property
    def size(self) -> int:
        return len(self.line)


@dataclass
class StageContext:
    """What stages may use beyond their own config: the agent's counters (and through
    them its registry), the clock (injectable for tests), and ``shared``: one dict for all
    targets' pipelines, for state that spans them (the metrics stage's families)."""

    metrics: AgentMetrics | None = None
    clock: Callable[[], float] | None = None
    shared: dict[str, Any] = field(default_factory=dict)


class Stage:
    """One transform. Subclasses implement :meth:`apply`; stateful ones also ``flush``,
    ``oldest_held`` and ``held_bytes``.

    ``process`` applies the stage to the entries its ``match`` selects and passes the
    others through unchanged, keeping their order.
    """

    type_name: ClassVar[str] = ""
    config_class: ClassVar[type[StageConfig]]  # each stage's own (see stages/options.py)

    def __init__(self, config: StageConfig, context: StageContext) -> None:
        from agent.logs.stages.match import Selector

        self.config = config
        self.context = context
        self.label = config.name or self.type_name
        self.selector: Selector | None = (
            Selector.parse(config.match) if config.match is not None else None
        )
        self._dropped: dict[str, int] = {}
        self._changed = 0

    def process(self, entries: list[Entry]) -> list[Entry]:
        selector = self.selector
        if selector is None:
            out = self.apply(entries)
        else:
            needle = selector.contains
            if needle is not None:
                chosen = [needle in e.line for e in entries]
            else:
                chosen = list(map(selector.matches, entries))  # once per entry, then reused
            count = chosen.count(True)
            if not count:
                return entries
            if count == len(entries):
                out = self.apply(entries)
            else:
                out = self._apply_in_order(entries, chosen)
        self.publish()
        return out

    def _apply_in_order(self, entries: list[Entry], chosen: list[bool]) -> list[Entry]:
        """Apply to runs of selected entries, keeping unselected ones where they were."""
        out: list[Entry] = []
        run: list[Entry] = []
        for entry, selected in zip(entries, chosen, strict=True):
            if selected:
                run.append(entry)
                continue
            if run:
                out.extend(self.apply(run))
                run = []
            out.append(entry)
        if run:
            out.extend(self.apply(run))
        return out

    def apply(self, entries: list[Entry]) -> list[Entry]:
        raise NotImplementedError

    def flush(self, now: float, final: bool) -> list[Entry]:
        """Entries held back that are due now (all of them when ``final``)."""
        return []

    def oldest_held(self) -> Resume | None:
        """The ``resume`` of the oldest entry still held, if any."""
        return None

    def held_bytes(self) -> int:
        return 0

    def wants_pause(self) -> bool:
        """True while reading should wait (a lossless limit is over its rate)."""
        return False

    # -- counters, published once per batch ----------------------------------------------
    def count_drop(self, reason: str, n: int = 1) -> None:
        self._dropped[reason] = self._dropped.get(reason, 0) + n

    def count_change(self, n: int = 1) -> None:
        self._changed += n

    def publish(self) -> None:
        metrics = self.context.metrics
        if metrics is None:
            self._dropped.clear()
            self._changed = 0
            return
        if self._dropped:
            for reason, n in self._dropped.items():
                metrics.stage_dropped.labels(self.label, reason).inc(n)
            self._dropped.clear()
        if self._changed:
            metrics.stage_changed.labels(self.label).inc(self._changed)
            self._changed = 0


class StagePipeline:
    """The configured stages, in order, for one target's entries."""

    def __init__(self, stages: list[Stage]) -> None:
        self.stages = stages

    def __bool__(self) -> bool:
        return bool(self.stages)

    def process(self, entries: list[Entry]) -> list[Entry]:
        for stage in self.stages:
            if not entries:
                break
            entries = stage.process(entries)
        return entries

    def flush(self, now: float, final: bool = False) -> list[Entry]:
        """Run what held stages release now through the stages after them."""
        out: list[Entry] = []
        stages = self.stages
        for i, stage in enumerate(stages):
            released = stage.flush(now, final)
            if released:
                stage.publish()
                for later in stages[i + 1 :]:
                    if not released:
                        break
                    released = later.process(released)
                out.extend(released)
        return out

    def oldest_held(self) -> Resume | None:
        oldest: Resume | None = None
        for stage in self.stages:
            held = stage.oldest_held()
            if held is not None and (oldest is None or held[:2] < oldest[:2]):
                oldest = held
        return oldest

    def held_bytes(self) -> int:
        return sum(stage.held_bytes() for stage in self.stages)

    def wants_pause(self) -> bool:
        return any(stage.wants_pause() for stage in self.stages)
