"""``output``: ship a field instead of the whole line, e.g. a JSON log's ``msg`` once its
other keys have become labels or structured metadata.

.. code-block:: yaml

    - output:
        source: msg

Entries without the field, or where it is empty, keep their line. Changed entries count in
``nexo_agent_stage_changed_entries_total``.

Difference from Promtail: an empty field leaves the line as it was (Promtail ships an
empty line; it also leaves the line alone for a JSON ``null``, which here is ``""``).
"""

from __future__ import annotations

from pydantic import field_validator

from agent.logs.stages.base import Entry, Stage, StageContext
from agent.logs.stages.options import StageConfig


class OutputConfig(StageConfig):
    source: str

    @field_validator("source")
    @classmethod
    def _source_named(cls, value: str) -> str:
        if not value:
            raise ValueError("empty source: name the field to ship as the line")
        return value


class Output(Stage):
    type_name = "output"
    config_class = OutputConfig

    def __init__(self, config: StageConfig, context: StageContext) -> None:
        super().__init__(config, context)
        assert isinstance(config, OutputConfig)
        self.source = config.source

    def apply(self, entries: list[Entry]) -> list[Entry]:
        source = self.source
        changed = 0
        for e in entries:
            value = e.field(source)
            if value and value != e.line:
                e.line = value
                changed += 1
        if changed:
            self.count_change(changed)
        return entries


STAGE = Output
