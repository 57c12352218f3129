"""``regex``: take fields out of free-form lines with a regex's named groups.

.. code-block:: yaml

    - regex:
        expression: '^(?P<ip>\\S+) \\S+ \\S+ \\[[^\\]]*\\] "(?P<method>\\S+) (?P<path>\\S+)'
        source: message             # optional: match this field instead of the line

Each named group of the first match becomes a field of that name, replacing an earlier
one. The expression runs under RE2 (Go's syntax, linear time whatever the line), and must
have at least one named group.

Differences from Promtail's ``regex`` stage: an optional group that took no part in the
match leaves its field as it was (Promtail sets ``""``), and an expression without named
groups is refused at config load instead of doing nothing.
"""

from __future__ import annotations

from agent.logs.stages.base import Entry, Stage, StageContext
from agent.logs.stages.options import SourceConfig, StageConfig
from agent.logs.stages.pattern import compile_pattern


class RegexFieldsConfig(SourceConfig):
    expression: str


class RegexFields(Stage):
    type_name = "regex"
    config_class = RegexFieldsConfig

    def __init__(self, config: StageConfig, context: StageContext) -> None:
        super().__init__(config, context)
        assert isinstance(config, RegexFieldsConfig)
        self.pattern = compile_pattern(config.expression)
        if not self.pattern.group_names:
            raise ValueError(
                f"expression: {config.expression!r} has no named group; "
                "name what to extract, e.g. (?P<status>\\d{3})"
            )
        self.source = config.source

    def apply(self, entries: list[Entry]) -> list[Entry]:
        source = self.source
        groups = self.pattern.groups
        for e in entries:
            text = e.line if source is None else e.field(source)
            if text is None:
                continue
            found = groups(text)
            if found:
                e.fields.update(found)
        return entries


STAGE = RegexFields
