"""What a stage's options are written in: pydantic models, like the agent's own keys.

Kept out of :mod:`agent.logs.stages.base` so that an agent without stages never imports
pydantic (18 MiB of resident memory, issue 11): only the stage modules import this.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from agent.config import parse_duration, parse_size

# Stage options written like the agent's own: ``500ms``/``5s``/``1m``, ``16KiB``/``1MiB``.
Duration = Annotated[float, BeforeValidator(parse_duration), Field(ge=0)]
ByteSize = Annotated[int, BeforeValidator(parse_size), Field(ge=0)]


class StageConfig(BaseModel):
    """Options every stage takes: ``match`` limits it to some entries, ``name`` labels its
    counters (default: the stage type)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    match: str | None = None
    name: str | None = None


class SourceConfig(StageConfig):
    """A stage that reads the line, or with ``source`` the named field instead."""

    source: str | None = None

    @field_validator("source")
    @classmethod
    def _source_named(cls, value: str | None) -> str | None:
        if value == "":
            raise ValueError("empty source: name a field, or leave source out for the line")
        return value
