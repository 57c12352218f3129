"""``structured_metadata``: attach fields to entries as Loki structured metadata.

.. code-block:: yaml

    - structured_metadata:
        values:
          trace_id:                 # empty: the field of the same name
          route: http_route         # metadata "route" from the field "http_route"

Structured metadata is where high-cardinality values belong (ids, routes, durations):
queryable per entry without creating a stream per value, as a label would. A value is
set when its field exists and is not empty; values longer than 8 KiB are left out (and not
counted), keeping well inside Loki's 64 KiB of structured metadata per entry
(``max_structured_metadata_size``). Names follow Loki's label name rule
(``[a-zA-Z_][a-zA-Z0-9_]*``), checked at config load. Entries whose metadata changed count
in ``nexo_agent_stage_changed_entries_total``.

Differences from Promtail: the mapping sits under ``values:`` (Promtail's stage is the
mapping itself), and an empty field sets nothing.
"""

from __future__ import annotations

from agent.logs.stages.base import Entry
from agent.logs.stages.labels import Labels, LabelsConfig

MAX_METADATA_VALUE = 8 * 1024


class StructuredMetadataConfig(LabelsConfig):
    pass


class StructuredMetadata(Labels):
    type_name = "structured_metadata"
    config_class = StructuredMetadataConfig
    max_value_len = MAX_METADATA_VALUE

    def apply(self, entries: list[Entry]) -> list[Entry]:
        # Metadata is mostly one dict per entry (ids differ per line): no dict cache here,
        # the reader copies it out entry by entry anyway.
        pairs = self.pairs
        wanted = self.wanted
        changed = 0
        for e in entries:
            old = e.metadata
            values = wanted(e, old)
            if values is None:
                continue
            new = dict(old)  # the old one may be shared with other entries
            for (name, _), value in zip(pairs, values, strict=True):
                if value is not None:
                    new[name] = value
            e.metadata = new
            changed += 1
        if changed:
            self.count_change(changed)
        return entries


STAGE = StructuredMetadata
