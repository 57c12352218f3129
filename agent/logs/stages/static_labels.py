"""``static_labels``: add fixed labels to every entry (or, with ``match``, to some).

.. code-block:: yaml

    - static_labels:
        match: '{compose_service="api"}'
        values:
          team: payments
          tier: "1"

Names must be Loki's (``[a-zA-Z_][a-zA-Z0-9_]*``) and values non-empty and at most 1024
characters, checked at config load; a label of the same name is replaced. Numbers and
booleans written unquoted in YAML are taken as their text. Entries whose labels changed
count in ``nexo_agent_stage_changed_entries_total``.

Differences from Promtail: the mapping sits under ``values:`` (Promtail's stage is the
mapping itself), and an empty value is a config error rather than a label Loki ignores.
"""

from __future__ import annotations

from typing import Any

from pydantic import field_validator

from agent.logs.stages.base import StageContext
from agent.logs.stages.labels import MAX_LABEL_VALUE, LabelRewrite, check_label_name
from agent.logs.stages.options import StageConfig


class StaticLabelsConfig(StageConfig):
    values: dict[str, str]

    @field_validator("values", mode="before")
    @classmethod
    def _scalars_as_text(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        out: dict[Any, Any] = {}
        for name, text in value.items():
            if isinstance(text, bool):
                text = "true" if text else "false"
            elif isinstance(text, int | float):
                text = str(text)
            out[name] = text
        return out

    @field_validator("values")
    @classmethod
    def _valid(cls, value: dict[str, str]) -> dict[str, str]:
        if not value:
            raise ValueError("give at least one name: value")
        for name, text in value.items():
            check_label_name(name)
            if not text:
                raise ValueError(f"{name}: empty value (Loki ignores labels without one)")
            if len(text) > MAX_LABEL_VALUE:
                raise ValueError(f"{name}: value longer than {MAX_LABEL_VALUE} characters")
        return value


class StaticLabels(LabelRewrite):
    type_name = "static_labels"
    config_class = StaticLabelsConfig

    def __init__(self, config: StageConfig, context: StageContext) -> None:
        super().__init__(config, context)
        assert isinstance(config, StaticLabelsConfig)
        self.values = dict(config.values)

    def rewrite(self, labels: dict[str, str]) -> dict[str, str] | None:
        values = self.values
        if all(labels.get(k) == v for k, v in values.items()):
            return None
        return {**labels, **values}


STAGE = StaticLabels
