"""``label_drop``: remove labels, e.g. one an earlier stage or the target config added
that makes too many streams.

.. code-block:: yaml

    - label_drop:
        names: [stream, filename]

Entries whose labels changed count in ``nexo_agent_stage_changed_entries_total``.
Promtail calls this stage ``labeldrop`` and takes the list itself as its config.
"""

from __future__ import annotations

from pydantic import Field

from agent.logs.stages.base import StageContext
from agent.logs.stages.labels import LabelRewrite
from agent.logs.stages.options import StageConfig


class LabelDropConfig(StageConfig):
    names: list[str] = Field(min_length=1)


class LabelDrop(LabelRewrite):
    type_name = "label_drop"
    config_class = LabelDropConfig

    def __init__(self, config: StageConfig, context: StageContext) -> None:
        super().__init__(config, context)
        assert isinstance(config, LabelDropConfig)
        self.names = frozenset(config.names)

    def rewrite(self, labels: dict[str, str]) -> dict[str, str] | None:
        names = self.names
        if names.isdisjoint(labels):
            return None
        return {k: v for k, v in labels.items() if k not in names}


STAGE = LabelDrop
