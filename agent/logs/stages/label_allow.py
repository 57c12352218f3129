"""``label_allow``: keep only the labels named, dropping all others.

.. code-block:: yaml

    - label_allow:
        names: [compose_service, level]

An entry left with no label at all cannot be shipped (Loki needs one per stream): name at
least one label every entry has. Entries whose labels changed count in
``nexo_agent_stage_changed_entries_total``. Promtail calls this stage ``labelallow`` and
takes the list itself as its config.
"""

from __future__ import annotations

from pydantic import Field

from agent.logs.stages.base import StageContext
from agent.logs.stages.labels import LabelRewrite
from agent.logs.stages.options import StageConfig


class LabelAllowConfig(StageConfig):
    names: list[str] = Field(min_length=1)


class LabelAllow(LabelRewrite):
    type_name = "label_allow"
    config_class = LabelAllowConfig

    def __init__(self, config: StageConfig, context: StageContext) -> None:
        super().__init__(config, context)
        assert isinstance(config, LabelAllowConfig)
        self.names = frozenset(config.names)

    def rewrite(self, labels: dict[str, str]) -> dict[str, str] | None:
        names = self.names
        if names.issuperset(labels):
            return None
        return {k: v for k, v in labels.items() if k in names}


STAGE = LabelAllow
