"""Optional per-entry transforms, one stage a file, applied in the configured order.

Configured as Promtail's ``pipeline_stages`` are: a list of one-key mappings,
``- drop: {expression: "healthz"}``. Each stage module defines one :class:`Stage`
subclass (``STAGE``) with its config model; this registry only knows where each lives, so
an agent without stages never imports them.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from agent.logs.stages.base import Entry, Stage, StageContext, StagePipeline

if TYPE_CHECKING:
    from agent.logs.stages.options import StageConfig

__all__ = [
    "STAGE_MODULES",
    "Entry",
    "Stage",
    "StageContext",
    "StagePipeline",
    "build_pipeline",
    "parse_stages",
]

# Stage type -> module under agent.logs.stages that defines it as STAGE.
STAGE_MODULES = {
    "multiline": "multiline",
    "drop": "drop",
    "sample": "sample",
    "redact": "redact",
    "limit": "limit",
    "timestamp": "timestamp",
    "json": "json_fields",
    "logfmt": "logfmt_fields",
    "regex": "regex_fields",
    "labels": "labels",
    "structured_metadata": "structured_metadata",
    "label_drop": "label_drop",
    "label_allow": "label_allow",
    "static_labels": "static_labels",
    "output": "output",
    "replace": "replace",
    "metrics": "metrics",
}


def stage_class(type_name: str) -> type[Stage]:
    module = importlib.import_module(f"agent.logs.stages.{STAGE_MODULES[type_name]}")
    cls: type[Stage] = module.STAGE
    return cls


StageSpec = tuple[str, "StageConfig"]


def parse_stages(raw: Sequence[Any], where: str = "stages") -> list[StageSpec]:
    """Validate a list of one-key mappings into (type, config) pairs.

    Raises ``ValueError`` naming the stage's index and key, e.g.
    ``stages[2].drop.expression: invalid regular expression '(': missing )``.
    """
    if not isinstance(raw, list | tuple):
        raise ValueError(f"{where}: expected a list of stages, got {type(raw).__name__}")
    if not raw:
        return []
    from pydantic import ValidationError  # stage options are pydantic models: only now

    specs: list[StageSpec] = []
    for i, item in enumerate(raw):
        at = f"{where}[{i}]"
        if not isinstance(item, dict) or len(item) != 1:
            raise ValueError(f"{at}: a stage is a mapping with one key, its type (e.g. 'drop:')")
        ((type_name, options),) = item.items()
        if type_name not in STAGE_MODULES:
            close = difflib.get_close_matches(str(type_name), STAGE_MODULES, n=1, cutoff=0.5)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ValueError(
                f"{at}: unknown stage {type_name!r}{hint} (stages: {', '.join(STAGE_MODULES)})"
            )
        cls = stage_class(type_name)
        config_class: type[StageConfig] = cls.config_class
        try:
            config = config_class.model_validate({} if options is None else options)
            # Building compiles its regexes and selector: errors surface at config load.
            cls(config, StageContext())
        except ValidationError as exc:
            err = exc.errors()[0]
            key = ".".join(str(p) for p in err["loc"])
            msg = str(err["msg"]).removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = f"unknown option (options: {', '.join(config_class.model_fields)})"
            raise ValueError(f"{at}.{type_name}{'.' + key if key else ''}: {msg}") from None
        except ValueError as exc:
            raise ValueError(f"{at}.{type_name}: {exc}") from None
        specs.append((type_name, config))
    return specs


def build_pipeline(specs: Sequence[StageSpec], context: StageContext) -> StagePipeline:
    return StagePipeline([stage_class(t)(config, context) for t, config in specs])
