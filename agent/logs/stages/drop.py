"""``drop``: leave out entries nobody will read (health checks, debug chatter, junk).

An entry is dropped when every condition given holds (Promtail's ``drop`` semantics):

.. code-block:: yaml

    - drop:
        expression: "GET /(healthz|ready)"   # the line (or ``source``'s value) matches
        source: url                          # optional: test this field or label instead
        value: "/healthz"                    # optional: ``source`` equals this exactly
        older_than: 24h                      # the entry's time is older than this
        longer_than: 64KiB                   # the line is longer than this (bytes)
        drop_counter_reason: health_check    # the ``reason`` label of the drop counter

Counted in ``nexo_agent_stage_dropped_entries_total{stage, reason}``.
"""

from __future__ import annotations

import time

from pydantic import model_validator

from agent.logs.stages.base import Entry, Stage, StageContext
from agent.logs.stages.options import ByteSize, Duration, StageConfig
from agent.logs.stages.pattern import compile_pattern


class DropConfig(StageConfig):
    expression: str | None = None
    source: str | None = None
    value: str | None = None
    older_than: Duration | None = None
    longer_than: ByteSize | None = None
    drop_counter_reason: str = "drop_stage"

    @model_validator(mode="after")
    def _some_condition(self) -> DropConfig:
        if (
            self.expression is None
            and self.value is None
            and self.older_than is None
            and self.longer_than is None
            and self.match is None
        ):
            raise ValueError(
                "give at least one of expression, value, older_than, longer_than or match"
            )
        if self.value is not None and self.source is None:
            raise ValueError("value needs source (the field or label to compare)")
        if self.expression is not None and self.value is not None:
            raise ValueError("give expression or value, not both")
        return self


class Drop(Stage):
    type_name = "drop"
    config_class = DropConfig

    def __init__(self, config: StageConfig, context: StageContext) -> None:
        super().__init__(config, context)
        assert isinstance(config, DropConfig)
        self.cfg = config
        self.pattern = compile_pattern(config.expression) if config.expression is not None else None
        self.clock = context.clock or time.time
        # The common case (drop level=debug): one comparison per entry, in a comprehension.
        self.by_value_only = config.value is not None and (
            config.expression is None and config.older_than is None and config.longer_than is None
        )

    def apply(self, entries: list[Entry]) -> list[Entry]:
        cfg = self.cfg
        if self.by_value_only and cfg.source is not None:
            source, value = cfg.source, cfg.value
            kept = [e for e in entries if e.value(source) != value]
        else:
            kept = self._kept(entries)
        dropped = len(entries) - len(kept)
        if dropped:
            self.count_drop(cfg.drop_counter_reason, dropped)
        return kept

    def _kept(self, entries: list[Entry]) -> list[Entry]:
        """The entries to keep: those that miss some configured condition."""
        cfg = self.cfg
        pattern = self.pattern
        source = cfg.source
        value = cfg.value
        longer = cfg.longer_than
        oldest_ns = (
            int((self.clock() - cfg.older_than) * 1e9) if cfg.older_than is not None else None
        )
        kept: list[Entry] = []
        for e in entries:
            if pattern is not None:
                text = e.line if source is None else e.value(source)
                if text is None or not pattern.search(text):
                    kept.append(e)
                    continue
            if value is not None and source is not None and e.value(source) != value:
                kept.append(e)
                continue
            if oldest_ns is not None and e.ts_ns >= oldest_ns:
                kept.append(e)
                continue
            if longer is not None and len(e.line.encode("utf-8", "surrogatepass")) <= longer:
                kept.append(e)
                continue
        return kept


STAGE = Drop
