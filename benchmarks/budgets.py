"""The budgets of ``benchmarks/budgets.yaml`` and the verdict of a result against them.

A budget names a figure of a scenario's ``summary`` by dotted path (``scrape_15s.cpu_cores``)
with a ``max`` or ``min`` limit, why that limit, and optionally a stricter ``target`` that
is reported but never fails a check. A figure a result lacks fails its budget: a check
that silently passes on a missing number would prove nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

BUDGETS_PATH = Path(__file__).with_name("budgets.yaml")


@dataclass(frozen=True)
class Budget:
    scenario: str
    metric: str
    kind: Literal["max", "min"]
    limit: float
    why: str
    target: float | None = None


@dataclass(frozen=True)
class Verdict:
    budget: Budget
    value: float | None

    @property
    def ok(self) -> bool:
        if self.value is None:
            return False
        if self.budget.kind == "max":
            return self.value <= self.budget.limit
        return self.value >= self.budget.limit

    @property
    def meets_target(self) -> bool | None:
        target = self.budget.target
        if target is None or self.value is None:
            return None
        return self.value <= target if self.budget.kind == "max" else self.value >= target

    def text(self) -> str:
        b = self.budget
        sign = "<=" if b.kind == "max" else ">="
        if self.value is None:
            return f"{b.scenario}: {b.metric} not measured (budget {sign} {b.limit})"
        verdict = "ok  " if self.ok else "OVER"
        line = f"{verdict} {b.scenario}: {b.metric} = {self.value:.4g} (budget {sign} {b.limit})"
        if self.meets_target is False:
            line += f", misses the target {sign} {b.target}"
        return line

    def as_json(self) -> dict[str, Any]:
        return {
            "metric": self.budget.metric,
            "value": self.value,
            "kind": self.budget.kind,
            "limit": self.budget.limit,
            "target": self.budget.target,
            "ok": self.ok,
            "meets_target": self.meets_target,
            "why": self.budget.why,
        }


def load(path: Path = BUDGETS_PATH) -> dict[str, list[Budget]]:
    """Budgets per scenario name."""
    document = yaml.safe_load(path.read_text())
    budgets: dict[str, list[Budget]] = {}
    for scenario, entries in (document.get("scenarios") or {}).items():
        for entry in entries:
            kind: Literal["max", "min"] = "max" if "max" in entry else "min"
            budgets.setdefault(scenario, []).append(
                Budget(
                    scenario=scenario,
                    metric=entry["metric"],
                    kind=kind,
                    limit=float(entry[kind]),
                    why=str(entry.get("why", "")),
                    target=float(entry["target"]) if "target" in entry else None,
                )
            )
    return budgets


def replaced_agents(path: Path = BUDGETS_PATH) -> dict[str, dict[str, float]]:
    """``{"promtail": {"cpu_cores": 0.2, "memory_mib": 128}, ...}``."""
    document = yaml.safe_load(path.read_text())
    replaced: dict[str, dict[str, float]] = document["replaced"]
    return replaced


def lookup(summary: dict[str, Any], metric: str) -> float | None:
    value: Any = summary
    for key in metric.split("."):
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def evaluate(
    scenario: str, summary: dict[str, Any], budgets: dict[str, list[Budget]]
) -> list[Verdict]:
    return [Verdict(b, lookup(summary, b.metric)) for b in budgets.get(scenario, [])]
