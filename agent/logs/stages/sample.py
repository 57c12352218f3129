"""``sample``: keep a share of the matching entries, e.g. one health check in a hundred.

.. code-block:: yaml

    - sample:
        match: '{compose_service="api"} |= "GET /healthz"'
        every: 100          # keep the 1st, 101st, 201st... matching entry of each stream
    - sample:
        rate: 0.1           # or keep each matching entry with probability 0.1

``every`` is deterministic (counted per stream of the target), ``rate`` random as
Promtail's ``sampling`` stage. Dropped entries count in
``nexo_agent_stage_dropped_entries_total{reason="sampled"}``.
"""

from __future__ import annotations

import random

from pydantic import Field, model_validator

from agent.logs.stages.base import Entry, Stage, StageContext
from agent.logs.stages.options import StageConfig


class SampleConfig(StageConfig):
    every: int | None = Field(default=None, ge=1)
    rate: float | None = Field(default=None, gt=0.0, le=1.0)

    @model_validator(mode="after")
    def _one_of(self) -> SampleConfig:
        if (self.every is None) == (self.rate is None):
            raise ValueError("give exactly one of every (keep 1 in N) or rate (0 < rate <= 1)")
        return self


class Sample(Stage):
    type_name = "sample"
    config_class = SampleConfig

    def __init__(self, config: StageConfig, context: StageContext) -> None:
        super().__init__(config, context)
        assert isinstance(config, SampleConfig)
        self.every = config.every
        self.rate = config.rate
        self.seen: dict[str, int] = {}
        self.random = random.Random()

    def apply(self, entries: list[Entry]) -> list[Entry]:
        kept: list[Entry] = []
        every = self.every
        if every is not None:
            seen = self.seen
            for e in entries:
                n = seen.get(e.stream, 0)
                seen[e.stream] = n + 1
                if n % every == 0:
                    kept.append(e)
        else:
            assert self.rate is not None
            rate = self.rate
            draw = self.random.random
            kept = [e for e in entries if draw() < rate]
        dropped = len(entries) - len(kept)
        if dropped:
            self.count_drop("sampled", dropped)
        return kept


STAGE = Sample
