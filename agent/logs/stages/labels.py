"""``labels``: make fields into labels (e.g. the ``status`` a ``json`` stage found).

.. code-block:: yaml

    - labels:
        values:
          level:                    # empty: the field of the same name
          service: svc              # label "service" from the field "svc"

A label is set when its field exists and is not empty. Values longer than 1024 characters
are left out (and not counted): no one queries by them, and Loki refuses series whose
label values are too long (``max_label_value_length``). Label names must be Loki's
(``[a-zA-Z_][a-zA-Z0-9_]*``); others are refused at config load. Entries whose labels
changed count in ``nexo_agent_stage_changed_entries_total``.

Every label set is a stream in Loki: keep to fields with few distinct values (a level, a
status class), never ids. Entries that end with the same labels share one dict, which is
what lets the agent group a batch into streams cheaply.

Differences from Promtail: the mapping sits under ``values:`` (Promtail's stage is the
mapping itself), and an empty field sets no label (Promtail sets ``""``, which Loki then
ignores).
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from pydantic import field_validator

from agent.logs.stages.base import Entry, Stage, StageContext
from agent.logs.stages.options import StageConfig

_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
MAX_LABEL_VALUE = 1024
# Label dicts remembered per stage, so that entries ending with the same labels share one
# dict (the reader groups a batch by the dict's id); cleared when it grows past this.
CACHE_LIMIT = 4096


def check_label_name(name: str) -> str:
    if not _LABEL_NAME.fullmatch(name):
        raise ValueError(f"invalid name {name!r}: Loki's label names match [a-zA-Z_][a-zA-Z0-9_]*")
    return name


class LabelsConfig(StageConfig):
    values: dict[str, str | None]

    @field_validator("values")
    @classmethod
    def _names_valid(cls, value: dict[str, str | None]) -> dict[str, str | None]:
        if not value:
            raise ValueError("give at least one name: field")
        for name in value:
            check_label_name(name)
        return value


class Labels(Stage):
    type_name = "labels"
    config_class = LabelsConfig
    max_value_len: ClassVar[int] = MAX_LABEL_VALUE

    def __init__(self, config: StageConfig, context: StageContext) -> None:
        super().__init__(config, context)
        assert isinstance(config, LabelsConfig)
        # (target name, field name)
        self.pairs = tuple((name, source or name) for name, source in config.values.items())
        # (id(old labels), value or None per pair) -> (old labels, new labels)
        self._cache: dict[tuple[Any, ...], tuple[dict[str, str], dict[str, str]]] = {}

    def wanted(self, e: Entry, current: dict[str, str]) -> list[str | None] | None:
        """Per pair, the field's value where it should replace ``current``'s (else None);
        None when nothing changes."""
        limit = self.max_value_len
        values: list[str | None] = []
        differs = False
        fields = e.fields
        for name, source in self.pairs:
            value = fields.get(source)
            if value is None and not e.parsed:
                value = e.field(source)
                fields = e.fields
            if value and len(value) <= limit and current.get(name) != value:
                differs = True
                values.append(value)
            else:
                values.append(None)
        return values if differs else None

    def apply(self, entries: list[Entry]) -> list[Entry]:
        pairs = self.pairs
        cache = self._cache
        wanted = self.wanted
        changed = 0
        for e in entries:
            old = e.labels
            values = wanted(e, old)
            if values is None:
                continue
            key = (id(old), *values)
            hit = cache.get(key)
            if hit is not None and hit[0] is old:
                new = hit[1]
            else:
                new = dict(old)
                for (name, _), value in zip(pairs, values, strict=True):
                    if value is not None:
                        new[name] = value
                if len(cache) >= CACHE_LIMIT:
                    cache.clear()
                # Holding ``old`` keeps its id from being reused by another dict.
                cache[key] = (old, new)
            e.labels = new
            changed += 1
        if changed:
            self.count_change(changed)
        return entries


class LabelRewrite(Stage):
    """A stage whose new labels follow from the old ones alone (drop, allow, static):
    each distinct labels dict is rewritten once, and its entries share the result."""

    def __init__(self, config: StageConfig, context: StageContext) -> None:
        super().__init__(config, context)
        # id(old labels) -> (old labels, new labels, or old itself when unchanged)
        self._cache: dict[int, tuple[dict[str, str], dict[str, str]]] = {}

    def rewrite(self, labels: dict[str, str]) -> dict[str, str] | None:
        """The new labels, or None when they would be the same."""
        raise NotImplementedError

    def apply(self, entries: list[Entry]) -> list[Entry]:
        cache = self._cache
        changed = 0
        for e in entries:
            old = e.labels
            hit = cache.get(id(old))
            if hit is not None and hit[0] is old:
                new = hit[1]
            else:
                new = self.rewrite(old) or old
                if len(cache) >= CACHE_LIMIT:
                    cache.clear()
                cache[id(old)] = (old, new)
            if new is not old:
                e.labels = new
                changed += 1
        if changed:
            self.count_change(changed)
        return entries


STAGE = Labels
