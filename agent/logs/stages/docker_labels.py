"""Per-container rules from Docker labels: application teams configure their own
container in their compose file, without touching the agent's config.

=====================  ===============================================================
label                  value
=====================  ===============================================================
``nexo.logs.format``   ``json``, ``logfmt``, ``nestjs`` or ``text``: how the built-in
                       parsing reads the lines (default: detected per line)
``nexo.logs.multiline`` a preset (``nestjs``, ``nodejs``, ``java``, ``python``, ``go``)
                       or a first-line regex
``nexo.logs.drop``     a regex: matching lines are dropped
``nexo.logs.sample``   ``N`` (keep 1 in N) or a rate ``0 < r <= 1``
``nexo.logs.redact``   detectors, comma-separated (``email,card,jwt,bearer,aws,secrets``)
                       or ``all``
=====================  ===============================================================

A label with an invalid value is reported once (container and label named) and the
container's label rules are left out altogether: its lines ship as they are, through the
configured stages only, rather than half-configured.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agent.logs.stages import StageSpec, parse_stages

PREFIX = "nexo.logs."
FORMATS = ("json", "logfmt", "nestjs", "text")


@dataclass
class LabelRules:
    """Stages before and after the configured ones, the parse format, and problems."""

    before: list[StageSpec] = field(default_factory=list)
    after: list[StageSpec] = field(default_factory=list)
    format: str | None = None
    problems: list[tuple[str, str]] = field(default_factory=list)


def _one(label: str, stage: dict[str, Any]) -> StageSpec:
    try:
        return parse_stages([stage], where=label)[0]
    except ValueError as exc:
        # "nexo.logs.drop[0].drop.expression: invalid ..." -> the reason only
        raise ValueError(str(exc).split(": ", 1)[-1]) from None


def _sample(value: str) -> dict[str, Any]:
    try:
        every = int(value)
    except ValueError:
        try:
            rate = float(value)
        except ValueError:
            raise ValueError(f"{value!r} is neither N (keep 1 in N) nor a rate") from None
        return {"sample": {"rate": rate}}
    return {"sample": {"every": every}}


def rules_from_labels(labels: dict[str, str]) -> LabelRules:
    rules = LabelRules()
    wanted = {k: v.strip() for k, v in labels.items() if k.startswith(PREFIX)}
    if not wanted:
        return rules
    before: list[StageSpec] = []
    after: list[StageSpec] = []
    for label, value in sorted(wanted.items()):
        name = label.removeprefix(PREFIX)
        try:
            if name == "format":
                if value not in FORMATS:
                    raise ValueError(f"{value!r} is not one of {', '.join(FORMATS)}")
                rules.format = value
            elif name == "multiline":
                from agent.logs.stages.multiline import PRESETS

                option = "preset" if value in PRESETS else "firstline"
                before.insert(0, _one(label, {"multiline": {option: value}}))
            elif name == "drop":
                before.append(_one(label, {"drop": {"expression": value}}))
            elif name == "sample":
                before.append(_one(label, _sample(value)))
            elif name == "redact":
                detectors = [d.strip() for d in value.split(",") if d.strip()]
                after.append(_one(label, {"redact": {"detectors": detectors}}))
            else:
                known = ", ".join(
                    PREFIX + n for n in ("format", "multiline", "drop", "sample", "redact")
                )
                raise ValueError(f"unknown label (known: {known})")
        except ValueError as exc:
            rules.problems.append((label, str(exc)))
    if rules.problems:
        return LabelRules(problems=rules.problems)
    rules.before = before
    rules.after = after
    return rules
